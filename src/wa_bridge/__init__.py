"""wa-bridge: WhatsApp Business (Meta Cloud API) webhooks in, CRM records out."""

__all__ = ["__version__"]

__version__ = "0.1.0"

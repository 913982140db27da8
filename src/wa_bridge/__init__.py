"""wa-bridge: WhatsApp Business (Meta Cloud API) webhooks in, CRM records out."""

__version__ = "0.1.0"

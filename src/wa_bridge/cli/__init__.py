"""The ``wa-bridge`` command: :func:`wa_bridge.cli.main.main` and one module per group.

Nothing imports this package (tests/test_layering.py).
"""

__all__ = ["main"]

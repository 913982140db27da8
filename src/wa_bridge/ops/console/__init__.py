"""The admin console: server-rendered pages under ``/admin`` on the receiver app."""

from wa_bridge.ops.console.pages import ConsoleBackend, build_console_router
from wa_bridge.ops.console.session import COOKIE, Session, SessionSigner

__all__ = ["COOKIE", "ConsoleBackend", "Session", "SessionSigner", "build_console_router"]

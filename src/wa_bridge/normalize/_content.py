"""A message's content keys: its type-specific body, ``display_text`` and ``attribution``.

One function for every message we normalize (inbound, echo, past history messages), so
they read alike. Hot path: a text costs its body lookup, and a link search only when the
text holds ``utm_``.
"""

from __future__ import annotations

from wa_bridge.normalize._attribution import attribution_of
from wa_bridge.normalize._context import Json
from wa_bridge.normalize._display import display_text
from wa_bridge.normalize.bodies import message_body

__all__ = ["message_content"]


def message_content(msg: Json, kind: str | None, *, inbound: bool) -> Json:
    """``message_body`` plus ``display_text`` (when there is one) and, for a message the
    customer sent (``inbound``), ``attribution`` (when there is a referral or a UTM link)."""
    out = message_body(msg, kind)
    body: object = None
    if kind == "text":  # the hot path: the text is its own display text, no call needed
        text_obj = out.get("text")
        body = text_obj.get("body") if text_obj is not None else None
        if isinstance(body, str) and body:
            out["display_text"] = body
    else:
        text = display_text(kind, out)
        if text is not None:
            out["display_text"] = text
    if inbound and ("referral" in out or (isinstance(body, str) and "utm_" in body)):
        attribution = attribution_of(out.get("referral"), body)
        if attribution is not None:
            out["attribution"] = attribution
    return out

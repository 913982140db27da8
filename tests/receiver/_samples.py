"""Small Meta webhook bodies for the receiver tests (invented data, LATAM formats)."""

from __future__ import annotations

from typing import Any

import orjson

WABA_ID = "102938475610293"
PHONE_NUMBER_ID = "110022003300440"


def text_messages(wa_id: str, count: int, *, tag: str = "a") -> dict[str, Any]:
    """One change carrying ``count`` text messages from one contact, in timestamp order."""
    return {
        "object": "whatsapp_business_account",
        "entry": [
            {
                "id": WABA_ID,
                "changes": [
                    {
                        "field": "messages",
                        "value": {
                            "messaging_product": "whatsapp",
                            "metadata": {
                                "display_phone_number": "525500000000",
                                "phone_number_id": PHONE_NUMBER_ID,
                            },
                            "contacts": [{"profile": {"name": "Cliente Prueba"}, "wa_id": wa_id}],
                            "messages": [
                                {
                                    "from": wa_id,
                                    "id": f"wamid.TEST{tag}{wa_id}{i:04d}",
                                    "timestamp": str(1781100000 + i),
                                    "type": "text",
                                    "text": {"body": f"mensaje {i}"},
                                }
                                for i in range(count)
                            ],
                        },
                    }
                ],
            }
        ],
    }


def two_contacts(tag: str = "b") -> dict[str, Any]:
    """Messages from two contacts, interleaved: A, B, A, B."""
    body = text_messages("5215511110000", 2, tag=tag)
    other = text_messages("5491122223333", 2, tag=tag)
    value = body["entry"][0]["changes"][0]["value"]
    value2 = other["entry"][0]["changes"][0]["value"]
    value["contacts"] += value2["contacts"]
    a, b = value["messages"], value2["messages"]
    value["messages"] = [a[0], b[0], a[1], b[1]]
    return body


def dumps(payload: object) -> bytes:
    return orjson.dumps(payload)

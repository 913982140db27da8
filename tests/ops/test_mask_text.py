"""mask_text: a CRM's free-text message as a viewer may read it."""

from __future__ import annotations

import pytest

from wa_bridge.ops.masking import mask_text

EVENT = {
    "data": {
        "contact": {
            "profile_name": "Paola Gutiérrez",
            "wa_id": "5491123456789",
            "username": "pao.gtz",
        }
    }
}


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("refused Paola Gutiérrez", "refused •••"),
        ("surname Gutiérrez refused", "surname ••• refused"),
        ("whatsapp 5491123456789", "whatsapp 54•••••••••89"),
        ("phone +54 9 11 2345-6789 invalid", "phone +54•••••••••89 invalid"),
        ("user pao.gtz", "user •••"),
        ("Email address ana.p@example.com is invalid", "Email address ••• is invalid"),
        # kept: CRM ids, dates, short numbers, UUIDs
        ("record 003000000000006AAA", "record 003000000000006AAA"),
        ("at 2026-06-10T12:00:00Z", "at 2026-06-10T12:00:00Z"),
        ("limit 190 per 10 s", "limit 190 per 10 s"),
        ("id 3f1e2a4b-1234567-abcd", "id 3f1e2a4b-1234567-abcd"),
    ],
)
def test_mask_text(text: str, shown: str) -> None:
    assert mask_text(text, EVENT) == shown


def test_without_an_event_numbers_and_addresses_are_still_masked() -> None:
    assert mask_text("+52 55 1234 5678 / a@b.co", None) == "+52••••••••78 / •••"

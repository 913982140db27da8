"""Coexistence onboarding: ``history`` and ``smb_app_state_sync`` become canonical events."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import orjson

from wa_bridge.normalize import normalize_webhook

from ._samples import RECEIVED_AT, RECVTIME, events, load

W = "AAAAHBgNNTIxNTU1MDAwMTIzNBUCABIYFA=="  # the tail of every sample wamid


def _value(body: Any) -> Any:
    return body["entry"][0]["changes"][0]["value"]


def test_history_chunks_become_past_messages_then_a_status_each() -> None:
    evs = events("history_mx")
    assert [e.type for e in evs] == [
        *["whatsapp.history.message"] * 5,
        "whatsapp.history.status",
        "whatsapp.history.message",
        "whatsapp.history.status",
    ]
    ids = [e.data.get("message_id") for e in evs]
    assert ids[:5] == [f"wamid.TEST000{n}{W}" for n in range(501, 506)]
    assert [e.id for e in evs[:5]] == [f"wa:history:{m}" for m in ids[:5]]
    assert evs[5].id.startswith("wa:history.status:") and evs[7].id != evs[5].id


def test_a_past_message_is_about_its_thread_customer_at_its_own_time() -> None:
    sent, answer, placeholder, button, username = events("history_mx")[:5]
    for event in (sent, answer, placeholder, button):
        assert event.subject == "+525550006001"
        assert event.data["contact"] == {
            "key": "+525550006001",
            "phone_e164": "+525550006001",
            "wa_id": "5215550006001",
            "user_id": "MX.9000000000000000601",
            "parent_user_id": "MX.ENT.9000000000000000601",
            "username": None,
            "profile_name": None,
            "country": "MX",
        }
    assert [e.data["direction"] for e in (sent, answer, placeholder, button)] == [
        "outbound",  # the business wrote it: `to` is set, `from` is its own number
        "inbound",
        "inbound",
        "inbound",
    ]
    assert sent.time == sent.data["timestamp"] == "2026-06-08T06:26:40Z"  # the original time
    assert sent.recvtime == RECVTIME
    assert username.subject == "bsuid:MX.9000000000000000602"  # a thread without an id
    assert username.data["contact"]["username"] == "paco.mx"
    assert username.data["thread"] == {
        "id": None,
        "context": {"user_id": "MX.9000000000000000602", "username": "paco.mx"},
    }


def test_a_past_message_reads_like_a_live_one() -> None:
    sent, answer, placeholder, button, _ = events("history_mx")[:5]
    assert sent.data["display_text"] == "Hola Paola, te comparto el catálogo de salas"
    assert sent.data["text"] == {"body": "Hola Paola, te comparto el catálogo de salas"}
    assert placeholder.data["message_type"] == "media_placeholder"
    assert placeholder.data["display_text"] == "[Media not synced]"
    assert button.data["interactive"]["id"] == "envio_si"
    assert button.data["display_text"] == "Button reply: Sí, con envío (id envio_si)"
    assert answer.data["attribution"]["utm_campaign"] == "hot_sale"  # the customer's link
    assert "attribution" not in sent.data
    assert sent.data["history"] == {
        "part": "chunk",
        "phase": 0,
        "chunk_order": 1,
        "progress": 40,
        "status": "read",
    }
    assert placeholder.data["history"]["status"] == "delivered"
    assert sent.data["raw"] == _value(load("history_mx"))["history"][0]["threads"][0]["messages"][0]


def test_chunk_status_counts_and_completion() -> None:
    evs = events("history_mx")
    first, last = evs[5], evs[7]
    assert first.subject is None and first.data["contact"] is None
    assert first.time == RECVTIME  # Meta gives a chunk no time of its own
    assert {k: first.data[k] for k in ("phase", "chunk_order", "progress")} == {
        "phase": 0,
        "chunk_order": 1,
        "progress": 40,
    }
    assert (first.data["thread_count"], first.data["message_count"]) == (2, 5)
    assert first.data["is_complete"] is False
    assert "threads" not in first.data["raw"]  # the messages are on their own events
    assert (last.data["phase"], last.data["progress"], last.data["is_complete"]) == (2, 100, True)
    assert last.data["message_count"] == 1 and "errors" not in last.data
    assert evs[6].data["direction"] == "outbound" and evs[6].subject == "+525550006003"


def test_history_sharing_declined() -> None:
    (status,) = events("history_declined_cl")
    assert status.type == "whatsapp.history.status"
    assert status.data["errors"][0]["code"] == 2593109
    assert status.data["errors"][0]["details"] == "History sharing is turned off by the business"
    assert (status.data["message_count"], status.data["is_complete"]) == (0, False)
    assert status.data["phase"] is None


def test_the_media_of_a_past_message_comes_later_with_its_own_id() -> None:
    (media,) = events("history_media_mx")
    placeholder = events("history_mx")[2]
    assert media.type == "whatsapp.history.message"
    assert media.data["message_id"] == placeholder.data["message_id"]
    assert media.id == f"wa:history.media:{media.data['message_id']}" != placeholder.id
    assert media.data["history"] == {"part": "media", "status": None}
    assert media.data["media"]["id"] == "9000000000000601"
    assert media.data["display_text"] == "[Image] Así la quiero (media id 9000000000000601)"
    assert media.subject == "+525550006001"
    assert media.data["contact"]["user_id"] == "MX.9000000000000000601"


def test_phase_numbers_sent_as_text_and_odd_threads() -> None:
    body = copy.deepcopy(load("history_mx"))
    chunk = _value(body)["history"][0]
    chunk["metadata"] = {"phase": "1", "chunk_order": "3", "progress": "x"}
    chunk["threads"].insert(0, "not a thread")
    chunk["threads"][1]["messages"].insert(0, {"type": "text"})  # no id
    evs = normalize_webhook(body, received_at=RECEIVED_AT)
    assert [e.type for e in evs[:2]] == ["whatsapp.unknown", "whatsapp.unknown"]
    assert evs[0].data["raw"] == "not a thread"
    status = next(e for e in evs if e.type == "whatsapp.history.status")
    assert (status.data["phase"], status.data["chunk_order"], status.data["progress"]) == (
        1,
        3,
        None,
    )
    assert evs[2].data["history"]["phase"] == 1


def test_contact_book_changes() -> None:
    added, edited, username, removed, label = events("contact_book_br")
    assert [e.type for e in (added, edited, username, removed)] == [
        "whatsapp.contact_book.update"
    ] * 4
    assert added.data["action"] == "add"
    assert (added.data["name"], added.data["first_name"]) == ("Carla Mendes", "Carla")
    assert edited.data["name"] == "Carla Mendes (loja Centro)"
    assert added.id != edited.id
    # the book's phone names the person but is no reply address; the book's name is the
    # business's label, never the WhatsApp profile name
    assert added.data["contact"] == {
        "key": "+5511960006001",
        "phone_e164": "+5511960006001",
        "wa_id": None,
        "user_id": "BR.9000000000000000601",
        "parent_user_id": None,
        "username": None,
        "profile_name": None,
        "country": "BR",
    }
    assert added.data["phone_number"] == "5511960006001"
    assert added.time == added.data["timestamp"] == "2026-06-12T21:33:20Z"
    assert username.subject == "bsuid:BR.9000000000000000602"
    assert (username.data["name"], username.data["full_name"]) == ("Beto", None)
    assert removed.data["action"] == "remove" and removed.data["name"] is None
    assert removed.subject == "+5511960006001"
    assert label.type == "whatsapp.unknown"  # a state_sync item that is not a contact
    assert label.data["raw"]["label"]["name"] == "VIP"


def test_coexistence_ids_survive_a_redelivery_a_day_later() -> None:
    from datetime import timedelta

    for name in ("history_mx", "history_media_mx", "history_declined_cl", "contact_book_br"):
        later = normalize_webhook(load(name), received_at=RECEIVED_AT + timedelta(days=1))
        assert [e.id for e in later] == [e.id for e in events(name)]


def test_meta_doc_shapes_are_no_longer_unknown(shared_fixtures: Path) -> None:
    docs = shared_fixtures / "meta" / "docs"
    files = sorted(docs.glob("history__*.json")) + sorted(docs.glob("smb_app_state_sync__*.json"))
    assert len(files) >= 5
    for path in files:
        out = normalize_webhook(orjson.loads(path.read_bytes()), received_at=RECEIVED_AT)
        assert out and all(e.type != "whatsapp.unknown" for e in out), path.name

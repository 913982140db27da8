"""Identity in the normalizer: change notices in every shape, cards, LATAM variants, and
keys we do not model kept on the event (not as a second whatsapp.unknown)."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import orjson
import pytest

from wa_bridge.events import CanonicalEvent
from wa_bridge.normalize import normalize_webhook

from ._samples import RECEIVED_AT, events, load


def ids(side: dict[str, Any]) -> tuple[Any, ...]:
    return (side["phone_e164"], side["user_id"], side["parent_user_id"])


def one(name: str) -> CanonicalEvent:
    (event,) = events(name)
    return event


# --- notices ------------------------------------------------------------------------------


def test_number_change_2026_shape_names_old_and_new_identity() -> None:
    ev = one("identity_ar_change_2_notice")
    change = ev.data["identity_change"]
    assert (change["notice"], change["kind"]) == ("user_changed_number", "number")
    assert ids(change["previous"]) == ("+5491160001001", "AR.9100000000000000001", None)
    assert ids(change["current"]) == ("+5491160001002", "AR.9100000000000000002", None)
    # the event is about the person as the notice leaves them: reply to the new number
    assert ev.subject == "+5491160001002"
    contact = ev.data["contact"]
    assert (contact["wa_id"], contact["user_id"]) == ("5491160001002", "AR.9100000000000000002")
    assert contact["profile_name"] == "Lucía Paz"  # from the sender card of the old id
    system = ev.data["system"]  # every identity field kept
    assert system["previous_user_id"] == "AR.9100000000000000001"
    assert system["user_id"] == "AR.9100000000000000002"
    assert system["new_phone_e164"] == "+5491160001002"


@pytest.mark.parametrize(
    ("name", "previous", "current"),
    [
        (
            "identity_mx_change_2_notice",
            ("+525560001001", None, None),
            ("+525560001002", None, None),
        ),
        (
            "identity_co_change_2_notice",
            ("+573006001001", None, None),
            ("+573006001002", None, None),
        ),
    ],
)
def test_older_number_change_shapes_are_the_same_notice(
    name: str, previous: tuple[Any, ...], current: tuple[Any, ...]
) -> None:
    ev = one(name)
    change = ev.data["identity_change"]
    assert change["kind"] == "number"
    assert (ids(change["previous"]), ids(change["current"])) == (previous, current)
    assert ev.subject == current[0]


def test_bsuid_rotation_without_from_or_contacts() -> None:
    ev = one("identity_cl_rotation_2_notice")
    change = ev.data["identity_change"]
    assert change["kind"] == "user_id"
    assert ids(change["previous"]) == (
        None,
        "CL.9100000000000000041",
        "CL.ENT.9100000000000000041",
    )
    assert ids(change["current"]) == (None, "CL.9100000000000000042", "CL.ENT.9100000000000000042")
    assert ev.subject == "bsuid:CL.9100000000000000042"
    assert ev.data["system"]["previous_parent_user_id"] == "CL.ENT.9100000000000000041"


def test_user_id_update_is_a_bsuid_change() -> None:
    ev = one("identity_cl_id_update_2_update")
    change = ev.data["identity_change"]
    assert (change["notice"], change["kind"]) == ("user_id_update", "user_id")
    assert ids(change["previous"]) == ("+56960006001", "CL.9100000000000000061", None)
    assert ids(change["current"]) == ("+56960006001", "CL.9100000000000000062", None)
    assert ev.data["previous_user_id"] == "CL.9100000000000000061"  # the older fields stay


def test_bsuid_change_keeps_the_phone_and_an_unchanged_parent() -> None:
    body = copy.deepcopy(load("text_mx"))
    msg = body["entry"][0]["changes"][0]["value"]["messages"][0]
    msg.update(type="system", system={"type": "user_changed_user_id", "user_id": "MX.2"})
    del msg["text"]
    (ev,) = normalize_webhook(body, received_at=RECEIVED_AT)
    change = ev.data["identity_change"]
    assert ids(change["current"]) == ("+525550001234", "MX.2", "MX.ENT.9000000000000000001")
    assert change["previous"]["user_id"] == "MX.9000000000000000001"


def test_a_system_message_that_moves_nothing_is_no_notice() -> None:
    body = copy.deepcopy(load("identity_mx_change_2_notice"))
    system = body["entry"][0]["changes"][0]["value"]["messages"][0]["system"]
    system["wa_id"] = "5215560001001"  # the same number again (MX 521 form of `from`)
    (ev,) = normalize_webhook(body, received_at=RECEIVED_AT)
    assert "identity_change" not in ev.data
    assert ev.subject == "+525560001001"


def test_meta_documented_notice_shapes(shared_fixtures: Path) -> None:
    docs = shared_fixtures / "meta" / "docs"

    def event(name: str) -> CanonicalEvent:
        body = orjson.loads((docs / name).read_bytes())
        (ev,) = normalize_webhook(body, received_at=RECEIVED_AT)
        return ev

    number = event("messages__system_user_changed_number.json").data["identity_change"]
    assert (number["previous"]["wa_id"], number["current"]["wa_id"]) == (
        "5491155667788",
        "5491166778899",
    )
    user_id = event("messages__system_user_changed_user_id.json").data["identity_change"]
    assert user_id["current"]["user_id"] == "MX.7012938475610293847"
    assert user_id["current"]["parent_user_id"] == "MX.ENT.9081726354019283746"
    update = event("user_id_update__bsuid_changed.json").data["identity_change"]
    assert (update["previous"]["user_id"], update["current"]["user_id"]) == (
        "AR.8273645190283746519",
        "AR.9182736450918273645",
    )
    pywa = orjson.loads((shared_fixtures / "meta/pywa/tests/data/updates/system.json").read_bytes())
    (changed,) = normalize_webhook(pywa["phone_number_change"], received_at=RECEIVED_AT)
    assert changed.data["identity_change"]["current"]["phone_e164"] == "+972912345678"
    (security,) = normalize_webhook(pywa["identity_change"], received_at=RECEIVED_AT)
    assert "identity_change" not in security.data  # a security-code change moves no id


# --- shared contact cards -----------------------------------------------------------------


def test_contact_request_card_gives_the_senders_own_phone() -> None:
    ev = one("identity_mx_request_1_card")
    contact = ev.data["contact"]
    assert contact["user_id"] == "MX.9100000000000000021"
    assert contact["phone_e164"] == "+525560003001"
    assert contact["wa_id"] is None  # not sent as the sender's id: reply by BSUID
    assert ev.subject == "+525560003001"


def test_third_party_card_is_never_the_sender() -> None:
    ev = one("identity_mx_third_party_1_card")
    contact = ev.data["contact"]
    assert contact["phone_e164"] == "+525560004001"
    assert "linked_phones" not in contact
    assert ev.data["shared_contacts"][0]["phones"][0]["wa_id"] == "5215560004002"  # kept


def test_contact_request_with_another_number_than_from_links_both() -> None:
    body = copy.deepcopy(load("identity_mx_request_1_card"))
    msg = body["entry"][0]["changes"][0]["value"]["messages"][0]
    msg["from"] = "5215560003999"
    (ev,) = normalize_webhook(body, received_at=RECEIVED_AT)
    assert ev.data["contact"]["phone_e164"] == "+525560003999"
    assert ev.data["contact"]["linked_phones"] == ["+525560003001"]


# --- LATAM variants -----------------------------------------------------------------------


def test_ar_9_less_status_and_echo_key_the_549_contact() -> None:
    text, status, echo = (
        one(n)
        for n in (
            "identity_ar_variants_1_text",
            "identity_ar_variants_2_status",
            "identity_ar_variants_3_echo",
        )
    )
    assert text.subject == status.subject == echo.subject == "+5491160002001"
    assert status.data["contact"]["wa_id"] == "541160002001"  # the address as Meta sent it
    assert echo.data["contact"]["wa_id"] == "541160002001"
    assert echo.data["display_phone_number"] == "541150000002"  # the business's: untouched


def test_mx_52_status_keys_the_521_contact() -> None:
    assert one("identity_mx_variants_1_text").subject == "+525560002001"
    assert one("identity_mx_variants_2_status").subject == "+525560002001"


def test_br_ids_pair_only_when_one_payload_pairs_them() -> None:
    assert one("identity_br_apart_1_text").subject == "+5511960007001"
    apart = one("identity_br_apart_2_echo").data["contact"]
    assert apart["phone_e164"] == "+551160007001" and "linked_phones" not in apart
    paired = one("identity_br_paired_2_status").data["contact"]  # recipient_id beside the card
    assert paired["phone_e164"] == "+551160008001"
    assert paired["linked_phones"] == ["+5511960008001"]
    assert paired["user_id"] == "BR.9100000000000000095"


def test_several_statuses_beside_one_card_pair_nothing() -> None:
    *_, failed = events("statuses_br")  # the card is the 13-digit recipients'
    assert failed.data["contact"]["phone_e164"] == "+551150001234"
    assert "linked_phones" not in failed.data["contact"]


def test_a_card_found_by_bsuid_with_another_number_pairs_it() -> None:
    body = copy.deepcopy(load("identity_br_paired_2_status"))
    value = body["entry"][0]["changes"][0]["value"]
    value["statuses"][0]["recipient_user_id"] = "BR.9100000000000000095"
    value["statuses"].append(dict(value["statuses"][0], id="wamid.TESTother", status="read"))
    first, second = normalize_webhook(body, received_at=RECEIVED_AT)
    assert first.data["contact"]["linked_phones"] == ["+5511960008001"]
    assert second.data["contact"]["linked_phones"] == ["+5511960008001"]


# --- keys we do not model -----------------------------------------------------------------


def test_unknown_value_and_card_keys_stay_on_the_event() -> None:
    (ev,) = events("identity_unknown_keys")  # one event: no second whatsapp.unknown
    assert ev.type == "whatsapp.message.received"
    assert ev.data["raw_extra"] == {
        "value": {"conversation_context": "marketing_reply", "routing": {"queue": "ventas"}},
        "contact": {
            "identity_key_hash": "aWRlbnRpdHlLZXlIYXNo",
            "profile_badge": "verified",
            "profile": {"pronouns": "ella"},
        },
    }


def test_no_raw_extra_when_everything_is_modelled() -> None:
    assert "raw_extra" not in one("text_mx").data


@pytest.mark.parametrize(
    ("name", "key"), [("statuses_br", "statuses"), ("user_updates", "user_preferences")]
)
def test_an_unknown_scalar_beside_items_is_kept_on_each(name: str, key: str) -> None:
    body = copy.deepcopy(load(name))
    change = next(c for c in body["entry"][0]["changes"] if key in c["value"])
    change["value"]["new_flag"] = True
    out = normalize_webhook(body, received_at=RECEIVED_AT)
    assert all(e.type != "whatsapp.unknown" for e in out)
    mine = [e for e in out if e.data.get("raw") in change["value"][key]]
    assert mine and all(e.data["raw_extra"]["value"] == {"new_flag": True} for e in mine)


def test_an_unknown_item_array_beside_messages_is_whatsapp_unknown() -> None:
    body = copy.deepcopy(load("text_mx"))
    value = body["entry"][0]["changes"][0]["value"]
    value["polls"] = [{"id": "poll-9", "question": "¿Mesa o silla?"}]
    message, unknown = normalize_webhook(body, received_at=RECEIVED_AT)
    assert message.type == "whatsapp.message.received" and "raw_extra" not in message.data
    assert unknown.type == "whatsapp.unknown"
    assert unknown.data["raw"]["polls"] == value["polls"]
    assert "messages" not in unknown.data["raw"]  # the message is not carried twice

"""The one-text fast path builds, byte for byte, the event the general path builds.

``normalize_webhook`` tries :func:`wa_bridge.normalize._fast.text_message` first; these
tests hold it to the general path (``normalize_changes``) on every sample, on mutations
of the text webhook (any key of it set to any JSON value), and on generated variants of
the shape, and check it really takes the common shape.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from wa_bridge.errors import InvalidEvent
from wa_bridge.normalize._fast import text_message
from wa_bridge.normalize.bounds import within_bounds
from wa_bridge.normalize.to_events import normalize_changes

from ._samples import RECVTIME, load, sample_names
from .test_robustness import _paths, _set, json_values

BENCH_BODY = Path(__file__).resolve().parents[2] / "bench" / "data" / "text_webhook.json"


def present(**values: Any) -> dict[str, Any]:
    """The keyword arguments that are not None (``from_`` is ``from``)."""
    return {k.rstrip("_"): v for k, v in values.items() if v is not None}


def same_as_general(payload: Any) -> bool:
    """Assert the fast path agrees with the general path; True when it took the body."""
    fast = text_message(payload, RECVTIME)
    if fast is None:
        return False
    general = normalize_changes(payload, RECVTIME)
    assert len(general) == 1
    assert fast.to_json() == general[0].to_json()
    assert fast == general[0]
    assert within_bounds([fast]) == [fast]  # normalize_webhook does not check it again
    return True


def test_it_takes_the_bench_body_and_the_plain_text_sample() -> None:
    assert same_as_general(orjson.loads(BENCH_BODY.read_bytes()))
    taken = [name for name in sample_names() if same_as_general(load(name))]
    assert taken, "no sample is a plain one-text webhook any more"


@pytest.mark.parametrize("name", sample_names())
def test_every_sample_agrees(name: str) -> None:
    same_as_general(load(name))


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_mutations_of_the_text_webhook_agree(data: st.DataObject) -> None:
    body = orjson.loads(BENCH_BODY.read_bytes())
    paths = _paths(body)
    for _ in range(data.draw(st.integers(min_value=1, max_value=3))):
        path = data.draw(st.sampled_from(paths))
        try:
            _set(body, path, data.draw(json_values))
        except (KeyError, IndexError, TypeError):
            continue
    try:
        normalize_changes(copy.deepcopy(body), RECVTIME)
    except InvalidEvent:
        assert text_message(body, RECVTIME) is None  # not a webhook: never fast
        return
    same_as_general(body)


ids = st.one_of(
    st.none(),
    st.just(""),
    st.sampled_from(["5215512345678", "5511987654321", "12025550143", "abc", "+52 1 55"]),
    st.integers(min_value=0, max_value=10**13),
)
bsuids = st.one_of(st.none(), st.just(""), st.sampled_from(["MX.174550", "US.9", "x"]))
# integers within what orjson parses (a webhook with a larger one is a 400 before normalize)
json_ints = st.integers(min_value=-(2**63), max_value=2**64 - 1)
bodies = st.one_of(
    st.text(max_size=30), st.just(""), st.just("ver utm_source=fb"), st.none(), json_ints
)
stamps = st.one_of(
    st.sampled_from(["1781100000", "0", "99999999999999", "-5", "x"]),
    st.integers(min_value=-1, max_value=10**12),
    st.none(),
)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    wa_id=ids,
    card_wa_id=ids,
    user_id=bsuids,
    card_user_id=bsuids,
    parent=bsuids,
    card_parent=bsuids,
    name=st.one_of(st.none(), st.text(max_size=8)),
    username=st.one_of(st.none(), st.just("mari"), st.just("")),
    profile=st.sampled_from(["dict", "absent", "null", "extra"]),
    body=bodies,
    stamp=stamps,
    entry_id=st.one_of(st.none(), st.just(""), st.just("10987"), st.just(10987), st.just(True)),
    metadata=st.sampled_from(["full", "absent", "list", "no_pnid"]),
)
def test_generated_text_webhooks_agree(
    wa_id: Any,
    card_wa_id: Any,
    user_id: Any,
    card_user_id: Any,
    parent: Any,
    card_parent: Any,
    name: Any,
    username: Any,
    profile: str,
    body: Any,
    stamp: Any,
    entry_id: Any,
    metadata: str,
) -> None:
    msg: dict[str, Any] = {"id": "wamid.X", "type": "text", "text": {"body": body}}
    msg |= present(from_=wa_id, from_user_id=user_id, from_parent_user_id=parent, timestamp=stamp)
    card = present(wa_id=card_wa_id, user_id=card_user_id, parent_user_id=card_parent)
    prof = present(name=name, username=username)
    card |= {"dict": {"profile": prof}, "null": {"profile": None}, "absent": {}}.get(
        profile, {"profile": {**prof, "picture": "p"}}
    )
    meta: Any = {"display_phone_number": "525588001122", "phone_number_id": "1122"}
    if metadata == "list":
        meta = ["x"]
    elif metadata == "no_pnid":
        meta = {"display_phone_number": "525588001122"}
    value: dict[str, Any] = {"messaging_product": "whatsapp", "contacts": [card], "messages": [msg]}
    if metadata != "absent":
        value["metadata"] = meta
    entry: dict[str, Any] = {"changes": [{"value": value, "field": "messages"}]}
    if entry_id is not None:
        entry["id"] = entry_id
    same_as_general({"object": "whatsapp_business_account", "entry": [entry]})

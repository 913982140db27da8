"""Any JSON value, or any mutation of a valid webhook: events or NotAWebhook, nothing else."""

from __future__ import annotations

import copy
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from wa_bridge.errors import InvalidEvent
from wa_bridge.normalize import normalize_webhook

from ._samples import RECEIVED_AT, load, sample_names

_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=12)
)
json_values = st.recursive(
    _scalars,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=20,
)
_FIELDS = st.sampled_from(
    [
        "messages",
        "smb_message_echoes",
        "message_template_status_update",
        "template_category_update",
        "user_preferences",
        "user_id_update",
        "account_update",
        "history",
        "smb_app_state_sync",
    ]
)
_KEYS = st.sampled_from(
    [
        "messages",
        "statuses",
        "errors",
        "contacts",
        "metadata",
        "message_echoes",
        "user_preferences",
        "user_id_update",
        "timestamp",
        "id",
        "type",
        "from",
        "text",
        "status",
        "user_id",
        "wa_id",
        "context",
        "interactive",
        "conversation",
        "history",
        "threads",
        "state_sync",
        "referral",
        "order",
    ]
)


def _check(payload: object) -> None:
    try:
        out = normalize_webhook(payload, received_at=RECEIVED_AT)
    except InvalidEvent:
        return
    for event in out:
        assert event.id and event.source and event.time
        event.to_json()  # every event can travel


@settings(max_examples=200, deadline=None)
@given(json_values)
def test_random_json(payload: Any) -> None:
    _check(payload)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.fixed_dictionaries(
            {"field": _FIELDS, "value": st.dictionaries(_KEYS, json_values, max_size=5)}
        ),
        max_size=3,
    )
)
def test_random_values_in_a_valid_envelope(changes: list[dict[str, Any]]) -> None:
    payload = {"object": "whatsapp_business_account", "entry": [{"id": "1", "changes": changes}]}
    out = normalize_webhook(payload, received_at=RECEIVED_AT)  # well-formed envelope: no raise
    assert len(out) >= sum(1 for c in changes if not c["value"]) or out


def _paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix] if prefix else []
    if isinstance(node, dict):
        for key, child in node.items():
            found += _paths(child, (*prefix, key))
    elif isinstance(node, list):
        for i, child in enumerate(node):
            found += _paths(child, (*prefix, i))
    return found


def _set(root: Any, path: tuple[Any, ...], value: Any) -> None:
    node = root
    for part in path[:-1]:
        node = node[part]
    if isinstance(node, dict) and not isinstance(path[-1], str):
        # an earlier mutation made a list a dict: an int key is no JSON a webhook can carry
        raise TypeError(f"JSON object keys are strings, not {path[-1]!r}")
    node[path[-1]] = value


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(sample_names()), st.data())
def test_mutated_samples(name: str, data: st.DataObject) -> None:
    body = copy.deepcopy(load(name))
    paths = _paths(body)
    for _ in range(data.draw(st.integers(min_value=1, max_value=3))):
        path = data.draw(st.sampled_from(paths))
        try:
            _set(body, path, data.draw(json_values))
        except (KeyError, IndexError, TypeError):
            continue  # an earlier mutation replaced a parent
    _check(body)

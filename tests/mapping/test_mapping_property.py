"""Property: any canonical-ish event maps to operations or a clear MappingOutputInvalid,
the same through the generated functions as through the rules' closures."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tests.mapping.helpers import answer_of

from wa_bridge.errors import MappingOutputInvalid
from wa_bridge.events import EVENT_TYPES, CanonicalEvent
from wa_bridge.mapping import load_mapping

ROOT = Path(__file__).resolve().parents[2]
MAPPINGS = [load_mapping(p, allow_base=True) for p in sorted((ROOT / "mappings").glob("*.yaml"))]

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=True),
    st.text(max_size=20),
    st.sampled_from(["text", "ad", "stop", "marketing_messages", "failed", "2026-06-10T14:00:00Z"]),
    st.sampled_from(["5215512345678", "+525512345678", "1781100000", "won", "pricing"]),
)
json_values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=8,
)
KEYS = [
    "message_id",
    "message_type",
    "status",
    "timestamp",
    "contact",
    "text",
    "media",
    "referral",
    "errors",
    "agent",
    "tags",
    "outcome",
    "value",
    "reason",
    "csat",
    "category",
    "value",
]
contact = st.fixed_dictionaries(
    {},
    optional={
        k: json_values for k in ("key", "phone_e164", "wa_id", "user_id", "profile_name", "country")
    },
)
data = st.dictionaries(st.sampled_from(KEYS), json_values, max_size=8).flatmap(
    lambda d: st.one_of(st.just(d), contact.map(lambda c: {**d, "contact": c}))
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(event_type=st.sampled_from(EVENT_TYPES), payload=data, time=st.text(max_size=30))
def test_apply_returns_ops_or_raises_mapping_output_invalid(
    event_type: str, payload: dict[str, Any], time: str
) -> None:
    event = CanonicalEvent.from_dict(
        {"id": "e", "type": event_type, "source": "s", "time": time, "data": payload}
    )
    for mapping in MAPPINGS:
        # the generated per-type function and the rules' closures: the same answer
        assert answer_of(mapping.apply, event) == answer_of(mapping.apply_by_rules, event)
        try:
            ops = mapping.apply(event)
        except MappingOutputInvalid as exc:
            assert str(exc).startswith("mappings/") or ".yaml:" in str(exc)
            continue
        assert all(op.event_id == "e" for op in ops)

"""slot_init: the same objects as the dataclass's own ``__init__``, still frozen."""

from __future__ import annotations

import dataclasses
import inspect
from dataclasses import dataclass, field

import pytest

from wa_bridge.bus.consumer import Delivery
from wa_bridge.connectors.base import CrmResult
from wa_bridge.events import CanonicalEvent, Contact
from wa_bridge.operations import CrmOperation
from wa_bridge.slot_init import slot_init
from wa_bridge.worker.facts import StatusFact
from wa_bridge.worker.outcomes import BatchItem


@dataclass(frozen=True, slots=True)
class Plain:
    name: str
    tags: tuple[str, ...] = ()
    extra: dict[str, int] = field(default_factory=dict)
    count: int = 0


@slot_init
@dataclass(frozen=True, slots=True)
class Fast:
    name: str
    tags: tuple[str, ...] = ()
    extra: dict[str, int] = field(default_factory=dict)
    count: int = 0


@pytest.mark.parametrize(
    ("args", "kwargs"),
    [
        (("a",), {}),
        (("a", ("x",)), {}),
        (("a",), {"count": 3}),
        ((), {"name": "a", "extra": {"k": 1}, "tags": ("t",)}),
    ],
)
def test_builds_what_the_dataclass_init_builds(
    args: tuple[object, ...], kwargs: dict[str, object]
) -> None:
    plain, fast = Plain(*args, **kwargs), Fast(*args, **kwargs)  # type: ignore[arg-type]
    assert dataclasses.astuple(fast) == dataclasses.astuple(plain)
    assert repr(fast).replace("Fast", "Plain") == repr(plain)


def test_each_default_factory_call_gives_a_new_value() -> None:
    one, two = Fast("a"), Fast("b")
    assert one.extra == {} and two.extra == {}
    assert one.extra is not two.extra


def test_the_signature_is_the_dataclass_one() -> None:
    assert str(inspect.signature(Fast)).replace("Fast", "Plain") == str(inspect.signature(Plain))
    with pytest.raises(TypeError):
        Fast()  # type: ignore[call-arg]
    with pytest.raises(TypeError):
        Fast("a", wrong=1)  # type: ignore[call-arg]
    with pytest.raises(TypeError):
        Fast("a", (), {}, 0, 5)  # type: ignore[call-arg]


def test_the_class_stays_frozen_slotted_hashable_and_equal_by_value() -> None:
    fast = Fast("a", ("x",), count=2)
    with pytest.raises(dataclasses.FrozenInstanceError):
        fast.name = "b"  # type: ignore[misc]
    assert not hasattr(fast, "__dict__")
    assert fast == Fast("a", ("x",), {}, 2)
    assert dataclasses.replace(fast, count=3) == Fast("a", ("x",), count=3)


def test_it_refuses_what_it_does_not_cover() -> None:
    @dataclass(frozen=True, slots=True)
    class WithPost:
        name: str

        def __post_init__(self) -> None:
            pass

    @dataclass(frozen=True, slots=True)
    class KwOnly:
        name: str = field(kw_only=True)

    @dataclass(frozen=True)
    class NoSlots:
        name: str

    for cls in (WithPost, KwOnly, NoSlots):
        with pytest.raises(TypeError):
            slot_init(cls)


@pytest.mark.parametrize(
    "cls", [CanonicalEvent, Contact, Delivery, CrmOperation, CrmResult, StatusFact, BatchItem]
)
def test_the_hot_classes_use_it(cls: type) -> None:
    assert "_set0" in cls.__init__.__globals__  # the slot setters, not object.__setattr__

"""An ``order`` message's total: what a mapping needs to make a deal from it.

Meta sends the items (``product_items[]``: ``product_retailer_id``, ``quantity``,
``item_price``, ``currency``) but no total. ``item_price`` is documented as an integer and
shown as ``7.99``: the sum is done in decimal, so ``4 × 349.5`` is ``1398`` exactly. Each
quantity and price is read by :mod:`wa_bridge.normalize.decimals` (one rule set for every
decimal); an item it refuses leaves the total unknown.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Final

from wa_bridge.normalize._context import Json
from wa_bridge.normalize.decimals import decimal_or_none
from wa_bridge.normalize.meta import as_str

__all__ = ["order_of", "plain_number"]

_MAX_TOTAL: Final = Decimal(2**53)  # past this a JSON number loses digits: not a total


def plain_number(value: Decimal) -> int | float:
    """A JSON number: an int when whole, else the nearest float."""
    return int(value) if value == value.to_integral_value() else float(value)


def _total(items: list[object]) -> tuple[Decimal | None, str | None]:
    """The sum of quantity × price and the one currency of every item; (None, None) when an
    item lacks either or the currencies differ (a total in two currencies means nothing)."""
    total = Decimal(0)
    currencies: set[str | None] = set()
    for item in items:
        if not isinstance(item, dict):
            return None, None
        quantity = decimal_or_none(item.get("quantity"))
        price = decimal_or_none(item.get("item_price"))
        if quantity is None or price is None:
            return None, None
        total += quantity * price
        currencies.add(as_str(item.get("currency")))
    if len(currencies) != 1 or abs(total) >= _MAX_TOTAL:
        return None, None
    return total, currencies.pop()


def order_of(obj: Json) -> Json:
    """The ``order`` object as Meta sent it, plus ``total`` (a number) and ``currency``
    (both None when they cannot be told, see :func:`_total`)."""
    items = obj.get("product_items")
    total, currency = _total(items) if isinstance(items, list) and items else (None, None)
    out = dict(obj)
    out["total"] = plain_number(total) if total is not None else None
    out["currency"] = currency if total is not None else None
    return out

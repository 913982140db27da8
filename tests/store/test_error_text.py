"""A failed statement's error text never quotes its parameters (personal data).

That text reaches the logs (``exc_info``) and, for an unexpected error, the dead letter's
``error_message``; the parameters of the store's statements are rows of contacts,
identities and messages.
"""

from __future__ import annotations

import pytest
from sqlalchemy import text
from sqlalchemy.exc import StatementError

from wa_bridge.store import create_engine

PHONE = "+5215550001234"
BODY = "mi dirección es Calle Falsa 123"


async def test_a_failed_statement_names_the_statement_not_its_parameters(store_url: str) -> None:
    engine = create_engine(store_url)
    try:
        with pytest.raises(StatementError) as caught:
            async with engine.connect() as conn:
                await conn.execute(
                    text("SELECT CAST(:phone AS integer) + no_such_column, :body"),
                    {"phone": PHONE, "body": BODY},
                )
    finally:
        await engine.dispose()
    message = str(caught.value)
    assert "no_such_column" in message  # the statement and the database's reason stay
    assert PHONE not in message and "5550001234" not in message
    assert BODY not in message and "Calle Falsa" not in message
    assert "parameters hidden" in message

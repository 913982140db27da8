"""The generic REST CRM connector: our own published contract, ``contracts/rest-crm.openapi.yaml``.

Every write is an idempotent upsert by natural key (the contract's ``PUT /contacts/{contact_key}``,
``/cases/{case_key}``, ``/notes/{message_id or idempotency key}``, ``/outcomes/{key}``,
``/consents/{key}``); :meth:`RestConnector.apply` sends up to ``max_batch`` of them per
``POST /batch`` and raises on the first failed one with the CRM's own message.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from importlib.resources import files
from typing import TYPE_CHECKING, Any, Final

import httpx

from wa_bridge.connectors._records import json_value, note_key, require_key
from wa_bridge.connectors.base import CrmResult, Vendor
from wa_bridge.connectors.http import ErrorDialect, client_for, item_error, send
from wa_bridge.errors import CrmUnavailable
from wa_bridge.operations import CrmOperation

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncEngine

    from wa_bridge.settings import Settings

__all__ = ["CONTRACT_FILE", "REST_ERRORS", "VENDOR", "RestConnector", "contract_text"]

CONTRACT_FILE: Final = "rest-crm.openapi.yaml"


def _error_text(error: Mapping[str, Any]) -> str:
    """The contract's ``{"code", "message", "field"}`` as one line."""
    text = f"{error.get('code', 'error')}: {error.get('message', '')}"
    return f"{text} (field {error['field']})" if error.get("field") else text


def _message(body: Any) -> str | None:
    """``{"error": {…}}``: a whole error answer, or one item of a ``/batch`` answer."""
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        return _error_text(body["error"])
    return None


REST_ERRORS: Final = ErrorDialect("rest", message=_message)


def contract_text() -> str:
    """The published OpenAPI document (package data), for CRM vendors and contract tests."""
    return files("wa_bridge.connectors").joinpath("contracts", CONTRACT_FILE).read_text("utf-8")


def operation_key(op: CrmOperation) -> str:
    """The natural key the operation's record is stored under."""
    if op.kind == "upsert_contact":
        return require_key(op, "contact_key")
    if op.kind == "upsert_case":
        return require_key(op, "case_key")
    return note_key(op) if op.kind == "add_note" else op.idempotency_key


def operation_body(op: CrmOperation) -> dict[str, Any]:
    """The PUT body of the operation, as the contract's schemas say."""
    body: dict[str, Any] = {"fields": {k: json_value(v) for k, v in op.fields.items()}}
    if op.kind != "upsert_contact":
        body["contact_key"] = require_key(op, "contact_key")
    if op.kind in ("add_note", "record_outcome"):
        body["case_key"] = op.case_key
    return body


class RestConnector:
    """A :class:`~wa_bridge.connectors.base.CrmConnector` for the generic REST CRM.

    Owns ``client`` (closed by :meth:`aclose`). Raises only :mod:`wa_bridge.errors`.
    """

    name = "rest"
    max_batch = 100

    def __init__(self, client: httpx.AsyncClient) -> None:
        self._client = client

    async def apply(self, ops: Sequence[CrmOperation]) -> Sequence[CrmResult]:
        """Apply ``ops`` in order, ``max_batch`` per ``POST /batch``; raise on the first failure."""
        results: list[CrmResult] = []
        for start in range(0, len(ops), self.max_batch):
            results.extend(await self._batch(ops[start : start + self.max_batch]))
        return results

    async def _batch(self, ops: Sequence[CrmOperation]) -> list[CrmResult]:
        payload = {
            "operations": [
                {"op": op.kind, "key": operation_key(op), "body": operation_body(op)} for op in ops
            ]
        }
        response = await send(
            self._client, "POST", "/batch", dialect=REST_ERRORS, action="apply", json=payload
        )
        items = response.json().get("results", [])
        results: list[CrmResult] = []
        for op, item in zip(ops, items, strict=False):
            status = int(item.get("status", 0))
            if not 200 <= status < 300:
                what = f"got item status {status}"
                raise item_error(REST_ERRORS, op, status=status, body=item, what=what)
            results.append(CrmResult(crm_id=str(item["id"]), created=bool(item.get("created"))))
        if len(results) != len(ops):
            raise CrmUnavailable(f"rest: /batch answered {len(items)} results for {len(ops)} ops")
        return results

    async def aclose(self) -> None:
        await self._client.aclose()


def _build(settings: Settings, engine: AsyncEngine | None) -> RestConnector:
    return RestConnector(client_for(settings, REST_ERRORS, engine=engine))


VENDOR: Final = Vendor(build=_build)

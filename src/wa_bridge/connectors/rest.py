"""The generic REST CRM connector: our own published contract, ``contracts/rest-crm.openapi.yaml``.

Every write is an idempotent upsert by natural key (the contract's ``PUT /contacts/{contact_key}``,
``/cases/{case_key}``, ``/notes/{message_id or idempotency key}``, ``/outcomes/{key}``,
``/consents/{key}``); :meth:`RestConnector.apply` sends up to ``max_batch`` of them per
``POST /batch``; an operation the CRM refuses is answered with the CRM's own message and
the others are applied.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from importlib.resources import files
from typing import TYPE_CHECKING, Any, Final

import httpx

from wa_bridge.connectors._plan import json_value, require_key
from wa_bridge.connectors.base import CrmResult, OpRejected, OpResult, Vendor, Wiring, note_key
from wa_bridge.connectors.gate import quota_key
from wa_bridge.connectors.http import ErrorDialect, client_for, item_error, send
from wa_bridge.connectors.rest_merge import REST_MERGER
from wa_bridge.connectors.rest_search import CONTACTS, ContactSearch
from wa_bridge.errors import CrmUnavailable, PermanentError
from wa_bridge.operations import DEFAULT_MATCH_ORDER, CrmOperation, MatchRule
from wa_bridge.store.book import MatchKind, RecordBook

if TYPE_CHECKING:
    from wa_bridge.settings import Settings

__all__ = ["CONTRACT_FILE", "REST_ERRORS", "VENDOR", "RestConnector", "contract_text"]

CONTRACT_FILE: Final = "rest-crm.openapi.yaml"
_NOT_ATTEMPTED: Final = 424  # a /batch item after the first failed one


def _error_text(error: Mapping[str, Any]) -> str:
    """The contract's ``{"code", "message", "field"}`` as one line."""
    text = f"{error.get('code', 'error')}: {error.get('message', '')}"
    return f"{text} (field {error['field']})" if error.get("field") else text


class _RestDialect(ErrorDialect):
    """The contract's error body; every other answer is HTTP's own (the defaults)."""

    def message(self, body: Any) -> str | None:
        """``{"error": {…}}``: a whole error answer, or one item of a ``/batch`` answer."""
        if isinstance(body, dict) and isinstance(body.get("error"), dict):
            return _error_text(body["error"])
        return None


REST_ERRORS: Final = _RestDialect("rest")


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


def operation_body(op: CrmOperation, adopt: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The PUT body of the operation, as the contract's schemas say (``adopt``: contact key
    → the id of the existing contact it adopts)."""
    body: dict[str, Any] = {"fields": {k: json_value(v) for k, v in op.fields.items()}}
    adopted = adopt.get(op.contact_key or "") if adopt and op.kind == "upsert_contact" else None
    if adopted is not None:
        body["adopt"] = adopted
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

    def __init__(
        self,
        client: httpx.AsyncClient,
        *,
        match_order: Sequence[MatchRule] = DEFAULT_MATCH_ORDER,
        instance: str | None = None,
    ) -> None:
        self._client = client
        self.instance = instance or f"rest:{client.base_url}"
        self._search = ContactSearch(client, REST_ERRORS, tuple(match_order))
        self._own_book = RecordBook(self.instance)

    @property
    def client(self) -> httpx.AsyncClient:
        return self._client

    async def apply(
        self, ops: Sequence[CrmOperation], book: RecordBook | None = None
    ) -> list[OpResult]:
        """Apply ``ops`` in order, ``max_batch`` per ``POST /batch``; one result per op.

        A contact the book does not know, with a phone or an e-mail, is first looked for
        among the CRM's own (``searchContacts``, when the CRM offers it) and adopted when
        found. The CRM stops a batch at its first failed operation (later ones answer 424,
        not attempted): the refused one is an :class:`OpRejected`, as is every later
        operation on a contact whose ``upsert_contact`` was refused, and the rest is sent
        again. The book learns each contact written (the REST CRM keys every record by our
        own key, so nothing else needs it).
        """
        book = book if book is not None else self._own_book
        adopt = await self._search.adoptions(ops, book)
        results = await self._apply(ops, {k: c.candidate.crm_id for k, c in adopt.items()})
        for op, result in zip(ops, results, strict=True):
            key = op.contact_key
            if op.kind != "upsert_contact" or key is None or not isinstance(result, CrmResult):
                continue
            choice = adopt.get(key)
            match: MatchKind = choice.rule if choice else "created" if result.created else "key"
            if not book.knows(CONTACTS, key):
                book.remember(CONTACTS, key, result.crm_id, match=match)
                if choice is not None:
                    book.note_match(CONTACTS, key, choice.rule, choice.candidates, choice.others)
        return results

    async def _apply(self, ops: Sequence[CrmOperation], adopt: dict[str, str]) -> list[OpResult]:
        results: dict[int, OpResult] = {}
        refused_contacts: dict[str, OpRejected] = {}
        pending = list(range(len(ops)))
        while pending:
            todo: list[int] = []
            for index in pending:
                blocked = refused_contacts.get(ops[index].contact_key or "")
                if blocked is not None and ops[index].kind != "upsert_contact":
                    results[index] = blocked
                else:
                    todo.append(index)
            if not todo:
                break
            chunk = todo[: self.max_batch]
            answered = await self._batch([ops[i] for i in chunk], adopt)
            if all(result is None for result in answered):
                raise CrmUnavailable("rest: /batch attempted none of its operations")
            pending = todo[len(chunk) :]
            for index, result in zip(chunk, answered, strict=True):
                if result is None:  # not attempted after a refusal: sent again
                    pending.append(index)
                    continue
                results[index] = result
                op = ops[index]
                if isinstance(result, OpRejected) and op.kind == "upsert_contact":
                    refused_contacts[require_key(op, "contact_key")] = result
            pending.sort()
        return [results[i] for i in range(len(ops))]

    async def _batch(
        self, ops: Sequence[CrmOperation], adopt: dict[str, str]
    ) -> list[OpResult | None]:
        """One ``POST /batch``: each op's result, None for those not attempted."""
        payload = {
            "operations": [
                {"op": op.kind, "key": operation_key(op), "body": operation_body(op, adopt)}
                for op in ops
            ]
        }
        response = await send(
            self._client, "POST", "/batch", dialect=REST_ERRORS, action="apply", json=payload
        )
        items = response.json().get("results", [])
        if len(items) != len(ops):
            raise CrmUnavailable(f"rest: /batch answered {len(items)} results for {len(ops)} ops")
        results: list[OpResult | None] = []
        for op, item in zip(ops, items, strict=True):
            status = int(item.get("status", 0))
            if 200 <= status < 300:
                results.append(CrmResult(crm_id=str(item["id"]), created=bool(item.get("created"))))
            elif status == _NOT_ATTEMPTED:
                results.append(None)
            else:
                what = f"got item status {status}"
                error = item_error(REST_ERRORS, op, status=status, body=item, what=what)
                if not isinstance(error, PermanentError):
                    raise error  # a rate limit or an outage: the whole call is retried
                results.append(OpRejected(error))
        return results

    async def aclose(self) -> None:
        await self._client.aclose()


def _build(settings: Settings, wiring: Wiring) -> RestConnector:
    return RestConnector(
        client_for(settings, REST_ERRORS, engine=wiring.engine, clock=wiring.clock),
        match_order=wiring.match_order,
        instance=quota_key(settings),
    )


VENDOR: Final = Vendor(build=_build, merger=REST_MERGER)

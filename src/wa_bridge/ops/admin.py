"""The admin API: dead letters for the ops engineer, behind role tokens, every call audited.

(No ``from __future__ import annotations`` here: FastAPI must evaluate the handlers'
annotations, which name per-router dependency aliases.)

Mounted by the receiver's FastAPI app under ``/admin`` when a state database and admin
tokens are configured. Replay goes through the worker's normal path (mapping → connector)
via the :class:`Replayer` seam, so a fixed mapping or a CRM that is back applies.
"""

from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime
from typing import Annotated, Any, Literal, Protocol

import orjson
from fastapi import APIRouter, Depends, HTTPException, Path, Query
from fastapi.security import HTTPBearer
from pydantic import BaseModel

from wa_bridge.auth import Principal, Role, TokenBook
from wa_bridge.ops.dead_letters import discard
from wa_bridge.ops.masking import mask_event, mask_text
from wa_bridge.receiver.guard import bearer_guard
from wa_bridge.store.api import DeadLetter, DeadLetterFilter, DeadLetterStatus, Store

__all__ = ["ReplayOutcome", "Replayer", "build_admin_router"]


class ReplayOutcome(BaseModel):
    id: int
    result: Literal["replayed", "failed", "would_replay", "skipped", "not_found"]
    error: str | None = None


class Replayer(Protocol):
    """Replays dead letters through the worker pipeline (implemented in wa_bridge.worker).

    Writes one audit row per dead letter named (by ``actor`` with ``role``).
    """

    async def replay(
        self, ids: Sequence[int], *, dry_run: bool, actor: str, role: Role
    ) -> list[ReplayOutcome]: ...


class DeadLetterSummary(BaseModel):
    id: int
    event_id: str
    event_type: str
    error_class: str
    error_message: str
    crm_error: str | None
    attempts: int
    first_failed_at: datetime
    last_failed_at: datetime
    status: DeadLetterStatus


class DeadLetterDetail(DeadLetterSummary):
    errors: list[str]
    event: str  # the canonical event JSON as consumed


def _event(letter: DeadLetter) -> Any:
    try:
        return orjson.loads(letter.payload)
    except orjson.JSONDecodeError:
        return None


def _summary(letter: DeadLetter, who: Principal | None = None) -> DeadLetterSummary:
    """``letter`` as ``who`` may see it: a viewer reads the CRM's message masked (it may
    quote the person's name or number), operators as stored."""
    summary = DeadLetterSummary.model_validate(letter, from_attributes=True)
    if who is not None and not who.may("operator") and summary.crm_error:
        summary.crm_error = mask_text(summary.crm_error, _event(letter))
    return summary


_BEARER = HTTPBearer(auto_error=False, description="role:token from WA_BRIDGE_ADMIN_TOKENS")


def _require(tokens: TokenBook, role: Role) -> Callable[..., Awaitable[Principal]]:
    return bearer_guard(tokens, role, _BEARER, refused=f"this action needs the {role} role")


# Ids are BIGINT: a larger one is a 422, not a database overflow (a 500).
DeadLetterId = Annotated[int, Path(ge=1, le=2**63 - 1)]
# Answers every admin route may give besides its own (documented in openapi.yaml).
_AUTH_ANSWERS: dict[int | str, dict[str, object]] = {
    401: {"description": "No bearer token, or an unknown one"},
    403: {"description": "The token's role may not do this"},
}
_NOT_FOUND: dict[int | str, dict[str, object]] = {404: {"description": "No such dead letter"}}


def build_admin_router(
    *,
    tokens: TokenBook,
    get_store: Callable[[], Awaitable[Store]],
    get_replayer: Callable[[], Replayer | None],
) -> APIRouter:
    """Routes under /admin. Each handler needs a bearer token of at least the given role."""
    router = APIRouter(prefix="/admin", tags=["admin"], responses=_AUTH_ANSWERS)

    viewer = Annotated[Principal, Depends(_require(tokens, "viewer"))]
    operator = Annotated[Principal, Depends(_require(tokens, "operator"))]

    async def audit(who: Principal, action: str, target: str, detail: str = "") -> None:
        await (await get_store()).record_audit(
            actor=who.actor, role=who.role, action=action, target=target, detail=detail
        )

    @router.get("/dead-letters", response_model=list[DeadLetterSummary])
    async def list_dead_letters(
        who: viewer,
        status: DeadLetterStatus | None = "open",
        error_class: str | None = None,
        event_type: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    ) -> list[DeadLetterSummary]:
        flt = DeadLetterFilter(
            status=status,
            error_class=error_class,
            event_type=event_type,
            since=since,
            until=until,
            limit=limit,
        )
        letters = await (await get_store()).list_dead_letters(flt)
        await audit(who, "dlq.list", "dead_letters", f"{len(letters)} listed")
        return [_summary(letter, who) for letter in letters]

    @router.get(
        "/dead-letters/{dead_letter_id}", response_model=DeadLetterDetail, responses=_NOT_FOUND
    )
    async def show_dead_letter(dead_letter_id: DeadLetterId, who: viewer) -> DeadLetterDetail:
        letter = await (await get_store()).get_dead_letter(dead_letter_id)
        if letter is None:
            raise HTTPException(status_code=404, detail=f"no dead letter {dead_letter_id}")
        await audit(who, "dlq.show", f"dead_letter:{dead_letter_id}")
        event = letter.payload.decode("utf-8", errors="replace")
        if not who.may("operator"):  # a viewer reads the event masked, as in the console
            event = orjson.dumps(mask_event(_event(letter))).decode()
        return DeadLetterDetail(
            **_summary(letter, who).model_dump(), errors=list(letter.errors), event=event
        )

    @router.post(
        "/dead-letters/{dead_letter_id}/replay",
        response_model=ReplayOutcome,
        responses={**_NOT_FOUND, 503: {"description": "Replay is not available here"}},
    )
    async def replay_dead_letter(
        dead_letter_id: DeadLetterId, who: operator, dry_run: bool = False
    ) -> ReplayOutcome:
        replayer = get_replayer()
        if replayer is None:
            raise HTTPException(status_code=503, detail="replay needs the worker pipeline")
        [outcome] = await replayer.replay(
            [dead_letter_id], dry_run=dry_run, actor=who.actor, role=who.role
        )  # audited by the replayer
        if outcome.result == "not_found":
            raise HTTPException(status_code=404, detail=f"no dead letter {dead_letter_id}")
        return outcome

    @router.post(
        "/dead-letters/{dead_letter_id}/discard",
        response_model=DeadLetterSummary,
        responses=_NOT_FOUND,
    )
    async def discard_dead_letter(dead_letter_id: DeadLetterId, who: operator) -> DeadLetterSummary:
        store = await get_store()
        done = await discard(store, [dead_letter_id], actor=who.actor, role=who.role)
        if done[dead_letter_id] == "not_found":
            raise HTTPException(status_code=404, detail=f"no dead letter {dead_letter_id}")
        updated = await store.get_dead_letter(dead_letter_id)
        assert updated is not None  # just read it; deletes are not an API operation
        return _summary(updated)

    return router

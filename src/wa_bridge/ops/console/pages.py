"""The console's pages under ``/admin``: sign-in, dead letters, one letter (preview,
replay, discard), trace, live figures, audit log. Server-rendered (Jinja2, autoescaped),
no scripts; every POST needs the session's CSRF token and a same-origin request.

Viewers read; operators also replay and discard. Phones are shown masked, and a
viewer sees a dead letter's event with personal data masked. Every read of a letter, a
trace search, a sign-in and every action is written to the audit log.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Final, Literal, Protocol, cast
from urllib.parse import parse_qs, urlencode, urlsplit

import orjson
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from jinja2 import Environment, FileSystemLoader, select_autoescape

from wa_bridge.auth import Role, TokenBook
from wa_bridge.clock import parse_iso_time
from wa_bridge.errors import ConfigError
from wa_bridge.ops.console.session import COOKIE, Session, SessionSigner, csrf_ok
from wa_bridge.ops.dead_letters import Preview, discard, preview
from wa_bridge.ops.masking import mask_event, mask_phone, mask_text
from wa_bridge.ops.trace import trace
from wa_bridge.store.api import DeadLetterFilter, DeadLetterStatus, Store
from wa_bridge.store.audit import AuditFilter

__all__ = ["ConsoleBackend", "build_console_router"]

TEMPLATES: Final = Path(__file__).resolve().parent / "templates"
_STATUSES: Final = ("open", "replayed", "discarded")


class ConsoleBackend(Protocol):
    """What the pages stand on (ops.backend.AdminBackend)."""

    async def store(self) -> Store: ...

    def mapper(self) -> Any: ...

    async def replay(
        self, ids: list[int], *, dry_run: bool, actor: str, role: Role
    ) -> list[Any]: ...


def _environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(TEMPLATES),
        autoescape=select_autoescape(["html"]),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["masked"] = lambda v: mask_phone(str(v)) if v else ""
    env.filters["when"] = lambda v: f"{v:%Y-%m-%d %H:%M:%S}" if v else "—"
    return env


class _Console:
    """The pages' handlers (methods) over one backend, token book and session signer."""

    def __init__(
        self,
        *,
        tokens: TokenBook,
        backend: ConsoleBackend,
        signer: SessionSigner,
        secure_cookie: Literal["auto", "always", "never"],
        clock: Callable[[], float],
    ) -> None:
        self.env = _environment()
        self.tokens = tokens
        self.backend = backend
        self.signer = signer
        self.secure_cookie = secure_cookie
        self.clock = clock

    def page(
        self, request: Request, name: str, session: Session | None, **values: Any
    ) -> HTMLResponse:
        body = self.env.get_template(name).render(
            session=session,
            path=request.url.path,
            notice=request.query_params.get("notice"),
            **values,
        )
        return HTMLResponse(body, headers=_SECURITY_HEADERS)

    def session_of(self, request: Request) -> Session | None:
        return self.signer.check(request.cookies.get(COOKIE), now=self.clock())

    def to_sign_in(self, request: Request) -> RedirectResponse:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return RedirectResponse("/admin/sign-in?" + urlencode({"next": target}), status_code=303)

    async def form(self, request: Request) -> dict[str, str]:
        raw = parse_qs((await request.body()).decode("utf-8", "replace"), keep_blank_values=True)
        return {k: v[0] for k, v in raw.items()}

    def same_origin(self, request: Request) -> bool:
        origin = request.headers.get("origin") or request.headers.get("referer")
        if not origin:
            return True  # old clients send neither; SameSite=Strict and the token still hold
        return urlsplit(origin).netloc == request.headers.get("host", request.url.netloc)

    async def audit(self, session: Session, action: str, target: str, detail: str = "") -> None:
        await (await self.backend.store()).record_audit(
            actor=session.actor, role=session.role, action=action, target=target, detail=detail
        )

    async def checked_post(
        self, request: Request, *, operator_only: str | None = None
    ) -> tuple[Session, dict[str, str]] | Response:
        """A POST's session and form values, or the answer refusing it: no session (sign
        in), a stale or foreign form, or a viewer doing what ``operator_only`` names."""
        session = self.session_of(request)
        if session is None:
            return self.to_sign_in(request)
        values = await self.form(request)
        if not self.same_origin(request) or not csrf_ok(session, values.get("csrf")):
            return HTMLResponse("refused: stale or foreign form", status_code=403)
        if operator_only is not None and not session.may_act:
            return HTMLResponse(f"{operator_only} needs the operator role", status_code=403)
        return session, values

    async def home(self, request: Request) -> Response:
        return RedirectResponse("/admin/letters", status_code=303)

    async def sign_in_form(self, request: Request, next: str = "/admin/letters") -> Response:
        return self.page(request, "sign_in.html", None, next=_local(next), error=None)

    async def sign_in(self, request: Request) -> Response:
        values = await self.form(request)
        target = _local(values.get("next", "/admin/letters"))
        principal = (
            self.tokens.lookup(values.get("token", "")) if self.same_origin(request) else None
        )
        if principal is None or principal.role not in ("viewer", "operator"):
            error = "That token is not a viewer or operator token."
            refused = self.page(request, "sign_in.html", None, next=target, error=error)
            refused.status_code = 401
            return refused
        cookie, session = self.signer.issue(principal, now=self.clock())
        await self.audit(session, "console.sign_in", "console")
        response = RedirectResponse(target, status_code=303)
        secure = self.secure_cookie == "always" or (
            self.secure_cookie == "auto" and request.url.scheme == "https"
        )
        response.set_cookie(
            COOKIE,
            cookie,
            max_age=self.signer.ttl_s,
            path="/admin",
            secure=secure,
            httponly=True,
            samesite="strict",
        )
        return response

    async def sign_out(self, request: Request) -> Response:
        checked = await self.checked_post(request)
        if isinstance(checked, Response):
            return checked
        session, _ = checked
        await self.audit(session, "console.sign_out", "console")
        response = RedirectResponse("/admin/sign-in", status_code=303)
        response.delete_cookie(COOKIE, path="/admin")
        return response

    async def letters(
        self,
        request: Request,
        status: str = "open",
        error_class: str = "",
        event_type: str = "",
        contact: str = "",
        since: str = "",
        until: str = "",
    ) -> Response:
        session = self.session_of(request)
        if session is None:
            return self.to_sign_in(request)
        chosen = cast(DeadLetterStatus, status) if status in _STATUSES else None
        flt = DeadLetterFilter(
            status=chosen,
            error_class=error_class or None,
            event_type=event_type or None,
            contact_key=_contact_key(contact),
            since=parse_iso_time(since),
            until=parse_iso_time(until),
            limit=200,
        )
        rows = await (await self.backend.store()).list_dead_letters(flt)
        await self.audit(session, "dlq.list", "dead_letters", f"{len(rows)} listed")
        filters = {
            "status": status,
            "error_class": error_class,
            "event_type": event_type,
            "contact": contact,
            "since": since,
            "until": until,
        }
        return self.page(request, "letters.html", session, letters=rows, filters=filters)

    async def letter(self, request: Request, dead_letter_id: int) -> Response:
        session = self.session_of(request)
        if session is None:
            return self.to_sign_in(request)
        store = await self.backend.store()
        found = await store.get_dead_letter(dead_letter_id)
        if found is None:
            return self.page(request, "missing.html", session, what=f"dead letter {dead_letter_id}")
        await self.audit(session, "dlq.show", f"dead_letter:{dead_letter_id}", "console")
        try:
            event = orjson.loads(found.payload)
        except orjson.JSONDecodeError:
            event = {"unreadable": True}
        shown = event if session.may_act else mask_event(event)
        if not session.may_act and found.crm_error:  # it may quote the person's data
            found = replace(found, crm_error=mask_text(found.crm_error, event))
        try:
            would = preview(found, self.backend.mapper())
        except ConfigError as exc:
            would = Preview([], f"the mapping does not load: {exc}")
        if not session.may_act:
            would = Preview([mask_event(op) for op in would.operations], would.error)
        return self.page(
            request,
            "letter.html",
            session,
            letter=found,
            event=orjson.dumps(shown, option=orjson.OPT_INDENT_2).decode(),
            preview=would,
            preview_json=orjson.dumps(would.operations, option=orjson.OPT_INDENT_2).decode(),
        )

    async def replay(self, request: Request, dead_letter_id: int) -> Response:
        checked = await self.checked_post(request, operator_only="replay")
        if isinstance(checked, Response):
            return checked
        session, _ = checked
        [outcome] = await self.backend.replay(
            [dead_letter_id], dry_run=False, actor=session.actor, role=session.role
        )  # audited by the replay path
        notice = f"{outcome.result}" + (f": {outcome.error}" if outcome.error else "")
        return RedirectResponse(
            f"/admin/letters/{dead_letter_id}?" + urlencode({"notice": notice}), status_code=303
        )

    async def discard_letter(self, request: Request, dead_letter_id: int) -> Response:
        checked = await self.checked_post(request, operator_only="discard")
        if isinstance(checked, Response):
            return checked
        session, values = checked
        done = await discard(
            await self.backend.store(),
            [dead_letter_id],
            actor=session.actor,
            role=session.role,
            reason=values.get("reason", "")[:300],
        )
        return RedirectResponse(
            f"/admin/letters/{dead_letter_id}?" + urlencode({"notice": done[dead_letter_id]}),
            status_code=303,
        )

    async def trace_page(self, request: Request, q: str = "") -> Response:
        session = self.session_of(request)
        if session is None:
            return self.to_sign_in(request)
        report = None
        if q.strip():
            report = await trace(await self.backend.store(), q)
            await self.audit(session, "trace.search", report.query_kind, report.shown_as)
        return self.page(request, "trace.html", session, report=report, query=_shown_query(q))

    async def figures(self, request: Request) -> Response:
        session = self.session_of(request)
        if session is None:
            return self.to_sign_in(request)
        store = await self.backend.store()
        ops = store.ops
        workers = await ops.list_heartbeats()
        since = datetime.now(UTC) - timedelta(days=1)
        return self.page(
            request,
            "figures.html",
            session,
            workers=workers,
            per_minute=await ops.events_per_minute(15),
            open_letters=await ops.count_open_dead_letters(),
            incidents=await ops.list_incidents(since=since, limit=20),
            signals=await ops.latest_signals(),
            lag=_lag(workers),
            crm=_crm(workers),
        )

    async def audit_page(
        self, request: Request, actor: str = "", action: str = "", target: str = ""
    ) -> Response:
        session = self.session_of(request)
        if session is None:
            return self.to_sign_in(request)
        rows = await (await self.backend.store()).ops.list_audit(
            AuditFilter(
                actor=actor or None,
                action=action or None,
                targets=[target] if target else [],
                limit=200,
            )
        )
        filters = {"actor": actor, "action": action, "target": target}
        return self.page(request, "audit.html", session, rows=rows, filters=filters)


def build_console_router(
    *,
    tokens: TokenBook,
    backend: ConsoleBackend,
    session_key: bytes | None,
    session_ttl_s: int,
    secure_cookie: Literal["auto", "always", "never"],
    clock: Callable[[], float] = time.time,
) -> APIRouter:
    """The console's routes under /admin (not in the OpenAPI document: they are pages)."""
    console = _Console(
        tokens=tokens,
        backend=backend,
        signer=SessionSigner(session_key, ttl_s=session_ttl_s),
        secure_cookie=secure_cookie,
        clock=clock,
    )
    router = APIRouter(prefix="/admin", include_in_schema=False)
    routes: list[tuple[str, str, Callable[..., Any]]] = [
        ("", "GET", console.home),
        ("/sign-in", "GET", console.sign_in_form),
        ("/sign-in", "POST", console.sign_in),
        ("/sign-out", "POST", console.sign_out),
        ("/letters", "GET", console.letters),
        ("/letters/{dead_letter_id}", "GET", console.letter),
        ("/letters/{dead_letter_id}/replay", "POST", console.replay),
        ("/letters/{dead_letter_id}/discard", "POST", console.discard_letter),
        ("/trace", "GET", console.trace_page),
        ("/figures", "GET", console.figures),
        ("/audit", "GET", console.audit_page),
    ]
    for path, method, handler in routes:
        router.add_api_route(path, handler, methods=[method], response_class=HTMLResponse)
    return router


_SECURITY_HEADERS: Final = {
    "Content-Security-Policy": "default-src 'none'; style-src 'self' 'unsafe-inline'; "
    "form-action 'self'; frame-ancestors 'none'; img-src 'self'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


def _local(target: str) -> str:
    """Only redirect inside the console (no open redirect)."""
    return target if target.startswith("/admin") and "//" not in target else "/admin/letters"


def _contact_key(text: str) -> str | None:
    """A contact filter as typed: a phone becomes its E.164 key."""
    from wa_bridge.ops.trace import classify

    if not text.strip():
        return None
    kind, value = classify(text)
    return value if kind in ("phone", "bsuid") else text.strip()


def _shown_query(q: str) -> str:
    from wa_bridge.ops.trace import classify

    kind, value = classify(q) if q.strip() else ("message", "")
    return mask_phone(value) if kind in ("phone", "bsuid") else q


def _lag(workers: list[Any]) -> list[tuple[str, int, str]]:
    rows = []
    for w in workers:
        for partition, behind in sorted(w.figures.get("lag", {}).items()):
            rows.append((partition, int(behind), w.worker_id))
    return rows


def _crm(workers: list[Any]) -> list[dict[str, Any]]:
    totals: dict[str, dict[str, float]] = {}
    quota: dict[str, float] = {}
    for w in workers:
        for connector, figures in w.figures.get("crm", {}).items():
            per = totals.setdefault(connector, {})
            for key, value in figures.items():
                per[key] = per.get(key, 0.0) + float(value)
        for name, left in w.figures.get("quota", {}).items():
            quota[name] = min(quota.get(name, float(left)), float(left))
    out = []
    for connector, per in sorted(totals.items()):
        count = per.get("seconds_count", 0.0)
        mean_ms = 1000 * per.get("seconds_sum", 0.0) / count if count else None
        out.append(
            {
                "connector": connector,
                "requests": int(per.get("requests", 0)),
                "failed": int(per.get("failed", 0)),
                "mean_ms": mean_ms,
            }
        )
    if quota:
        out.append({"connector": "quota left", "quota": quota})
    return out

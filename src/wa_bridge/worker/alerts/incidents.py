"""From findings to incidents: one notification when an incident opens, one when it ends.

Every worker evaluates the rules; the database decides who notifies (see
``wa_bridge.store.alerts``): the first worker to see a key firing opens the incident and
owns it, refreshes it while it fires, and resolves it when its finding clears. A worker
takes over an incident whose owner has not refreshed it for ``stale_after_s``; one that
nobody reports any more (its series is gone) is resolved once stale.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import KW_ONLY, dataclass
from datetime import timedelta

from wa_bridge.clock import SYSTEM_CLOCK, Clock
from wa_bridge.log import get_logger
from wa_bridge.metrics import ALERTS_FIRING
from wa_bridge.store.ops import OpsStore
from wa_bridge.worker.alerts.evaluate import Finding
from wa_bridge.worker.alerts.notify import Notifier, alert_text

__all__ = ["Alerter"]

log = get_logger("worker.alerts")


@dataclass(eq=False, repr=False)
class Alerter:
    """Turns each tick's findings into incident transitions and notifications."""

    ops: OpsStore
    notifier: Notifier | None
    _: KW_ONLY
    owner: str
    stale_after_s: float
    clock: Clock = SYSTEM_CLOCK

    async def handle(self, findings: Sequence[Finding]) -> None:
        """Open, refresh or resolve incidents for ``findings``; then post what is unposted.

        May raise StoreUnavailable (the next tick does it again).
        """
        stale_before = self.clock.now() - timedelta(seconds=self.stale_after_s)
        firing = {
            i.key: i for i in await self.ops.list_incidents(limit=10_000) if i.state == "firing"
        }
        per_rule: dict[str, int] = {}
        reported: set[str] = set()
        for finding in findings:
            key = finding.key
            reported.add(key)
            per_rule.setdefault(finding.rule.name, 0)
            if finding.firing:
                per_rule[finding.rule.name] += 1
                await self._fire(finding, known=key in firing)
            elif key in firing:
                await self.ops.resolve_incident(
                    key=key, owner=self.owner, stale_before=stale_before
                )
        for key, incident in firing.items():
            if key not in reported and incident.seen_at < stale_before:
                await self.ops.resolve_incident(
                    key=key, owner=self.owner, stale_before=stale_before
                )
        for rule, count in per_rule.items():
            ALERTS_FIRING.labels(alert=rule).set(count)
        await self._notify()

    async def _fire(self, finding: Finding, *, known: bool) -> None:
        summary = finding.summary()
        if not known:
            opened = await self.ops.open_incident(
                key=finding.key,
                rule=finding.rule.name,
                labels=finding.labels,
                summary=summary,
                severity=finding.rule.severity,
                owner=self.owner,
            )
            if opened:
                log.warning("alert_firing", alert=finding.rule.name, key=finding.key)
                return
        await self.ops.refresh_incident(
            key=finding.key,
            summary=summary,
            owner=self.owner,
            stale_before=self.clock.now() - timedelta(seconds=self.stale_after_s),
        )

    async def _notify(self) -> None:
        for incident in await self.ops.list_incidents(owner=self.owner, unnotified=True):
            if incident.state == "resolved":
                log.info("alert_resolved", alert=incident.rule, key=incident.key)
            text = alert_text(
                rule=incident.rule,
                severity=incident.severity,
                state=incident.state,
                summary=incident.summary,
            )
            if self.notifier is not None and not await self.notifier.post(text):
                continue  # tried again next tick
            await self.ops.mark_notified(key=incident.key, state=incident.state)

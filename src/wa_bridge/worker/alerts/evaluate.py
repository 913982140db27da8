"""Evaluate alert rules on this process's own metrics, sampled over time.

:class:`Evaluator` keeps the samples each rule needs (up to its longest window) and
answers, per rule and label group, whether it fires now (after ``for_s`` of firing).
Counters that went down (a restart) count from zero, as Prometheus's ``increase`` does.
"""

from __future__ import annotations

import math
import re
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Final

from wa_bridge.metrics import QUALITY_LEVELS
from wa_bridge.worker.alerts.rules import AlertRule

__all__ = ["Evaluator", "Finding", "Sampler", "incident_key"]

Labels = tuple[tuple[str, str], ...]
Series = dict[str, list[tuple[dict[str, str], float]]]
Sampler = Callable[[Iterable[str]], Series]  # wa_bridge.metrics.sample_values
_QUALITY_NAMES: Final = {v: k for k, v in QUALITY_LEVELS.items()}


@dataclass(frozen=True, slots=True)
class Finding:
    """One rule's verdict for one label group."""

    rule: AlertRule
    labels: dict[str, str]
    value: float  # what the rule compares (the increase, the ratio, ...)
    now: float  # the metric's current aggregated value
    firing: bool

    @property
    def key(self) -> str:
        return incident_key(self.rule.name, self.labels)

    def summary(self) -> str:
        fields: dict[str, object] = {**self.labels, "value": self.value, "now": self.now}
        fields["quality"] = _QUALITY_NAMES.get(int(self.now), "UNKNOWN")
        try:
            return self.rule.summary.format(**fields)
        except (KeyError, ValueError, IndexError):
            return f"{self.rule.name}: {self.value:g}"


def incident_key(rule: str, labels: Mapping[str, str]) -> str:
    inner = ",".join(f"{k}={v}" for k, v in sorted(labels.items()))
    return f"{rule}{{{inner}}}"[:300]


def _names(rule: AlertRule) -> list[str]:
    """The sample names a rule reads (a histogram by its buckets)."""
    return [rule.metric + "_bucket"] if rule.kind == "quantile" else [rule.metric]


def _matches(labels: Mapping[str, str], match: Mapping[str, str]) -> bool:
    return all(re.fullmatch(rx, labels.get(name, "")) for name, rx in match.items())


class Evaluator:
    """Feed it samples with :meth:`observe` (monotonic seconds); ask :meth:`evaluate`."""

    def __init__(self, rules: Iterable[AlertRule]) -> None:
        self.rules = tuple(rules)
        self._keep_s = max((r.history_s for r in self.rules), default=0.0)
        self._names = sorted({n for r in self.rules for n in _names(r)})
        self._history: deque[tuple[float, Series]] = deque()
        self._since: dict[str, float] = {}  # incident key → when it started firing

    @property
    def metric_names(self) -> list[str]:
        return list(self._names)

    def observe(self, at_s: float, sampler: Sampler) -> None:
        self._history.append((at_s, sampler(self._names)))
        while len(self._history) > 2 and self._history[1][0] <= at_s - self._keep_s:
            self._history.popleft()

    def evaluate(self) -> list[Finding]:
        """A finding per rule and label group that has data; ``firing`` honours ``for_s``."""
        if not self._history:
            return []
        now_s = self._history[-1][0]
        findings: list[Finding] = []
        for rule in self.rules:
            for labels, value, current in self._values(rule):
                key = incident_key(rule.name, dict(labels))
                hot = not math.isnan(value) and rule.fires(value)
                if hot:
                    started = self._since.setdefault(key, now_s)
                    hot = now_s - started >= rule.for_s
                else:
                    self._since.pop(key, None)
                findings.append(Finding(rule, dict(labels), value, current, hot))
        return findings

    # --- per kind -------------------------------------------------------------------------

    def _values(self, rule: AlertRule) -> list[tuple[Labels, float, float]]:
        now_s, latest = self._history[-1]
        current = self._group(rule, latest, rule.match)
        if rule.kind == "value":
            return [(k, v, v) for k, v in current.items()]
        if rule.kind == "quantile":
            return self._quantile(rule)
        past = self._at(now_s - rule.window_s)
        if rule.kind == "drop":
            highest = self._highest(rule, now_s - rule.window_s)
            return [(k, highest.get(k, v) - v, v) for k, v in current.items()]
        grown = self._increase(rule, past, latest, rule.match)
        if rule.kind == "increase":
            return [(k, v, current.get(k, 0.0)) for k, v in grown.items()]
        if rule.kind == "ratio":
            totals = self._increase(rule, past, latest, rule.total_match)
            return [
                (k, grown.get(k, 0.0) / total, current.get(k, 0.0))
                for k, total in totals.items()
                if total > 0
            ]
        assert rule.baseline_s is not None  # spike (checked by the rule model)
        base = self._increase(rule, self._at(now_s - rule.baseline_s), latest, rule.match)
        out = []
        for k, recent in grown.items():
            span_w = min(rule.window_s, now_s - past[0]) or rule.window_s
            rate_w = recent / span_w
            baseline = base.get(k, 0.0) / rule.baseline_s
            if rate_w > rule.min_rate and baseline > 0:
                out.append((k, rate_w / baseline, rate_w))
        return out

    def _at(self, when_s: float) -> tuple[float, Series]:
        """The oldest sample at or after ``when_s`` (the oldest we have, if none before)."""
        for sample in self._history:
            if sample[0] >= when_s:
                return sample
        return self._history[-1]

    def _group(
        self, rule: AlertRule, series: Series, match: Mapping[str, str]
    ) -> dict[Labels, float]:
        out: dict[Labels, float] = {}
        for labels, value in series.get(rule.metric, ()):
            if not _matches(labels, match):
                continue
            key: Labels = tuple((name, labels.get(name, "")) for name in rule.by)
            if key not in out:
                out[key] = value
            elif rule.aggregate == "sum":
                out[key] += value
            elif rule.aggregate == "max":
                out[key] = max(out[key], value)
            else:
                out[key] = min(out[key], value)
        return out

    def _increase(
        self, rule: AlertRule, past: tuple[float, Series], latest: Series, match: Mapping[str, str]
    ) -> dict[Labels, float]:
        before: dict[tuple[tuple[str, str], ...], float] = {
            tuple(sorted(labels.items())): value for labels, value in past[1].get(rule.metric, ())
        }
        out: dict[Labels, float] = {}
        for labels, value in latest.get(rule.metric, ()):
            if not _matches(labels, match):
                continue
            old = before.get(tuple(sorted(labels.items())), 0.0)
            if rule.metric.endswith("_total"):  # a counter: a fall is a restart from zero
                grown = value - old if value >= old else value
            else:  # a gauge: its change, up or down
                grown = value - old
            key: Labels = tuple((name, labels.get(name, "")) for name in rule.by)
            out[key] = out.get(key, 0.0) + grown
        return out

    def _highest(self, rule: AlertRule, since_s: float) -> dict[Labels, float]:
        out: dict[Labels, float] = {}
        for at_s, series in self._history:
            if at_s < since_s:
                continue
            for key, value in self._group(rule, series, rule.match).items():
                out[key] = max(out.get(key, value), value)
        return out

    def _quantile(self, rule: AlertRule) -> list[tuple[Labels, float, float]]:
        now_s, latest = self._history[-1]
        past = self._at(now_s - rule.window_s)
        name = rule.metric + "_bucket"
        before = {tuple(sorted(labels.items())): value for labels, value in past[1].get(name, ())}
        buckets: dict[Labels, dict[float, float]] = {}
        for labels, value in latest.get(name, ()):
            old = before.get(tuple(sorted(labels.items())), 0.0)
            key: Labels = tuple((n, labels.get(n, "")) for n in rule.by)
            le = float(labels.get("le", "inf"))
            per = buckets.setdefault(key, {})
            per[le] = per.get(le, 0.0) + (value - old if value >= old else value)
        out = []
        for key, per in buckets.items():
            q = _histogram_quantile(rule.quantile, per)
            if not math.isnan(q):
                out.append((key, q, q))
        return out


def _histogram_quantile(q: float, buckets: Mapping[float, float]) -> float:
    """Prometheus's histogram_quantile on cumulative bucket counts (linear in a bucket)."""
    bounds = sorted(buckets)
    if not bounds or buckets[bounds[-1]] <= 0:
        return math.nan
    total = buckets[bounds[-1]]
    rank = q * total
    lower, below = 0.0, 0.0
    for upper in bounds:
        count = buckets[upper]
        if count >= rank:
            if math.isinf(upper):
                return lower
            inside = count - below
            return lower + (upper - lower) * ((rank - below) / inside if inside else 0.0)
        lower, below = upper, count
    return bounds[-2] if len(bounds) > 1 else math.nan

"""The built-in rules as Prometheus alerting rules: the same conditions, thresholds and
windows, for teams that run Prometheus and Alertmanager.

``python -m wa_bridge.worker.alerts.promql > deploy/prometheus/alerts.yml`` writes the file;
``tests/ops/test_alert_rules.py`` fails when it differs from the rules.
"""

from __future__ import annotations

import io
import re
import sys
from collections.abc import Mapping
from typing import Any

from ruamel.yaml import YAML

from wa_bridge.worker.alerts.rules import AlertRule, RuleSet, load_rules

__all__ = ["duration", "expression", "prometheus_rules", "prometheus_yaml"]


def duration(seconds: float) -> str:
    """600 → ``10m``, 86400 → ``1d`` (Prometheus durations)."""
    whole = int(seconds)
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if whole >= size and whole % size == 0:
            return f"{whole // size}{unit}"
    return f"{whole}s"


def _selector(metric: str, match: Mapping[str, str]) -> str:
    if not match:
        return metric
    inner = ",".join(f'{k}=~"{v}"' for k, v in sorted(match.items()))
    return f"{metric}{{{inner}}}"


def _by(rule: AlertRule, *extra: str) -> str:
    labels = [*extra, *rule.by]
    return f" by ({', '.join(labels)})" if labels else ""


def _number(value: float) -> str:
    return f"{value:g}"


def expression(rule: AlertRule) -> str:
    """The PromQL condition of ``rule``."""
    sel = _selector(rule.metric, rule.match)
    w = duration(rule.window_s)
    agg = f"{rule.aggregate}{_by(rule)}"
    cmp = f"{rule.op} {_number(rule.threshold)}"
    if rule.kind == "value":
        base = f"{agg} ({sel})"
    elif rule.kind == "increase":
        fn = "increase" if rule.metric.endswith("_total") else "delta"
        base = f"{agg} ({fn}({sel}[{w}]))"
    elif rule.kind == "ratio":
        total = _selector(rule.metric, rule.total_match)
        base = f"(sum{_by(rule)} (increase({sel}[{w}])) / sum{_by(rule)} (increase({total}[{w}])))"
    elif rule.kind == "spike":
        assert rule.baseline_s is not None
        recent = f"sum{_by(rule)} (rate({sel}[{w}]))"
        baseline = f"sum{_by(rule)} (rate({sel}[{duration(rule.baseline_s)}]))"
        return f"({recent} / {baseline}) {cmp} and {recent} > {_number(rule.min_rate)}"
    elif rule.kind == "drop":
        base = f"({agg} (max_over_time({sel}[{w}])) - {agg} ({sel}))"
    else:
        bucket = _selector(rule.metric + "_bucket", rule.match)
        rate = f"sum{_by(rule, 'le')} (rate({bucket}[{w}]))"
        base = f"histogram_quantile({_number(rule.quantile)}, {rate})"
    condition = f"{base} {cmp}"
    if rule.floor is not None:
        condition += f" and {base} >= {_number(rule.floor)}"
    return condition


def _annotation(summary: str) -> str:
    """``{partition}`` → ``{{ $labels.partition }}``; numbers → ``{{ $value }}``."""

    def swap(found: re.Match[str]) -> str:
        name = found.group(1)
        if name in ("value", "now", "quality"):
            return "{{ $value }}"
        return "{{ $labels." + name + " }}"

    return re.sub(r"\{([a-z_]+)(?::[^}]*)?\}", swap, summary)


def prometheus_rules(rules: RuleSet) -> dict[str, Any]:
    group: list[dict[str, Any]] = []
    for rule in rules.rules:
        entry: dict[str, Any] = {"alert": rule.name, "expr": expression(rule)}
        if rule.for_s:
            entry["for"] = duration(rule.for_s)
        entry["labels"] = {"severity": rule.severity}
        entry["annotations"] = {"summary": _annotation(rule.summary)}
        group.append(entry)
    return {"groups": [{"name": "wa-bridge", "rules": group}]}


def prometheus_yaml(rules: RuleSet | None = None) -> str:
    yaml = YAML(typ="rt", pure=True)
    yaml.width = 4096
    yaml.default_flow_style = False
    out = io.StringIO()
    out.write(
        "# Generated from src/wa_bridge/worker/alerts/rules.yaml (the worker's built-in alerts):\n"
        "#   python -m wa_bridge.worker.alerts.promql > deploy/prometheus/alerts.yml\n"
    )
    yaml.dump(prometheus_rules(rules or load_rules()), out)
    return out.getvalue()


if __name__ == "__main__":
    sys.stdout.write(prometheus_yaml())

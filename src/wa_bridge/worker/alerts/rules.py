"""Built-in alert rules: the YAML file's shape, loaded and checked at start-up."""

from __future__ import annotations

from pathlib import Path
from typing import Final, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from ruamel.yaml import YAML
from ruamel.yaml.error import YAMLError

from wa_bridge.errors import ConfigError

__all__ = ["SHIPPED_RULES", "AlertRule", "RuleKind", "RuleSet", "load_rules"]

SHIPPED_RULES: Final = Path(__file__).resolve().parent / "rules.yaml"
RuleKind = Literal["value", "increase", "ratio", "spike", "drop", "quantile"]
Comparison = Literal[">", "<", ">=", "<="]


class AlertRule(BaseModel):
    """One condition over one metric of wa_bridge.metrics (see rules.yaml for the kinds)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=r"^[A-Za-z][A-Za-z0-9_]*$")
    summary: str
    severity: Literal["warning", "critical"] = "warning"
    kind: RuleKind
    metric: str = Field(pattern=r"^wa_bridge_[a-z0-9_]+$")
    match: dict[str, str] = Field(default_factory=dict)  # label → regex (whole value)
    total_match: dict[str, str] = Field(default_factory=dict)  # ratio: the denominator
    by: tuple[str, ...] = ()
    aggregate: Literal["sum", "max", "min"] = "sum"
    window_s: float = Field(default=300.0, gt=0)
    baseline_s: float | None = Field(default=None, gt=0)
    min_rate: float = Field(default=0.0, ge=0)
    quantile: float = Field(default=0.9, gt=0, lt=1)
    floor: float | None = None  # values under it never fire (0 = "unknown" quality)
    op: Comparison = ">"
    threshold: float
    for_s: float = Field(default=0.0, ge=0)

    @model_validator(mode="after")
    def _kind_needs(self) -> AlertRule:
        if self.kind == "spike" and (self.baseline_s is None or self.baseline_s <= self.window_s):
            raise ValueError(f"{self.name}: a spike rule needs baseline_s longer than window_s")
        return self

    def fires(self, value: float) -> bool:
        if self.floor is not None and value < self.floor:
            return False
        if self.op == ">":
            return value > self.threshold
        if self.op == "<":
            return value < self.threshold
        if self.op == ">=":
            return value >= self.threshold
        return value <= self.threshold

    @property
    def history_s(self) -> float:
        """How much history the rule reads."""
        if self.kind == "value":
            return 0.0
        return max(self.window_s, self.baseline_s or 0.0)


class RuleSet(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    rules: tuple[AlertRule, ...]


def load_rules(path: str | Path | None = None) -> RuleSet:
    """The rules at ``path`` (the shipped ones when None); raises ConfigError naming the
    file and the problem."""
    source = Path(path) if path else SHIPPED_RULES
    try:
        raw = YAML(typ="safe", pure=True).load(source.read_text(encoding="utf-8"))
    except (OSError, YAMLError) as exc:
        raise ConfigError(f"alert rules {source}: cannot read: {exc}") from exc
    try:
        rules = RuleSet.model_validate(raw)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()
        )
        raise ConfigError(f"alert rules {source}: {problems}") from exc
    names = [r.name for r in rules.rules]
    if len(set(names)) != len(names):
        raise ConfigError(f"alert rules {source}: rule names must be unique")
    return rules

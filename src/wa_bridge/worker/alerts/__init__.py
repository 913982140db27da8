"""Built-in alerts for teams without Alertmanager: rules (YAML), evaluated by each worker on
its own figures, one notification per incident (shared state in the database) and one
when it resolves, posted to a Slack-compatible webhook.

- :mod:`.rules`: the rule file's shape (``rules.yaml`` is shipped);
- :mod:`.evaluate`: rules over sampled metrics;
- :mod:`.incidents`: dedup across workers and notification;
- :mod:`.notify`: the webhook;
- :mod:`.promql`: the same rules as Prometheus alerting rules (deploy/prometheus/alerts.yml).
"""

from wa_bridge.worker.alerts.evaluate import Evaluator, Finding
from wa_bridge.worker.alerts.incidents import Alerter
from wa_bridge.worker.alerts.notify import Notifier, WebhookNotifier, alert_text
from wa_bridge.worker.alerts.rules import SHIPPED_RULES, AlertRule, RuleSet, load_rules

__all__ = [
    "SHIPPED_RULES",
    "AlertRule",
    "Alerter",
    "Evaluator",
    "Finding",
    "Notifier",
    "RuleSet",
    "WebhookNotifier",
    "alert_text",
    "load_rules",
]

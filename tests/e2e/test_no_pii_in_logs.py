"""An event full of personal data goes through the receiver and the worker at DEBUG level;
none of that data appears in anything the process writes."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import structlog

from receiver._harness import running_receiver
from wa_bridge.bus.embedded import EmbeddedBroker
from wa_bridge.log import configure_logging
from wa_bridge.worker.runner import open_worker
from worker.sqlcrm import SAMPLES, sql_settings

pytestmark = [pytest.mark.kafka, pytest.mark.postgres]

# Personal data in tests/samples/meta/text_mx.json, and a rejected request's body.
PII = ("5550001234", "Renata", "Olvera", "cotizan", "9000000000000000001")


async def test_receiver_and_worker_log_no_personal_data(
    broker: EmbeddedBroker,
    topic_factory: Callable[[str], str],
    sql_crm_url: str,
    capfd: pytest.CaptureFixture[str],
) -> None:
    configure_logging(fmt="json", level="DEBUG")
    try:
        topic = topic_factory("pii")
        body = (SAMPLES / "text_mx.json").read_bytes()
        async with running_receiver(broker.bootstrap, topic) as receiver:
            assert (await receiver.post(body)).status_code == 200
            assert (await receiver.post(body, signature="sha256=00")).status_code == 401
            assert (await receiver.post(body[:-5])).status_code == 400
        settings = sql_settings(broker.bootstrap, topic, sql_crm_url, kafka_partitions=3)
        async with open_worker(settings) as worker:
            stats = await worker.run_until_idle()
        assert stats.delivered == 1
        out, err = capfd.readouterr()
    finally:
        structlog.reset_defaults()
        configure_logging()
    logged = out + err
    assert "event_delivered" in logged  # the worker did log its per-event line (DEBUG)
    assert "batch_delivered" in logged
    leaked = [item for item in PII if item in logged]
    assert leaked == []

"""Topic administration: make sure the topics wa-bridge writes to exist, durably.

Called by the receiver at start-up and again whenever the broker seems to have lost the
topic (the embedded Tansu broker keeps everything in memory, so a restart empties it),
and by the worker for its retry and dead-letter topics.

Durability. The receiver answers Meta's 200 once Kafka acknowledged an event with
acks=all, which means "written to min.insync.replicas in-sync copies". On a cluster of
several brokers a topic with replication factor 1, or min.insync.replicas 1, lets that
acknowledgement mean one copy: one disk lost, acknowledged events lost. Topics created
here get a replication factor of min(3, brokers) and min.insync.replicas 2 unless the
settings say otherwise; :func:`describe_durability` reads what an existing topic really
has and :meth:`TopicDurability.problem` says what is wrong with it. A single-broker
cluster (``wa-bridge dev``, Tansu) has one copy by construction and passes.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from aiokafka.errors import KafkaError

from wa_bridge.bus.security import kafka_client_options
from wa_bridge.errors import BusUnavailable
from wa_bridge.settings import ENV_PREFIX, Settings

__all__ = [
    "DEFAULT_MIN_INSYNC_REPLICAS",
    "MAX_AUTO_REPLICATION_FACTOR",
    "TopicDurability",
    "describe_durability",
    "ensure_topics",
    "ensure_topics_for",
]

# Kafka protocol error codes that mean "nothing to do".
_NO_ERROR: Final = 0
_TOPIC_ALREADY_EXISTS: Final = 36
DEFAULT_TIMEOUT_S: Final = 10.0
# With no replication factor configured: one copy per broker, at most this many.
MAX_AUTO_REPLICATION_FACTOR: Final = 3
# With none configured, topics replicated at least twice get this min.insync.replicas.
DEFAULT_MIN_INSYNC_REPLICAS: Final = 2
_MIN_INSYNC: Final = "min.insync.replicas"


@dataclass(frozen=True, slots=True)
class TopicDurability:
    """What acks=all means on one topic: brokers, replication factor, min.insync.replicas.

    ``min_insync_replicas`` is None when the broker reports no such setting (Redpanda:
    acks=all waits for a Raft majority of the replicas).
    """

    topic: str
    brokers: int
    replication_factor: int
    min_insync_replicas: int | None

    @property
    def copies_per_ack(self) -> int:
        """The fewest copies an acks=all acknowledgement guarantees."""
        if self.min_insync_replicas is None:
            return self.replication_factor // 2 + 1
        return min(self.min_insync_replicas, self.replication_factor)

    def problem(self) -> str | None:
        """Why this topic cannot keep an acknowledged event safe, or None when it can."""
        t, rf, isr = self.topic, self.replication_factor, self.min_insync_replicas
        if isr is not None and isr > rf:
            return (
                f"topic {t!r}: min.insync.replicas {isr} exceeds its replication factor {rf},"
                " so every acks=all write fails; lower min.insync.replicas"
            )
        if self.brokers > 1 and self.copies_per_ack < 2:
            shown = "unset" if isr is None else str(isr)
            return (
                f"topic {t!r} on a {self.brokers}-broker cluster has replication factor {rf} "
                f"and min.insync.replicas {shown}: an acknowledged event may exist on one "
                "broker only. Give it replication factor 3 and min.insync.replicas 2 "
                f"(or set {ENV_PREFIX}KAFKA_DURABILITY_CHECK=warn to accept the risk)"
            )
        return None


async def ensure_topics(
    bootstrap: str,
    names: Iterable[str],
    partitions: int,
    *,
    replication_factor: int | None = None,
    min_insync_replicas: int | None = None,
    client_options: Mapping[str, Any] | None = None,
    timeout_s: float = DEFAULT_TIMEOUT_S,
) -> list[str]:
    """Create each topic of ``names`` that does not exist yet; return the ones created.

    Idempotent: topics that exist are left alone (partitions, replication and configs
    unchanged). ``replication_factor`` None: min(3, brokers); ``min_insync_replicas``
    None: 2 when the replication factor is at least 2, else the broker's default.
    ``client_options`` are the connection's security options
    (:func:`wa_bridge.bus.security.kafka_client_options`). Raises BusUnavailable when the
    broker cannot be reached or refuses within ``timeout_s``.
    """
    wanted = list(dict.fromkeys(names))
    if not wanted:
        return []
    async with _started_admin(bootstrap, client_options, timeout_s, "ensure topics") as admin:
        existing = set(await admin.list_topics())
        missing = [name for name in wanted if name not in existing]
        if not missing:
            return []
        if replication_factor is None:
            brokers = len((await admin.describe_cluster())["brokers"])
            replication_factor = max(1, min(MAX_AUTO_REPLICATION_FACTOR, brokers))
        configs = _topic_configs(replication_factor, min_insync_replicas)
        response = await admin.create_topics(
            [
                NewTopic(
                    name,
                    num_partitions=partitions,
                    replication_factor=replication_factor,
                    topic_configs=configs,
                )
                for name in missing
            ]
        )
    return _created(response.topic_errors)


async def ensure_topics_for(
    settings: Settings,
    names: Iterable[str],
    *,
    client_options: Mapping[str, Any] | None = None,
    timeout_s: float = DEFAULT_TIMEOUT_S,
) -> list[str]:
    """:func:`ensure_topics` with the cluster, credentials and topic shape of ``settings``.

    ``client_options`` default to :func:`~wa_bridge.bus.security.kafka_client_options`
    of ``settings`` (pass them when already built, to share an OAuth token).
    """
    if client_options is None:
        client_options = kafka_client_options(settings)
    return await ensure_topics(
        settings.kafka_bootstrap,
        names,
        settings.kafka_partitions,
        replication_factor=settings.kafka_replication_factor,
        min_insync_replicas=settings.kafka_min_insync_replicas,
        client_options=client_options,
        timeout_s=timeout_s,
    )


async def describe_durability(
    bootstrap: str,
    topic: str,
    *,
    client_options: Mapping[str, Any] | None = None,
    timeout_s: float = DEFAULT_TIMEOUT_S,
) -> TopicDurability:
    """Read how ``topic`` is replicated; raise BusUnavailable when the broker won't say
    (unreachable, or the client may not DescribeConfigs the topic)."""
    what = f"describe topic {topic!r}"
    async with _started_admin(bootstrap, client_options, timeout_s, what) as admin:
        brokers = len((await admin.describe_cluster())["brokers"])
        described = await admin.describe_topics([topic])
        replication_factor = _replication_factor(topic, described)
        isr = await _min_insync(admin, topic)
    return TopicDurability(topic, brokers, replication_factor, isr)


@contextlib.asynccontextmanager
async def _started_admin(
    bootstrap: str, client_options: Mapping[str, Any] | None, timeout_s: float, what: str
) -> AsyncIterator[AIOKafkaAdminClient]:
    """A started admin client, closed afterwards; the whole use is bounded by
    ``timeout_s``, and a broker failure raises BusUnavailable naming ``what`` failed."""
    admin = _admin(bootstrap, client_options, timeout_s)
    try:
        async with asyncio.timeout(timeout_s):
            await admin.start()
            yield admin
    except (KafkaError, OSError, TimeoutError) as exc:
        raise BusUnavailable(
            f"could not {what} on {bootstrap}: {type(exc).__name__}: {exc}"
        ) from exc
    finally:
        await admin.close()


def _admin(
    bootstrap: str, client_options: Mapping[str, Any] | None, timeout_s: float
) -> AIOKafkaAdminClient:
    return AIOKafkaAdminClient(
        bootstrap_servers=bootstrap,
        request_timeout_ms=int(timeout_s * 1000),
        **(client_options or {}),
    )


def _topic_configs(replication_factor: int, min_insync_replicas: int | None) -> dict[str, str]:
    if min_insync_replicas is None and replication_factor >= DEFAULT_MIN_INSYNC_REPLICAS:
        min_insync_replicas = DEFAULT_MIN_INSYNC_REPLICAS
    return {} if min_insync_replicas is None else {_MIN_INSYNC: str(min_insync_replicas)}


def _replication_factor(topic: str, described: list[Any]) -> int:
    for item in described:
        if item.get("topic") != topic:
            continue
        if item.get("error_code", _NO_ERROR) != _NO_ERROR:
            raise BusUnavailable(f"topic {topic!r}: broker error code {item['error_code']}")
        counts = [len(p.get("replicas") or ()) for p in item.get("partitions") or ()]
        if counts:
            return min(counts)
    raise BusUnavailable(f"topic {topic!r} has no partitions yet")


async def _min_insync(admin: AIOKafkaAdminClient, topic: str) -> int | None:
    # All of the topic's configs: Tansu drops the connection when asked for named ones.
    resource = ConfigResource(ConfigResourceType.TOPIC, topic)
    for response in await admin.describe_configs([resource]):
        for item in response.to_object().get("resources", ()):
            if item.get("error_code", _NO_ERROR) != _NO_ERROR:
                raise BusUnavailable(
                    f"cannot read the configuration of topic {topic!r}: broker error code "
                    f"{item['error_code']} (the client may lack DescribeConfigs permission)"
                )
            for entry in item.get("config_entries", ()):
                name = entry.get("config_names", entry.get("config_name"))
                value = entry.get("config_value")
                if name == _MIN_INSYNC and value is not None and str(value).isdigit():
                    return int(value)
    return None


def _created(topic_errors: Iterable[tuple[object, ...]]) -> list[str]:
    created = []
    for item in topic_errors:
        name, code = str(item[0]), item[1]
        if code == _NO_ERROR:
            created.append(name)
        elif code != _TOPIC_ALREADY_EXISTS:
            message = item[2] if len(item) > 2 else ""
            raise BusUnavailable(f"broker refused to create topic {name!r}: code {code} {message}")
    return created

"""Topic administration: make sure the topics wa-bridge writes to exist.

Called by the receiver at start-up and again whenever the broker seems to have lost the
topic (the embedded Tansu broker keeps everything in memory, so a restart empties it).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import Final

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError

from wa_bridge.errors import BusUnavailable

__all__ = ["ensure_topics"]

# Kafka protocol error codes that mean "nothing to do".
_NO_ERROR: Final = 0
_TOPIC_ALREADY_EXISTS: Final = 36
DEFAULT_TIMEOUT_S: Final = 10.0


async def ensure_topics(
    bootstrap: str,
    names: Iterable[str],
    partitions: int,
    *,
    replication_factor: int = 1,
    timeout_s: float = DEFAULT_TIMEOUT_S,
) -> list[str]:
    """Create each topic of ``names`` that does not exist yet; return the ones created.

    Idempotent: topics that exist are left alone (their partition count is not changed).
    Raises BusUnavailable when the broker cannot be reached or refuses within ``timeout_s``.
    """
    wanted = list(dict.fromkeys(names))
    if not wanted:
        return []
    admin = AIOKafkaAdminClient(
        bootstrap_servers=bootstrap, request_timeout_ms=int(timeout_s * 1000)
    )
    try:
        async with asyncio.timeout(timeout_s):
            await admin.start()
            existing = set(await admin.list_topics())
            missing = [name for name in wanted if name not in existing]
            if not missing:
                return []
            response = await admin.create_topics(
                [
                    NewTopic(name, num_partitions=partitions, replication_factor=replication_factor)
                    for name in missing
                ]
            )
    except (KafkaError, OSError, TimeoutError) as exc:
        raise BusUnavailable(
            f"could not ensure topics on {bootstrap}: {type(exc).__name__}: {exc}"
        ) from exc
    finally:
        await admin.close()
    return _created(response.topic_errors)


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

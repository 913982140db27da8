"""schemathesis against openapi.yaml on the running receiver, as every role.

Each generated request is sent once per role (no token, viewer, operator, inbox); webhook
POSTs are sent signed and unsigned. Every answer must be documented: status, headers,
content type and body schema, and never a 500. Bounded: ``MAX_EXAMPLES`` per operation.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from wa_bridge.bus.embedded import EmbeddedBroker
from wa_bridge.receiver import WEBHOOK_PATH, sign

from ._live import SECRET, TOKENS, live_receiver

ROOT = Path(__file__).resolve().parents[2]
MAX_EXAMPLES = 100

pytestmark = [pytest.mark.kafka, pytest.mark.slow]

schema = schemathesis.openapi.from_path(ROOT / "openapi.yaml")
# What the answer must be, whatever was asked. (The checks that judge whether a request
# should have been refused do not apply: each request is re-sent with the signature or
# token a role adds, so the case's own headers are not what reached the app.)
ANSWER_CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]


@pytest.fixture(scope="module")
def base_url(broker: EmbeddedBroker, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with live_receiver(
        broker.bootstrap, f"fuzz-api.{uuid.uuid4().hex[:12]}", tmp_path_factory.mktemp("api")
    ) as url:
        yield url


@pytest.fixture(scope="module")
def session() -> Iterator[requests.Session]:
    with requests.Session() as s:
        yield s


def _variants(case: Any, base_url: str) -> Iterator[dict[str, Any]]:
    """The requests to send for ``case``: one per role, or signed and unsigned webhooks."""
    kwargs = case.as_transport_kwargs(base_url=base_url)
    if case.path == WEBHOOK_PATH and case.method.upper() == "POST":
        # json, not orjson: generated bodies may hold integers past 64 bits
        body = json.dumps(kwargs.pop("json")) if "json" in kwargs else kwargs.pop("data", b"")
        if isinstance(body, str):
            body = body.encode()
        signed = {**kwargs["headers"], "X-Hub-Signature-256": sign(body, SECRET.encode())}
        yield {**kwargs, "data": body, "headers": signed}
        yield {**kwargs, "data": body}
        return
    for token in (None, *TOKENS.values()):
        headers = dict(kwargs["headers"])
        headers.pop("Authorization", None)
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        yield {**kwargs, "headers": headers}


@schema.parametrize()
@settings(
    max_examples=MAX_EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
def test_every_answer_is_documented_and_none_is_a_500(
    case: Any, base_url: str, session: requests.Session
) -> None:
    for request in _variants(case, base_url):
        response = session.request(**request, timeout=10)
        assert response.status_code < 500 or response.status_code == 503, (
            f"{case.method} {case.path}: {response.status_code} {response.text[:300]}"
        )
        case.validate_response(response, checks=ANSWER_CHECKS)

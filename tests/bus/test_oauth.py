"""OAUTHBEARER token providers against a local OAuth 2 token endpoint and real files."""

from __future__ import annotations

import base64
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import orjson
import pytest
import uvicorn
from aiokafka.errors import KafkaConnectionError
from pydantic import SecretStr

from wa_bridge.bus.embedded import free_port
from wa_bridge.bus.oauth import ClientCredentialsTokenProvider, FileTokenProvider

CLIENT_ID, CLIENT_SECRET = "wa-bridge", "client-secret-123"


class TokenEndpoint:
    """RFC 6749 §4.4: checks the grant and the client's Basic credentials, counts requests."""

    def __init__(self) -> None:
        self.requests: list[dict[str, str]] = []
        self.expires_in: int | None = 300
        self.url = ""
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        headers = {k.decode().lower(): v.decode() for k, v in scope["headers"]}
        form = dict(parse_qsl(body.decode()))
        self.requests.append(form)
        expected = "Basic " + base64.b64encode(f"{CLIENT_ID}:{CLIENT_SECRET}".encode()).decode()
        if headers.get("authorization") != expected:
            status, answer = 401, {"error": "invalid_client"}
        elif form.get("grant_type") != "client_credentials":
            status, answer = 400, {"error": "unsupported_grant_type"}
        else:
            answer = {"access_token": f"token-{len(self.requests)}", "token_type": "Bearer"}
            if self.expires_in is not None:
                answer["expires_in"] = self.expires_in
            status = 200
        payload = orjson.dumps(answer)
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [(b"content-type", b"application/json")],
            }
        )
        await send({"type": "http.response.body", "body": payload})

    def start(self) -> None:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.bind(("127.0.0.1", 0))
        config = uvicorn.Config(self, lifespan="off", log_level="warning", http="h11", ws="none")
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [sock]}, daemon=True
        )
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            assert time.monotonic() < deadline, "token endpoint did not start"
            time.sleep(0.01)
        self.url = f"http://127.0.0.1:{sock.getsockname()[1]}/oauth2/token"

    def stop(self) -> None:
        if self._server is not None and self._thread is not None:
            self._server.should_exit = True
            self._thread.join(timeout=5)


@pytest.fixture(scope="module")
def endpoint_session() -> Iterator[TokenEndpoint]:
    server = TokenEndpoint()
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def endpoint(endpoint_session: TokenEndpoint) -> TokenEndpoint:
    endpoint_session.requests.clear()
    endpoint_session.expires_in = 300
    return endpoint_session


class ManualClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def provider(url: str, clock: ManualClock, secret: str = CLIENT_SECRET) -> Any:
    return ClientCredentialsTokenProvider(
        token_url=url,
        client_id=CLIENT_ID,
        client_secret=SecretStr(secret),
        scope="kafka",
        clock=clock,
    )


async def test_token_is_fetched_once_and_renewed_at_80_percent_of_its_life(
    endpoint: TokenEndpoint,
) -> None:
    clock = ManualClock()
    tokens = provider(endpoint.url, clock)
    assert await tokens.token() == "token-1"
    assert endpoint.requests == [{"grant_type": "client_credentials", "scope": "kafka"}]
    clock.now += 239  # 80 % of 300 s not yet passed
    assert await tokens.token() == "token-1"
    clock.now += 1
    assert await tokens.token() == "token-2"
    assert len(endpoint.requests) == 2


async def test_a_token_without_expiry_is_used_once(endpoint: TokenEndpoint) -> None:
    endpoint.expires_in = None
    tokens = provider(endpoint.url, ManualClock())
    assert [await tokens.token(), await tokens.token()] == ["token-1", "token-2"]


async def test_rejected_client_is_a_connection_error_without_the_secret(
    endpoint: TokenEndpoint,
) -> None:
    tokens = provider(endpoint.url, ManualClock(), secret="wrong-secret-456")
    with pytest.raises(KafkaConnectionError, match=r"answered 401 \(invalid_client\)") as info:
        await tokens.token()
    assert "wrong-secret-456" not in str(info.value)


async def test_unreachable_endpoint_is_a_connection_error() -> None:
    tokens = provider(f"http://127.0.0.1:{free_port()}/token", ManualClock())
    with pytest.raises(KafkaConnectionError, match="ConnectError"):
        await tokens.token()


async def test_token_file_is_read_fresh_on_every_connection(tmp_path: Path) -> None:
    path = tmp_path / "token"
    path.write_text("first-token\n")
    tokens = FileTokenProvider(path)
    assert await tokens.token() == "first-token"
    path.write_text("second-token\n")  # a sidecar renewed it
    assert await tokens.token() == "second-token"


@pytest.mark.parametrize("content", [None, "  \n"])
async def test_missing_or_empty_token_file_is_a_connection_error(
    tmp_path: Path, content: str | None
) -> None:
    path = tmp_path / "token"
    if content is not None:
        path.write_text(content)
    with pytest.raises(KafkaConnectionError, match="token file"):
        await FileTokenProvider(path).token()

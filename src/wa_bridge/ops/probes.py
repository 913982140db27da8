"""The worker's small HTTP side: ``/healthz``, ``/readyz`` and ``/metrics``.

Served from a daemon thread (like prometheus_client's own server) so a busy event loop
never delays a probe. ``/healthz`` answers 200 while the process is up; ``/readyz`` 200
when ``wa_bridge_worker_ready`` is 1 (set by the monitor task once it is in its group and
the database answered) and the worker is not paused for a spent CRM budget, else 503
(with the pause's reason in ``detail``); ``/metrics`` the Prometheus text.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from socketserver import ThreadingMixIn
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

import orjson

from wa_bridge import metrics
from wa_bridge.worker.quota_pause import quota_pause_reason

__all__ = ["ProbeServer", "probe_app", "start_probe_server"]

StartResponse = Callable[..., Any]


def _is_ready() -> bool:
    samples = metrics.sample_values(["wa_bridge_worker_ready"])["wa_bridge_worker_ready"]
    return any(value >= 1 for _, value in samples)


def probe_app(
    is_ready: Callable[[], bool] = _is_ready,
    paused_reason: Callable[[], str | None] = quota_pause_reason,
) -> Callable[..., Iterable[bytes]]:
    """The WSGI app behind the worker's probe port."""

    def app(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if path == "/metrics":
            body, status, kind = metrics.render(), "200 OK", metrics.CONTENT_TYPE
        elif path == "/healthz":
            body, status, kind = b'{"status":"ok"}', "200 OK", "application/json"
        elif path == "/readyz":
            reason = paused_reason()
            ready = reason is None and is_ready()
            if ready:
                body = b'{"status":"ready"}'
            else:
                answer: dict[str, str] = {"status": "not_ready"}
                if reason is not None:
                    answer["detail"] = reason
                body = orjson.dumps(answer)
            status = "200 OK" if ready else "503 Service Unavailable"
            kind = "application/json"
        else:
            body, status, kind = b'{"error":"not_found"}', "404 Not Found", "application/json"
        start_response(status, [("Content-Type", kind), ("Content-Length", str(len(body)))])
        return [body]

    return app


class _Server(ThreadingMixIn, WSGIServer):
    daemon_threads = True


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:  # probes every few seconds
        return


class ProbeServer:
    """A started probe server; :meth:`close` stops it."""

    def __init__(self, server: WSGIServer) -> None:
        self._server = server
        self.port = int(server.server_address[1])
        self._thread = threading.Thread(target=server.serve_forever, name="probes", daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


def start_probe_server(port: int, host: str = "0.0.0.0") -> ProbeServer:
    """Serve the probes on ``host:port`` (0: a free port) from a daemon thread."""
    server = make_server(host, port, probe_app(), server_class=_Server, handler_class=_QuietHandler)
    return ProbeServer(server)

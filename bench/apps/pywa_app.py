"""Target (c): pywa's own FastAPI webhook route verifying and parsing the same webhook.

pywa registers ``POST <webhook_endpoint>`` on the FastAPI app: it checks
X-Hub-Signature-256 against ``app_secret`` in the request, answers, and parses the
update into its typed ``Message`` in a background task (a thread, with the sync client)
before calling our handler, which only counts. ``skip_duplicate_updates`` is off,
otherwise pywa would parse our identical benchmark body once and skip it afterwards.

Environment: ``BENCH_APP_SECRET``, ``BENCH_VERIFY_TOKEN``, ``BENCH_WEBHOOK_PATH``.
``GET /bench/handled`` returns how many updates reached the handler, so the benchmark
can check that every 200 was really parsed.
"""

from __future__ import annotations

import os
import threading

from fastapi import FastAPI
from fastapi.responses import PlainTextResponse
from pywa import WhatsApp, types

app = FastAPI(openapi_url=None, docs_url=None, redoc_url=None)

wa = WhatsApp(
    server=app,
    verify_token=os.environ["BENCH_VERIFY_TOKEN"],
    app_secret=os.environ["BENCH_APP_SECRET"],
    webhook_endpoint=os.environ.get("BENCH_WEBHOOK_PATH", "/"),
    validate_updates=True,
    skip_duplicate_updates=False,
)

_lock = threading.Lock()
_handled = [0]


@wa.on_message
def on_message(_client: WhatsApp, message: types.Message) -> None:
    # Touch parsed fields so the update is really built, then count it.
    if message.id and message.text is not None:
        with _lock:
            _handled[0] += 1


@app.get("/bench/handled", response_class=PlainTextResponse)
def handled() -> str:
    return str(_handled[0])

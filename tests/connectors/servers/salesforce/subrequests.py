"""The Composite resource: ``POST /services/data/vXX.X/composite``, subrequests in one call.

Contract (Salesforce REST API, "Composite"): a body ``{"allOrNone": bool,
"collateSubrequests": bool, "compositeRequest": [{"method", "url", "referenceId", "body",
"httpHeaders"}]}`` of 1 to 25 subrequests, at most 5 of them sObject Collections or query
operations; each ``referenceId`` unique, a letter then letters, digits or ``_``; each
``url`` a ``/services/data/vXX.X/…`` resource that Composite supports (sObject rows,
sObject Collections, query). The whole call counts as **one** API call. The answer is 200
``{"compositeResponse": [{"body", "httpHeaders", "httpStatusCode", "referenceId"}]}`` in
request order; with ``allOrNone: false`` a failed subrequest does not stop the others.

Each subrequest is checked and applied by the same code as the request it stands for, so
a collection's per-record results and errors are the same inside a composite call. Not
modelled (a request using them is a contract violation of the stand-in, said as such):
``allOrNone: true`` (the roll-back) and ``@{reference}`` expressions.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl

import orjson
from jsonschema import Draft202012Validator

from ..base import RecordedRequest, Reply

if TYPE_CHECKING:
    from .server import SalesforceServer

MAX_SUBREQUESTS = 25
MAX_COLLECTIONS_OR_QUERIES = 5
_SUPPORTED = frozenset(  # the routes a subrequest may name
    {
        "query",
        "composite/{type}",
        "composite",
        "sobjects/{type}",
        "sobjects/{type}/:id",
        "sobjects/{type}/{field}/:value",
        "sobjects/{type}/describe",
    }
)
_COLLECTIONS_OR_QUERIES = frozenset({"query", "composite/{type}", "composite"})
_BODY = Draft202012Validator(
    {
        "type": "object",
        "required": ["compositeRequest"],
        "additionalProperties": False,
        "properties": {
            "allOrNone": {"type": "boolean"},
            "collateSubrequests": {"type": "boolean"},
            "compositeRequest": {
                "type": "array",
                "minItems": 1,
                "maxItems": MAX_SUBREQUESTS,
                "items": {
                    "type": "object",
                    "required": ["method", "url", "referenceId"],
                    "additionalProperties": False,
                    "properties": {
                        "method": {"enum": ["GET", "POST", "PATCH", "PUT", "DELETE", "HEAD"]},
                        "url": {"type": "string", "pattern": r"^/services/data/v\d+\.\d/"},
                        "referenceId": {"type": "string", "pattern": "^[A-Za-z][A-Za-z0-9_]*$"},
                        "body": {},
                        "httpHeaders": {"type": "object"},
                    },
                },
            },
        },
    }
)


def check(server: SalesforceServer, request: RecordedRequest) -> list[str]:
    """The violations of a composite call; fills ``request.parts`` (one per subrequest)."""
    errors = [
        f"body{''.join(f'/{p}' for p in e.absolute_path)}: {e.message}"
        for e in _BODY.iter_errors(request.body)
    ]
    if errors:
        return errors
    if request.body.get("allOrNone"):
        errors.append("allOrNone: true (roll-back) is not modelled by this stand-in")
    seen: set[str] = set()
    heavy = 0
    for index, item in enumerate(request.body["compositeRequest"]):
        where = f"compositeRequest/{index}"
        ref = item["referenceId"]
        if ref in seen:
            errors.append(f"{where}: referenceId {ref} is used twice")
        seen.add(ref)
        if "@{" in item["url"] or "@{" in orjson.dumps(item.get("body")).decode():
            errors.append(f"{where}: @{{reference}} expressions are not modelled by this stand-in")
        part = _subrequest(request, item)
        request.parts.append(part)
        server.route(part)
        if part.route_name not in _SUPPORTED:
            errors.append(f"{where}: {item['method']} {part.path} is not a Composite subrequest")
            continue
        heavy += part.route_name in _COLLECTIONS_OR_QUERIES
        errors += [f"{where}: {e}" for e in server.check(part)]
    if heavy > MAX_COLLECTIONS_OR_QUERIES:
        errors.append(
            f"{heavy} sObject Collections or query subrequests; at most "
            f"{MAX_COLLECTIONS_OR_QUERIES} in one composite call"
        )
    return errors


def run(server: SalesforceServer, request: RecordedRequest) -> Reply:
    """Apply each subrequest in order with its own handler; every answer, in order."""
    answers = []
    for item, part in zip(request.body["compositeRequest"], request.parts, strict=True):
        fault = server.take_part_fault(part)
        reply = server.fault_reply(fault) if fault is not None else handler(part)(server, part)
        headers = {k: v for k, v in reply.headers.items() if k.lower() != "content-length"}
        answers.append(
            {
                "body": reply.body,
                "httpHeaders": headers,
                "httpStatusCode": reply.status,
                "referenceId": item["referenceId"],
            }
        )
    return Reply(200, {"compositeResponse": answers})


def _subrequest(request: RecordedRequest, item: dict[str, Any]) -> RecordedRequest:
    path, _, query = item["url"].partition("?")
    part = RecordedRequest(
        item["method"], path, dict(parse_qsl(query)), dict(request.headers), item.get("body")
    )
    part.client = request.client
    return part


def handler(part: RecordedRequest) -> Callable[[SalesforceServer, RecordedRequest], Reply]:
    from .server import _HANDLERS

    return _HANDLERS[(part.method, part.route_name)]

"""SOQL (``/query``, ``/tooling/query``) and SOSL (``/search``) answered from the org."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..base import RecordedRequest, Reply
from . import soql, sosl
from .errors import sf_error
from .records import Record
from .rows import base_path, invisible_field, row_json
from .schema import SEARCH_GROUPS

if TYPE_CHECKING:
    from .server import SalesforceServer

_TOOLING_FIELDS = frozenset(
    ("Id", "DeveloperName", "TableEnumOrId", "NamespacePrefix", "FullName", "CreatedDate")
) | {"LastModifiedDate"}


def soql_query(server: SalesforceServer, request: RecordedRequest) -> Reply:
    query = soql.parse(request.query["q"])
    sobject = query.sobject = server.org.canonical(query.sobject)
    if not server.org.exists(sobject) or sobject == "CustomField":
        return Reply(
            400,
            [
                sf_error(
                    "INVALID_TYPE",
                    f"sObject type '{sobject}' is not supported. If you are attempting to "
                    "use a custom object, be sure to append the '__c' after the entity name.",
                )
            ],
        )
    bad = invisible_field(server, sobject, query.referenced())
    if bad is not None:
        return Reply(
            400,
            [
                sf_error(
                    "INVALID_FIELD",
                    f"No such column '{bad}' on entity '{sobject}'. If you are attempting "
                    "to use a custom field, be sure to append the '__c' after the custom "
                    "field name.",
                )
            ],
        )
    return _answer_query(server, request, query, server.store.all(sobject))


def _answer_query(
    server: SalesforceServer, request: RecordedRequest, query: soql.Query, rows: list[Record]
) -> Reply:
    sobject = query.sobject

    def get(row: Record, name: str) -> Any:
        definition = server.org.find_field(sobject, name)
        return row.get(definition.name if definition else name)

    if query.count:
        return Reply(
            200, {"totalSize": len(soql.run(query, rows, get)), "done": True, "records": []}
        )
    found = soql.run(query, rows, get)
    records = [row_json(server, request, sobject, r, query.fields) for r in found]
    return Reply(200, {"totalSize": len(records), "done": True, "records": records})


def tooling_query(server: SalesforceServer, request: RecordedRequest) -> Reply:
    query = soql.parse(request.query["q"])
    if query.sobject.lower() != "customfield":
        message = f"sObject type '{query.sobject}' is not supported by this stand-in's Tooling API."
        return Reply(400, [sf_error("INVALID_TYPE", message)])
    bad = next((n for n in query.referenced() if n not in _TOOLING_FIELDS), None)
    if bad is not None:
        return Reply(
            400, [sf_error("INVALID_FIELD", f"No such column '{bad}' on entity 'CustomField'.")]
        )
    rows = list(server.collection("CustomField").values())
    found = soql.run(query, rows, lambda row, name: row.get(name))
    base = base_path(server, request)
    records = [
        {
            "attributes": {
                "type": "CustomField",
                "url": f"{base}/tooling/sobjects/CustomField/{r['Id']}",
            },
            **{n: r.get(n) for n in query.fields},
        }
        for r in found
    ]
    if query.count:
        return Reply(
            200, {"size": len(found), "totalSize": len(found), "done": True, "records": []}
        )
    return Reply(
        200,
        {
            "size": len(records),
            "totalSize": len(records),
            "done": True,
            "queryLocator": None,
            "entityTypeName": "CustomField",
            "records": records,
        },
    )


def sosl_search(server: SalesforceServer, request: RecordedRequest) -> Reply:
    search = sosl.parse(request.query["q"])
    out: list[dict[str, Any]] = []
    kinds = SEARCH_GROUPS[search.group]
    for returning in search.returning:
        sobject = returning.query.sobject = server.org.canonical(returning.sobject)
        if not server.org.exists(sobject):
            return Reply(
                400, [sf_error("INVALID_TYPE", f"sObject type '{sobject}' is not supported.")]
            )
        bad = invisible_field(server, sobject, returning.query.referenced())
        if bad is not None:
            return Reply(
                400, [sf_error("INVALID_FIELD", f"No such column '{bad}' on entity '{sobject}'.")]
            )
        searched = [
            f for f in server.org.visible_fields(sobject) if f.type in kinds and f.name != "Id"
        ]
        rows = [r for r in server.store.all(sobject) if _hit(server, r, searched, search)]

        def get(row: Record, name: str, sobject: str = sobject) -> Any:
            definition = server.org.find_field(sobject, name)
            return row.get(definition.name if definition else name)

        found = soql.run(returning.query, rows, get)
        out += [row_json(server, request, sobject, r, returning.query.fields) for r in found]
    if search.limit is not None:
        out = out[: search.limit]
    return Reply(200, {"searchRecords": out})


def _hit(server: SalesforceServer, record: Record, fields: list[Any], search: sosl.Search) -> bool:
    for definition in fields:
        value = record.get(definition.name)
        if not value or not isinstance(value, str):
            continue
        for alternative in search.alternatives:
            if definition.type == "phone" and sosl.phone_matches(value, alternative):
                return True
            if definition.type != "phone" and sosl.text_matches(value, alternative):
                return True
    return False

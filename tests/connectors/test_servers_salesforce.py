"""The Salesforce contract server, driven with plain httpx: answers and recorded violations."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from connectors.servers import ManualClock, SalesforceServer
from connectors.servers.salesforce import jwt_assertion, make_key_pair

API = "/services/data/v61.0"
TOKEN_URL = "/services/oauth2/token"


@pytest.fixture
async def sf(salesforce_server: SalesforceServer) -> AsyncIterator[httpx.AsyncClient]:
    headers = {"Authorization": f"Bearer {salesforce_server.token}"}
    async with httpx.AsyncClient(base_url=salesforce_server.url, headers=headers) as client:
        yield client


async def _query(client: httpx.AsyncClient, soql: str, path: str = "query") -> httpx.Response:
    return await client.get(f"{API}/{path}", params={"q": soql})


async def _create(client: httpx.AsyncClient, sobject: str, **fields: Any) -> str:
    response = await client.post(f"{API}/sobjects/{sobject}", json=fields)
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


# --- OAuth ------------------------------------------------------------------------------
async def test_client_credentials_token_and_session_expiry(
    salesforce_server: SalesforceServer,
) -> None:
    clock = ManualClock()
    salesforce_server.clock = clock
    oauth = salesforce_server.oauth
    oauth.session_lifetime_s = 120
    form = {
        "grant_type": "client_credentials",
        "client_id": oauth.client_id,
        "client_secret": oauth.client_secret,
    }
    async with httpx.AsyncClient(base_url=salesforce_server.url) as client:
        answer = await client.post(TOKEN_URL, data=form)
        assert answer.status_code == 200
        token = answer.json()
        assert token["instance_url"] == salesforce_server.url
        assert token["token_type"] == "Bearer"
        assert token["id"].endswith(f"/{salesforce_server.api_user_id}")
        assert token["issued_at"].isdigit() and token["signature"]
        bearer = {"Authorization": f"Bearer {token['access_token']}"}
        ok = await client.get(f"{API}/limits", headers=bearer)
        assert ok.status_code == 200
        clock.advance(121)
        expired = await client.get(f"{API}/limits", headers=bearer)
        assert expired.status_code == 401
        assert expired.json() == [
            {"message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID"}
        ]
        wrong = await client.post(TOKEN_URL, data={**form, "client_secret": "nope"})
        assert wrong.status_code == 400 and wrong.json()["error"] == "invalid_client"
        oauth.client_credentials_enabled = False
        off = await client.post(TOKEN_URL, data=form)
        assert off.json() == {
            "error": "invalid_grant",
            "error_description": "no client credentials user enabled",
        }


async def test_jwt_bearer_flow_checks_signature_and_claims(
    salesforce_server: SalesforceServer,
) -> None:
    oauth = salesforce_server.oauth
    key = oauth.private_key_pem
    good = {"iss": oauth.client_id, "sub": oauth.username, "aud": salesforce_server.url}
    other_key, _ = make_key_pair()
    cases = {
        "ok": jwt_assertion(key, **good),
        "wrong key": jwt_assertion(other_key, **good),
        "wrong aud": jwt_assertion(key, **{**good, "aud": "https://login.salesforce.com"}),
        "wrong sub": jwt_assertion(key, **{**good, "sub": "someone@else.test"}),
        "wrong iss": jwt_assertion(key, **{**good, "iss": "another-app"}),
        "expired": jwt_assertion(key, **good, exp=time.time() - 5),
        "garbage": "not.a.jwt",
    }
    answers = {}
    async with httpx.AsyncClient(base_url=salesforce_server.url) as client:
        for name, assertion in cases.items():
            form = {"grant_type": "urn:ietf:params:oauth:grant-type:jwt-bearer"}
            response = await client.post(TOKEN_URL, data={**form, "assertion": assertion})
            answers[name] = (response.status_code, response.json().get("error"))
        token = (await client.post(TOKEN_URL, data={**form, "assertion": cases["ok"]})).json()
        bearer = {"Authorization": f"Bearer {token['access_token']}"}
        assert (await client.get(f"{API}/limits", headers=bearer)).status_code == 200
        salesforce_server.expire_sessions()
        assert (await client.get(f"{API}/limits", headers=bearer)).status_code == 401
    assert answers == {
        "ok": (200, None),
        "wrong key": (400, "invalid_grant"),
        "wrong aud": (400, "invalid_grant"),
        "wrong sub": (400, "invalid_grant"),
        "wrong iss": (400, "invalid_client_id"),
        "expired": (400, "invalid_grant"),
        "garbage": (400, "invalid_grant"),
    }
    assert salesforce_server.total() == 2  # token requests are not API calls


# --- limits -----------------------------------------------------------------------------
async def test_api_usage_header_and_the_daily_allocation(
    salesforce_server: SalesforceServer, sf: httpx.AsyncClient
) -> None:
    salesforce_server.set_api_limit(3, used=1)
    first = await sf.get(f"{API}/limits")
    assert first.headers["Sforce-Limit-Info"] == "api-usage=2/3"
    assert first.json()["DailyApiRequests"] == {"Max": 3, "Remaining": 1}
    second = await _query(sf, "SELECT Id FROM Contact")
    assert second.headers["Sforce-Limit-Info"] == "api-usage=3/3"
    refused = await _query(sf, "SELECT Id FROM Contact")
    assert refused.status_code == 403 and "Retry-After" not in refused.headers
    assert refused.json()[0]["errorCode"] == "REQUEST_LIMIT_EXCEEDED"
    assert refused.headers["Sforce-Limit-Info"] == "api-usage=3/3"


# --- schema, Tooling API, field-level security ------------------------------------------
async def test_a_created_field_needs_field_permissions_before_use(
    salesforce_server: SalesforceServer, sf: httpx.AsyncClient
) -> None:
    salesforce_server.strict_fields = True
    contact = await _create(sf, "Contact", LastName="Okafor")
    unknown = await sf.patch(f"{API}/sobjects/Contact/{contact}", json={"WA_Bsuid__c": "B"})
    assert unknown.status_code == 400 and unknown.json()[0]["errorCode"] == "INVALID_FIELD"

    body = {
        "FullName": "Contact.WA_Bsuid__c",
        "Metadata": {"type": "Text", "length": 64, "label": "BSUID", "externalId": True},
    }
    created = await sf.post(f"{API}/tooling/sobjects/CustomField", json=body)
    assert created.status_code == 201 and created.json()["success"] is True
    again = await sf.post(f"{API}/tooling/sobjects/CustomField", json=body)
    assert again.status_code == 400
    assert again.json()[0]["errorCode"] == "DUPLICATE_DEVELOPER_NAME"
    listed = await _query(
        sf,
        "SELECT Id, DeveloperName, TableEnumOrId FROM CustomField WHERE TableEnumOrId = 'Contact'",
        "tooling/query",
    )
    assert [r["DeveloperName"] for r in listed.json()["records"]] == ["WA_Bsuid"]

    # Created, yet invisible: no field-level security grants it.
    describe = (await sf.get(f"{API}/sobjects/Contact/describe")).json()
    assert "WA_Bsuid__c" not in {f["name"] for f in describe["fields"]}
    hidden = await sf.patch(f"{API}/sobjects/Contact/{contact}", json={"WA_Bsuid__c": "B"})
    assert hidden.json()[0]["errorCode"] == "INVALID_FIELD"
    query = await _query(sf, "SELECT Id, WA_Bsuid__c FROM Contact")
    assert query.status_code == 400 and query.json()[0]["errorCode"] == "INVALID_FIELD"

    perm_set = await _create(sf, "PermissionSet", Name="WA_Bridge", Label="wa-bridge")
    grant = {
        "ParentId": perm_set,
        "SobjectType": "Contact",
        "Field": "Contact.WA_Bsuid__c",
        "PermissionsRead": True,
        "PermissionsEdit": True,
    }
    await _create(sf, "FieldPermissions", **grant)
    dup = await sf.post(f"{API}/sobjects/FieldPermissions", json=grant)
    assert dup.status_code == 400 and dup.json()[0]["errorCode"] == "DUPLICATE_VALUE"
    still = await sf.patch(f"{API}/sobjects/Contact/{contact}", json={"WA_Bsuid__c": "B"})
    assert still.status_code == 400  # the permission set is not assigned yet
    await _create(
        sf,
        "PermissionSetAssignment",
        PermissionSetId=perm_set,
        AssigneeId=salesforce_server.api_user_id,
    )
    written = await sf.patch(f"{API}/sobjects/Contact/{contact}", json={"WA_Bsuid__c": "B"})
    assert written.status_code == 204
    describe = (await sf.get(f"{API}/sobjects/Contact/describe")).json()
    field = next(f for f in describe["fields"] if f["name"] == "WA_Bsuid__c")
    assert field["externalId"] is True and field["length"] == 64
    rows = (await _query(sf, "SELECT Id, WA_Bsuid__c FROM Contact")).json()["records"]
    assert rows[0]["WA_Bsuid__c"] == "B"
    assert salesforce_server.violations == []


async def test_tooling_api_needs_customize_application(
    salesforce_server: SalesforceServer, sf: httpx.AsyncClient
) -> None:
    salesforce_server.customize_application = False
    body = {
        "FullName": "Case.WA_Queue__c",
        "Metadata": {"type": "Text", "length": 80, "label": "Q"},
    }
    refused = await sf.post(f"{API}/tooling/sobjects/CustomField", json=body)
    assert refused.status_code == 403
    salesforce_server.customize_application = True
    bad = {**body, "Metadata": {"type": "Text", "label": "Q"}}  # no length
    assert (await sf.post(f"{API}/tooling/sobjects/CustomField", json=bad)).status_code == 400
    name = {**body, "FullName": "Case.WA__Queue__c"}
    assert (await sf.post(f"{API}/tooling/sobjects/CustomField", json=name)).status_code == 400


async def test_collections_report_invalid_fields_per_record(
    salesforce_server: SalesforceServer, sf: httpx.AsyncClient
) -> None:
    salesforce_server.strict_fields = True
    salesforce_server.add_field("Contact", "WA_Contact_Key__c", external_id=True, unique=True)
    records = [
        {"attributes": {"type": "Contact"}, "WA_Contact_Key__c": "c-1", "LastName": "A"},
        {"attributes": {"type": "Contact"}, "WA_Contact_Key__c": "c-2", "WA_Nope__c": "x"},
    ]
    response = await sf.patch(
        f"{API}/composite/sobjects/Contact/WA_Contact_Key__c",
        json={"allOrNone": False, "records": records},
    )
    assert response.status_code == 200
    ok, failed = response.json()
    assert ok["success"] is True and ok["created"] is True
    assert failed["success"] is False
    assert failed["errors"][0]["statusCode"] == "INVALID_FIELD"
    assert len(salesforce_server.objects("Contact")) == 1
    rolled = await sf.patch(
        f"{API}/composite/sobjects/Contact/WA_Contact_Key__c",
        json={"allOrNone": True, "records": records},
    )
    codes = [r["errors"][0]["statusCode"] for r in rolled.json()]
    assert codes == ["ALL_OR_NONE_OPERATION_ROLLED_BACK", "INVALID_FIELD"]
    twice = await sf.patch(
        f"{API}/composite/sobjects/Contact/WA_Contact_Key__c",
        json={"records": [records[0], records[0]]},
    )
    assert [r["success"] for r in twice.json()] == [True, False]
    assert twice.json()[1]["errors"][0]["statusCode"] == "DUPLICATE_EXTERNAL_ID"
    not_external = await sf.patch(
        f"{API}/composite/sobjects/Contact/LastName",
        json={"records": [{"attributes": {"type": "Contact"}, "LastName": "x"}]},
    )
    assert not_external.status_code == 400


@pytest.mark.parametrize(
    ("sobject", "fields", "code"),
    [
        ("Contact", {"FirstName": "no last name"}, "REQUIRED_FIELD_MISSING"),
        ("Contact", {"LastName": "x", "Email": "not-an-email"}, "INVALID_EMAIL_ADDRESS"),
        ("Contact", {"LastName": "x" * 81}, "STRING_TOO_LONG"),
        ("Contact", {"LastName": "x", "LastModifiedDate": "2026-01-01T00:00:00Z"}, ""),
        ("Opportunity", {"Name": "o", "StageName": "Prospecting"}, "REQUIRED_FIELD_MISSING"),
        (
            "Opportunity",
            {"Name": "o", "StageName": "Won", "CloseDate": "2026-05-04"},
            "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST",
        ),
        (
            "Opportunity",
            {"Name": "o", "StageName": "Closed Won", "CloseDate": "4 May"},
            "JSON_PARSER_ERROR",
        ),
        ("Case", {"ContactId": "003000000000999AAA"}, "INVALID_CROSS_REFERENCE_KEY"),
    ],
)
async def test_writes_are_checked_against_the_org_schema(
    sf: httpx.AsyncClient, sobject: str, fields: dict[str, Any], code: str
) -> None:
    response = await sf.post(f"{API}/sobjects/{sobject}", json=fields)
    assert response.status_code == 400
    assert response.json()[0]["errorCode"] == (code or "INVALID_FIELD_FOR_INSERT_UPDATE")


async def test_opportunity_with_contact_role_and_currency(
    salesforce_server: SalesforceServer, sf: httpx.AsyncClient
) -> None:
    contact = await _create(sf, "Contact", LastName="Ortega", WA_Contact_Key__c="c-7")
    records = [
        {
            "attributes": {"type": "Opportunity"},
            "WA_Deal_Key__c": "deal-1",
            "Name": "WhatsApp order",
            "StageName": "Closed Won",
            "CloseDate": "2026-05-04",
            "Amount": 1250.5,
            "CurrencyIsoCode": "MXN",
            "Contact": {"WA_Contact_Key__c": "c-7"},
        }
    ]
    upsert = await sf.patch(
        f"{API}/composite/sobjects/Opportunity/WA_Deal_Key__c", json={"records": records}
    )
    (result,) = upsert.json()
    assert result["success"] and result["created"]
    deal = salesforce_server.get("Opportunity", result["id"])
    assert deal is not None and deal["ContactId"] == contact and deal["IsWon"] is True
    role = await _create(
        sf, "OpportunityContactRole", OpportunityId=result["id"], ContactId=contact
    )
    assert role.startswith("00K")
    salesforce_server.multi_currency = False
    single = await sf.post(
        f"{API}/sobjects/Opportunity",
        json={
            "Name": "o",
            "StageName": "Prospecting",
            "CloseDate": "2026-06-01",
            "CurrencyIsoCode": "USD",
        },
    )
    assert single.json()[0]["errorCode"] == "INVALID_FIELD"


# --- SOSL -------------------------------------------------------------------------------
async def test_sosl_finds_phones_regardless_of_formatting(
    salesforce_server: SalesforceServer, sf: httpx.AsyncClient
) -> None:
    ids = salesforce_server.seed_company_crm()

    async def find(term: str, tail: str = "") -> list[str]:
        sosl = f"FIND {{{term}}} IN PHONE FIELDS RETURNING Contact(Id, Phone, MobilePhone{tail})"
        response = await sf.get(f"{API}/search/", params={"q": sosl})
        assert response.status_code == 200, response.text
        records = response.json()["searchRecords"]
        assert all(r["attributes"]["type"] == "Contact" for r in records)
        return [r["Id"] for r in records]

    assert await find("91123456789") == [ids["ar_international"]]
    assert await find("\\+54 9 11 2345\\-6789") == [ids["ar_international"]]
    assert await find("5132271572") == [ids["us_national"]]
    assert await find("\\+15132271572") == [ids["us_national"]]
    assert await find("15512345678 OR 5215512345678") == [ids["mx_with_1"]]
    shared = await find("11999990001", " ORDER BY LastModifiedDate DESC")
    assert shared == [ids["shared_newer"], ids["shared_older"]]
    assert await find("1123456789") == []  # no guessing of Argentina's 9


async def test_sosl_reserved_characters_must_be_escaped(
    salesforce_server: SalesforceServer, sf: httpx.AsyncClient
) -> None:
    sosl = "FIND {+54 9 11 2345-6789} IN PHONE FIELDS RETURNING Contact(Id)"
    response = await sf.get(f"{API}/search/", params={"q": sosl})
    assert response.status_code == 400
    assert response.json()[0]["errorCode"] == "MALFORMED_SEARCH"
    assert "unsupported SOSL" in salesforce_server.violations[0].violations[0]
    salesforce_server.reset()  # expected violation


async def test_sosl_returning_fields_must_exist(sf: httpx.AsyncClient) -> None:
    sosl = "FIND {x@example.com} IN EMAIL FIELDS RETURNING Contact(Id, Nope__c)"
    response = await sf.get(f"{API}/search/", params={"q": sosl})
    assert response.status_code == 400 and response.json()[0]["errorCode"] == "INVALID_FIELD"


# --- SOQL -------------------------------------------------------------------------------
async def test_soql_where_order_limit(
    salesforce_server: SalesforceServer, sf: httpx.AsyncClient
) -> None:
    ids = salesforce_server.seed_company_crm()
    cases = {
        "SELECT Id FROM Contact WHERE Phone LIKE '%0001' ORDER BY LastModifiedDate DESC": [
            ids["shared_newer"],
            ids["shared_older"],
        ],
        "SELECT Id FROM Contact WHERE Phone LIKE '%0001' ORDER BY LastModifiedDate DESC LIMIT 1": [
            ids["shared_newer"]
        ],
        "select id from contact where email = 'CARLA.MENDES@example.com'": [ids["email_only"]],
        "SELECT Id FROM Contact WHERE Phone = '(513) 227-1572' OR MobilePhone != null": [
            ids["us_national"],
            ids["mx_with_1"],
        ],
        "SELECT Id FROM Contact WHERE (FirstName = 'Rita' AND LastName IN ('Souza')) "
        "OR Email = null ORDER BY CreatedDate LIMIT 1": [ids["ar_international"]],
        "SELECT Id FROM Contact WHERE NOT FirstName LIKE 'R%' AND Email = null AND Id IN "
        f"('{ids['us_national']}', '{ids['mx_with_1']}')": [ids["us_national"], ids["mx_with_1"]],
    }
    for soql, expected in cases.items():
        response = await _query(sf, soql)
        assert response.status_code == 200, (soql, response.text)
        body = response.json()
        assert [r["Id"] for r in body["records"]] == expected, soql
        assert body["done"] is True and body["totalSize"] == len(expected)
    count = (await _query(sf, "SELECT COUNT() FROM Contact")).json()
    assert count["totalSize"] == len(ids) and count["records"] == []


@pytest.mark.parametrize(
    "soql",
    [
        "SELECT Id FROM Contact WHERE Email = 'a' AND Phone = 'b' OR Name = 'c'",
        "SELECT Id, Account.Name FROM Contact",
        "SELECT Id FROM Contact WHERE CreatedDate = LAST_N_DAYS:7",
        "SELECT Id FROM Contact GROUP BY Email",
        'SELECT Id FROM Contact WHERE Email = "a"',
    ],
)
async def test_soql_it_does_not_understand_is_malformed(
    salesforce_server: SalesforceServer, sf: httpx.AsyncClient, soql: str
) -> None:
    response = await _query(sf, soql)
    assert response.status_code == 400
    assert response.json()[0]["errorCode"] == "MALFORMED_QUERY"
    assert salesforce_server.violations[0].violations[0].startswith("unsupported SOQL")
    salesforce_server.reset()  # expected violation


async def test_soql_unknown_field_or_object_is_the_orgs_answer(
    salesforce_server: SalesforceServer, sf: httpx.AsyncClient
) -> None:
    field = await _query(sf, "SELECT Id, Nope__c FROM Contact")
    assert field.status_code == 400 and field.json()[0]["errorCode"] == "INVALID_FIELD"
    table = await _query(sf, "SELECT Id FROM Lead")
    assert table.status_code == 400 and table.json()[0]["errorCode"] == "INVALID_TYPE"
    assert salesforce_server.violations == []


# --- rows, deletion, agent edits --------------------------------------------------------
async def test_rows_by_id_and_by_external_id(
    salesforce_server: SalesforceServer, sf: httpx.AsyncClient
) -> None:
    created = await sf.patch(
        f"{API}/sobjects/Contact/WA_Contact_Key__c/c-1", json={"LastName": "Okafor"}
    )
    assert created.status_code == 201 and created.json()["created"] is True
    contact = created.json()["id"]
    updated = await sf.patch(
        f"{API}/sobjects/Contact/WA_Contact_Key__c/c-1", json={"FirstName": "Ada"}
    )
    assert updated.status_code == 200 and updated.json()["created"] is False
    old_api = await sf.patch(
        "/services/data/v45.0/sobjects/Contact/WA_Contact_Key__c/c-1", json={"Title": "CEO"}
    )
    assert old_api.status_code == 204
    only = await sf.patch(
        f"{API}/sobjects/Contact/WA_Contact_Key__c/c-2",
        params={"updateOnly": "true"},
        json={"LastName": "x"},
    )
    assert only.status_code == 404
    row = (
        await sf.get(f"{API}/sobjects/Contact/{contact}", params={"fields": "Name,Title"})
    ).json()
    assert row["Name"] == "Ada Okafor" and row["Title"] == "CEO"
    assert row["attributes"]["url"] == f"{API}/sobjects/Contact/{contact}"
    assert (
        await sf.patch(f"{API}/sobjects/Contact/{contact}", json={"Phone": "1"})
    ).status_code == 204
    assert (await sf.delete(f"{API}/sobjects/Contact/{contact}")).status_code == 204
    gone = await sf.get(f"{API}/sobjects/Contact/{contact}")
    assert gone.status_code == 404 and gone.json()[0]["errorCode"] == "ENTITY_IS_DELETED"
    again = await sf.patch(f"{API}/sobjects/Contact/WA_Contact_Key__c/c-1", json={"LastName": "O"})
    assert again.status_code == 201 and again.json()["id"] != contact
    salesforce_server.seed("Contact", LastName="Twin", WA_Contact_Key__c="c-1")
    twins = await sf.patch(f"{API}/sobjects/Contact/WA_Contact_Key__c/c-1", json={"Title": "x"})
    assert twins.status_code == 300 and len(twins.json()) == 2


async def test_composite_create_update_and_delete(
    salesforce_server: SalesforceServer, sf: httpx.AsyncClient
) -> None:
    contact = await _create(sf, "Contact", LastName="Okafor")
    created = await sf.post(
        f"{API}/composite/sobjects",
        json={
            "allOrNone": False,
            "records": [
                {"attributes": {"type": "Case"}, "Subject": "Refund", "ContactId": contact},
                {"attributes": {"type": "Task"}, "Subject": "Hi", "WhoId": contact},
            ],
        },
    )
    case_id, task_id = (r["id"] for r in created.json())
    updated = await sf.patch(
        f"{API}/composite/sobjects",
        json={
            "records": [
                {"attributes": {"type": "Case"}, "Id": case_id, "Status": "Closed"},
                {"attributes": {"type": "Task"}, "Id": task_id, "WhatId": case_id},
            ]
        },
    )
    assert all(r["success"] for r in updated.json())
    case = salesforce_server.get("Case", case_id)
    assert case is not None and case["IsClosed"] is True and case["ClosedDate"]
    read = await sf.get(
        f"{API}/composite/sobjects/Task",
        params={"ids": f"{task_id},00T000000000999AAA", "fields": "WhatId"},
    )
    assert read.json()[0]["WhatId"] == case_id and read.json()[1] is None
    deleted = await sf.delete(f"{API}/composite/sobjects", params={"ids": task_id})
    assert deleted.json()[0]["success"] is True
    assert salesforce_server.objects("Task") == []


async def test_agent_edit_and_delete_helpers(
    salesforce_server: SalesforceServer, sf: httpx.AsyncClient
) -> None:
    ids = salesforce_server.seed_company_crm()
    contact = ids["ar_international"]
    before = salesforce_server.get("Contact", contact)
    assert before is not None
    stamp = before["LastModifiedDate"]
    salesforce_server.agent_edit("Contact", contact, FirstName="Paola Andrea")
    after = salesforce_server.get("Contact", contact)
    assert after is not None and after["LastModifiedDate"] > stamp
    records = [
        {"attributes": {"type": "Contact"}, "WA_Contact_Key__c": "c-1", "LastName": "G"},
    ]
    adopted = await sf.patch(
        f"{API}/composite/sobjects",
        json={
            "records": [
                {"attributes": {"type": "Contact"}, "Id": contact, "WA_Contact_Key__c": "c-1"}
            ]
        },
    )
    assert adopted.json()[0]["success"]
    assert salesforce_server.collection("Contact")["c-1"] is after  # keyed by our key now
    upsert = await sf.patch(
        f"{API}/composite/sobjects/Contact/WA_Contact_Key__c",
        json={"records": [{k: v for k, v in records[0].items() if k != "LastName"}]},
    )
    assert upsert.json()[0]["created"] is False
    assert after["FirstName"] == "Paola Andrea"
    salesforce_server.delete("Contact", contact)
    recreated = await sf.patch(
        f"{API}/composite/sobjects/Contact/WA_Contact_Key__c", json={"records": records}
    )
    assert recreated.json()[0]["created"] is True
    assert salesforce_server.find("Contact", "WA_Contact_Key__c", "c-1") is not after


async def test_requests_are_counted_and_faults_play_by_path(
    salesforce_server: SalesforceServer, sf: httpx.AsyncClient
) -> None:
    salesforce_server.script(status=503, match="/search")
    salesforce_server.script(status=500)
    assert (await _query(sf, "SELECT Id FROM Contact")).status_code == 500
    sosl = "FIND {5132271572} IN PHONE FIELDS RETURNING Contact(Id)"
    assert (await sf.get(f"{API}/search", params={"q": sosl})).status_code == 503
    assert (await sf.get(f"{API}/search", params={"q": sosl})).status_code == 200
    assert salesforce_server.counts() == {"GET query": 1, "GET search": 2}

"""The HubSpot contract server, driven with plain httpx: answers and recorded violations.

The connector tests trust this stand-in; these tests are why: each checks one part of
HubSpot's contract (CRM.md) the way the next connectors will meet it.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from connectors.servers import HubSpotServer, ManualClock

V3 = "/crm/v3/objects"


@pytest.fixture
async def hs(hubspot_server: HubSpotServer) -> AsyncIterator[httpx.AsyncClient]:
    headers = {"Authorization": f"Bearer {hubspot_server.token}"}
    async with httpx.AsyncClient(base_url=hubspot_server.url, headers=headers) as client:
        yield client


async def _create(client: httpx.AsyncClient, object_type: str, **props: str) -> dict[str, Any]:
    response = await client.post(f"{V3}/{object_type}", json={"properties": props})
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


async def _search(client: httpx.AsyncClient, body: dict[str, Any], path: str = V3) -> Any:
    return await client.post(f"{path}/contacts/search", json=body)


def _eq(name: str, value: str, op: str = "EQ") -> dict[str, Any]:
    return {"filterGroups": [{"filters": [{"propertyName": name, "operator": op, "value": value}]}]}


# --- search -----------------------------------------------------------------------------
async def test_search_filters_select_sort_and_page(
    hubspot_server: HubSpotServer, hs: httpx.AsyncClient
) -> None:
    hubspot_server.set_limits(search_per_second=10)  # more than HubSpot's 4 a second
    ids = hubspot_server.seed_company_crm()
    found = await _search(hs, _eq("email", "CARLA.MENDES@example.com"))
    assert found.status_code == 200
    assert [r["id"] for r in found.json()["results"]] == [ids["email_only"]]
    assert set(found.json()["results"][0]["properties"]) >= {"email", "hs_object_id"}

    by_phone = {
        "filterGroups": [
            {
                "filters": [
                    {
                        "propertyName": "hs_searchable_calculated_phone_number",
                        "operator": "IN",
                        "values": ["91123456789", "5132271572"],
                    }
                ]
            }
        ],
        "properties": ["phone", "firstname"],
    }
    answer = (await _search(hs, by_phone)).json()
    assert {r["id"] for r in answer["results"]} == {ids["ar_international"], ids["us_national"]}
    props = answer["results"][0]["properties"]
    assert "phone" in props and "lastname" not in props

    token = _eq("hs_searchable_calculated_mobile_number", "*5678", "CONTAINS_TOKEN")
    assert [r["id"] for r in (await _search(hs, token)).json()["results"]] == [ids["mx_with_1"]]

    shared = {
        **_eq("hs_searchable_calculated_phone_number", "11999990001"),
        "sorts": [{"propertyName": "lastmodifieddate", "direction": "DESCENDING"}],
        "limit": 1,
    }
    first = (await _search(hs, shared)).json()
    assert first["total"] == 2 and first["results"][0]["id"] == ids["shared_newer"]
    second = (await _search(hs, {**shared, "after": first["paging"]["next"]["after"]})).json()
    assert second["results"][0]["id"] == ids["shared_older"] and "paging" not in second

    no_email = _eq("email", "", "NOT_HAS_PROPERTY")
    no_email["filterGroups"][0]["filters"][0].pop("value")
    answer = (await _search(hs, {**no_email, "limit": 200}, "/crm/objects/2026-03")).json()
    assert answer["total"] == len(ids) - 1
    neq = _eq("firstname", "rita", "NEQ")
    assert (await _search(hs, neq)).json()["total"] == len(ids) - 2


@pytest.mark.parametrize(
    ("body", "complaint"),
    [
        ({"filterGroups": [{"filters": []}] * 6}, "is too long"),
        (
            {
                "filterGroups": [
                    {"filters": [{"propertyName": "email", "operator": "HAS_PROPERTY"}] * 11}
                ]
            },
            "is too long",
        ),
        (
            {
                "filterGroups": [
                    {"filters": [{"propertyName": "email", "operator": "HAS_PROPERTY"}] * 9}
                ]
                * 3
            },
            "more than 25 filters",
        ),
        ({"limit": 201}, "greater than the maximum of 200"),
        ({"filterGroups": [{"filters": [{"propertyName": "email", "operator": "EQ"}]}]}, "needs"),
        (_eq("email", "x", "SOUNDS_LIKE"), "is not one of"),
    ],
)
async def test_search_limits_are_a_400_validation_error(
    hubspot_server: HubSpotServer, hs: httpx.AsyncClient, body: dict[str, Any], complaint: str
) -> None:
    response = await _search(hs, body)
    assert response.status_code == 400
    assert response.json()["category"] == "VALIDATION_ERROR"
    assert any(complaint in v for v in hubspot_server.violations[0].violations)
    hubspot_server.reset()  # expected violation


async def test_search_has_its_own_per_second_limit(
    hubspot_server: HubSpotServer, hs: httpx.AsyncClient
) -> None:
    clock = ManualClock()
    hubspot_server.clock = clock
    hubspot_server.set_limits(search_per_second=2)
    statuses = [(await _search(hs, {})).status_code for _ in range(3)]
    assert statuses == [200, 200, 429]
    refused = hubspot_server.requests[-1]
    assert refused.status == 429
    answer = await hs.get(f"{V3}/contacts")  # other endpoints are not held back
    assert answer.status_code == 200
    assert len(hubspot_server.early) == 1  # ... but it came before Retry-After
    hubspot_server.early.clear()
    clock.advance(1.0)
    assert (await _search(hs, {})).status_code == 200
    assert hubspot_server.early == []


async def test_search_429_body_names_the_secondly_policy(
    hubspot_server: HubSpotServer, hs: httpx.AsyncClient
) -> None:
    hubspot_server.clock = ManualClock()
    hubspot_server.set_limits(search_per_second=1)
    await _search(hs, {})
    refused = await _search(hs, {})
    assert refused.status_code == 429 and refused.headers["Retry-After"] == "1"
    assert refused.json()["policyName"] == "SECONDLY"
    assert refused.json()["errorType"] == "RATE_LIMIT"


# --- calculated phone numbers, timestamps ----------------------------------------------
@pytest.mark.parametrize(
    ("phone", "digits"),
    [
        ("+54 9 11 2345-6789", "91123456789"),
        ("+5511999999999", "11999999999"),
        ("513-227-1572", "5132271572"),
        ("+1 (513) 227-1572", "5132271572"),
    ],
)
async def test_calculated_phone_numbers_are_national_digits(
    hs: httpx.AsyncClient, phone: str, digits: str
) -> None:
    created = await _create(hs, "contacts", phone=phone, mobilephone=phone)
    props = created["properties"]
    assert props["hs_searchable_calculated_phone_number"] == digits
    assert props["hs_searchable_calculated_mobile_number"] == digits


async def test_calculated_properties_are_read_only(
    hubspot_server: HubSpotServer, hs: httpx.AsyncClient
) -> None:
    response = await hs.post(
        f"{V3}/contacts",
        json={"properties": {"hs_searchable_calculated_phone_number": "1123456789"}},
    )
    assert response.status_code == 400
    body = response.json()
    assert body["category"] == "VALIDATION_ERROR"
    assert body["message"].startswith("Property values were not valid: [")
    assert body["errors"][0]["code"] == "READ_ONLY_VALUE"
    assert hubspot_server.objects("contacts") == []
    assert hubspot_server.violations == []  # a valid request HubSpot refuses


async def test_every_write_keeps_phone_digits_and_timestamps(hs: httpx.AsyncClient) -> None:
    created = await _create(hs, "contacts", phone="+54 9 11 2345-6789")
    first = created["properties"]
    patched = await hs.patch(
        f"{V3}/contacts/{created['id']}", json={"properties": {"phone": "+52 55 1234 5678"}}
    )
    assert patched.status_code == 200
    props = patched.json()["properties"]
    assert props["hs_searchable_calculated_phone_number"] == "5512345678"
    assert props["createdate"] == first["createdate"]
    assert props["lastmodifieddate"] > first["lastmodifieddate"]
    assert props["hs_lastmodifieddate"] == props["lastmodifieddate"]


# --- merge ------------------------------------------------------------------------------
async def test_merge_moves_associations_and_redirects_the_old_id(
    hubspot_server: HubSpotServer, hs: httpx.AsyncClient
) -> None:
    keep = await _create(hs, "contacts", firstname="Paola", email="paola@example.com")
    other = await _create(hs, "contacts", phone="+5491123456789", lastname="G")
    ticket = await _create(hs, "tickets", subject="Refund", hs_pipeline_stage="1")
    linked = await hs.put(
        f"/crm/v4/objects/contacts/{other['id']}/associations/default/tickets/{ticket['id']}"
    )
    assert linked.status_code == 200
    merged = await hs.post(
        f"{V3}/contacts/merge",
        json={"primaryObjectId": keep["id"], "objectIdToMerge": other["id"]},
    )
    assert merged.status_code == 200
    props = merged.json()["properties"]
    assert props["firstname"] == "Paola" and props["lastname"] == "G"  # empty ones filled
    assert props["hs_merged_object_ids"] == other["id"]
    assert hubspot_server.associations_of("tickets", ticket["id"], "contacts") == [keep["id"]]
    old = await hs.get(f"{V3}/contacts/{other['id']}")
    assert old.status_code == 200 and old.json()["id"] == keep["id"]
    read = await hs.post(
        f"{V3}/contacts/batch/read", json={"properties": ["email"], "inputs": [{"id": other["id"]}]}
    )
    assert [r["id"] for r in read.json()["results"]] == [keep["id"]]
    assert [c["id"] for c in hubspot_server.objects("contacts")] == [keep["id"]]
    itself = await hs.post(
        f"{V3}/contacts/merge",
        json={"primaryObjectId": keep["id"], "objectIdToMerge": other["id"]},
    )
    assert itself.status_code == 400


# --- deals ------------------------------------------------------------------------------
async def test_deal_created_with_inline_association_to_its_contact(
    hubspot_server: HubSpotServer, hs: httpx.AsyncClient
) -> None:
    contact = await _create(hs, "contacts", email="buyer@example.com")
    body = {
        "properties": {
            "dealname": "WhatsApp order 42",
            "dealstage": "closedwon",
            "amount": "1250.50",
            "deal_currency_code": "ARS",
            "closedate": "2026-05-04T10:30:00.000Z",
        },
        "associations": [
            {
                "to": {"id": contact["id"]},
                "types": [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 3}],
            }
        ],
    }
    created = await hs.post("/crm/v3/objects/0-3", json=body)
    assert created.status_code == 201, created.text
    deal = created.json()
    assert deal["properties"]["pipeline"] == "default"
    linked = await hs.get(f"/crm/v4/objects/contacts/{contact['id']}/associations/deals")
    (item,) = linked.json()["results"]
    assert str(item["toObjectId"]) == deal["id"]
    assert item["associationTypes"][0]["typeId"] == 4  # contact → deal, seen from the contact
    assert hubspot_server.requests[-2].endpoint == "POST objects/deals"


@pytest.mark.parametrize(
    ("props", "code"),
    [
        ({"dealname": "x", "dealstage": "nosuchstage"}, "INVALID_OPTION"),
        ({"dealname": "x", "dealstage": "closedwon", "amount": "lots"}, "INVALID_DOUBLE"),
        (
            {"dealname": "x", "dealstage": "closedwon", "deal_currency_code": "usd"},
            "INVALID_OPTION",
        ),
        ({"dealname": "x", "dealstage": "closedwon", "closedate": "soon"}, "INVALID_DATE"),
        ({"dealname": "x", "dealstage": "closedwon", "pipeline": "b2b"}, "INVALID_OPTION"),
    ],
)
async def test_deal_values_are_checked(
    hs: httpx.AsyncClient, props: dict[str, str], code: str
) -> None:
    response = await hs.post(f"{V3}/deals", json={"properties": props})
    assert response.status_code == 400
    assert response.json()["errors"][0]["code"] == code


async def test_deal_needs_name_and_stage(hs: httpx.AsyncClient) -> None:
    response = await hs.post(f"{V3}/deals", json={"properties": {"amount": "5"}})
    assert response.status_code == 400
    assert "dealname" in response.json()["message"]


async def test_deals_in_batches_and_a_second_pipeline(
    hubspot_server: HubSpotServer, hs: httpx.AsyncClient
) -> None:
    hubspot_server.add_pipeline("deals", "b2b", {"new": "New", "won": "Won"})
    pipelines = (await hs.get("/crm/v3/pipelines/deals")).json()["results"]
    assert [p["id"] for p in pipelines] == ["default", "b2b"]
    inputs = [
        {
            "id": f"deal-{i}",
            "idProperty": "wa_deal_key",
            "properties": {"dealname": f"d{i}", "dealstage": "won", "pipeline": "b2b"},
        }
        for i in range(3)
    ]
    first = await hs.post(f"{V3}/deals/batch/upsert", json={"inputs": inputs})
    again = await hs.post("/crm/objects/2026-03/0-3/batch/upsert", json={"inputs": inputs})
    assert first.status_code == again.status_code == 200
    assert [r["new"] for r in first.json()["results"]] == [True] * 3
    assert [r["new"] for r in again.json()["results"]] == [False] * 3
    ticket = await _create(hs, "tickets", subject="s", hs_pipeline_stage="1")
    deal_id = first.json()["results"][0]["id"]
    assoc = await hs.post(
        "/crm/v4/associations/deals/tickets/batch/associate/default",
        json={"inputs": [{"from": {"id": deal_id}, "to": {"id": ticket["id"]}}]},
    )
    assert assoc.status_code == 200
    assert hubspot_server.associations_of("tickets", ticket["id"], "deals") == [deal_id]
    created = await hs.post(
        f"{V3}/deals/batch/create",
        json={"inputs": [{"properties": {"dealname": "n", "dealstage": "closedlost"}}]},
    )
    assert created.status_code == 201
    read = await hs.post(
        f"{V3}/deals/batch/read",
        json={"idProperty": "wa_deal_key", "properties": ["amount"], "inputs": [{"id": "deal-1"}]},
    )
    assert read.json()["results"][0]["id"] == first.json()["results"][1]["id"]
    assert len(hubspot_server.objects("deals")) == 4


# --- properties and groups --------------------------------------------------------------
async def test_property_groups_and_properties(
    hubspot_server: HubSpotServer, hs: httpx.AsyncClient
) -> None:
    group = {"name": "wa_bridge", "label": "WhatsApp"}
    prop = {
        "name": "wa_first_touch",
        "label": "First touch",
        "type": "string",
        "fieldType": "text",
        "groupName": "wa_bridge",
    }
    early = await hs.post("/crm/v3/properties/contacts", json=prop)
    assert early.status_code == 400 and early.json()["errors"][0]["in"] == "groupName"
    assert (await hs.post("/crm/v3/properties/contacts/groups", json=group)).status_code == 201
    assert (await hs.post("/crm/v3/properties/contacts/groups", json=group)).status_code == 409
    names = [g["name"] for g in (await hs.get("/crm/v3/properties/0-1/groups")).json()["results"]]
    assert names == ["contactinformation", "wa_bridge"]
    assert (await hs.post("/crm/v3/properties/contacts", json=prop)).status_code == 201
    assert (await hs.post("/crm/v3/properties/contacts", json=prop)).status_code == 409
    listed = (await hs.get("/crm/properties/2026-03/contacts")).json()["results"]
    assert "wa_first_touch" in {p["name"] for p in listed}
    one = await hs.get("/crm/v3/properties/contacts/hs_searchable_calculated_phone_number")
    assert one.json()["modificationMetadata"]["readOnlyValue"] is True
    assert hubspot_server.violations == []


async def test_an_undefined_property_is_property_doesnt_exist(
    hubspot_server: HubSpotServer, hs: httpx.AsyncClient
) -> None:
    hubspot_server.strict_properties = True
    inputs = [{"id": "c-1", "idProperty": "email", "properties": {"wa_status": "x"}}]
    response = await hs.post(f"{V3}/contacts/batch/upsert", json={"inputs": inputs})
    assert response.status_code == 400
    error = response.json()
    assert error["status"] == "error" and error["category"] == "VALIDATION_ERROR"
    assert "correlationId" in error
    codes = {e["code"] for e in error["errors"]}
    assert codes == {"PROPERTY_DOESNT_EXIST", "INVALID_EMAIL"}
    assert 'Property \\"wa_status\\" does not exist' in error["message"]
    hubspot_server.strict_properties = False  # a portal set up for wa-bridge
    response = await hs.post(
        f"{V3}/contacts",
        json={"properties": {"wa_status": "x", "no_such_thing": "y"}},
    )
    assert response.status_code == 400
    assert [e["in"] for e in response.json()["errors"]] == ["no_such_thing"]


# --- rate limits ------------------------------------------------------------------------
async def test_rate_limit_headers_on_every_answer_and_a_rolling_window(
    hubspot_server: HubSpotServer, hs: httpx.AsyncClient
) -> None:
    clock = ManualClock()
    hubspot_server.clock = clock
    hubspot_server.set_limits(ten_seconds=3, daily=100)
    answers = [await hs.get(f"{V3}/contacts") for _ in range(3)]
    assert [a.headers["X-HubSpot-RateLimit-Remaining"] for a in answers] == ["2", "1", "0"]
    assert [a.headers["X-HubSpot-RateLimit-Daily-Remaining"] for a in answers] == [
        "99",
        "98",
        "97",
    ]
    headers = answers[0].headers
    assert headers["X-HubSpot-RateLimit-Interval-Milliseconds"] == "10000"
    assert headers["X-HubSpot-RateLimit-Max"] == "3"
    assert headers["X-HubSpot-RateLimit-Daily"] == "100"
    assert "X-HubSpot-RateLimit-Secondly" in headers
    clock.advance(4)
    refused = await hs.get(f"{V3}/contacts")
    assert refused.status_code == 429
    assert refused.headers["Retry-After"] == "6"  # the oldest leaves the window in 6 s
    body = refused.json()
    assert body["policyName"] == "TEN_SECONDLY_ROLLING" and body["status"] == "error"
    assert "X-HubSpot-RateLimit-Remaining" in refused.headers
    clock.advance(6)
    assert (await hs.get(f"{V3}/contacts")).status_code == 200
    assert hubspot_server.early == []
    exempt = await hs.post(
        "/crm/v4/associations/contacts/tickets/batch/read", json={"inputs": [{"id": "1"}]}
    )
    assert exempt.status_code == 207  # association batches skip the 10-second window


async def test_daily_budget_runs_out(hubspot_server: HubSpotServer, hs: httpx.AsyncClient) -> None:
    hubspot_server.set_limits(daily=2)
    assert [(await hs.get(f"{V3}/contacts")).status_code for _ in range(2)] == [200, 200]
    refused = await hs.get(f"{V3}/contacts")
    assert refused.status_code == 429 and refused.json()["policyName"] == "DAILY"
    assert int(refused.headers["Retry-After"]) > 0
    assert refused.headers["X-HubSpot-RateLimit-Daily-Remaining"] == "0"
    hubspot_server.early.clear()  # the test sent it on purpose


async def test_a_request_before_retry_after_is_recorded(
    hubspot_server: HubSpotServer, hs: httpx.AsyncClient
) -> None:
    clock = ManualClock()
    hubspot_server.clock = clock
    hubspot_server.enforce_retry_after = True
    hubspot_server.script(status=429, retry_after_s=2)
    assert (await hs.get(f"{V3}/contacts")).status_code == 429
    clock.advance(0.5)
    assert (await hs.get(f"{V3}/contacts")).status_code == 200
    (early,) = hubspot_server.early
    assert early.early_s == pytest.approx(1.5)
    with pytest.raises(AssertionError, match="before Retry-After ran out"):
        hubspot_server.assert_contract_kept()
    hubspot_server.early.clear()
    clock.advance(1.5)
    assert (await hs.get(f"{V3}/contacts")).status_code == 200
    assert hubspot_server.early == []


# --- OAuth ------------------------------------------------------------------------------
async def test_oauth_refresh_token_and_expiry(hubspot_server: HubSpotServer) -> None:
    clock = ManualClock()
    hubspot_server.clock = clock
    oauth = hubspot_server.oauth
    oauth.access_token_lifetime_s = 60
    async with httpx.AsyncClient(base_url=hubspot_server.url) as client:
        token = await client.post(
            "/oauth/v1/token",
            data={
                "grant_type": "refresh_token",
                "client_id": oauth.client_id,
                "client_secret": oauth.client_secret,
                "refresh_token": oauth.refresh_token,
            },
        )
        assert token.status_code == 200
        answer = token.json()
        assert answer["token_type"] == "bearer" and answer["expires_in"] == 60
        assert answer["refresh_token"] == oauth.refresh_token
        bearer = {"Authorization": f"Bearer {answer['access_token']}"}
        ok = await client.get(f"{V3}/contacts", headers=bearer)
        assert ok.status_code == 200
        assert "X-HubSpot-RateLimit-Daily" not in ok.headers  # not sent on OAuth calls
        clock.advance(61)
        expired = await client.get(f"{V3}/contacts", headers=bearer)
        assert expired.status_code == 401
        assert expired.json()["category"] == "EXPIRED_AUTHENTICATION"
        static = {"Authorization": f"Bearer {hubspot_server.token}"}
        assert (await client.get(f"{V3}/contacts", headers=static)).status_code == 200
        bad = await client.post(
            "/oauth/v1/token",
            data={
                "grant_type": "refresh_token",
                "client_id": oauth.client_id,
                "client_secret": oauth.client_secret,
                "refresh_token": "stolen",
            },
        )
        assert bad.status_code == 400 and bad.json()["status"] == "BAD_REFRESH_TOKEN"
    assert hubspot_server.total() == 3 and hubspot_server.total(include_auth=True) == 5


async def test_oauth_authorization_code_and_expire_tokens(hubspot_server: HubSpotServer) -> None:
    oauth = hubspot_server.oauth
    code = oauth.issue_auth_code()
    form = {
        "grant_type": "authorization_code",
        "client_id": oauth.client_id,
        "client_secret": oauth.client_secret,
        "redirect_uri": oauth.redirect_uri,
        "code": code,
    }
    async with httpx.AsyncClient(base_url=hubspot_server.url) as client:
        first = await client.post("/oauth/v1/token", data=form)
        reused = await client.post("/oauth/v1/token", data=form)
        assert first.status_code == 200 and reused.json()["status"] == "BAD_AUTH_CODE"
        bearer = {"Authorization": f"Bearer {first.json()['access_token']}"}
        hubspot_server.expire_tokens()
        expired = await client.get(f"{V3}/contacts", headers=bearer)
        assert expired.json()["category"] == "EXPIRED_AUTHENTICATION"
        as_json = await client.post("/oauth/v1/token", json=form)
        assert as_json.status_code == 400
    assert "form-encoded" in hubspot_server.violations[0].violations[0]
    hubspot_server.reset()  # expected violation


# --- seeding, agent edits, deletion -----------------------------------------------------
async def test_an_agent_edit_survives_an_upsert_that_does_not_name_it(
    hubspot_server: HubSpotServer, hs: httpx.AsyncClient
) -> None:
    ids = hubspot_server.seed_company_crm()
    contact_id = ids["ar_international"]
    before = hubspot_server.get("contacts", contact_id)
    assert before is not None
    stamp = before["properties"]["lastmodifieddate"]
    hubspot_server.agent_edit("contacts", contact_id, firstname="Paola", wa_contact_key="c_1")
    after = hubspot_server.get("contacts", contact_id)
    assert after is not None and after["properties"]["lastmodifieddate"] > stamp
    inputs = [{"id": "c_1", "idProperty": "wa_contact_key", "properties": {"wa_bsuid": "B"}}]
    upsert = await hs.post(f"{V3}/contacts/batch/upsert", json={"inputs": inputs})
    (result,) = upsert.json()["results"]
    assert result["id"] == contact_id and result["new"] is False
    assert result["properties"]["firstname"] == "Paola"
    assert hubspot_server.find("contacts", "wa_contact_key", "c_1") is after


async def test_a_deleted_record_is_recreated_by_the_next_upsert(
    hubspot_server: HubSpotServer, hs: httpx.AsyncClient
) -> None:
    inputs = [{"id": "c_9", "idProperty": "wa_contact_key", "properties": {"firstname": "A"}}]
    first = (await hs.post(f"{V3}/contacts/batch/upsert", json={"inputs": inputs})).json()
    old_id = first["results"][0]["id"]
    hubspot_server.delete("contacts", old_id)
    assert (await hs.get(f"{V3}/contacts/{old_id}")).status_code == 404
    again = (await hs.post(f"{V3}/contacts/batch/upsert", json={"inputs": inputs})).json()
    assert again["results"][0]["new"] is True and again["results"][0]["id"] != old_id
    assert len(hubspot_server.objects("contacts")) == 1
    gone = await hs.post(
        f"{V3}/contacts/batch/read", json={"properties": [], "inputs": [{"id": old_id}]}
    )
    assert gone.status_code == 207 and gone.json()["numErrors"] == 1


async def test_ids_are_read_updated_and_deleted_by_path(hs: httpx.AsyncClient) -> None:
    created = await _create(hs, "contacts", email="a@example.com", wa_contact_key="k-1")
    by_key = await hs.get(
        f"{V3}/contacts/k-1", params={"idProperty": "wa_contact_key", "properties": "email"}
    )
    assert by_key.json()["id"] == created["id"]
    assert by_key.json()["properties"]["email"] == "a@example.com"
    conflict = await hs.post(f"{V3}/contacts", json={"properties": {"email": "A@example.com"}})
    assert conflict.status_code == 409
    assert f"Existing ID: {created['id']}" in conflict.json()["message"]
    assert (await hs.delete(f"{V3}/contacts/{created['id']}")).status_code == 204
    assert (
        await hs.patch(f"{V3}/contacts/{created['id']}", json={"properties": {}})
    ).status_code == 404


# --- accounting and faults --------------------------------------------------------------
async def test_requests_are_counted_per_endpoint(
    hubspot_server: HubSpotServer, hs: httpx.AsyncClient
) -> None:
    inputs = [{"id": "c_1", "idProperty": "wa_contact_key", "properties": {}}]
    for _ in range(2):
        await hs.post(f"{V3}/contacts/batch/upsert", json={"inputs": inputs})
    await hs.post("/crm/objects/2026-03/0-1/search", json={})
    await hs.get(f"{V3}/contacts/1001")
    assert hubspot_server.counts() == {
        "POST objects/contacts/batch/upsert": 2,
        "POST objects/contacts/search": 1,
        "GET objects/contacts/:id": 1,
    }
    assert hubspot_server.total() == 4
    assert hubspot_server.per_thousand(events=8) == 500.0


async def test_faults_play_on_any_endpoint_and_by_path(
    hubspot_server: HubSpotServer, hs: httpx.AsyncClient
) -> None:
    hubspot_server.script(status=500, match="/oauth")  # waits for a token request
    hubspot_server.script(status=503)
    hubspot_server.script(delay_s=0.5)
    assert (await _search(hs, {})).status_code == 503
    with pytest.raises(httpx.ReadTimeout):
        await hs.post(f"{V3}/contacts", json={"properties": {"firstname": "A"}}, timeout=0.2)
    oauth = hubspot_server.oauth
    form = {
        "grant_type": "refresh_token",
        "client_id": oauth.client_id,
        "client_secret": oauth.client_secret,
        "refresh_token": oauth.refresh_token,
    }
    assert (await hs.post("/oauth/v1/token", data=form)).status_code == 500
    assert (await hs.post("/oauth/v1/token", data=form)).status_code == 200
    await asyncio.sleep(0.5)  # the slow create lands after the client gave up
    assert len(hubspot_server.objects("contacts")) == 1


async def test_the_search_limit_is_per_token(hubspot_server: HubSpotServer) -> None:
    hubspot_server.clock = ManualClock()
    hubspot_server.set_limits(search_per_second=1)
    oauth = hubspot_server.oauth
    form = {
        "grant_type": "refresh_token",
        "client_id": oauth.client_id,
        "client_secret": oauth.client_secret,
        "refresh_token": oauth.refresh_token,
    }
    async with httpx.AsyncClient(base_url=hubspot_server.url) as client:
        access = (await client.post("/oauth/v1/token", data=form)).json()["access_token"]
        private = {"Authorization": f"Bearer {hubspot_server.token}"}
        app = {"Authorization": f"Bearer {access}"}
        path = f"{V3}/contacts/search"
        assert (await client.post(path, json={}, headers=private)).status_code == 200
        assert (await client.post(path, json={}, headers=private)).status_code == 429
        assert (await client.post(path, json={}, headers=app)).status_code == 200
    hubspot_server.early.clear()  # the app's search came inside the private token's wait


async def test_a_taken_email_is_a_conflict_in_batches(
    hubspot_server: HubSpotServer, hs: httpx.AsyncClient
) -> None:
    owner = hubspot_server.seed("contacts", email="carla@example.com")
    inputs = [
        {"id": "c_1", "idProperty": "wa_contact_key", "properties": {"email": "Carla@example.com"}},
        {"id": "c_2", "idProperty": "wa_contact_key", "properties": {"firstname": "B"}},
    ]
    upsert = await hs.post(f"{V3}/contacts/batch/upsert", json={"inputs": inputs})
    assert upsert.status_code == 207
    (error,) = upsert.json()["errors"]
    assert error["category"] == "CONFLICT" and f"Existing ID: {owner}" in error["message"]
    assert error["context"]["ids"] == ["c_1"]
    assert len(hubspot_server.objects("contacts")) == 2
    second = hubspot_server.find("contacts", "wa_contact_key", "c_2")
    assert second is not None
    update = [
        {"id": second["id"], "properties": {"firstname": "Bea"}},
        {"id": second["id"], "properties": {"lifecyclestage": "champion"}},
    ]
    refused = await hs.post(f"{V3}/contacts/batch/update", json={"inputs": update})
    assert refused.status_code == 400
    assert second["properties"]["firstname"] == "B"  # nothing of a refused batch is written

"""Subscriptions: create/get/list/delete, every validation message, and the validation handshake.

Source (docs/contract.rst): Altinn/altinn-events src/Events/Controllers/SubscriptionController.cs,
src/Events/Services/{Subscription,AppSubscription,GenericSubscription}Service.cs.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from airflow_provider_altinn_events.emulator.handle import EmulatorHandle

from .conftest import RESOURCE, Receiver, bearer, wait_for

SUBS = "/events/api/v1/subscriptions"
HOOK = "https://www.ttd.no/webhook"
APP_SOURCE = "https://ttd.apps.altinn.no/ttd/endring-av-navn-v2"


def create(api: httpx.Client, token: str, body: Any) -> httpx.Response:
    return api.post(SUBS, json=body, headers=bearer(token))


def test_create_get_list_delete(altinn_emulator: EmulatorHandle, api: httpx.Client, token: str) -> None:
    response = create(api, token, {"endPoint": HOOK, "resourceFilter": RESOURCE, "typeFilter": "a.b"})
    assert response.status_code == 201, response.text
    sub = response.json()
    assert response.headers["location"] == f"/events/api/v1/subscription/{sub['id']}"
    assert sub["endPoint"] == HOOK and sub["resourceFilter"] == RESOURCE and sub["typeFilter"] == "a.b"
    assert sub["consumer"] == sub["createdBy"] == "/organisation/991825827"
    assert sub["validated"] is False and sub["includeSubunits"] is False
    assert sub["created"].endswith("Z") and "subjectFilter" not in sub and "sourceFilter" not in sub
    again = create(
        api, token, {"endpoint": HOOK, "resourcefilter": RESOURCE, "typeFilter": "a.b", "consumer": "x"}
    )
    assert (
        again.status_code == 201 and again.json()["id"] == sub["id"]
    )  # idempotent, case-insensitive binding
    got = api.get(f"{SUBS}/{sub['id']}", headers=bearer(token))
    assert got.status_code == 200 and got.json()["id"] == sub["id"]
    listing = api.get(SUBS, headers=bearer(token)).json()
    assert listing["count"] == 1 and listing["subscriptions"][0]["id"] == sub["id"]
    deleted = api.delete(f"{SUBS}/{sub['id']}", headers=bearer(token))
    assert deleted.status_code == 200 and deleted.content == b""
    assert api.get(f"{SUBS}/{sub['id']}", headers=bearer(token)).status_code == 404
    assert api.delete(f"{SUBS}/{sub['id']}", headers=bearer(token)).status_code == 404
    assert api.get(SUBS, headers=bearer(token)).json() == {"count": 0, "subscriptions": []}


def test_other_identity_gets_403(altinn_emulator: EmulatorHandle, api: httpx.Client, token: str) -> None:
    sub = create(api, token, {"endPoint": HOOK, "resourceFilter": RESOURCE}).json()
    service_owner = altinn_emulator.altinn_token(["altinn:events.subscribe", "altinn:serviceowner"])
    got = api.get(f"{SUBS}/{sub['id']}", headers=bearer(service_owner))
    assert got.status_code == 403 and got.content == b""
    assert api.delete(f"{SUBS}/{sub['id']}", headers=bearer(service_owner)).status_code == 403
    assert api.get(SUBS, headers=bearer(service_owner)).json()["count"] == 0


def test_auth_and_bad_ids(api: httpx.Client, token: str) -> None:
    assert api.get(SUBS).status_code == 401
    assert api.post(SUBS, json={"endPoint": HOOK, "resourceFilter": RESOURCE}).status_code == 401
    assert api.get(f"{SUBS}/1").status_code == 401
    assert api.delete(f"{SUBS}/1").status_code == 401
    bad = api.get(f"{SUBS}/abc", headers=bearer(token))
    assert bad.status_code == 400 and "id" in bad.json()["errors"]


def test_generic_subscription_needs_subscribe_scope(
    altinn_emulator: EmulatorHandle, api: httpx.Client
) -> None:
    publish_only = altinn_emulator.altinn_token(["altinn:events.publish"])
    response = create(api, publish_only, {"endPoint": HOOK, "resourceFilter": RESOURCE})
    assert response.status_code == 403 and response.content == b""


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"resourceFilter": RESOURCE}, "Missing or invalid endpoint to push events towards"),
        (
            {"endPoint": "/relative", "resourceFilter": RESOURCE},
            "Missing or invalid endpoint to push events towards",
        ),
        (
            {"endPoint": "http://www.ttd.no/hook", "resourceFilter": RESOURCE},
            "Missing or invalid endpoint to push events towards",
        ),
        (
            {"endPoint": HOOK, "sourceFilter": "http://x.no/a"},
            "SourceFilter must be an absolute URL with the https scheme.",
        ),
        (
            {"endPoint": HOOK, "resourceFilter": "urn:altinn:resource:Bad"},
            "Resource filter must be a valid urn",
        ),
        ({"endPoint": HOOK}, "Resource filter is required."),
        (
            {"endPoint": HOOK, "resourceFilter": RESOURCE, "sourceFilter": "https://x.no/a"},
            "Source filter is not supported for subscriptions on this resource.",
        ),
        (
            {"endPoint": HOOK, "resourceFilter": RESOURCE, "alternativeSubjectFilter": "/person/1"},
            "AlternativeSubject filter is not supported for subscriptions on this resource.",
        ),
        (
            {"endPoint": HOOK, "resourceFilter": RESOURCE, "includeSubunits": True},
            "IncludeSubunits requires a subject filter.",
        ),
        (
            {"endPoint": HOOK, "sourceFilter": APP_SOURCE},
            "A valid subject to the authenticated identity is required",
        ),
    ],
)
def test_validation_messages_are_bare_json_strings(
    api: httpx.Client, token: str, body: dict[str, Any], message: str
) -> None:
    response = create(api, token, body)
    assert response.status_code == 400
    assert response.headers["content-type"].startswith("application/json")
    assert response.text == f'"{message}"'


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (
            {"endPoint": HOOK, "sourceFilter": APP_SOURCE, "alternativeSubjectFilter": "/person/01038712345"},
            "A valid subject to the authenticated identity is required",
        ),
        (
            {"endPoint": HOOK, "sourceFilter": APP_SOURCE, "includeSubunits": True},
            "IncludeSubunits requires a subject filter.",
        ),
        (
            {"endPoint": HOOK, "sourceFilter": APP_SOURCE + "/extra"},
            "A valid app id is required in source filter {environment}/{org}/{app}",
        ),
        (
            {
                "endPoint": HOOK,
                "sourceFilter": APP_SOURCE,
                "resourceFilter": "urn:altinn:resource:app_ttd_other",
            },
            "Provided resource filter and source filter are not compatible",
        ),
    ],
)
def test_app_subscription_validation(
    altinn_emulator: EmulatorHandle, api: httpx.Client, body: dict[str, Any], message: str
) -> None:
    service_owner = altinn_emulator.altinn_token(["altinn:serviceowner"])
    response = create(api, service_owner, body)
    assert response.status_code == 400
    assert response.json() == message


def test_app_subscription_as_service_owner(altinn_emulator: EmulatorHandle, api: httpx.Client) -> None:
    service_owner = altinn_emulator.altinn_token(["altinn:serviceowner"])  # no subscribe scope needed
    response = create(
        api,
        service_owner,
        {"endPoint": HOOK, "sourceFilter": APP_SOURCE, "typeFilter": "app.instance.process.completed"},
    )
    assert response.status_code == 201, response.text
    sub = response.json()
    assert sub["resourceFilter"] == "urn:altinn:resource:app_ttd_endring-av-navn-v2"
    assert sub["consumer"] == "/org/ttd"


def test_policy_denial_message(altinn_emulator: EmulatorHandle, api: httpx.Client, token: str) -> None:
    altinn_emulator.add_access(RESOURCE, "/org/someone-else", ["subscribe"])
    response = create(api, token, {"endPoint": HOOK, "resourceFilter": RESOURCE})
    assert response.status_code == 403
    assert response.json() == f"Not authorized to create a subscription for resource {RESOURCE}."


def test_malformed_bodies(api: httpx.Client, token: str) -> None:
    response = api.post(SUBS, content=b"{oops", headers={**bearer(token), "Content-Type": "application/json"})
    assert response.status_code == 400 and "$" in response.json()["errors"]
    response = api.post(SUBS, content=b"endPoint=x", headers={**bearer(token), "Content-Type": "text/plain"})
    assert response.status_code == 415
    response = create(api, token, {"endPoint": 5, "resourceFilter": RESOURCE})
    assert response.status_code == 400 and "$.endPoint" in response.json()["errors"]
    response = create(api, token, ["not", "an", "object"])
    assert response.status_code == 400


def test_put_validate_needs_platform_access(
    altinn_emulator: EmulatorHandle, api: httpx.Client, token: str
) -> None:
    sub = create(api, token, {"endPoint": HOOK, "resourceFilter": RESOURCE}).json()
    assert api.put(f"{SUBS}/validate/{sub['id']}").status_code == 401
    assert api.put(f"{SUBS}/validate/{sub['id']}", headers=bearer(token)).status_code == 403
    pat = {"PlatformAccessToken": altinn_emulator.platform_access_token("platform", "events")}
    response = api.put(f"{SUBS}/validate/{sub['id']}", headers=pat)
    assert response.status_code == 200 and response.json()["id"] == sub["id"]
    assert api.get(f"{SUBS}/{sub['id']}", headers=bearer(token)).json()["validated"] is True
    assert api.put(f"{SUBS}/validate/999", headers=pat).status_code == 404


def test_http_webhooks_need_the_flag(altinn_emulator_factory: Any) -> None:
    strict = altinn_emulator_factory(allow_http_webhooks=False)
    with httpx.Client(base_url=strict.base_url) as client:
        response = create(
            client, strict.altinn_token(), {"endPoint": "http://127.0.0.1:9/hook", "resourceFilter": RESOURCE}
        )
    assert response.json() == "Missing or invalid endpoint to push events towards"


def test_validation_handshake(
    altinn_emulator: EmulatorHandle, api: httpx.Client, token: str, receiver: Receiver
) -> None:
    sub = create(api, token, {"endPoint": receiver.url, "resourceFilter": RESOURCE}).json()
    wait_for(lambda: api.get(f"{SUBS}/{sub['id']}", headers=bearer(token)).json()["validated"])
    (request,) = receiver.requests
    assert request["headers"]["Content-Type"] == "application/json; charset=utf-8"
    body = request["json"]
    assert set(body) == {"specversion", "id", "source", "type"}
    assert body["type"] == "platform.events.validatesubscription"
    assert body["source"] == f"{altinn_emulator.base_url}/events/api/v1/subscriptions/{sub['id']}"


def test_validation_retried_until_success(api: httpx.Client, token: str, receiver: Receiver) -> None:
    for status in (500, 404, 503):
        receiver.statuses.put(status)
    sub = create(api, token, {"endPoint": receiver.url, "resourceFilter": RESOURCE}).json()
    wait_for(lambda: api.get(f"{SUBS}/{sub['id']}", headers=bearer(token)).json()["validated"])
    assert [r["status"] for r in receiver.requests] == [500, 404, 503, 200]


def test_validation_gives_up_after_the_schedule(
    altinn_emulator: EmulatorHandle, api: httpx.Client, token: str, receiver: Receiver
) -> None:
    receiver.default_status = 500
    sub = create(api, token, {"endPoint": receiver.url, "resourceFilter": RESOURCE}).json()
    wait_for(lambda: len(receiver.requests) == 9)  # first try + 8 retries of the real schedule's length
    assert api.get(f"{SUBS}/{sub['id']}", headers=bearer(token)).json()["validated"] is False


def test_tt02_apps_domain_is_an_app_subscription(altinn_emulator: EmulatorHandle, api: httpx.Client) -> None:
    owner = altinn_emulator.altinn_token(["altinn:serviceowner"])
    response = create(
        api, owner, {"endPoint": HOOK, "sourceFilter": "https://ttd.apps.tt02.altinn.no/ttd/apps-test"}
    )
    assert response.status_code == 201, response.text
    assert response.json()["resourceFilter"] == "urn:altinn:resource:app_ttd_apps-test"

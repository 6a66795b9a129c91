"""App events: ``POST /app``, ``GET /app/{org}/{app}`` and ``GET /app/party``.

Source (docs/contract.rst): Altinn/altinn-events src/Events/Controllers/AppController.cs (Post, GetForOrg,
GetForParty, ValidateQueryParams, SetNextLink) and src/Events/Extensions/AppCloudEventExtensions.cs.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from airflow_provider_altinn_events.emulator.handle import EmulatorHandle

from .conftest import bearer, problem_detail

SOURCE = (
    "https://ttd.apps.altinn.no/ttd/endring-av-navn-v2/instances/1337/6fb3f738-6800-4f29-9f3e-1c66862656cd"
)
APP_EVENT = {
    "specversion": "1.0",
    "source": SOURCE,
    "type": "app.instance.created",
    "subject": "/party/1337",
    "alternativesubject": "/person/01038712345",
    "data": {"dropped": True},
    "contenttype": "application/json",
}


@pytest.fixture
def pat(altinn_emulator: EmulatorHandle) -> dict[str, str]:
    return {"PlatformAccessToken": altinn_emulator.platform_access_token("ttd", "endring-av-navn-v2")}


def post_app(api: httpx.Client, token: str, body: Any, headers: dict[str, str]) -> httpx.Response:
    return api.post("/events/api/v1/app", json=body, headers={**bearer(token), **headers})


def test_post_app_event(
    altinn_emulator: EmulatorHandle, api: httpx.Client, token: str, pat: dict[str, str]
) -> None:
    response = post_app(api, token, APP_EVENT, pat)
    assert response.status_code == 201, response.text
    assert response.headers["location"] == "/party/1337"
    new_id = response.json()
    owner = altinn_emulator.altinn_token(["altinn:serviceowner"])
    events = api.get(
        "/events/api/v1/app/ttd/endring-av-navn-v2", params={"after": "0"}, headers=bearer(owner)
    ).json()
    (event,) = events
    assert event["id"] == new_id and event["time"].endswith("Z")
    assert event["resource"] == "urn:altinn:resource:app_ttd_endring-av-navn-v2"
    assert event["resourceinstance"] == "1337/6fb3f738-6800-4f29-9f3e-1c66862656cd"
    assert event["alternativesubject"] == "/person/01038712345"
    assert "data" not in event and "contenttype" not in event and "datacontenttype" not in event


def test_post_app_event_auth_and_validation(
    api: httpx.Client, token: str, pat: dict[str, str], altinn_emulator: EmulatorHandle
) -> None:
    assert api.post("/events/api/v1/app", json=APP_EVENT, headers=pat).status_code == 401
    missing_pat = post_app(api, token, APP_EVENT, {})
    assert missing_pat.status_code == 403 and missing_pat.content == b""
    wrong_type = api.post(
        "/events/api/v1/app", content=b"x", headers={**bearer(token), **pat, "Content-Type": "text/plain"}
    )
    assert wrong_type.status_code == 415
    response = post_app(api, token, {**APP_EVENT, "subject": None}, pat)
    assert problem_detail(response) == "Missing parameter values: source, subject and type cannot be null"
    other_app = {"PlatformAccessToken": altinn_emulator.platform_access_token("ttd", "another-app")}
    response = post_app(api, token, APP_EVENT, other_app)
    assert response.status_code == 401
    assert response.json() == f"ttd/another-app is not authorized to create events for {SOURCE}"


def test_get_for_org_requires_org_claim(
    altinn_emulator: EmulatorHandle, api: httpx.Client, token: str
) -> None:
    path = "/events/api/v1/app/ttd/endring-av-navn-v2"
    assert api.get(path, params={"after": "0"}).status_code == 401
    response = api.get(path, params={"after": "0"}, headers=bearer(token))
    assert response.status_code == 401 and response.json() == "Only orgs can call this api"


@pytest.mark.parametrize(
    ("params", "headers", "detail"),
    [
        ({}, {}, "The 'From' or 'After' parameter must be defined."),
        (
            {"from": "2022-07-07T11:00:53"},
            {},
            "The 'From' parameter must specify timezone. E.g. 2022-07-07T11:00:53.3917Z for UTC",
        ),
        (
            {"after": "0", "to": "2022-07-07T11:00:53"},
            {},
            "The 'To' parameter must specify timezone. E.g. 2022-07-07T11:00:53.3917Z for UTC",
        ),
        ({"after": "0", "size": "0"}, {}, "The 'Size' parameter must be a number larger that 0."),
        (
            {"after": "0", "party": "1"},
            {"person": "01038712345"},
            "Only one of 'Party' or 'Person' can be defined.",
        ),
        (
            {"after": "0", "party": "1", "unit": "991825827"},
            {},
            "Only one of 'Party' or 'Unit' can be defined.",
        ),
        ({"after": "0", "unit": "12345"}, {}, "Value of 'Unit' needs to be exactly 9 digits."),
    ],
)
def test_get_for_org_validation(
    altinn_emulator: EmulatorHandle,
    api: httpx.Client,
    params: dict[str, str],
    headers: dict[str, str],
    detail: str,
) -> None:
    owner = altinn_emulator.altinn_token(["altinn:serviceowner"])
    response = api.get("/events/api/v1/app/ttd/app", params=params, headers={**bearer(owner), **headers})
    assert response.status_code == 400
    assert problem_detail(response) == detail


def test_get_for_org_filters_and_next(
    altinn_emulator: EmulatorHandle, api: httpx.Client, token: str, pat: dict[str, str]
) -> None:
    for kind in ("app.instance.created", "app.instance.process.completed", "App.Instance.Created"):
        assert post_app(api, token, {**APP_EVENT, "type": kind}, pat).status_code == 201
    owner = altinn_emulator.altinn_token(["altinn:serviceowner"])
    response = api.get(
        "/events/api/v1/app/ttd/endring-av-navn-v2",
        params=[("from", "2020-01-01T00:00:00Z"), ("type", "app.instance.created"), ("party", "1337")],
        headers=bearer(owner),
    )
    events = response.json()
    assert [e["type"] for e in events] == ["app.instance.created", "App.Instance.Created"]  # ILIKE
    assert response.headers["next"] == (
        f"{altinn_emulator.base_url}/events/api/v1/app/ttd/endring-av-navn-v2?after={events[-1]['id']}"
        "&from=2020-01-01T00:00:00Z&type=app.instance.created&party=1337"
    )
    later = api.get(
        "/events/api/v1/app/ttd/endring-av-navn-v2",
        params={"from": "2999-01-01T00:00:00Z"},
        headers=bearer(owner),
    )
    assert later.json() == [] and "next" not in later.headers
    big = api.get(
        "/events/api/v1/app/ttd/endring-av-navn-v2",
        params={"after": "0", "size": "5000"},
        headers=bearer(owner),
    )
    assert len(big.json()) == 3  # no upper clamp, no error


def test_get_for_party(api: httpx.Client, token: str, pat: dict[str, str]) -> None:
    post_app(api, token, APP_EVENT, pat)
    response = api.get("/events/api/v1/app/party", params={"after": "0"}, headers=bearer(token))
    assert (
        problem_detail(response)
        == "Subject must be specified using either query params party or unit or header value person."
    )
    response = api.get(
        "/events/api/v1/app/party",
        params={"after": "0", "party": "1337", "source": "https://ttd.apps.altinn.no/ttd/%"},
        headers=bearer(token),
    )
    assert [e["subject"] for e in response.json()] == ["/party/1337"]
    assert (
        api.get("/events/api/v1/app/party", params={"after": "0", "party": "1"}, headers=bearer(token)).json()
        == []
    )
    unknown_person = api.get(
        "/events/api/v1/app/party", params={"after": "0"}, headers={**bearer(token), "person": "01038712345"}
    )
    assert unknown_person.status_code == 404
    bad_party = api.get(
        "/events/api/v1/app/party", params={"after": "0", "party": "x"}, headers=bearer(token)
    )
    assert bad_party.status_code == 400 and "party" in bad_party.json()["errors"]

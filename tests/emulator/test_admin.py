"""Admin endpoints: names, bodies, validation and reset.

No Altinn source: the admin API is the emulator's own (docs/guides/emulator.rst); generated events follow the
written-back rules of docs/contract.rst (SDK JsonEventFormatter).
"""

from __future__ import annotations

import httpx
import pytest

from airflow_provider_altinn_events.emulator.handle import (
    EmulatorHandle,
    generate_private_key_pem,
    public_key_pem,
)

from .conftest import RESOURCE, get_events


def test_health_and_stats_shape(altinn_emulator: EmulatorHandle, api: httpx.Client) -> None:
    assert api.get("/_emulator/health").json()["status"] == "ok"
    stats = altinn_emulator.stats()
    for key in ("requests", "token_grants", "token_exchanges", "events", "deliveries"):
        assert key in stats
    assert stats["requests"] == {}  # admin calls are not counted


def test_generate_returns_ids_and_events_behave_as_published(
    altinn_emulator: EmulatorHandle, api: httpx.Client, token: str
) -> None:
    response = api.post(
        "/_emulator/events/generate",
        json={
            "resource": RESOURCE,
            "count": 3,
            "type": "gen.t",
            "subject": "/party/9",
            "source": "urn:gen:src",
        },
    )
    assert response.status_code == 201
    ids = response.json()
    events = get_events(
        api, token, {"resource": RESOURCE, "after": "0", "type": "gen.%", "subject": "/party/9"}
    ).json()
    assert [e["id"] for e in events][0] == ids["first_id"] and events[-1]["id"] == ids["last_id"]
    assert {(e["type"], e["source"], e["specversion"]) for e in events} == {("gen.t", "urn:gen:src", "1.0")}
    assert altinn_emulator.stats()["events"] == 3


@pytest.mark.parametrize(
    "body",
    [
        {"count": 3},
        {"resource": "not a urn", "count": 3},
        {"resource": RESOURCE, "count": 0},
        {"resource": RESOURCE, "count": "many"},
        {"resource": RESOURCE, "type": 5},
    ],
)
def test_generate_validation(api: httpx.Client, body: dict[str, object]) -> None:
    response = api.post("/_emulator/events/generate", json=body)
    assert response.status_code == 400 and response.json()["error"]


def test_client_registration_validation(api: httpx.Client) -> None:
    pem = public_key_pem(generate_private_key_pem())
    good = {
        "client_id": "c1",
        "public_key_pem": pem,
        "kid": "k1",
        "scopes": ["altinn:events.subscribe"],
        "orgnumber": "310000000",
        "org": "skd",
    }
    response = api.post("/_emulator/clients", json=good)
    assert response.status_code == 201
    assert response.json() == {
        "client_id": "c1",
        "kid": "k1",
        "scopes": ["altinn:events.subscribe"],
        "orgnumber": "310000000",
        "org": "skd",
    }
    for broken in (
        {**good, "client_id": ""},
        {k: v for k, v in good.items() if k != "kid"},
        {**good, "public_key_pem": "garbage"},
        {**good, "orgnumber": "12"},
        {**good, "jwk": {"kty": "RSA"}},
        {**good, "scopes": "a b", "orgnumber": "x"},
    ):
        assert api.post("/_emulator/clients", json=broken).status_code == 400, broken


def test_access_rule_validation(api: httpx.Client) -> None:
    ok = api.post(
        "/_emulator/access", json={"resource": RESOURCE, "consumer": "/org/ttd", "actions": ["subscribe"]}
    )
    assert ok.status_code == 201 and ok.json()["actions"] == ["subscribe"]
    for broken in (
        {"consumer": "/org/ttd"},
        {"resource": RESOURCE, "consumer": "ttd"},
        {"resource": RESOURCE, "consumer": "/org/ttd", "actions": ["delete"]},
    ):
        assert api.post("/_emulator/access", json=broken).status_code == 400


def test_platform_access_token_endpoint(api: httpx.Client) -> None:
    response = api.post("/_emulator/platform-access-token", json={"org": "ttd", "app": "a"})
    assert response.status_code == 200 and response.json()["token"].count(".") == 2
    assert api.post("/_emulator/platform-access-token", json={"org": "ttd"}).status_code == 400


def test_admin_bad_json_and_content_type(api: httpx.Client) -> None:
    response = api.post("/_emulator/clients", content=b"{bad", headers={"Content-Type": "application/json"})
    assert response.status_code == 400 and "malformed JSON" in response.json()["error"]
    response = api.post(
        "/_emulator/clients", content=b"a=b", headers={"Content-Type": "application/x-www-form-urlencoded"}
    )
    assert response.status_code == 415
    assert api.get("/_emulator/nothing").status_code == 404


def test_reset_forgets_everything(altinn_emulator: EmulatorHandle, api: httpx.Client, token: str) -> None:
    altinn_emulator.generate(RESOURCE, 10)
    altinn_emulator.add_fault(path="/nowhere", status=500)
    altinn_emulator.add_access(RESOURCE, "/org/x", ["read"])
    get_events(api, token, {"resource": RESOURCE, "after": "0"})
    assert api.post("/_emulator/reset").json() == {"status": "reset"}
    stats = altinn_emulator.stats()
    assert stats["events"] == 0 and stats["requests"] == {} and stats["token_grants"] == 0
    assert api.get("/_emulator/faults").json() == {"faults": []}
    # the client is gone too
    with pytest.raises(httpx.HTTPStatusError):
        altinn_emulator.maskinporten_token()

"""Rules of Altinn Events the emulator follows, each test citing its source (docs/contract.rst).

Sources: ``src/...`` = Altinn/altinn-events at d7232ac8; ``SDK`` = cloudevents/sdk-csharp v2.9.0 (pinned by
``src/Events/Altinn.Platform.Events.csproj``); ``AUTH`` = Altinn/altinn-authentication.
"""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

import httpx
import jwt
import pytest

from airflow_provider_altinn_events.emulator.handle import EmulatorHandle
from airflow_provider_altinn_events.emulator.keys import KeySet

from .conftest import CE_JSON, RESOURCE, Receiver, bearer, get_events, make_event, publish, wait_for

SUBS = "/events/api/v1/subscriptions"


def _read(api: httpx.Client, token: str) -> list[dict[str, Any]]:
    response = get_events(api, token, {"resource": RESOURCE, "after": "0", "size": 1000})
    assert response.status_code == 200, response.text
    return list(json.loads(response.text))


def _subscribe(api: httpx.Client, token: str, receiver: Receiver, **filters: object) -> int:
    sub = api.post(
        SUBS, json={"endPoint": receiver.url, "resourceFilter": RESOURCE, **filters}, headers=bearer(token)
    ).json()
    wait_for(lambda: api.get(f"{SUBS}/{sub['id']}", headers=bearer(token)).json()["validated"])
    receiver.requests.clear()
    return int(sub["id"])


def test_data_without_datacontenttype_comes_back_as_application_json(
    api: httpx.Client, token: str, receiver: Receiver
) -> None:
    """SDK JsonEventFormatter.PopulateDataFromStructuredEvent: ``DataContentType ??= "application/json"`` when
    ``data`` is present; Serialize writes it back (GET /events and the pushed body)."""
    _subscribe(api, token, receiver)
    assert publish(api, token, make_event("with-data", data={"a": 1})).status_code == 200
    assert publish(api, token, make_event("no-data")).status_code == 200
    assert publish(api, token, make_event("b64", data_base64="aGk=")).status_code == 200
    events = {e["id"]: e for e in _read(api, token)}
    assert events["with-data"]["datacontenttype"] == "application/json"
    assert "datacontenttype" not in events["no-data"]
    assert "datacontenttype" not in events["b64"]  # binary data: no content type is inferred
    wait_for(lambda: len(receiver.requests) == 3)
    pushed = {r["json"]["id"]: r["json"] for r in receiver.requests}
    assert pushed["with-data"]["datacontenttype"] == "application/json"


def test_time_is_written_back_by_timestamps_format_utc_in_get_offset_in_push(
    api: httpx.Client, token: str, receiver: Receiver
) -> None:
    """SDK Timestamps.Format: no fraction for whole seconds, else 3, 6 or 7 digits as the value needs (not
    trimmed); src/Events/Repository/CloudEventRepository.cs DeserializeAndConvertTime converts to UTC on
    read; the push path (Wolverine InboundEventHandler -> Serialize) keeps the publisher's offset."""
    _subscribe(api, token, receiver)
    times = {
        "whole": ("2026-11-26T10:00:00.000Z", "2026-11-26T10:00:00Z", "2026-11-26T10:00:00Z"),
        "millis": ("2026-11-26T10:00:00.5Z", "2026-11-26T10:00:00.500Z", "2026-11-26T10:00:00.500Z"),
        "micros": ("2026-11-26T10:00:00.1234Z", "2026-11-26T10:00:00.123400Z", "2026-11-26T10:00:00.123400Z"),
        "ticks": (
            "2026-11-26T10:00:00.12345678Z",
            "2026-11-26T10:00:00.1234567Z",
            "2026-11-26T10:00:00.1234567Z",
        ),
        "offset": ("2026-11-26T11:00:00+01:00", "2026-11-26T10:00:00Z", "2026-11-26T11:00:00+01:00"),
        "zero offset": ("2026-11-26T10:00:00-00:00", "2026-11-26T10:00:00Z", "2026-11-26T10:00:00Z"),
    }
    for name, (sent, _, _) in times.items():
        assert publish(api, token, make_event(name, time=sent)).status_code == 200
    served = {e["id"]: e["time"] for e in _read(api, token)}
    assert served == {name: get for name, (_, get, _) in times.items()}
    wait_for(lambda: len(receiver.requests) == len(times))
    pushed = {r["json"]["id"]: r["json"]["time"] for r in receiver.requests}
    assert pushed == {name: push for name, (_, _, push) in times.items()}


def test_extension_values_are_stored_as_strings(api: httpx.Client, token: str) -> None:
    """SDK JsonEventFormatter.PopulateAttributesFromStructuredEvent: a Number extension is read with
    GetInt32 and a boolean as "true"/"false", then set with SetAttributeFromString (a string attribute)."""
    event = make_event("typed", priority=7, urgent=True, flag=False)
    assert publish(api, token, event).status_code == 200
    (served,) = _read(api, token)
    assert (served["priority"], served["urgent"], served["flag"]) == ("7", "true", "false")


def test_numbers_in_data_keep_their_text(api: httpx.Client, token: str) -> None:
    """System.Text.Json keeps a number's text (JsonElement) and writes it back; 1e400 is valid JSON and
    must not come back as Infinity. NaN/Infinity literals are not JSON (JsonDocument refuses them)."""
    text = json.dumps(make_event("numbers", data={"n": "@"})).replace(
        '"@"', "[1e400, -0, 1.50, 123456789012345678901234567890]"
    )
    response = api.post(
        "/events/api/v1/events", content=text, headers={**bearer(token), "Content-Type": CE_JSON}
    )
    assert response.status_code == 200
    page = get_events(api, token, {"resource": RESOURCE, "after": "0"})
    assert "[1e400,-0,1.50,123456789012345678901234567890]" in page.text.replace(" ", "")
    bad = json.dumps(make_event("nan", data={"n": "@"})).replace('"@"', "NaN")
    refused = api.post(
        "/events/api/v1/events", content=bad, headers={**bearer(token), "Content-Type": CE_JSON}
    )
    assert refused.status_code == 400 and "invalid start of a value" in refused.text


@pytest.mark.parametrize("depth", [1000, 100_000])
def test_deep_nesting_is_a_400_not_a_crash(api: httpx.Client, token: str, depth: int) -> None:
    """System.Text.Json JsonDocumentOptions.MaxDepth 64 (default): deeper JSON is refused with 400."""
    text = json.dumps(make_event("deep", data="@")).replace('"@"', "[" * depth + "]" * depth)
    response = api.post(
        "/events/api/v1/events", content=text, headers={**bearer(token), "Content-Type": CE_JSON}
    )
    assert response.status_code == 400 and "maximum configured depth of 64" in response.text


def test_lone_surrogate_in_an_attribute_is_a_400(api: httpx.Client, token: str) -> None:
    """System.Text.Json GetString: "Cannot read invalid UTF-16 JSON text as string" -> errors.RequestBody."""
    text = json.dumps(make_event("x", subject="@")).replace('"@"', '"\\udc00"')
    response = api.post(
        "/events/api/v1/events", content=text, headers={**bearer(token), "Content-Type": CE_JSON}
    )
    assert response.status_code == 400 and "Invalid surrogate value" in response.text


@pytest.mark.parametrize("raw", ["99999999999999999999999", "2147483648", "1_0", "１"])
def test_subscription_ids_beyond_int32_or_not_ascii_digits_are_400(
    api: httpx.Client, token: str, raw: str
) -> None:
    """src/Events/Controllers/SubscriptionController.cs ``Get(int id)``: model binding (int.Parse) fails -> 400."""
    for method in ("GET", "DELETE"):
        response = api.request(method, f"{SUBS}/{raw}", headers=bearer(token))
        assert response.status_code == 400, (method, response.status_code)
        assert response.json()["errors"]["id"]


def test_next_link_with_non_ascii_query_values_is_sent(api: httpx.Client, token: str) -> None:
    """src/Events/Controllers/EventsController.cs SetNextLink copies decoded values into the header.
    Deviation: Kestrel refuses non-ASCII header values (Altinn answers 500); the emulator percent-encodes."""
    assert publish(api, token, make_event("æ-event", type="tøy")).status_code == 200
    response = get_events(api, token, {"resource": RESOURCE, "after": "0", "type": "tøy"})
    assert response.status_code == 200
    assert response.headers["next"].endswith("&type=t%C3%B8y")


def test_wrong_method_lists_every_allowed_method(api: httpx.Client, token: str) -> None:
    """ASP.NET routing answers 405 with ``Allow`` naming every method of the route (GET and POST /events)."""
    response = api.put("/events/api/v1/events", headers=bearer(token))
    assert response.status_code == 405
    assert response.headers["allow"] == "GET, POST"


@pytest.mark.parametrize(
    ("value", "status"),
    [
        ("2020-01-01Z", 200),  # AppControllerTests sends from=2020-01-01Z
        ("2020-01-01T00:00:00+01:00", 200),
        ("2020-01-01T00:00:00Z", 200),
        ("2020-01-01", 400),  # Kind Unspecified: "The 'From' parameter must specify timezone"
        ("yesterday", 400),  # model binding fails
    ],
)
def test_app_events_from_is_bound_as_datetime(
    altinn_emulator: EmulatorHandle, api: httpx.Client, value: str, status: int
) -> None:
    """src/Events/Controllers/AppController.cs GetForOrg: ``DateTime? from`` (DateTime.Parse, AdjustToUniversal)
    and ValidateQueryParams (Kind Unspecified -> 400)."""
    token = altinn_emulator.altinn_token(scopes=["altinn:serviceowner", "altinn:events.subscribe"])
    response = api.get("/events/api/v1/app/ttd/apps-test", params={"from": value}, headers=bearer(token))
    assert response.status_code == status, response.text


def test_openapi_document_is_served(api: httpx.Client) -> None:
    response = api.get("/openapi.json")
    assert response.status_code == 200
    doc = response.json()
    assert doc["openapi"].startswith("3.") and "/events/api/v1/events" in doc["paths"]


def test_generate_is_capped_and_names_the_field(api: httpx.Client) -> None:
    """Issue 12 item 10: one call may not create millions of events (documented in the emulator guide)."""
    response = api.post("/_emulator/events/generate", json={"resource": RESOURCE, "count": 10_000_000})
    assert response.status_code == 400 and "count" in response.json()["error"]
    big = api.post(
        "/_emulator/events/generate", json={"resource": RESOURCE, "count": 200_000, "data": {"x": "y" * 5000}}
    )
    assert big.status_code == 400 and "MiB" in big.json()["error"]


@pytest.mark.parametrize(
    "issuer", ["", "http", "/maskinporten/", "maskinporten/.well-known", "{base}/maskinporten"]
)
def test_exchange_compares_the_issuer_exactly(
    altinn_emulator: EmulatorHandle, api: httpx.Client, emulator_keys: KeySet, issuer: str
) -> None:
    """AUTH src/Authentication/Controllers/AuthenticationController.cs checks that ``iss`` is a substring of the
    configured well-known URL, so "" or a fragment passes there; the emulator compares exactly (issue 12
    item 10, docs/contract.rst)."""
    now = int(time.time())
    claims = {
        "iss": issuer.format(base=altinn_emulator.base_url),
        "client_id": altinn_emulator.client_id,
        "consumer": {"authority": "iso6523-actorid-upis", "ID": "0192:991825827"},
        "scope": "altinn:events.subscribe",
        "iat": now,
        "exp": now + 120,
        "jti": str(uuid.uuid4()),
    }
    forged = jwt.encode(
        claims,
        emulator_keys.maskinporten.private_key,
        algorithm="RS256",
        headers={"kid": emulator_keys.maskinporten.kid},
    )
    response = api.get("/authentication/api/v1/exchange/maskinporten", headers=bearer(forged))
    assert response.status_code == 401
    exact = jwt.encode(
        {**claims, "iss": f"{altinn_emulator.base_url}/maskinporten/"},
        emulator_keys.maskinporten.private_key,
        algorithm="RS256",
        headers={"kid": emulator_keys.maskinporten.kid},
    )
    assert api.get("/authentication/api/v1/exchange/maskinporten", headers=bearer(exact)).status_code == 200


def test_early_years_keep_four_digits(api: httpx.Client, token: str) -> None:
    """SDK Timestamps.TryParse accepts year 0001-9999 ("yyyy"); Timestamps.Format writes four digits."""
    assert publish(api, token, make_event("year-5", time="0005-01-01T00:00:00Z")).status_code == 200
    assert publish(api, token, make_event("year-0", time="0000-01-01T00:00:00Z")).status_code == 400
    (served,) = _read(api, token)
    assert served["time"] == "0005-01-01T00:00:00Z"

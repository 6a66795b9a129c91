"""Events built with the ``cloudevents`` Python SDK (2.x, ``cloudevents.core`` and ``cloudevents.v1``)
round-trip through the hook's client (publish), ``GET /events`` and a push delivery, and parse back with
the SDK. The SDK is optional (the ``cloudevents`` extra); the client and the emulator fixture take an SDK
event as well as a dict. Written-back form: docs/contract.rst (SDK JsonEventFormatter, Timestamps.Format).
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from types import SimpleNamespace
from typing import Any

import httpx
import pytest

from airflow_provider_altinn_events.client.clients import AltinnEventsClient, AsyncAltinnEventsClient
from airflow_provider_altinn_events.client.settings import AltinnSettings
from airflow_provider_altinn_events.emulator.handle import EmulatorHandle

from .conftest import RESOURCE, Receiver, bearer, get_events, wait_for

core_event = pytest.importorskip("cloudevents.core.v1.event")
core_json = pytest.importorskip("cloudevents.core.formats.json")
v1_http = pytest.importorskip("cloudevents.v1.http")

SUBS = "/events/api/v1/subscriptions"
SOURCE = "https://cases.example.org/cases/42"


def _settings(handle: EmulatorHandle) -> AltinnSettings:
    conn = handle.connection_dict()
    return AltinnSettings.from_connection(
        SimpleNamespace(
            conn_id="emulator",
            host=conn["host"],
            login=conn["login"],
            password=conn["password"],
            extra_dejson=conn["extra"],
        )
    )


def _sdk_events() -> list[Any]:
    oslo = timezone(timedelta(hours=1))
    return [
        core_event.CloudEvent(
            {
                "id": "core-json",
                "type": "no.example.case.changed.v1",
                "source": SOURCE,
                "resource": RESOURCE,
                "subject": "/organisation/991825827",
                "time": datetime(2026, 11, 26, 11, 0, 0, 500000, tzinfo=oslo),
            },
            data={"case": 42, "status": "closed"},
        ),
        core_event.CloudEvent(
            {
                "id": "core-bytes",
                "type": "no.example.blob.v1",
                "source": SOURCE,
                "resource": RESOURCE,
                "datacontenttype": "application/octet-stream",
            },
            data=b"\x00\x01binary",
        ),
        v1_http.CloudEvent(
            {"id": "v1-json", "type": "no.example.case.changed.v1", "source": SOURCE, "resource": RESOURCE},
            data={"case": 43},
        ),
        v1_http.CloudEvent(
            {
                "id": "v1-text",
                "type": "no.example.note.v1",
                "source": SOURCE,
                "resource": RESOURCE,
                "datacontenttype": "text/plain",
            },
            data="a note",
        ),
    ]


def _check(parsed: dict[str, Any]) -> None:
    """Parse with both SDK forms and compare to what was published."""
    text = json.dumps(parsed)
    core = core_json.JSONFormat().read(None, text.encode())
    legacy = v1_http.from_json(text)
    assert core.get_id() == legacy["id"] == parsed["id"]
    expected: dict[str, Any] = {
        "core-json": {"case": 42, "status": "closed"},
        "core-bytes": b"\x00\x01binary",
        "v1-json": {"case": 43},
        "v1-text": "a note",
    }
    assert core.get_data() == expected[parsed["id"]]
    assert core.get_extension("resource") == RESOURCE
    if parsed["id"] == "core-json":
        assert core.get_time() == datetime(2026, 11, 26, 10, 0, 0, 500000, tzinfo=timezone.utc)
        assert core.get_datacontenttype() == "application/json"  # Altinn adds it for data without one


def test_sdk_events_round_trip_publish_get_and_push(
    altinn_emulator: EmulatorHandle, api: httpx.Client, token: str, receiver: Receiver
) -> None:
    sub = api.post(
        SUBS, json={"endPoint": receiver.url, "resourceFilter": RESOURCE}, headers=bearer(token)
    ).json()
    wait_for(lambda: api.get(f"{SUBS}/{sub['id']}", headers=bearer(token)).json()["validated"])
    receiver.requests.clear()
    events = _sdk_events()
    with AltinnEventsClient(_settings(altinn_emulator)) as client:
        for event in events[:3]:
            client.publish(event)
    assert altinn_emulator.publish(events[3]).status_code == 200  # the emulator fixture takes one too

    page = get_events(api, token, {"resource": RESOURCE, "after": "0"})
    served = json.loads(page.text)
    assert sorted(e["id"] for e in served) == ["core-bytes", "core-json", "v1-json", "v1-text"]
    for event in served:
        _check(event)
    wait_for(lambda: len(receiver.requests) == 4)
    for request in receiver.requests:
        _check(request["json"])
    pushed_time = next(r["json"]["time"] for r in receiver.requests if r["json"]["id"] == "core-json")
    # The client writes a datetime in UTC; Altinn writes it back with Timestamps.Format (3 fraction digits).
    assert pushed_time == "2026-11-26T10:00:00.500Z"


@pytest.mark.usefixtures("aiohttp_path")
async def test_async_client_takes_sdk_events(
    altinn_emulator: EmulatorHandle, api: httpx.Client, token: str
) -> None:
    async with AsyncAltinnEventsClient(_settings(altinn_emulator)) as client:
        await client.publish(_sdk_events()[0])
    served = json.loads(get_events(api, token, {"resource": RESOURCE, "after": "0"}).text)
    assert [e["id"] for e in served] == ["core-json"]

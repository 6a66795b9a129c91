"""Fault injection: status + Retry-After, delays, dropped connections, ``times``, order, stats.

No Altinn source: the fault API is the emulator's own (docs/guides/emulator.rst).
"""

from __future__ import annotations

import time

import httpx
import pytest

from airflow_provider_altinn_events.emulator.handle import EmulatorHandle

from .conftest import RESOURCE, get_events

EVENTS = "/events/api/v1/events"


def test_status_fault_with_retry_after_and_times(
    altinn_emulator: EmulatorHandle, api: httpx.Client, token: str
) -> None:
    fault = altinn_emulator.add_fault(method="GET", path=EVENTS, status=429, retry_after=7, times=2)
    assert fault["status"] == 429 and fault["times"] == 2
    params = {"resource": RESOURCE, "after": "0"}
    for _ in range(2):
        response = get_events(api, token, params)
        assert response.status_code == 429
        assert response.headers["retry-after"] == "7"
        assert response.json()["status"] == 429
    assert get_events(api, token, params).status_code == 200
    assert altinn_emulator.stats()["requests"][f"GET {EVENTS}"] == 3


def test_faults_apply_in_registration_order_and_match_method(
    altinn_emulator: EmulatorHandle, api: httpx.Client, token: str
) -> None:
    altinn_emulator.add_fault(method="POST", path=EVENTS, status=500)
    altinn_emulator.add_fault(path="/events/", status=503, times=1)
    altinn_emulator.add_fault(path="/events/", status=502, times=1)
    params = {"resource": RESOURCE, "after": "0"}
    assert get_events(api, token, params).status_code == 503
    assert get_events(api, token, params).status_code == 502
    assert get_events(api, token, params).status_code == 200
    assert api.post(EVENTS).status_code == 500  # lasts until cleared
    assert api.post(EVENTS).status_code == 500
    altinn_emulator.clear_faults()
    assert api.post(EVENTS).status_code == 401


def test_token_services_can_fail(altinn_emulator: EmulatorHandle) -> None:
    altinn_emulator.add_fault(path="/maskinporten/token", status=503, times=1)
    with pytest.raises(httpx.HTTPStatusError):
        altinn_emulator.maskinporten_token()
    altinn_emulator.add_fault(path="/authentication/", status=500, times=1)
    with pytest.raises(httpx.HTTPStatusError):
        altinn_emulator.altinn_token()
    assert altinn_emulator.altinn_token()


def test_delay_then_normal_answer(altinn_emulator: EmulatorHandle, api: httpx.Client, token: str) -> None:
    altinn_emulator.add_fault(path=EVENTS, delay_ms=300, times=1)
    started = time.monotonic()
    assert get_events(api, token, {"resource": RESOURCE, "after": "0"}).status_code == 200
    assert time.monotonic() - started >= 0.3
    with pytest.raises(httpx.ReadTimeout):
        altinn_emulator.add_fault(path=EVENTS, delay_ms=1000, times=1)
        api.get(EVENTS, timeout=0.2)


def test_dropped_connection(altinn_emulator: EmulatorHandle, api: httpx.Client, token: str) -> None:
    altinn_emulator.add_fault(path=EVENTS, drop_connection=True, times=1)
    with pytest.raises((httpx.RemoteProtocolError, httpx.ReadError)):
        get_events(api, token, {"resource": RESOURCE, "after": "0"})
    assert get_events(api, token, {"resource": RESOURCE, "after": "0"}).status_code == 200
    assert altinn_emulator.stats()["requests"][f"GET {EVENTS}"] == 2


def test_admin_paths_cannot_be_faulted_and_bad_specs_are_refused(api: httpx.Client) -> None:
    response = api.post("/_emulator/faults", json={"path": "/_emulator/stats", "status": 500})
    assert response.status_code == 400 and "Altinn paths" in response.json()["error"]
    for bad in (
        {"path": "/x"},
        {"path": "x", "status": 500},
        {"status": 99},
        {"status": 500, "times": 0},
        {"status": 500, "delay_ms": -1},
        {"drop_connection": "yes"},
        [1],
    ):
        assert api.post("/_emulator/faults", json=bad).status_code == 400, bad
    assert api.get("/_emulator/faults").json() == {"faults": []}
    assert api.delete("/_emulator/faults").json() == {"cleared": 0}

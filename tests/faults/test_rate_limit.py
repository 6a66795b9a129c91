"""A long ``Retry-After``: the service asks for a pause longer than the client will wait inside one request.

The client gives up on such a 429 at once (``max_retry_after_seconds``, 60 s) and raises a retryable
``AltinnRateLimitError`` that carries ``retry_after``. The triggers must not poll again before the
service's pause is over: with a short ``poll_interval`` they would otherwise spend their whole failure budget
inside the pause and give up, while the service only asked them to wait (and a fleet of triggers hammering a
rate-limited service makes the limit worse). So they wait ``max(poll_interval, retry_after)`` and do not
count the rate limit as a failed poll.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator
from typing import Any, cast

import pytest

from airflow_provider_altinn_events.emulator.handle import EmulatorHandle
from airflow_provider_altinn_events.triggers.altinn_events import (
    AltinnEventsSensorTrigger,
    AltinnEventsWatcherTrigger,
)
from tests.faults.support import CONN_ID, EVENTS_PATH, FakeStore, Faults, connection_env, new_resource

RETRY_AFTER = 120
OBSERVE = 1.5


@pytest.mark.parametrize("kind", ["sensor trigger", "watcher trigger"])
async def test_trigger_waits_out_a_long_retry_after(
    kind: str, altinn_emulator: EmulatorHandle, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(*connection_env(altinn_emulator))
    resource = new_resource("retry-after")
    faults = Faults(altinn_emulator)
    faults.add(method="GET", path=EVENTS_PATH, status=429, retry_after=RETRY_AFTER, times=100)
    trigger: AltinnEventsSensorTrigger | AltinnEventsWatcherTrigger
    if kind == "sensor trigger":
        trigger = AltinnEventsSensorTrigger(
            resource=resource, poll_interval=0.1, altinn_events_conn_id=CONN_ID
        )
    else:
        trigger = AltinnEventsWatcherTrigger(
            resource=resource, after="0", poll_interval=0.1, altinn_events_conn_id=CONN_ID
        )
        trigger.asset_state_store = FakeStore()
    gen = cast(AsyncGenerator[Any, None], trigger.run())
    waiting = asyncio.ensure_future(anext(gen))
    await asyncio.sleep(OBSERVE)
    ended_early = waiting.done()
    waiting.cancel()
    with contextlib.suppress(asyncio.CancelledError, Exception):
        await waiting
    await gen.aclose()
    served = faults.clear()
    assert not ended_early, "the trigger gave up inside the pause the service asked for"
    assert served == 1, f"{served} requests within {OBSERVE} s of a {RETRY_AFTER} s Retry-After"


@pytest.mark.parametrize("retry_after", ["86400000", "Fri, 31 Dec 9999 23:59:59 GMT", "inf"])
@pytest.mark.parametrize("kind", ["sensor trigger", "watcher trigger"])
async def test_trigger_does_not_park_on_an_endless_retry_after(
    kind: str, retry_after: str, altinn_emulator: EmulatorHandle, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A ``Retry-After`` of 1000 days, a date in the year 9999 or ``inf`` must not park the trigger: the wait is
    capped (``max_wait_seconds``, 15 min by default; 0.3 s here so the test sees the next poll)."""
    monkeypatch.setenv(*connection_env(altinn_emulator))
    resource = new_resource("endless")
    altinn_emulator.generate(resource, 1, type="x")
    faults = Faults(altinn_emulator)
    faults.add(method="GET", path=EVENTS_PATH, status=429, retry_after=retry_after, times=1)

    class Sensor(AltinnEventsSensorTrigger):
        max_wait_seconds = 0.3

    class Watcher(AltinnEventsWatcherTrigger):
        max_wait_seconds = 0.3

    trigger: AltinnEventsSensorTrigger | AltinnEventsWatcherTrigger
    if kind == "sensor trigger":
        trigger = Sensor(resource=resource, poll_interval=0.05, altinn_events_conn_id=CONN_ID)
    else:
        trigger = Watcher(resource=resource, after="0", poll_interval=0.05, altinn_events_conn_id=CONN_ID)
        trigger.asset_state_store = FakeStore()
    gen = cast(AsyncGenerator[Any, None], trigger.run())
    try:
        event = await asyncio.wait_for(anext(gen), 30)
    finally:
        await gen.aclose()
    assert faults.clear() == 1
    assert [e["type"] for e in event.payload["events"]] == ["x"]

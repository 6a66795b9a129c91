"""Shared polls over real HTTP against the emulator: many sensor and watcher triggers on one resource, run as
the triggerer runs them (one task each, all in one event loop), joining and leaving at random points.

The emulator counts every ``GET /events``: the fleet sends about one request per interval, every trigger
gets every event after its cursor (checked against the emulator's own log, read with the admin client),
a rate limit pauses the whole fleet with one request, and a 5xx burst reaches every trigger as the same
error. The same rules over a scripted stream: ``tests/unit/triggers/test_shared.py``.
"""

from __future__ import annotations

import asyncio
import random
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from airflow_provider_altinn_events._payloads import TriggerStatus
from airflow_provider_altinn_events.emulator.handle import EmulatorHandle
from airflow_provider_altinn_events.hooks.altinn_events import AltinnEventsHook
from airflow_provider_altinn_events.triggers import _shared, altinn_events
from airflow_provider_altinn_events.triggers._runtime import _CLIENTS
from airflow_provider_altinn_events.triggers.altinn_events import (
    AltinnEventsSensorTrigger,
    AltinnEventsWatcherTrigger,
)
from tests.fakes import FakeStore
from tests.fakes import TriggerRun as Run
from tests.faults.support import stored_events

pytestmark = pytest.mark.integration

GET_EVENTS = "GET /events/api/v1/events"
EVENTS_PATH = "/events/api/v1/events"
INTERVAL = 0.5
A, B = "https://a.example.test/app", "https://b.example.test/app"
BOUND = 30.0  # only a bug reaches it


@pytest.fixture(autouse=True)
def _fresh(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setattr(altinn_events, "PERSIST_SETTLE_SECONDS", 0.0)
    _CLIENTS.entries.clear()
    _shared._READERS.clear()
    yield
    _CLIENTS.entries.clear()
    _shared._READERS.clear()


@pytest.fixture
def resource() -> str:
    return f"urn:altinn:resource:shared-polls-{uuid.uuid4().hex[:8]}"


def watcher(resource: str, store: FakeStore | None = None, **kwargs: Any) -> AltinnEventsWatcherTrigger:
    trigger = AltinnEventsWatcherTrigger(resource=resource, poll_interval=INTERVAL, **kwargs)
    trigger.asset_state_store = store or FakeStore()
    return trigger


def sensor(resource: str, **kwargs: Any) -> AltinnEventsSensorTrigger:
    return AltinnEventsSensorTrigger(resource=resource, poll_interval=INTERVAL, **kwargs)


def requests(handle: EmulatorHandle) -> int:
    return int(handle.stats()["requests"].get(GET_EVENTS, 0))


def stream(handle: EmulatorHandle, resource: str) -> list[tuple[str, str]]:
    """The emulator's log of ``resource`` in its order, read with the admin client (not the code under test)."""
    return [(e["id"], e["source"]) for e in stored_events(handle, resource)]


async def until(condition: Any, limit: float = BOUND) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + limit
    while not condition():
        assert loop.time() < deadline, "the condition never held"
        await asyncio.sleep(0.05)


async def joined(count: int) -> None:
    """Until one reader polls for ``count`` triggers that have each had their first poll."""
    await until(
        lambda: (
            len(_shared._READERS) == 1
            and next(iter(_shared._READERS.values())).founded
            and len(next(iter(_shared._READERS.values())).subscribers) == count
        )
    )
    await asyncio.sleep(INTERVAL * 2.5)  # every trigger's first (spread) poll is behind it


async def test_a_fleet_on_one_resource_sends_one_request_per_interval_and_loses_nothing(
    altinn_conn: EmulatorHandle, resource: str
) -> None:
    rng = random.Random(17)
    altinn_conn.generate(resource, 3, type="old")
    lineages = [FakeStore() for _ in range(20)]
    runs: dict[int, list[Run]] = {
        i: [Run(watcher(resource, store, after="0")).start()] for i, store in enumerate(lineages)
    }
    sensors = [Run(sensor(resource, min_events=4, max_events=4)).start() for _ in range(20)]
    await joined(40)
    before = requests(altinn_conn)
    await asyncio.sleep(INTERVAL * 8)
    idle = requests(altinn_conn) - before
    print(f"\n40 triggers on one resource: {idle} requests in 8 intervals")
    assert idle <= 10  # one per interval (and a tick of slack at each end), not 40 per interval

    # events arrive while watchers restart (their cursor in their store) and sensors join at random points
    late: list[tuple[Run, str]] = []
    for _ in range(12):
        await asyncio.to_thread(altinn_conn.generate, resource, rng.choice((1, 2, 5)), type="new")
        await asyncio.sleep(rng.uniform(0, INTERVAL * 1.5))
        index = rng.randrange(len(lineages))
        await runs[index][-1].stop()
        runs[index].append(Run(watcher(resource, lineages[index], after="0")).start())
        known = stream(altinn_conn, resource)
        after = rng.choice(["0", known[-1][0], known[len(known) // 2][0]])
        late.append((Run(sensor(resource, after=after, min_events=2, max_events=2)).start(), after))
    await asyncio.to_thread(altinn_conn.generate, resource, 2, type="last")
    log = stream(altinn_conn, resource)
    for index in runs:
        await until(lambda index=index: set(log) <= {k for r in runs[index] for k in r.delivered()})
        for run in runs[index]:
            got = run.delivered()
            assert run.error is None
            if got:
                start = log.index(got[0])
                assert got == log[start : start + len(got)]  # in order, nothing skipped
    await until(lambda: all(s.payloads for s in sensors) and all(r.payloads for r, _ in late))
    assert all(s.delivered() == log[:4] for s in sensors)
    for run, after in late:
        start = next((i + 1 for i, (event_id, _) in enumerate(log) if event_id == after), 0)
        assert run.delivered() == log[start : start + 2], after
    for group in runs.values():
        await group[-1].stop()
    assert _shared._READERS == {}


async def test_a_trigger_behind_the_window_catches_up_on_its_own(
    altinn_conn: EmulatorHandle, resource: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_shared, "WINDOW_EVENTS", 5)
    fast = Run(watcher(resource, after="0")).start()
    slow = Run(watcher(resource, after="0", max_events_per_trigger_event=2, cursor_key="slow")).start()
    await joined(2)
    await asyncio.to_thread(altinn_conn.generate, resource, 40, type="burst")
    log = stream(altinn_conn, resource)
    await until(lambda: slow.delivered() == log and fast.delivered() == log)
    assert [len(p.events) for p in slow.payloads] == [2] * 20
    await fast.stop()
    await slow.stop()


async def test_events_that_share_an_id_across_sources(altinn_conn: EmulatorHandle, resource: str) -> None:
    hook = AltinnEventsHook()

    def publish(event_id: str, source: str) -> None:
        hook.get_conn().publish(
            {"specversion": "1.0", "id": event_id, "source": source, "type": "t", "resource": resource}
        )

    try:
        await asyncio.to_thread(publish, "shared", A)
        await asyncio.to_thread(publish, "p", A)
        watchers = [Run(watcher(resource, after="0", cursor_key=f"k{i}")).start() for i in range(5)]
        await joined(5)
        await asyncio.to_thread(publish, "shared", B)  # read by the reader: the second event with that id
        await asyncio.to_thread(publish, "n", A)
        log = stream(altinn_conn, resource)
        assert log == [("shared", A), ("p", A), ("shared", B), ("n", A)]
        await until(lambda: all(w.delivered() == log for w in watchers))
        # a user's cursor on the shared id: Altinn resumes after the first event with it
        late = Run(sensor(resource, after="shared", min_events=3, max_events=3)).start()
        await until(lambda: bool(late.payloads))
        assert late.delivered() == log[1:]
        for run in watchers:
            await run.stop()
    finally:
        hook.close()


async def test_a_rate_limit_pauses_the_fleet_with_one_request(
    altinn_conn: EmulatorHandle, resource: str
) -> None:
    runs = [Run(watcher(resource, after="0", cursor_key=f"k{i}")).start() for i in range(20)]
    await joined(20)
    altinn_conn.add_fault(method="GET", path=EVENTS_PATH, status=429, retry_after=120, times=1000)
    before = requests(altinn_conn)
    await asyncio.sleep(INTERVAL * 6)
    limited = requests(altinn_conn) - before
    altinn_conn.clear_faults()
    for run in runs:
        await run.stop()
    assert all(r.error is None for r in runs)
    # one request met the 429; nobody polled again inside the 120 s the service asked for (unshared: 20)
    assert limited == 1


async def test_a_5xx_burst_reaches_every_trigger_as_the_same_error(
    altinn_conn: EmulatorHandle, resource: str
) -> None:
    sensors = [Run(sensor(resource, max_consecutive_failures=2)).start() for _ in range(10)]
    watchers = [Run(watcher(resource, after="0", cursor_key=f"k{i}")).start() for i in range(10)]
    await joined(20)
    # every attempt of two polls in a row (the client retries each poll itself)
    altinn_conn.add_fault(method="GET", path=EVENTS_PATH, status=503, retry_after=0, times=1000)
    await until(lambda: all(s.payloads for s in sensors))
    altinn_conn.clear_faults()
    errors = [s.payloads[0].error for s in sensors]
    assert all(s.payloads[0].status is TriggerStatus.ERROR for s in sensors)
    assert all(e is not None and e.status_code == 503 and e.type == "AltinnServerError" for e in errors)
    await asyncio.to_thread(altinn_conn.generate, resource, 1, type="after")
    log = stream(altinn_conn, resource)
    await until(lambda: all(w.delivered() == log for w in watchers))
    assert all(w.error is None for w in watchers)  # a budget of 10 outlives the burst
    for run in watchers:
        await run.stop()

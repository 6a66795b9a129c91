"""Events that share an ``id`` (two sources publishing the same id) over real HTTP against the emulator, which
keys events by ``(id, source)`` and resolves ``after=<id>`` to the first event with that id, as Altinn does
(docs/contract.rst, "contract-paging": ``events.getevents_v2``; the emulator's ``store.resolve_after``).

The log ends on the second event with the shared id, so ``after=<that id>`` serves the events after the first
one again. Every reader must deliver all four events (the fourth published while it waits) and, at
``poll_interval=1``, make a handful of requests, not hundreds: before the fix the second event was dropped
(deduplicated by id alone), the sensor and both triggers fetched again without pause, the watcher never
emitted, and ``iter_events`` and ingestion failed on every run.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
import uuid
from collections.abc import AsyncGenerator, Iterator
from pathlib import Path
from typing import Any, cast

import pytest

from airflow_provider_altinn_events._ingest import IngestSpec, LocalStorage, run_ingest
from airflow_provider_altinn_events._payloads import TriggerPayload, TriggerStatus
from airflow_provider_altinn_events.emulator.handle import EmulatorHandle
from airflow_provider_altinn_events.hooks.altinn_events import AltinnEventsHook
from airflow_provider_altinn_events.sensors.altinn_events import AltinnEventsSensor
from airflow_provider_altinn_events.triggers._runtime import _CLIENTS
from airflow_provider_altinn_events.triggers.altinn_events import (
    AltinnEventsSensorTrigger,
    AltinnEventsWatcherTrigger,
)
from tests.fakes import FakeStore, FakeTI

pytestmark = pytest.mark.integration

GET_EVENTS = "GET /events/api/v1/events"
A, B = "https://a.example.test/app", "https://b.example.test/app"
WAIT = 3.0  # seconds before the fourth event is published
#: requests a reader may make in the test: a few per second of waiting at poll_interval=1 (before: hundreds)
BUDGET = 12


@pytest.fixture(autouse=True)
def _fresh_shared_clients() -> Iterator[None]:
    _CLIENTS.entries.clear()
    yield
    _CLIENTS.entries.clear()


@pytest.fixture
def resource() -> str:
    return f"urn:altinn:resource:shared-ids-{uuid.uuid4().hex[:8]}"


def _event(resource: str, event_id: str, source: str) -> dict[str, Any]:
    return {"specversion": "1.0", "id": event_id, "source": source, "type": "t.created", "resource": resource}


def publish(resource: str, *pairs: tuple[str, str]) -> None:
    hook = AltinnEventsHook()
    try:
        for event_id, source in pairs:
            hook.get_conn().publish(_event(resource, event_id, source))
    finally:
        hook.close()


FIRST = (("shared", A), ("p", A), ("shared", B))  # the log ends on the second "shared"
LATER = ("n", A)
ALL = [*FIRST, LATER]


def requests(handle: EmulatorHandle) -> int:
    return int(handle.stats()["requests"].get(GET_EVENTS, 0))


def publish_later(resource: str) -> threading.Thread:
    thread = threading.Thread(target=lambda: (time.sleep(WAIT), publish(resource, LATER)), daemon=True)
    thread.start()
    return thread


def pairs(events: list[Any]) -> list[tuple[str, str]]:
    return [(e["id"], e["source"]) for e in events]


def test_iter_events_delivers_both(altinn_conn: EmulatorHandle, resource: str) -> None:
    publish(resource, *FIRST)
    before = requests(altinn_conn)
    hook = AltinnEventsHook()
    try:
        got = [(e.id, e.source) for e in hook.get_conn().iter_events(resource=resource, after="0")]
    finally:
        hook.close()
    assert got == list(FIRST)
    assert requests(altinn_conn) - before <= 3


def test_poke_sensor_delivers_both_and_waits(altinn_conn: EmulatorHandle, resource: str) -> None:
    publish(resource, *FIRST)
    before = requests(altinn_conn)
    arrivals = publish_later(resource)

    sensor = AltinnEventsSensor(
        task_id="wait", resource=resource, min_events=4, poll_interval=1, timeout=30, deferrable=False
    )
    events = sensor.execute({"ti": FakeTI()})
    arrivals.join()
    made = requests(altinn_conn) - before
    print(f"\npoke sensor: {made} requests")
    assert pairs(events) == ALL
    assert made <= BUDGET


@pytest.mark.usefixtures("aiohttp_path")
async def test_sensor_trigger_delivers_both_and_waits(altinn_conn: EmulatorHandle, resource: str) -> None:
    publish(resource, *FIRST)
    before = requests(altinn_conn)
    arrivals = publish_later(resource)
    trigger = AltinnEventsSensorTrigger(resource=resource, after="0", min_events=4, poll_interval=1)
    _, kwargs = trigger.serialize()
    gen = cast(AsyncGenerator[Any, None], AltinnEventsSensorTrigger(**json.loads(json.dumps(kwargs))).run())
    try:
        event = await asyncio.wait_for(anext(gen), 30)
    finally:
        await gen.aclose()
    await asyncio.to_thread(arrivals.join)
    payload = TriggerPayload.from_dict(event.payload)
    made = requests(altinn_conn) - before
    print(f"\nsensor trigger: {made} requests")
    assert payload.status is TriggerStatus.SUCCESS, payload
    assert pairs(list(payload.events)) == ALL
    assert made <= BUDGET


@pytest.mark.usefixtures("aiohttp_path")
async def test_watcher_emits_both_and_waits(altinn_conn: EmulatorHandle, resource: str) -> None:
    publish(resource, *FIRST)
    before = requests(altinn_conn)
    arrivals = publish_later(resource)
    trigger = AltinnEventsWatcherTrigger(resource=resource, after="0", poll_interval=1)
    trigger.asset_state_store = FakeStore()
    gen = cast(AsyncGenerator[Any, None], trigger.run())
    emitted: list[Any] = []
    try:
        while len(emitted) < len(ALL):
            event = await asyncio.wait_for(anext(gen), 30)
            emitted += TriggerPayload.from_dict(event.payload).events
    finally:
        await gen.aclose()
    await asyncio.to_thread(arrivals.join)
    made = requests(altinn_conn) - before
    print(f"\nwatcher: {made} requests")
    assert pairs(emitted) == ALL
    assert made <= BUDGET


def test_ingestion_writes_both_and_later_runs_continue(
    altinn_conn: EmulatorHandle, resource: str, tmp_path: Path
) -> None:
    publish(resource, *FIRST)
    hook = AltinnEventsHook()
    try:
        client = hook.get_conn()
        spec = IngestSpec(resource, page_size=100)
        before = requests(altinn_conn)
        first = run_ingest(client, LocalStorage(tmp_path), spec, "r1")
        again = run_ingest(client, LocalStorage(tmp_path), spec, "r2")
        publish(resource, LATER)
        third = run_ingest(client, LocalStorage(tmp_path), spec, "r3")
        made = requests(altinn_conn) - before
    finally:
        hook.close()
    print(f"\ningestion: {made} requests for three runs")
    assert (first.count, again.count, third.count) == (3, 0, 1)
    written = []
    for part in sorted(tmp_path.rglob("part-*.ndjson")):
        written += [json.loads(line) for line in part.read_text().splitlines()]
    assert pairs(written) == ALL
    assert made <= 8

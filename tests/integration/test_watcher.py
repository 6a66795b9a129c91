"""The example watcher DAG: its trigger against the emulator (restarts, fault bursts, batching) feeding its
consumer task. ``dag.test()`` never runs asset watchers; the real scheduler + triggerer path is the e2e
suite's job. Here the trigger runs as the triggerer runs it (``run()`` in an event loop, state store
injected) and its payloads go, as ``AssetEvent.extra["payload"]``, into the example's consumer."""

from __future__ import annotations

import asyncio
import importlib.util
import json
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

import pytest

from airflow_provider_altinn_events._payloads import TriggerPayload, TriggerStatus
from airflow_provider_altinn_events.triggers._runtime import _CLIENTS
from airflow_provider_altinn_events.triggers.altinn_events import AltinnEventsWatcherTrigger
from tests.airflow_support import EXAMPLE_DAGS
from tests.fakes import FakeStore

pytestmark = pytest.mark.integration

RESOURCE = "urn:altinn:resource:ttd-altinn-events-automated-tests"
CASE_TYPE = "no.example.case.changed.v1"
EVENTS_PATH = "/events/api/v1/events"


@dataclass
class FakeAssetEvent:
    extra: dict[str, Any] = field(default_factory=dict)


class ByAsset(dict[str, Any]):
    """``triggering_asset_events`` as the task sees it: indexed by ``Asset`` (found by name here, because
    ``Asset`` is not hashable on Airflow 3.0's task SDK)."""

    def __getitem__(self, asset: Any) -> Any:
        return super().__getitem__(asset.name)


@pytest.fixture
def example(monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    monkeypatch.setenv("AIRFLOW_VAR_ALTINN_EVENTS_EXAMPLE_POLL_INTERVAL", "0.05")
    spec = importlib.util.spec_from_file_location(
        "example_watcher_under_test", EXAMPLE_DAGS / "example_watcher.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(autouse=True)
def _fresh_shared_clients() -> Any:
    _CLIENTS.entries.clear()
    yield
    _CLIENTS.entries.clear()


def watcher_of(example: ModuleType, store: FakeStore) -> AltinnEventsWatcherTrigger:
    """Rebuild the example's trigger from its serialized form, as the triggerer does, and inject the store."""
    (watcher,) = example.case_changes.watchers
    classpath, kwargs = watcher.trigger.serialize()
    assert classpath == "airflow_provider_altinn_events.triggers.altinn_events.AltinnEventsWatcherTrigger"
    trigger = AltinnEventsWatcherTrigger(**kwargs)
    trigger.asset_state_store = store
    return trigger


def test_example_watcher_dag_parses(airflow_db: str) -> None:
    from tests.airflow_support import DagBag

    bag = DagBag(dag_folder=str(EXAMPLE_DAGS / "example_watcher.py"))
    assert not bag.import_errors, bag.import_errors
    dag = bag.get_dag("example_altinn_events_watcher")
    assert dag is not None
    (asset,) = dag.timetable.asset_condition.objects  # schedule=[case_changes]
    assert asset.name == "altinn_case_changes" and len(asset.watchers) == 1
    # the trigger's kwargs are what the scheduler stores in the trigger table: JSON only, no secret
    _, kwargs = asset.watchers[0].trigger.serialize()
    assert json.loads(json.dumps(kwargs)) == kwargs
    assert kwargs["after"] == "latest" and kwargs["event_types"] == [CASE_TYPE]


async def eventually(condition: Any, timeout: float = 15) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, "condition not met in time"
        await asyncio.sleep(0.05)


async def collect(gen: Any, until: set[str], got: list[TriggerPayload], timeout: float = 60) -> None:
    """Take payloads from a running watcher until every id in ``until`` was seen."""
    seen = {i for p in got for i in p.event_ids}
    while not until <= seen:
        event = await asyncio.wait_for(anext(gen), timeout=timeout)
        payload = TriggerPayload.from_dict(event.payload)
        assert payload.status is TriggerStatus.EVENTS
        got.append(payload)
        seen.update(payload.event_ids)


def ids_after(handle: Any, after: str) -> list[str]:
    token = handle.altinn_token()
    response = handle.admin.get(
        EVENTS_PATH,
        params={"resource": RESOURCE, "after": after, "size": 1000, "type": CASE_TYPE},
        headers={"Authorization": f"Bearer {token}"},
    )
    response.raise_for_status()
    return [e["id"] for e in response.json()]


async def test_every_event_reaches_the_consumer_across_restarts_and_fault_bursts(
    altinn_conn: Any, example: ModuleType
) -> None:
    await asyncio.to_thread(altinn_conn.generate, RESOURCE, 7, type=CASE_TYPE, data={"old": True})  # history
    history = set(ids_after(altinn_conn, "0"))
    store = FakeStore()
    payloads: list[TriggerPayload] = []
    key = watcher_of(example, store).cursor_key

    # 1. a fresh watcher starts at "latest": the history never reaches a DAG
    gen = watcher_of(example, store).run()
    first = asyncio.ensure_future(anext(gen))
    await eventually(lambda: bool(store.values))  # the end of the history is stored at once
    assert not first.done()
    await asyncio.to_thread(altinn_conn.generate, RESOURCE, 150, type=CASE_TYPE)
    await asyncio.to_thread(altinn_conn.generate, RESOURCE, 5, type="some.other.type")
    payloads.append(TriggerPayload.from_dict((await asyncio.wait_for(first, 30)).payload))
    published = set(ids_after(altinn_conn, "0")) - history
    assert len(published) == 150

    # 2. batching: at most 100 per trigger event, in order
    await collect(gen, published, payloads)
    assert [len(p.events) for p in payloads] == [100, 50]

    # 3. fault bursts (503s, a dropped connection, a slow answer) while more events arrive
    await asyncio.to_thread(altinn_conn.generate, RESOURCE, 30, type=CASE_TYPE)
    published = set(ids_after(altinn_conn, "0")) - history  # (the watcher is paused at its last yield)
    altinn_conn.add_fault(method="GET", path=EVENTS_PATH, status=503, retry_after=0, times=6)
    altinn_conn.add_fault(method="GET", path=EVENTS_PATH, drop_connection=True, times=1)
    altinn_conn.add_fault(method="GET", path=EVENTS_PATH, delay_ms=300, times=2)
    await collect(gen, published, payloads)
    faulted = altinn_conn.stats()["requests"][f"GET {EVENTS_PATH}"]
    altinn_conn.clear_faults()

    # 4. the triggerer stops: as in a real triggerer, the watcher was resumed right after its last yield (it
    # stores the cursor, then sleeps) and is cancelled while it waits. Events arrive; a new triggerer starts.
    waiting = asyncio.ensure_future(anext(gen))
    await eventually(lambda: store.values.get(key) == payloads[-1].after)
    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting
    await gen.aclose()
    await asyncio.to_thread(altinn_conn.generate, RESOURCE, 20, type=CASE_TYPE)
    published = set(ids_after(altinn_conn, "0")) - history
    restarted = watcher_of(example, store).run()
    try:
        await collect(restarted, published, payloads)
    finally:
        await restarted.aclose()

    assert faulted > 9  # the faults were met (and survived)
    emitted = [i for p in payloads for i in p.event_ids]
    assert set(emitted) == published  # nothing lost, and nothing from the history
    assert len(emitted) == len(set(emitted))  # a clean stop leaves no duplicate
    assert emitted == [i for i in ids_after(altinn_conn, "0") if i in published]  # service order

    # 5. the example consumer handles each event once, however the batches fell into runs
    consume = example.dag.get_task("process_case_changes").python_callable
    asset_events = [FakeAssetEvent(extra={"from_trigger": True, "payload": p.to_dict()}) for p in payloads]
    duplicate = FakeAssetEvent(extra={"payload": payloads[-1].to_dict()})  # at least once: a batch twice
    handled = consume(
        triggering_asset_events=ByAsset({example.case_changes.name: [*asset_events, duplicate]})
    )
    assert handled == emitted


async def test_one_event_per_asset_event_when_asked(altinn_conn: Any, example: ModuleType) -> None:
    (watcher,) = example.case_changes.watchers
    _, kwargs = watcher.trigger.serialize()
    trigger = AltinnEventsWatcherTrigger(**{**kwargs, "after": "0", "max_events_per_trigger_event": 1})
    await asyncio.to_thread(altinn_conn.generate, RESOURCE, 3, type=CASE_TYPE)
    gen = trigger.run()
    try:
        sizes = [
            len(TriggerPayload.from_dict((await asyncio.wait_for(anext(gen), 15)).payload).events)
            for _ in range(3)
        ]
    finally:
        await gen.aclose()
    assert sizes == [1, 1, 1]


async def test_watcher_keeps_polling_through_token_expiry(
    altinn_emulator_factory: Any, monkeypatch: pytest.MonkeyPatch, example: ModuleType
) -> None:
    handle = altinn_emulator_factory(token_lifetime=2)
    monkeypatch.setenv("AIRFLOW_CONN_ALTINN_EVENTS_DEFAULT", handle.connection_json())
    store = FakeStore()
    gen = watcher_of(example, store).run()
    try:
        waiting = asyncio.ensure_future(anext(gen))
        await asyncio.sleep(4.5)  # two token lifetimes with nothing to report
        assert not waiting.done()
        await asyncio.to_thread(handle.generate, RESOURCE, 2, type=CASE_TYPE)
        payload = TriggerPayload.from_dict((await asyncio.wait_for(waiting, 30)).payload)
        assert len(payload.events) == 2
    finally:
        await gen.aclose()
    assert handle.stats()["token_exchanges"] >= 2

"""Shared polls (``triggers/_shared.py``) over a scripted stream: a fake async client that answers
``GET /events`` as Altinn does (``after=<id>`` resumes after the *first* event with that id, an unknown id
reads from the start, server-side filters, ``size``; docs/contract.rst, "contract-paging"), with scripted
errors and a gate to hold a request in flight.

Each test drives the real triggers as the triggerer does (one task per trigger iterating ``run()``) and
checks against the scripted stream itself: every trigger sees every event after its cursor, in order, and
the fleet sends about one request per tick instead of one per trigger. The same scenarios over real HTTP
against the emulator are in ``tests/integration/test_shared_polls_emulator.py``.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from airflow_provider_altinn_events._payloads import TriggerStatus
from airflow_provider_altinn_events.client.matching import like_match
from airflow_provider_altinn_events.client.models import CloudEvent, EventPage
from airflow_provider_altinn_events.exceptions import AltinnRateLimitError, AltinnServerError
from airflow_provider_altinn_events.triggers import _shared, altinn_events
from airflow_provider_altinn_events.triggers._runtime import _CLIENTS, _SharedClient
from airflow_provider_altinn_events.triggers.altinn_events import (
    AltinnEventsSensorTrigger,
    AltinnEventsWatcherTrigger,
)
from tests.fakes import FakeStore, api_error
from tests.fakes import TriggerRun as Run

RES = "urn:altinn:resource:shared-polls"
OTHER = "urn:altinn:resource:shared-polls-other"
CONN = "altinn_fake"
A, B = "https://a.example.test/app", "https://b.example.test/app"
INTERVAL = 0.1  # tick 0.05 s (the grid's smallest)
LONG = 20.0  # a bound on waits that only a bug reaches


# ---------------------------------------------------------------------------------------------------------
# the scripted service
# ---------------------------------------------------------------------------------------------------------


@dataclass
class FakeService:
    """The events of every resource in the service's order, and the requests made for them."""

    events: list[dict[str, Any]] = field(default_factory=list)
    calls: list[tuple[float, str, str]] = field(default_factory=list)  # (loop time, resource, after)
    errors: list[BaseException] = field(default_factory=list)
    gate: asyncio.Event | None = None
    counter: int = 0
    held: int = 0  # requests that waited at the gate

    def add(
        self,
        resource: str = RES,
        *,
        source: str = A,
        type: str = "t.created",
        event_id: str | None = None,
        subject: str | None = None,
    ) -> dict[str, Any]:
        self.counter += 1
        event = {
            "specversion": "1.0",
            "id": event_id or f"e{self.counter:05d}",
            "source": source,
            "type": type,
            "resource": resource,
        }
        if subject is not None:
            event["subject"] = subject
        self.events.append(event)
        return event

    def of(self, resource: str = RES) -> list[dict[str, Any]]:
        return [e for e in self.events if e["resource"] == resource]

    def answer(
        self, resource: str, after: str, size: int, types: Any, subject: Any, alternative_subject: Any
    ) -> EventPage:
        stream = self.of(resource)
        start = next((i + 1 for i, e in enumerate(stream) if e["id"] == after), 0)
        chosen = [
            e
            for e in stream[start:]
            if (not types or any(like_match(t, e["type"]) for t in types))
            and (subject is None or e.get("subject") == subject)
            and (alternative_subject is None or e.get("alternativesubject") == alternative_subject)
        ][:size]
        return EventPage(
            events=tuple(CloudEvent(e) for e in chosen), after=chosen[-1]["id"] if chosen else after
        )


class FakeClient:
    """What the triggers use of ``AsyncAltinnEventsClient``: ``list_events`` and ``aclose``."""

    def __init__(self, service: FakeService) -> None:
        self.service = service

    async def list_events(
        self,
        *,
        resource: str,
        after: str = "0",
        types: Any = None,
        subject: Any = None,
        alternative_subject: Any = None,
        size: int = 50,
    ) -> EventPage:
        service = self.service
        service.calls.append((asyncio.get_running_loop().time(), resource, after))
        await asyncio.sleep(0)
        if service.gate is not None:
            service.held += 1
            await service.gate.wait()
        if service.errors:
            raise service.errors.pop(0)
        return service.answer(resource, after, size, types, subject, alternative_subject)

    async def aclose(self) -> None:
        return None


@pytest.fixture(autouse=True)
def _fast(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setattr(altinn_events, "PERSIST_SETTLE_SECONDS", 0.0)
    monkeypatch.setattr(altinn_events._AltinnPolling, "_check_scopes", lambda self, client: None)
    _shared._READERS.clear()
    yield
    _shared._READERS.clear()


@pytest.fixture
async def service() -> AsyncIterator[FakeService]:
    """A fake service behind the shared client of ``CONN`` in this test's event loop (held by the test, so
    the triggers never close it)."""
    loop = asyncio.get_running_loop()
    svc = FakeService()
    opened: asyncio.Future[Any] = loop.create_future()
    opened.set_result(FakeClient(svc))
    _CLIENTS.entries[(CONN, id(loop))] = _SharedClient(loop, opened, users=1)  # type: ignore[arg-type]
    yield svc


# ---------------------------------------------------------------------------------------------------------
# driving triggers as the triggerer does
# ---------------------------------------------------------------------------------------------------------


def sensor(shared: bool = True, **kwargs: Any) -> AltinnEventsSensorTrigger:
    trigger = AltinnEventsSensorTrigger(
        resource=kwargs.pop("resource", RES), poll_interval=INTERVAL, altinn_events_conn_id=CONN, **kwargs
    )
    trigger.shared_polls = shared
    return trigger


def watcher(store: FakeStore | None = None, shared: bool = True, **kwargs: Any) -> AltinnEventsWatcherTrigger:
    trigger = AltinnEventsWatcherTrigger(
        resource=kwargs.pop("resource", RES), poll_interval=INTERVAL, altinn_events_conn_id=CONN, **kwargs
    )
    trigger.asset_state_store = store or FakeStore()
    trigger.shared_polls = shared
    return trigger


async def until(condition: Any, limit: float = LONG, what: Any = None) -> None:
    """Wait for ``condition()`` (a bound, not a timing: only a bug makes it run out)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + limit
    while not condition():
        assert loop.time() < deadline, f"the condition never held: {what() if what else ''}"
        await asyncio.sleep(0.02)


def keys(events: list[dict[str, Any]]) -> list[tuple[str, str]]:
    return [(e["id"], e["source"]) for e in events]


def reader() -> _shared._Reader:
    (only,) = _shared._READERS.values()
    return only


async def ticks(count: int) -> None:
    await asyncio.sleep(count * INTERVAL)


# ---------------------------------------------------------------------------------------------------------
# one request per tick
# ---------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("shared", [True, False])
async def test_many_waiting_triggers_share_one_request_per_tick(service: FakeService, shared: bool) -> None:
    n = 40
    runs = [Run(sensor(shared, min_events=2)).start() for _ in range(n // 2)]
    runs += [Run(watcher(shared=shared, after="0")).start() for _ in range(n // 2)]
    await ticks(3)  # every trigger has had its first (spread) poll
    before = len(service.calls)
    await ticks(10)
    made = len(service.calls) - before
    service.add()
    service.add()
    await until(lambda: all(r.payloads for r in runs))
    for run in runs:
        await run.stop()
    for run in runs:
        assert run.error is None and run.delivered() == keys(service.events)
    print(f"\n{'shared' if shared else 'unshared'}: {made} requests in 10 intervals for {n} triggers")
    if shared:
        assert made <= 12  # one per tick (plus one tick of slack at each end), not one per trigger
    else:
        assert made >= 5 * n  # the old path: one per trigger per interval
    assert _shared._READERS == {}  # the last one out stopped the reader


async def test_a_trigger_that_leaves_costs_nothing_and_the_last_stops_the_reader(
    service: FakeService,
) -> None:
    runs = [Run(watcher(after="0")).start() for _ in range(5)]
    await ticks(3)
    the_reader = reader()
    assert the_reader.founded and len(the_reader.subscribers) == 5
    for run in runs[:4]:
        await run.stop()
    assert len(the_reader.subscribers) == 1 and not the_reader.task.done()  # type: ignore[union-attr]
    service.add()
    await until(lambda: bool(runs[4].payloads))
    await runs[4].stop()
    await asyncio.sleep(0)
    assert _shared._READERS == {} and the_reader.task.done()  # type: ignore[union-attr]


# ---------------------------------------------------------------------------------------------------------
# never lose an event: random joins and leaves, restarts, shared ids, a trigger falling behind
# ---------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", [1, 2, 3])
async def test_random_joins_and_leaves_lose_nothing(service: FakeService, seed: int) -> None:
    """Watchers restarted at random moments (their cursor in a store) and sensors started at random moments
    with random cursors and filters, while events arrive at random, in bursts. (Ids shared across sources:
    the next test; reused at random distances they defeat Altinn's paging with or without shared polls.)"""
    rng = random.Random(seed)
    for _ in range(5):
        service.add(source=rng.choice((A, B)))
    stop_publishing = asyncio.Event()

    async def publish() -> None:
        while not stop_publishing.is_set():
            await asyncio.sleep(rng.uniform(0, 0.15))
            burst = rng.choice((1, 1, 1, 2, 7))
            for _ in range(burst):
                service.add(source=rng.choice((A, B)), type=rng.choice(("t.created", "t.deleted")))

    @dataclass
    class Lineage:
        store: FakeStore
        after: str
        batch: int
        runs: list[Run] = field(default_factory=list)

    lineages = [Lineage(FakeStore(), "0", rng.choice((1, 3, 100))) for _ in range(6)]

    async def restarts(lineage: Lineage) -> None:
        # the last run is never stopped: it delivers the rest (stopping one and then finding publishing over,
        # while the stop was awaited, left a lineage without a running watcher: a race of the test, 1 in ~20)
        while True:
            run = Run(watcher(lineage.store, after=lineage.after, max_events_per_trigger_event=lineage.batch))
            lineage.runs.append(run.start())
            await asyncio.sleep(rng.uniform(0.05, 0.8))
            if stop_publishing.is_set():
                return
            await run.stop()

    sensors: list[tuple[Run, str, int, str | None]] = []

    async def start_sensors() -> None:
        while not stop_publishing.is_set():
            await asyncio.sleep(rng.uniform(0, 0.2))
            unique = [e["id"] for e in service.of() if sum(x["id"] == e["id"] for x in service.of()) == 1]
            after = rng.choice(["0", *unique[-8:]])
            count = rng.choice((1, 2, 5))
            types = rng.choice((None, "t.deleted"))
            run = Run(sensor(after=after, min_events=count, max_events=count, event_types=types)).start()
            sensors.append((run, after, count, types))

    workers = [asyncio.ensure_future(w) for w in (publish(), start_sensors(), *map(restarts, lineages))]
    await asyncio.sleep(3.0)
    stop_publishing.set()
    await asyncio.gather(*workers)
    for _ in range(5):  # enough for every sensor still waiting
        service.add(type="t.created")
        service.add(type="t.deleted")
    stream = keys(service.of())
    # every lineage's current watcher delivers up to the end; the union over its restarts is the whole stream
    for lineage in lineages:
        await until(
            lambda lineage=lineage: set(stream) <= {k for r in lineage.runs for k in r.delivered()},
            what=lambda lineage=lineage: (
                lineage.batch,
                set(stream) - {k for r in lineage.runs for k in r.delivered()},
                lineage.store.values,
                [(r.error, r.task.done() if r.task else None) for r in lineage.runs[-1:]],
                stream,
            ),
        )
        for run in lineage.runs:
            assert run.error is None
            got = run.delivered()
            # each run delivers a contiguous stretch of the stream, in its order (a restart may repeat the
            # batch whose cursor was not yet stored: at least once, never skipped)
            if got:
                start = stream.index(got[0])
                assert got == stream[start : start + len(got)]
    # every sensor fires with exactly the first matching events after its cursor (Altinn's resolution of
    # after=<id>: after the first event with that id)
    for run, after, count, types in sensors:
        await until(lambda run=run: bool(run.payloads), what=lambda run=run: run.trigger.serialize())
        events = service.of()
        start = next((i + 1 for i, e in enumerate(events) if e["id"] == after), 0)
        expected = [e for e in events[start:] if types is None or e["type"] == types][:count]
        (payload,) = run.payloads
        assert payload.status is TriggerStatus.SUCCESS
        assert [(e["id"], e["source"]) for e in payload.events] == keys(expected), (after, count, types)
    for lineage in lineages:
        for run in lineage.runs:
            await run.stop()
    assert _shared._READERS == {}


async def test_a_users_cursor_on_a_shared_id_reads_after_the_first_event_with_it(
    service: FakeService,
) -> None:
    """``after=X`` where the window holds the *second* event with id X (another source): Altinn resumes
    after the first, older one, so the trigger must not be served after the window's X."""
    first_x = service.add(source=A, event_id="x")
    between = [service.add() for _ in range(3)]
    watchers = [Run(watcher(after="0")).start() for _ in range(3)]
    await ticks(3)
    second_x = service.add(source=B, event_id="x")  # read by the reader: in its window
    after = service.add()
    await until(lambda: all(len(w.delivered()) == 6 for w in watchers))
    late = Run(sensor(after="x", min_events=5, max_events=5)).start()
    await until(lambda: bool(late.payloads))
    assert keys([first_x, *between, second_x, after]) == watchers[0].delivered()
    assert late.delivered() == keys([*between, second_x, after][:5]) == keys([*between, second_x, after])
    for run in [*watchers, late]:
        await run.stop()


async def test_a_trigger_that_falls_behind_the_window_reads_on_its_own_and_loses_nothing(
    service: FakeService, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_shared, "WINDOW_EVENTS", 5)
    fast = Run(watcher(after="0")).start()
    slow = Run(watcher(after="0", max_events_per_trigger_event=1)).start()
    await ticks(3)
    for _ in range(30):
        service.add()
    await until(lambda: len(slow.delivered()) == 30 and len(fast.delivered()) == 30)
    assert fast.delivered() == slow.delivered() == keys(service.events)
    assert [len(p.events) for p in slow.payloads] == [1] * 30
    own = [c for c in service.calls if c[2] not in ("0",)]
    assert len(own) > len(slow.payloads) // 5  # it read on its own while behind (the window holds 5)
    await fast.stop()
    await slow.stop()


async def test_latest_joins_at_the_head_without_a_request(service: FakeService) -> None:
    for _ in range(3):
        service.add()
    first = Run(watcher(after="0")).start()
    second = Run(watcher(after="0", cursor_key="second")).start()
    await until(lambda: len(first.delivered()) == 3 and reader().founded)
    await ticks(2)
    before = len(service.calls)
    late = [Run(watcher(after="latest", cursor_key=f"k{i}")).start() for i in range(10)]
    await ticks(4)
    made = len(service.calls) - before
    new = service.add()
    await until(lambda: all(r.delivered() == keys([new]) for r in late))
    assert made <= 6  # the reader's ticks only: no seek of their own
    for run in [first, second, *late]:
        await run.stop()


async def test_triggers_with_other_server_side_filters_get_readers_of_their_own(service: FakeService) -> None:
    runs = [
        Run(sensor(event_types="a.%", min_events=1)).start(),
        Run(sensor(event_types="b.%", min_events=1)).start(),
        Run(sensor(resource=OTHER, min_events=1)).start(),
    ]
    runs += [Run(run.trigger).start() for run in runs]  # two of each
    await ticks(3)
    assert len(_shared._READERS) == 3 and all(r.founded for r in _shared._READERS.values())
    a = service.add(type="b.x")
    b = service.add(type="a.x")
    c = service.add(OTHER, type="a.x")
    await until(lambda: all(r.payloads for r in runs))
    assert [r.delivered() for r in runs] == [keys([b]), keys([a]), keys([c])] * 2


async def test_unfiltered_reads_share_one_reader_and_each_trigger_matches_its_own(
    service: FakeService,
) -> None:
    triggers = [watcher(after="0", subject=f"/party/{i % 2}", cursor_key=f"k{i}") for i in range(4)]
    for trigger in triggers:
        trigger.shared_unfiltered_reads = True
    runs = [Run(t).start() for t in triggers]
    await ticks(3)
    assert reader().founded and reader().query["subject"] is None  # one read of the whole resource
    events = [service.add(subject=f"/party/{i % 3}") for i in range(9)]
    await until(lambda: all(len(r.delivered()) == 3 for r in runs))
    for i, run in enumerate(runs):
        assert run.delivered() == keys([e for e in events if e["subject"] == f"/party/{i % 2}"])
        await run.stop()


async def test_a_trigger_alone_on_its_query_polls_on_its_own(service: FakeService) -> None:
    run = Run(watcher(after="0")).start()
    await ticks(4)
    assert not reader().founded  # no reader task, no second wake-up per poll
    service.add()
    await until(lambda: bool(run.payloads))
    await run.stop()
    assert _shared._READERS == {}


# ---------------------------------------------------------------------------------------------------------
# failures: every subscriber judges the reader's error with its own policy
# ---------------------------------------------------------------------------------------------------------


async def test_a_5xx_burst_reaches_every_subscriber_as_the_same_error(service: FakeService) -> None:
    sensors = [Run(sensor(min_events=1, max_consecutive_failures=2)).start() for _ in range(5)]
    watchers = [Run(watcher(after="0", max_consecutive_failures=10)).start() for _ in range(5)]
    await ticks(3)
    assert reader().founded
    calls = len(service.calls)
    service.errors = [api_error(AltinnServerError, 503) for _ in range(3)]
    await until(lambda: all(s.payloads for s in sensors))
    service.add()
    await until(lambda: all(w.payloads for w in watchers))
    errors = [s.payloads[0].error for s in sensors]
    assert all(e is not None and e.status_code == 503 and e.type == "AltinnServerError" for e in errors)
    assert all(s.payloads[0].after == "0" for s in sensors)
    assert all(w.error is None and w.delivered() == keys(service.events) for w in watchers)
    # one request per tick through the burst: three failed ticks and the good ones, not one per trigger
    assert len(service.calls) - calls <= 3 + 6
    for run in watchers:
        await run.stop()


async def test_the_reader_waits_out_a_retry_after(service: FakeService) -> None:
    runs = [Run(watcher(after="0", max_consecutive_failures=1)).start() for _ in range(10)]
    await ticks(3)
    assert reader().founded
    service.errors = [api_error(AltinnRateLimitError, 429, retry_after=0.8)]
    await until(lambda: not service.errors)
    limited_at = service.calls[-1][0]
    await until(lambda: len(service.calls) > 0 and service.calls[-1][0] > limited_at)
    following = [t for t, _, _ in service.calls if t > limited_at]
    assert following[0] - limited_at >= 0.8  # nobody polled inside the pause the service asked for
    service.add()
    await until(lambda: all(r.payloads for r in runs))
    assert all(r.error is None for r in runs)  # a 429 is not a failure, even with a budget of 1
    for run in runs:
        await run.stop()


async def test_cancelling_a_trigger_mid_request_does_not_break_the_reader(service: FakeService) -> None:
    runs = [Run(sensor(min_events=1)).start() for _ in range(4)]
    await ticks(3)
    the_reader = reader()
    service.gate = asyncio.Event()
    await until(lambda: service.held > 0)
    service.add()
    await runs[0].stop()  # the triggerer cancels one trigger while the reader's request is in flight
    service.gate.set()
    await until(lambda: all(r.payloads for r in runs[1:]))
    assert all(r.delivered() == keys(service.events) for r in runs[1:])
    assert not the_reader.task.cancelled()  # type: ignore[union-attr]


async def test_an_unexpected_error_of_the_reader_reaches_every_waiting_trigger(
    service: FakeService,
) -> None:
    runs = [Run(watcher(after="0")).start() for _ in range(3)]
    await ticks(3)
    service.errors = [RuntimeError("a bug")]
    await until(lambda: all(r.task is not None and r.task.done() for r in runs))
    assert all(isinstance(r.error, RuntimeError) for r in runs)
    assert _shared._READERS == {}

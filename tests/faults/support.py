"""What the fault tests share: the four components under test, run as Airflow runs them, and fault bookkeeping.

Components (each reads its connection from an ``AIRFLOW_CONN_...`` variable, as in a real deployment):

* ``sensor (poke)``: :class:`AltinnEventsSensor` in poke mode, ``execute()`` on the sync client;
* ``sensor trigger``: :class:`AltinnEventsSensorTrigger` rebuilt from its serialized kwargs (as the triggerer
  does), ``run()`` until it fires, its payload handed to the sensor's ``execute_complete``;
* ``watcher trigger``: :class:`AltinnEventsWatcherTrigger` with an in-memory asset state store;
* ``publish operator``: :class:`AltinnEventsPublishOperator` publishing a list (the async client path).

Faults are registered through the emulator's admin API; :class:`Faults` remembers what it registered so
that a test can say how many faulted responses the emulator actually served.
"""

from __future__ import annotations

import asyncio
import json
import random
import threading
import time
import uuid
from collections.abc import AsyncGenerator, Awaitable, Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from typing import Any, cast

import httpx

from airflow_provider_altinn_events._payloads import TriggerPayload, TriggerStatus
from airflow_provider_altinn_events.emulator.handle import EmulatorHandle
from airflow_provider_altinn_events.exceptions import AltinnError
from airflow_provider_altinn_events.operators.publish import (
    AltinnEventsPublishError,
    AltinnEventsPublishOperator,
    AltinnEventsPublishRejectedError,
)
from airflow_provider_altinn_events.sensors.altinn_events import AltinnEventsSensor
from airflow_provider_altinn_events.triggers.altinn_events import (
    AltinnEventsSensorTrigger,
    AltinnEventsWatcherTrigger,
)
from tests.fakes import FakeStore as FakeStore
from tests.fakes import FakeTI as FakeTI

EVENTS_PATH = "/events/api/v1/events"
CONN_ID = "altinn_faults"
COMPONENTS = ("sensor (poke)", "sensor trigger", "watcher trigger", "publish operator")
READERS = COMPONENTS[:3]
RUN_TIMEOUT = 60.0


def new_resource(tag: str) -> str:
    """A resource of its own for one test, so runs never see each other's events."""
    return f"urn:altinn:resource:faults-{tag}-{uuid.uuid4().hex[:8]}"


def connection_env(handle: EmulatorHandle, **extra: Any) -> tuple[str, str]:
    """The environment variable that defines :data:`CONN_ID` for ``handle`` (name, value)."""
    return f"AIRFLOW_CONN_{CONN_ID.upper()}", handle.connection_json(**extra)


# ---------------------------------------------------------------------------------------------------------
# Faults
# ---------------------------------------------------------------------------------------------------------


@dataclass
class Faults:
    """Registers faults on one emulator and counts how many of them were served."""

    handle: EmulatorHandle
    registered: dict[int, int] = field(default_factory=dict)  # fault id -> times
    extra_served: int = 0

    def add(self, *, times: int, **fault: Any) -> None:
        """Register a fault that is used up after ``times`` matching requests (so it can be counted)."""
        created = self.handle.add_fault(times=times, **fault)
        self.registered[int(created["id"])] = times

    def remaining(self) -> dict[int, int]:
        listed = self.handle.admin.get("/_emulator/faults").json()["faults"]
        return {int(f["id"]): int(f["times"]) for f in listed if f.get("times") is not None}

    def served(self) -> int:
        """Faulted responses served so far (registered ``times`` minus what is left of each)."""
        left = self.remaining()
        return self.extra_served + sum(times - left.get(fid, 0) for fid, times in self.registered.items())

    def clear(self) -> int:
        """Stop injecting; returns the faults served."""
        served = self.served()
        self.handle.clear_faults()
        return served

    @contextmanager
    def share_of_calls(
        self, share: float, *, seconds: float, method: str, path: str = EVENTS_PATH, status: int = 503
    ) -> Iterator[None]:
        """For ``seconds``, answer about ``share`` of the matching calls with ``status``, at random.

        The emulator's faults count (``times``); they have no probability. A thread watches
        ``/_emulator/stats`` every 5 ms and, for each new matching request it sees, arms a one-shot fault for a
        following request with probability ``share`` (never more than one armed at a time, so faults do not
        come in bursts; the share met is therefore a little below ``share``). Seeded, so runs repeat.

        The window opens with one fault armed before the component starts, so the first matching call meets
        it whatever the load: with only random draws made by the watching thread, a component that needed few
        calls could finish before the thread armed anything (seen as "the fault was never met" on a loaded
        machine), and the test proved nothing.
        """
        key = f"{method} {path}"
        stop = threading.Event()
        rng = random.Random(f"{method} {path} {share}")

        def pattern() -> None:
            with httpx.Client(base_url=self.handle.base_url, timeout=10) as client:

                def count() -> int:
                    return int(client.get("/_emulator/stats").json()["requests"].get(key, 0))

                def armed() -> bool:
                    faults = client.get("/_emulator/faults").json()["faults"]
                    return any(f["path"] == path and f["method"] == method for f in faults)

                def arm() -> None:
                    fault = {"method": method, "path": path, "status": status, "times": 1}
                    created = client.post("/_emulator/faults", json=fault).json()
                    self.registered[int(created["id"])] = 1

                seen = count()
                deadline = time.monotonic() + seconds
                while not stop.is_set() and time.monotonic() < deadline:
                    now = count()
                    draws = [rng.random() < share for _ in range(now - seen)]
                    seen = now
                    if any(draws) and not armed():
                        arm()
                    stop.wait(0.005)

        opening = {"method": method, "path": path, "status": status, "times": 1}
        created = self.handle.admin.post("/_emulator/faults", json=opening).json()
        self.registered[int(created["id"])] = 1
        thread = threading.Thread(target=pattern, name="fault-pattern", daemon=True)
        thread.start()
        try:
            yield
        finally:
            stop.set()
            thread.join(10)


# ---------------------------------------------------------------------------------------------------------
# Reading what the emulator holds (with the admin client, never with the code under test)
# ---------------------------------------------------------------------------------------------------------


def stored_events(handle: EmulatorHandle, resource: str) -> list[dict[str, Any]]:
    """Every event the emulator holds for ``resource``, in order, read with the admin client (never with the
    code under test; call with no faults registered)."""
    token = handle.altinn_token(["altinn:events.subscribe"])
    events: list[dict[str, Any]] = []
    after = "0"
    while True:
        response = handle.admin.get(
            EVENTS_PATH,
            params={"resource": resource, "after": after, "size": 1000},
            headers={"Authorization": f"Bearer {token}"},
        )
        response.raise_for_status()
        page = response.json()
        if not page:
            return events
        events += page
        after = str(page[-1]["id"])


def stored_ids(handle: EmulatorHandle, resource: str) -> list[str]:
    """Every event id the emulator holds for ``resource``, in order (call with no faults registered)."""
    return [str(event["id"]) for event in stored_events(handle, resource)]


def events_requests(handle: EmulatorHandle) -> int:
    """Requests the emulator counted on any Altinn path (token services and Events API)."""
    return sum(int(n) for n in handle.stats()["requests"].values())


# ---------------------------------------------------------------------------------------------------------
# The components
# ---------------------------------------------------------------------------------------------------------


@dataclass
class Outcome:
    """How one component run ended: ids it delivered (or published), and the error if it failed."""

    ids: list[str] = field(default_factory=list)
    error: BaseException | None = None
    payload: TriggerPayload | None = None
    after: str | None = None


def sensor(resource: str, **kwargs: Any) -> AltinnEventsSensor:
    kwargs.setdefault("poll_interval", 0.1)
    kwargs.setdefault("timeout", RUN_TIMEOUT)
    return AltinnEventsSensor(
        task_id="wait_for_events",
        resource=resource,
        deferrable=False,
        altinn_events_conn_id=CONN_ID,
        **kwargs,
    )


async def run_sensor_poke(resource: str, *, min_events: int, after: str = "0", **kwargs: Any) -> Outcome:
    """The sensor in poke mode (sync client, in a worker thread as on a worker)."""
    ti = FakeTI()
    task = sensor(resource, min_events=min_events, after=after, **kwargs)
    try:
        events = await asyncio.to_thread(task.execute, {"ti": ti})
    except Exception as error:
        return Outcome(error=error, after=after)
    return Outcome(ids=[str(e["id"]) for e in events], after=ti.pushed.get("after"))


async def run_sensor_trigger(
    resource: str,
    *,
    min_events: int,
    after: str = "0",
    max_consecutive_failures: int = 10,
    run_timeout: float = RUN_TIMEOUT,
) -> Outcome:
    """The sensor's trigger as the triggerer runs it, its payload then resumed by ``execute_complete``."""
    original = AltinnEventsSensorTrigger(
        resource=resource,
        after=after,
        min_events=min_events,
        poll_interval=0.1,
        max_consecutive_failures=max_consecutive_failures,
        altinn_events_conn_id=CONN_ID,
    )
    _, kwargs = original.serialize()
    trigger = AltinnEventsSensorTrigger(**json.loads(json.dumps(kwargs)))
    gen = cast(AsyncGenerator[Any, None], trigger.run())
    try:
        event = await asyncio.wait_for(anext(gen), run_timeout)
    finally:
        await gen.aclose()
    payload = TriggerPayload.from_dict(event.payload)
    ti = FakeTI()
    try:
        events = sensor(resource).execute_complete({"ti": ti}, event.payload)
    except Exception as error:
        return Outcome(error=error, payload=payload, after=payload.after)
    return Outcome(ids=[str(e["id"]) for e in events], payload=payload, after=ti.pushed.get("after"))


async def run_watcher(
    resource: str,
    *,
    want: Callable[[list[str]], bool],
    store: FakeStore | None = None,
    after: str = "0",
    max_consecutive_failures: int = 10,
    batch: int = 50,
    run_timeout: float = RUN_TIMEOUT,
) -> Outcome:
    """The watcher as the triggerer runs it, until ``want(ids so far)`` holds, it raises, or time runs out."""
    trigger = AltinnEventsWatcherTrigger(
        resource=resource,
        after=after,
        poll_interval=0.1,
        max_events_per_trigger_event=batch,
        max_consecutive_failures=max_consecutive_failures,
        altinn_events_conn_id=CONN_ID,
    )
    state = store if store is not None else FakeStore()
    trigger.asset_state_store = state
    outcome = Outcome()
    gen = cast(AsyncGenerator[Any, None], trigger.run())
    deadline = time.monotonic() + run_timeout
    try:
        while not want(outcome.ids):
            event = await asyncio.wait_for(anext(gen), max(0.1, deadline - time.monotonic()))
            payload = TriggerPayload.from_dict(event.payload)
            assert payload.status is TriggerStatus.EVENTS, payload
            outcome.ids += payload.event_ids
            outcome.after = payload.after
        await stop_like_the_triggerer(gen, state, trigger.cursor_key, outcome.after)
    except Exception as error:
        outcome.error = error
    finally:
        await gen.aclose()
    return outcome


async def stop_like_the_triggerer(gen: Any, store: FakeStore, key: str, cursor: str | None) -> None:
    """Stop a watcher the way a triggerer does: it resumes the trigger right after each yield (the watcher
    then stores its cursor and sleeps) and cancels it while it waits. Closing the generator at the yield
    instead would be a crash inside the documented at-least-once window."""
    if cursor is None:
        return
    resumed = asyncio.ensure_future(anext(gen))
    deadline = time.monotonic() + 10
    while store.values.get(key) != cursor and not resumed.done() and time.monotonic() < deadline:
        await asyncio.sleep(0.01)
    resumed.cancel()
    with suppress(asyncio.CancelledError, StopAsyncIteration):
        await resumed


def publish_events(resource: str, count: int, tag: str) -> list[dict[str, Any]]:
    """Events as a DAG author writes them: no id (the operator derives stable ones), no time."""
    return [
        {
            "type": "no.example.faults.v1",
            "source": f"https://example.org/faults/{tag}",
            "resource": resource,
            "subject": "/party/1337",
            "data": {"n": n},
        }
        for n in range(count)
    ]


async def run_publish(
    resource: str, *, count: int, run_id: str = "manual__faults", max_concurrency: int = 4
) -> Outcome:
    """The publish operator with a list (the async client, bounded concurrency), in a worker thread."""
    operator = AltinnEventsPublishOperator(
        task_id="task",
        event=publish_events(resource, count, run_id),
        altinn_events_conn_id=CONN_ID,
        max_concurrency=max_concurrency,
    )
    try:
        ids = await asyncio.to_thread(operator.execute, {"ti": FakeTI(run_id)})
    except Exception as error:
        return Outcome(error=error)
    return Outcome(ids=list(ids))


def publish_ids(resource: str, count: int, run_id: str = "manual__faults") -> list[str]:
    """The ids the publish operator gives ``count`` events of one task instance (the same on every try)."""
    from airflow_provider_altinn_events.operators.publish import event_id_for

    return [event_id_for(FakeTI.dag_id, FakeTI.task_id, run_id, -1, n) for n in range(count)]


async def generate_later(handle: EmulatorHandle, resource: str, count: int, delay: float) -> None:
    """Publish ``count`` events on ``resource`` after ``delay`` seconds (the admin API is never faulted)."""
    await asyncio.sleep(delay)
    await asyncio.to_thread(handle.generate, resource, count, type="no.example.faults.v1")


def retryable_failure(error: BaseException | None) -> bool:
    """Whether ``error`` is a classified failure that Airflow's task retry is meant to handle: a transient
    Altinn error (the run's retry budget ran out), or a publish that failed part-way for such a reason."""
    if isinstance(error, AltinnEventsPublishRejectedError):
        return False
    if isinstance(error, AltinnEventsPublishError):
        error = error.__cause__
    return isinstance(error, AltinnError) and error.retryable


async def with_task_retries(run: Callable[[], Awaitable[Outcome]], tries: int = 3) -> tuple[Outcome, int]:
    """Run a task again, as Airflow does with ``retries``, while it fails with a retryable classified error.

    :return: the last outcome and how many tries it took.
    """
    attempt = 1
    outcome = await run()
    while attempt < tries and retryable_failure(outcome.error):
        attempt += 1
        outcome = await run()
    return outcome, attempt


def ending(outcome: Outcome, tries: int = 1) -> str:
    """How a run ended, for the summary."""
    if outcome.error is not None:
        return type(outcome.error).__name__
    return "completed" if tries == 1 else f"completed on try {tries}"

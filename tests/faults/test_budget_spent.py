"""Faults that do not stop: each component fails with a clear, classified error once its retry budget is
spent, and nothing is lost: the next try (or the restarted trigger) delivers every event.

The components run with a failure budget of two polls in a row (``max_consecutive_failures=2``; one for the
slow answers, which take longest to give up on); the client's
own retries come first (5 attempts, a 60 s budget, ``Retry-After`` above 60 s is not waited for). Watchers
first deliver some events, so the restart must continue from the stored cursor rather than start over.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

import pytest

from airflow_provider_altinn_events._payloads import TriggerStatus
from airflow_provider_altinn_events.emulator.handle import EmulatorHandle
from airflow_provider_altinn_events.exceptions import (
    AltinnError,
    AltinnRateLimitError,
    AltinnServerError,
    AltinnTransportError,
)
from airflow_provider_altinn_events.operators.publish import (
    AltinnEventsPublishError,
    AltinnEventsPublishRejectedError,
)
from tests.faults.ledger import FaultLedger
from tests.faults.support import (
    COMPONENTS,
    EVENTS_PATH,
    FakeStore,
    Faults,
    connection_env,
    new_resource,
    publish_ids,
    run_publish,
    run_sensor_poke,
    run_sensor_trigger,
    run_watcher,
    stored_ids,
)

BUDGET = 2
FIRST = 30
LATER = 20
PUBLISH_COUNT = 12
FOREVER = 100_000


@dataclass(frozen=True)
class Persistent:
    fault: dict[str, Any]
    error: type[AltinnError]
    timeout: float = 5.0
    budget: int = BUDGET
    #: the components this fault exhausts; ``None``: all of them
    components: tuple[str, ...] | None = None


PERSISTENT: dict[str, Persistent] = {
    "503 on every call": Persistent({"status": 503}, AltinnServerError),
    # A long Retry-After exhausts the publish operator's client (it will not wait 120 s inside a task); the
    # sensor and the triggers wait it out instead of counting it as a failure (tests/faults/test_rate_limit.py).
    "429, Retry-After 120 s": Persistent(
        {"status": 429, "retry_after": 120}, AltinnRateLimitError, components=("publish operator",)
    ),
    "connection dropped every time": Persistent({"drop_connection": True}, AltinnTransportError),
    "every answer slower than timeout": Persistent(
        {"delay_ms": 700}, AltinnTransportError, timeout=0.3, budget=1
    ),
}


def classified(error: BaseException | None, expected: type[AltinnError]) -> AltinnError:
    """The Altinn error behind ``error``: of the expected class, retryable, and saying what happened."""
    cause = error.__cause__ if isinstance(error, AltinnEventsPublishError) else error
    assert isinstance(cause, expected), f"expected {expected.__name__}, got {error!r}"
    assert cause.retryable, "a transient cause must stay retryable so Airflow's retries can take over"
    return cause


@pytest.mark.parametrize(
    ("kind", "component"),
    [
        (kind, component)
        for kind, spec in PERSISTENT.items()
        for component in COMPONENTS
        if spec.components is None or component in spec.components
    ],
)
async def test_budget_spent_gives_a_classified_error_and_loses_nothing(
    kind: str,
    component: str,
    altinn_emulator: EmulatorHandle,
    monkeypatch: pytest.MonkeyPatch,
    fault_results: FaultLedger,
) -> None:
    spec = PERSISTENT[kind]
    handle = altinn_emulator
    monkeypatch.setenv(*connection_env(handle, timeout=spec.timeout))
    resource = new_resource("budget")
    faults = Faults(handle)
    method = "POST" if component == "publish operator" else "GET"
    seen: list[str] = []

    if component == "publish operator":
        faults.add(method=method, path=EVENTS_PATH, times=FOREVER, **spec.fault)
        failed = await run_publish(resource, count=PUBLISH_COUNT)
        served = faults.clear()
        error = failed.error
        assert isinstance(error, AltinnEventsPublishError)
        assert not isinstance(error, AltinnEventsPublishRejectedError)  # Airflow may retry it
        classified(error, spec.error)
        expected = publish_ids(resource, PUBLISH_COUNT)
        assert set(error.not_published_ids) | set(error.published_ids) == set(expected)
        assert str(error).startswith(f"published {len(error.published_ids)} of {PUBLISH_COUNT}")
        retried = await run_publish(resource, count=PUBLISH_COUNT)  # the task's next try: same ids
        assert retried.error is None, retried.error
        seen = stored_ids(handle, resource)
        outcome = f"{type(error.__cause__).__name__}, then retried"

    elif component == "watcher trigger":
        store = FakeStore()
        await asyncio.to_thread(handle.generate, resource, FIRST, type="a")
        first = await run_watcher(resource, store=store, want=lambda ids: len(ids) >= FIRST)
        assert first.error is None and len(first.ids) == FIRST
        faults.add(method=method, path=EVENTS_PATH, times=FOREVER, **spec.fault)
        await asyncio.to_thread(handle.generate, resource, LATER, type="a")
        failed = await run_watcher(
            resource, store=store, want=lambda ids: False, max_consecutive_failures=spec.budget
        )
        served = faults.clear()
        classified(failed.error, spec.error)
        # the triggerer restarts a watcher that raised; it resumes from the stored cursor
        resumed = await run_watcher(resource, store=store, want=lambda ids: len(ids) >= LATER)
        assert resumed.error is None
        seen = first.ids + failed.ids + resumed.ids
        expected = stored_ids(handle, resource)
        outcome = f"{spec.error.__name__}, then restarted"

    else:
        await asyncio.to_thread(handle.generate, resource, FIRST, type="a")
        faults.add(method=method, path=EVENTS_PATH, times=FOREVER, **spec.fault)
        if component == "sensor (poke)":
            failed = await run_sensor_poke(resource, min_events=FIRST, max_consecutive_failures=spec.budget)
            classified(failed.error, spec.error)
        else:
            failed = await run_sensor_trigger(
                resource, min_events=FIRST, max_consecutive_failures=spec.budget
            )
            assert failed.payload is not None and failed.payload.status is TriggerStatus.ERROR
            assert failed.payload.error is not None
            assert failed.payload.error.type == spec.error.__name__
            assert failed.payload.error.retryable
            message = str(failed.error)  # what execute_complete raised: the task's failure message
            assert spec.error.__name__ in message and resource in message and "cursor" in message
        served = faults.clear()
        # the next try starts from where this one stopped (the sensor's `after`, or the trigger's cursor)
        after = failed.after or "0"
        runner = run_sensor_poke if component == "sensor (poke)" else run_sensor_trigger
        retried = await runner(resource, min_events=FIRST, after=after)
        assert retried.error is None
        seen = retried.ids
        expected = stored_ids(handle, resource)
        outcome = f"{spec.error.__name__}, then retried"

    run = fault_results.record(
        scenario=f"budget spent: {kind}",
        component=component,
        faults_injected=served,
        completed=True,
        outcome=outcome,
        expected=expected,
        seen=seen,
    )
    assert served >= spec.budget
    assert run.lost == 0 and run.duplicated == 0

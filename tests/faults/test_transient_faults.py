"""Transient faults over real HTTP: every component completes, with every event once.

For each fault (503 on 30% of calls for a window, 429 with ``Retry-After``, dropped connections, answers
slower than the connection's timeout, the Altinn token expiring between two pages) and each component (the
sensor in poke mode, its trigger, the watcher trigger, the publish operator), the run must complete on its
own (the client's retries and the triggers' failure budgets absorb the faults), deliver or publish every
event exactly once and in the service's order, and the emulator must show that the fault was really met.

Readers start with events already stored (more than one page) and more events arrive while they run;
publishing sends a list through the async client with bounded concurrency. Per component and fault, "a
minute" of faults is scaled down to a few seconds; one test then runs all four components at once through a
full minute of 503s on 30% of calls.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from typing import Any

import pytest

from airflow_provider_altinn_events.emulator.handle import EmulatorHandle
from tests.faults.ledger import FaultLedger
from tests.faults.support import (
    COMPONENTS,
    EVENTS_PATH,
    Faults,
    Outcome,
    connection_env,
    ending,
    generate_later,
    new_resource,
    publish_ids,
    run_publish,
    run_sensor_poke,
    run_sensor_trigger,
    run_watcher,
    stored_ids,
    with_task_retries,
)

BEFORE = 130  # two pages of the triggers' page size (100)
DURING = 20  # published while the component runs
PUBLISH_COUNT = 40
TOKEN_BEFORE = 330  # four pages of 100 at 0.8 s each outlive a 2 s token


@dataclass(frozen=True)
class Scenario:
    """One fault: how to inject it for a method, and the connection timeout it needs."""

    inject: Callable[[Faults, str], AbstractContextManager[None]]
    timeout: float = 5.0


@contextmanager
def _added(faults: Faults, **fault: Any) -> Iterator[None]:
    faults.add(**fault)
    yield


SCENARIOS: dict[str, Scenario] = {
    "503 for 30% of calls (3 s)": Scenario(
        lambda f, method: f.share_of_calls(0.3, seconds=3.0, method=method, path=EVENTS_PATH, status=503)
    ),
    "429 with Retry-After: 1": Scenario(
        lambda f, method: _added(f, method=method, path=EVENTS_PATH, status=429, retry_after=1, times=3)
    ),
    "dropped connections": Scenario(
        lambda f, method: _added(f, method=method, path=EVENTS_PATH, drop_connection=True, times=3)
    ),
    "answers slower than the timeout": Scenario(
        lambda f, method: _added(f, method=method, path=EVENTS_PATH, delay_ms=1500, times=2), timeout=1.0
    ),
}


@dataclass
class Exercise:
    """What a run under a fault gave: its outcome, the ids it had to deliver, faults served, task tries."""

    outcome: Outcome
    expected: list[str]
    served: int
    tries: int


async def exercise(
    handle: EmulatorHandle,
    component: str,
    inject: Callable[[Faults, str], AbstractContextManager[None]],
    before: int = BEFORE,
) -> Exercise:
    """Run ``component`` under the fault. The sensor in poke mode and the publish operator get Airflow's task
    retries (a try may end with a classified, retryable error); the triggers must get through on their own."""
    faults = Faults(handle)
    resource = new_resource(component.split()[0])
    if component == "publish operator":
        with inject(faults, "POST"):
            outcome, tries = await with_task_retries(
                lambda: run_publish(resource, count=PUBLISH_COUNT, max_concurrency=2)
            )
        served = faults.clear()
        expected = publish_ids(resource, PUBLISH_COUNT)
        outcome.ids = stored_ids(handle, resource)  # what reached Altinn, duplicates included
        return Exercise(outcome, expected, served, tries)
    await asyncio.to_thread(handle.generate, resource, before, type="no.example.faults.v1")
    total = before + DURING
    with inject(faults, "GET"):
        arrivals = asyncio.create_task(generate_later(handle, resource, DURING, 1.0))
        tries = 1
        if component == "sensor (poke)":
            outcome, tries = await with_task_retries(lambda: run_sensor_poke(resource, min_events=total))
        elif component == "sensor trigger":
            outcome = await run_sensor_trigger(resource, min_events=total)
        else:
            outcome = await run_watcher(resource, want=lambda ids: len(set(ids)) >= total)
        await arrivals
    served = faults.clear()
    return Exercise(outcome, stored_ids(handle, resource), served, tries)


def check(outcome: Outcome, expected: list[str], component: str) -> None:
    assert outcome.error is None, f"{component} failed: {outcome.error!r}"
    if component == "publish operator":
        assert sorted(outcome.ids) == sorted(expected)  # all published, each once (Altinn keys on id+source)
    else:
        assert outcome.ids == expected  # every event, once, in the service's order


@pytest.mark.parametrize("component", COMPONENTS)
@pytest.mark.parametrize("scenario", list(SCENARIOS))
async def test_component_completes_under_fault(
    scenario: str,
    component: str,
    altinn_emulator: EmulatorHandle,
    monkeypatch: pytest.MonkeyPatch,
    fault_results: FaultLedger,
) -> None:
    spec = SCENARIOS[scenario]
    monkeypatch.setenv(*connection_env(altinn_emulator, timeout=spec.timeout))
    result = await exercise(altinn_emulator, component, spec.inject)
    run = fault_results.record(
        scenario=scenario,
        component=component,
        faults_injected=result.served,
        completed=result.outcome.error is None,
        outcome=ending(result.outcome, result.tries),
        expected=result.expected,
        seen=result.outcome.ids,
    )
    assert result.served > 0, "the fault was never met: the test proves nothing"
    check(result.outcome, result.expected, component)
    assert run.lost == 0 and run.duplicated == 0


FLEET = 4  # sensor triggers and as many watchers on one resource: they share one reader (triggers/_shared.py)


@pytest.mark.parametrize("scenario", list(SCENARIOS))
async def test_a_shared_fleet_completes_under_fault(
    scenario: str,
    altinn_emulator: EmulatorHandle,
    monkeypatch: pytest.MonkeyPatch,
    fault_results: FaultLedger,
) -> None:
    """Sensor triggers and watchers that wait on one resource share one poll per tick; under each fault
    every one of them still delivers every event once, in the service's order (the reader's errors reach
    each as its own failed poll)."""
    spec = SCENARIOS[scenario]
    monkeypatch.setenv(*connection_env(altinn_emulator, timeout=spec.timeout))
    faults = Faults(altinn_emulator)
    resource = new_resource("fleet")
    await asyncio.to_thread(altinn_emulator.generate, resource, BEFORE, type="no.example.faults.v1")
    total = BEFORE + DURING
    with spec.inject(faults, "GET"):
        arrivals = asyncio.create_task(generate_later(altinn_emulator, resource, DURING, 1.0))
        outcomes = await asyncio.gather(
            *(run_sensor_trigger(resource, min_events=total) for _ in range(FLEET)),
            *(run_watcher(resource, want=lambda ids: len(set(ids)) >= total) for _ in range(FLEET)),
        )
        await arrivals
    served = faults.clear()
    expected = stored_ids(altinn_emulator, resource)
    assert served > 0, "the fault was never met: the test proves nothing"
    for index, outcome in enumerate(outcomes):
        component = "sensor trigger" if index < FLEET else "watcher trigger"
        run = fault_results.record(
            scenario=f"{scenario}, {FLEET} + {FLEET} sharing polls",
            component=component,
            faults_injected=served if index == 0 else 0,  # one fault stream for the fleet: counted once
            completed=outcome.error is None,
            outcome=ending(outcome),
            expected=expected,
            seen=outcome.ids,
        )
        check(outcome, expected, component)
        assert run.lost == 0 and run.duplicated == 0


@pytest.mark.parametrize("component", COMPONENTS)
async def test_token_expiring_between_pages(
    component: str,
    altinn_emulator_factory: Callable[..., EmulatorHandle],
    monkeypatch: pytest.MonkeyPatch,
    fault_results: FaultLedger,
) -> None:
    """Altinn tokens that live 2 s, and pages that each take 0.7 s: the token runs out between pages (and
    some requests carry a token that expires while the emulator holds them, answered 401). The client fetches
    a new token itself and the run goes on."""
    handle = altinn_emulator_factory(token_lifetime=2)
    monkeypatch.setenv(*connection_env(handle, timeout=5))

    @contextmanager
    def slow_pages(faults: Faults, method: str) -> Iterator[None]:
        faults.add(method=method, path=EVENTS_PATH, delay_ms=800, times=12)
        yield

    grants_before = handle.stats()["token_grants"]
    result = await exercise(handle, component, slow_pages, before=TOKEN_BEFORE)
    grants = handle.stats()["token_grants"] - grants_before - 1  # minus stored_ids()'s own admin token
    run = fault_results.record(
        scenario="token expiring between pages",
        component=component,
        faults_injected=max(0, grants - 1),
        completed=result.outcome.error is None,
        outcome=ending(result.outcome, result.tries),
        expected=result.expected,
        seen=result.outcome.ids,
    )
    assert grants >= 2, f"the token never expired during the run ({grants} grant(s))"
    check(result.outcome, result.expected, component)
    assert run.lost == 0 and run.duplicated == 0


MINUTE = 60.0


async def test_a_full_minute_of_503_on_30_percent_of_calls_all_components_at_once(
    altinn_emulator: EmulatorHandle, monkeypatch: pytest.MonkeyPatch, fault_results: FaultLedger
) -> None:
    """The issue's own shape: for one minute about 30% of Events API calls (reads and publishes) answer 503,
    while all four components run side by side. Events keep arriving through the minute (ten every 10 s on
    each reader's resource) and the publish operator runs three times, so every component is busy for the
    whole window. Each must finish with every event exactly once."""
    monkeypatch.setenv(*connection_env(altinn_emulator, timeout=5.0))
    reads, writes = Faults(altinn_emulator), Faults(altinn_emulator)  # counted apart: GET and POST faults
    readers = {component: new_resource(component.split()[0]) for component in COMPONENTS[:3]}
    published = new_resource("publish")
    arrivals, step = 10, 10.0
    total = BEFORE + arrivals * 6
    for resource in readers.values():
        await asyncio.to_thread(altinn_emulator.generate, resource, BEFORE, type="no.example.faults.v1")
    run_ids = [f"manual__minute_{k}" for k in range(3)]

    async def publish_later(run_id: str, delay: float) -> tuple[Outcome, int]:
        await asyncio.sleep(delay)
        return await with_task_retries(
            lambda: run_publish(published, count=PUBLISH_COUNT, run_id=run_id, max_concurrency=2)
        )

    started = time.monotonic()
    with (
        reads.share_of_calls(0.3, seconds=MINUTE, method="GET", path=EVENTS_PATH, status=503),
        writes.share_of_calls(0.3, seconds=MINUTE, method="POST", path=EVENTS_PATH, status=503),
    ):
        feeding = [
            generate_later(altinn_emulator, resource, arrivals, 5.0 + k * step)
            for resource in readers.values()
            for k in range(6)
        ]
        outcomes = await asyncio.gather(
            with_task_retries(
                lambda: run_sensor_poke(readers["sensor (poke)"], min_events=total, timeout=3 * MINUTE)
            ),
            run_sensor_trigger(readers["sensor trigger"], min_events=total, run_timeout=3 * MINUTE),
            run_watcher(
                readers["watcher trigger"], want=lambda ids: len(set(ids)) >= total, run_timeout=3 * MINUTE
            ),
            *(publish_later(run_id, delay) for run_id, delay in zip(run_ids, (0.0, 25.0, 50.0), strict=True)),
            *feeding,
        )
        busy_for = time.monotonic() - started
    read_faults, write_faults = reads.served(), writes.served()
    altinn_emulator.clear_faults()
    poke, trigger, watcher = outcomes[0], outcomes[1], outcomes[2]
    runs = {
        "sensor (poke)": poke,
        "sensor trigger": (trigger, 1),
        "watcher trigger": (watcher, 1),
    }
    assert busy_for >= 50.0  # the readers needed the last arrivals, 55 s in: they ran through the window
    assert read_faults >= 20 and write_faults >= 5, (read_faults, write_faults)
    for index, (component, (outcome, tries)) in enumerate(runs.items()):
        expected = stored_ids(altinn_emulator, readers[component])
        run = fault_results.record(
            scenario="503 for 30% for 60 s, all 4 at once",
            component=component,
            faults_injected=read_faults if index == 0 else 0,  # one shared window: count its faults once
            completed=outcome.error is None,
            outcome=ending(outcome, tries),
            expected=expected,
            seen=outcome.ids,
        )
        assert len(expected) == total
        check(outcome, expected, component)
        assert run.lost == 0 and run.duplicated == 0
    publish_runs = outcomes[3:6]
    seen_published: list[str] = []
    for outcome, _tries in publish_runs:
        assert outcome.error is None, f"publish failed: {outcome.error!r}"
    stored = stored_ids(altinn_emulator, published)
    for run_id in run_ids:
        seen_published += publish_ids(published, PUBLISH_COUNT, run_id)
    run = fault_results.record(
        scenario="503 for 30% for 60 s, all 4 at once",
        component="publish operator",
        faults_injected=write_faults,
        completed=all(outcome.error is None for outcome, _ in publish_runs),
        outcome=ending(publish_runs[-1][0], max(tries for _, tries in publish_runs)),
        expected=seen_published,
        seen=stored,
    )
    assert sorted(stored) == sorted(seen_published)  # all three runs published, each event once
    assert run.lost == 0 and run.duplicated == 0

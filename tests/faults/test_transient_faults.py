"""Transient faults over real HTTP: every component completes, with every event once.

For each fault (503 on 30% of calls for a window, 429 with ``Retry-After``, dropped connections, answers
slower than the connection's timeout, the Altinn token expiring between two pages) and each component (the
sensor in poke mode, its trigger, the watcher trigger, the publish operator), the run must complete on its
own (the client's retries and the triggers' failure budgets absorb the faults), deliver or publish every
event exactly once and in the service's order, and the emulator must show that the fault was really met.

Readers start with events already stored (more than one page) and more events arrive while they run;
publishing sends a list through the async client with bounded concurrency. "A minute" of faults is scaled
down to a few seconds.
"""

from __future__ import annotations

import asyncio
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

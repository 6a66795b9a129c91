"""The sensor inside real Airflow (``dag.test()``: the deferred trigger runs inline) against the emulator."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pendulum
import pytest

from tests.airflow_support import EXAMPLE_DAGS, run_dag, task_states, xcom_value

pytestmark = pytest.mark.integration

RESOURCE = "urn:altinn:resource:ttd-altinn-events-automated-tests"
ORGANISATION = "urn:altinn:organization:identifier-no:991825827"
GET_EVENTS = "GET /events/api/v1/events"
CURSOR_VARIABLE = "altinn_events_example_cursor"


def polls(handle: Any) -> int:
    return int(handle.stats()["requests"].get(GET_EVENTS, 0))


def when(condition: Callable[[], bool], action: Callable[[], Any], timeout: float = 60) -> threading.Thread:
    """Run ``action`` in a thread as soon as ``condition`` holds (e.g. once the trigger polls)."""

    def wait_then_act() -> None:
        deadline = time.monotonic() + timeout
        while not condition() and time.monotonic() < deadline:
            time.sleep(0.05)
        action()

    thread = threading.Thread(target=wait_then_act, daemon=True)
    thread.start()
    return thread


def load_example(dag_id: str) -> Any:
    from tests.airflow_support import DagBag

    bag = DagBag(dag_folder=str(EXAMPLE_DAGS / "example_sensor.py"))
    assert not bag.import_errors, bag.import_errors
    return bag.get_dag(dag_id)


@pytest.fixture
def fast_examples(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIRFLOW_VAR_ALTINN_EVENTS_EXAMPLE_POLL_INTERVAL", "0.2")


@pytest.fixture
def no_cursor_variable(airflow_db: str) -> Iterator[None]:
    from airflow.models.variable import Variable

    Variable.delete(CURSOR_VARIABLE)
    yield
    Variable.delete(CURSOR_VARIABLE)


def stored_variable(key: str) -> Any:
    from airflow.models.variable import Variable

    return Variable.get(key, default_var=None)


def test_example_sensor_defers_resumes_and_chains_the_cursor(
    airflow_db: str, altinn_conn: Any, fast_examples: None, no_cursor_variable: None
) -> None:
    altinn_conn.generate(RESOURCE, 3, type="no.example.batch.finished.v1", subject=ORGANISATION)  # history
    dag = load_example("example_altinn_events_sensor")

    # publish only once the trigger (not the worker's first check) is polling: the event must be found there
    first_polls = 0

    def trigger_is_polling() -> bool:
        nonlocal first_polls
        first_polls = first_polls or polls(altinn_conn)
        return polls(altinn_conn) >= first_polls + 2 > 2

    publisher = when(
        trigger_is_polling,
        lambda: altinn_conn.generate(
            RESOURCE, 1, type="no.example.batch.finished.v1", subject=ORGANISATION, data={"n": 1}
        ),
    )
    run = dag.test()
    publisher.join()
    assert run.state == "success", task_states(run)
    events = xcom_value(run, "wait_for_batch_finished")
    assert [e["data"] for e in events] == [{"n": 1}]  # "latest": the history was not returned
    assert xcom_value(run, "wait_for_batch_finished", key="after") == events[0]["id"]
    assert xcom_value(run, "handle_batches") == [events[0]["id"]]
    assert stored_variable(CURSOR_VARIABLE) == events[0]["id"]

    # the next run continues at the stored cursor: it sees only what came after, and finds it at once
    altinn_conn.generate(
        RESOURCE, 2, type="no.example.batch.finished.v1", subject=ORGANISATION, data={"n": 2}
    )
    altinn_conn.generate(RESOURCE, 1, type="no.example.case.changed.v1", subject=ORGANISATION)  # other type
    second = dag.test()
    assert second.state == "success", task_states(second)
    events2 = xcom_value(second, "wait_for_batch_finished")
    assert [e["data"] for e in events2] == [{"n": 2}, {"n": 2}]
    assert stored_variable(CURSOR_VARIABLE) == events2[-1]["id"]


def test_example_poke_sensor_returns_at_most_ten(
    airflow_db: str, altinn_conn: Any, fast_examples: None
) -> None:
    altinn_conn.generate(RESOURCE, 3, type="no.example.case.changed.v1", data={"status": "open"})
    altinn_conn.generate(RESOURCE, 12, type="no.example.case.changed.v1", data={"status": "closed"})
    run = load_example("example_altinn_events_sensor_poke").test()
    assert run.state == "success", task_states(run)
    assert xcom_value(run, "count_cases") == 10
    events = xcom_value(run, "wait_for_closed_cases")
    assert all(e["data"] == {"status": "closed"} for e in events)


def test_templated_deferrable_sensor_gathers_min_events_across_the_handover(
    airflow_db: str, altinn_conn: Any
) -> None:
    from airflow.sdk import DAG, task

    from airflow_provider_altinn_events.sensors.altinn_events import AltinnEventsSensor

    altinn_conn.generate(RESOURCE, 1, type="x.hit", data={"k": "a"})
    altinn_conn.generate(RESOURCE, 1, type="x.miss")
    with DAG(
        "sensor_min_events_handover",
        schedule=None,
        start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
        catchup=False,
        params={"resource": RESOURCE, "prefix": "x."},
    ) as dag:
        wait = AltinnEventsSensor(
            task_id="wait",
            resource="{{ params.resource }}",
            event_types=["{{ params.prefix }}%"],
            where={"data.k": {"in": ["a", "b"]}},
            min_events=2,
            poll_interval=0.1,
            timeout=60,
            deferrable=True,
        )

        @task
        def downstream(events: list[dict[str, Any]], after: str) -> dict[str, Any]:
            return {"ids": [e["id"] for e in events], "after": after}

        from airflow.sdk import XComArg

        downstream(wait.output, XComArg(wait, key="after"))

    before = polls(altinn_conn)
    publisher = when(
        lambda: polls(altinn_conn) >= before + 3,  # the worker's check, then the trigger's polls
        lambda: altinn_conn.generate(RESOURCE, 1, type="x.hit", data={"k": "b"}),
    )
    run = run_dag(dag)
    publisher.join()
    assert run.state == "success", task_states(run)
    result = xcom_value(run, "downstream")
    assert len(result["ids"]) == 2 and result["after"] == result["ids"][-1]
    events = xcom_value(run, "wait")
    assert [e["data"]["k"] for e in events] == ["a", "b"]


def test_sensor_fails_clearly_on_a_permanent_error(airflow_db: str, altinn_conn: Any) -> None:
    from airflow.sdk import DAG

    from airflow_provider_altinn_events.sensors.altinn_events import AltinnEventsSensor

    altinn_conn.add_fault(method="GET", path="/events/api/v1/events", status=403)
    with DAG(
        "sensor_forbidden",
        schedule=None,
        start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
        catchup=False,
    ) as dag:
        AltinnEventsSensor(task_id="wait", resource=RESOURCE, poll_interval=0.1, timeout=30, retries=0)
    run = run_dag(dag)
    assert run.state == "failed"
    assert task_states(run) == {"wait": "failed"}


def try_numbers(dag_run: Any) -> dict[str, int]:
    from airflow.utils.session import create_session

    with create_session() as session:
        return {ti.task_id: ti.try_number for ti in dag_run.get_task_instances(session=session)}


@pytest.mark.parametrize("deferrable", [False, True], ids=["poke", "deferrable"])
def test_a_403_fails_the_sensor_without_airflow_retries(
    airflow_db: str, altinn_conn: Any, deferrable: bool
) -> None:
    """A 403 gets the same answer on every try: the task fails on its first try although ``retries=2``, in
    poke mode and when the trigger reports it (``execute_complete``), as ``docs/guides/sensor.rst`` says."""
    from datetime import timedelta

    from airflow.sdk import DAG

    from airflow_provider_altinn_events.sensors.altinn_events import AltinnEventsSensor

    forbidden = {"method": "GET", "path": "/events/api/v1/events", "status": 403}
    if deferrable:  # the worker's first check passes; the trigger meets the 403
        adder = when(lambda: polls(altinn_conn) >= 1, lambda: altinn_conn.add_fault(**forbidden))
    else:
        altinn_conn.add_fault(**forbidden)
    with DAG(
        f"sensor_forbidden_{'deferrable' if deferrable else 'poke'}",
        schedule=None,
        start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
        catchup=False,
    ) as dag:
        AltinnEventsSensor(
            task_id="wait",
            resource=RESOURCE,
            after="latest",
            poll_interval=0.2,
            timeout=60,
            deferrable=deferrable,
            retries=2,
            retry_delay=timedelta(seconds=0),
        )
    run = run_dag(dag)
    if deferrable:
        adder.join()
    assert run.state == "failed"
    assert task_states(run) == {"wait": "failed"}
    assert try_numbers(run) == {"wait": 1}  # no second try

"""The publish operators inside real Airflow (``dag.test()``) against the emulator over real HTTP."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pendulum
import pytest

from airflow_provider_altinn_events._compat import airflow_version
from airflow_provider_altinn_events.operators.publish import (
    AltinnEventsPublishAppEventOperator,
    AltinnEventsPublishOperator,
    event_id_for,
)
from tests.airflow_support import EXAMPLE_DAGS, run_dag, task_states, xcom_value

pytestmark = pytest.mark.integration

RESOURCE = "urn:altinn:resource:ttd-altinn-events-automated-tests"
APP_SOURCE = "https://ttd.apps.altinn.no/ttd/apps-test/instances/1337/6fb3f738-6800-4f29-9f3e-1c66862656cd"
APP_RESOURCE = "urn:altinn:resource:app_ttd_apps-test"
POST_EVENTS = "POST /events/api/v1/events"
POST_APP = "POST /events/api/v1/app"


def make_dag(dag_id: str) -> Any:
    from airflow.sdk import DAG

    return DAG(dag_id, schedule=None, start_date=pendulum.datetime(2026, 1, 1, tz="UTC"), catchup=False)


def make_event(number: int, **extra: Any) -> dict[str, Any]:
    return {
        "type": "no.example.case.changed.v1",
        "source": f"https://cases.example.org/cases/{number}",
        "resource": RESOURCE,
        "subject": "/organisation/991825827",
        "data": {"case": number},
        **extra,
    }


def stored(resource: str = RESOURCE) -> list[dict[str, Any]]:
    from airflow_provider_altinn_events.hooks.altinn_events import AltinnEventsHook

    hook = AltinnEventsHook()
    try:
        return [event.to_dict() for event in hook.get_conn().iter_events(resource=resource, after="0")]
    finally:
        hook.close()


def requests(handle: Any, key: str) -> int:
    return int(handle.stats()["requests"].get(key, 0))


def load_example(dag_id: str) -> Any:
    from tests.airflow_support import DagBag

    bag = DagBag(dag_folder=str(EXAMPLE_DAGS / "example_publish.py"))
    assert not bag.import_errors, bag.import_errors
    return bag.get_dag(dag_id)


def test_single_templated_event(airflow_db: str, altinn_conn: Any) -> None:
    with make_dag("publish_single") as dag:
        AltinnEventsPublishOperator(
            task_id="publish",
            event={
                "type": "no.example.batch.finished.v1",
                "source": "https://data.example.org/pipelines/{{ dag.dag_id }}",
                "resource": RESOURCE,
                "data": {"run_id": "{{ run_id }}"},
            },
        )
    run = run_dag(dag)
    assert run.state == "success", task_states(run)
    ids = xcom_value(run, "publish")
    assert ids == [event_id_for("publish_single", "publish", run.run_id, -1, 0)]
    (event,) = stored()
    assert event["id"] == ids[0] and event["specversion"] == "1.0" and event["time"].endswith("Z")
    assert event["source"] == "https://data.example.org/pipelines/publish_single"
    assert event["data"] == {"run_id": run.run_id}


def test_batch_from_an_upstream_task(airflow_db: str, altinn_conn: Any) -> None:
    from airflow.sdk import task

    with make_dag("publish_batch") as dag:

        @task
        def build() -> list[dict[str, Any]]:
            return [make_event(n) for n in range(40)]

        AltinnEventsPublishOperator(task_id="publish", event=build(), max_concurrency=5)
    run = run_dag(dag)
    assert run.state == "success", task_states(run)
    ids = xcom_value(run, "publish")
    assert ids == [event_id_for("publish_batch", "publish", run.run_id, -1, n) for n in range(40)]
    assert sorted(e["id"] for e in stored()) == sorted(ids)
    assert requests(altinn_conn, POST_EVENTS) == 40


def test_airflow_retry_resends_the_same_ids(airflow_db: str, altinn_conn: Any) -> None:
    """Try 1 fails part-way (a 409 the client does not retry); Airflow's retry re-sends every id, and the
    emulator, like Altinn, keeps each (id, source) once."""
    altinn_conn.add_fault(method="POST", path="/events/api/v1/events", status=409, times=1)
    with make_dag("publish_retry") as dag:
        AltinnEventsPublishOperator(
            task_id="publish",
            event=[make_event(n) for n in range(6)],
            max_concurrency=2,
            retries=1,
            retry_delay=timedelta(seconds=0),
        )
    run = run_dag(dag)
    assert run.state == "success", task_states(run)
    ids = xcom_value(run, "publish")
    assert ids == [event_id_for("publish_retry", "publish", run.run_id, -1, n) for n in range(6)]
    posts = requests(altinn_conn, POST_EVENTS)
    assert 7 <= posts <= 12, posts  # try 1 sent some, try 2 sent all six again
    assert sorted(e["id"] for e in stored()) == sorted(ids)
    assert altinn_conn.stats()["events"] == 6

    from airflow.utils.session import create_session

    with create_session() as session:
        (ti,) = run.get_task_instances(session=session)
        assert ti.try_number == 2


def test_invalid_event_fails_before_any_request(airflow_db: str, altinn_conn: Any) -> None:
    with make_dag("publish_invalid") as dag:
        AltinnEventsPublishOperator(
            task_id="publish",
            event=[make_event(0), make_event(1, resource="urn:altinn:resource:Not_Lowercase")],
            retries=2,
        )
    run = run_dag(dag)
    assert run.state == "failed"
    assert task_states(run) == {"publish": "failed"}  # AirflowFailException: no retries for a bad event
    assert altinn_conn.stats()["requests"] == {}
    assert altinn_conn.stats()["events"] == 0


def app_dag(dag_id: str) -> Any:
    with make_dag(dag_id) as dag:
        AltinnEventsPublishAppEventOperator(
            task_id="publish_app_event",
            event={"source": APP_SOURCE, "type": "app.instance.created", "subject": "/party/1337"},
        )
    return dag


def test_app_event_with_a_platform_access_token(
    airflow_db: str, altinn_conn: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    token = altinn_conn.platform_access_token("ttd", "apps-test")
    monkeypatch.setenv(
        "AIRFLOW_CONN_ALTINN_EVENTS_DEFAULT", altinn_conn.connection_json(platform_access_token=token)
    )
    run = run_dag(app_dag("publish_app_event"))
    assert run.state == "success", task_states(run)
    (event_id,) = xcom_value(run, "publish_app_event")
    (event,) = stored(APP_RESOURCE)
    assert event["id"] == event_id and event["subject"] == "/party/1337"


def test_app_event_without_a_platform_access_token(airflow_db: str, altinn_conn: Any) -> None:
    run = run_dag(app_dag("publish_app_event_no_token"))
    assert run.state == "failed"
    assert requests(altinn_conn, POST_APP) == 0  # the connection lacks the token: refused before sending


def test_app_event_with_a_refused_platform_access_token_is_403(
    airflow_db: str, altinn_conn: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(
        "AIRFLOW_CONN_ALTINN_EVENTS_DEFAULT", altinn_conn.connection_json(platform_access_token="garbage")
    )
    run = run_dag(app_dag("publish_app_event_bad_token"))
    assert run.state == "failed"
    assert requests(altinn_conn, POST_APP) == 1
    assert altinn_conn.stats()["events"] == 0


def test_example_publish_dag(airflow_db: str, altinn_conn: Any) -> None:
    run = run_dag(load_example("example_altinn_events_publish"))
    assert run.state == "success", task_states(run)
    assert len(xcom_value(run, "publish_changed_cases")) == 25
    assert len(stored()) == 26


def test_example_app_event_dag(airflow_db: str, altinn_conn: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    token = altinn_conn.platform_access_token("ttd", "apps-test")
    monkeypatch.setenv(
        "AIRFLOW_CONN_ALTINN_EVENTS_DEFAULT", altinn_conn.connection_json(platform_access_token=token)
    )
    run = run_dag(load_example("example_altinn_events_publish_app_event"))
    assert run.state == "success", task_states(run)
    assert len(stored(APP_RESOURCE)) == 1


#: Airflow 3.1+ prints a failed task's exception during dag.test(); 3.0 only records the failed state.
AIRFLOW_PRINTS_TASK_ERRORS = not airflow_version().startswith("3.0.")


def test_new_user_str_datetime_time_fails_locally_as_on_altinn(
    airflow_db: str, altinn_conn: Any, caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str]
) -> None:
    """Tried as a new user would: ``str(datetime)`` as ``time`` ("2026-11-26 10:00:00+00:00", a space, no
    ``T``) passed before; Altinn answers 400 "Text for attribute 'time' is invalid: Invalid timestamp"
    (the CloudEvents SDK's Timestamps.TryParse, docs/contract.rst). Now the DAG fails locally with that."""
    from datetime import datetime, timezone

    from airflow.sdk import task

    with make_dag("publish_str_datetime") as dag:

        @task
        def build() -> dict[str, Any]:
            return make_event(1, time=str(datetime(2026, 11, 26, 10, 0, tzinfo=timezone.utc)))

        AltinnEventsPublishOperator(task_id="publish", event=build(), retries=2)
    run = run_dag(dag)
    assert run.state == "failed"
    assert task_states(run) == {"build": "success", "publish": "failed"}
    assert altinn_conn.stats()["requests"] == {}  # refused before any request, as Altinn would refuse it
    output = caplog.text + "".join(capfd.readouterr())
    if AIRFLOW_PRINTS_TASK_ERRORS:  # dag.test() on Airflow 3.0 does not print the task's exception
        assert "Text for attribute 'time' is invalid: Invalid timestamp" in output
        assert "upper-case 'T'" in output
    # what the operator raised, on every Airflow line: its own pre-flight check, with Altinn's message
    from airflow_provider_altinn_events.client.validation import prepare_cloud_event
    from airflow_provider_altinn_events.exceptions import AltinnConfigError

    event = make_event(1, time=str(datetime(2026, 11, 26, 10, 0, tzinfo=timezone.utc)))
    with pytest.raises(AltinnConfigError, match="Invalid timestamp") as info:
        prepare_cloud_event(event, default_id="x")
    assert "upper-case 'T'" in str(info.value) and info.value.field.endswith("time")


def test_cloudevents_sdk_event_in_a_dag(airflow_db: str, altinn_conn: Any) -> None:
    """The publish operator takes an event built with the cloudevents SDK (docs/guides/publishing.rst)."""
    core = pytest.importorskip("cloudevents.core.v1.event")
    event = core.CloudEvent(
        {
            "id": "sdk-1",
            "type": "no.example.case.changed.v1",
            "source": "https://cases.example.org/cases/1",
            "resource": RESOURCE,
        },
        data={"case": 1},
    )
    with make_dag("publish_sdk_event") as dag:
        AltinnEventsPublishOperator(task_id="publish", event=event)
    run = run_dag(dag)
    assert run.state == "success", task_states(run)
    assert xcom_value(run, "publish") == ["sdk-1"]
    (stored_event,) = stored()
    assert stored_event["data"] == {"case": 1} and stored_event["datacontenttype"] == "application/json"

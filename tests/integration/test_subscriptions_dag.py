"""The subscription operators inside real Airflow (``dag.test()``) against the emulator over real HTTP.

The push endpoint is a tiny HTTP server of the test on 127.0.0.1 (the test emulator allows http webhooks);
``wait_for_validation=True`` defers, and ``dag.test()`` runs the trigger inline.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pendulum
import pytest

from airflow_provider_altinn_events.operators.subscriptions import (
    AltinnEventsCreateSubscriptionOperator,
    AltinnEventsDeleteSubscriptionOperator,
)
from tests.airflow_support import EXAMPLE_DAGS, run_dag, task_states, xcom_value
from tests.unit.triggers.test_subscriptions import WebhookReceiver

pytestmark = pytest.mark.integration

RESOURCE = "urn:altinn:resource:ttd-altinn-events-automated-tests"


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    server = WebhookReceiver()
    try:
        yield server
    finally:
        server.close()


def make_dag(dag_id: str) -> Any:
    from airflow.sdk import DAG

    return DAG(dag_id, schedule=None, start_date=pendulum.datetime(2026, 1, 1, tz="UTC"), catchup=False)


def subscriptions() -> list[Any]:
    from airflow_provider_altinn_events.hooks.altinn_events import AltinnEventsHook

    hook = AltinnEventsHook()
    try:
        return list(hook.get_conn().list_subscriptions().subscriptions)
    finally:
        hook.close()


def create_dag(dag_id: str, endpoint: str, **kwargs: Any) -> Any:
    with make_dag(dag_id) as dag:
        AltinnEventsCreateSubscriptionOperator(
            task_id="create", endpoint=endpoint, resource_filter=RESOURCE, **kwargs
        )
    return dag


def delete_dag(dag_id: str, subscription_id: int | str, **kwargs: Any) -> Any:
    with make_dag(dag_id) as dag:
        AltinnEventsDeleteSubscriptionOperator(task_id="delete", subscription_id=subscription_id, **kwargs)
    return dag


def test_create_twice_gives_one_subscription(
    airflow_db: str, altinn_conn: Any, receiver: WebhookReceiver
) -> None:
    dag = create_dag("subscription_create_twice", receiver.url, type_filter="no.example.case.changed.v1")
    first = run_dag(dag)
    second = run_dag(dag)
    assert (first.state, second.state) == ("success", "success")
    one, two = xcom_value(first, "create"), xcom_value(second, "create")
    assert one["id"] == two["id"]
    assert xcom_value(second, "create", key="subscription_id") == one["id"]
    assert [s.id for s in subscriptions()] == [one["id"]]
    assert altinn_conn.stats()["subscriptions"] == 1


def test_create_and_wait_for_validation(airflow_db: str, altinn_conn: Any, receiver: WebhookReceiver) -> None:
    receiver.fail_first = (
        3  # Altinn retries the validation event; the 4th attempt succeeds, after the deferral
    )
    dag = create_dag(
        "subscription_wait_validated", receiver.url, wait_for_validation=True, poll_interval_seconds=0.2
    )
    run = run_dag(dag)
    assert run.state == "success", task_states(run)
    subscription = xcom_value(run, "create")
    assert subscription["validated"] is True and subscription["endPoint"] == receiver.url
    attempts = receiver.validation_events()
    assert len(attempts) == 4
    assert attempts[-1]["source"].endswith(f"/subscriptions/{subscription['id']}")


def test_wait_for_validation_fails_when_the_endpoint_never_answers(
    airflow_db: str, altinn_conn: Any, receiver: WebhookReceiver
) -> None:
    receiver.status = 503
    dag = create_dag(
        "subscription_wait_timeout",
        receiver.url,
        wait_for_validation=True,
        validation_timeout_seconds=2,
        poll_interval_seconds=0.3,
    )
    run = run_dag(dag)
    assert run.state == "failed"
    assert task_states(run) == {"create": "failed"}
    (subscription,) = subscriptions()
    assert subscription.validated is False


def test_delete_and_delete_again(airflow_db: str, altinn_conn: Any, receiver: WebhookReceiver) -> None:
    created = run_dag(create_dag("subscription_for_delete", receiver.url))
    subscription_id = xcom_value(created, "create")["id"]
    templated = "{{ params.id }}"  # renders to a string of digits
    with make_dag("subscription_delete") as dag:
        AltinnEventsDeleteSubscriptionOperator(
            task_id="delete", subscription_id=templated, params={"id": subscription_id}
        )
    run = run_dag(dag)
    assert run.state == "success", task_states(run)
    assert subscriptions() == []
    assert run_dag(dag).state == "success"  # already gone: not an error by default
    strict = run_dag(delete_dag("subscription_delete_strict", subscription_id, fail_if_not_exists=True))
    assert strict.state == "failed"


def test_deleting_another_consumers_subscription_is_refused(
    airflow_db: str, altinn_conn: Any, receiver: WebhookReceiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    other = altinn_conn.register_client(client_id="other-consumer", orgnumber="897069652", org=None)
    monkeypatch.setenv(
        "AIRFLOW_CONN_ALTINN_EVENTS_OTHER",
        json.dumps(
            {
                "conn_type": "altinn_events",
                "host": altinn_conn.base_url,
                "login": other.client_id,
                "password": other.private_key_pem,
                "extra": {"environment": "custom", "key_id": other.key_id, "scopes": " ".join(other.scopes)},
            }
        ),
    )
    theirs = run_dag(
        create_dag("subscription_of_another", receiver.url, altinn_events_conn_id="altinn_events_other")
    )
    subscription_id = xcom_value(theirs, "create")["id"]
    run = run_dag(delete_dag("subscription_delete_theirs", subscription_id, retries=2))
    assert run.state == "failed"
    assert task_states(run) == {"delete": "failed"}
    assert requests_to_delete(altinn_conn) == 1  # a 403 is permanent: no Airflow retry
    assert altinn_conn.stats()["subscriptions"] == 1


def requests_to_delete(handle: Any) -> int:
    return sum(n for key, n in handle.stats()["requests"].items() if key.startswith("DELETE "))


def test_example_subscriptions_dag(airflow_db: str, altinn_conn: Any, receiver: WebhookReceiver) -> None:
    from tests.airflow_support import DagBag

    bag = DagBag(dag_folder=str(EXAMPLE_DAGS / "example_subscriptions.py"))
    assert not bag.import_errors, bag.import_errors
    dag = bag.get_dag("example_altinn_events_subscriptions")
    run = run_dag(dag, run_conf={"endpoint": receiver.url})
    assert run.state == "success", task_states(run)
    assert xcom_value(run, "create_subscription")["validated"] is True
    assert receiver.validation_events()
    assert subscriptions() == []  # the example deletes what it created

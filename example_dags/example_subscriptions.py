"""Create and delete an Altinn push subscription from Airflow.

``example_altinn_events_subscriptions`` creates a subscription (or finds the identical one: a rerun never
creates a second), waits in the triggerer until Altinn has validated the endpoint, and deletes it at the
end. Pass your own endpoint when triggering: ``{"endpoint": "https://..."}``; Altinn pushes only to https
endpoints that answer its validation event with 2xx.

Uses the connection ``altinn_events_default`` with the scope ``altinn:events.subscribe``.
"""

from __future__ import annotations

import pendulum
from airflow.sdk import DAG, Param

from airflow_provider_altinn_events.operators.subscriptions import (
    AltinnEventsCreateSubscriptionOperator,
    AltinnEventsDeleteSubscriptionOperator,
)

with DAG(
    dag_id="example_altinn_events_subscriptions",
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    params={
        "endpoint": Param("https://webhooks.example.org/altinn/events", type="string"),
        "resource": Param("urn:altinn:resource:ttd-altinn-events-automated-tests", type="string"),
    },
    tags=["example", "altinn-events"],
) as dag:
    # [START altinn_events_create_subscription]
    create_subscription = AltinnEventsCreateSubscriptionOperator(
        task_id="create_subscription",
        endpoint="{{ params.endpoint }}",
        resource_filter="{{ params.resource }}",
        type_filter="no.example.case.changed.v1",
        wait_for_validation=True,
        validation_timeout_seconds=300,
        poll_interval_seconds=2,
    )
    # [END altinn_events_create_subscription]

    # [START altinn_events_delete_subscription]
    delete_subscription = AltinnEventsDeleteSubscriptionOperator(
        task_id="delete_subscription",
        subscription_id=create_subscription.output["subscription_id"],
    )
    # [END altinn_events_delete_subscription]

    create_subscription >> delete_subscription

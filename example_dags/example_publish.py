"""Publish events to Altinn from Airflow.

``example_altinn_events_publish`` announces that a batch finished (one event) and that cases changed (a
list of events built by an upstream task, published with bounded concurrency). Events without an ``id`` get
one that stays the same when Airflow retries the task, so Altinn keeps each event once.

``example_altinn_events_publish_app_event`` is for Altinn apps and platform components only: it needs a
platform access token in the connection's extra (``platform_access_token``).

Both use the connection ``altinn_events_default``; against the emulator, its ``scopes`` must include
``altinn:events.publish``.
"""

from __future__ import annotations

from typing import Any

import pendulum
from airflow.sdk import DAG, task

from airflow_provider_altinn_events.operators.publish import (
    AltinnEventsPublishAppEventOperator,
    AltinnEventsPublishOperator,
)

RESOURCE = "urn:altinn:resource:ttd-altinn-events-automated-tests"
ORGANISATION = "urn:altinn:organization:identifier-no:991825827"

with DAG(
    dag_id="example_altinn_events_publish",
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    tags=["example", "altinn-events"],
) as dag:
    # [START altinn_events_publish]
    batch_finished = AltinnEventsPublishOperator(
        task_id="publish_batch_finished",
        event={
            "type": "no.example.batch.finished.v1",
            "source": "https://data.example.org/pipelines/{{ dag.dag_id }}",
            "resource": RESOURCE,
            "subject": ORGANISATION,
            "data": {"run_id": "{{ run_id }}", "run_after": "{{ dag_run.run_after }}"},
        },
    )
    # [END altinn_events_publish]

    # [START altinn_events_publish_batch]
    @task
    def changed_cases() -> list[dict[str, Any]]:
        """Whatever found the changes; each dict becomes one CloudEvent."""
        return [
            {
                "type": "no.example.case.changed.v1",
                "source": f"https://cases.example.org/cases/{number}",
                "resource": RESOURCE,
                "subject": ORGANISATION,
                "data": {"case": number, "status": "closed"},
            }
            for number in range(1, 26)
        ]

    cases_changed = AltinnEventsPublishOperator(
        task_id="publish_changed_cases",
        event=changed_cases(),
        max_concurrency=8,
    )
    # [END altinn_events_publish_batch]

    batch_finished >> cases_changed


with DAG(
    dag_id="example_altinn_events_publish_app_event",
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    tags=["example", "altinn-events"],
) as app_dag:
    # [START altinn_events_publish_app_event]
    instance_created = AltinnEventsPublishAppEventOperator(
        task_id="publish_instance_created",
        event={
            "source": (
                "https://ttd.apps.altinn.no/ttd/apps-test/instances/1337/6fb3f738-6800-4f29-9f3e-1c66862656cd"
            ),
            "type": "app.instance.created",
            "subject": "/party/1337",
        },
    )
    # [END altinn_events_publish_app_event]

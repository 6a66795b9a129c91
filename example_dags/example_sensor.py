"""Wait for Altinn events before running downstream tasks.

``example_altinn_events_sensor`` waits, deferred to the triggerer, for the next ``no.example.batch.*``
event (as ``example_altinn_events_publish`` publishes them) and hands the events to a downstream task. The
first run starts at ``"latest"`` (only events published after it starts); each run stores the cursor it
reached in the Variable ``altinn_events_example_cursor``, so the next run continues exactly there.

``example_altinn_events_sensor_poke`` waits on the worker (poke mode) until at least five closed cases exist
in the retained history and returns at most ten of them.

Both use the connection ``altinn_events_default``. The environment variable
``AIRFLOW_VAR_ALTINN_EVENTS_EXAMPLE_POLL_INTERVAL`` (seconds, default 30; read at parse time, so from the
environment only) sets how often they poll; tests and the demo set it low.
"""

from __future__ import annotations

import os
from typing import Any

import pendulum
from airflow.sdk import DAG, Variable, XComArg, task

from airflow_provider_altinn_events.sensors.altinn_events import AltinnEventsSensor

RESOURCE = "urn:altinn:resource:ttd-altinn-events-automated-tests"
# Read from the environment, never from the metadata database: a DAG file's top level runs on every parse.
POLL_INTERVAL = float(os.environ.get("AIRFLOW_VAR_ALTINN_EVENTS_EXAMPLE_POLL_INTERVAL", "30"))

with DAG(
    dag_id="example_altinn_events_sensor",
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    params={"after": "latest"},
    tags=["example", "altinn-events"],
) as dag:
    # [START altinn_events_sensor_deferrable]
    wait_for_batch = AltinnEventsSensor(
        task_id="wait_for_batch_finished",
        resource=RESOURCE,
        event_types=["no.example.batch.%"],  # the service's % wildcard
        where={"subject": {"prefix": "urn:altinn:organization:"}},  # matched on our side
        # continue where the previous run stopped; the first run only sees new events
        after="{{ var.value.get('altinn_events_example_cursor', params.after) }}",
        poll_interval=POLL_INTERVAL,
        timeout=60 * 60,
        deferrable=True,
    )
    # [END altinn_events_sensor_deferrable]

    # [START altinn_events_sensor_downstream]
    @task
    def handle_batches(events: list[dict[str, Any]], after: str) -> list[str]:
        """Process the events (CloudEvent dicts as Altinn sent them), then move the cursor on."""
        for event in events:
            print(f"batch {event['id']} of type {event['type']} from {event['source']}: {event.get('data')}")
        # stored only after the work is done: a failed run is retried from the old cursor (at least once)
        Variable.set("altinn_events_example_cursor", after)
        return [event["id"] for event in events]

    handle_batches(wait_for_batch.output, XComArg(wait_for_batch, key="after"))
    # [END altinn_events_sensor_downstream]


with DAG(
    dag_id="example_altinn_events_sensor_poke",
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    tags=["example", "altinn-events"],
) as poke_dag:
    # [START altinn_events_sensor_poke]
    wait_for_cases = AltinnEventsSensor(
        task_id="wait_for_closed_cases",
        resource=RESOURCE,
        event_types=["no.example.case.changed.v1"],
        where={"data.status": "closed"},
        after="0",  # the start of the retained history
        min_events=5,
        max_events=10,
        mode="poke",
        deferrable=False,
        poll_interval=POLL_INTERVAL,
        timeout=10 * 60,
    )
    # [END altinn_events_sensor_poke]

    @task
    def count_cases(events: list[dict[str, Any]]) -> int:
        return len(events)

    count_cases(wait_for_cases.output)

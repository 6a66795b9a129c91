"""Start a DAG run for new Altinn events: event-driven scheduling with an ``AssetWatcher``.

The watcher trigger polls Altinn in the triggerer and emits one asset event per poll that found new
matching events, carrying up to ``max_events_per_trigger_event`` Altinn events whole. Each DAG run may see
several asset events, each with several Altinn events: loop over both. Delivery is at least once (a
triggerer restart at the wrong instant can emit the last batch again), so key your writes by event id.

The watcher keeps its cursor in the asset's state store, so a triggerer restart or a DAG re-parse resumes
after the last events it emitted. A new watcher starts at ``"latest"``: it does not replay the history.

Uses the connection ``altinn_events_default``. The environment variable
``AIRFLOW_VAR_ALTINN_EVENTS_EXAMPLE_POLL_INTERVAL`` (seconds, default 30; read at parse time, so from the
environment only) sets how often it polls. Like every asset-scheduled DAG, the watcher only runs once
the DAG is unpaused.
"""

from __future__ import annotations

import os
from typing import Any

import pendulum
from airflow.sdk import DAG, Asset, AssetWatcher, task

from airflow_provider_altinn_events.triggers.altinn_events import AltinnEventsWatcherTrigger

RESOURCE = "urn:altinn:resource:ttd-altinn-events-automated-tests"
# Read from the environment, never from the metadata database: a DAG file's top level runs on every parse.
POLL_INTERVAL = float(os.environ.get("AIRFLOW_VAR_ALTINN_EVENTS_EXAMPLE_POLL_INTERVAL", "30"))

# [START altinn_events_watcher]
case_changes = Asset(
    name="altinn_case_changes",
    watchers=[
        AssetWatcher(
            name="altinn_case_changes_watcher",
            trigger=AltinnEventsWatcherTrigger(
                resource=RESOURCE,
                event_types=["no.example.case.changed.v1"],
                poll_interval=POLL_INTERVAL,
                max_events_per_trigger_event=100,  # 1 gives one asset event per Altinn event
            ),
        )
    ],
)
# [END altinn_events_watcher]

with DAG(
    dag_id="example_altinn_events_watcher",
    schedule=[case_changes],
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    tags=["example", "altinn-events"],
) as dag:
    # [START altinn_events_watcher_consumer]
    @task
    def process_case_changes(triggering_asset_events: Any = None) -> list[str]:
        """Handle every Altinn event of every asset event that started this run, once per event id."""
        handled: list[str] = []
        for asset_event in triggering_asset_events[case_changes]:
            payload = asset_event.extra["payload"]  # the trigger's payload: status, resource, after, events
            for event in payload["events"]:
                if event["id"] in handled:  # at least once: the same event can come twice
                    continue
                print(f"case event {event['id']}: {event['type']} {event.get('data')}")
                handled.append(event["id"])  # e.g. an upsert keyed by event["id"]
        return handled

    process_case_changes()
    # [END altinn_events_watcher_consumer]

"""The DAGs of ``make distributed`` (scripts/distributed.py): many sensors, one watcher, each checkable.

``altinn_distributed_sensor`` waits, deferred, for the one event whose subject is the run's ``subject``
param, so every run is released by its own event. ``altinn_distributed_watcher`` is started by an
``AssetWatcher`` for every batch of events on a second resource and returns the ids it handled.
``AIRFLOW_VAR_ALTINN_DISTRIBUTED_POLL_INTERVAL`` (seconds, default 1) sets how often both poll.
"""

from __future__ import annotations

import os
from typing import Any

import pendulum
from airflow.sdk import DAG, Asset, AssetWatcher, task

from airflow_provider_altinn_events.sensors.altinn_events import AltinnEventsSensor
from airflow_provider_altinn_events.triggers.altinn_events import AltinnEventsWatcherTrigger

SENSOR_RESOURCE = "urn:altinn:resource:ttd-distributed-sensors"
WATCH_RESOURCE = "urn:altinn:resource:ttd-distributed-watcher"
RELEASE_TYPE = "no.example.distributed.release.v1"
WATCH_TYPE = "no.example.distributed.change.v1"
POLL_INTERVAL = float(os.environ.get("AIRFLOW_VAR_ALTINN_DISTRIBUTED_POLL_INTERVAL", "1"))

with DAG(
    dag_id="altinn_distributed_sensor",
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    params={"subject": "/distributed/run/0"},
    max_active_runs=200,
    tags=["altinn-events", "distributed"],
):
    AltinnEventsSensor(
        task_id="wait_for_release",
        resource=SENSOR_RESOURCE,
        event_types=[RELEASE_TYPE],
        subject="{{ params.subject }}",
        after="0",
        poll_interval=POLL_INTERVAL,
        timeout=20 * 60,
        deferrable=True,
    )

changes = Asset(
    name="altinn_distributed_changes",
    watchers=[
        AssetWatcher(
            name="altinn_distributed_watcher",
            trigger=AltinnEventsWatcherTrigger(
                resource=WATCH_RESOURCE,
                event_types=[WATCH_TYPE],
                poll_interval=POLL_INTERVAL,
                max_events_per_trigger_event=50,
            ),
        )
    ],
)

with DAG(
    dag_id="altinn_distributed_watcher",
    schedule=[changes],
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    tags=["altinn-events", "distributed"],
):

    @task
    def handle_changes(triggering_asset_events: Any = None) -> list[str]:
        return [
            event["id"]
            for asset_event in triggering_asset_events[changes]
            for event in asset_event.extra["payload"]["events"]
        ]

    handle_changes()

"""The DAG of ``tests/e2e/test_defer_race.py``: one deferrable sensor that waits for one event per run.

Each run waits for the event whose ``subject`` is the run's ``params.subject``; the test publishes it the
moment the sensor has deferred, so the trigger finds it on its first poll (every 0.2 s by default). Each
try starts ``ALTINN_E2E_RACE_TASK_START_DELAY`` seconds (default 6) late, as task processes do on a busy
machine: the resumed try then stays queued or running long enough for a late report of the deferred try's
exit to land on it, whichever of its two usual delays that report had. The sensor's ``resume_grace`` is left
unset: the grace comes from ``[altinn_events] sensor_resume_grace`` (the
test sets it through the environment to run with or without the mitigation). No retries by default, so a
try failed by the race fails the run; ``ALTINN_E2E_RACE_RETRIES`` checks the retry fallback instead.
"""

from __future__ import annotations

import os
import time
from datetime import timedelta
from typing import Any

import pendulum
from airflow.sdk import DAG

from airflow_provider_altinn_events.sensors.altinn_events import AltinnEventsSensor

RESOURCE = "urn:altinn:resource:ttd-altinn-events-automated-tests"
POLL_INTERVAL = float(os.environ.get("ALTINN_E2E_RACE_POLL_INTERVAL", "0.2"))
TASK_START_DELAY = float(os.environ.get("ALTINN_E2E_RACE_TASK_START_DELAY", "6"))
RETRIES = int(os.environ.get("ALTINN_E2E_RACE_RETRIES", "0"))


def _slow_start(context: Any) -> None:
    time.sleep(TASK_START_DELAY)


with DAG(
    dag_id="altinn_events_defer_race",
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    params={"subject": "/race/none"},
    max_active_runs=4,
    default_args={"retries": RETRIES, "retry_delay": timedelta(seconds=2)},
) as dag:
    AltinnEventsSensor(
        task_id="wait",
        resource=RESOURCE,
        event_types=["no.example.race.v1"],
        subject="{{ params.subject }}",
        after="0",
        poll_interval=POLL_INTERVAL,
        timeout=600,
        deferrable=True,
        pre_execute=_slow_start,
    )

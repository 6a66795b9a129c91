"""One DAG with every part of the provider, on whichever Airflow line is installed (docs/compatibility.rst).

Scheduled on an asset watched by ``AltinnEventsWatcherTrigger``; it publishes events, waits for them with the
deferrable sensor (the trigger runs in ``dag.test()``'s trigger loop) and ingests them into files. The
watcher itself never runs in ``dag.test()``: the DAG must parse and serialize with it, and its consumer
reads ``triggering_asset_events`` (tests/integration/test_watcher.py). ``make compat`` runs this on every
line of the table; ``make test`` on the newest.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import pendulum
import pytest

from tests.airflow_support import run_dag, task_states, xcom_value

pytestmark = pytest.mark.integration

RESOURCE = "urn:altinn:resource:ttd-every-part"
TYPE = "no.example.every.part.v1"


def test_publish_sensor_ingest_and_watcher_in_one_dag(
    airflow_db: str, altinn_conn: Any, tmp_path: Path
) -> None:
    from airflow.sdk import DAG, Asset, AssetWatcher

    from airflow_provider_altinn_events.operators.ingest import AltinnEventsIngestOperator
    from airflow_provider_altinn_events.operators.publish import AltinnEventsPublishOperator
    from airflow_provider_altinn_events.sensors.altinn_events import AltinnEventsSensor
    from airflow_provider_altinn_events.triggers.altinn_events import AltinnEventsWatcherTrigger

    watched = Asset(
        "altinn_every_part",
        watchers=[
            AssetWatcher(
                name="every_part_watcher",
                trigger=AltinnEventsWatcherTrigger(resource=RESOURCE, event_types=[TYPE], poll_interval=1.0),
            )
        ],
    )
    events = [
        {"type": TYPE, "source": f"https://example.org/cases/{n}", "resource": RESOURCE, "data": {"n": n}}
        for n in range(3)
    ]
    with DAG(
        "altinn_every_part",
        schedule=[watched],
        start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
        catchup=False,
    ) as dag:
        publish = AltinnEventsPublishOperator(task_id="publish", event=events)
        wait = AltinnEventsSensor(
            task_id="wait",
            resource=RESOURCE,
            event_types=[TYPE],
            min_events=3,
            poll_interval=0.1,
            deferrable=True,  # timeout=None: [sensors] default_timeout on every line
        )
        ingest = AltinnEventsIngestOperator(task_id="ingest", resource=RESOURCE, destination=str(tmp_path))
        publish >> wait >> ingest

    run = run_dag(dag)
    assert run.state == "success", task_states(run)
    published = xcom_value(run, "publish")
    assert len(published) == 3
    assert [event["id"] for event in xcom_value(run, "wait")] == published
    summary = xcom_value(run, "ingest")
    assert summary["count"] == 3
    landed = [
        json.loads(line)["id"]
        for uri in summary["files"]
        for line in Path(unquote(urlsplit(uri).path)).read_text().splitlines()
    ]
    assert landed == published

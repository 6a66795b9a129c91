"""Land Altinn events in a data lake every hour, one folder and one cursor per resource.

``example_altinn_events_ingest`` maps :class:`AltinnEventsIngestOperator` over a list of resources, so each
resource is one task instance (spread over the workers of a Celery or Kubernetes executor), with its own
folder and its own cursor under the destination::

    {destination}/{resource}/_cursor.json
    {destination}/{resource}/run={run_id}/part-00000.ndjson.gz
    {destination}/{resource}/run={run_id}/_manifest.json

Where the files go comes from the Airflow Variable ``altinn_events_ingest_destination`` (or the environment
variable ``AIRFLOW_VAR_ALTINN_EVENTS_INGEST_DESTINATION``), read when the task runs, not when the file is
parsed; without it, a local folder under the system's temporary directory is used. For S3 or GCS set it to
e.g. ``s3://aws_default@my-bucket/altinn-events`` (the connection id in the URL's user part) with
``apache-airflow-providers-amazon[s3fs]`` installed.

It uses the connection ``altinn_events_default``, whose scopes must include ``altinn:events.subscribe``.
"""

from __future__ import annotations

import tempfile
from datetime import timedelta
from pathlib import Path
from typing import Any

import pendulum
from airflow.sdk import DAG, task

from airflow_provider_altinn_events.operators.ingest import AltinnEventsIngestOperator

RESOURCES = [
    "urn:altinn:resource:ttd-altinn-events-automated-tests",
    "urn:altinn:resource:app_ttd_apps-test",
]
LOCAL_DEFAULT = (Path(tempfile.gettempdir()) / "altinn-events-lake").as_uri()
DESTINATION = "{{ var.value.get('altinn_events_ingest_destination', '" + LOCAL_DEFAULT + "') }}"

with DAG(
    dag_id="example_altinn_events_ingest",
    schedule="@hourly",
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,  # one writer per resource folder at a time: runs must not overlap
    tags=["example", "altinn-events"],
) as dag:
    # [START altinn_events_ingest]
    ingest = AltinnEventsIngestOperator.partial(
        task_id="ingest",
        destination=DESTINATION,
        compression="gzip",
        max_events=500_000,  # a bound per run; a backlog is worked off over the next runs
        retries=3,  # a retry resumes from the last committed file
        retry_delay=timedelta(minutes=1),
    ).expand(resource=RESOURCES)
    # [END altinn_events_ingest]

    # [START altinn_events_ingest_downstream]
    @task
    def report(summaries: list[dict[str, Any]]) -> dict[str, int]:
        """What each resource got this run (the XCom holds counts, cursors and file URIs, never events)."""
        counts = {summary["resource"]: summary["count"] for summary in summaries}
        for summary in summaries:
            print(f"{summary['resource']}: {summary['count']} events, after={summary['after']}")
            for uri in summary["files"]:
                print(f"  {uri}")
        return counts

    report(ingest.output)
    # [END altinn_events_ingest_downstream]

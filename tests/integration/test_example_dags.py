"""Every example DAG parses with a real DagBag, without network, and none pays for the HTTP stack at parse."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.airflow_support import EXAMPLE_DAGS

pytestmark = pytest.mark.integration

EXPECTED = {
    "example_altinn_events_publish",
    "example_altinn_events_publish_app_event",
    "example_altinn_events_subscriptions",
    "example_altinn_events_sensor",
    "example_altinn_events_sensor_poke",
    "example_altinn_events_watcher",
    "example_altinn_events_ingest",
}


def test_example_dags_parse_without_errors(airflow_db: str) -> None:
    from tests.airflow_support import DagBag

    bag = DagBag(dag_folder=str(EXAMPLE_DAGS))
    assert bag.import_errors == {}
    assert set(bag.dag_ids) >= EXPECTED


HEAVY = (
    "jwt",
    "aiohttp",
    "httpx_aiohttp",
    "airflow_provider_altinn_events.client.clients",
    "airflow_provider_altinn_events.client.auth",
)


def _heavy_after(code: str) -> set[str]:
    probe = f"import sys, runpy, pathlib\n{code}\nprint('HEAVY=' + ','.join(m for m in {HEAVY!r} if m in sys.modules))\n"
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=300, check=True
    )
    (line,) = [ln for ln in out.stdout.splitlines() if ln.startswith("HEAVY=")]
    return set(filter(None, line.removeprefix("HEAVY=").split(",")))


def test_parsing_example_dags_does_not_load_the_http_or_jwt_stack(airflow_db: str) -> None:
    """DAG files are parsed over and over: our operators must not import the client, jwt or aiohttp then.

    Measured against a DAG that uses only Airflow (a ``@task``): on Airflow 3.0 Airflow itself loads jwt and
    aiohttp there (``airflow.providers.standard`` imports ``airflow.models.baseoperator``), from 3.1 nothing
    heavy. The examples may load nothing beyond that baseline, and never our client."""
    baseline = _heavy_after(
        "from airflow.sdk import DAG, task\n"
        "with DAG('baseline', schedule=None):\n"
        "    task(lambda: None, task_id='t')()\n"
    )
    examples = _heavy_after(
        f"for f in sorted(pathlib.Path({str(EXAMPLE_DAGS)!r}).glob('example_*.py')):\n"
        "    runpy.run_path(str(f))\n"
    )
    assert not {m for m in examples if m.startswith("airflow_provider_altinn_events")}, examples
    assert examples <= baseline, (examples, baseline)

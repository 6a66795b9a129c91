"""AltinnEventsIngestOperator inside real Airflow (``dag.test()``) against the emulator over real HTTP."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pendulum
import pytest

from airflow_provider_altinn_events._ingest.layout import resource_dir, run_dir
from airflow_provider_altinn_events.operators.ingest import AltinnEventsIngestOperator
from tests.airflow_support import EXAMPLE_DAGS, run_dag, task_states, xcom_value
from tests.unit.ingest.helpers import check_consistent, cursor, manifest, read_lines

pytestmark = pytest.mark.integration

RESOURCE = "urn:altinn:resource:ttd-ingest-it"
DAY1 = pendulum.datetime(2026, 3, 1, tz="UTC")
DAY2 = pendulum.datetime(2026, 3, 2, tz="UTC")
DAY3 = pendulum.datetime(2026, 3, 3, tz="UTC")


def make_dag(dag_id: str, dest: Path, **operator_kwargs: Any) -> Any:
    from airflow.sdk import DAG

    with DAG(
        dag_id, schedule="@daily", start_date=pendulum.datetime(2026, 1, 1, tz="UTC"), catchup=False
    ) as dag:
        AltinnEventsIngestOperator(
            task_id="ingest",
            resource=operator_kwargs.pop("resource", RESOURCE),
            destination=operator_kwargs.pop("destination", str(dest)),
            page_size=operator_kwargs.pop("page_size", 100),
            events_per_file=operator_kwargs.pop("events_per_file", 150),
            **operator_kwargs,
        )
    return dag


def generated_ids(handle: Any, resource: str, count: int) -> list[str]:
    """Generate events and return their ids in Altinn order (read back through the client)."""
    if count:
        handle.generate(resource, count, type="no.example.case.changed.v1")
    from airflow_provider_altinn_events.hooks.altinn_events import AltinnEventsHook

    hook = AltinnEventsHook()
    try:
        return [e.id for e in hook.get_conn().iter_events(resource=resource, after="0", size=1000)]
    finally:
        hook.close()


def ingest(dag: Any, when: Any) -> dict[str, Any]:
    run = run_dag(dag, logical_date=when, run_after=when)
    assert run.state == "success", task_states(run)
    summary: dict[str, Any] = xcom_value(run, "ingest")
    return summary


def test_first_incremental_and_rerun_of_an_old_run(airflow_db: str, altinn_conn: Any, tmp_path: Path) -> None:
    ids = generated_ids(altinn_conn, RESOURCE, 320)
    dag = make_dag("ingest_runs", tmp_path)
    folder = tmp_path / resource_dir(RESOURCE)

    first = ingest(dag, DAY1)
    assert (first["mode"], first["count"], first["start_after"], first["after"]) == ("new", 320, "0", ids[-1])
    assert len(first["files"]) == 3 and first["files"][0].startswith("file://")
    assert set(first) == {
        "resource",
        "run_id",
        "mode",
        "start_after",
        "after",
        "count",
        "duplicates",
        "pages",
        "files",
        "manifest",
        "cursor_moved",
        "seconds",
    }
    first_folder = folder / run_dir(first["run_id"])
    assert read_lines(first_folder / "part-00000.ndjson")[0]["id"] == ids[0]
    first_bytes = {p.name: p.read_bytes() for p in first_folder.glob("part-*")}

    ids += generated_ids(altinn_conn, RESOURCE, 40)[320:]
    second = ingest(dag, DAY2)
    assert (second["mode"], second["count"], second["start_after"], second["after"]) == (
        "new",
        40,
        ids[319],
        ids[-1],
    )
    assert manifest(folder / run_dir(second["run_id"]))["start_after"] == ids[319]

    altinn_conn.generate(RESOURCE, 10)  # arrives after run 2; a rerun of run 1 must not pick it up
    rerun = ingest(dag, DAY1)
    assert rerun["run_id"] == first["run_id"]
    assert (rerun["mode"], rerun["count"], rerun["after"], rerun["cursor_moved"]) == (
        "rerun",
        320,
        ids[319],
        False,
    )
    assert {p.name: p.read_bytes() for p in first_folder.glob("part-*")} == first_bytes
    assert cursor(folder)["after"] == ids[-1]
    assert check_consistent(folder) == dict.fromkeys(ids, 1)

    third = ingest(dag, DAY3)
    assert (third["count"], third["start_after"]) == (10, ids[-1])


def test_max_events_bounds_each_run_and_gzip(airflow_db: str, altinn_conn: Any, tmp_path: Path) -> None:
    ids = generated_ids(altinn_conn, RESOURCE, 250)
    dag = make_dag("ingest_bounded", tmp_path, max_events=120, compression="gzip")
    counts = [ingest(dag, day)["count"] for day in (DAY1, DAY2, DAY3)]
    assert counts == [120, 120, 10]
    folder = tmp_path / resource_dir(RESOURCE)
    names = sorted(p.name for p in folder.glob("run=*/part-*"))
    assert names and all(name.endswith(".ndjson.gz") for name in names)
    assert check_consistent(folder) == dict.fromkeys(ids, 1)
    assert cursor(folder)["after"] == ids[-1]


def test_empty_resource(airflow_db: str, altinn_conn: Any, tmp_path: Path) -> None:
    summary = ingest(
        make_dag("ingest_empty", tmp_path, resource="urn:altinn:resource:ttd-nothing-here"), DAY1
    )
    assert (summary["count"], summary["after"], summary["files"]) == (0, "0", [])
    folder = tmp_path / "ttd-nothing-here"
    assert manifest(folder / run_dir(summary["run_id"]))["count"] == 0
    assert cursor(folder)["after"] == "0"


def test_several_resources_mapped(airflow_db: str, altinn_conn: Any, tmp_path: Path) -> None:
    from airflow.sdk import DAG

    resources = [f"urn:altinn:resource:ttd-mapped-{n}" for n in range(3)]
    expected = {
        r: generated_ids(altinn_conn, r, count) for r, count in zip(resources, (30, 0, 75), strict=True)
    }
    with DAG("ingest_mapped", schedule="@daily", start_date=pendulum.datetime(2026, 1, 1, tz="UTC")) as dag:
        AltinnEventsIngestOperator.partial(
            task_id="ingest", destination=tmp_path.as_uri(), page_size=20
        ).expand(resource=resources)
    run = run_dag(dag, logical_date=DAY1)
    assert run.state == "success", task_states(run)
    for index, resource in enumerate(resources):
        summary = xcom_value(run, "ingest", map_index=index)
        assert (summary["resource"], summary["count"]) == (resource, len(expected[resource]))
        folder = tmp_path / resource_dir(resource)
        assert check_consistent(folder) == dict.fromkeys(expected[resource], 1)
        assert cursor(folder)["after"] == (expected[resource][-1] if expected[resource] else "0")


def test_example_dag(
    airflow_db: str, altinn_conn: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from example_dags.example_ingest import RESOURCES

    monkeypatch.setenv("AIRFLOW_VAR_ALTINN_EVENTS_INGEST_DESTINATION", tmp_path.as_uri())
    expected = {r: generated_ids(altinn_conn, r, 25) for r in RESOURCES}
    from tests.airflow_support import DagBag

    bag = DagBag(dag_folder=str(EXAMPLE_DAGS / "example_ingest.py"))
    assert not bag.import_errors, bag.import_errors
    dag = bag.get_dag("example_altinn_events_ingest")
    run = dag.test(logical_date=DAY1, run_after=DAY1)
    assert run.state == "success", task_states(run)
    assert xcom_value(run, "report") == {r: 25 for r in RESOURCES}
    for resource in RESOURCES:
        folder = tmp_path / resource_dir(resource)
        assert check_consistent(folder) == dict.fromkeys(expected[resource], 1)
        assert all(p.name.endswith(".gz") for p in folder.glob("run=*/part-*"))


def test_a_bad_destination_state_fails_without_retry(
    airflow_db: str, altinn_conn: Any, tmp_path: Path
) -> None:
    folder = tmp_path / resource_dir(RESOURCE)
    folder.mkdir(parents=True)
    (folder / "_cursor.json").write_text(json.dumps({"version": 99}))
    dag = make_dag("ingest_bad_state", tmp_path, retries=2)
    run = run_dag(dag, logical_date=DAY1)
    assert run.state == "failed"
    assert task_states(run) == {"ingest": "failed"}

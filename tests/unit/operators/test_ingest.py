"""AltinnEventsIngestOperator as a Python object: arguments, destinations, error mapping, parse cost.

Running it inside Airflow is tests/integration/test_ingest_dag.py; the pipeline itself is tests/unit/ingest.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_altinn_events._ingest import Filters, LocalStorage, PathStorage
from airflow_provider_altinn_events.exceptions import AltinnConfigError
from airflow_provider_altinn_events.operators.ingest import AltinnEventsIngestOperator

RESOURCE = "urn:altinn:resource:ttd-operator-unit"


def make(**kwargs: Any) -> AltinnEventsIngestOperator:
    kwargs.setdefault("resource", RESOURCE)
    kwargs.setdefault("destination", "/tmp/lake")
    return AltinnEventsIngestOperator(task_id="ingest", **kwargs)


def test_defaults_and_templated_fields() -> None:
    op = make()
    assert (op.page_size, op.max_events, op.start_after, op.compression) == (1000, None, "0", None)
    assert (op.events_per_file, op.dedupe_window, op.altinn_events_conn_id) == (
        100_000,
        100_000,
        "altinn_events_default",
    )
    assert set(op.template_fields) == {
        "resource",
        "destination",
        "event_types",
        "subject",
        "alternative_subject",
        "start_after",
        "altinn_events_conn_id",
    }
    assert make(compression="none").compression is None


@pytest.mark.parametrize(
    "kwargs",
    [
        {"page_size": 0},
        {"page_size": 1001},
        {"page_size": True},
        {"max_events": 0},
        {"max_events": "10"},
        {"events_per_file": 0},
        {"dedupe_window": -1},
        {"compression": "zstd"},
    ],
)
def test_bad_numbers_fail_at_parse_time(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        make(**kwargs)


def test_event_types_accept_one_or_many_and_are_normalised_by_event_filter() -> None:
    # one normaliser of event types (client/matching.py's EventFilter) for the sensor, triggers and ingestion
    assert Filters.of(make(event_types=None)._event_filter()) == Filters()
    assert Filters.of(make(event_types="")._event_filter()) == Filters()
    assert Filters.of(make(event_types="a.b")._event_filter()) == Filters(("a.b",))
    assert Filters.of(make(event_types=("b", "a", "b"))._event_filter()) == Filters(("a", "b"))
    with pytest.raises(AltinnConfigError) as raised:
        make(event_types=["a", "", "b"])._event_filter()  # was silently dropped; the sensor refuses it too
    assert raised.value.field == "event_types"


def test_destinations(tmp_path: Path) -> None:
    from airflow.sdk import ObjectStoragePath

    assert isinstance(make(destination=str(tmp_path))._storage(), LocalStorage)
    local = make(destination=f" {tmp_path.as_uri()} ")._storage()
    assert isinstance(local, LocalStorage) and local.root == tmp_path
    assert isinstance(make(destination=ObjectStoragePath(tmp_path.as_uri()))._storage(), LocalStorage)
    remote = make(destination="memory://bucket/lake")._storage()
    # universal-pathlib 0.2 (Airflow 3.0/3.1 constraints) spells the in-memory root "memory:///", 0.3 "memory://"
    assert (
        isinstance(remote, PathStorage) and remote.uri("x").replace(":///", "://") == "memory://bucket/lake/x"
    )
    assert isinstance(make(destination=ObjectStoragePath("memory://bucket/l2"))._storage(), PathStorage)


def test_execute_against_the_emulator(altinn_conn: Any, tmp_path: Path) -> None:
    altinn_conn.generate(RESOURCE, 30)
    summary = make(destination=str(tmp_path), page_size=7).execute({"run_id": "scheduled__1"})
    assert (summary["count"], summary["pages"], summary["mode"]) == (30, 5, "new")
    assert summary["files"] == [
        (tmp_path / "ttd-operator-unit" / "run=scheduled__1" / "part-00000.ndjson").as_uri()
    ]


def test_permanent_errors_do_not_retry(altinn_conn: Any, tmp_path: Path) -> None:
    from airflow_provider_altinn_events._compat import AirflowFailException

    with pytest.raises(AirflowFailException, match="AltinnConfigError"):
        make(resource="not-a-urn", destination=str(tmp_path)).execute({"run_id": "r"})
    with pytest.raises(AirflowFailException, match="not both"):
        make(subject="/a", alternative_subject="/b", destination=str(tmp_path)).execute({"run_id": "r"})


@pytest.mark.parametrize("start_after", [" ", "None"])
def test_blank_start_after_is_refused_before_any_request(
    altinn_conn: Any, tmp_path: Path, start_after: str
) -> None:
    from airflow_provider_altinn_events._compat import AirflowFailException

    with pytest.raises(AirflowFailException, match='start_after must be "0"') as info:
        make(destination=str(tmp_path), start_after=start_after).execute({"run_id": "r"})
    assert getattr(info.value.__cause__, "field", None) == "start_after"
    assert altinn_conn.stats()["requests"] == {}


def test_missing_subscribe_scope_is_refused_before_any_request(
    altinn_conn: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from airflow_provider_altinn_events._compat import AirflowFailException

    monkeypatch.setenv(
        "AIRFLOW_CONN_ALTINN_EVENTS_DEFAULT", altinn_conn.connection_json(scopes="altinn:events.publish")
    )
    with pytest.raises(AirflowFailException, match="altinn:events.subscribe") as info:
        make(destination=str(tmp_path)).execute({"run_id": "r"})
    assert getattr(info.value.__cause__, "field", None) == "scopes"
    assert altinn_conn.stats()["requests"] == {}


def test_on_kill_cancels() -> None:
    op = make()
    op.on_kill()
    assert op._cancel.is_set()


def test_importing_the_operator_stays_cheap() -> None:
    code = (
        "import sys, airflow_provider_altinn_events.operators.ingest\n"
        "heavy = [m for m in sys.modules if m.startswith(('airflow_provider_altinn_events._ingest',"
        " 'airflow_provider_altinn_events.client.clients', 'airflow_provider_altinn_events.hooks.altinn_events'))]\n"
        "assert not heavy, heavy\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)

"""Ingestion through a misbehaving Altinn: 503s, 429 with Retry-After, dropped connections, tokens that
expire mid-run. The client's retries absorb them; the run completes with every event written once.

Faults are added while the run is going (from the pipeline's trace hook), so they hit it mid-stream and
not just the first request.
"""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from airflow_provider_altinn_events._ingest import IngestSpec, LocalStorage, run_ingest
from airflow_provider_altinn_events._ingest.layout import resource_dir
from airflow_provider_altinn_events.client import AltinnEventsClient, AltinnSettings
from airflow_provider_altinn_events.operators.ingest import AltinnEventsIngestOperator
from tests.faults.ledger import FaultLedger
from tests.unit.ingest.helpers import all_ids, check_consistent, cursor

pytestmark = [pytest.mark.faults, pytest.mark.timeout(180)]

RESOURCE = "urn:altinn:resource:ttd-ingest-faults"
EVENTS = "/events/api/v1/events"
EXCHANGE = "/authentication/api/v1/exchange/maskinporten"
TOTAL = 12_000


def _ids(handle: Any) -> list[str]:
    handle.generate(RESOURCE, TOTAL, type="no.example.case.changed.v1")
    with AltinnEventsClient(_settings(handle)) as client:
        return [e.id for e in client.iter_events(resource=RESOURCE, after="0", size=1000)]


def _settings(handle: Any) -> AltinnSettings:
    raw = handle.connection_dict()
    conn = SimpleNamespace(
        conn_id="altinn_events_default",
        host=raw["host"],
        login=raw["login"],
        password=raw["password"],
        extra_dejson=raw["extra"],
    )
    return AltinnSettings.from_connection(conn)


FAULTS: list[dict[str, Any]] = [
    {"path": EVENTS, "method": "GET", "status": 503, "times": 3},
    {"path": EVENTS, "method": "GET", "status": 429, "retry_after": 1, "times": 2},
    {"path": EVENTS, "method": "GET", "drop_connection": True, "times": 2},
    {"path": EVENTS, "method": "GET", "status": 500, "times": 1},
    {"path": EXCHANGE, "status": 503, "times": 1},  # the next token refresh fails once
]


def _inject_on_a_timer(handle: Any) -> None:
    """Add one kind of fault at a time, 0.4 s apart, while the run goes on."""
    for fault in FAULTS:
        time.sleep(0.4)
        handle.add_fault(**fault)


def _inject_during_run(handle: Any) -> Any:
    """A trace hook that adds one kind of fault at a time, a few pages apart, while the run goes on."""
    schedule = dict(zip((3, 8, 13, 18, 22), FAULTS, strict=True))
    pages = {"n": 0}

    def trace(point: str) -> None:
        if point == "page":
            pages["n"] += 1
            fault = schedule.get(pages["n"])
            if fault is not None:
                handle.add_fault(**fault)

    return trace


def _record(ledger: FaultLedger, scenario: str, component: str, dest: Path, ids: list[str]) -> None:
    """One row in the fault suite's summary: the faults listed in FAULTS were all served to this run."""
    served = sum(int(fault.get("times", 1)) for fault in FAULTS)
    seen = all_ids(dest / resource_dir(RESOURCE))
    ledger.record(
        scenario=scenario,
        component=component,
        faults_injected=served,
        completed=True,
        expected=ids,
        seen=seen,
    )


def _check(handle: Any, dest: Path, ids: list[str]) -> None:
    folder = dest / resource_dir(RESOURCE)
    assert check_consistent(folder) == dict.fromkeys(ids, 1)
    assert cursor(folder)["after"] == ids[-1]


def test_operator_rides_out_faults_and_token_expiry(
    altinn_emulator_factory: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, fault_results: FaultLedger
) -> None:
    handle = altinn_emulator_factory(token_lifetime=2)
    ids = _ids(handle)
    monkeypatch.setenv("AIRFLOW_CONN_ALTINN_EVENTS_DEFAULT", handle.connection_json())
    handle.add_fault(path=EVENTS, method="GET", delay_ms=40)  # slow pages: the run outlives several tokens
    exchanges_before = handle.stats()["token_exchanges"]
    operator = AltinnEventsIngestOperator(
        task_id="ingest", resource=RESOURCE, destination=str(tmp_path), page_size=200, events_per_file=2500
    )
    started = time.monotonic()
    injector = threading.Thread(target=_inject_on_a_timer, args=(handle,), daemon=True)
    injector.start()
    summary = operator.execute({"run_id": "scheduled__faults"})
    seconds = time.monotonic() - started
    injector.join()
    _record(fault_results, "503/429/drop/500, 2 s tokens", "ingest operator", tmp_path, ids)
    assert (summary["count"], summary["duplicates"]) == (TOTAL, 0)
    _check(handle, tmp_path, ids)
    stats = handle.stats()
    assert stats["token_exchanges"] - exchanges_before >= int(seconds // 2)  # a fresh token every ~1.5 s
    # The refused exchange is armed on a timer; on a fast run no exchange may follow it. When it was served,
    # the run must have ridden it out (more exchange requests than successful exchanges).
    pending = handle.admin.get("/_emulator/faults").json()["faults"]
    exchange_fault_pending = any(f.get("path") == EXCHANGE for f in pending)
    if not exchange_fault_pending:
        assert stats["requests"][f"GET {EXCHANGE}"] > stats["token_exchanges"]  # one exchange was refused
    assert stats["requests"][f"GET {EVENTS}"] >= summary["pages"] + 1 + 3 + 2 + 2 + 1


def test_a_token_the_server_already_expired_is_refreshed_on_401(
    altinn_emulator_factory: Any, tmp_path: Path, caplog: pytest.LogCaptureFixture, fault_results: FaultLedger
) -> None:
    caplog.set_level(logging.INFO, logger="airflow_provider_altinn_events.client")
    handle = altinn_emulator_factory(token_lifetime=2)
    ids = _ids(handle)
    handle.add_fault(path=EVENTS, method="GET", delay_ms=40)
    # The client's clock runs 3 s behind the emulator's: it keeps using tokens the server has expired,
    # gets 401s, and must fetch a new token and send the request again.
    client = AltinnEventsClient(_settings(handle), clock=lambda: time.time() - 3)
    with client:
        result = run_ingest(
            client,
            LocalStorage(tmp_path),
            IngestSpec(RESOURCE, page_size=200, events_per_file=2500),
            "scheduled__401",
            trace=_inject_during_run(handle),
        )
    _record(fault_results, "faults + expired tokens (401)", "ingest pipeline", tmp_path, ids)
    assert (result.count, result.duplicates) == (TOTAL, 0)
    assert client.auth.refresh_count >= 2
    assert any("answered 401" in r.getMessage() for r in caplog.records)
    assert handle.stats()["requests"].get(f"GET {EVENTS}", 0) > result.pages
    _check(handle, tmp_path, ids)

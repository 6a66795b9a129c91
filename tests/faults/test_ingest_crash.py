"""SIGKILL the ingestion at many points while the emulator serves 50,000 events; rerun until done.

Each kill is followed by what Airflow would do next: a retry of the same run (same run id), or, when
the retries are used up, the next scheduled run (a new run id) that finds the dead run's leftovers. At
the end every event id must be in the output exactly once, every run folder must hold exactly the files
its manifest lists, and the cursor must be at the last event.

The design allows no duplicates at all (a killed run's uncommitted files are overwritten by its retry or
removed by the next run), which is stricter than "only the one interrupted page".
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_altinn_events._ingest.layout import resource_dir
from tests.faults.ledger import FaultLedger
from tests.unit.ingest.helpers import all_ids, check_consistent, cursor, run_folders

pytestmark = [pytest.mark.faults, pytest.mark.timeout(180)]

REPO = Path(__file__).resolve().parents[2]
RESOURCE = "urn:altinn:resource:ttd-crash-test"
TOTAL = 50_000
#: (trace point:nth time it is passed, what comes after the kill). "retry": Airflow retries the same run;
#: "next": the run is given up and the next scheduled run (new run id) finds its leftovers.
#: Per run: 5 files of 1,000 events (max_events 5,000), so cursor writes are 1 claim, 5 checkpoints, 1 final.
SCHEDULE = [
    ("start:1", "retry"),
    ("json-written:_cursor.json:1", "retry"),  # the claim is in its temp file, not yet renamed
    ("claimed:1", "retry"),
    ("page:3", "retry"),
    ("page-written:3", "next"),  # in the middle of a data file; the run is given up
    ("tidy-deleted:1", "retry"),  # the next run dies while removing the dead run's uncommitted files
    ("tidy-manifest:1", "retry"),  # ... or right after writing the dead run's manifest
    ("part-committed:1", "retry"),  # a data file is complete and visible; the cursor does not cover it
    ("json-written:_cursor.json:3", "next"),  # a checkpoint in its temp file; given up
    ("json-written:_manifest.json:1", "retry"),  # the dead run's manifest in its temp file
    ("checkpoint:2", "retry"),
    ("part-committed:3", "retry"),  # (a resumed run: its 3rd file is its last) visible, no final cursor
    ("stale-removed:1", "next"),
    ("json-written:_cursor.json:7", "retry"),  # the final cursor in its temp file
    ("final-cursor:1", "retry"),  # committed, but no manifest yet
    ("manifest:1", "next"),
]
TIMED_KILLS = 6


def _child(
    conn: str,
    dest: Path,
    run_id: str,
    kill_at: str | None = None,
    resource: str = RESOURCE,
    kill_when_requests: tuple[str, str, int] | None = None,
) -> subprocess.Popen[str]:
    command = [
        sys.executable,
        "-m",
        "tests.faults._ingest_child",
        "--dest",
        str(dest),
        "--run-id",
        run_id,
        "--resource",
        resource,
        "--page-size",
        "500",
        "--events-per-file",
        "1000",
        "--max-events",
        "5000",
        "--compression",
        "gzip",
    ]
    if kill_at:
        command += ["--kill-at", kill_at]
    if kill_when_requests:
        command += ["--kill-when-requests", *map(str, kill_when_requests)]
    env = {**os.environ, "ALTINN_INGEST_CONN": conn, "PYTHONPATH": str(REPO)}
    return subprocess.Popen(
        command, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def _finish(process: subprocess.Popen[str]) -> tuple[int, dict[str, Any] | None]:
    out, err = process.communicate(timeout=60)
    if process.returncode == 0:
        return 0, json.loads(out.strip().splitlines()[-1])
    assert process.returncode == -signal.SIGKILL, f"child failed ({process.returncode}):\n{err[-3000:]}"
    return process.returncode, None


def test_sigkill_at_many_points_loses_and_duplicates_nothing(
    altinn_emulator: Any, tmp_path: Path, fault_results: FaultLedger
) -> None:
    started = time.monotonic()
    altinn_emulator.generate(RESOURCE, TOTAL, type="no.example.case.changed.v1")
    from types import SimpleNamespace

    from airflow_provider_altinn_events.client import AltinnEventsClient, AltinnSettings

    raw = altinn_emulator.connection_dict()
    conn = SimpleNamespace(
        conn_id="c", host=raw["host"], login=raw["login"], password=raw["password"], extra_dejson=raw["extra"]
    )
    with AltinnEventsClient(AltinnSettings.from_connection(conn)) as client:
        ids = [e.id for e in client.iter_events(resource=RESOURCE, after="0", size=1000)]
    assert len(ids) == len(set(ids)) == TOTAL

    conn_json = json.dumps(raw)
    rng = random.Random(20261126)
    run_number, killed_at, log = 0, [], []

    def next_run_id() -> str:
        return f"scheduled__2026-11-26T{run_number:02d}:00:00+00:00"

    for point, then in SCHEDULE + [(None, rng.choice(["retry", "next"])) for _ in range(TIMED_KILLS)]:
        process = _child(conn_json, tmp_path, next_run_id(), point)
        if point is None:  # kill at a random moment of the run instead of at a named point
            assert process.stdout is not None
            assert process.stdout.readline().strip() == "started"
            time.sleep(rng.uniform(0.0, 0.3))
            process.send_signal(signal.SIGKILL)
        code, result = _finish(process)
        log.append((next_run_id(), point or "timed", code, result and result["count"]))
        if code != 0:
            killed_at.append(point or "timed")
            if then == "retry":
                continue
        run_number += 1  # the run finished, or was given up and the next scheduled run comes

    while True:  # no more kills: run until a run finds nothing new
        code, result = _finish(_child(conn_json, tmp_path, next_run_id()))
        assert code == 0 and result is not None
        log.append((next_run_id(), "-", code, result["count"]))
        run_number += 1
        if result["count"] == 0:
            break

    folder = tmp_path / resource_dir(RESOURCE)
    fault_results.record(
        scenario="SIGKILL at 16 points + 6 random",
        component="ingest pipeline",
        faults_injected=len(killed_at),
        completed=True,
        expected=ids,
        seen=all_ids(folder),
    )
    occurrences = check_consistent(folder)
    duplicates = {event_id: n for event_id, n in occurrences.items() if n > 1}
    missing = set(ids) - set(occurrences)
    assert not missing, f"{len(missing)} events lost; runs: {log}"
    assert not duplicates, f"{len(duplicates)} duplicated; runs: {log}"
    assert set(occurrences) == set(ids)
    assert cursor(folder)["after"] == ids[-1]
    manifests = [json.loads((f / "_manifest.json").read_text()) for f in run_folders(folder)]
    assert sum(m["count"] for m in manifests) == TOTAL
    assert sum(m["duplicates_dropped"] for m in manifests) == 0
    distinct = {p for p in killed_at if p != "timed"}
    assert distinct == {p for p, _ in SCHEDULE}, f"only {sorted(distinct)} killed; runs: {log}"
    assert time.monotonic() - started < 120
    timed = killed_at.count("timed")
    not_reached = [p for p, _ in SCHEDULE if p not in distinct]
    print(f"\nruns (run id, kill point, exit code, events): {log}")
    print(
        f"{len(distinct)} named kill points hit (not reached: {not_reached}), {timed} timed kills, "
        f"{len(log)} child runs, {time.monotonic() - started:.1f} s"
    )


OVERLAP_RESOURCE = "urn:altinn:resource:ttd-crash-overlap"
OVERLAP_TOTAL = 3_000
EVENTS_PATH = "/events/api/v1/events"


def test_sigkill_while_page_n_is_written_and_n_plus_1_is_in_flight(
    altinn_emulator: Any, tmp_path: Path, fault_results: FaultLedger
) -> None:
    """Issue 17: the request for page n + 1 goes out before page n is written. Every request is held 300 ms
    at the emulator, so when the run is killed right after writing page 3 (into a file it has not committed:
    2 pages of 500 per file), the request for page 4 has reached the emulator and waits there. Nothing past
    page 2 is committed; the retry resumes there, and every event ends up written exactly once."""
    altinn_emulator.generate(OVERLAP_RESOURCE, OVERLAP_TOTAL, type="no.example.case.changed.v1")
    raw = altinn_emulator.connection_dict()
    from types import SimpleNamespace

    from airflow_provider_altinn_events.client import AltinnEventsClient, AltinnSettings

    settings = AltinnSettings.from_connection(
        SimpleNamespace(
            conn_id="c",
            host=raw["host"],
            login=raw["login"],
            password=raw["password"],
            extra_dejson=raw["extra"],
        )
    )
    with AltinnEventsClient(settings) as client:
        ids = [e.id for e in client.iter_events(resource=OVERLAP_RESOURCE, after="0", size=1000)]
    conn = json.dumps(raw)
    altinn_emulator.add_fault(path=EVENTS_PATH, method="GET", delay_ms=300)
    try:
        before = altinn_emulator.stats()["requests"].get(f"GET {EVENTS_PATH}", 0)
        key = f"GET {EVENTS_PATH}"
        # the kill waits until the emulator has page 4's request: sent ahead while page 3 was written, it is
        # held there 300 ms, so it is in flight at the kill (without the wait a loaded machine could kill the
        # child before its request thread sent it, and the test would not test the overlap)
        process = _child(
            conn,
            tmp_path,
            "scheduled__overlap",
            "page-written:3",
            resource=OVERLAP_RESOURCE,
            kill_when_requests=(f"{altinn_emulator.base_url}/_emulator/stats", key, before + 4),
        )
        code, _ = _finish(process)
        requests = altinn_emulator.stats()["requests"].get(f"GET {EVENTS_PATH}", 0) - before
    finally:
        altinn_emulator.clear_faults()
    assert code == -signal.SIGKILL
    assert (
        requests >= 4
    )  # pages 1-3, and page 4 (in flight when the process died, unless a slow wait let it land)
    folder = tmp_path / resource_dir(OVERLAP_RESOURCE)
    assert cursor(folder)["after"] == ids[999]  # the first file (pages 1-2): nothing past page n - 1
    run_ids = iter(["scheduled__overlap", *(f"scheduled__next-{n}" for n in range(10))])
    while True:  # Airflow's retry of the same run, then scheduled runs until one finds nothing new
        code, result = _finish(_child(conn, tmp_path, next(run_ids), resource=OVERLAP_RESOURCE))
        assert code == 0 and result is not None
        if result["count"] == 0:
            break
    fault_results.record(
        scenario="SIGKILL with page n+1 in flight",
        component="ingest pipeline",
        faults_injected=1,
        completed=True,
        expected=ids,
        seen=all_ids(folder),
    )
    assert check_consistent(folder) == dict.fromkeys(ids, 1)
    assert cursor(folder)["after"] == ids[-1]

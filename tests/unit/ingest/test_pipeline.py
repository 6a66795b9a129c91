from __future__ import annotations

import json
import logging
import tempfile
import threading
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from airflow_provider_altinn_events._ingest import (
    Filters,
    IngestCancelledError,
    IngestConflictError,
    IngestMode,
    IngestSpec,
    IngestStateError,
    LocalStorage,
    PathStorage,
    run_ingest,
)
from airflow_provider_altinn_events._ingest.layout import resource_dir, run_dir

from .fakes import RESOURCE, FakeAltinn, make_events, object_store_root
from .helpers import check_consistent, cursor, manifest, read_lines, run_folders

RES = resource_dir(RESOURCE)


class Crash(BaseException):
    """Stands in for SIGKILL at a trace point (the real kill is in tests/faults)."""


def _spec(**kw: Any) -> IngestSpec:
    kw.setdefault("page_size", 10)
    kw.setdefault("events_per_file", 25)
    return IngestSpec(RESOURCE, **kw)


def _run(source: FakeAltinn, dest: Path, run_id: str, **kw: Any) -> Any:
    trace = kw.pop("trace", None)
    return run_ingest(source, LocalStorage(dest), _spec(**kw), run_id, trace=trace)


def _crash_at(point: str, nth: int = 1) -> Any:
    seen = {"n": 0}

    def trace(name: str) -> None:
        if name == point:
            seen["n"] += 1
            if seen["n"] == nth:
                raise Crash(point)

    return trace


def test_first_run_writes_files_manifest_and_cursor(tmp_path: Path) -> None:
    source = FakeAltinn(make_events(60))
    result = _run(source, tmp_path, "scheduled__2026-01-01T00:00:00+00:00")
    folder = tmp_path / RES / run_dir("scheduled__2026-01-01T00:00:00+00:00")
    assert result.mode is IngestMode.NEW and result.count == 60 and result.after == "e0000059"
    assert [Path(f).name for f in result.files] == [
        "part-00000.ndjson",
        "part-00001.ndjson",
        "part-00002.ndjson",
    ]
    assert result.files[0] == (folder / "part-00000.ndjson").as_uri()
    assert [len(read_lines(folder / Path(f).name)) for f in result.files] == [25, 25, 10]
    assert read_lines(folder / "part-00000.ndjson")[0] == make_events(1)[0]
    m = manifest(folder)
    assert (m["start_after"], m["end_after"], m["count"], m["state"]) == ("0", "e0000059", 60, "complete")
    assert (m["first_event_time"], m["last_event_time"]) == (
        make_events(1)[0]["time"],
        make_events(60)[59]["time"],
    )
    c = cursor(tmp_path / RES)
    assert (
        c["after"] == "e0000059" and c["run"]["run_id"] == result.run_id and c["run"]["state"] == "complete"
    )
    assert check_consistent(tmp_path / RES) == {e["id"]: 1 for e in make_events(60)}
    summary = result.to_dict()
    assert json.loads(json.dumps(summary)) == summary and len(json.dumps(summary)) < 2000


def test_incremental_runs_continue_from_the_cursor(tmp_path: Path) -> None:
    source = FakeAltinn(make_events(30))
    _run(source, tmp_path, "r1")
    source.add(make_events(12, start=30))
    second = _run(source, tmp_path, "r2")
    assert (second.start_after, second.after, second.count) == ("e0000029", "e0000041", 12)
    third = _run(source, tmp_path, "r3")
    assert (third.count, third.after, third.files) == (0, "e0000041", ())
    assert manifest(tmp_path / RES / "run=r3")["count"] == 0
    assert check_consistent(tmp_path / RES) == {e["id"]: 1 for e in make_events(42)}


def test_start_after_only_applies_without_a_cursor(tmp_path: Path) -> None:
    source = FakeAltinn(make_events(30))
    assert _run(source, tmp_path, "r1", start_after="e0000019").count == 10
    source.add(make_events(5, start=30))
    assert _run(source, tmp_path, "r2", start_after="e0000019").count == 5


def test_max_events_bounds_each_run(tmp_path: Path) -> None:
    source = FakeAltinn(make_events(47))
    counts = [_run(source, tmp_path, f"r{i}", max_events=20).count for i in range(4)]
    assert counts == [20, 20, 7, 0]
    assert max(c["size"] for c in source.calls) == 10
    assert check_consistent(tmp_path / RES) == {e["id"]: 1 for e in make_events(47)}


def test_rerun_of_an_old_run_rewrites_the_same_files_and_leaves_the_cursor(tmp_path: Path) -> None:
    source = FakeAltinn(make_events(40))
    _run(source, tmp_path, "r1", compression="gzip")
    before = {p.name: p.read_bytes() for p in (tmp_path / RES / "run=r1").glob("part-*")}
    source.add(make_events(10, start=40))
    _run(source, tmp_path, "r2")
    source.add(make_events(10, start=50))
    cursor_before = cursor(tmp_path / RES)
    rerun = _run(source, tmp_path, "r1", compression=None, max_events=5)  # settings come from the manifest
    assert rerun.mode is IngestMode.RERUN and not rerun.cursor_moved
    assert (rerun.start_after, rerun.after, rerun.count) == ("0", "e0000039", 40)
    assert {p.name: p.read_bytes() for p in (tmp_path / RES / "run=r1").glob("part-*")} == before
    assert cursor(tmp_path / RES) == cursor_before
    assert check_consistent(tmp_path / RES) == {e["id"]: 1 for e in make_events(50)}
    assert _run(source, tmp_path, "r3").start_after == "e0000049"


def test_rerun_of_the_latest_run_is_idempotent(tmp_path: Path) -> None:
    source = FakeAltinn(make_events(30))
    first = _run(source, tmp_path, "r1")
    source.add(make_events(5, start=30))
    again = _run(source, tmp_path, "r1")
    assert again.mode is IngestMode.RERUN and (again.count, again.after) == (first.count, first.after)
    assert cursor(tmp_path / RES)["after"] == "e0000029"
    assert _run(source, tmp_path, "r2").count == 5


def test_duplicates_are_dropped(tmp_path: Path) -> None:
    # the same (id, source) served twice (at least once delivery) is written once
    events = make_events(30)
    events = events[:20] + [dict(events[3]), dict(events[19])] + events[20:]
    source = FakeAltinn(events)
    result = _run(source, tmp_path, "r1")
    assert result.count == 30
    assert check_consistent(tmp_path / RES) == {e["id"]: 1 for e in make_events(30)}


def _pairs_written(resource_folder: Path) -> list[tuple[str, str]]:
    return [
        (e["id"], e["source"])
        for folder in run_folders(resource_folder)
        for part in sorted(folder.glob("part-*.ndjson*"))
        for e in read_lines(part)
    ]


def test_events_that_share_an_id_are_all_written_once_over_runs(tmp_path: Path) -> None:
    # Altinn keys events by (id, source): another source may publish an id again, and after=<id> resumes
    # after the *first* event with it. Before: the second event was booked as a duplicate (dropped), and a
    # page ending on it made every run fail ("paging by it would loop forever").
    events = make_events(24)
    for n in (9, 19, 23):  # the last event of pages 1 and 2, and the very last event, reuse earlier ids
        events[n]["id"] = events[n - 5]["id"]
    source = FakeAltinn(events)
    first = _run(source, tmp_path, "r1")
    assert first.count == 24
    assert first.after == events[22]["id"]  # not the shared id of the last event
    assert cursor(tmp_path / RES)["run"]["end_context"]["held"] == [[events[23]["id"], events[23]["source"]]]
    calls = len(source.calls)
    again = _run(source, tmp_path, "r2")  # nothing new: the held event is served again and dropped
    assert again.count == 0 and len(source.calls) - calls == 1
    source.add(make_events(3, start=24))
    third = _run(source, tmp_path, "r3")
    assert third.count == 3 and third.after == "e0000026"
    written = _pairs_written(tmp_path / RES)
    assert sorted(written) == sorted((e["id"], e["source"]) for e in source.events)
    assert len(written) == len(set(written)) == 27
    check_consistent(tmp_path / RES)


def test_a_rerun_with_shared_ids_rewrites_the_same_files(tmp_path: Path) -> None:
    events = make_events(30)
    for n in (9, 24, 29):
        events[n]["id"] = events[n - 3]["id"]
    source = FakeAltinn(events)
    _run(source, tmp_path, "r1", max_events=25)
    before = {p.name: p.read_bytes() for p in (tmp_path / RES / "run=r1").glob("part-*")}
    _run(source, tmp_path, "r2")
    rerun = _run(source, tmp_path, "r1", max_events=25)
    assert rerun.mode is IngestMode.RERUN and rerun.count == 25
    assert {p.name: p.read_bytes() for p in (tmp_path / RES / "run=r1").glob("part-*")} == before
    written = _pairs_written(tmp_path / RES)
    assert len(written) == len(set(written)) == 30


def test_empty_resource(tmp_path: Path) -> None:
    result = _run(FakeAltinn(), tmp_path, "r1")
    assert (result.count, result.after, result.files) == (0, "0", ())
    assert manifest(tmp_path / RES / "run=r1")["files"] == []
    assert cursor(tmp_path / RES)["after"] == "0"


def test_gzip(tmp_path: Path) -> None:
    result = _run(FakeAltinn(make_events(30)), tmp_path, "r1", compression="gzip")
    assert [Path(f).name for f in result.files] == ["part-00000.ndjson.gz", "part-00001.ndjson.gz"]
    assert check_consistent(tmp_path / RES) == {e["id"]: 1 for e in make_events(30)}


def test_filters_are_part_of_the_cursor(tmp_path: Path) -> None:
    source = FakeAltinn(make_events(10))
    _run(source, tmp_path, "r1", filters=Filters(types=("test.created",)))
    with pytest.raises(IngestStateError, match="filters"):
        _run(source, tmp_path, "r2", filters=Filters(types=("other",)))


def test_a_hand_edited_cursor_is_honoured(tmp_path: Path) -> None:
    source = FakeAltinn(make_events(30))
    _run(source, tmp_path, "r1")
    path = tmp_path / RES / "_cursor.json"
    data = json.loads(path.read_text())
    data["after"] = "e0000024"
    path.write_text(json.dumps(data))
    assert _run(source, tmp_path, "r2").count == 5


CRASH_POINTS = [
    ("start", 1),
    ("claimed", 1),
    ("json-written:_cursor.json", 1),
    ("page", 2),
    ("page-written", 3),
    ("part-committed", 1),
    ("json-written:_cursor.json", 2),
    ("checkpoint", 1),
    ("part-committed", 2),
    ("stale-removed", 1),
    ("json-written:_cursor.json", 4),
    ("final-cursor", 1),
    ("manifest", 1),
]


@pytest.mark.parametrize(("point", "nth"), CRASH_POINTS)
@pytest.mark.parametrize("then", ["retry", "next-run"])
def test_a_crash_anywhere_loses_nothing_and_duplicates_nothing(
    tmp_path: Path, point: str, nth: int, then: str
) -> None:
    source = FakeAltinn(make_events(70))
    _run(source, tmp_path, "r0", max_events=8)
    with pytest.raises(Crash):
        _run(source, tmp_path, "r1", max_events=50, trace=_crash_at(point, nth))
    if then == "retry":
        result = _run(source, tmp_path, "r1", max_events=50)
        assert result.mode in (IngestMode.RESUME, IngestMode.RERUN, IngestMode.NEW)
    runs = 2
    while _run(source, tmp_path, f"n{runs}", max_events=50).count:
        runs += 1
    assert check_consistent(tmp_path / RES) == {e["id"]: 1 for e in make_events(70)}
    assert cursor(tmp_path / RES)["after"] == "e0000069"


def test_resume_continues_the_same_files(tmp_path: Path) -> None:
    source = FakeAltinn(make_events(60))
    with pytest.raises(Crash):
        _run(source, tmp_path, "r1", trace=_crash_at("checkpoint", 2))
    assert cursor(tmp_path / RES)["after"] == "e0000049"
    result = _run(source, tmp_path, "r1")
    assert result.mode is IngestMode.RESUME and result.count == 60 and len(result.files) == 3
    assert source.calls[-2]["after"] == "e0000049"
    baseline = tmp_path / "baseline"
    _run(FakeAltinn(make_events(60)), baseline, "r1")
    for part in (baseline / RES / "run=r1").glob("part-*"):
        assert (tmp_path / RES / "run=r1" / part.name).read_bytes() == part.read_bytes()


def test_an_abandoned_run_is_tidied_up_by_the_next(tmp_path: Path) -> None:
    source = FakeAltinn(make_events(60))
    with pytest.raises(Crash):
        _run(source, tmp_path, "r1", trace=_crash_at("page-written", 4))  # part 0 committed, part 1 half
    _run(source, tmp_path, "r2")
    m = manifest(tmp_path / RES / "run=r1")
    assert (m["state"], m["count"], m["end_after"]) == ("interrupted", 25, "e0000024")
    assert manifest(tmp_path / RES / "run=r2")["start_after"] == "e0000024"
    assert check_consistent(tmp_path / RES) == {e["id"]: 1 for e in make_events(60)}
    rerun = _run(source, tmp_path, "r1")  # a rerun of the interrupted run re-reads what it committed
    assert (rerun.mode, rerun.count) == (IngestMode.RERUN, 25)
    assert check_consistent(tmp_path / RES) == {e["id"]: 1 for e in make_events(60)}


def test_a_second_writer_is_detected(tmp_path: Path) -> None:
    source = FakeAltinn(make_events(60))
    storage = LocalStorage(tmp_path)

    def other_writer(point: str) -> None:
        if point == "page" and not getattr(other_writer, "done", False):
            other_writer.done = True  # type: ignore[attr-defined]
            run_ingest(FakeAltinn(make_events(60)), LocalStorage(tmp_path), _spec(), "intruder")

    with pytest.raises(IngestConflictError, match="another ingestion"):
        run_ingest(source, storage, _spec(), "r1", trace=other_writer)
    assert cursor(tmp_path / RES)["run"]["run_id"] == "intruder"


def test_cancel_stops_without_committing_more(tmp_path: Path) -> None:
    cancel = threading.Event()

    def trace(point: str) -> None:
        if point == "checkpoint":
            cancel.set()

    with pytest.raises(IngestCancelledError):
        run_ingest(
            FakeAltinn(make_events(100)), LocalStorage(tmp_path), _spec(), "r1", trace=trace, cancel=cancel
        )
    assert cursor(tmp_path / RES)["after"] == "e0000024"
    assert not [p for p in (tmp_path / RES / "run=r1").iterdir() if p.name.startswith(".")]


def test_progress_is_logged(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="airflow_provider_altinn_events")
    run_ingest(FakeAltinn(make_events(30)), LocalStorage(tmp_path), _spec(), "r1", progress_seconds=0)
    messages = [r.getMessage() for r in caplog.records]
    assert messages[0].startswith(f"Ingesting {RESOURCE} into ") and "new run r1 from after=0" in messages[0]
    assert sum("events/s" in m for m in messages) >= 3
    assert messages[-1].startswith(f"Ingested {RESOURCE}: 30 events in 2 files")


def test_object_store_destination(tmp_path: Path) -> None:
    root = object_store_root(tmp_path.name)
    source = FakeAltinn(make_events(30))
    result = run_ingest(source, PathStorage(root), _spec(compression="gzip"), "r1")
    assert result.files[0] == f"{root}/{RES}/run=r1/part-00000.ndjson.gz"
    source.add(make_events(5, start=30))
    assert run_ingest(source, PathStorage(root), _spec(), "r2").count == 5
    assert json.loads((root / RES / "_cursor.json").read_bytes())["after"] == "e0000034"
    assert len(run_folders_of(root)) == 2


def run_folders_of(root: Any) -> list[str]:
    keys = root.fs.find(root.path)
    return sorted({k.split("/")[-2] for k in keys if "/run=" in k})


def test_helpers_see_every_run(tmp_path: Path) -> None:
    source = FakeAltinn(make_events(5))
    _run(source, tmp_path, "a")
    assert [p.name for p in run_folders(tmp_path / RES)] == ["run=a"]


@settings(max_examples=150, deadline=None)
@given(
    data=st.data(),
    page_size=st.integers(1, 4),
    events_per_file=st.integers(1, 5),
)
def test_shared_ids_every_event_written_once_whatever_the_pages_and_runs(
    data: st.DataObject, page_size: int, events_per_file: int
) -> None:
    # random logs where ids repeat across sources, read by several runs (each bounded by max_events) while
    # events keep arriving: every (id, source) is written exactly once, and a run that finds nothing ends
    ids = st.sampled_from(["a", "b", "c", "d"])
    sources = st.sampled_from(["https://s/1", "https://s/2", "https://s/3"])
    taken: set[tuple[str, str]] = set()
    source = FakeAltinn()
    with tempfile.TemporaryDirectory() as tmp:
        dest = Path(tmp)
        for run in range(data.draw(st.integers(1, 5))):
            batch = []
            for event_id, src in data.draw(st.lists(st.tuples(ids, sources), max_size=6)):
                if (event_id, src) not in taken:
                    taken.add((event_id, src))
                    event = make_events(1, start=len(source.events) + len(batch))[0]
                    batch.append({**event, "id": event_id, "source": src})
            source.add(batch)
            limit = data.draw(st.none() | st.integers(1, 6))
            while True:
                calls = len(source.calls)
                result = _run(
                    source,
                    dest,
                    f"r{run}-{calls}",
                    page_size=page_size,
                    events_per_file=events_per_file,
                    max_events=limit,
                )
                assert len(source.calls) - calls <= 2 * len(source.events) + 2  # no spinning
                if not result.count:
                    break
        written = _pairs_written(dest / RES)
        assert sorted(written) == sorted(taken)
        assert len(written) == len(set(written))
        check_consistent(dest / RES)

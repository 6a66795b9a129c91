from __future__ import annotations

import pytest

from airflow_provider_altinn_events._ingest.errors import IngestStateError
from airflow_provider_altinn_events._ingest.state import (
    CursorContext,
    CursorFile,
    Filters,
    PartFile,
    RunRecord,
    RunState,
)


def _record(**changes: object) -> RunRecord:
    base = RunRecord(
        run_id="r1",
        state=RunState.RUNNING,
        start_after="0",
        end_after="e9",
        count=9,
        duplicates=1,
        fetched=10,
        pages=2,
        files=(PartFile("part-00000.ndjson", 9, 1234),),
        first_event_time="t0",
        last_event_time="t9",
        compression="gzip",
        events_per_file=100,
        max_events=50,
    )
    return base.touched(**changes)


def test_cursor_round_trip() -> None:
    cursor = CursorFile("urn:altinn:resource:x", Filters(("a", "b"), "/party/1"), "e9", _record(), "rev")
    assert CursorFile.from_dict(cursor.to_dict(), "c") == cursor


def test_manifest_round_trip_and_names() -> None:
    record = _record(state=RunState.COMPLETE)
    manifest = record.manifest("urn:altinn:resource:x", Filters())
    assert manifest["duplicates_dropped"] == 1 and manifest["finished_at"] == record.updated_at
    assert manifest["start_after"] == "0" and manifest["end_after"] == "e9" and manifest["count"] == 9
    assert manifest["files"] == [{"name": "part-00000.ndjson", "events": 9, "bytes": 1234}]
    assert RunRecord.from_manifest(manifest, "m") == (record, Filters())


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda d: d.update(version=2), "format version"),
        (lambda d: d.update(after=""), "'after'"),
        (lambda d: d["run"].update(state="weird"), "run state"),
        (lambda d: d["run"].update(count=-1), "'count'"),
        (lambda d: d["run"].update(count=True), "'count'"),
        (lambda d: d["run"].update(files={}), "'files'"),
        (lambda d: d["run"].update(compression="zstd"), "compression"),
        (lambda d: d["filters"].update(types="a"), "'types'"),
        (lambda d: d.update(run=[]), "JSON object"),
    ],
)
def test_malformed_cursor_is_refused_with_the_file_named(mutate: object, message: str) -> None:
    data = CursorFile("urn:altinn:resource:x", Filters(), "e9", _record(), "rev").to_dict()
    mutate(data)  # type: ignore[operator]
    with pytest.raises(IngestStateError, match=message) as info:
        CursorFile.from_dict(data, "s3://b/x/_cursor.json")
    assert "s3://b/x/_cursor.json" in str(info.value)


def test_type_order_and_repeats_do_not_make_another_query() -> None:
    assert Filters(("b", "a", "b")) == Filters(("a", "b"))
    assert Filters(("b", "a")).to_dict()["types"] == ["a", "b"]


def test_cursor_context_round_trips_and_is_omitted_when_empty() -> None:
    context = CursorContext(source="https://src/1", held=(("x", "https://src/2"),), recent=(("w", "s"),))
    record = RunRecord(
        run_id="r", state=RunState.RUNNING, start_after="a", end_after="b", end_context=context
    )
    data = record.to_dict()
    assert data["end_context"] == {
        "source": "https://src/1",
        "held": [["x", "https://src/2"]],
        "recent": [["w", "s"]],
    }
    assert "start_context" not in data
    assert RunRecord.from_dict(data, "w") == record
    with pytest.raises(IngestStateError, match="held"):
        RunRecord.from_dict({**data, "end_context": {"held": [["x"]]}}, "w")

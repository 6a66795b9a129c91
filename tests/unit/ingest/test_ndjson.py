from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from airflow_provider_altinn_events._ingest.ndjson import NdjsonPart, encode_events
from airflow_provider_altinn_events._ingest.storage import LocalStorage
from airflow_provider_altinn_events.client.models import CloudEvent

from .fakes import make_events


def test_one_compact_line_per_event_exactly_as_sent() -> None:
    raw = make_events(3)
    raw[1]["data"] = {"float": 1.5, "nested": [1, None, True], "unicode": "æøå \u2603"}
    data = encode_events([CloudEvent.from_dict(e) for e in raw])
    lines = data.split(b"\n")
    assert lines[-1] == b"" and len(lines) == 4
    assert [json.loads(line) for line in lines[:-1]] == raw
    assert [list(json.loads(line)) for line in lines[:-1]] == [list(e) for e in raw]  # key order kept
    assert "æøå".encode() in data  # UTF-8, not \\u escapes
    assert encode_events([]) == b""


@pytest.mark.parametrize("compression", [None, "gzip"])
def test_part_file_round_trip_and_size(tmp_path: Path, compression: str | None) -> None:
    storage = LocalStorage(tmp_path)
    events = [CloudEvent.from_dict(e) for e in make_events(50)]
    part = NdjsonPart(storage, "r/part-00000.ndjson", compression)
    part.write(encode_events(events[:20]), 20)
    part.write(encode_events(events[20:]), 30)
    info = part.commit()
    raw = (tmp_path / "r" / "part-00000.ndjson").read_bytes()
    assert info.events == 50 and info.bytes == len(raw)
    text = gzip.decompress(raw) if compression else raw
    assert [json.loads(line)["id"] for line in text.splitlines()] == [e.id for e in events]


def test_gzip_output_is_reproducible(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path)
    data = encode_events(make_events(100))
    for name in ("a", "b"):
        part = NdjsonPart(storage, name, "gzip")
        part.write(data, 100)
        part.commit()
    assert (tmp_path / "a").read_bytes() == (tmp_path / "b").read_bytes()


def test_abort_leaves_nothing(tmp_path: Path) -> None:
    part = NdjsonPart(LocalStorage(tmp_path), "r/p.ndjson", None)
    part.write(b"{}\n", 1)
    part.abort()
    assert list((tmp_path / "r").iterdir()) == []


def test_unknown_compression(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="compression"):
        NdjsonPart(LocalStorage(tmp_path), "p", "zstd")

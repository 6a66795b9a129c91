"""Read back what ingestion wrote, for assertions (shared by unit, integration and fault tests)."""

from __future__ import annotations

import gzip
import json
from collections import Counter
from pathlib import Path
from typing import Any


def read_lines(path: Path) -> list[dict[str, Any]]:
    raw = path.read_bytes()
    if path.name.endswith(".gz"):
        raw = gzip.decompress(raw)
    return [json.loads(line) for line in raw.splitlines()]


def run_folders(resource_folder: Path) -> list[Path]:
    return sorted(p for p in resource_folder.iterdir() if p.is_dir() and p.name.startswith("run="))


def all_ids(resource_folder: Path) -> list[str]:
    """Every event id in every data file of every run, in file order."""
    ids: list[str] = []
    for folder in run_folders(resource_folder):
        for part in sorted(folder.glob("part-*.ndjson*")):
            ids += [event["id"] for event in read_lines(part)]
    return ids


def manifest(run_folder: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((run_folder / "_manifest.json").read_text())
    return data


def cursor(resource_folder: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((resource_folder / "_cursor.json").read_text())
    return data


def check_consistent(resource_folder: Path) -> Counter[str]:
    """Every run folder holds exactly the files its manifest lists, with the counts it says, and nothing
    half-written; returns how often each id occurs over all runs."""
    leftovers = [p.name for p in resource_folder.iterdir() if p.is_file() and p.name != "_cursor.json"]
    assert not leftovers, f"unexpected files in {resource_folder}: {leftovers}"
    for folder in run_folders(resource_folder):
        names = sorted(p.name for p in folder.iterdir())
        assert not [n for n in names if n.startswith(".")], f"temporary files left in {folder}: {names}"
        m = manifest(folder)
        assert names == sorted([f["name"] for f in m["files"]] + ["_manifest.json"]), (folder, names, m)
        for entry in m["files"]:
            part = folder / entry["name"]
            assert len(read_lines(part)) == entry["events"] and part.stat().st_size == entry["bytes"]
        assert sum(f["events"] for f in m["files"]) == m["count"]
        assert m["fetched"] == m["count"] + m["duplicates_dropped"]
    return Counter(all_ids(resource_folder))

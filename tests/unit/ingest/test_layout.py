from __future__ import annotations

import pytest

from airflow_provider_altinn_events._ingest.layout import (
    is_part_name,
    is_temp_name,
    part_name,
    resource_dir,
    run_dir,
    safe_segment,
)


@pytest.mark.parametrize("value", ["abc", "ttd-altinn_events.v2", "A1"])
def test_safe_values_are_kept(value: str) -> None:
    assert safe_segment(value) == value


def test_unsafe_values_get_a_hash_so_they_never_collide() -> None:
    a = safe_segment("scheduled__2026-11-26T00:00:00+00:00")
    b = safe_segment("scheduled__2026-11-26T00_00_00_00_00")
    assert a.startswith("scheduled__2026-11-26T00_00_00_00_00~")
    assert a != b
    assert safe_segment("a:b") != safe_segment("a+b")
    assert all(c.isalnum() or c in "._-~" for c in a)


@pytest.mark.parametrize("value", ["", ":::", "_hidden", ".dot", "../../etc"])
def test_never_empty_hidden_or_climbing(value: str) -> None:
    segment = safe_segment(value)
    assert segment and segment[0] not in "._" and "/" not in segment and segment != ".."


def test_resource_and_run_folders() -> None:
    assert resource_dir("urn:altinn:resource:ttd-foo") == "ttd-foo"
    assert resource_dir("urn:altinn:resource:app_ttd_apps-test") == "app_ttd_apps-test"
    assert run_dir("manual__x") == "run=manual__x"


def test_part_names() -> None:
    assert part_name(0, None) == "part-00000.ndjson"
    assert part_name(12, "gzip") == "part-00012.ndjson.gz"
    assert is_part_name("part-00000.ndjson") and is_part_name("part-123456.ndjson.gz")
    assert not is_part_name("_manifest.json") and not is_part_name(".part-00000.ndjson.tmp-1-ab")
    assert is_temp_name(".part-00000.ndjson.tmp-1-ab") and not is_temp_name("part-00000.ndjson")

from __future__ import annotations

import pytest

from airflow_provider_altinn_events._ingest.dedupe import RecentIds


def test_drops_repeats_within_the_window() -> None:
    seen = RecentIds(3)
    assert [seen.add(i) for i in ["a", "b", "a", "c", "b"]] == [True, True, False, True, False]
    assert len(seen) == 3


def test_forgets_the_oldest_beyond_capacity() -> None:
    seen = RecentIds(2)
    for i in ["a", "b", "c"]:
        seen.add(i)
    assert "a" not in seen and "b" in seen and "c" in seen
    assert seen.add("a") is True


def test_zero_capacity_keeps_everything() -> None:
    seen = RecentIds(0)
    assert seen.add("a") and seen.add("a") and len(seen) == 0


def test_negative_capacity_is_refused() -> None:
    with pytest.raises(ValueError):
        RecentIds(-1)


def test_add_many_fast_path_and_positions() -> None:
    seen = RecentIds(5)
    assert seen.add_many(["a", "b", "c"]) is None
    assert seen.add_many(["d", "a", "e", "e"]) == [0, 2]
    assert len(seen) == 5 and "a" in seen
    assert seen.add_many(["f", "g", "h", "i", "j", "k"]) is None  # more than the window at once
    assert len(seen) == 5 and "f" not in seen and "k" in seen


def test_add_many_when_turned_off() -> None:
    assert RecentIds(0).add_many(["a", "a"]) is None

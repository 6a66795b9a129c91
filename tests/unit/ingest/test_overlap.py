"""The request for page n + 1 is in flight while page n is written (issue 17): what happens when something
fails in that window. Each case checks the cursor rules (never past a page that is not committed), that
nothing is left running (no fetch thread, no request still going), that no error escapes a thread
(``threading.excepthook``), and that the next run completes with every event written once.

Pages of 10 events and files of 10 events: every page is one file, so the cursor is committed after each page
and "page n written" means "the cursor is at page n's last event".
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_altinn_events._ingest import IngestSpec, LocalStorage, run_ingest
from airflow_provider_altinn_events._ingest.fetch import FETCH_THREAD_NAME
from airflow_provider_altinn_events._ingest.layout import resource_dir
from airflow_provider_altinn_events._ingest.storage import AtomicFile
from airflow_provider_altinn_events.exceptions import AltinnServerError

from .fakes import RESOURCE, FakeAltinn, make_events
from .helpers import check_consistent, cursor

RES = resource_dir(RESOURCE)
TOTAL = 60
#: the last id of page n (1-based)
LAST = {n: f"e{10 * n - 1:07d}" for n in range(1, 7)}


class Crash(BaseException):
    """Stands in for SIGKILL (the real kill: tests/faults/test_ingest_crash.py)."""


@pytest.fixture
def thread_errors(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[BaseException]]:
    """Errors that escaped a thread (what would print as an unhandled-exception warning)."""
    errors: list[BaseException] = []
    monkeypatch.setattr(threading, "excepthook", lambda args: errors.append(args.exc_value))
    yield errors


def _spec() -> IngestSpec:
    return IngestSpec(RESOURCE, page_size=10, events_per_file=10)


def _fetch_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == FETCH_THREAD_NAME]


def _hold_request_after(source: FakeAltinn, after: str, release: threading.Event) -> threading.Event:
    """Hold the request for the page after ``after`` until ``release`` is set; returns an event that is set
    once that request has reached the service (is in flight)."""
    arrived = threading.Event()

    def hold(call: dict[str, Any]) -> None:
        if call["after"] == after:
            arrived.set()
            release.wait(10)

    source.before_call = hold
    return arrived


def _finish(source: FakeAltinn, dest: Path) -> None:
    """What the next attempt does: every event ends up written exactly once, the cursor at the end."""
    source.before_call = None
    run_ingest(source, LocalStorage(dest), _spec(), "next")
    assert check_consistent(dest / RES) == {e["id"]: 1 for e in make_events(TOTAL)}
    assert cursor(dest / RES)["after"] == LAST[6]


class _FailingFile(AtomicFile):
    def __init__(self, inner: AtomicFile, fail: Any) -> None:
        self.inner, self.fail = inner, fail

    def write(self, data: bytes) -> int:
        self.fail()
        return self.inner.write(data)

    def commit(self) -> None:
        self.inner.commit()

    def abort(self) -> None:
        self.inner.abort()


class _FailingStorage(LocalStorage):
    """Local storage whose data file ``part`` fails on its first write, by calling ``fail``."""

    def __init__(self, root: Path, part: str, fail: Any) -> None:
        super().__init__(root)
        self.part, self.fail = part, fail

    def open_atomic(self, key: str) -> AtomicFile:
        handle = super().open_atomic(key)
        return _FailingFile(handle, self.fail) if key.endswith(f"/{self.part}") else handle


def test_a_write_error_on_page_n_while_n_plus_1_is_in_flight(
    tmp_path: Path, thread_errors: list[BaseException]
) -> None:
    source = FakeAltinn(make_events(TOTAL))
    release = threading.Event()
    in_flight = _hold_request_after(source, LAST[3], release)  # page 4 is held at the service

    def disk_full() -> None:
        assert in_flight.wait(5), "the request for page 4 was not in flight while page 3 was written"
        release.set()  # the service answers while the error unwinds: close() waits for that answer
        raise OSError(28, "No space left on device")

    storage = _FailingStorage(tmp_path, "part-00002.ndjson", disk_full)  # page 3's file
    with pytest.raises(OSError, match="No space left"):
        run_ingest(source, storage, _spec(), "r1")
    assert cursor(tmp_path / RES)["after"] == LAST[2]  # page n - 1: nothing past it
    assert not _fetch_threads() and not thread_errors
    # requests: pages 1-4, and at most the guess for page 5 the thread may have sent before it saw the stop
    assert [c["after"] for c in source.calls][:4] == ["0", LAST[1], LAST[2], LAST[3]]
    assert len(source.calls) <= 5
    _finish(source, tmp_path)


def test_a_fetch_error_on_page_n_plus_1_after_page_n_is_written(
    tmp_path: Path, thread_errors: list[BaseException]
) -> None:
    source = FakeAltinn(make_events(TOTAL))
    points: list[str] = []

    def refuse(call: dict[str, Any]) -> None:
        if call["after"] == LAST[3]:  # page 4: the answer after the client's retries
            raise AltinnServerError("unavailable", status_code=503, method="GET", url="http://altinn/events")

    source.before_call = refuse
    with pytest.raises(AltinnServerError):
        run_ingest(source, LocalStorage(tmp_path), _spec(), "r1", trace=points.append)
    # page 3 was fetched, written and committed before page 4's error was raised, though page 4 failed first
    assert points.count("checkpoint") == 3 and points[-1] == "page-written"
    assert cursor(tmp_path / RES)["after"] == LAST[3]
    assert not _fetch_threads() and not thread_errors
    _finish(source, tmp_path)


def test_a_crash_while_page_n_is_written_and_n_plus_1_is_in_flight(
    tmp_path: Path, thread_errors: list[BaseException]
) -> None:
    source = FakeAltinn(make_events(TOTAL))
    release = threading.Event()
    in_flight = _hold_request_after(source, LAST[3], release)

    def crash(point: str) -> None:
        if point == "page" and len(source.calls) >= 4:  # page 3 handed over: about to be written
            assert in_flight.wait(5)
            release.set()
            raise Crash(point)

    with pytest.raises(Crash):
        run_ingest(source, LocalStorage(tmp_path), _spec(), "r1", trace=crash)
    assert cursor(tmp_path / RES)["after"] == LAST[2]
    assert not _fetch_threads() and not thread_errors
    retry = run_ingest(source, LocalStorage(tmp_path), _spec(), "r1")  # Airflow's retry of the same run
    assert retry.start_after == "0" and retry.count == TOTAL
    _finish(source, tmp_path)


@pytest.mark.parametrize("overlap", [True, False])
def test_overlap_and_sequential_write_the_same_bytes(tmp_path: Path, overlap: bool) -> None:
    events = make_events(95)
    events[49]["id"] = events[40]["id"]  # a shared id at a page end: the guessed request is dropped
    result = run_ingest(FakeAltinn(events), LocalStorage(tmp_path / "a"), _spec(), "r1", overlap=overlap)
    baseline = run_ingest(FakeAltinn(events), LocalStorage(tmp_path / "b"), _spec(), "r1", overlap=False)
    assert (result.count, result.after, result.pages) == (baseline.count, baseline.after, baseline.pages)
    for part in (tmp_path / "b" / RES / "run=r1").glob("part-*"):
        assert (tmp_path / "a" / RES / "run=r1" / part.name).read_bytes() == part.read_bytes()
    assert not _fetch_threads()

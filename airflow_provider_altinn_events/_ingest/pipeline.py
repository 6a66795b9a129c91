"""One ingestion run of one resource: plan from the destination's state, stream pages into files, commit.

The commit point is the cursor write. Everything before it can be done again with the same result:

1. Read ``_cursor.json``. If it belongs to another run, first tidy that run up: write its manifest if it
   lacks one and, if it died mid-run, delete the data files it wrote after its last commit (their events
   come after the cursor, so this run reads them again).
2. Decide the mode. The run that holds the cursor and did not finish *resumes* from the cursor. A run
   that has a manifest already *reruns* its recorded range into the same file names and leaves the
   cursor alone. Any other run is *new*: it claims the cursor (writes it with this run's id, ``after``
   unchanged) before writing any data, so that if it dies, the next run knows whose files to tidy up.
3. Stream: the request for the next page is in flight while this thread drops duplicate ids of the
   current one, writes NDJSON into ``part-NNNNN`` files of ``events_per_file`` events each, and after each
   file is completely written and visible, commits the cursor (``after`` = the file's last event id). The
   fetching (:mod:`.fetch`) only reads: the cursor is written here, by this thread, and only ever covers
   events in committed files, so a request in flight, answered or failed, never moves it. File boundaries
   depend only on the event sequence, so a resumed or rerun run cuts the same files.
4. At the end: commit the last file, delete files of earlier attempts that this one did not write,
   commit the cursor as complete, write the manifest.

A crash anywhere loses at most the events after the last commit, and those are read again by the next
attempt into the same file names; no event is lost and none is written twice. This relies on one writer
per resource folder at a time; a second writer is detected (the cursor's ``revision`` changed) and fails
rather than overwrite the other's progress.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from airflow_provider_altinn_events._ingest.dedupe import RecentIds
from airflow_provider_altinn_events._ingest.errors import IngestCancelledError
from airflow_provider_altinn_events._ingest.fetch import FetchRange, PagePrefetcher, PageSource
from airflow_provider_altinn_events._ingest.folder import ResourceFolder
from airflow_provider_altinn_events._ingest.layout import MANIFEST_NAME, part_name
from airflow_provider_altinn_events._ingest.logs import TaskLog
from airflow_provider_altinn_events._ingest.ndjson import NdjsonPart, encode_events
from airflow_provider_altinn_events._ingest.spec import IngestMode, IngestResult, IngestSpec
from airflow_provider_altinn_events._ingest.state import CursorContext, CursorFile, RunRecord, RunState
from airflow_provider_altinn_events._ingest.storage import Storage
from airflow_provider_altinn_events.client.models import CloudEvent

__all__ = ["run_ingest"]

_default_log = logging.getLogger(__name__)


@dataclass
class _Plan:
    mode: IngestMode
    record: RunRecord
    fetch: FetchRange
    expected_after: str | None = None  # a rerun: where the run first ended


def run_ingest(
    source: PageSource,
    storage: Storage,
    spec: IngestSpec,
    run_id: str,
    *,
    log: TaskLog | None = None,
    trace: Callable[[str], None] | None = None,
    cancel: threading.Event | None = None,
    progress_seconds: float = 30.0,
    overlap: bool = True,
) -> IngestResult:
    """Run (or resume, or rerun) ingestion of one resource into ``storage``; see the module docstring.

    :param source: the client (``AltinnEventsClient``); used from one background thread only (from this
        thread when ``overlap`` is off).
    :param storage: the destination (:func:`.storage.open_storage`).
    :param spec: what to ingest.
    :param run_id: names the run folder and tells a new run from a retry or a rerun of an earlier one.
    :param log: where progress goes (the operator passes its task logger).
    :param trace: called with a point name at each step that matters for crash safety (tests kill there).
    :param cancel: set it to stop at the next page; the run then fails without committing more.
    :param progress_seconds: log progress at most this often.
    :param overlap: request the next page while the current one is written (:mod:`.fetch`); ``False``
        fetches and writes one page after the other (for comparison: ``benchmarks/ingest.py``).
    :raises IngestStateError: the destination holds a cursor for other filters, or an unreadable one.
    :raises IngestConflictError: another writer moved the cursor while this run was writing.
    :raises AltinnError: fetching failed after the client's retries.
    """
    if trace is not None:
        storage.trace = trace
    return _Ingestion(
        source,
        storage,
        spec,
        run_id,
        log or _default_log,
        storage.trace,
        cancel,
        progress_seconds,
        overlap,
    ).run()


class _Ingestion:
    def __init__(
        self,
        source: PageSource,
        storage: Storage,
        spec: IngestSpec,
        run_id: str,
        log: TaskLog,
        trace: Callable[[str], None],
        cancel: threading.Event | None,
        progress_seconds: float,
        overlap: bool,
    ) -> None:
        self.source, self.storage, self.spec, self.run_id = source, storage, spec, run_id
        self.log, self.trace, self.cancel = log, trace, cancel
        self.progress_seconds, self.overlap = progress_seconds, overlap
        self.folder = ResourceFolder(storage, spec.resource, spec.filters, log, trace)
        self.run_key = self.folder.run_key(run_id)
        self.fetched_now = 0  # events fetched by this attempt (a resumed run counts from its last commit)

    # -- planning -----------------------------------------------------------------------------------

    def run(self) -> IngestResult:
        started = time.monotonic()
        self.trace("start")
        cursor = self.folder.read_cursor()
        if cursor is not None and cursor.run.run_id == self.run_id and cursor.run.state is RunState.RUNNING:
            plan = self._plan_resume(cursor)
        else:
            if cursor is not None:
                self.folder.tidy_up(cursor.run)
            manifest = self.folder.read_manifest(self.run_id)
            plan = self._plan_rerun(manifest) if manifest is not None else self._plan_new(cursor)
        self.log.info(
            "Ingesting %s into %s: %s run %s from after=%s%s",
            self.spec.resource,
            self.storage.uri(self.run_key),
            plan.mode.value,
            self.run_id,
            plan.fetch.after,
            f" (max {plan.fetch.limit} events)" if plan.fetch.limit is not None else "",
        )
        record = self._stream(plan)
        seconds = time.monotonic() - started
        self.log.info(
            "Ingested %s: %d events in %d files (%d duplicates dropped, %d pages) in %.1f s (%.0f events/s); "
            "cursor after=%s",
            self.spec.resource,
            record.count,
            len(record.files),
            record.duplicates,
            record.pages,
            seconds,
            self.fetched_now / seconds if seconds > 0 else 0.0,
            record.end_after,
        )
        return IngestResult(
            resource=self.spec.resource,
            run_id=self.run_id,
            mode=plan.mode,
            start_after=record.start_after,
            after=record.end_after,
            count=record.count,
            duplicates=record.duplicates,
            pages=record.pages,
            files=tuple(self.storage.uri(f"{self.run_key}/{part.name}") for part in record.files),
            manifest=self.storage.uri(f"{self.run_key}/{MANIFEST_NAME}"),
            cursor_moved=plan.mode is not IngestMode.RERUN,
            seconds=seconds,
        )

    def _plan_resume(self, cursor: CursorFile) -> _Plan:
        record = cursor.run
        limit = None if record.max_events is None else max(0, record.max_events - record.fetched)
        return _Plan(
            IngestMode.RESUME, record, FetchRange(after=cursor.after, limit=limit, context=record.end_context)
        )

    def _plan_rerun(self, manifest: RunRecord) -> _Plan:
        record = RunRecord(
            run_id=self.run_id,
            state=RunState.RUNNING,
            start_after=manifest.start_after,
            end_after=manifest.start_after,
            compression=manifest.compression,
            events_per_file=manifest.events_per_file,
            max_events=manifest.max_events,
            start_context=manifest.start_context,
            end_context=manifest.start_context,
        )
        # the run's last event: the last one held past its cursor, else the event at the cursor
        held = manifest.end_context.held
        stop_at, stop_source = held[-1] if held else (manifest.end_after, manifest.end_context.source)
        return _Plan(
            IngestMode.RERUN,
            record,
            FetchRange(
                after=manifest.start_after,
                context=manifest.start_context,
                limit=manifest.fetched,
                stop_at=stop_at if manifest.fetched else None,
                stop_at_source=stop_source,
            ),
            expected_after=manifest.end_after,
        )

    def _plan_new(self, cursor: CursorFile | None) -> _Plan:
        start = cursor.after if cursor is not None else self.spec.start_after
        # a hand-edited `after` makes what the last run knew around its cursor meaningless
        context = (
            cursor.run.end_context
            if cursor is not None and cursor.after == cursor.run.end_after
            else CursorContext()
        )
        record = RunRecord(
            run_id=self.run_id,
            state=RunState.RUNNING,
            start_after=start,
            end_after=start,
            compression=self.spec.compression,
            events_per_file=self.spec.events_per_file,
            max_events=self.spec.max_events,
            start_context=context,
            end_context=context,
        )
        # The claim: from here on, if this run dies, the next run knows whose files to tidy up.
        self.folder.commit_cursor(record)
        self.trace("claimed")
        return _Plan(
            IngestMode.NEW, record, FetchRange(after=start, limit=self.spec.max_events, context=context)
        )

    # -- streaming ----------------------------------------------------------------------------------

    def _stream(self, plan: _Plan) -> RunRecord:
        """Fetch, dedupe, write and commit file by file; returns the run's final record."""
        progress = _Progress(plan.record, plan.fetch.after, plan.fetch.context)
        per_file = plan.record.events_per_file
        seen = RecentIds(self.spec.dedupe_window)
        part: NdjsonPart | None = None
        prefetcher = PagePrefetcher(
            self.source,
            resource=self.spec.resource,
            filters=self.spec.filters,
            fetch_range=plan.fetch,
            page_size=self.spec.page_size,
            overlap=self.overlap,
        )
        started = next_log = time.monotonic()
        try:
            for page in prefetcher:
                if self.cancel is not None and self.cancel.is_set():
                    raise IngestCancelledError(f"ingestion of {self.spec.resource} cancelled")
                self.trace("page")
                events = page.events
                keys = [(event.id, event.source) for event in events]  # Altinn's key for an event
                fresh = seen.add_many(keys)  # positions of first-seen events; None: all of them
                kept = events if fresh is None else [events[i] for i in fresh]
                done = 0  # how many of ``kept`` are written
                while done < len(kept):
                    part = part or self._open_part(len(progress.files), plan.record.compression)
                    chunk = kept[done : done + per_file - part.events]
                    part.write(encode_events(chunk), len(chunk))
                    done += len(chunk)
                    progress.saw_times(chunk)
                    if part.events < per_file:
                        break
                    # The file is full: make it visible, then commit the cursor at its last event.
                    progress.files.append(part.commit())
                    part = None
                    self.trace("part-committed")
                    if plan.mode is not IngestMode.RERUN:
                        last = done - 1 if fresh is None else fresh[done - 1]  # its position in the page
                        after, context = page.cursor_after(last + 1)
                        self.folder.commit_cursor(progress.record(last + 1, done, after, context))
                        self.trace("checkpoint")
                progress.add_page(len(events), len(kept), page.after, page.context)
                self.trace("page-written")
                now = time.monotonic()
                if now >= next_log:
                    next_log = now + self.progress_seconds
                    self._log_progress(progress, now - started)
            if part is not None:
                progress.files.append(part.commit())
                part = None
                self.trace("part-committed")
        except BaseException:
            if part is not None:
                part.abort()
            raise
        finally:
            prefetcher.close()

        limit = plan.fetch.limit
        if plan.mode is not IngestMode.RERUN and limit is not None and progress.run_fetched >= limit:
            self.log.info(
                "%s: reached max_events; the next run continues after=%s", self.spec.resource, progress.after
            )
        self.fetched_now = progress.run_fetched
        self.folder.remove_stale(self.run_id, (p.name for p in progress.files))
        self.trace("stale-removed")
        final = progress.record(state=RunState.COMPLETE)
        if plan.mode is IngestMode.RERUN:
            expected = plan.expected_after or plan.fetch.after
            if final.end_after != expected:
                self.log.warning(
                    "Rerun of %s ended at after=%s, but the run first ended at after=%s "
                    "(events expired or were added in between?)",
                    self.run_id,
                    final.end_after,
                    expected,
                )
        else:
            self.folder.commit_cursor(final)
            self.trace("final-cursor")
        self.folder.write_manifest(final)
        self.trace("manifest")
        return final

    def _log_progress(self, progress: _Progress, seconds: float) -> None:
        self.log.info(
            "%s: %d events written, %d pages, %d duplicates dropped, %.0f events/s, after=%s",
            self.spec.resource,
            progress.count,
            progress.pages,
            progress.duplicates,
            progress.run_fetched / seconds if seconds > 0 else 0.0,
            progress.after,
        )

    def _open_part(self, index: int, compression: str | None) -> NdjsonPart:
        key = f"{self.run_key}/{part_name(index, compression)}"
        return NdjsonPart(self.storage, key, compression)


class _Progress:
    """The counters of a run while it streams; :meth:`record` turns them into what gets committed."""

    def __init__(self, start: RunRecord, after: str, context: CursorContext) -> None:
        self.start = start
        self.after, self.context = after, context
        self.count, self.duplicates, self.fetched, self.pages = (
            start.count,
            start.duplicates,
            start.fetched,
            start.pages,
        )
        self.first_time, self.last_time = start.first_event_time, start.last_event_time
        self.files = list(start.files)
        self.run_fetched = 0  # events fetched by this attempt (the rate in the logs)

    def saw_times(self, written: Sequence[CloudEvent]) -> None:
        if self.first_time is None:
            self.first_time = next((e.time for e in written if e.time is not None), None)
        self.last_time = next((e.time for e in reversed(written) if e.time is not None), self.last_time)

    def add_page(self, fetched: int, written: int, after: str, context: CursorContext) -> None:
        self.pages += 1
        self.run_fetched += fetched
        self.fetched += fetched
        self.count += written
        self.duplicates += fetched - written
        self.after, self.context = after, context

    def record(
        self,
        fetched: int = 0,
        written: int = 0,
        after: str | None = None,
        context: CursorContext | None = None,
        state: RunState = RunState.RUNNING,
    ) -> RunRecord:
        """The run record, including the first ``fetched`` events of the current page of which ``written``
        were written, with the cursor ``after`` (and its ``context``) the page has there."""
        return self.start.touched(
            state=state,
            end_after=self.after if after is None else after,
            end_context=self.context if context is None else context,
            count=self.count + written,
            duplicates=self.duplicates + fetched - written,
            fetched=self.fetched + fetched,
            pages=self.pages + (1 if fetched else 0),
            files=tuple(self.files),
            first_event_time=self.first_time,
            last_event_time=self.last_time,
        )

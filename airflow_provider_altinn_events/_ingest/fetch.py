"""Fetch pages on a background thread, one or two pages ahead of the writer.

While the pipeline encodes, compresses and stores page *n*, this thread is already waiting for Altinn to
serve page *n + 1*: the network and server time overlap with the writing instead of adding to it. The
queue between the two holds at most ``depth`` pages, so memory stays at a few pages whatever the run
size, and a slow destination slows the fetching down instead of piling pages up.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from airflow_provider_altinn_events._ingest.state import RECENT_LIMIT, CursorContext, Filters
from airflow_provider_altinn_events.client.matching import SEEK_PAGE_SIZE, EventFilter, PollState, poll_step
from airflow_provider_altinn_events.client.models import CloudEvent, EventPage

__all__ = ["FetchRange", "FetchedPage", "PagePrefetcher", "PageSource"]

_END = object()
_POLL_SECONDS = 0.2
_CLOSE_WAIT_SECONDS = 5.0

Pair = tuple[str, str]


class PageSource(Protocol):
    """The one client method ingestion needs (``AltinnEventsClient`` has it)."""

    def list_events(
        self,
        *,
        resource: str,
        after: str = "0",
        types: Sequence[str] | None = None,
        subject: str | None = None,
        alternative_subject: str | None = None,
        size: int = 50,
    ) -> EventPage: ...


@dataclass(frozen=True)
class FetchRange:
    """Which events to fetch.

    :param after: start after this event id (``"0"``: from the oldest retained event).
    :param context: what the previous run knew around ``after`` (held and recent events, the cursor's
        source); see :class:`.state.CursorContext`.
    :param limit: fetch at most this many events (``None``: until the service has no more).
    :param stop_at: stop after the event with this id (a rerun re-reads exactly its recorded range), and
        with this source when ``stop_at_source`` is given.
    """

    after: str
    limit: int | None = None
    stop_at: str | None = None
    context: CursorContext = field(default_factory=CursorContext)
    stop_at_source: str | None = None


@dataclass(frozen=True)
class FetchedPage:
    """A page as the pipeline sees it: only events not fetched before in this run, and where to resume.

    :param events: the new events, in the service's order.
    :param after: the cursor after all of them (never an id that several events share).
    :param context: what the next run needs to know around ``after`` (:class:`.state.CursorContext`).
    """

    events: tuple[CloudEvent, ...]
    after: str
    context: CursorContext
    next_url: str | None = None
    _start: PollState | None = field(default=None, repr=False, compare=False)
    _served: tuple[CloudEvent, ...] = field(default=(), repr=False, compare=False)
    _filter: EventFilter | None = field(default=None, repr=False, compare=False)

    def cursor_after(self, count: int) -> tuple[str, CursorContext]:
        """``(after, context)`` once the first ``count`` events are written (the commit at a file boundary):
        the poll step replayed on the page as served up to that event, so the same cursor rules hold."""
        if count >= len(self.events) or self._start is None or self._filter is None:
            return self.after, self.context
        last = self.events[count - 1]
        index = next(i for i, event in enumerate(self._served) if event is last)
        head = self._served[: index + 1]
        state = poll_step(self._start, EventPage(events=head, after=last.id), self._filter).state
        return state.after, _context(state, head)


def _context(state: PollState, served: Sequence[CloudEvent]) -> CursorContext:
    held = tuple((e.id, e.source) for e in served[len(served) - state.behind :]) if state.behind else ()
    return CursorContext(source=state.after_source, held=held, recent=state.seen[-RECENT_LIMIT:])


def _start_state(after: str, context: CursorContext) -> PollState:
    """The poll state a run starts in: held events stand past the cursor because their ids are shared, so
    those ids are never a cursor either; recent and held events are dropped when served again."""
    shared = tuple(dict.fromkeys(event_id for event_id, _ in context.held))
    return PollState(
        after=after,
        after_source=context.source,
        seen=tuple(dict.fromkeys(context.recent + context.held)),
        behind=len(context.held),
        ambiguous=shared,
    )


class PagePrefetcher:
    """Iterate over the pages of ``fetch_range``, fetched by a background thread.

    Pages come out trimmed to the range (never past ``limit`` or ``stop_at``) as :class:`FetchedPage`: only
    events not fetched before, ``after`` where to resume. Iteration ends at the first page that brings nothing
    new (empty, or only events served again: Altinn has nothing newer). An error
    in the thread (after the client's own retries) is raised from the iteration; leaving the iteration
    early stops the thread.

    :param source: the client.
    :param resource: the resource URN.
    :param filters: type / subject / alternative subject filters, sent to the service.
    :param page_size: events per request (Altinn serves at most 1000).
    :param depth: pages allowed to wait in the queue.
    """

    def __init__(
        self,
        source: PageSource,
        *,
        resource: str,
        filters: Filters,
        fetch_range: FetchRange,
        page_size: int,
        depth: int = 2,
    ) -> None:
        self._source = source
        self._resource = resource
        self._filters = filters
        self._range = fetch_range
        self._page_size = page_size
        self._queue: queue.Queue[object] = queue.Queue(maxsize=max(1, depth))
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        #: seconds the consumer spent waiting for a page (how much fetching was *not* hidden)
        self.wait_seconds = 0.0

    def __iter__(self) -> Iterator[FetchedPage]:
        if self._thread is not None:
            raise RuntimeError("a PagePrefetcher iterates once")
        self._thread = threading.Thread(target=self._produce, name="altinn-ingest-fetch", daemon=True)
        self._thread.start()
        try:
            while True:
                started = time.monotonic()
                item = self._queue.get()
                self.wait_seconds += time.monotonic() - started
                if item is _END:
                    return
                if isinstance(item, BaseException):
                    raise item
                assert isinstance(item, FetchedPage)
                yield item
        finally:
            self.close()

    def close(self, wait_seconds: float = _CLOSE_WAIT_SECONDS) -> None:
        """Stop the thread and wait for it, at most ``wait_seconds``.

        A request in flight (or the client's back-off between retries) is not interrupted; when it takes
        longer than ``wait_seconds`` the thread is left to end on its own (it is a daemon, puts nothing
        more into the queue, and fails fast once the caller closes the client).
        """
        self._stop.set()
        thread = self._thread
        if thread is None or thread is threading.current_thread():
            return
        deadline = time.monotonic() + wait_seconds
        while thread.is_alive() and time.monotonic() < deadline:
            try:  # unblock a producer waiting for queue space
                while True:
                    self._queue.get_nowait()
            except queue.Empty:
                pass
            thread.join(_POLL_SECONDS)

    def _put(self, item: object) -> bool:
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=_POLL_SECONDS)
                return True
            except queue.Full:
                continue
        return False

    def _produce(self) -> None:
        try:
            for page in self._pages():
                if not self._put(page):
                    return
            self._put(_END)
        except BaseException as error:  # handed to the consumer, which raises it in the task
            self._put(error)

    def _pages(self) -> Iterator[FetchedPage]:
        """Pages by the poll step's rules (``client/matching.py``): Altinn keys events by ``(id, source)`` and
        resumes ``after=<id>`` after the *first* event with that id, so events it serves again are dropped,
        the cursor is never a shared id, and a page that brings nothing new ends the run (caught up)."""
        fetch = self._range
        remaining, stop_at = fetch.limit, fetch.stop_at
        event_filter = EventFilter(resource=self._resource)
        state = _start_state(fetch.after, fetch.context)
        while not self._stop.is_set():
            size = self._page_size if remaining is None else min(self._page_size, remaining)
            if size <= 0:
                return
            page = self._source.list_events(
                resource=self._resource,
                after=state.after,
                types=list(self._filters.types) or None,
                subject=self._filters.subject,
                alternative_subject=self._filters.alternative_subject,
                size=min(SEEK_PAGE_SIZE, size + state.behind),  # held events come first: room for new ones
            )
            step = poll_step(state, page, event_filter)
            if step.at_end:
                return
            new = step.new_events
            cut = remaining if remaining is not None and len(new) > remaining else len(new)
            finished = False
            if stop_at is not None:
                for index, event in enumerate(new[:cut]):
                    if event.id == stop_at and fetch.stop_at_source in (None, event.source):
                        cut, finished = index + 1, True
                        break
            served = page.events
            if cut < len(new):
                last = new[cut - 1]
                served = served[: next(i for i, event in enumerate(served) if event is last) + 1]
                step = poll_step(state, EventPage(events=served, after=last.id), event_filter)
                new = step.new_events
            start, state = state, step.state.handed_over()
            if new:
                yield FetchedPage(
                    events=new,
                    after=state.after,
                    context=_context(state, served),
                    next_url=page.next_url,
                    _start=start,
                    _served=served,
                    _filter=event_filter,
                )
            if remaining is not None:
                remaining -= len(new)
            if finished:
                return

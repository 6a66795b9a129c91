"""Fetch pages with the next request in flight while the current page is written.

Altinn pages by cursor (``after=<last id>``), so requests cannot run side by side: page *n + 1* can only be
asked for once page *n* is read. What can overlap is everything else. As soon as page *n* is parsed, its last
id goes out as the request for page *n + 1* (on a background thread, :class:`_RequestThread`); only then
does the poll step run on page *n* and the pipeline dedupe, encode and write it, while Altinn serves page
*n + 1*. The request is *speculative*: when the poll step moves the cursor elsewhere (events that share an
id keep it back, a ``limit`` or ``stop_at`` ends the range), its answer is waited for and dropped, and the
right request is sent; no page is ever used that the sequential walk would not have asked for. So the pace is
Altinn's time per page plus reading the answer, not plus writing it (docs/guides/ingestion.rst, "Throughput
and memory").

Why a thread with the sync client and not the async client: the pipeline, its storage and the operator are
synchronous, and the sync client (the hook's) is what the operator holds; one daemon thread that runs one
request at a time overlaps the same wait as an event loop would, without a second client, a loop in the
task or async storage. The thread never touches the cursor or the files: it only turns ``(after, size)``
into a page, so the commit rules of :mod:`.pipeline` do not change. At most one request is in flight and one
page is being written; memory stays at two pages whatever the run size.
"""

from __future__ import annotations

import contextlib
import queue
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from airflow_provider_altinn_events._ingest.state import RECENT_LIMIT, CursorContext, Filters
from airflow_provider_altinn_events.client.matching import SEEK_PAGE_SIZE, EventFilter, PollState, poll_step
from airflow_provider_altinn_events.client.models import CloudEvent, EventPage

__all__ = ["FETCH_THREAD_NAME", "FetchRange", "FetchedPage", "PagePrefetcher", "PageSource"]

#: the name of the thread that sends the requests (tests look for it after a run)
FETCH_THREAD_NAME = "altinn-ingest-fetch"
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


class _RequestThread:
    """One daemon thread that turns ``(after, size)`` into a page, one request at a time.

    Every request sent is answered exactly once, in order (a page or the error the client raised after its
    retries), so an answer is never left behind unread by mistake and an error never escapes the thread
    (no unhandled-exception warning). :meth:`close` lets the request in flight finish, at most
    ``wait_seconds``, and ends the thread.
    """

    def __init__(self, fetch: Callable[[str, int], EventPage]) -> None:
        self._fetch = fetch
        self._requests: queue.SimpleQueue[tuple[str, int] | None] = queue.SimpleQueue()
        self._answers: queue.SimpleQueue[EventPage | BaseException] = queue.SimpleQueue()
        self._closed = False
        self._thread = threading.Thread(target=self._serve, name=FETCH_THREAD_NAME, daemon=True)
        self._thread.start()

    def send(self, after: str, size: int) -> None:
        self._requests.put((after, size))

    def receive(self) -> EventPage:
        answer = self._answers.get()
        if isinstance(answer, BaseException):
            raise answer
        return answer

    def close(self, wait_seconds: float) -> None:
        if self._closed:
            return
        self._closed = True
        self._requests.put(None)
        if self._thread is not threading.current_thread():
            self._thread.join(wait_seconds)

    def _serve(self) -> None:
        while True:
            request = self._requests.get()
            if request is None:
                return
            try:
                answer: EventPage | BaseException = self._fetch(*request)
            except BaseException as error:  # handed to the consumer, which raises it in the task
                answer = error
            self._answers.put(answer)


class _InPlace:
    """The sequential walk (``overlap=False``): a request is sent only when its answer is wanted, in the
    consumer's own thread. Same interface as :class:`_RequestThread`."""

    def __init__(self, fetch: Callable[[str, int], EventPage]) -> None:
        self._fetch = fetch
        self._pending: list[tuple[str, int]] = []

    def send(self, after: str, size: int) -> None:
        self._pending.append((after, size))

    def receive(self) -> EventPage:
        return self._fetch(*self._pending.pop(0))

    def close(self, wait_seconds: float) -> None:
        self._pending.clear()


class PagePrefetcher:
    """Iterate over the pages of ``fetch_range``, the next one requested while the current one is written.

    Pages come out trimmed to the range (never past ``limit`` or ``stop_at``) as :class:`FetchedPage`: only
    events not fetched before, ``after`` where to resume. Iteration ends at the first page that brings nothing
    new (empty, or only events served again: Altinn has nothing newer). An error from a request the walk
    needs (after the client's own retries) is raised from the iteration, after the pages before it were
    handed out; leaving the iteration early, or :meth:`close`, waits for the request in flight (at most
    ``_CLOSE_WAIT_SECONDS``) and stops the thread.

    :param source: the client; called from one background thread only (from the consumer's thread when
        ``overlap`` is off).
    :param resource: the resource URN.
    :param filters: type / subject / alternative subject filters, sent to the service.
    :param page_size: events per request (Altinn serves at most 1000).
    :param overlap: request the next page while the current one is written (see the module docstring);
        ``False`` walks the pages one request after the other (the benchmark's sequential variant).
    """

    def __init__(
        self,
        source: PageSource,
        *,
        resource: str,
        filters: Filters,
        fetch_range: FetchRange,
        page_size: int,
        overlap: bool = True,
    ) -> None:
        self._source = source
        self._resource = resource
        self._filters = filters
        self._range = fetch_range
        self._page_size = page_size
        self._overlap = overlap
        self._requests: _RequestThread | _InPlace | None = None
        self._pages_iterator: Iterator[FetchedPage] | None = None
        #: seconds the consumer spent waiting for a page (how much fetching was *not* hidden)
        self.wait_seconds = 0.0
        #: speculative requests whose answer was dropped because the cursor went elsewhere
        self.missed = 0

    def __iter__(self) -> Iterator[FetchedPage]:
        if self._requests is not None:
            raise RuntimeError("a PagePrefetcher iterates once")
        fetch = self._fetch
        self._requests = _RequestThread(fetch) if self._overlap else _InPlace(fetch)
        self._pages_iterator = self._walk(self._requests)
        return self._pages_iterator

    def _walk(self, requests: _RequestThread | _InPlace) -> Iterator[FetchedPage]:
        try:
            yield from self._pages(requests)
        finally:  # also when the consumer stops early: no request or thread is left behind
            requests.close(_CLOSE_WAIT_SECONDS)

    def close(self, wait_seconds: float = _CLOSE_WAIT_SECONDS) -> None:
        """Stop: wait for the request in flight, at most ``wait_seconds``, and end the thread.

        A request in flight (or the client's back-off between retries) is not interrupted; when it takes
        longer than ``wait_seconds`` the thread is left to end on its own (it is a daemon, its answer is
        dropped, and it fails fast once the caller closes the client).
        """
        if self._requests is not None:
            self._requests.close(wait_seconds)
        pages, self._pages_iterator = self._pages_iterator, None
        if pages is not None:
            pages.close()  # type: ignore[attr-defined]  # a generator: runs its ``finally``

    def _fetch(self, after: str, size: int) -> EventPage:
        return self._source.list_events(
            resource=self._resource,
            after=after,
            types=list(self._filters.types) or None,
            subject=self._filters.subject,
            alternative_subject=self._filters.alternative_subject,
            size=size,
        )

    def _size(self, remaining: int | None, behind: int) -> int:
        """The ``size`` to ask for: held events come first, so there must be room for new ones after them."""
        size = self._page_size if remaining is None else min(self._page_size, remaining)
        return min(SEEK_PAGE_SIZE, size + behind)

    def _pages(self, requests: _RequestThread | _InPlace) -> Iterator[FetchedPage]:
        """Pages by the poll step's rules (``client/matching.py``): Altinn keys events by ``(id, source)`` and
        resumes ``after=<id>`` after the *first* event with that id, so events it serves again are dropped,
        the cursor is never a shared id, and a page that brings nothing new ends the run (caught up).

        The request for the next page goes out before the poll step runs on this one, with the page's last
        id as cursor: what the poll step decides in the common case. When it decides otherwise, that answer
        is dropped (:meth:`_drop`) and the request the step asks for is sent instead."""
        fetch = self._range
        remaining, stop_at = fetch.limit, fetch.stop_at
        event_filter = EventFilter(resource=self._resource)
        state = _start_state(fetch.after, fetch.context)
        if self._size(remaining, 0) <= 0:
            return
        in_flight: tuple[str, int] | None = (state.after, self._size(remaining, state.behind))
        requests.send(*in_flight)
        while in_flight is not None:
            started = time.monotonic()
            page = requests.receive()
            in_flight = None
            self.wait_seconds += time.monotonic() - started
            if self._overlap:
                in_flight = self._speculate(requests, page, state, remaining)
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
            if remaining is not None:
                remaining -= len(new)
            wanted = None
            if not finished and self._size(remaining, 0) > 0:
                wanted = (state.after, self._size(remaining, state.behind))
            if in_flight is not None and in_flight != wanted:
                self._drop(requests)
                in_flight = None
            if wanted is not None and in_flight is None:
                in_flight = wanted
                requests.send(*wanted)
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

    def _speculate(
        self, requests: _RequestThread | _InPlace, page: EventPage, state: PollState, remaining: int | None
    ) -> tuple[str, int] | None:
        """Send the request for the page after ``page`` as the poll step will most likely ask for it: after
        its last event, nothing held back, every event new. Not when the range ends within this page, nor when
        the page cannot move the cursor to its last id: it is empty, holds no more than the events held past
        the cursor (served again), or ends on an id known to be shared."""
        if len(page.events) <= state.behind or page.after in state.ambiguous:
            return None
        if remaining is not None:
            remaining -= len(page.events)
            if remaining <= 0:
                return None
        stop_at = self._range.stop_at
        if stop_at is not None and any(event.id == stop_at for event in page.events):
            return None
        request = (page.after, self._size(remaining, 0))
        requests.send(*request)
        return request

    def _drop(self, requests: _RequestThread | _InPlace) -> None:
        """Wait for the answer to a request the walk no longer needs and drop it, errors included: the
        request the walk does need is sent next and reports its own errors."""
        self.missed += 1
        with contextlib.suppress(Exception):
            requests.receive()

"""Fetch pages with the next request in flight while the current page is written.

Altinn pages by cursor (``after=<last id>``), so requests cannot run side by side: page *n + 1* can only be
asked for once page *n*'s last id is known. What can overlap is everything else. A background thread
(:class:`_RequestThread`) sends the requests; as soon as page *n* has arrived, it hands the page over
undecoded and sends the request for page *n + 1* itself, after the page's last id, which it takes from
Altinn's ``next`` header or from a scan of the body (``UndecodedEventPage.next_after`` / ``.outline``),
while the task's thread decodes page *n*, runs the poll step on it, and the pipeline dedupes, encodes and
writes it. The thread sends without waiting for the task's thread (a hand-over between threads waits for the
GIL while the other works), and decoding on the task's thread keeps that cost out of the chain of requests,
which sets the pace. The request is a guess: when the poll step moves the cursor elsewhere (events that share
an id keep it back, a ``limit`` or ``stop_at`` ends the range, the header named another id), the guessed
answer is dropped unread and the right request is sent; no page is used that the sequential walk would not
have asked for. So the pace is Altinn's time per page plus receiving the answer, not plus decoding and
writing it (docs/guides/ingestion.rst, "Throughput and memory").

Why a thread with the sync client and not the async client: the pipeline, its storage and the operator are
synchronous, and the sync client (the hook's) is what the operator holds; one daemon thread that runs one
request at a time overlaps the same wait as an event loop would, without a second client, a loop in the
task or async storage, and per request the async client costs about the same CPU (docs/guides/ingestion.rst).
The thread never touches the cursor or the files: it only turns ``(after, size)`` into a page, so the commit
rules of :mod:`.pipeline` do not change. At most two pages wait besides the one being written, whatever the
run size, and a slow destination slows the fetching down.
"""

from __future__ import annotations

import contextlib
import json
import queue
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from typing import Protocol

from airflow_provider_altinn_events._ingest.state import RECENT_LIMIT, CursorContext, Filters
from airflow_provider_altinn_events.client.matching import SEEK_PAGE_SIZE, EventFilter, PollState, poll_step
from airflow_provider_altinn_events.client.models import CloudEvent, EventPage
from airflow_provider_altinn_events.client.protocol import UndecodedEventPage

__all__ = ["FETCH_THREAD_NAME", "FetchRange", "FetchedPage", "PagePrefetcher", "PageSource"]

#: the name of the thread that sends the requests (tests look for it after a run)
FETCH_THREAD_NAME = "altinn-ingest-fetch"
_POLL_SECONDS = 0.2
_CLOSE_WAIT_SECONDS = 5.0

Pair = tuple[str, str]


class PageSource(Protocol):
    """The one client method ingestion needs (``AltinnEventsClient`` has it): ``list_events`` with the page
    left undecoded, so that it is decoded on the consumer's thread (see the module docstring)."""

    def list_events_undecoded(
        self,
        *,
        resource: str,
        after: str = "0",
        types: Sequence[str] | None = None,
        subject: str | None = None,
        alternative_subject: str | None = None,
        size: int = 50,
    ) -> UndecodedEventPage: ...


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


Request = tuple[str, int]
"""``(after, size)`` of one ``GET /events``."""
Guess = Callable[[UndecodedEventPage], "tuple[Request, Guess] | None"]
"""Given the page just fetched, the request that most likely comes next, and how to guess after that one."""


class _RequestThread:
    """One daemon thread that sends the requests, one at a time, and guesses the next one itself.

    The consumer :meth:`send`\\ s a request with a :data:`Guess`. The thread fetches it, hands the page over
    together with the request it guessed next, and sends that one at once, without waiting for the consumer
    (a hand-over between threads would wait for the GIL while the consumer runs the poll step). When the
    consumer needs something else, it sends that request: answers to the guesses made before it are dropped
    unread (:meth:`receive` matches answers to the latest request by a generation number), and the thread
    stops guessing on that line. At most one answer waits for the consumer, so at most two pages are held
    besides the one being written, and a slow destination slows the fetching down.

    Every answer is a page or the error the client raised after its retries; an error never escapes the
    thread (no unhandled-exception warning). :meth:`close` lets the request in flight finish, at most
    ``wait_seconds``, and ends the thread.
    """

    def __init__(self, fetch: Callable[[str, int], UndecodedEventPage]) -> None:
        self._fetch = fetch
        self._requests: queue.SimpleQueue[tuple[int, Request, Guess | None] | None] = queue.SimpleQueue()
        self._answers: queue.Queue[tuple[int, UndecodedEventPage | BaseException, Request | None]] = (
            queue.Queue(1)
        )
        self._generation = 0  # of the latest request the consumer sent; written by the consumer only
        self._closed = threading.Event()
        self._thread = threading.Thread(target=self._serve, name=FETCH_THREAD_NAME, daemon=True)
        self._thread.start()

    def send(self, request: Request, guess: Guess | None) -> None:
        self._generation += 1
        self._requests.put((self._generation, request, guess))

    def receive(self) -> tuple[UndecodedEventPage, Request | None]:
        """The answer to the latest request sent (or to the guess that followed it), and the request the
        thread guessed and sent next (``None``: none)."""
        while True:
            generation, answer, guessed = self._answers.get()
            if generation != self._generation:
                continue  # a guess made before the latest request: not wanted
            if isinstance(answer, BaseException):
                raise answer
            return answer, guessed

    def close(self, wait_seconds: float) -> None:
        if self._closed.is_set():
            return
        self._closed.set()
        self._requests.put(None)
        if self._thread is threading.current_thread():
            return
        deadline = time.monotonic() + wait_seconds
        while self._thread.is_alive() and time.monotonic() < deadline:
            with contextlib.suppress(queue.Empty):  # unblock a hand-over nobody will take
                self._answers.get_nowait()
            self._thread.join(min(_POLL_SECONDS, max(0.0, deadline - time.monotonic())))

    def _serve(self) -> None:
        while True:
            item = self._requests.get()
            if item is None:
                return
            generation, request, guess = item
            while True:
                following: tuple[Request, Guess] | None = None
                answer: UndecodedEventPage | BaseException
                try:
                    answer = page = self._fetch(*request)
                    if guess is not None and not self._stale(generation):
                        following = guess(page)
                except BaseException as error:  # handed to the consumer, which raises it in the task
                    answer = error
                if not self._hand_over((generation, answer, following and following[0])):
                    return
                if following is None or self._stale(generation):
                    break
                request, guess = following

    def _stale(self, generation: int) -> bool:
        return generation != self._generation or self._closed.is_set()

    def _hand_over(self, item: tuple[int, UndecodedEventPage | BaseException, Request | None]) -> bool:
        while not self._closed.is_set():
            try:
                self._answers.put(item, timeout=_POLL_SECONDS)
                return True
            except queue.Full:
                continue
        return False


class _InPlace:
    """The sequential walk (``overlap=False``): a request is sent when its answer is wanted, in the
    consumer's own thread, and nothing is guessed. Same interface as :class:`_RequestThread`."""

    def __init__(self, fetch: Callable[[str, int], UndecodedEventPage]) -> None:
        self._fetch = fetch
        self._pending: Request | None = None

    def send(self, request: Request, guess: Guess | None) -> None:
        self._pending = request

    def receive(self) -> tuple[UndecodedEventPage, Request | None]:
        request, self._pending = self._pending, None
        assert request is not None, "receive() without send()"
        return self._fetch(*request), None

    def close(self, wait_seconds: float) -> None:
        self._pending = None


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

    def _fetch(self, after: str, size: int) -> UndecodedEventPage:
        return self._source.list_events_undecoded(
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

        With ``overlap``, the request thread sends the next request as soon as it has parsed a page, after the
        page's last id (:meth:`_guesser`): what the poll step decides in the common case. When the step decides
        otherwise, the request it asks for is sent and the guessed page is dropped unread."""
        fetch = self._range
        remaining, stop_at = fetch.limit, fetch.stop_at
        event_filter = EventFilter(resource=self._resource)
        state = _start_state(fetch.after, fetch.context)
        if self._size(remaining, 0) <= 0:
            return
        first: Request = (state.after, self._size(remaining, state.behind))
        requests.send(first, self._guesser(remaining, state))
        wanted: Request | None = first
        while wanted is not None:
            started = time.monotonic()
            undecoded, guessed = requests.receive()
            self.wait_seconds += time.monotonic() - started
            page = undecoded.decode()  # here, while the request thread already waits for the next page
            step = poll_step(state, page, event_filter)
            if step.at_end:
                self.missed += guessed is not None
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
            if guessed is not None and guessed != wanted:
                self.missed += 1
            if wanted is not None and wanted != guessed:
                requests.send(wanted, self._guesser(remaining, state))
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

    def _guesser(self, remaining: int | None, state: PollState) -> Guess | None:
        """How the request thread guesses the request after a page, for a walk that stands at ``state`` with
        ``remaining`` events to go: after the page's last event, with every event past the held ones new.
        No guess when the range ends within the page, nor when the page cannot move the cursor to its last
        id: it holds no more than the events held past the cursor (served again), or it ends on an id known
        to be shared. Runs on the request thread: it reads only its arguments."""
        if not self._overlap:
            return None
        behind, ambiguous, stop_at = state.behind, state.ambiguous, self._range.stop_at
        # a rerun's last id as JSON most likely writes it: a page holding these bytes may end the range
        stop_mark = None if stop_at is None else json.dumps(stop_at).encode()

        def guess(page: UndecodedEventPage) -> tuple[Request, Guess] | None:
            hint = page.next_after() if not behind and remaining is None and stop_mark is None else None
            if hint is not None and hint not in ambiguous:
                # all a plain walk needs is the last id, and Altinn sends it in the `next` header
                last, left = hint, None
            else:
                outline = page.outline()  # the count and the last id, without decoding the page
                if outline is None:
                    return None
                count, last = outline
                if count <= behind or last in ambiguous:
                    return None
                left = None if remaining is None else remaining - (count - behind)
                if left is not None and left <= 0:
                    return None
                if stop_mark is not None and stop_mark in page.content:
                    return None
            following = self._guesser(left, replace(state, behind=0))
            assert following is not None
            return (last, self._size(left, 0)), following

        return guess

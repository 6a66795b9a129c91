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
from collections import deque
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Protocol

from airflow_provider_altinn_events._ingest.errors import IngestStateError
from airflow_provider_altinn_events._ingest.state import Filters
from airflow_provider_altinn_events.client.models import EventPage

__all__ = ["FetchRange", "PagePrefetcher", "PageSource"]

_END = object()
_POLL_SECONDS = 0.2
_CLOSE_WAIT_SECONDS = 5.0
#: how many recent request cursors to remember to notice the service sending us backwards
_CURSOR_MEMORY = 1024


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
    :param limit: fetch at most this many events (``None``: until the service has no more).
    :param stop_at: stop after the event with this id (a rerun re-reads exactly its recorded range).
    """

    after: str
    limit: int | None = None
    stop_at: str | None = None


class PagePrefetcher:
    """Iterate over the pages of ``fetch_range``, fetched by a background thread.

    Pages come out trimmed to the range (never past ``limit`` or ``stop_at``), each with ``after`` set to
    the id of its last event. Iteration ends at the first empty page (Altinn has nothing newer). An error
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

    def __iter__(self) -> Iterator[EventPage]:
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
                assert isinstance(item, EventPage)
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

    def _pages(self) -> Iterator[EventPage]:
        after = self._range.after
        remaining = self._range.limit
        stop_at = self._range.stop_at
        recent: deque[str] = deque(maxlen=_CURSOR_MEMORY)
        while not self._stop.is_set():
            size = self._page_size if remaining is None else min(self._page_size, remaining)
            if size <= 0:
                return
            page = self._source.list_events(
                resource=self._resource,
                after=after,
                types=list(self._filters.types) or None,
                subject=self._filters.subject,
                alternative_subject=self._filters.alternative_subject,
                size=size,
            )
            if page.is_empty:
                return
            events = page.events
            if remaining is not None and len(events) > remaining:
                events = events[:remaining]
            finished = False
            if stop_at is not None:
                for index, event in enumerate(events):
                    if event.id == stop_at:
                        events, finished = events[: index + 1], True
                        break
            recent.append(after)
            next_after = events[-1].id
            if next_after in recent:
                raise IngestStateError(
                    f"Altinn answered after={after!r} with a page ending at event {next_after!r}, which this run "
                    "already paged past: two events share that id, and paging by it would loop forever"
                )
            yield EventPage(events=events, after=next_after, next_url=page.next_url)
            after = next_after
            if remaining is not None:
                remaining -= len(events)
            if finished:
                return

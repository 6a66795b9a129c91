"""Shared polls: one reader per (connection, server-side query, event loop) for every trigger that waits on it.

Without it, 200 triggers waiting on one resource send 200 requests per interval, each answered with the
same page. Here the first trigger that has caught up with the service founds a :class:`_Reader` for its
connection and server-side query (``EventFilter.server_query()``: resource, types, subject, alternative
subject); the reader polls once per tick, reads to the current end and keeps a bounded *window* of the
events it read, in the service's order. Every trigger keeps its own cursor, filter, batching and failure
policy, and is handed, at its own tick, the page the service would have answered its own request with:
the window's events after its cursor (:meth:`_Reader.page_for`), given to the same ``poll_step`` as an
answer from the service. Design and figures: (docs/architecture.rst, "architecture-shared-polls") and
(docs/performance.rst, "shared-polls").

Why a window at the head and not "poll from the oldest cursor": Altinn's cursors are event ids (GUIDs)
with no order one can compare, so the oldest cursor cannot be computed. A trigger whose cursor is not in
the window (it starts at ``"0"`` or an old id, joins late, or fell behind while the window moved on) reads
on its own, with the path it always had (``_AltinnPolling._fetch_page``), until its cursor is in the window
again; then it costs no request.

Rules that keep "nothing lost" (docs/architecture.rst, "architecture-rules"):

* The window holds each event once, in the order the service gave them, from its *origin* (the cursor the
  reader started from, then the last event trimmed off) on; the reader's own ``poll_step`` drops events the
  service serves again. So "the window after event E" is what the service answers to ``after=E.id`` when
  ``E`` is the event with that ``(id, source)``.
* A cursor is served from the window only when it names an event of the window by ``(id, source)``, or
  is the origin itself (same id, same source or both unknown). A cursor whose source is unknown (a user's
  ``after`` id) matches no event of the window: Altinn resumes after the *first* event with that id, which
  may be older than the window (docs/contract.rst, "contract-paging"), so such a trigger reads on its own
  until its cursor stands on an event it read.
* An error of the reader reaches every trigger due at that tick as the same :class:`AltinnError`, which
  each judges with its own ``PollFailurePolicy`` in its own task (its log lines stay in its own log). The
  reader does not poll again before the ``Retry-After`` the service asked for (capped as a trigger caps it).
* A trigger that leaves costs nothing: the last one out stops the reader. The reader is a task of its own,
  so the triggerer cancelling one trigger never cancels a request the others wait for.

Only the standard library at import; the client core is imported by the triggers before they subscribe.
"""

from __future__ import annotations

import asyncio
import contextvars
import math
import sys
from collections import deque
from collections.abc import Hashable
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from airflow_provider_altinn_events.triggers._cadence import Cadence, tick_for

if TYPE_CHECKING:
    from airflow_provider_altinn_events.client import AsyncAltinnEventsClient, CloudEvent, EventPage
    from airflow_provider_altinn_events.client.matching import EventFilter, PollState
    from airflow_provider_altinn_events.client.polling import PollFailurePolicy

__all__ = ["WINDOW_EVENTS", "subscribe"]

WINDOW_EVENTS = 1000
"""How many of the most recent events a reader keeps (one full page of the service). A trigger whose cursor
has left the window reads on its own until it is back, so the bound costs requests, never events."""


_NO_EVENTS: deque[Any] = deque(maxlen=0)
_NOBODY: dict[Any, Any] = {}
"""The window, index and waiting triggers of a reader that was never founded: shared and always empty
(nothing is added before :meth:`_Reader.found` gives the reader its own)."""


def _wake(future: asyncio.Future[BaseException | None], outcome: BaseException | None) -> None:
    if not future.done():  # cancelled meanwhile: the trigger was stopped
        future.set_result(outcome)


class _Reader:
    """One poll per tick for every subscribed trigger of one (connection, server-side query, event loop).

    :param key: the registry key (for removal).
    :param event_filter: the server-side part of the subscribers' filters (what the reader asks for).
    :param client: the shared client of the connection; every subscriber holds a reference to it, and the
        reader lives only while it has subscribers, so it needs none of its own.
    """

    __slots__ = (
        "base",
        "cadence",
        "client",
        "closed",
        "filter",
        "index",
        "key",
        "not_before",
        "origin",
        "query",
        "requests",
        "state",
        "subscribers",
        "task",
        "tick_time",
        "unfiltered",
        "waiting",
        "window",
    )

    def __init__(self, key: Hashable, unfiltered: bool, client: AsyncAltinnEventsClient) -> None:
        # What polling needs (filter, query, window, index, the waiting triggers) is built when the reader is
        # founded: a reader that never is (a trigger alone on its query) stays a few hundred bytes.
        self.key = key
        self.filter: EventFilter | None = None
        self.query: dict[str, Any] = {}
        self.client = client
        self.subscribers: set[_Subscription] = set()
        self.waiting: dict[_Subscription, asyncio.Future[BaseException | None]] = _NOBODY
        self.state: PollState | None = None  # None until founded
        self.window: deque[CloudEvent] = _NO_EVENTS
        self.index: dict[tuple[str, str], int] = _NOBODY  # (id, source) -> absolute position in the stream
        self.unfiltered = unfiltered
        self.base = 0  # absolute position of window[0]
        self.origin: tuple[str, str | None] = ("", None)
        self.task: asyncio.Task[None] | None = None
        self.closed = False
        self.requests = 0
        self.cadence: Cadence | None = None
        self.not_before = 0.0
        self.tick_time = 0.0

    # ---- the window ------------------------------------------------------------------------------------

    @property
    def founded(self) -> bool:
        return self.state is not None and not self.closed

    def head(self) -> tuple[str, str | None]:
        """The cursor at the end of the window: its last event, or the origin when it is empty."""
        if self.window:
            last = self.window[-1]
            return last.id, last.source
        return self.origin

    def page_for(self, state: PollState) -> EventPage | None:
        """What the service would answer ``after=state.after`` with (at most ``state.page_size`` events), or
        ``None`` when the window cannot tell (see the module docstring)."""
        from airflow_provider_altinn_events.client.models import EventPage

        if not self.founded or state.seeking:
            return None
        position = None
        if state.after_source is not None:
            found = self.index.get((state.after, state.after_source))
            if found is not None:
                position = found + 1
        if position is None:
            if (state.after, state.after_source) != self.origin:
                return None
            position = self.base
        start = position - self.base
        size = state.page_size
        window = self.window
        if start >= len(window):
            return EventPage(events=(), after=state.after)
        events = tuple(window[i] for i in range(start, min(len(window), start + size)))
        return EventPage(events=events, after=state.after)

    def _append(self, events: tuple[CloudEvent, ...]) -> None:
        window, index = self.window, self.index
        for event in events:
            index[(event.id, sys.intern(event.source))] = self.base + len(window)
            window.append(event)
        while len(window) > WINDOW_EVENTS:
            gone = window.popleft()
            del index[(gone.id, gone.source)]
            self.base += 1
            self.origin = (gone.id, gone.source)

    # ---- founding, subscribers -------------------------------------------------------------------------

    def found(self, state: PollState, event_filter: EventFilter) -> None:
        """Start polling from ``state`` (the state of a subscriber with ``event_filter`` that has just caught up
        with the service)."""
        from airflow_provider_altinn_events.client.matching import EventFilter, PollState

        self.filter = EventFilter(
            resource=event_filter.resource,
            event_types=() if self.unfiltered else event_filter.event_types,
            subject=None if self.unfiltered else event_filter.subject,
            alternative_subject=event_filter.alternative_subject,
        )
        self.query = self.filter.server_query()
        self.state = PollState(after=state.after, after_source=state.after_source, ambiguous=state.ambiguous)
        self.origin = (state.after, state.after_source)
        self.window = deque()
        self.index = {}
        self.waiting = {}
        loop = asyncio.get_running_loop()
        self.cadence = Cadence(self.interval, loop)
        self.cadence.advance()
        # a context of its own: the triggerer routes log lines by the trigger id bound in each trigger task's
        # context, and the reader belongs to no one trigger
        # (create_task inside an empty context copies that one; create_task(context=...) needs Python 3.11)
        self.task = contextvars.Context().run(loop.create_task, self._run())

    @property
    def interval(self) -> float:
        return min((s.interval for s in self.subscribers), default=1.0)

    def wait(self, subscription: _Subscription) -> asyncio.Future[BaseException | None]:
        future: asyncio.Future[BaseException | None] = asyncio.get_running_loop().create_future()
        self.waiting[subscription] = future
        return future

    def leave(self, subscription: _Subscription) -> None:
        self.subscribers.discard(subscription)
        self.waiting.pop(subscription, None)
        if not self.subscribers:
            self.close()

    def close(self) -> None:
        self.closed = True
        if _READERS.get(self.key) is self:
            del _READERS[self.key]
        if self.task is not None and not self.task.done():
            self.task.cancel()
        for future in self.waiting.values():
            future.cancel()
        self.waiting = {}

    # ---- polling ---------------------------------------------------------------------------------------

    async def _run(self) -> None:
        from airflow_provider_altinn_events.exceptions import AltinnError

        assert self.cadence is not None
        loop = asyncio.get_running_loop()
        cadence = self.cadence
        try:
            while not self.closed:
                tick = cadence.tick
                alarm = loop.create_future()
                loop.call_at(cadence.due, _wake, alarm, None)
                await alarm
                self.tick_time = cadence.due
                due_by = cadence.due + tick / 2
                if any(s.due <= due_by for s in self.waiting):
                    outcome: BaseException | None = None
                    try:
                        await self._read_to_end()
                    except AltinnError as error:
                        outcome = error
                        self._respect_retry_after(error, loop.time())
                    except Exception as error:  # a bug, not the service: every subscriber raises it
                        self._fail(error)
                        return
                    for subscription, future in list(self.waiting.items()):
                        if subscription.due <= due_by:
                            del self.waiting[subscription]
                            if outcome is None:
                                subscription.failures = 0  # a good poll resets every budget it served
                            _wake(future, outcome)
                cadence.interval = self.interval
                cadence.tick = tick_for(cadence.interval)
                cadence.advance(max(0.0, self.not_before - loop.time()))
        except asyncio.CancelledError:
            pass

    async def _read_to_end(self) -> None:
        from airflow_provider_altinn_events.client.matching import poll_step

        assert self.state is not None and self.filter is not None
        state = self.state
        while True:
            self.requests += 1
            page = await self.client.list_events(after=state.after, size=state.page_size, **self.query)
            step = poll_step(state, page, self.filter, min_events=sys.maxsize)
            self._append(step.new_events)
            state = self.state = replace(step.state, matched=())
            if step.at_end:
                return

    def _respect_retry_after(self, error: BaseException, now: float) -> None:
        from airflow_provider_altinn_events.client.polling import _retry_after

        requested = _retry_after(error)  # type: ignore[arg-type]
        if requested is None:
            return
        cap = min((s.max_wait_seconds for s in self.subscribers), default=requested)
        self.not_before = now + min(requested, cap)

    def _fail(self, error: BaseException) -> None:
        waiting = list(self.waiting.values())
        self.waiting = {}
        self.closed = True
        if _READERS.get(self.key) is self:
            del _READERS[self.key]
        for future in waiting:
            _wake(future, error)


class _Subscription:
    """One trigger's place with a reader: its own cadence, failure count and policy; the trigger keeps its
    own poll state. Not a coroutine holder: waits are plain futures (hundreds of triggers sleep at once)."""

    __slots__ = ("cadence", "failures", "interval", "max_wait_seconds", "policy", "reader", "trigger")

    def __init__(self, trigger: Any, reader: _Reader | None) -> None:
        self.trigger = trigger
        self.reader = reader
        self.interval: float = trigger.poll_interval
        self.max_wait_seconds: float = trigger.max_wait_seconds
        self.cadence = Cadence(self.interval)
        self.policy: PollFailurePolicy | None = None  # built on the first failure: most waits never fail
        self.failures = 0

    @property
    def due(self) -> float:
        return self.cadence.due

    def _live_reader(self) -> _Reader | None:
        reader = self.reader
        if reader is None or reader.closed:
            return None
        return reader

    def first(self) -> asyncio.Future[None]:
        """The first poll: at a random point of the first interval (the jitter rule of ``_cadence.py``)."""
        return self.cadence.first()

    def served(self, state: PollState) -> tuple[PollState, EventPage | None]:
        """The next page for ``state`` from the reader's window, without a request, or ``None`` (then the
        trigger reads on its own). A ``"latest"`` trigger that meets a running reader starts at its head."""
        reader = self._live_reader()
        if reader is None or not reader.founded:
            return state, None
        if state.seeking:
            after, source = reader.head()
            state = replace(state, seeking=False, after=after, after_source=source)
        return state, reader.page_for(state)

    def head(self) -> tuple[str, str | None] | None:
        """The reader's head before an own request (see :meth:`read_own`)."""
        reader = self._live_reader()
        return reader.head() if reader is not None and reader.founded else None

    def read_own(self, state: PollState, page: EventPage, head: tuple[str, str | None] | None) -> PollState:
        """After a request of the trigger's own. An empty answer to ``after=X`` (source unknown) while the
        reader's head was the event ``(X, S)`` (read before the request was sent) shows that Altinn resolves
        ``X`` to that very event: had it resolved ``X`` to an earlier one, that event would have been in the
        answer. So the cursor is ``(X, S)`` and can be served from the window from now on."""
        if (
            head is not None
            and state.after_source is None
            and page.is_empty
            and head[0] == state.after
            and head[1] is not None
        ):
            return replace(state, after_source=head[1])
        return state

    def caught_up(self, state: PollState) -> None:
        """The trigger has read to the current end: found the reader if there is none yet and another
        trigger waits on the same query. A trigger alone on its query keeps polling on its own, as before
        shared polls: a reader would save it nothing and cost a task and a wake-up more per poll."""
        reader = self._live_reader()
        if (
            reader is not None
            and not reader.founded
            and len(reader.subscribers) > 1
            and not state.seeking
            and state.behind == 0
        ):
            reader.found(state, self.trigger.event_filter)

    def next(self, at_least: float = 0.0) -> asyncio.Future[BaseException | None] | asyncio.Future[None]:
        """Wait for the next poll: the reader's first tick at or after this trigger's own due time (fixed
        rate, as :meth:`Cadence.next`), or the trigger's own alarm while no reader polls. The future's
        result is ``None``, or the reader's error for :meth:`after_failure`."""
        reader = self._live_reader()
        if reader is None or not reader.founded:
            return self.cadence.next(at_least)
        self.cadence.advance(at_least)
        return reader.wait(self)

    def after_failure(
        self, error: BaseException
    ) -> asyncio.Future[BaseException | None] | asyncio.Future[None]:
        """Judge the reader's ``error`` with this trigger's policy, in the trigger's own task: raise it when
        the policy gives up, else log it and wait as the policy says (the same lines as an own poll).

        :raises BaseException: ``error``, when the policy gives up or it is not an ``AltinnError``.
        """
        from airflow_provider_altinn_events.exceptions import AltinnError

        if not isinstance(error, AltinnError):
            raise error
        trigger = self.trigger
        resource = trigger.event_filter.resource
        if self.policy is None:
            self.policy = trigger._policy()
        wait = self.policy.after_failure(error, self.failures)
        if wait is None:
            trigger.log.error(
                "Giving up on %s after %d failed poll(s) in a row: %s", resource, self.failures + 1, error
            )
            raise error
        self.failures = wait.failures
        trigger.log.warning("%s", wait.describe(resource, error, self.policy.max_consecutive_failures))
        loop = asyncio.get_running_loop()
        reader = self._live_reader()
        # the wait counts from the tick the failed poll was due at, as the fixed-rate cadence does after a good
        # one: counted from the failure, a slow failing request would push the trigger past the reader's next
        # tick and cost it a whole interval more; the reader itself waits out any Retry-After
        since = reader.tick_time if reader is not None and reader.founded else loop.time()
        self.cadence.due = math.ceil((max(since, 0.0) + wait.seconds) / self.cadence.tick) * self.cadence.tick
        if reader is None or not reader.founded:
            future: asyncio.Future[BaseException | None] = loop.create_future()
            loop.call_at(self.cadence.due, _wake, future, None)
            return future
        return reader.wait(self)

    def leave(self) -> None:
        reader = self.reader
        if reader is not None:
            reader.leave(self)
            self.reader = None


_READERS: dict[Hashable, _Reader] = {}


def subscribe(trigger: Any, client: AsyncAltinnEventsClient, *, shared: bool) -> _Subscription:
    """The trigger's subscription to the reader of its connection and server-side query in this event loop
    (a new, not yet founded reader when there is none); ``shared=False`` gives one without a reader, which
    polls exactly as a trigger did before shared polls. Pair with :meth:`_Subscription.leave` in a
    ``finally``."""
    if not shared:
        return _Subscription(trigger, None)
    loop = asyncio.get_running_loop()
    event_filter: EventFilter = trigger.event_filter
    # one read of the whole resource for triggers that differ in subject or types, each matching its own on
    # our side (EventFilter.matches re-checks them); not the default: docs/performance.rst, "shared-polls"
    unfiltered = bool(getattr(trigger, "shared_unfiltered_reads", False))
    types = () if unfiltered else event_filter.event_types
    subject = None if unfiltered else event_filter.subject
    key = (
        trigger.altinn_events_conn_id,
        event_filter.resource,
        types,
        subject,
        event_filter.alternative_subject,
        id(loop),
        id(client),
    )
    reader = _READERS.get(key)
    if reader is None or reader.closed or reader.client is not client:
        reader = _READERS[key] = _Reader(key, unfiltered, client)
    subscription = _Subscription(trigger, reader)
    reader.subscribers.add(subscription)
    return subscription

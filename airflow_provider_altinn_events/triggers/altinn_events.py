"""Triggers that wait for Altinn events in the triggerer: the sensor's one-shot trigger and the asset watcher.

Both poll ``GET /events`` with the async client and hand each page to the same pure step the sensor's
``poke()`` uses (:func:`~airflow_provider_altinn_events.client.matching.poll_step`), so the three cannot
disagree on what matches or where the cursor goes.

Shared rules (docs/architecture.rst, "architecture-rules"; docs/performance.rst, "http-stack"):

* kwargs are plain JSON and hold the connection id, never a token; ``serialize()`` names the class from
  ``type(self)`` so subclasses serialize as themselves;
* one :class:`AsyncAltinnEventsClient` per (connection id, event loop) per process (``_runtime.py``): every
  trigger of a triggerer that uses the same connection shares one connection pool and one token, and the
  client refreshes that token itself, however long the wait;
* triggers of one triggerer that read the same server-side query through the same connection share one
  request per tick (``_shared.py``): each is handed the page the service would have answered it with, from
  the reader's window, and hands it to ``poll_step`` as before; it reads on its own while its cursor is not
  in the window (docs/architecture.rst, "architecture-shared-polls");
* the first poll is spread over ``poll_interval`` (jitter), so a triggerer restart does not make every
  trigger poll at the same instant; wake-ups fall on a shared grid of ticks, so the polls due in one tick
  share the event loop's wake-ups (``_cadence.py``);
* transient errors are retried inside the client; what still fails goes to the poll-failure policy that the
  poke sensor uses too (``client/polling.py``): it counts against a consecutive-failure budget that every
  good poll resets, a rate limit (429) is not a failure, and the next poll waits
  ``max(poll_interval, Retry-After)``, the ``Retry-After`` capped at ``MAX_WAIT_SECONDS``;
* the connection's scopes are checked before the first request (``client/scopes.py``).

The client is imported lazily: DAG files import this module (watchers are built at parse time) and must not
pay for the HTTP and JWT stack.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from airflow.triggers.base import BaseEventTrigger, BaseTrigger, TriggerEvent

from airflow_provider_altinn_events._arguments import (
    check_event_filter,
    check_failures,
    check_int,
    check_min_max_events,
    check_resume_grace,
    check_seconds,
    filter_arguments,
)
from airflow_provider_altinn_events.client._constants import DEFAULT_CONN_ID, DEFAULT_POLL_INTERVAL
from airflow_provider_altinn_events.client.polling import DEFAULT_MAX_CONSECUTIVE_FAILURES, MAX_WAIT_SECONDS
from airflow_provider_altinn_events.triggers import _grace
from airflow_provider_altinn_events.triggers._runtime import _CLIENTS, _CursorStore
from airflow_provider_altinn_events.triggers._shared import subscribe

if TYPE_CHECKING:
    from airflow_provider_altinn_events.client import AsyncAltinnEventsClient, EventPage
    from airflow_provider_altinn_events.client.matching import EventFilter, PollState
    from airflow_provider_altinn_events.client.polling import PollFailurePolicy
    from airflow_provider_altinn_events.triggers._shared import _Subscription

__all__ = ["AltinnEventsSensorTrigger", "AltinnEventsWatcherTrigger"]

#: Seconds a watcher waits after yielding before it stores the cursor: the triggerer persists the event
#: asynchronously (about 1 s after the yield on Airflow 3.3.2) and sends no acknowledgement.
PERSIST_SETTLE_SECONDS = 2.0


# ---------------------------------------------------------------------------------------------------------
# Common to both triggers
# ---------------------------------------------------------------------------------------------------------


class _AltinnPolling:
    """Fetching, failure counting and logging, shared by both triggers (mixed into BaseTrigger subclasses);
    when to poll is :class:`~._cadence.Cadence`'s."""

    event_filter: EventFilter
    after: str
    poll_interval: float
    max_consecutive_failures: int
    altinn_events_conn_id: str
    max_wait_seconds: float = MAX_WAIT_SECONDS
    """The longest a ``Retry-After`` can make the next poll wait (unless ``poll_interval`` is longer); a class
    attribute, not a kwarg, so it never changes a watcher's identity."""
    permanent_errors_fail_fast = False
    """Whether an error that is not retryable (400, 403, a refused grant) ends the wait at once; if not, it
    counts against the failure budget like a transient one (see ``PollFailurePolicy.unretryable_counts``)."""
    shared_polls = True
    """Whether the trigger shares one poll per tick with the other triggers of this triggerer that read the
    same server-side query through the same connection (``_shared.py``; docs/performance.rst,
    "shared-polls"). A class attribute, not a kwarg, so it never changes a watcher's identity; set it to
    ``False`` on a subclass to poll on its own as before."""
    shared_unfiltered_reads = False
    """Whether triggers that differ only in ``subject`` or ``event_types`` share one read of the whole resource
    (fewer requests, more events read and matched here) instead of one read per server-side query. Off by
    default: measured in (docs/performance.rst, "shared-polls")."""

    @property
    def log(self) -> Any:
        """The trigger class's logger, shared by its instances (same name as Airflow's per-instance one).

        The triggerer routes each log line to its trigger's log by the ``trigger_id`` it binds in context
        variables for every trigger task, not by logger object, so one logger per class logs exactly as one
        per instance would; Airflow's default builds and keeps a bound structlog logger in every instance,
        about 1 KiB each, measured in a fleet of 500 watchers.
        """
        trigger_class: Any = type(self)  # a LoggingMixin (through BaseTrigger), which mypy cannot see here
        return trigger_class.logger()

    def _serialize(self, **own: Any) -> tuple[str, dict[str, Any]]:
        """The class path and kwargs: the filter and ``after``, then the trigger's ``own`` kwargs, then the
        failure budget and the connection. Keep the order: Airflow identifies a watcher by a hash of its
        kwargs as serialized, so reordering them would make every deployed watcher new."""
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {
                **self.event_filter.to_dict(),
                "after": self.after,
                **own,
                "max_consecutive_failures": self.max_consecutive_failures,
                "altinn_events_conn_id": self.altinn_events_conn_id,
            },
        )

    def _check_scopes(self, client: AsyncAltinnEventsClient) -> None:
        """Refuse at once when the connection does not ask for the scope reading events needs.

        :raises AltinnConfigError: ``field="scopes"``.
        """
        from airflow_provider_altinn_events.client.scopes import SUBSCRIBE, require_scope

        require_scope(client.settings, SUBSCRIBE, operation="reading events (GET /events)")

    def _policy(self) -> PollFailurePolicy:
        """This trigger's poll-failure policy (``client/polling.py``), for its own polls and the shared
        reader's alike."""
        from airflow_provider_altinn_events.client.polling import PollFailurePolicy

        return PollFailurePolicy(
            self.poll_interval,
            self.max_consecutive_failures,
            max_wait_seconds=self.max_wait_seconds,
            unretryable_counts=not self.permanent_errors_fail_fast,
        )

    async def _next_page(
        self,
        shared: _Subscription,
        client: AsyncAltinnEventsClient,
        event_filter: EventFilter,
        state: PollState,
    ) -> tuple[PollState, EventPage]:
        """The next page for ``state``: from the shared reader's window without a request when it can answer
        (``_shared.py``), else from a request of this trigger's own (:meth:`_fetch_page`), after which the
        reader may learn the cursor's source. Only suspended while a page is fetched, never during a wait."""
        state, page = shared.served(state)
        if page is None:
            head = shared.head()
            page = await self._fetch_page(client, event_filter, state)
            state = shared.read_own(state, page, head)
        return state, page

    async def _fetch_page(
        self, client: AsyncAltinnEventsClient, event_filter: EventFilter, state: PollState
    ) -> EventPage:
        """One page at ``state.after``. A failed poll (the client has already retried it) goes to the
        poll-failure policy the poke sensor uses too (``client/polling.py``): a 429 does not count, a
        transient error does, both wait at least ``Retry-After`` (capped, and the log says so); the count
        starts afresh for every page, so any good poll resets the budget.

        :raises AltinnError: ``max_consecutive_failures`` polls in a row failed, or (when
            :attr:`permanent_errors_fail_fast`) an error that is not retryable.
        """
        from airflow_provider_altinn_events.exceptions import AltinnError

        policy = self._policy()
        failures = 0
        while True:
            try:
                return await client.list_events(
                    after=state.after, size=state.page_size, **event_filter.server_query()
                )
            except AltinnError as error:
                wait = policy.after_failure(error, failures)
                if wait is None:
                    self.log.error(
                        "Giving up on %s after %d failed poll(s) in a row: %s",
                        event_filter.resource,
                        failures + 1,
                        error,
                    )
                    raise
                failures = wait.failures
                self.log.warning(
                    "%s", wait.describe(event_filter.resource, error, policy.max_consecutive_failures)
                )
                await asyncio.sleep(wait.seconds)


# ---------------------------------------------------------------------------------------------------------
# The sensor's trigger: fires once
# ---------------------------------------------------------------------------------------------------------


class AltinnEventsSensorTrigger(_AltinnPolling, BaseTrigger):
    """Wait in the triggerer until ``min_events`` matching events exist after ``after``; fire once.

    The payload (see ``_payloads.TriggerPayload``) is ``status="success"`` with the events and the cursor
    after them, or ``status="error"`` when the service refuses for good (400/403, bad credentials) or the
    consecutive-failure budget is spent. A triggerer restart re-creates the trigger from these kwargs: it
    starts again from the ``after`` it was given and finds the same events; nothing is lost.

    :param resource: ``urn:altinn:resource:...`` to read events of.
    :param event_types: ``type`` patterns (``%`` and ``_`` wildcards as the service uses them).
    :param subject: exact subject (server-side filter).
    :param alternative_subject: exact alternative subject (server-side filter).
    :param source: ``source`` pattern, matched on our side.
    :param where: declarative conditions on event fields (see ``EventFilter``).
    :param after: the cursor to start from: an event id, ``"0"`` (the start) or ``"latest"``.
    :param min_events: how many matching events end the wait (at least 1).
    :param max_events: the most events to return (at least ``min_events``); ``None`` returns all that the
        deciding page brought.
    :param poll_interval: seconds (> 0) between polls once the wait has caught up with the service; after a
        429 (or a 503 that says when to come back) the next poll waits the service's ``Retry-After`` if that
        is longer, up to ``client.polling.MAX_WAIT_SECONDS``.
    :param max_consecutive_failures: failed polls in a row (after the client's own retries) before giving up.
    :param altinn_events_conn_id: the Airflow connection to use.
    :param resume_grace: seconds after the trigger started during which a found event is held back, so the
        executor reports the deferred try's exit before the task resumes (Airflow's stale-executor-event
        race, docs/guides/sensor.rst); 0 turns it off. ``None`` (default): ``[altinn_events]
        sensor_resume_grace``, read in the triggerer, else 10 s. Serialized only when set.
    :raises AltinnConfigError: an argument is out of range (at construction, i.e. at DAG parse for a watcher).
    """

    permanent_errors_fail_fast = True

    def __init__(
        self,
        *,
        resource: str,
        event_types: Sequence[str] | str | None = None,
        subject: str | None = None,
        alternative_subject: str | None = None,
        source: str | None = None,
        where: Mapping[str, Any] | None = None,
        after: str = "0",
        min_events: int = 1,
        max_events: int | None = None,
        poll_interval: float = DEFAULT_POLL_INTERVAL,
        max_consecutive_failures: int = DEFAULT_MAX_CONSECUTIVE_FAILURES,
        altinn_events_conn_id: str = DEFAULT_CONN_ID,
        resume_grace: float | None = None,
    ) -> None:
        super().__init__()  # type: ignore[no-untyped-call]  # BaseTrigger.__init__ is unannotated (pyproject)
        from airflow_provider_altinn_events.client.matching import initial_state

        self.event_filter = check_event_filter(**filter_arguments(locals()))
        initial_state(after)  # fail at defer time on an empty cursor, not in the triggerer
        self.after = after
        self.min_events, self.max_events = check_min_max_events(min_events, max_events)
        self.poll_interval = check_seconds(poll_interval, "poll_interval")
        self.max_consecutive_failures = check_failures(max_consecutive_failures)
        self.altinn_events_conn_id = altinn_events_conn_id
        self.resume_grace = check_resume_grace(resume_grace)

    def serialize(self) -> tuple[str, dict[str, Any]]:
        # resume_grace only when set: the kwargs of triggers that do not set it stay as they were
        grace = {} if self.resume_grace is None else {"resume_grace": self.resume_grace}
        return self._serialize(
            min_events=self.min_events, max_events=self.max_events, poll_interval=self.poll_interval, **grace
        )

    async def run(self) -> AsyncIterator[TriggerEvent]:
        # One frame for the whole wait, no helper coroutine or context manager: hundreds of these sleep at once
        # in a triggerer, and each suspended frame is memory held for as long as the wait lasts.
        from airflow_provider_altinn_events._payloads import TriggerPayload
        from airflow_provider_altinn_events.client.matching import initial_state, poll_step
        from airflow_provider_altinn_events.exceptions import AltinnError

        event_filter = self.event_filter
        resource = event_filter.resource
        state = initial_state(self.after)
        conn_id = self.altinn_events_conn_id
        hold_until = _grace.resume_deadline(self.resume_grace)  # see _grace.py: Airflow's stale-exit race
        client = await _CLIENTS.acquire(conn_id)
        shared = None
        try:
            try:
                self._check_scopes(client)  # permanent: the sensor fails with the message, nothing was sent
                shared = subscribe(self, client, shared=self.shared_polls)
                await shared.first()
                while True:
                    state, page = await self._next_page(shared, client, event_filter, state)
                    step = poll_step(
                        state, page, event_filter, min_events=self.min_events, max_events=self.max_events
                    )
                    state = step.state
                    if step.done:
                        break
                    if step.at_end:
                        shared.caught_up(state)
                        outcome = await shared.next()
                        while outcome is not None:  # the reader's error, judged by this trigger's policy
                            outcome = await shared.after_failure(outcome)
            except AltinnError as error:  # refused for good, or the failure budget is spent
                payload = TriggerPayload.failure(resource, state.after, error)
            else:
                self.log.info(
                    "Found %d matching event(s) of %s after %d page(s); cursor now %s",
                    len(state.matched),
                    resource,
                    state.pages,
                    state.after,
                )
                payload = TriggerPayload.success(resource, state.after, state.matched)
        finally:
            if shared is not None:
                shared.leave()
            await _CLIENTS.release(conn_id, client)
        await _grace.hold(hold_until, self.log, resource)
        yield TriggerEvent(payload.to_dict())


# ---------------------------------------------------------------------------------------------------------
# The asset watcher: runs for as long as the asset is watched
# ---------------------------------------------------------------------------------------------------------


class AltinnEventsWatcherTrigger(_AltinnPolling, BaseEventTrigger):
    """Watch a resource for an ``AssetWatcher``: one ``TriggerEvent`` per poll that found new matching events.

    Each event carries up to ``max_events_per_trigger_event`` whole Altinn events in the service's order
    (``status="events"``), so a DAG reads them from ``triggering_asset_events[...].extra["payload"]["events"]``.
    Batching per poll is deliberate: Airflow folds asset events that arrive close together into one DAG run.

    The cursor lives in the trigger's asset state store (Airflow 3.3) and is written once the yielded event had
    time to be stored (``PERSIST_SETTLE_SECONDS`` after the yield), so a triggerer restart or a DAG re-parse resumes after the last events emitted. There is no
    acknowledgement: an event yielded just before a crash can be emitted again (at least once); consumers
    dedupe by event id. On Airflow 3.0 to 3.2 the cursor is kept in an Airflow Variable instead
    (docs/compatibility.rst); where neither is reachable, in memory (one log line says so).

    :param after: where a watcher without a stored cursor starts: ``"latest"`` (default; only new events),
        ``"0"`` (the whole retained history) or an event id.
    :param max_events_per_trigger_event: the most Altinn events in one ``TriggerEvent`` (1 gives one asset
        event per Altinn event); the rest follow one poll later.
    :param cursor_key: the state-store key; set it when two watchers of one asset read the same resource.
    :param max_consecutive_failures: failed polls in a row before the trigger raises (the triggerer then
        restarts it; the stored cursor makes that safe).

    The filter arguments, ``poll_interval`` and ``altinn_events_conn_id`` are as for
    :class:`AltinnEventsSensorTrigger`.
    """

    def __init__(
        self,
        *,
        resource: str,
        event_types: Sequence[str] | str | None = None,
        subject: str | None = None,
        alternative_subject: str | None = None,
        source: str | None = None,
        where: Mapping[str, Any] | None = None,
        after: str = "latest",
        poll_interval: float = DEFAULT_POLL_INTERVAL,
        max_events_per_trigger_event: int = 100,
        cursor_key: str | None = None,
        max_consecutive_failures: int = DEFAULT_MAX_CONSECUTIVE_FAILURES,
        altinn_events_conn_id: str = DEFAULT_CONN_ID,
    ) -> None:
        super().__init__()  # type: ignore[no-untyped-call]  # BaseEventTrigger.__init__ is unannotated
        from airflow_provider_altinn_events._compat import decode_watcher_argument
        from airflow_provider_altinn_events.client.matching import initial_state

        where = decode_watcher_argument(where)  # Airflow 3.2 hands it over still encoded (_compat)
        self.event_filter = check_event_filter(**filter_arguments(locals()))
        initial_state(after)  # fail at DAG parse on an empty cursor, not in the triggerer
        self.after = after
        self.poll_interval = check_seconds(poll_interval, "poll_interval")
        self.max_events_per_trigger_event = check_int(
            max_events_per_trigger_event, "max_events_per_trigger_event", minimum=1, lenient=True
        )
        self.cursor_key = cursor_key or f"altinn_events.after:{resource}"
        self.max_consecutive_failures = check_failures(max_consecutive_failures)
        self.altinn_events_conn_id = altinn_events_conn_id

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return self._serialize(
            poll_interval=self.poll_interval,
            max_events_per_trigger_event=self.max_events_per_trigger_event,
            cursor_key=self.cursor_key,
        )

    async def run(self) -> AsyncIterator[TriggerEvent]:
        from airflow_provider_altinn_events._payloads import TriggerPayload
        from airflow_provider_altinn_events.client.matching import initial_state, poll_step

        event_filter = self.event_filter
        resource = event_filter.resource
        cursor = _CursorStore(
            getattr(self, "asset_state_store", None), self.cursor_key, self.log, watcher=self
        )
        stored = await cursor.load()
        state = initial_state(stored or self.after)
        self.log.info(
            "Watching %s from %s (%s)",
            resource,
            state.after if stored else self.after,
            "stored" if stored else "start",
        )
        batch = self.max_events_per_trigger_event
        conn_id = self.altinn_events_conn_id
        client = await _CLIENTS.acquire(conn_id)  # see the sensor trigger: no context-manager frame
        shared = None
        try:
            self._check_scopes(client)  # raises: a watcher fails like on any permanent error
            shared = subscribe(self, client, shared=self.shared_polls)
            await shared.first()
            while True:
                state, page = await self._next_page(shared, client, event_filter, state)
                step = poll_step(state, page, event_filter, min_events=batch, max_events=batch)
                state = step.state
                if step.done or (step.at_end and state.matched):
                    yield TriggerEvent(TriggerPayload.batch(resource, state.after, state.matched).to_dict())
                    self.log.info(
                        "Emitted %d event(s) of %s; cursor %s", len(state.matched), resource, state.after
                    )
                    state = state.handed_over()
                    if step.at_end:
                        shared.caught_up(state)
                    # The triggerer stores a yielded event about a second later and never acknowledges it. A
                    # cursor written at once could get ahead of an event that a triggerer stopped in that second
                    # never stored (measured: lost). Write it only after the event had time to be stored, so a
                    # stop in between re-emits the batch instead (at least once, never skip).
                    outcome = await shared.next(at_least=PERSIST_SETTLE_SECONDS)
                    await self._save(cursor, state.after)
                    while outcome is not None:  # the reader's error, judged by this trigger's policy
                        outcome = await shared.after_failure(outcome)
                elif step.at_end:  # nothing to emit: e.g. the end found for "latest", or skipped events
                    await self._save(cursor, state.after)
                    shared.caught_up(state)
                    outcome = await shared.next()
                    while outcome is not None:
                        outcome = await shared.after_failure(outcome)
        finally:
            if shared is not None:
                shared.leave()
            await _CLIENTS.release(conn_id, client)

    async def _save(self, cursor: _CursorStore, after: str) -> None:
        try:
            await cursor.save(after)
        except Exception as error:  # the store is best effort; the in-memory cursor keeps the loop correct
            self.log.warning("Could not store cursor %s under %r: %s", after, cursor.key, error)

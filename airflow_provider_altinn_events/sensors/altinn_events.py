"""``AltinnEventsSensor``: wait until matching Altinn events exist, in poke mode or deferred to the triggerer.

Both modes run the same pure poll step (``client/matching.py``); they only differ in where the loop runs.
The client and hook are imported lazily so that DAG parsing does not load the HTTP and JWT stack.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from datetime import timedelta
from functools import cached_property
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseSensorOperator, PokeReturnValue

from airflow_provider_altinn_events._compat import AirflowException, conf, sensor_timeout
from airflow_provider_altinn_events.exceptions import AltinnConfigError

if TYPE_CHECKING:
    from airflow.sdk import Context

    from airflow_provider_altinn_events.client import AltinnEventsClient, EventPage
    from airflow_provider_altinn_events.client.matching import EventFilter, PollState
    from airflow_provider_altinn_events.hooks.altinn_events import AltinnEventsHook

__all__ = ["AltinnEventsSensor"]

AFTER_XCOM_KEY = "after"


class AltinnEventsSensor(BaseSensorOperator):  # type: ignore[misc]  # Airflow's classes are untyped for mypy here
    """Wait until ``min_events`` events matching the filter appear after ``after``; return them.

    The return value (XCom ``return_value``) is the list of matching events, each a CloudEvent dict exactly as
    Altinn sent it. The cursor after them is pushed under the XCom key ``after``: pass it as the next run's
    ``after`` (e.g. ``after="{{ prev_ti_xcom... }}"`` or via a Variable) to continue where this run stopped.

    With ``deferrable=True`` the sensor checks once on the worker and then defers to
    :class:`~airflow_provider_altinn_events.triggers.altinn_events.AltinnEventsSensorTrigger`, holding no
    worker slot while it waits. Otherwise it polls from the worker (``mode="poke"``); ``mode="reschedule"``
    keeps no state between pokes and so cannot be used with ``after="latest"``.

    :param resource: ``urn:altinn:resource:...`` to read events of (templated).
    :param event_types: event ``type`` patterns; the service's ``%`` and ``_`` wildcards work (templated).
    :param subject: exact ``subject`` (server-side filter; templated).
    :param alternative_subject: exact ``alternativesubject`` (server-side; not together with ``subject``).
    :param source: ``source`` pattern, matched on our side (templated).
    :param where: declarative conditions on event fields by dotted path, e.g.
        ``{"data.status": "completed", "subject": {"prefix": "/party/"}}`` (templated; see ``EventFilter``).
    :param after: the cursor to start from (templated): an event id, ``"0"`` (default: the start of the
        retained history) or ``"latest"`` (only events that appear after the sensor starts; finding the current
        end reads the retained history once, one request per 1000 events that pass the service's filters).
    :param min_events: how many matching events end the wait.
    :param max_events: the most events to return; ``None`` returns every match of the page that ended the wait.
        Events past the limit are not skipped: the ``after`` cursor stops before them.
    :param poll_interval: seconds (> 0) between polls once caught up (the sensor's ``poke_interval``). After a
        429 the next poll waits the service's ``Retry-After`` if that is longer; rate limits are not failures.
    :param timeout: seconds before the sensor fails (or skips with ``soft_fail``).
    :param deferrable: wait in the triggerer; default from ``[operators] default_deferrable``.
    :param max_consecutive_failures: polls in a row that may fail with a transient error (after the client's
        own retries) before the sensor fails; permanent errors (400, 403, bad credentials) fail at once.
    :param altinn_events_conn_id: the Airflow connection to use.
    """

    template_fields: Sequence[str] = (
        "resource",
        "event_types",
        "subject",
        "alternative_subject",
        "source",
        "where",
        "after",
        "altinn_events_conn_id",
    )
    ui_color = "#e8f0fb"

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
        poll_interval: float = 30.0,
        timeout: float | timedelta | None = None,
        deferrable: bool = conf.getboolean("operators", "default_deferrable", fallback=False),
        max_consecutive_failures: int = 5,
        altinn_events_conn_id: str = "altinn_events_default",
        **kwargs: Any,
    ) -> None:
        kwargs.setdefault("poke_interval", poll_interval)
        super().__init__(timeout=sensor_timeout(timeout), **kwargs)
        if min_events < 1:
            raise ValueError("min_events must be at least 1")
        if max_events is not None and max_events < min_events:
            raise ValueError("max_events must be at least min_events")
        self.resource = resource
        self.event_types = event_types
        self.subject = subject
        self.alternative_subject = alternative_subject
        self.source = source
        self.where = where
        self.after = after
        self.min_events = min_events
        self.max_events = max_events
        self.poll_interval = float(self.poke_interval)
        if not self.poll_interval > 0:  # also NaN; 0 would poll Altinn in a tight loop
            raise AltinnConfigError(
                f"poll_interval must be a number of seconds > 0, e.g. 30; got {self.poll_interval!r}",
                field="poll_interval",
            )
        self.deferrable = deferrable
        self.max_consecutive_failures = max(1, max_consecutive_failures)
        self.altinn_events_conn_id = altinn_events_conn_id
        self._state: PollState | None = None
        self._filter: EventFilter | None = None
        self._unmatched_after: str | None = None
        self._failures = 0
        self._resume_at: float | None = None  # monotonic time before which a rate-limited poke sends nothing

    @cached_property
    def hook(self) -> AltinnEventsHook:
        from airflow_provider_altinn_events.hooks.altinn_events import AltinnEventsHook

        return AltinnEventsHook(altinn_events_conn_id=self.altinn_events_conn_id)

    # -- Airflow entry points ------------------------------------------------------------------------------

    def execute(self, context: Context) -> Any:
        from airflow_provider_altinn_events.client.matching import LATEST

        self._reset()
        try:
            if not self.deferrable and self.reschedule and str(self.after).strip() == LATEST:
                raise AltinnConfigError(
                    'after="latest" needs the sensor to remember its place between pokes; use mode="poke" or '
                    "deferrable=True",
                    field="after",
                )
            self._check_scopes()
            if self.deferrable:
                return self._execute_deferrable(context)
            return super().execute(context)
        finally:
            self._close()

    def poke(self, context: Context) -> bool | PokeReturnValue:
        """Read pages from the cursor until enough events match or the service has nothing newer."""
        from airflow_provider_altinn_events.client.matching import poll_step
        from airflow_provider_altinn_events.exceptions import AltinnError, AltinnRateLimitError

        state, event_filter = self._current()
        if self._resume_at is not None:
            if time.monotonic() < self._resume_at:
                self.log.info(
                    "Altinn asked for a pause (Retry-After); not polling %s for another %.0f s",
                    event_filter.resource,
                    self._resume_at - time.monotonic(),
                )
                return False
            self._resume_at = None
        client = self._get_client()
        while True:
            try:
                page = client.list_events(
                    after=state.after, size=state.page_size, **event_filter.server_query()
                )
            except AltinnRateLimitError as error:
                # The service asks us to slow down: not a failure, so the budget is not spent; honour the
                # pause it asked for (at poke granularity: pokes before it ends send nothing).
                pause = max(self.poll_interval, error.retry_after or 0.0)
                self._resume_at = time.monotonic() + pause
                self.log.warning(
                    "Altinn is rate limiting %s (HTTP 429%s); next poll in %.0f s or later: %s",
                    event_filter.resource,
                    f", Retry-After {error.retry_after:g} s" if error.retry_after is not None else "",
                    pause,
                    error,
                )
                return False
            except AltinnError as error:
                self._failures += 1
                if not error.retryable or self._failures >= self.max_consecutive_failures:
                    raise
                self.log.warning(
                    "Polling %s failed (%d of %d allowed in a row); trying again at the next poke: %s",
                    event_filter.resource,
                    self._failures,
                    self.max_consecutive_failures,
                    error,
                )
                return False
            self._failures = 0
            before = state
            step = poll_step(
                state, page, event_filter, min_events=self.min_events, max_events=self.max_events
            )
            state = self._state = step.state
            if not before.matched and step.new_events:
                self._unmatched_after = _cursor_before(page, step.new_events[0].id, before.after)
            if step.done:
                return PokeReturnValue(is_done=True, xcom_value=self._deliver(context, state))
            if step.at_end:
                self.log.info(
                    "No %s yet on %s (%d of %d found); cursor %s",
                    "new events" if not state.matched else "further events",
                    event_filter.resource,
                    len(state.matched),
                    self.min_events,
                    state.after,
                )
                return False

    def execute_complete(self, context: Context, event: dict[str, Any]) -> list[dict[str, Any]]:
        """Resume after the trigger fired: return its events, or fail with the error it reported."""
        from airflow_provider_altinn_events._payloads import TriggerPayload, TriggerStatus

        payload = TriggerPayload.from_dict(event)
        if payload.status is TriggerStatus.ERROR:
            error = payload.error
            assert error is not None  # from_dict guarantees it for ERROR
            status = f" (HTTP {error.status_code})" if error.status_code else ""
            raise AirflowException(
                f"Waiting for Altinn events of {payload.resource} failed with {error.type}{status}: "
                f"{error.message}. The wait had reached cursor {payload.after!r}."
            )
        context["ti"].xcom_push(key=AFTER_XCOM_KEY, value=payload.after)
        self.log.info(
            "Trigger found %d event(s) of %s; cursor %s", len(payload.events), payload.resource, payload.after
        )
        return [dict(e) for e in payload.events]

    # -- internals --------------------------------------------------------------------------------------------

    def _execute_deferrable(self, context: Context) -> Any:
        from airflow_provider_altinn_events.triggers.altinn_events import AltinnEventsSensorTrigger

        result = self.poke(context)  # one check on the worker: returns at once if the events already exist
        if isinstance(result, PokeReturnValue) and result:
            return result.xcom_value
        state, event_filter = self._current()
        # Everything read so far either did not match (safe to skip) or gave too few matches: then start
        # right before the first match so the trigger finds the same events again.
        start = self._unmatched_after if state.matched and self._unmatched_after else state.after
        self._close()
        self.log.info(
            "Deferring: waiting in the triggerer for events of %s after %s", event_filter.resource, start
        )
        self.defer(
            trigger=AltinnEventsSensorTrigger(
                **event_filter.to_dict(),  # the filter's keys are the trigger's filter arguments
                after=start,
                min_events=self.min_events,
                max_events=self.max_events,
                poll_interval=self.poll_interval,
                max_consecutive_failures=self.max_consecutive_failures,
                altinn_events_conn_id=self.altinn_events_conn_id,
            ),
            method_name="execute_complete",
            timeout=timedelta(seconds=self.timeout),
        )

    def _current(self) -> tuple[PollState, EventFilter]:
        """The state and filter of this wait, built on the first poke (after templates were rendered)."""
        from airflow_provider_altinn_events.client.matching import EventFilter, initial_state

        if self._state is None or self._filter is None:
            self._filter = EventFilter.from_arguments(
                resource=self.resource,
                event_types=self.event_types,
                subject=self.subject or None,
                alternative_subject=self.alternative_subject or None,
                source=self.source or None,
                where=self.where,
            )
            # None stays None (refused with the allowed values) instead of becoming the cursor "None"
            self._state = initial_state(self.after if self.after is None else str(self.after))
        return self._state, self._filter

    def _check_scopes(self) -> None:
        """Refuse at once when the connection does not ask for the scope reading events needs (instead of a
        grant, an exchange and a 403)."""
        from airflow_provider_altinn_events.client.scopes import SUBSCRIBE, require_scope

        require_scope(self.hook.get_settings(), SUBSCRIBE, operation="reading events (GET /events)")

    def _deliver(self, context: Context, state: PollState) -> list[dict[str, Any]]:
        context["ti"].xcom_push(key=AFTER_XCOM_KEY, value=state.after)
        self.log.info(
            "Found %d matching event(s) after reading %d page(s) (%d events); cursor %s",
            len(state.matched),
            state.pages,
            state.events_read,
            state.after,
        )
        return [event.to_dict() for event in state.matched]

    def _get_client(self) -> AltinnEventsClient:
        return self.hook.get_conn()  # created once and cached on the hook: one token for every poke

    def _reset(self) -> None:
        self._state, self._filter, self._unmatched_after, self._failures = None, None, None, 0
        self._resume_at = None

    def _close(self) -> None:
        if "hook" in self.__dict__:
            self.hook.close()


def _cursor_before(page: EventPage, event_id: str, default: str) -> str:
    """The cursor just before ``event_id`` in ``page`` (``default`` when it is the page's first event)."""
    previous = default
    for event in page.events:
        if event.id == event_id:
            return previous
        previous = event.id
    return default

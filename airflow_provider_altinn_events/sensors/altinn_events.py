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

from airflow_provider_altinn_events._arguments import (
    check_event_filter,
    check_failures,
    check_min_max_events,
    check_resume_grace,
    check_seconds,
    filter_arguments,
    is_templated,
)
from airflow_provider_altinn_events._boundary import permanent_errors_fail_task, task_failure
from airflow_provider_altinn_events._compat import conf, sensor_timeout
from airflow_provider_altinn_events.client._constants import DEFAULT_CONN_ID, DEFAULT_POLL_INTERVAL
from airflow_provider_altinn_events.client.matching import FILTER_FIELDS
from airflow_provider_altinn_events.client.polling import DEFAULT_MAX_CONSECUTIVE_FAILURES, MAX_WAIT_SECONDS
from airflow_provider_altinn_events.exceptions import AltinnConfigError

if TYPE_CHECKING:
    from airflow.sdk import Context

    from airflow_provider_altinn_events.client import AltinnEventsClient, EventPage
    from airflow_provider_altinn_events.client.matching import EventFilter, PollState, PollStep
    from airflow_provider_altinn_events.hooks.altinn_events import AltinnEventsHook

__all__ = ["AltinnEventsSensor"]

AFTER_XCOM_KEY = "after"


class AltinnEventsSensor(BaseSensorOperator):
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
        429, or a 503 that says when to come back, the next poll waits the service's ``Retry-After`` if that
        is longer, up to ``client.polling.MAX_WAIT_SECONDS`` (15 min); rate limits are not failures.
    :param timeout: seconds before the sensor fails (or skips with ``soft_fail``).
    :param deferrable: wait in the triggerer; default from ``[operators] default_deferrable``.
    :param max_consecutive_failures: polls in a row that may fail with a transient error (after the client's
        own retries) before the sensor fails (default 10, as for the triggers); permanent errors (400, 403,
        bad credentials, bad arguments) fail the task at once, without Airflow's retries, in both modes.
    :param altinn_events_conn_id: the Airflow connection to use.
    :param resume_grace: deferrable only: seconds after the trigger starts during which events it finds are
        held back before the task resumes, so that Airflow's scheduler does not fail the task on the stale
        report of the deferred try's exit (docs/guides/sensor.rst, "Troubleshooting"); 0 turns it off.
        ``None`` (default) uses ``[altinn_events] sensor_resume_grace`` in the triggerer, else 10 s. Events
        found later than that are not delayed.
    :raises AltinnConfigError: an argument is out of range, or a filter argument that is not a template is
        invalid (at construction, i.e. when the DAG file is imported).
    """

    template_fields: Sequence[str] = (*FILTER_FIELDS, "after", "altinn_events_conn_id")
    ui_color = "#e8f0fb"
    resource: str  # set with the other filter fields in __init__ (one attribute per EventFilter field)
    max_wait_seconds: float = MAX_WAIT_SECONDS
    """The longest a ``Retry-After`` can pause polling (unless ``poll_interval`` is longer), as in the triggers."""

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
        timeout: float | timedelta | None = None,
        deferrable: bool = conf.getboolean("operators", "default_deferrable", fallback=False),
        max_consecutive_failures: int = DEFAULT_MAX_CONSECUTIVE_FAILURES,
        altinn_events_conn_id: str = DEFAULT_CONN_ID,
        resume_grace: float | None = None,
        **kwargs: Any,
    ) -> None:
        filters = filter_arguments(locals())  # one per EventFilter field, each templated
        kwargs.setdefault("poke_interval", poll_interval)
        interval = kwargs["poke_interval"]
        # before Airflow's own check, which would refuse a negative interval with a plain ValueError
        check_seconds(
            interval.total_seconds() if isinstance(interval, timedelta) else interval, "poll_interval"
        )
        super().__init__(timeout=sensor_timeout(timeout), **kwargs)
        self.min_events, self.max_events = check_min_max_events(min_events, max_events)
        self.max_consecutive_failures = check_failures(max_consecutive_failures)
        if not is_templated(filters):  # templates are checked once rendered, before the first poll
            check_event_filter(**filters)
        if not is_templated(after):
            from airflow_provider_altinn_events.client.matching import initial_state

            initial_state(after)
        for name, value in filters.items():
            setattr(self, name, value)
        self.after = after
        self.poll_interval = float(self.poke_interval)
        self.deferrable = deferrable
        self.altinn_events_conn_id = altinn_events_conn_id
        self.resume_grace = check_resume_grace(resume_grace)
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
            with permanent_errors_fail_task(f"Waiting for Altinn events of {self.resource} failed: "):
                if not self.deferrable and self.reschedule and str(self.after).strip() == LATEST:
                    raise AltinnConfigError(
                        'after="latest" needs the sensor to remember its place between pokes; use mode="poke" '
                        "or deferrable=True",
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
        from airflow_provider_altinn_events.client.polling import PollFailurePolicy
        from airflow_provider_altinn_events.exceptions import AltinnError

        state, event_filter = self._current()
        if self._resume_at is not None:
            if time.monotonic() < self._resume_at:
                self.log.info(
                    "Waiting out a failed poll or a pause Altinn asked for; not polling %s for another %.0f s",
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
            except AltinnError as error:
                # The triggers' rule (client/polling.py): a 429 does not count, a transient error does, both
                # wait at least Retry-After (capped); anything else, or a spent budget, raises. The pause is
                # kept at poke granularity: pokes before it ends send nothing.
                policy = PollFailurePolicy(
                    self.poll_interval, self.max_consecutive_failures, max_wait_seconds=self.max_wait_seconds
                )
                wait = policy.after_failure(error, self._failures)
                if wait is None:
                    self.log.error(
                        "Giving up on %s after %d failed poll(s) in a row: %s",
                        event_filter.resource,
                        self._failures + 1,
                        error,
                    )
                    raise
                self._failures = wait.failures
                if wait.seconds > self.poll_interval:
                    self._resume_at = time.monotonic() + wait.seconds
                self.log.warning(
                    "%s", wait.describe(event_filter.resource, error, self.max_consecutive_failures)
                )
                return False
            self._failures = 0
            before = state
            step = poll_step(
                state, page, event_filter, min_events=self.min_events, max_events=self.max_events
            )
            state = self._state = step.state
            if not before.matched and step.new_events:
                self._unmatched_after = _cursor_before(before, step, page, event_filter)
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
        """Resume after the trigger fired: return its events, or fail with the error it reported (at once,
        without Airflow's retries, when the error was permanent, as in poke mode)."""
        from airflow_provider_altinn_events._payloads import TriggerPayload, TriggerStatus

        payload = TriggerPayload.from_dict(event)
        if payload.status is TriggerStatus.ERROR:
            error = payload.error
            assert error is not None  # from_dict guarantees it for ERROR
            status = f" (HTTP {error.status_code})" if error.status_code else ""
            raise task_failure(
                f"Waiting for Altinn events of {payload.resource} failed with {error.type}{status}: "
                f"{error.message}. The wait had reached cursor {payload.after!r}.",
                permanent=error.permanent,
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
                resume_grace=self.resume_grace,
            ),
            method_name="execute_complete",
            timeout=timedelta(seconds=self.timeout),
        )

    def _current(self) -> tuple[PollState, EventFilter]:
        """The state and filter of this wait, built on the first poke (after templates were rendered)."""
        from airflow_provider_altinn_events.client.matching import initial_state

        if self._state is None or self._filter is None:
            # a template that rendered empty ("") means the field's default, as None does
            self._filter = check_event_filter(**{name: getattr(self, name) or None for name in FILTER_FIELDS})
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


def _cursor_before(before: PollState, step: PollStep, page: EventPage, event_filter: EventFilter) -> str:
    """The cursor the wait had right before the first event ``step`` kept from ``page``.

    The same poll step replayed on the part of the page before that event, so the cursor follows the same
    rules (never an id that several events share: ``after=<id>`` resumes after the first of them), and a
    trigger started from it finds that event again. Ids ``step`` found shared are known to the replay, so it
    logs nothing twice.
    """
    from dataclasses import replace

    from airflow_provider_altinn_events.client.matching import poll_step
    from airflow_provider_altinn_events.client.models import EventPage

    first = step.new_events[0]
    index = next(i for i, event in enumerate(page.events) if event is first)
    if index == 0:
        return before.after
    head = EventPage(events=page.events[:index], after=page.events[index - 1].id)
    return poll_step(replace(before, ambiguous=step.state.ambiguous), head, event_filter).state.after

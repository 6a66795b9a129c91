"""Operators that publish events to Altinn: generic CloudEvents (POST /events) and app events (POST /app).

Both check every event before the first request (a batch goes out whole-checked or not at all), publish a
list with bounded concurrency on the async client, and on a failure say which events went out and which did
not. Generic events get an id that stays the same across retries of one task instance, so a retry re-sends
the same ids and Altinn drops the duplicates by their (id, source) pair; app events get their id from
Altinn and are therefore *not* safe to re-send (see :class:`AltinnEventsPublishAppEventOperator`).

The client and hook are imported inside ``execute``: DAG files import this module on every parse.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import uuid
from collections.abc import Awaitable, Callable, Coroutine, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

from airflow.sdk import BaseOperator

from airflow_provider_altinn_events._arguments import check_int
from airflow_provider_altinn_events._boundary import is_permanent, permanent_errors_fail_task
from airflow_provider_altinn_events._compat import AirflowException, AirflowFailException
from airflow_provider_altinn_events.client._constants import DEFAULT_CONN_ID
from airflow_provider_altinn_events.exceptions import AltinnForbiddenError

if TYPE_CHECKING:
    from airflow.sdk import Context

    from airflow_provider_altinn_events.client.settings import AltinnSettings

__all__ = [
    "AltinnEventsPublishAppEventOperator",
    "AltinnEventsPublishError",
    "AltinnEventsPublishOperator",
    "AltinnEventsPublishRejectedError",
    "event_id_for",
]

T = TypeVar("T")
R = TypeVar("R")

#: Namespace of the ids this provider derives for events that come without one (uuid5, stable forever:
#: changing it would make a retry after an upgrade re-publish events under new ids).
EVENT_ID_NAMESPACE = uuid.uuid5(
    uuid.NAMESPACE_URL, "https://pypi.org/project/airflow-provider-altinn-events/#event-id"
)
_LISTED_IDS = 20


def event_id_for(dag_id: str, task_id: str, run_id: str, map_index: int | None, position: int) -> str:
    """The id given to the event at ``position`` of a task instance's list when it has none.

    A uuid5 over the task instance's identity and the position, so every try of the task instance (an Airflow
    retry, a cleared task) sends the same ids and Altinn keeps each event once. To publish an event again in
    the same run, give it an explicit ``id``.
    """
    key = "\x1f".join((dag_id, task_id, run_id, str(-1 if map_index is None else map_index), str(position)))
    return str(uuid.uuid5(EVENT_ID_NAMESPACE, key))


class AltinnEventsPublishError(AirflowException):
    """Publishing a list of events failed part-way.

    An event is *not confirmed* when its request went out but no answer came (a read timeout, a dropped
    connection): Altinn may have stored it. It is listed in ``unconfirmed_*`` and, because it still has to
    be sent again to be sure, also in ``not_published_*`` (everything not confirmed as published, as before).
    For generic events re-sending is safe (same ids); app events get a new id each time.

    :param published_ids: ids of the events Altinn accepted, in input order.
    :param not_published_ids: ids of the events not confirmed as published, i.e. not published or not
        confirmed (app events: empty, their ids are assigned by Altinn on success).
    :param published_indices: positions in the input list of the published events.
    :param not_published_indices: positions in the input list of the events not confirmed as published.
    :param unconfirmed_ids: the ids among ``not_published_ids`` whose outcome is unknown.
    :param unconfirmed_indices: the positions among ``not_published_indices`` whose outcome is unknown.
    """

    def __init__(
        self,
        message: str,
        *,
        published_ids: Sequence[str],
        not_published_ids: Sequence[str],
        published_indices: Sequence[int],
        not_published_indices: Sequence[int],
        unconfirmed_ids: Sequence[str] = (),
        unconfirmed_indices: Sequence[int] = (),
    ) -> None:
        super().__init__(message)
        self.published_ids = list(published_ids)
        self.not_published_ids = list(not_published_ids)
        self.published_indices = list(published_indices)
        self.not_published_indices = list(not_published_indices)
        self.unconfirmed_ids = list(unconfirmed_ids)
        self.unconfirmed_indices = list(unconfirmed_indices)


class AltinnEventsPublishRejectedError(AltinnEventsPublishError, AirflowFailException):
    """Publishing failed with an error a retry cannot fix (400, 403, refused credentials, bad configuration;
    the error's ``permanent`` flag): no Airflow retry."""


@dataclass
class _Outcome:
    """What happened to each event of a batch, by position."""

    results: dict[int, Any] = field(default_factory=dict)
    errors: dict[int, BaseException] = field(default_factory=dict)

    @property
    def first_error(self) -> tuple[int, BaseException] | None:
        return min(self.errors.items(), key=lambda item: item[0]) if self.errors else None


async def _publish_concurrently(
    items: Sequence[T], send: Callable[[T], Awaitable[R]], max_concurrency: int
) -> _Outcome:
    """Send ``items`` with at most ``max_concurrency`` requests in flight; stop starting new ones at the first
    failure (the error is usually the same for the rest), let those in flight finish."""
    outcome = _Outcome()
    pending = iter(enumerate(items))

    async def worker() -> None:
        for position, item in pending:  # one shared iterator: each item is taken by exactly one worker
            if outcome.errors:
                return
            try:
                outcome.results[position] = await send(item)
            except Exception as error:
                outcome.errors[position] = error
                return

    await asyncio.gather(*(worker() for _ in range(min(max_concurrency, len(items)))))
    return outcome


def _run_coroutine(coroutine: Coroutine[Any, Any, T]) -> T:
    """Run ``coroutine`` to the end from synchronous code, also when this thread already runs a loop."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coroutine)
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coroutine).result()


def _outcome_unknown(error: BaseException) -> bool:
    """Whether the request may have reached Altinn although no answer came: a transport error other than a
    refused connection, or one after several attempts (an earlier one may have timed out after sending)."""
    from airflow_provider_altinn_events.exceptions import AltinnTransportError

    return isinstance(error, AltinnTransportError) and (error.request_sent is not False or error.attempts > 1)


def _listing(values: Sequence[Any]) -> str:
    shown = ", ".join(str(value) for value in values[:_LISTED_IDS])
    more = len(values) - _LISTED_IDS
    return f"[{shown}{f', ... and {more} more' if more > 0 else ''}]"


class _PublishBase(BaseOperator):
    """What both publish operators share: argument checks, the batch loop and the failure report."""

    template_fields: Sequence[str] = ("event", "altinn_events_conn_id")
    template_fields_renderers: ClassVar[dict[str, str]] = {"event": "json"}
    ui_color = "#e4f0e8"
    _what = "event"

    def __init__(
        self,
        *,
        event: Mapping[str, Any] | Sequence[Mapping[str, Any]] | str,
        altinn_events_conn_id: str = DEFAULT_CONN_ID,
        max_concurrency: int = 8,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.event = event
        self.altinn_events_conn_id = altinn_events_conn_id
        self.max_concurrency = check_int(max_concurrency, "max_concurrency", minimum=1)

    def _prepare(
        self, prepare: Callable[[Mapping[str, Any], int, str], dict[str, Any]]
    ) -> list[dict[str, Any]]:
        """The ``event`` argument as a list of events ready to send, each made by ``prepare(raw, position,
        field)`` (``field`` names the event in errors); if one is invalid, none is sent."""
        from airflow_provider_altinn_events.client.validation import coerce_event_list

        with permanent_errors_fail_task("Nothing was published: "):
            raw_events = coerce_event_list(self.event)
            name = "event" if len(raw_events) == 1 else "event[{}]"
            return [prepare(raw, i, name.format(i)) for i, raw in enumerate(raw_events)]

    def _send_all(self, events: list[dict[str, Any]], send: Callable[[Any, dict[str, Any]], Any]) -> _Outcome:
        """One event on the hook's sync client; a list on the async client with bounded concurrency.

        :param send: ``send(client, event)`` publishes one event; the two clients have the same methods, so
            the same call serves both (on the async client it returns an awaitable).
        """
        from airflow_provider_altinn_events.hooks.altinn_events import AltinnEventsHook

        hook = AltinnEventsHook(altinn_events_conn_id=self.altinn_events_conn_id)
        with permanent_errors_fail_task(
            f"Nothing was published: connection {self.altinn_events_conn_id!r} is invalid: "
        ):
            settings = hook.get_settings()
            self._check_scopes(settings)
        if len(events) == 1 or self.max_concurrency == 1:
            outcome = _Outcome()
            try:
                client = hook.get_conn()
                for position, event in enumerate(events):
                    try:
                        outcome.results[position] = send(client, event)
                    except Exception as error:
                        outcome.errors[position] = error
                        break
            finally:
                hook.close()
            return outcome

        async def publish_all() -> _Outcome:
            from airflow_provider_altinn_events.client import AsyncAltinnEventsClient

            async with AsyncAltinnEventsClient(settings) as client:
                return await _publish_concurrently(
                    events, lambda event: send(client, event), self.max_concurrency
                )

        return _run_coroutine(publish_all())

    def _fail(self, outcome: _Outcome, count: int, ids: Sequence[str | None]) -> None:
        """Log and raise what went out and what did not; permanent errors skip Airflow's retries."""
        first = outcome.first_error
        if first is None:
            return
        position, error = first
        published = sorted(outcome.results)
        not_published = [index for index in range(count) if index not in outcome.results]
        unconfirmed = sorted(i for i, e in outcome.errors.items() if _outcome_unknown(e))
        refused = [index for index in not_published if index not in unconfirmed]
        published_ids = [str(ids[i] if ids[i] is not None else outcome.results[i]) for i in published]
        not_published_ids = [str(ids[i]) for i in not_published if ids[i] is not None]
        unconfirmed_ids = [str(ids[i]) for i in unconfirmed if ids[i] is not None]
        refused_ids = [str(ids[i]) for i in refused if ids[i] is not None]
        label = f"{self._what}[{position}]" + (f" (id {ids[position]})" if ids[position] else "")
        unsure = (
            f"{len(unconfirmed)} not confirmed (sent, but no answer came: Altinn may have stored "
            f"{'it' if len(unconfirmed) == 1 else 'them'}), "
            if unconfirmed
            else ""
        )
        message = (
            f"published {len(published)} of {count} {self._what}(s); {unsure}{len(refused)} not published. "
            f"{label} failed: {error}{self._hint(error)}"
        )
        self.log.error("%s", message)
        self.log.error("Published ids: %s", published_ids)
        if unconfirmed:
            self.log.error("Not confirmed ids: %s, positions: %s", unconfirmed_ids, unconfirmed)
        if refused_ids:
            self.log.error("Not published ids: %s", refused_ids)
        self.log.error("Not published positions: %s", refused)
        details = f"{message}. Published ids: {_listing(published_ids)}."
        if unconfirmed:
            details += (
                f" Not confirmed ids: {_listing(unconfirmed_ids)}."
                if unconfirmed_ids
                else f" Not confirmed positions: {_listing(unconfirmed)}."
            )
        details += (
            f" Not published ids: {_listing(refused_ids)}."
            if refused_ids
            else f" Not published positions: {_listing(refused)}."
        )
        error_class = AltinnEventsPublishRejectedError if is_permanent(error) else AltinnEventsPublishError
        raise error_class(
            details,
            published_ids=published_ids,
            not_published_ids=not_published_ids,
            published_indices=published,
            not_published_indices=not_published,
            unconfirmed_ids=unconfirmed_ids,
            unconfirmed_indices=unconfirmed,
        ) from error

    def _hint(self, error: BaseException) -> str:
        return ""

    def _check_scopes(self, settings: AltinnSettings) -> None:
        """Refuse before any request when the connection cannot be allowed to publish (none for app events:
        ``POST /app`` needs only the platform access token)."""


class AltinnEventsPublishOperator(_PublishBase):
    """Publish one CloudEvent or a list of them to Altinn (``POST /events``).

    Each event is a dict of CloudEvents and Altinn attributes: ``type``, ``source`` (an absolute URI),
    ``resource`` (``urn:altinn:resource:...``), and optionally ``id``, ``time``, ``subject``,
    ``alternativesubject``, ``resourceinstance``, ``data``, ``dataschema``, ``datacontenttype``. A missing
    ``specversion`` becomes ``"1.0"``, a missing ``time`` the current UTC time, and a missing ``id`` a UUID
    fixed for this task instance and position (:func:`event_id_for`): a retry re-sends the same ids, and
    Altinn ignores an event whose id and source it already has. Every event is checked before the first
    request, with the service's own rules. Needs the scope ``altinn:events.publish`` and the resource's
    ``publish`` right (or ``altinn:events.publish.admin``, or a ``platform_access_token``); a connection
    without any of them is refused before the first request.

    :param event: a dict, a list of dicts (e.g. an upstream task's ``.output``), or a JSON string of either;
        templated.
    :param altinn_events_conn_id: the Altinn Events connection.
    :param max_concurrency: how many requests a list may have in flight at once.
    :return: (XCom) the published ids, in input order.
    :raises AltinnEventsPublishError: some events were not published; carries which were and which were not.
        A permanent cause (400, 403, invalid input) raises :class:`AltinnEventsPublishRejectedError`, which
        Airflow does not retry.
    """

    def execute(self, context: Context) -> list[str]:
        from airflow_provider_altinn_events.client.validation import prepare_cloud_event

        ti = context["ti"]
        events = self._prepare(
            lambda raw, i, field: prepare_cloud_event(
                raw,
                default_id=event_id_for(ti.dag_id, ti.task_id, ti.run_id, getattr(ti, "map_index", -1), i),
                field=field,
            )
        )
        ids = [str(event["id"]) for event in events]
        self.log.info("Publishing %d event(s) to Altinn; ids %s", len(events), _listing(ids))
        outcome = self._send_all(events, lambda client, event: client.publish(event))
        self._fail(outcome, len(events), ids)
        self.log.info("Published %d event(s)", len(events))
        return ids

    def _check_scopes(self, settings: AltinnSettings) -> None:
        from airflow_provider_altinn_events.client.scopes import require_publish_scope

        require_publish_scope(settings)

    def _hint(self, error: BaseException) -> str:
        if isinstance(error, AltinnForbiddenError):
            return (
                " (publishing needs the scope altinn:events.publish in the connection's 'scopes' and the "
                "'publish' right on the event's resource)"
            )
        return ""


class AltinnEventsPublishAppEventOperator(_PublishBase):
    """Publish app events (``POST /app``), for Altinn apps and platform components.

    Only callers that hold a *platform access token* can use this endpoint: set it in the connection's extra
    as ``platform_access_token``, and it is sent as the ``PlatformAccessToken`` header (Altinn answers 403
    without it). External organisations cannot obtain one; they publish with
    :class:`AltinnEventsPublishOperator` instead.

    Each event needs ``source`` (the app instance URL,
    ``https://{org}.apps.../{org}/{app}/instances/{partyId}/{instanceGuid}``), ``type`` and ``subject``
    (e.g. ``/party/1337``); ``alternativesubject``, ``data``, ``dataschema`` and ``contenttype`` are optional.
    Altinn assigns the id, time and resource, and does not store ``data``.

    Not idempotent: Altinn gives each accepted app event a new id, so a task retry after a partial failure
    publishes the already published events again. The failure names them (by position and assigned id) so
    that you can decide; consider ``retries=0`` for this operator.

    :param event: a dict, a list of dicts, or a JSON string of either; templated.
    :param altinn_events_conn_id: the Altinn Events connection (with ``platform_access_token``).
    :param max_concurrency: how many requests a list may have in flight at once.
    :return: (XCom) the ids Altinn assigned, in input order.
    :raises AltinnEventsPublishError: some events were not published (see the publish operator).
    """

    _what = "app event"

    def execute(self, context: Context) -> list[str]:
        from airflow_provider_altinn_events.client.validation import prepare_app_event

        events = self._prepare(lambda raw, i, field: prepare_app_event(raw, field=field))
        self.log.info("Publishing %d app event(s) to Altinn", len(events))
        outcome = self._send_all(events, lambda client, event: client.publish_app_event(event))
        self._fail(outcome, len(events), [None] * len(events))
        ids = [str(outcome.results[position]) for position in range(len(events))]
        self.log.info("Published %d app event(s); ids %s", len(ids), _listing(ids))
        return ids

    def _hint(self, error: BaseException) -> str:
        if isinstance(error, AltinnForbiddenError):
            return (
                " (POST /app needs a platform access token: set 'platform_access_token' in the connection's "
                "extra; only Altinn apps and platform components hold one)"
            )
        return ""

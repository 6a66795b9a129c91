"""``AltinnEventsClient`` (sync) and ``AsyncAltinnEventsClient``: the two thin shells, as mirror images.

Everything that decides anything lives below: requests and parsing in :mod:`.protocol`, tokens in
:mod:`.auth`, retry decisions in :mod:`.retry`. The shells only *send* (``httpx.Client`` /
``httpx.AsyncClient`` on the ``httpx-aiohttp`` transport) and *sleep* (``time.sleep`` / ``asyncio.sleep``).
The async shell sends a request straight to its httpx transport while the token is fresh (the triggerer's
poll hot path; see ``AsyncAltinnEventsClient._send_once``), and through ``AsyncClient.send`` otherwise.
The two classes have the same methods in the same order, so they can be diffed by eye; keep it that way.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Callable, Iterator, Mapping, Sequence
from datetime import datetime
from functools import partial
from types import TracebackType
from typing import Any, TypeVar

import httpx

from airflow_provider_altinn_events import __version__
from airflow_provider_altinn_events.client import protocol as p
from airflow_provider_altinn_events.client.auth import AltinnAuth
from airflow_provider_altinn_events.client.errors import RedactingLogFilter
from airflow_provider_altinn_events.client.matching import (
    SEEK_PAGE_SIZE,
    EventFilter,
    PollState,
    initial_state,
    poll_step,
)
from airflow_provider_altinn_events.client.models import CloudEvent, EventPage, Subscription, SubscriptionList
from airflow_provider_altinn_events.client.retry import RetryPolicy
from airflow_provider_altinn_events.client.settings import AltinnSettings
from airflow_provider_altinn_events.exceptions import AltinnConfigError, AltinnError

__all__ = ["AltinnEventsClient", "AsyncAltinnEventsClient"]

logger = logging.getLogger(__name__)
# httpx logs every response's reason phrase, which the server controls: scrub credentials an echo put there.
logging.getLogger("httpx").addFilter(RedactingLogFilter())
_debug_enabled = partial(logger.isEnabledFor, logging.DEBUG)  # skips building the debug line's arguments
T = TypeVar("T")
USER_AGENT = f"airflow-provider-altinn-events/{__version__}"

MAX_CONNECTIONS = 8
"""Connections the async client keeps to Altinn; more requests than that wait for one.

A triggerer shares one async client per connection among all its triggers, whose polls arrive in ticks
(``triggers/_cadence.py``). Unbounded, aiohttp opens a connection for every request of a tick and keeps each
alive at about 6 to 8 KiB of heap: 60 connections for 500 triggers, more memory than the triggers
themselves. Eight carried 1,000 triggers at a 5 s interval (200 polls/s) on time in the benchmark; the pool
serves about ``8 / round-trip time`` requests a second (some 250 at a 30 ms round trip). Eight also matches
the publish operator's default concurrency."""

#: aiohttp closes a connection idle this long: longer than the longest tick (1 s), so ticks reuse them.
POOL_LIMITS = httpx.Limits(max_connections=MAX_CONNECTIONS, keepalive_expiry=15.0)


def _page_size(state: PollState, size: int) -> int:
    """``size``, larger by the events held behind the cursor (they are served again first), or the largest page
    while seeking ``"latest"``; never more than the service serves."""
    if state.seeking:
        return SEEK_PAGE_SIZE
    return min(SEEK_PAGE_SIZE, size + state.behind) if state.behind else size


class _ClientBase:
    """What both shells share: settings, auth, retry policy and the retry bookkeeping."""

    def __init__(
        self,
        settings: AltinnSettings,
        retry: RetryPolicy | None,
        clock: Callable[[], float],
        max_response_bytes: int = p.MAX_RESPONSE_BYTES,
    ) -> None:
        if not isinstance(settings, AltinnSettings):
            raise TypeError(f"settings must be AltinnSettings, got {type(settings).__name__}")
        if (
            isinstance(max_response_bytes, bool)
            or not isinstance(max_response_bytes, int)
            or max_response_bytes < 1
        ):
            raise AltinnConfigError(
                f"max_response_bytes must be a positive number of bytes, got {max_response_bytes!r}",
                field="max_response_bytes",
            )
        self.max_response_bytes = max_response_bytes
        self.settings = settings
        self.retry = retry if retry is not None else RetryPolicy()
        self.auth = AltinnAuth(settings, clock=clock)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(conn_id={self.settings.conn_id!r}, events_url={self.settings.events_url!r})"

    def _next_delay(
        self, request: httpx.Request, error: AltinnError, attempt: int, started: float, idempotent: bool
    ) -> float | None:
        delay = self.retry.next_delay(
            error, attempt, elapsed_seconds=time.monotonic() - started, idempotent=idempotent
        )
        status = getattr(error, "status_code", None)
        what = f"{type(error).__name__}{f' {status}' if status else ''}"
        if delay is None:
            error.attempts = attempt
            if attempt > 1:
                logger.warning(
                    "%s %s failed after %d attempts (%s); giving up",
                    request.method,
                    request.url.path,
                    attempt,
                    what,
                )
            return None
        logger.warning(
            "%s %s failed (%s); retry %d of at most %d in %.2f s",
            request.method,
            request.url.path,
            what,
            attempt,
            self.retry.max_attempts - 1,
            delay,
        )
        return delay

    @staticmethod
    def _paging(resource: str, after: str) -> tuple[EventFilter, PollState]:
        """The filter and state ``iter_pages`` walks with: the poll step's rules (``client/matching.py``), so
        events that share an id are each yielded once and a page that brings nothing new ends the walk."""
        return EventFilter(resource=resource), initial_state(after)

    @staticmethod
    def _advance(
        state: PollState, page: EventPage, event_filter: EventFilter
    ) -> tuple[PollState, EventPage | None, bool]:
        """One page of ``iter_pages``: the next state, the page to yield (its new events, ``after`` the
        cursor to resume from), and whether the walk is over (caught up)."""
        step = poll_step(state, page, event_filter)
        state = step.state.handed_over()
        if step.at_end:
            return state, None, True
        if state.seeking or not step.new_events:
            return state, None, False
        return state, EventPage(events=step.new_events, after=state.after, next_url=page.next_url), False


class AltinnEventsClient(_ClientBase):
    """Synchronous client for the Altinn Events API (workers, operators, sensors in poke mode).

    :param settings: from :meth:`AltinnSettings.from_connection` (the hook does this).
    :param transport: an ``httpx.BaseTransport`` to use instead of the network (e.g. ``httpx.MockTransport``).
    :param retry: the retry policy; :class:`RetryPolicy` defaults when ``None``.
    :param clock: wall clock for token expiry (tests inject a fake one).
    :param max_response_bytes: the largest response body to read (:data:`.protocol.MAX_RESPONSE_BYTES`);
        a larger one is refused with ``AltinnPayloadError`` before it is read whole.

    Thread-safe: one client (one connection pool, one token) can serve many threads.
    """

    def __init__(
        self,
        settings: AltinnSettings,
        *,
        transport: httpx.BaseTransport | None = None,
        retry: RetryPolicy | None = None,
        clock: Callable[[], float] = time.time,
        max_response_bytes: int = p.MAX_RESPONSE_BYTES,
    ) -> None:
        super().__init__(settings, retry, clock, max_response_bytes)
        self._http = httpx.Client(
            auth=self.auth,
            transport=transport,
            timeout=settings.timeout_seconds,
            headers={"User-Agent": USER_AGENT},
        )

    def __enter__(self) -> AltinnEventsClient:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        """Close the connection pool."""
        self._http.close()

    def publish(self, event: Mapping[str, Any] | object) -> None:
        """Publish one generic CloudEvent (``POST /events``; needs scope ``altinn:events.publish``).

        Re-publishing the same ``id`` + ``source`` is a no-op at Altinn, so retries are safe. ``event`` is a
        dict or a ``cloudevents`` SDK event, in every form the publish operator takes (docs/contract.rst).

        :raises AltinnPayloadError: the event breaks one of Altinn's rules (the message names the attribute).
        :raises AltinnForbiddenError: the scope or the resource's policy does not allow publishing.
        """
        self._send(p.build_publish_request(self.settings, event), p.parse_empty_response)

    def publish_app_event(self, event: Mapping[str, Any]) -> str:
        """Publish an app event (``POST /app``, needs ``platform_access_token``); returns the new event id.

        :raises AltinnConfigError: the connection has no platform access token.
        """
        request = p.build_publish_app_event_request(self.settings, event)
        return self._send(request, p.parse_publish_app_event_response, idempotent=False)

    def list_events(
        self,
        *,
        resource: str,
        after: str = "0",
        types: Sequence[str] | None = None,
        subject: str | None = None,
        alternative_subject: str | None = None,
        size: int = 50,
    ) -> EventPage:
        """Fetch one page of events after the cursor ``after`` (``"0"`` = from the beginning).

        :raises AltinnConfigError: invalid arguments (see :func:`.protocol.build_list_events_request`).
        :raises AltinnForbiddenError: the token lacks ``altinn:events.subscribe``.
        """
        return self.list_events_undecoded(
            resource=resource,
            after=after,
            types=types,
            subject=subject,
            alternative_subject=alternative_subject,
            size=size,
        ).decode()

    def list_events_undecoded(
        self,
        *,
        resource: str,
        after: str = "0",
        types: Sequence[str] | None = None,
        subject: str | None = None,
        alternative_subject: str | None = None,
        size: int = 50,
    ) -> p.UndecodedEventPage:
        """:meth:`list_events` with the body left undecoded: the request, retries and status errors are the
        same; ``.decode()`` on the result gives the page (and raises what :meth:`list_events` would for a bad
        body). Ingestion fetches with it on one thread and decodes on another, so that the next request is
        already out while a page is decoded (docs/guides/ingestion.rst, "Throughput and memory").

        :raises AltinnConfigError: invalid arguments (see :func:`.protocol.build_list_events_request`).
        :raises AltinnForbiddenError: the token lacks ``altinn:events.subscribe``.
        """
        request = p.build_list_events_request(
            self.settings,
            resource=resource,
            after=after,
            types=types,
            subject=subject,
            alternative_subject=alternative_subject,
            size=size,
        )
        return self._send(request, lambda response: p.undecoded_events_page(response, after=after, size=size))

    def iter_pages(
        self,
        *,
        resource: str,
        after: str = "0",
        types: Sequence[str] | None = None,
        subject: str | None = None,
        alternative_subject: str | None = None,
        size: int = 50,
        max_pages: int | None = None,
    ) -> Iterator[EventPage]:
        """Yield pages from ``after`` until the service has nothing newer, or ``max_pages`` pages.

        ``after`` is an event id, ``"0"`` (the start) or ``"latest"`` (only events that appear meanwhile). Altinn
        keys events by ``(id, source)`` and resumes ``after=<id>`` after the first event with that id, so the
        pages follow the poll step's rules (``docs/guides/client.rst``): a yielded page holds only events not
        yielded before, its ``after`` is where to resume (never an id that several events share), and a page
        that brings nothing new ends the walk as an empty page does.

        :raises AltinnConfigError: ``after`` is empty or a rendered ``None``.
        :raises AltinnError: as :meth:`list_events`, from the page that failed.
        """
        event_filter, state = self._paging(resource, after)
        pages = 0
        while max_pages is None or pages < max_pages:
            page = self.list_events(
                resource=resource,
                after=state.after,
                types=types,
                subject=subject,
                alternative_subject=alternative_subject,
                size=_page_size(state, size),
            )
            state, new, caught_up = self._advance(state, page, event_filter)
            if caught_up:
                return
            if new is not None:
                yield new
                pages += 1

    def iter_events(
        self,
        *,
        resource: str,
        after: str = "0",
        types: Sequence[str] | None = None,
        subject: str | None = None,
        alternative_subject: str | None = None,
        size: int = 50,
        max_pages: int | None = None,
    ) -> Iterator[CloudEvent]:
        """Yield every event from ``after`` on, page by page (see :meth:`iter_pages`).

        :raises AltinnError: as :meth:`list_events`.
        """
        for page in self.iter_pages(
            resource=resource,
            after=after,
            types=types,
            subject=subject,
            alternative_subject=alternative_subject,
            size=size,
            max_pages=max_pages,
        ):
            yield from page.events

    def list_app_events(
        self,
        org: str,
        app: str,
        *,
        after: str | None = None,
        from_: datetime | str | None = None,
        to: datetime | str | None = None,
        party: int | None = None,
        unit: str | None = None,
        person: str | None = None,
        types: Sequence[str] | None = None,
        size: int = 50,
    ) -> EventPage:
        """Fetch one page of an app's events (``GET /app/{org}/{app}``; service owners only).

        :raises AltinnConfigError: neither ``after`` nor ``from_`` given, or conflicting party filters.
        :raises AltinnUnauthorizedError: the token carries no ``urn:altinn:org`` (scope ``altinn:serviceowner``).
        """
        request = p.build_list_app_events_request(
            self.settings,
            org,
            app,
            after=after,
            from_=from_,
            to=to,
            party=party,
            unit=unit,
            person=person,
            types=types,
            size=size,
        )
        return self._send(
            request, lambda response: p.parse_events_page(response, after=after or "", size=size)
        )

    def create_subscription(
        self,
        *,
        endpoint: str,
        resource_filter: str | None = None,
        source_filter: str | None = None,
        subject_filter: str | None = None,
        alternative_subject_filter: str | None = None,
        type_filter: str | None = None,
        include_subunits: bool = False,
    ) -> Subscription:
        """Create a push subscription (idempotent at Altinn: the same filters return the existing one).

        :raises AltinnBadRequestError: Altinn rejected the endpoint or a filter (``problem.detail`` says which).
        :raises AltinnForbiddenError: missing ``altinn:events.subscribe`` or not authorized for the resource.
        """
        request = p.build_create_subscription_request(
            self.settings,
            endpoint=endpoint,
            resource_filter=resource_filter,
            source_filter=source_filter,
            subject_filter=subject_filter,
            alternative_subject_filter=alternative_subject_filter,
            type_filter=type_filter,
            include_subunits=include_subunits,
        )
        return self._send(request, p.parse_subscription_response)

    def get_subscription(self, subscription_id: int) -> Subscription:
        """Fetch one subscription by id.

        :raises AltinnNotFoundError: no such subscription.
        :raises AltinnForbiddenError: it belongs to another consumer.
        """
        return self._send(
            p.build_get_subscription_request(self.settings, subscription_id), p.parse_subscription_response
        )

    def list_subscriptions(self) -> SubscriptionList:
        """List the subscriptions created by this connection's identity (validated or not).

        :raises AltinnUnauthorizedError: the token was refused.
        """
        return self._send(
            p.build_list_subscriptions_request(self.settings), p.parse_subscription_list_response
        )

    def delete_subscription(self, subscription_id: int) -> None:
        """Delete a subscription.

        :raises AltinnNotFoundError: no such subscription.
        :raises AltinnForbiddenError: it belongs to another consumer.
        """
        self._send(
            p.build_delete_subscription_request(self.settings, subscription_id), p.parse_empty_response
        )

    def _send(
        self, request: httpx.Request, parse: Callable[[httpx.Response], T], *, idempotent: bool = True
    ) -> T:
        started, attempt = time.monotonic(), 1
        while True:
            try:
                try:
                    response = self._http.send(request, stream=True)
                    try:
                        self._read_bounded(request, response)
                    finally:
                        response.close()
                except httpx.RequestError as exc:
                    raise p.error_from_transport(exc, self.settings) from exc
                logger.debug("%s %s -> %d", request.method, request.url.path, response.status_code)
                return parse(response)
            except AltinnError as error:
                delay = self._next_delay(request, error, attempt, started, idempotent)
                if delay is None:
                    raise
            time.sleep(delay)
            attempt += 1

    def _read_bounded(self, request: httpx.Request, response: httpx.Response) -> None:
        """Read the body of a streamed response, refusing it as soon as it passes ``max_response_bytes``
        (decompressed), or at once when ``Content-Length`` says it will."""
        limit = self.max_response_bytes
        declared = _declared_length(response)
        if declared is not None and declared > limit:
            raise p.response_too_large(request, limit, declared)
        chunks: list[bytes] = []
        total = 0
        for chunk in response.iter_bytes():
            total += len(chunk)
            if total > limit:
                raise p.response_too_large(request, limit, declared)
            chunks.append(chunk)
        response._content = b"".join(chunks)  # what Response.read() sets; the body is read once


def _declared_length(response: httpx.Response) -> int | None:
    value = response.headers.get("content-length", "")
    return int(value) if value.isdigit() else None


class AsyncAltinnEventsClient(_ClientBase):
    """Asynchronous client for the Altinn Events API (triggers, async tasks): the mirror of the sync one.

    :param transport: an ``httpx.AsyncBaseTransport``; defaults to httpx-aiohttp's transport (as
        :class:`~.transport.AltinnAiohttpTransport`, which reads each answer whole), costing a fraction of
        httpx's native async transport per request (docs/performance.rst, "http-stack"), with at most
        :data:`MAX_CONNECTIONS` connections.
    :param max_response_bytes: as for :class:`AltinnEventsClient` (the default transport stops reading at it).

    Use it from one event loop; share one per connection in a process rather than one per task.
    """

    def __init__(
        self,
        settings: AltinnSettings,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        retry: RetryPolicy | None = None,
        clock: Callable[[], float] = time.time,
        max_response_bytes: int = p.MAX_RESPONSE_BYTES,
    ) -> None:
        super().__init__(settings, retry, clock, max_response_bytes)
        if transport is None:
            from airflow_provider_altinn_events.client.transport import AltinnAiohttpTransport

            transport = AltinnAiohttpTransport(limits=POOL_LIMITS, max_body_bytes=max_response_bytes)
        self._transport = transport
        self._http = httpx.AsyncClient(
            auth=self.auth,
            transport=transport,
            timeout=settings.timeout_seconds,
            headers={"User-Agent": USER_AGENT},
        )
        self._timeout = self._http.timeout.as_dict()

    async def __aenter__(self) -> AsyncAltinnEventsClient:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the connection pool (and the aiohttp session)."""
        await self._http.aclose()

    async def publish(self, event: Mapping[str, Any] | object) -> None:
        """Async :meth:`AltinnEventsClient.publish`.

        :raises AltinnPayloadError: the event lacks ``id``, ``source``, ``type`` or ``resource``.
        """
        await self._send(p.build_publish_request(self.settings, event), p.parse_empty_response)

    async def publish_app_event(self, event: Mapping[str, Any]) -> str:
        """Async :meth:`AltinnEventsClient.publish_app_event`.

        :raises AltinnConfigError: the connection has no platform access token.
        """
        request = p.build_publish_app_event_request(self.settings, event)
        return await self._send(request, p.parse_publish_app_event_response, idempotent=False)

    async def list_events(
        self,
        *,
        resource: str,
        after: str = "0",
        types: Sequence[str] | None = None,
        subject: str | None = None,
        alternative_subject: str | None = None,
        size: int = 50,
    ) -> EventPage:
        """Async :meth:`AltinnEventsClient.list_events`.

        :raises AltinnConfigError: invalid arguments.
        """
        undecoded = await self.list_events_undecoded(
            resource=resource,
            after=after,
            types=types,
            subject=subject,
            alternative_subject=alternative_subject,
            size=size,
        )
        return undecoded.decode()

    async def list_events_undecoded(
        self,
        *,
        resource: str,
        after: str = "0",
        types: Sequence[str] | None = None,
        subject: str | None = None,
        alternative_subject: str | None = None,
        size: int = 50,
    ) -> p.UndecodedEventPage:
        """Async :meth:`AltinnEventsClient.list_events_undecoded`.

        :raises AltinnConfigError: invalid arguments.
        """
        request = p.build_list_events_request(
            self.settings,
            resource=resource,
            after=after,
            types=types,
            subject=subject,
            alternative_subject=alternative_subject,
            size=size,
        )
        return await self._send(
            request, lambda response: p.undecoded_events_page(response, after=after, size=size)
        )

    async def iter_pages(
        self,
        *,
        resource: str,
        after: str = "0",
        types: Sequence[str] | None = None,
        subject: str | None = None,
        alternative_subject: str | None = None,
        size: int = 50,
        max_pages: int | None = None,
    ) -> AsyncIterator[EventPage]:
        """Async :meth:`AltinnEventsClient.iter_pages`.

        :raises AltinnError: as :meth:`list_events`.
        """
        event_filter, state = self._paging(resource, after)
        pages = 0
        while max_pages is None or pages < max_pages:
            page = await self.list_events(
                resource=resource,
                after=state.after,
                types=types,
                subject=subject,
                alternative_subject=alternative_subject,
                size=_page_size(state, size),
            )
            state, new, caught_up = self._advance(state, page, event_filter)
            if caught_up:
                return
            if new is not None:
                yield new
                pages += 1

    async def iter_events(
        self,
        *,
        resource: str,
        after: str = "0",
        types: Sequence[str] | None = None,
        subject: str | None = None,
        alternative_subject: str | None = None,
        size: int = 50,
        max_pages: int | None = None,
    ) -> AsyncIterator[CloudEvent]:
        """Async :meth:`AltinnEventsClient.iter_events`.

        :raises AltinnError: as :meth:`list_events`.
        """
        async for page in self.iter_pages(
            resource=resource,
            after=after,
            types=types,
            subject=subject,
            alternative_subject=alternative_subject,
            size=size,
            max_pages=max_pages,
        ):
            for event in page.events:
                yield event

    async def list_app_events(
        self,
        org: str,
        app: str,
        *,
        after: str | None = None,
        from_: datetime | str | None = None,
        to: datetime | str | None = None,
        party: int | None = None,
        unit: str | None = None,
        person: str | None = None,
        types: Sequence[str] | None = None,
        size: int = 50,
    ) -> EventPage:
        """Async :meth:`AltinnEventsClient.list_app_events`.

        :raises AltinnConfigError: neither ``after`` nor ``from_`` given, or conflicting party filters.
        """
        request = p.build_list_app_events_request(
            self.settings,
            org,
            app,
            after=after,
            from_=from_,
            to=to,
            party=party,
            unit=unit,
            person=person,
            types=types,
            size=size,
        )
        return await self._send(
            request, lambda response: p.parse_events_page(response, after=after or "", size=size)
        )

    async def create_subscription(
        self,
        *,
        endpoint: str,
        resource_filter: str | None = None,
        source_filter: str | None = None,
        subject_filter: str | None = None,
        alternative_subject_filter: str | None = None,
        type_filter: str | None = None,
        include_subunits: bool = False,
    ) -> Subscription:
        """Async :meth:`AltinnEventsClient.create_subscription`.

        :raises AltinnBadRequestError: Altinn rejected the endpoint or a filter.
        """
        request = p.build_create_subscription_request(
            self.settings,
            endpoint=endpoint,
            resource_filter=resource_filter,
            source_filter=source_filter,
            subject_filter=subject_filter,
            alternative_subject_filter=alternative_subject_filter,
            type_filter=type_filter,
            include_subunits=include_subunits,
        )
        return await self._send(request, p.parse_subscription_response)

    async def get_subscription(self, subscription_id: int) -> Subscription:
        """Async :meth:`AltinnEventsClient.get_subscription`.

        :raises AltinnNotFoundError: no such subscription.
        """
        return await self._send(
            p.build_get_subscription_request(self.settings, subscription_id), p.parse_subscription_response
        )

    async def list_subscriptions(self) -> SubscriptionList:
        """Async :meth:`AltinnEventsClient.list_subscriptions`.

        :raises AltinnUnauthorizedError: the token was refused.
        """
        return await self._send(
            p.build_list_subscriptions_request(self.settings), p.parse_subscription_list_response
        )

    async def delete_subscription(self, subscription_id: int) -> None:
        """Async :meth:`AltinnEventsClient.delete_subscription`.

        :raises AltinnNotFoundError: no such subscription.
        """
        await self._send(
            p.build_delete_subscription_request(self.settings, subscription_id), p.parse_empty_response
        )

    async def _send(
        self, request: httpx.Request, parse: Callable[[httpx.Response], T], *, idempotent: bool = True
    ) -> T:
        started, attempt = time.monotonic(), 1
        while True:
            try:
                try:
                    response = await self._send_once(request)
                except httpx.RequestError as exc:
                    raise p.error_from_transport(exc, self.settings) from exc
                if _debug_enabled():
                    logger.debug("%s %s -> %d", request.method, request.url.path, response.status_code)
                return parse(response)
            except AltinnError as error:
                delay = self._next_delay(request, error, attempt, started, idempotent)
                if delay is None:
                    raise
            await asyncio.sleep(delay)
            attempt += 1

    async def _send_once(self, request: httpx.Request) -> httpx.Response:
        """One send, body read. With a fresh token (nearly every call) the request goes straight to the
        transport: ``AsyncClient.send`` would add an auth-flow generator, redirect and cookie bookkeeping and a
        log record per request, none of which applies here (the clients follow no redirects and keep no
        cookies; their requests are built with absolute URLs and all headers set). Otherwise, and to recover
        from a 401, it goes through ``AsyncClient.send`` with :class:`.AltinnAuth`'s single-flight refresh.
        """
        token = self.auth.authorize_if_fresh(request) if not self._http.is_closed else None
        if token is None:
            return await self._read_bounded(request, await self._http.send(request, stream=True))
        if "timeout" not in request.extensions:
            request.extensions = {**request.extensions, "timeout": self._timeout}
        try:
            response = await self._transport.handle_async_request(request)
        except httpx.RequestError as exc:
            exc.request = request  # as AsyncClient does, so the error names the URL (and the token step)
            raise
        response.request = request
        if not self._read_whole(request, response):  # the default transport hands most answers over read
            await self._read_bounded(request, response)
        if response.status_code == 401 and self.auth.can_refresh:
            return await self._read_bounded(
                request, await self._http.send(request, auth=self.auth.after_401(token), stream=True)
            )
        return response

    def _read_whole(self, request: httpx.Request, response: httpx.Response) -> bool:
        """Whether the transport handed ``response`` over read and closed (the fast path does), so there is
        nothing to read or close: checked against ``max_response_bytes`` here, without :meth:`_read_bounded`'s
        coroutine and ``aclose`` (a no-op on a closed response)."""
        if not response.is_closed:
            return False
        try:
            size = len(response.content)
        except httpx.ResponseNotRead:  # closed unread: _read_bounded reads (and raises) as before
            return False
        if size > self.max_response_bytes:
            raise p.response_too_large(request, self.max_response_bytes, size)
        return True

    async def _read_bounded(self, request: httpx.Request, response: httpx.Response) -> httpx.Response:
        """The response with its body read, refused past ``max_response_bytes`` (decompressed). The default
        transport already stopped reading a body over the limit and hands plain bodies over read; a
        compressed one, or any body from another transport, is read here in chunks up to the limit."""
        limit = self.max_response_bytes
        try:
            if hasattr(response, "_content"):  # read by the transport
                if len(response.content) > limit:
                    raise p.response_too_large(request, limit, len(response.content))
                return response
            declared = _declared_length(response)
            if declared is not None and declared > limit:
                raise p.response_too_large(request, limit, declared)
            chunks: list[bytes] = []
            total = 0
            async for chunk in response.aiter_bytes():
                total += len(chunk)
                if total > limit:
                    raise p.response_too_large(request, limit, declared)
                chunks.append(chunk)
            response._content = b"".join(chunks)  # what Response.aread() sets; the body is read once
            return response
        finally:
            await response.aclose()

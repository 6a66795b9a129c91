"""One ``httpx.Auth`` for both clients: Maskinporten grant → Altinn exchange → cached Altinn token.

The flow yields the grant and exchange requests itself, so they go out through the client's own transport
(the emulator, a mock, or the real hosts: each request carries an absolute URL, so the token hosts and the
Events host can differ). The token is cached by its own ``exp`` minus a margin and shared by every call on
the client. Refreshes are single-flight: a ``threading.Lock`` for the sync flow and an ``asyncio.Lock`` for
the async one (httpx's docs ask for overriding ``sync_auth_flow`` and ``async_auth_flow`` separately when
locking), with a re-check after acquiring it, so 20 threads or 200 coroutines that find the token missing
cause one grant and one exchange, not 200.

On a 401 from the Events API (a token revoked early, or a clock far off) the flow refreshes once and sends
the request again; a second 401 is returned to the caller as it is.

The async client skips the flow while the token is fresh (:meth:`AltinnAuth.authorize_if_fresh`; the poll
hot path of a triggerer) and re-enters it only on a 401 (:meth:`AltinnAuth.after_401`), so the refresh,
its lock and its single flight are the same code either way.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import AsyncGenerator, Callable, Generator

import httpx

from airflow_provider_altinn_events.client.keys import SigningKey, load_signing_key
from airflow_provider_altinn_events.client.settings import AltinnAuthMode, AltinnSettings
from airflow_provider_altinn_events.client.tokens import (
    AltinnToken,
    build_grant_assertion,
    build_token_exchange_request,
    build_token_grant_request,
    parse_token_exchange_response,
    parse_token_grant_response,
    static_altinn_token,
)

__all__ = ["DEFAULT_REFRESH_MARGIN_SECONDS", "AltinnAuth"]

logger = logging.getLogger(__name__)

#: Refresh this long before the Altinn token's ``exp`` (Events checks ``exp`` with zero clock skew).
DEFAULT_REFRESH_MARGIN_SECONDS = 60.0

_RefreshFlow = Generator[httpx.Request, httpx.Response, AltinnToken]


class AltinnAuth(httpx.Auth):
    """Adds ``Authorization: Bearer <Altinn token>`` (and ``PlatformAccessToken`` when configured).

    :param settings: the connection's settings.
    :param clock: wall-clock seconds (``time.time``); inject a fake one to test expiry without waiting.
    :param margin_seconds: refresh this long before ``exp`` (capped at a quarter of the token's lifetime).
    """

    requires_response_body = True

    def __init__(
        self,
        settings: AltinnSettings,
        *,
        clock: Callable[[], float] = time.time,
        margin_seconds: float = DEFAULT_REFRESH_MARGIN_SECONDS,
    ) -> None:
        self._settings = settings
        self._clock = clock
        self._margin = margin_seconds
        self._token: AltinnToken | None = None
        self._key: SigningKey | None = None
        self._sync_lock = threading.Lock()
        self._async_lock: asyncio.Lock | None = None
        self._async_lock_loop: asyncio.AbstractEventLoop | None = None
        #: how many times a token was fetched (grant + exchange), for logs and tests
        self.refresh_count = 0

    def __repr__(self) -> str:
        return f"AltinnAuth(conn_id={self._settings.conn_id!r}, auth={self._settings.auth.value!r})"

    @property
    def token_expires_at(self) -> float | None:
        """``exp`` of the cached Altinn token (epoch seconds), or ``None`` before the first call."""
        token = self._token
        return token.expires_at if token is not None else None

    def invalidate(self) -> None:
        """Forget the cached token; the next request fetches a new one."""
        self._token = None

    def signing_key(self) -> SigningKey:
        """The connection's key, loaded (and checked against ``kid``/certificate) on first use.

        :raises AltinnConfigError: the key does not parse or does not match.
        """
        if self._key is None:
            settings = self._settings
            assert settings.private_key is not None  # from_connection guarantees it in maskinporten mode
            self._key = load_signing_key(
                settings.private_key,
                key_id=settings.key_id,
                passphrase=settings.private_key_passphrase,
                certificate=settings.certificate,
            )
        return self._key

    # -- the flows --------------------------------------------------------------------------------------------

    def sync_auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        token = self._fresh_token()
        if token is None:
            with self._sync_lock:
                token = self._fresh_token()
                if token is None:
                    token = yield from self._run_refresh_sync()
        self._authorize(request, token)
        response = yield request
        if response.status_code != 401 or not self.can_refresh:
            return
        with self._sync_lock:
            current = self._token_after_401(request, token)
            if current is None:
                current = yield from self._run_refresh_sync()
        self._authorize(request, current)
        yield request

    async def async_auth_flow(self, request: httpx.Request) -> AsyncGenerator[httpx.Request, httpx.Response]:
        token = self._fresh_token()
        if token is None:
            async with self._get_async_lock():
                token = self._fresh_token()
                if token is None:
                    flow = self._refresh_flow()
                    try:
                        step = next(flow)
                        while True:
                            response = yield step
                            await response.aread()
                            step = flow.send(response)
                    except StopIteration as done:
                        token = done.value
        self._authorize(request, token)
        response = yield request
        if response.status_code != 401 or not self.can_refresh:
            return
        after_401 = self._async_flow_after_401(request, token)
        try:  # delegate by hand (an async generator has no ``yield from``)
            step = await after_401.__anext__()
            while True:
                response = yield step
                try:
                    step = await after_401.asend(response)
                except StopAsyncIteration:
                    return
        finally:
            await after_401.aclose()  # releases the lock at once if httpx closes this flow early

    def authorize_if_fresh(self, request: httpx.Request) -> AltinnToken | None:
        """Put the cached token on ``request`` if it is fresh and return it; ``None`` (request untouched) if not.

        The async client's fast path: with a fresh token there is nothing to lock or fetch, so the request can
        go straight to the transport. On a 401 the caller sends it again with :meth:`after_401`.
        """
        token = self._fresh_token()
        if token is not None:
            self._authorize(request, token)
        return token

    def after_401(self, refused: AltinnToken) -> httpx.Auth:
        """An ``httpx.Auth`` that continues where :meth:`async_auth_flow` goes after a 401 to a request sent
        with ``refused``: it refreshes once (single-flight) and sends the request again.

        Only for refreshable auth (``maskinporten``); with a static Altinn token a 401 is final.
        """
        return _After401(self, refused)

    async def _async_flow_after_401(
        self, request: httpx.Request, refused: AltinnToken
    ) -> AsyncGenerator[httpx.Request, httpx.Response]:
        async with self._get_async_lock():
            current = self._token_after_401(request, refused)
            if current is None:
                flow = self._refresh_flow()
                try:
                    step = next(flow)
                    while True:
                        token_response = yield step
                        await token_response.aread()
                        step = flow.send(token_response)
                except StopIteration as done:
                    current = done.value
        self._authorize(request, current)
        yield request

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        # httpx calls sync_auth_flow/async_auth_flow; this exists for callers that drive the flow themselves.
        return self.sync_auth_flow(request)

    # -- helpers ----------------------------------------------------------------------------------------------

    @property
    def can_refresh(self) -> bool:
        """Whether a 401 can be answered with a new token (``maskinporten``; not a static Altinn token)."""
        return self._settings.auth is AltinnAuthMode.MASKINPORTEN

    def _fresh_token(self) -> AltinnToken | None:
        token = self._token
        if token is not None and token.is_fresh(self._clock(), self._margin):
            return token
        return None

    def _token_after_401(self, request: httpx.Request, refused: AltinnToken) -> AltinnToken | None:
        """After a 401 to ``request`` sent with ``refused`` (caller holds the lock): the token another caller
        fetched meanwhile, or ``None`` when this caller must fetch one (the refused token is dropped)."""
        current = self._fresh_token()
        if current is not None and current.value != refused.value:
            return current
        logger.info(
            "The Events API answered 401 to %s %s: fetching a new Altinn token once",
            request.method,
            request.url.path,
        )
        self._token = None
        return None

    def _get_async_lock(self) -> asyncio.Lock:
        # An asyncio.Lock belongs to one event loop; a client reused under a new loop gets a new lock.
        loop = asyncio.get_running_loop()
        if self._async_lock is None or self._async_lock_loop is not loop:
            self._async_lock = asyncio.Lock()
            self._async_lock_loop = loop
        return self._async_lock

    def _run_refresh_sync(self) -> _RefreshFlow:
        # Overriding sync_auth_flow means reading token responses ourselves (httpx's default flow does it
        # for requires_response_body); the async flow does the same with ``aread``.
        flow = self._refresh_flow()
        try:
            step = next(flow)
            while True:
                response = yield step
                response.read()
                step = flow.send(response)
        except StopIteration as done:
            token: AltinnToken = done.value
            return token

    def _refresh_flow(self) -> _RefreshFlow:
        """Grant and exchange (caller holds the lock); returns the new token and caches it."""
        settings = self._settings
        if settings.auth is AltinnAuthMode.ALTINN_TOKEN:
            assert settings.altinn_token is not None
            token = static_altinn_token(settings.altinn_token, now=self._clock())
            self._token = token
            return token
        key = self.signing_key()
        logger.debug(
            "Fetching an Altinn token for client %s: grant at %s, exchange at %s",
            settings.client_id,
            settings.maskinporten_token_url,
            settings.exchange_url,
        )
        assertion = build_grant_assertion(settings, key, now=self._clock())
        grant_response = yield build_token_grant_request(settings, assertion)
        del assertion  # single use; do not keep a replayable grant around
        maskinporten_token = parse_token_grant_response(settings, grant_response)
        exchange_response = yield build_token_exchange_request(settings, maskinporten_token)
        token = parse_token_exchange_response(settings, exchange_response, now=self._clock())
        self._token = token
        self.refresh_count += 1
        logger.info(
            "Got an Altinn token for connection %r (scopes %s), valid for %.0f s",
            settings.conn_id,
            settings.scope,
            token.expires_at - self._clock(),
        )
        return token

    def _authorize(self, request: httpx.Request, token: AltinnToken) -> None:
        request.headers["Authorization"] = f"Bearer {token.value}"
        if self._settings.platform_access_token:
            request.headers["PlatformAccessToken"] = self._settings.platform_access_token


class _After401(httpx.Auth):
    """The tail of :meth:`AltinnAuth.async_auth_flow` after a 401, for a request the fast path sent itself."""

    requires_response_body = True

    def __init__(self, auth: AltinnAuth, refused: AltinnToken) -> None:
        self._auth = auth
        self._refused = refused

    def async_auth_flow(self, request: httpx.Request) -> AsyncGenerator[httpx.Request, httpx.Response]:
        # the same module, one concept: this class only re-enters AltinnAuth's own flow after the 401
        return self._auth._async_flow_after_401(request, self._refused)

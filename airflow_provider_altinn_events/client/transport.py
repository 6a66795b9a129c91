"""The async client's transport: httpx-aiohttp's adapter, with a fast path that reads each answer whole.

:class:`AltinnAiohttpTransport` sends most requests through the fast path in ``client/_aiohttp_fast.py``
(one aiohttp call, the body read whole, no httpx stream layers; a triggerer pays this per poll, see
``docs/performance.rst``, "hot-path") and the rest (a proxy, an SNI override, a streamed body) through the
adapter it subclasses. The switch: ``AltinnAiohttpTransport(fast_path=False)``, or the environment variable
``ALTINN_EVENTS_AIOHTTP_FAST_PATH=0`` for every transport built without ``fast_path=``; the client tests
run both ways (the ``aiohttp_path`` fixture), so the two paths answer alike.

What both paths share is here: the size bound (a larger ``Content-Length`` is refused before reading, a
longer body when it passes the limit) and the exception mapping: aiohttp's errors become the httpx errors
httpx's own transport raises for the same failure (``_ERRORS``), where the adapter calls a refused
connection, a failed certificate or a dropped connection a ``ConnectTimeout``, on the request and on the
body read alike.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from typing import Any, NoReturn

import aiohttp
import httpx
from aiohttp import ClientSession
from httpx_aiohttp import AiohttpTransport

try:  # a private name of httpx-aiohttp (pinned below its next minor in pyproject.toml): a seam, see below
    from httpx_aiohttp.transport import map_aiohttp_exceptions as _adapter_map_errors
except ImportError:  # a later httpx-aiohttp moved or renamed it (tests/unit/client/test_transport_seam.py)
    _adapter_map_errors = None

from airflow_provider_altinn_events.client import _aiohttp_fast as _fast
from airflow_provider_altinn_events.client._aiohttp_fast import FAST_PATH_ENV
from airflow_provider_altinn_events.client.protocol import MAX_RESPONSE_BYTES
from airflow_provider_altinn_events.exceptions import AltinnConfigError

__all__ = ["FAST_PATH_ENV", "AltinnAiohttpTransport", "fast_path_from_environment"]

#: aiohttp's errors → httpx's, most specific first. httpx-aiohttp's own table maps every
#: ``ClientConnectionError`` (a refused connection, a failed certificate, a dropped connection) to
#: ``ConnectTimeout``, so the client reported them as "timed out after 30 s"; these are what httpx's own
#: transport raises for the same failures, so both clients classify them alike (``errors.error_from_transport``).
_ERRORS: tuple[tuple[type[BaseException], type[httpx.TransportError]], ...] = (
    (aiohttp.ClientProxyConnectionError, httpx.ProxyError),
    (aiohttp.ClientHttpProxyError, httpx.ProxyError),
    (aiohttp.ClientConnectorError, httpx.ConnectError),  # refused, DNS, TLS handshake and certificate
    (aiohttp.ServerFingerprintMismatch, httpx.ConnectError),
    (aiohttp.ConnectionTimeoutError, httpx.ConnectTimeout),
    (aiohttp.SocketTimeoutError, httpx.ReadTimeout),
    (aiohttp.ServerTimeoutError, httpx.ReadTimeout),
    (aiohttp.ServerDisconnectedError, httpx.RemoteProtocolError),
    (aiohttp.ClientPayloadError, httpx.ReadError),
    (aiohttp.ClientConnectionError, httpx.ReadError),
    (aiohttp.NonHttpUrlClientError, httpx.UnsupportedProtocol),
    (aiohttp.InvalidUrlClientError, httpx.UnsupportedProtocol),
)


def _httpx_error(error: BaseException) -> httpx.TransportError | None:
    for source, target in _ERRORS:
        if isinstance(error, source):
            return target(str(error) or type(error).__name__)
    return None


@contextlib.contextmanager
def _map_with_our_table() -> Iterator[None]:
    """The fallback for the adapter's private ``map_aiohttp_exceptions``: aiohttp's errors mapped with
    ``_ERRORS`` alone. Every error the adapter's table (httpx-aiohttp 0.2) knows is in ``_ERRORS``, and
    ``_map_errors`` re-maps those anyway, so the outcome is the same; an aiohttp error neither table knows
    goes through unmapped (the client's ``error_from_transport`` still sees it)."""
    try:
        yield
    except aiohttp.ClientError as error:
        mapped = _httpx_error(error)
        if mapped is None:
            raise
        raise mapped from error


@contextlib.contextmanager
def _map_errors() -> Iterator[None]:
    """aiohttp's errors as httpx's (see ``_ERRORS``), with the aiohttp error as ``__cause__``; also re-maps
    what the parent adapter already mapped with its own table.

    The adapter's mapping context is a private name of httpx-aiohttp (``httpx_aiohttp.transport``); if a
    later release moves it, the import above falls back to :func:`_map_with_our_table`, so this module still
    imports and maps every error it did (docs/performance.rst, "seams")."""
    adapter_map = _adapter_map_errors if _adapter_map_errors is not None else _map_with_our_table
    try:
        with adapter_map():  # anything our table leaves out, as the adapter would map it
            yield
    except httpx.TransportError as error:
        cause = error.__cause__
        mapped = _httpx_error(cause) if isinstance(cause, aiohttp.ClientError) else None
        if mapped is None or type(mapped) is type(error):
            raise
        raise mapped from cause


def fast_path_from_environment() -> bool:
    """``ALTINN_EVENTS_AIOHTTP_FAST_PATH``: unset or ``1``/``true``/``yes``/``on`` for the fast path,
    ``0``/``false``/``no``/``off`` for the adapter; anything else is refused, naming the variable."""
    value = os.environ.get(FAST_PATH_ENV, "").strip().lower()
    if value in ("", "1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off"):
        return False
    raise AltinnConfigError(
        f"{FAST_PATH_ENV} must be one of 1, true, yes, on (the fast path) or 0, false, no, off (httpx-aiohttp's "
        f"adapter), not {value!r}",
        field=FAST_PATH_ENV,
    )


def _raise_mapped(error: Exception) -> NoReturn:
    """``error`` raised as :func:`_map_errors` maps it: what the fast path raised, mapped as the adapter path's
    errors are, only once something was raised."""
    with _map_errors():
        raise error
    raise error  # not reached: _map_errors lets every error through, mapped or not


class AltinnAiohttpTransport(AiohttpTransport):  # type: ignore[misc]  # httpx_aiohttp is not type-checked here
    """``AiohttpTransport`` that returns responses with their body already read (see the module text).

    Requests the fast path does not take (a streamed body, a proxy, an SNI override) go to the parent class.

    :param max_body_bytes: the largest body it reads (:data:`.protocol.MAX_RESPONSE_BYTES`): a larger
        ``Content-Length`` is refused before reading, a body without one when it passes the limit
        (``AltinnPayloadError``). A compressed body is handed over unread for the client to decode with the
        same bound.
    :param fast_path: ``True`` to read answers whole through ``client/_aiohttp_fast.py``, ``False`` to send
        every request through httpx-aiohttp's adapter (the body is then read, with the same bound, by the
        client); by default the environment variable ``ALTINN_EVENTS_AIOHTTP_FAST_PATH`` decides (on unless
        it says ``0``). The figures for each are in ``docs/performance.rst`` ("hot-path", "seams").
    """

    def __init__(
        self, *, max_body_bytes: int = MAX_RESPONSE_BYTES, fast_path: bool | None = None, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        self.fast_path = fast_path_from_environment() if fast_path is None else fast_path
        self._timeouts = _fast.Timeouts()
        self._max_body_bytes = max_body_bytes

    async def _adapter(self, request: httpx.Request) -> httpx.Response:
        with _map_errors():
            response: httpx.Response = await super().handle_async_request(request)
        return response

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if not self.fast_path or not _fast.handles(request, proxied=self.proxy is not None):
            return await self._adapter(request)
        session: Any = getattr(self, "client", None)  # the parent keeps a session, a factory or None
        if not isinstance(session, ClientSession):
            session = self.client = self.get_client()
        try:  # a try costs nothing until it catches; a context manager costs two generator steps per poll
            return await _fast.send_read_whole(
                session, request, self._timeouts(request), self._max_body_bytes
            )
        except Exception as error:
            _raise_mapped(error)

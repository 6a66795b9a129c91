"""The async client's transport: httpx-aiohttp's, with each answer read whole in one step.

``httpx_aiohttp.AiohttpTransport`` hands httpx a streaming response: httpx then reads the body through its
stream layers (``aiter_bytes`` over ``aiter_raw`` over an aiohttp chunk iterator, with a decoder and a
close step), and the adapter builds a new ``aiohttp.ClientTimeout`` for every request. The clients read
every body in full anyway (Altinn answers are JSON documents, at most one page of 1,000 events), so this
transport reads it in one ``aiohttp`` call and returns an ``httpx.Response`` that already holds its
content; a compressed body is handed over unread, for the client to decode with its size bound, and bodies
over :data:`~.protocol.MAX_RESPONSE_BYTES` are refused before they are read whole. Same connections, proxies,
TLS and timeouts as the adapter; the body handling and the per-request allocations differ (a triggerer pays
this per poll: see ``docs/performance.rst``), and so does the exception mapping: aiohttp's errors become the
httpx errors httpx's own transport raises for the same failure (``_ERRORS``), where the adapter calls a
refused connection, a failed certificate or a dropped connection a ``ConnectTimeout``.

The query goes to aiohttp apart from the URL (``params``), as a plain aiohttp user would send it: yarl
caches the URLs it parses from strings (an LRU of 128), and a full URL per waiting trigger kept about 1 KiB
per trigger in that cache; the base URL is the same for every poll, and the URL with the query that aiohttp
builds from it is not cached. The query's values are handed over decoded and aiohttp encodes them, as for
any ``params``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import aiohttp
import httpx
from aiohttp import ClientResponse, ClientSession, ClientTimeout
from httpx_aiohttp import AiohttpTransport

try:  # a private name of httpx-aiohttp (pinned below its next minor in pyproject.toml): a seam, see below
    from httpx_aiohttp.transport import map_aiohttp_exceptions as _adapter_map_errors
except ImportError:  # a later httpx-aiohttp moved or renamed it (tests/unit/client/test_transport_seam.py)
    _adapter_map_errors = None

from airflow_provider_altinn_events.client.protocol import MAX_RESPONSE_BYTES, response_too_large

__all__ = ["AltinnAiohttpTransport"]

_HTTP_1_1 = b"HTTP/1.1"
_CHUNK = 64 * 1024
#: compressed bodies go to httpx in pieces this small, so the client's bounded read stops a body that
#: decompresses past the limit after at most about 8 MiB more (deflate expands by at most ~1,030 times)
_COMPRESSED_CHUNK = 8 * 1024


class _Pieces(httpx.AsyncByteStream):
    """A compressed body already received, handed to httpx in pieces: httpx decodes it while the client
    reads it with a bound, instead of all at once when the response is built."""

    def __init__(self, body: bytes) -> None:
        self._body = body

    async def __aiter__(self) -> Any:
        body = self._body
        for start in range(0, len(body), _COMPRESSED_CHUNK):
            yield body[start : start + _COMPRESSED_CHUNK]


async def _read_at_most(answer: ClientResponse, request: httpx.Request, limit: int) -> bytes:
    """The body as sent (still compressed, if it is), refused past ``limit`` bytes before it is read whole."""
    declared = answer.content_length
    if declared is not None:
        if declared > limit:
            raise response_too_large(request, limit, declared)
        body: bytes = await answer.read()  # one call (the poll hot path); aiohttp stops at Content-Length
        return body
    chunks: list[bytes] = []
    total = 0
    async for chunk in answer.content.iter_chunked(_CHUNK):
        total += len(chunk)
        if total > limit:
            raise response_too_large(request, limit)
        chunks.append(chunk)
    return b"".join(chunks)


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


class AltinnAiohttpTransport(AiohttpTransport):  # type: ignore[misc]  # httpx_aiohttp is not type-checked here
    """``AiohttpTransport`` that returns responses with their body already read (see the module text).

    Requests it does not specialise (a streamed body, a proxy, an SNI override) go to the parent class.

    :param max_body_bytes: the largest body it reads (:data:`.protocol.MAX_RESPONSE_BYTES`): a larger
        ``Content-Length`` is refused before reading, a body without one when it passes the limit
        (``AltinnPayloadError``). A compressed body is handed over unread for the client to decode with the
        same bound.
    """

    def __init__(self, *, max_body_bytes: int = MAX_RESPONSE_BYTES, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._timeouts: dict[tuple[Any, Any, Any], ClientTimeout] = {}
        self._max_body_bytes = max_body_bytes

    async def _adapter(self, request: httpx.Request) -> httpx.Response:
        with _map_errors():
            response: httpx.Response = await super().handle_async_request(request)
        return response

    def _timeout(self, request: httpx.Request) -> ClientTimeout:
        timeout = request.extensions.get("timeout", {})
        key = (timeout.get("connect"), timeout.get("read"), timeout.get("pool"))
        found = self._timeouts.get(key)
        if found is None:  # one per distinct timeout: a client has one or two
            found = self._timeouts[key] = ClientTimeout(sock_connect=key[0], sock_read=key[1], connect=key[2])
        return found

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if self.proxy is not None or "sni_hostname" in request.extensions or request.url.fragment:
            return await self._adapter(request)
        try:
            data = request.content or None
        except httpx.RequestNotRead:  # a streamed body: the adapter knows how to send one
            return await self._adapter(request)
        session: Any = getattr(self, "client", None)  # the parent keeps a session, a factory or None
        if not isinstance(session, ClientSession):
            session = self.client = self.get_client()
        url = request.url
        with _map_errors():
            async with session.request(
                request.method,
                str(url).partition("?")[0],  # no fragment here (those go to the adapter above)
                params=url.params.multi_items() or None,
                headers=request.headers,
                data=data,
                allow_redirects=False,
                auto_decompress=False,
                compress=False,
                timeout=self._timeout(request),
            ) as answer:
                body = await _read_at_most(answer, request, self._max_body_bytes)
        extensions: dict[str, Any] = {"http_version": _HTTP_1_1}
        if answer.reason:
            extensions["reason_phrase"] = answer.reason.encode()
        if answer.headers.get("Content-Encoding", "identity").lower() not in ("", "identity"):
            return httpx.Response(
                status_code=answer.status,
                headers=answer.raw_headers,
                stream=_Pieces(body),
                request=request,
                extensions=extensions,
            )
        return httpx.Response(
            status_code=answer.status,
            headers=answer.raw_headers,
            content=body,
            request=request,
            extensions=extensions,
        )

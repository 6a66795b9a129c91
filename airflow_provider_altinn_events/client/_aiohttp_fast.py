"""The aiohttp fast path: one request sent through aiohttp and its answer read whole, in one step.

This is the one non-idiomatic part of the async client's transport (docs/performance.rst, "seams"), kept
apart so it can be switched off (``AltinnAiohttpTransport(fast_path=False)`` or the environment variable
:data:`FAST_PATH_ENV`) and so the client tests run every request both ways (``tests/unit/client`` and the
emulator tests, through the ``aiohttp_path`` fixture): a difference between the two paths fails a test.

``httpx_aiohttp.AiohttpTransport`` hands httpx a streaming response: httpx then reads the body through its
stream layers (``aiter_bytes`` over ``aiter_raw`` over an aiohttp chunk iterator, with a decoder and a
close step), and the adapter builds a new ``aiohttp.ClientTimeout`` for every request. The clients read
every body in full anyway (Altinn answers are JSON documents, at most one page of 1,000 events), so this
path reads it in one ``aiohttp`` call and returns an ``httpx.Response`` that already holds its content; a
compressed body is handed over unread, for the client to decode with its size bound, and bodies over the
transport's ``max_body_bytes`` are refused before they are read whole.

The query goes to aiohttp apart from the URL (``params``), as a plain aiohttp user would send it: yarl
caches the URLs it parses from strings (an LRU of 128), and a full URL per waiting trigger kept about 1 KiB
per trigger in that cache; the base URL is the same for every poll, and the URL with the query that aiohttp
builds from it is not cached. The query's values are handed over decoded and aiohttp encodes them, as for
any ``params``: the events request carries the pairs it was encoded from (``protocol.QUERY_EXTENSION``, used
only while ``request.url`` is the URL built from them), any other request's query is decoded (``parse_qsl``,
in its order).

Errors are not mapped here: the caller (``transport.py``) maps aiohttp's errors for both paths alike.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl

import httpx
from aiohttp import ClientResponse, ClientSession, ClientTimeout

from airflow_provider_altinn_events.client.protocol import QUERY_EXTENSION, QueryParts, response_too_large

__all__ = ["FAST_PATH_ENV", "Timeouts", "handles", "send_read_whole"]

#: ``0``/``false``/``no``/``off`` sends every request through httpx-aiohttp's adapter instead (a transport
#: built with an explicit ``fast_path=`` ignores it); read when a transport is built.
FAST_PATH_ENV = "ALTINN_EVENTS_AIOHTTP_FAST_PATH"

_HTTP_1_1 = b"HTTP/1.1"
_CHUNK = 64 * 1024
#: compressed bodies go to httpx in pieces this small, so the client's bounded read stops a body that
#: decompresses past the limit after at most about 8 MiB more (deflate expands by at most ~1,030 times)
_COMPRESSED_CHUNK = 8 * 1024


class Timeouts:
    """One ``aiohttp.ClientTimeout`` per distinct httpx timeout (a client has one or two), instead of one per
    request as the adapter builds."""

    __slots__ = ("_known",)

    def __init__(self) -> None:
        self._known: dict[tuple[Any, Any, Any], ClientTimeout] = {}

    def __call__(self, request: httpx.Request) -> ClientTimeout:
        timeout = request.extensions.get("timeout", {})
        key = (timeout.get("connect"), timeout.get("read"), timeout.get("pool"))
        found = self._known.get(key)
        if found is None:
            found = self._known[key] = ClientTimeout(sock_connect=key[0], sock_read=key[1], connect=key[2])
        return found


def handles(request: httpx.Request, *, proxied: bool) -> bool:
    """Whether this path sends ``request``: not through a proxy, not with an SNI override or a fragment, and
    not with a streamed body (the adapter knows how to send those)."""
    if proxied or "sni_hostname" in request.extensions or request.url.fragment:
        return False
    try:
        request.content  # noqa: B018 - raises for a streamed body not read yet
    except httpx.RequestNotRead:
        return False
    return True


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
    """The body as sent (still compressed, if it is), refused past ``limit`` bytes before it is read whole:
    at once if ``Content-Length`` says so, else when the chunks read pass it. (A body within its declared
    length is read in :func:`send_read_whole` itself, one coroutine fewer per poll.)"""
    declared = answer.content_length
    if declared is not None:
        if declared > limit:
            raise response_too_large(request, limit, declared)
        body: bytes = await answer.read()
        return body
    chunks: list[bytes] = []
    total = 0
    async for chunk in answer.content.iter_chunked(_CHUNK):
        total += len(chunk)
        if total > limit:
            raise response_too_large(request, limit)
        chunks.append(chunk)
    return b"".join(chunks)


async def send_read_whole(
    session: ClientSession, request: httpx.Request, timeout: ClientTimeout, max_body_bytes: int
) -> httpx.Response:
    """Send ``request`` (one :func:`handles` accepts) and return its answer with the body read."""
    url = request.url
    query: QueryParts | None = request.extensions.get(QUERY_EXTENSION)
    if query is not None and query.url is url:  # as built: the pairs it was encoded from
        target, params = query.base, query.params
    else:
        target = str(url).partition("?")[0]  # no fragment here (those go to the adapter)
        params = tuple(parse_qsl(url.query.decode("ascii"), keep_blank_values=True))
    async with session.request(
        request.method,
        target,
        params=params or None,
        headers=request.headers.multi_items(),  # one pass; as a mapping, aiohttp would look up each key
        data=request.content or None,
        allow_redirects=False,
        auto_decompress=False,
        compress=False,
        timeout=timeout,
    ) as answer:
        declared = answer.content_length
        if declared is not None and declared <= max_body_bytes:  # a poll's answer: read in one call
            body: bytes = await answer.read()  # aiohttp stops at Content-Length
        else:
            body = await _read_at_most(answer, request, max_body_bytes)
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
    # The body as ``Response.read()`` would leave it, without running it through httpx's stream, decoder and
    # chunker (``content=`` does, about a tenth of a poll): ``_content`` is the attribute httpx's own ``read``
    # sets and every reader of ``.content``, ``.text``, ``.json()`` and ``aiter_bytes`` takes first. A seam
    # (docs/performance.rst, "seams"), shared with the clients' bounded read; tests/integration/
    # test_transport.py compares the result with the adapter's answer.
    response = httpx.Response(
        status_code=answer.status,
        headers=answer.raw_headers,
        stream=httpx.ByteStream(body),
        request=request,
        extensions=extensions,
    )
    response._content = body
    response.is_closed = True  # nothing left to close: aiohttp has released the connection
    return response

"""The async client's transport over real HTTP on 127.0.0.1: answers read whole must look exactly like the
httpx-aiohttp adapter's (status, headers, decoded body), and failures must map to the httpx errors httpx's own
transport raises for them (the adapter's table maps too many to ConnectTimeout)."""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import json
import socket
import struct
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import parse_qsl

import httpx
import pytest
from aiohttp import web
from httpx_aiohttp import AiohttpTransport

from airflow_provider_altinn_events.client import _aiohttp_fast
from airflow_provider_altinn_events.client import protocol as p
from airflow_provider_altinn_events.client.transport import AltinnAiohttpTransport
from tests.unit.client.helpers import settings

PAGE = [{"id": str(i), "type": "t", "source": "s", "specversion": "1.0"} for i in range(50)]


async def _page(_request: web.Request) -> web.Response:
    return web.json_response(PAGE, headers={"next": "https://x/events?after=49"})


async def _gzipped(_request: web.Request) -> web.Response:
    body = gzip.compress(json.dumps(PAGE).encode())
    return web.Response(body=body, headers={"Content-Encoding": "gzip", "Content-Type": "application/json"})


async def _chunked(request: web.Request) -> web.StreamResponse:
    response = web.StreamResponse(
        headers={"Content-Type": "application/json", "next": "https://x/events?after=49"}
    )
    response.enable_chunked_encoding()
    await response.prepare(request)
    body = json.dumps(PAGE).encode()
    await response.write(body[:100])
    await response.write(body[100:])
    await response.write_eof()
    return response


async def _slow(_request: web.Request) -> web.Response:
    await asyncio.sleep(2)
    return web.json_response([])


async def _echo(request: web.Request) -> web.Response:
    body = await request.read()
    return web.json_response(
        {
            "body": body.decode(),
            "auth": request.headers.get("Authorization"),
            "query": request.rel_url.raw_query_string,
        },
        status=201,
        reason="Made",
    )


async def _events(request: web.Request) -> web.Response:
    return web.json_response(
        {"query": request.rel_url.raw_query_string, "headers": [[k, v] for k, v in request.headers.items()]}
    )


@pytest.fixture
async def server() -> AsyncIterator[str]:
    app = web.Application()
    app.router.add_get("/events/api/v1/events", _events)
    app.router.add_get("/page", _page)
    app.router.add_get("/gzip", _gzipped)
    app.router.add_get("/chunked", _chunked)
    app.router.add_get("/slow", _slow)
    app.router.add_post("/echo", _echo)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


async def _get_both(url: str) -> tuple[httpx.Response, httpx.Response]:
    async with (
        httpx.AsyncClient(transport=AltinnAiohttpTransport()) as ours,
        httpx.AsyncClient(transport=AiohttpTransport()) as adapter,
    ):
        return await ours.get(url), await adapter.get(url)


@pytest.mark.usefixtures("aiohttp_path")
async def test_a_page_reads_exactly_as_through_the_adapter(server: str) -> None:
    ours, adapter = await _get_both(f"{server}/page")
    assert ours.status_code == adapter.status_code == 200
    assert ours.content == adapter.content
    assert ours.json() == PAGE
    assert ours.headers["next"] == adapter.headers["next"] == "https://x/events?after=49"
    assert ours.reason_phrase == adapter.reason_phrase == "OK"
    assert ours.http_version == "HTTP/1.1"


@pytest.mark.usefixtures("aiohttp_path")
@pytest.mark.parametrize("path", ["/page", "/chunked", "/gzip"])
async def test_the_headers_are_exactly_the_adapters(server: str, path: str) -> None:
    """Every header as the server sent it, no more: built from a body already read, an httpx.Response would
    add a ``Content-Length`` the server did not send (to a chunked answer), which the adapter's does not."""
    ours, adapter = await _get_both(f"{server}{path}")
    assert ours.headers.multi_items() == adapter.headers.multi_items()
    assert ours.json() == adapter.json() == PAGE


@pytest.mark.usefixtures("aiohttp_path")
async def test_a_compressed_answer_is_decoded(server: str) -> None:
    ours, adapter = await _get_both(f"{server}/gzip")
    assert ours.headers["content-encoding"] == "gzip"
    assert ours.json() == adapter.json() == PAGE


@pytest.mark.usefixtures("aiohttp_path")
async def test_body_headers_query_and_reason_go_through_as_through_the_adapter(server: str) -> None:
    answers = []
    for transport in (AltinnAiohttpTransport(), AiohttpTransport()):
        async with httpx.AsyncClient(transport=transport) as client:
            response = await client.post(
                f"{server}/echo",
                params={"resource": "urn:altinn:resource:a b", "subject": "/org/1+2&x=y%", "after": "0"},
                content=b'{"id": "1"}',
                headers={"Authorization": "Bearer t0ken"},
            )
        assert (response.status_code, response.reason_phrase) == (201, "Made")
        answers.append(response.json())
    assert answers[0] == answers[1]
    assert answers[0]["body"] == '{"id": "1"}'
    assert answers[0]["auth"] == "Bearer t0ken"
    assert parse_qsl(answers[0]["query"]) == [  # re-encoded by aiohttp, but every value arrives intact
        ("resource", "urn:altinn:resource:a b"),
        ("subject", "/org/1+2&x=y%"),
        ("after", "0"),
    ]


@pytest.mark.usefixtures("aiohttp_path")
async def test_a_streamed_body_still_works_through_the_adapter_path(server: str) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        yield b'{"a": '
        yield b"1}"

    async with httpx.AsyncClient(transport=AltinnAiohttpTransport()) as client:
        response = await client.post(f"{server}/echo", content=chunks())
    assert response.json()["body"] == '{"a": 1}'


@pytest.mark.usefixtures("aiohttp_path")
async def test_a_slow_answer_is_an_httpx_timeout(server: str) -> None:
    async with httpx.AsyncClient(transport=AltinnAiohttpTransport(), timeout=0.3) as client:
        with pytest.raises(httpx.TimeoutException):
            await client.get(f"{server}/slow")


@pytest.mark.usefixtures("aiohttp_path")
async def test_a_refused_connection_maps_to_the_same_httpx_error_as_httpx_own_transport() -> None:
    """httpx's own transport raises ConnectError for a refused connection; the httpx-aiohttp adapter raises
    ConnectTimeout (its table maps every aiohttp connection error so), which made the async client report
    "timed out after 30 s". Ours raises what httpx's own transport raises, with aiohttp's error as the cause."""
    with socket.socket() as sock:  # a port that was free a moment ago: nothing listens there
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    raised: list[type[BaseException]] = []
    for transport in (AltinnAiohttpTransport(), httpx.AsyncHTTPTransport()):
        async with httpx.AsyncClient(transport=transport) as client:
            with pytest.raises(httpx.TransportError) as caught:
                await client.get(f"http://127.0.0.1:{port}/page")
        raised.append(type(caught.value))
    assert raised[0] is raised[1] is httpx.ConnectError


@pytest.mark.usefixtures("aiohttp_path")
async def test_the_adapter_path_maps_errors_the_same_way() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    async with httpx.AsyncClient(transport=AltinnAiohttpTransport()) as client:
        with pytest.raises(httpx.ConnectError):  # a fragment sends the request through the parent adapter
            await client.get(f"http://127.0.0.1:{port}/page#fragment")


async def test_one_timeout_object_per_distinct_timeout(server: str) -> None:
    transport = AltinnAiohttpTransport(fast_path=True)
    async with httpx.AsyncClient(transport=transport, timeout=5) as client:
        for _ in range(20):
            await client.get(f"{server}/page")
        await client.get(f"{server}/page", timeout=7)
    assert len(transport._timeouts._known) == 2


async def test_distinct_queries_do_not_fill_yarls_url_cache(server: str) -> None:
    """A waiting trigger's URL differs from every other trigger's only in its query. Sent whole, each one
    stays in yarl's LRU of parsed URLs (about 1 KiB each, up to 128); sent as base URL plus params, the cache
    holds the base URL once. The adapter, for contrast, adds one entry per distinct URL."""
    # yarl's cache of URLs parsed from strings, which aiohttp's URL(str) goes through
    from yarl._url import encode_url

    async def grown(transport: httpx.AsyncBaseTransport, tag: str) -> int:
        encode_url.cache_clear()
        async with httpx.AsyncClient(transport=transport) as client:
            for i in range(40):
                response = await client.get(
                    f"{server}/page", params={"resource": f"urn:{tag}:{i}", "after": "0"}
                )
                assert response.status_code == 200
        return int(encode_url.cache_info().currsize)

    assert await grown(AltinnAiohttpTransport(fast_path=True), "ours") <= 2
    assert await grown(AiohttpTransport(), "adapter") >= 40


# -- both paths fail alike when the body breaks off ---------------------------------------------------------


async def _broken(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Answers with a head that promises more body than it sends, then (by path) closes, resets or stalls."""
    head = await reader.readuntil(b"\r\n\r\n")
    path = head.split(b" ")[1]
    writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n[1,2,3")
    await writer.drain()
    if path == b"/reset":
        await asyncio.sleep(0.05)
        sock = writer.get_extra_info("socket")
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        writer.transport.abort()
        return
    if path == b"/stall":
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.sleep(2)
    writer.close()


@pytest.fixture
async def broken_server() -> AsyncIterator[str]:
    server = await asyncio.start_server(_broken, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.close()


@pytest.mark.usefixtures("aiohttp_path")
@pytest.mark.parametrize(
    ("path", "expected"),
    [("/truncated", httpx.ReadError), ("/reset", httpx.ReadError), ("/stall", httpx.ReadTimeout)],
)
async def test_a_body_that_breaks_off_is_the_same_httpx_error_on_both_paths(
    broken_server: str, path: str, expected: type[httpx.TransportError]
) -> None:
    """The fast path reads the body inside the transport, the adapter path while httpx reads the stream: a
    body cut short, reset or stalled must raise the same error either way (both are retryable reads)."""
    async with httpx.AsyncClient(transport=AltinnAiohttpTransport(), timeout=0.3) as client:
        with pytest.raises(httpx.TransportError) as caught:
            await client.get(f"{broken_server}{path}")
    assert type(caught.value) is expected


@pytest.mark.parametrize("fast_path", [True, False])
async def test_the_switch_chooses_the_path(server: str, fast_path: bool) -> None:
    """The fast path returns the body already read; the adapter returns a stream for httpx to read."""
    transport = AltinnAiohttpTransport(fast_path=fast_path)
    try:
        response = await transport.handle_async_request(httpx.Request("GET", f"{server}/page"))
        assert hasattr(response, "_content") is fast_path
        await response.aread()
        assert response.json() == PAGE
    finally:
        await transport.aclose()


# -- the events request: its query handed to aiohttp as the pairs it was built from (protocol.QUERY_EXTENSION) --


async def _send(request: httpx.Request, fast_path: bool | None = None) -> dict[str, Any]:
    transport = AltinnAiohttpTransport(fast_path=fast_path)
    try:
        response = await transport.handle_async_request(request)
        await response.aread()
    finally:
        await transport.aclose()
    assert response.status_code == 200
    seen: dict[str, Any] = response.json()
    return seen


def _events_request(server: str, **kwargs: Any) -> httpx.Request:
    query: dict[str, Any] = dict(resource="urn:altinn:resource:a b:c", after="0", types=["x.y", "a&b"])
    return p.build_list_events_request(settings(host=server), **{**query, "subject": "/org/1+2%", **kwargs})


@pytest.mark.usefixtures("aiohttp_path")
async def test_an_events_request_arrives_with_its_query_and_headers(server: str) -> None:
    request = _events_request(server, size=7)
    seen = await _send(request)
    assert parse_qsl(seen["query"], keep_blank_values=True) == [
        ("resource", "urn:altinn:resource:a b:c"),
        ("after", "0"),
        ("type", "x.y"),
        ("type", "a&b"),
        ("subject", "/org/1+2%"),
        ("size", "7"),
    ]
    headers = {name.lower(): value for name, value in seen["headers"]}
    assert headers["accept"] == p.CLOUDEVENTS_JSON
    assert headers["host"] == request.url.netloc.decode()


async def test_an_events_request_given_another_url_goes_to_that_url(server: str) -> None:
    """The pairs an events request carries describe the URL it was built with: a request given another URL
    since goes with that URL's query, not the pairs."""
    request = _events_request(server)
    request.url = request.url.copy_set_param("after", "99")
    seen = await _send(request, fast_path=True)
    assert ("after", "99") in parse_qsl(seen["query"])
    assert ("after", "0") not in parse_qsl(seen["query"])


async def test_the_fast_path_does_not_decode_an_events_query_again(
    server: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Fails if the fast path stops using the pairs an events request carries and decodes its URL's query
    again (what a poll paid before; docs/performance.rst, "poll-floor")."""

    def refuse(*_args: Any, **_kwargs: Any) -> Any:
        raise AssertionError("the events query was decoded again")

    monkeypatch.setattr(_aiohttp_fast, "parse_qsl", refuse)
    seen = await _send(_events_request(server), fast_path=True)
    assert ("after", "0") in parse_qsl(seen["query"])

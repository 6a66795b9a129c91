"""Bounded work per page: a page with more events than ``size`` and a body over ``max_response_bytes`` are
refused, classified (``AltinnPayloadError``, not retried), and a large body is not read whole first.

First with mock transports (the client core), then over real HTTP against a small server on 127.0.0.1 that
answers tokens like Maskinporten and the exchange, and ``GET /events`` badly on purpose.
"""

from __future__ import annotations

import gzip
import json
import threading
import time
from collections.abc import Iterator
from contextlib import suppress
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import jwt
import pytest

from airflow_provider_altinn_events.client.clients import AltinnEventsClient, AsyncAltinnEventsClient
from airflow_provider_altinn_events.client.protocol import MAX_RESPONSE_BYTES
from airflow_provider_altinn_events.client.retry import RetryPolicy
from airflow_provider_altinn_events.exceptions import AltinnConfigError, AltinnPayloadError
from tests.unit.client.helpers import RESOURCE, FakeAltinn, event, rsa_key, settings

FAST = RetryPolicy(max_attempts=4, backoff_base_seconds=0.001, backoff_max_seconds=0.01, budget_seconds=5)
MiB = 1024 * 1024


def many(request: httpx.Request) -> httpx.Response:
    return httpx.Response(200, json=[event(f"e{i}") for i in range(1000)])


def test_a_page_longer_than_size_is_refused_and_not_retried() -> None:
    fake = FakeAltinn(events_handler=many)
    with AltinnEventsClient(settings(), transport=fake.transport(), retry=FAST) as client:
        with pytest.raises(AltinnPayloadError, match="1000 events, more than the 100 asked for"):
            client.list_events(resource=RESOURCE, size=100)
        assert len(client.list_events(resource=RESOURCE, size=1000)) == 1000
    assert sum(r.url.path.endswith("/events") for r in fake.requests) == 2


async def test_a_page_longer_than_size_is_refused_and_not_retried_async() -> None:
    fake = FakeAltinn(events_handler=many)
    async with AsyncAltinnEventsClient(settings(), transport=fake.transport(), retry=FAST) as client:
        with pytest.raises(AltinnPayloadError, match="more than the 100 asked for") as info:
            await client.list_events(resource=RESOURCE, size=100)
    assert not info.value.retryable
    assert sum(r.url.path.endswith("/events") for r in fake.requests) == 1


def big(request: httpx.Request) -> httpx.Response:
    return httpx.Response(200, json=[event(f"e{i}", data="x" * 1000) for i in range(100)])


def test_a_body_over_the_limit_is_refused() -> None:
    fake = FakeAltinn(events_handler=big)
    with (
        AltinnEventsClient(
            settings(), transport=fake.transport(), retry=FAST, max_response_bytes=50_000
        ) as client,
        pytest.raises(AltinnPayloadError, match="larger than 50000 bytes"),
    ):
        client.list_events(resource=RESOURCE, size=100)
    assert sum(r.url.path.endswith("/events") for r in fake.requests) == 1


@pytest.mark.usefixtures("aiohttp_path")
async def test_a_body_over_the_limit_is_refused_async() -> None:
    fake = FakeAltinn(events_handler=big)
    async with AsyncAltinnEventsClient(
        settings(), transport=fake.transport(), retry=FAST, max_response_bytes=50_000
    ) as client:
        with pytest.raises(AltinnPayloadError, match="larger than 50000 bytes"):
            await client.list_events(resource=RESOURCE, size=100)


@pytest.mark.usefixtures("aiohttp_path")
async def test_a_body_over_the_limit_is_refused_on_every_poll_async() -> None:
    """The first request fetches the token (through ``AsyncClient.send``); the next ones, with a fresh token,
    go straight to the transport, whose answer comes back read and closed: each is checked all the same."""
    fake = FakeAltinn(events_handler=big)
    async with AsyncAltinnEventsClient(
        settings(), transport=fake.transport(), retry=FAST, max_response_bytes=50_000
    ) as client:
        for _ in range(2):
            with pytest.raises(AltinnPayloadError, match="larger than 50000 bytes"):
                await client.list_events(resource=RESOURCE, size=100)
    assert sum(r.url.path.endswith("/events") for r in fake.requests) == 2


@pytest.mark.parametrize("value", [0, -1, True, 1.5, "8MiB"])
def test_max_response_bytes_is_checked(value: Any) -> None:
    with pytest.raises(AltinnConfigError) as info:
        AltinnEventsClient(settings(), max_response_bytes=value)
    assert info.value.field == "max_response_bytes"


# -- over real HTTP -------------------------------------------------------------------------------------------


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a client that hangs up on a body it refuses is the point of these tests


class BadEvents:
    """Maskinporten, the exchange and ``GET /events`` on 127.0.0.1; ``mode`` says how the events answer is
    bad. Counts the events requests and the body bytes it managed to send."""

    BOMB = gzip.compress(b"[" + b" " * (100 * MiB) + b"]", compresslevel=6)

    def __init__(self) -> None:
        self.mode = "many"
        self.requests = 0
        self.sent = 0
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                self._send(200, json.dumps({"access_token": "mp", "expires_in": 120}).encode())

            def do_GET(self) -> None:
                if "/exchange/" in self.path:  # the Altinn token exchange is a GET
                    now = int(time.time())
                    claims = {"iat": now, "exp": now + 1800, "scope": "altinn:events.subscribe"}
                    self._send(200, jwt.encode(claims, rsa_key(1), algorithm="RS256").encode())
                    return
                server.requests += 1
                with suppress(BrokenPipeError, ConnectionResetError):  # the client stopped reading
                    server.answer(self)

            def _send(self, status: int, body: bytes, **headers: str) -> None:
                self.send_response(status)
                self.send_header("Content-Length", str(len(body)))
                for name, value in headers.items():
                    self.send_header(name.replace("_", "-"), value)
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = _QuietServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"

    def answer(self, handler: Any) -> None:
        if self.mode == "many":  # 1,000 events, whatever the size asked for
            body = json.dumps([event(f"e{i}") for i in range(1000)]).encode()
            handler._send(200, body, Content_Type="application/json")
            self.sent += len(body)
        elif self.mode in ("huge", "endless"):  # 64 MiB declared, or no length at all and no end
            chunk = b" " * MiB
            handler.send_response(200)
            handler.send_header("Content-Type", "application/json")
            if self.mode == "huge":
                handler.send_header("Content-Length", str(64 * MiB))
            else:
                handler.send_header("Transfer-Encoding", "chunked")
            handler.end_headers()
            for _ in range(64):
                if self.mode == "huge":
                    handler.wfile.write(chunk)
                else:
                    handler.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                self.sent += len(chunk)
        elif self.mode == "bomb":  # 100 KiB that decompress to 100 MiB
            body = self.BOMB
            handler._send(200, body, Content_Type="application/json", Content_Encoding="gzip")
            self.sent += len(body)

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


@pytest.fixture
def bad_events() -> Iterator[BadEvents]:
    server = BadEvents()
    try:
        yield server
    finally:
        server.close()


def _settings(server: BadEvents) -> Any:
    return settings(host=server.url)


MESSAGES = {
    "many": "1000 events, more than the 100 asked for",
    "huge": f"larger than {MAX_RESPONSE_BYTES} bytes \\(Content-Length {64 * MiB}\\)",
    "endless": f"larger than {MAX_RESPONSE_BYTES} bytes",
    "bomb": f"larger than {MAX_RESPONSE_BYTES} bytes",
}


@pytest.mark.parametrize("mode", list(MESSAGES))
def test_over_http_the_sync_client_refuses_without_reading_it_all(bad_events: BadEvents, mode: str) -> None:
    bad_events.mode = mode
    with (
        AltinnEventsClient(_settings(bad_events), retry=FAST) as client,
        pytest.raises(AltinnPayloadError, match=MESSAGES[mode]) as info,
    ):
        client.list_events(resource=RESOURCE, size=100)
    assert not info.value.retryable and bad_events.requests == 1
    if mode in ("huge", "endless"):
        assert bad_events.sent < 64 * MiB  # it stopped reading; the server could not send it all
    print(f"\n{mode}: refused after the server sent {bad_events.sent / MiB:.1f} MiB")


@pytest.mark.usefixtures("aiohttp_path")
@pytest.mark.parametrize("mode", list(MESSAGES))
async def test_over_http_the_async_client_refuses_without_reading_it_all(
    bad_events: BadEvents, mode: str
) -> None:
    bad_events.mode = mode
    async with AsyncAltinnEventsClient(_settings(bad_events), retry=FAST) as client:
        with pytest.raises(AltinnPayloadError, match=MESSAGES[mode]) as info:
            await client.list_events(resource=RESOURCE, size=100)
    assert not info.value.retryable and bad_events.requests == 1
    if mode in ("huge", "endless"):
        assert bad_events.sent < 64 * MiB
    print(f"\n{mode}: refused after the server sent {bad_events.sent / MiB:.1f} MiB")

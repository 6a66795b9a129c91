"""Security properties of the client core over real sockets on 127.0.0.1 (issue 12, items 4 and 5).

* A hostile stand-in for Maskinporten, the token exchange and the Events API echoes what it received (the
  signed grant, the Maskinporten token, the Altinn token, a static token) into every server-controlled string:
  the OAuth ``error`` and ``error_description``, the HTTP reason phrase, ``x-request-id`` and problem details.
  None of it may reach ``str()``/``repr()`` of the error, its traceback, a trigger's error payload,
  ``test_connection``'s message or any log record.
* A refused connection and a certificate that fails verification are reported as what they are by both
  clients: refused is a retryable transport error that says "connection refused" (not "timed out"), a
  certificate failure is permanent (sent once, never retried) and says so. TLS stays verified.
"""

from __future__ import annotations

import asyncio
import datetime
import ipaddress
import json
import logging
import socket
import ssl
import threading
import traceback
import urllib.parse
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from airflow_provider_altinn_events._payloads import TriggerPayload
from airflow_provider_altinn_events.client.clients import AltinnEventsClient, AsyncAltinnEventsClient
from airflow_provider_altinn_events.client.retry import RetryPolicy
from airflow_provider_altinn_events.client.settings import AltinnSettings
from airflow_provider_altinn_events.exceptions import (
    AltinnError,
    AltinnForbiddenError,
    AltinnTransportError,
    TokenExchangeError,
    TokenGrantError,
)
from airflow_provider_altinn_events.hooks.altinn_events import AltinnEventsHook
from tests.unit.client.helpers import conn, pem, rsa_key

STATIC_TOKEN = "opaque-static-altinn-token-5f2b9c"  # not a JWT: only its Bearer shape gives it away


@dataclass
class Echo:
    """What the stand-in received and issued: every credential that must never show up on our side."""

    mode: str
    secrets: list[str] = field(default_factory=list)
    requests: int = 0

    def keep(self, value: str) -> str:
        if value:
            self.secrets.append(value)
        return value


def _handler(echo: Echo) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:  # keep the test output quiet
            pass

        def _answer(self, status: int, reason: str, body: Any, echoed: str) -> None:
            data = (body if isinstance(body, str) else json.dumps(body)).encode()
            self.send_response(status, reason)
            self.send_header("Content-Type", "application/json")
            self.send_header("x-request-id", echoed)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_POST(self) -> None:  # the Maskinporten token endpoint
            echo.requests += 1
            length = int(self.headers.get("Content-Length", 0))
            form = dict(urllib.parse.parse_qsl(self.rfile.read(length).decode()))
            assertion = echo.keep(form.get("assertion", ""))
            if echo.mode == "grant":
                self._answer(
                    400,
                    f"Bad grant {assertion}",
                    {
                        "error": f"invalid_grant {assertion}",
                        "error_description": f"echo: assertion={assertion}",
                    },
                    assertion,
                )
                return
            now = int(datetime.datetime.now(datetime.timezone.utc).timestamp())
            token = echo.keep(jwt.encode({"iat": now, "exp": now + 120, "scope": "s"}, "k" * 32))
            self._answer(200, "OK", {"access_token": token, "token_type": "Bearer", "expires_in": 120}, "1")

        def do_GET(self) -> None:
            echo.requests += 1
            authorization = self.headers.get("Authorization", "")
            echo.keep(authorization.removeprefix("Bearer "))
            if self.path.startswith("/authentication/api/v1/exchange/"):
                if echo.mode == "exchange":
                    self._answer(
                        401, f"Unauthorized {authorization}", {"title": authorization}, authorization
                    )
                    return
                now = int(datetime.datetime.now(datetime.timezone.utc).timestamp())
                token = echo.keep(jwt.encode({"iat": now, "exp": now + 1800, "n": echo.requests}, "a" * 32))
                data = token.encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/plain")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
                return
            problem = {
                "type": authorization,
                "title": f"Forbidden for {authorization}",
                "detail": f"your request carried {authorization}",
                "traceId": authorization,
                "errors": {authorization: [authorization]},
            }
            self._answer(403, f"Forbidden {authorization}", problem, authorization)

    return Handler


@pytest.fixture
def stand_in() -> Iterator[Callable[[str], tuple[str, Echo]]]:
    servers: list[ThreadingHTTPServer] = []

    def start(mode: str) -> tuple[str, Echo]:
        echo = Echo(mode)
        server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(echo))
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_address[1]}", echo

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


def _settings(base: str, mode: str) -> AltinnSettings:
    if mode == "static":
        return AltinnSettings.from_connection(conn(host=base, auth="altinn_token", password=STATIC_TOKEN))
    return AltinnSettings.from_connection(conn(host=base))


def _secrets(echo: Echo, mode: str) -> list[str]:
    found = [s for s in echo.secrets if s]
    if mode == "static":
        found.append(STATIC_TOKEN)
    assert found, "the stand-in saw no credential: the test would prove nothing"
    return found


def _texts(error: BaseException) -> list[str]:
    payload = TriggerPayload.failure("urn:altinn:resource:r", "0", error).to_dict()
    return [
        str(error),
        repr(error),
        "".join(traceback.format_exception(type(error), error, error.__traceback__)),
        json.dumps(payload),
        repr(getattr(error, "__dict__", {})),
    ]


EXPECTED = {
    "grant": TokenGrantError,
    "exchange": TokenExchangeError,
    "events": AltinnForbiddenError,
    "static": AltinnForbiddenError,
}


@pytest.mark.usefixtures("aiohttp_path")
@pytest.mark.parametrize("mode", list(EXPECTED))
def test_echoed_credentials_never_reach_errors_payloads_or_logs(
    mode: str,
    stand_in: Callable[[str], tuple[str, Echo]],
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    base, echo = stand_in(mode)
    caplog.set_level(logging.DEBUG, logger="airflow_provider_altinn_events")
    caplog.set_level(logging.INFO)  # httpx's per-response line carries the reason phrase
    with AltinnEventsClient(_settings(base, mode)) as client, pytest.raises(EXPECTED[mode]) as sync_info:
        client.list_subscriptions()

    async def run_async() -> AltinnError:
        async with AsyncAltinnEventsClient(_settings(base, mode)) as client:
            try:
                await client.list_subscriptions()
            except AltinnError as error:
                return error
        raise AssertionError("no error")

    async_error = asyncio.run(run_async())
    assert isinstance(async_error, EXPECTED[mode])
    texts = _texts(sync_info.value) + _texts(async_error)
    texts += [caplog.text, *(r.getMessage() for r in caplog.records), *capsys.readouterr()]
    secrets = _secrets(echo, mode)
    for secret in secrets:
        for text in texts:
            assert secret not in text
    assert "[redacted]" in str(sync_info.value) + str(async_error)


@pytest.mark.parametrize("mode", ["grant", "events"])
def test_test_connection_message_carries_no_echoed_credential(
    mode: str, stand_in: Callable[[str], tuple[str, Echo]], monkeypatch: pytest.MonkeyPatch
) -> None:
    base, echo = stand_in(mode)
    monkeypatch.setenv(
        "AIRFLOW_CONN_ALTINN_SECURITY_ECHO",
        json.dumps(
            {
                "conn_type": "altinn_events",
                "host": base,
                "login": "client-1",
                "password": pem(rsa_key()),
                "extra": {"environment": "custom", "key_id": "kid-1"},
            }
        ),
    )
    ok, message = AltinnEventsHook(altinn_events_conn_id="altinn_security_echo").test_connection()
    assert not ok
    assert message.startswith("Grant step failed" if mode == "grant" else "Events call failed")
    for secret in _secrets(echo, mode):
        assert secret not in message


# -- honest transport errors ------------------------------------------------------------------------------


def _closed_port() -> int:
    with socket.socket() as sock:  # free a moment ago: nothing listens there now
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _errors_of_both_clients(settings: AltinnSettings, retry: RetryPolicy) -> list[AltinnError]:
    errors: list[AltinnError] = []
    with AltinnEventsClient(settings, retry=retry) as client:
        try:
            client.list_subscriptions()
        except AltinnError as error:
            errors.append(error)

    async def run_async() -> None:
        async with AsyncAltinnEventsClient(settings, retry=retry) as client:
            try:
                await client.list_subscriptions()
            except AltinnError as error:
                errors.append(error)

    asyncio.run(run_async())
    assert len(errors) == 2
    return errors


@pytest.mark.usefixtures("aiohttp_path")
@pytest.mark.parametrize("auth", ["altinn_token", "maskinporten"])
def test_connection_refused_says_so_and_stays_retryable_in_both_clients(auth: str) -> None:
    base = f"http://127.0.0.1:{_closed_port()}"
    kwargs: dict[str, Any] = (
        {"auth": "altinn_token", "password": STATIC_TOKEN} if auth == "altinn_token" else {}
    )
    settings = AltinnSettings.from_connection(conn(host=base, **kwargs))
    for error in _errors_of_both_clients(settings, RetryPolicy.disabled()):
        text = str(error)
        assert "connection refused" in text.lower(), text
        assert "timed out" not in text, text
        assert error.retryable
        if auth == "altinn_token":
            assert isinstance(error, AltinnTransportError)
            assert error.request_sent is False
        else:
            assert isinstance(error, TokenGrantError)


@dataclass
class TlsServer:
    url: str
    handshakes: list[int]


@pytest.fixture
def self_signed_tls(tmp_path: Path) -> Iterator[TlsServer]:
    """An HTTPS server on 127.0.0.1 whose certificate (right host, right dates) no trust store knows."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False
        )
        .sign(key, hashes.SHA256())
    )
    (tmp_path / "cert.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (tmp_path / "key.pem").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(tmp_path / "cert.pem", tmp_path / "key.pem")
    listener = socket.create_server(("127.0.0.1", 0))
    handshakes: list[int] = []
    stop = threading.Event()

    def serve() -> None:
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                raw, _ = listener.accept()
            except OSError:
                continue
            handshakes.append(1)
            try:
                with context.wrap_socket(raw, server_side=True):
                    pass  # the client refuses the certificate; nothing ever gets this far
            except (ssl.SSLError, OSError):
                pass

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield TlsServer(f"https://127.0.0.1:{listener.getsockname()[1]}", handshakes)
    stop.set()
    thread.join(5)
    listener.close()


@pytest.mark.usefixtures("aiohttp_path")
@pytest.mark.parametrize("auth", ["altinn_token", "maskinporten"])
def test_certificate_failure_is_permanent_and_says_so_in_both_clients(
    auth: str, self_signed_tls: TlsServer
) -> None:
    kwargs: dict[str, Any] = (
        {"auth": "altinn_token", "password": STATIC_TOKEN} if auth == "altinn_token" else {}
    )
    settings = AltinnSettings.from_connection(conn(host=self_signed_tls.url, **kwargs))
    retry = RetryPolicy(max_attempts=4, backoff_base_seconds=0.01, backoff_max_seconds=0.01)
    errors = _errors_of_both_clients(settings, retry)
    for error in errors:
        text = str(error)
        assert "certificate verification failed" in text, text
        assert "self-signed certificate" in text, text
        assert "timed out" not in text, text
        assert not error.retryable
        assert error.attempts == 1
        assert isinstance(error, AltinnTransportError if auth == "altinn_token" else TokenGrantError)
    assert len(self_signed_tls.handshakes) == 2  # one connection per client: verified, refused, not retried


def test_a_trigger_error_payload_carries_no_echoed_credential(
    stand_in: Callable[[str], tuple[str, Echo]], monkeypatch: pytest.MonkeyPatch
) -> None:
    from airflow_provider_altinn_events.triggers.altinn_events import AltinnEventsSensorTrigger

    base, echo = stand_in("events")
    monkeypatch.setenv(
        "AIRFLOW_CONN_ALTINN_SECURITY_TRIGGER",
        json.dumps(
            {
                "conn_type": "altinn_events",
                "host": base,
                "login": "client-1",
                "password": pem(rsa_key()),
                "extra": {"environment": "custom", "key_id": "kid-1"},
            }
        ),
    )
    trigger = AltinnEventsSensorTrigger(
        resource="urn:altinn:resource:r", poll_interval=1, altinn_events_conn_id="altinn_security_trigger"
    )

    async def first_event() -> Any:
        async for event in trigger.run():
            return event.payload
        raise AssertionError("the trigger ended without an event")

    payload = asyncio.run(first_event())
    assert payload["status"] == "error" and payload["error"]["status_code"] == 403
    text = json.dumps(payload) + json.dumps(trigger.serialize()[1])
    for secret in _secrets(echo, "events"):
        assert secret not in text


@pytest.mark.usefixtures("aiohttp_path")
@pytest.mark.parametrize("step", ["grant", "exchange", "events"])
def test_no_credential_follows_a_redirect_to_another_host(step: str) -> None:
    """A stand-in that redirects (307 keeps method and body) to a trap on another loopback address: neither
    client follows, so the grant and the tokens never reach a host the connection did not name."""
    trap_hits: list[str] = []

    class Trap(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            trap_hits.append(self.path)

        do_POST = do_GET

        def log_message(self, format: str, *args: Any) -> None:
            pass

    trap = ThreadingHTTPServer(("127.0.0.2", 0), Trap)
    trap_url = f"http://127.0.0.2:{trap.server_address[1]}/steal"
    paths = {"grant": "/maskinporten/token", "exchange": "/authentication/", "events": "/events/"}

    class Redirecting(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _redirect_or_answer(self) -> None:
            length = int(self.headers.get("Content-Length", 0))
            self.rfile.read(length)
            now = int(datetime.datetime.now(datetime.timezone.utc).timestamp())
            if self.path.startswith(paths[step]):
                self.send_response(307)
                self.send_header("Location", trap_url)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            token = jwt.encode({"iat": now, "exp": now + 600}, "k" * 32)
            body = json.dumps({"access_token": token}) if self.command == "POST" else token
            data = body.encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = _redirect_or_answer

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Redirecting)
    for s in (trap, server):
        threading.Thread(target=s.serve_forever, daemon=True).start()
    try:
        settings = AltinnSettings.from_connection(conn(host=f"http://127.0.0.1:{server.server_address[1]}"))
        errors = _errors_of_both_clients(settings, RetryPolicy.disabled())
        assert all(not error.retryable for error in errors)
        assert trap_hits == []
    finally:
        for s in (trap, server):
            s.shutdown()
            s.server_close()


@pytest.mark.usefixtures("aiohttp_path")
def test_a_dropped_connection_is_not_taken_for_an_unsent_request() -> None:
    """A server that reads the request and hangs up without answering may have processed it. httpx-aiohttp's
    table called that a ConnectTimeout ("not sent"), so the async client re-sent POST /app, which creates a
    new event on every call; both clients now send it once."""
    received: list[int] = []
    listener = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()

    def serve() -> None:
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                raw, _ = listener.accept()
            except OSError:
                continue
            with raw:
                raw.settimeout(5)
                data = b""
                while b"\r\n\r\n" not in data:
                    chunk = raw.recv(65536)
                    if not chunk:
                        break
                    data += chunk
                received.append(1)  # read it, then close without a word

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        settings = AltinnSettings.from_connection(
            conn(
                host=f"http://127.0.0.1:{listener.getsockname()[1]}",
                auth="altinn_token",
                password=STATIC_TOKEN,
                platform_access_token="platform-access-token",
            )
        )
        retry = RetryPolicy(max_attempts=4, backoff_base_seconds=0.01, backoff_max_seconds=0.01)
        event = {"source": "https://ttd.apps.altinn.no/ttd/app", "type": "app.created", "subject": "/party/1"}
        errors: list[AltinnError] = []
        with AltinnEventsClient(settings, retry=retry) as client:
            with pytest.raises(AltinnTransportError) as sync_info:
                client.publish_app_event(event)
            errors.append(sync_info.value)

        async def run_async() -> None:
            async with AsyncAltinnEventsClient(settings, retry=retry) as client:
                with pytest.raises(AltinnTransportError) as async_info:
                    await client.publish_app_event(event)
                errors.append(async_info.value)

        asyncio.run(run_async())
    finally:
        stop.set()
        thread.join(5)
        listener.close()
    assert len(received) == 2, received  # one send per client
    for error in errors:
        assert error.request_sent is None and error.attempts == 1
        assert "timed out" not in str(error)

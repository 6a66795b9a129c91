"""Helpers for the emulator's contract tests: HTTP clients, tokens, events, a local webhook receiver."""

from __future__ import annotations

import json
import queue
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import jwt
import pytest

from airflow_provider_altinn_events.emulator.handle import (
    EmulatorHandle,
    load_private_key,
    shared_ssl_context,
)
from airflow_provider_altinn_events.emulator.keys import KeySet, load_keys
from airflow_provider_altinn_events.emulator.store import Store

RESOURCE = "urn:altinn:resource:ttd-altinn-events-automated-tests"
CE_JSON = "application/cloudevents+json"
GRANT_TYPE = "urn:ietf:params:oauth:grant-type:jwt-bearer"


def make_event(event_id: str | None = None, **fields: Any) -> dict[str, Any]:
    event: dict[str, Any] = {
        "specversion": "1.0",
        "id": event_id or str(uuid.uuid4()),
        "source": "https://github.com/Altinn/altinn-events/tree/main/test/k6",
        "type": "automatedtest.triggered",
        "subject": "/autotest/k6",
        "resource": RESOURCE,
        "time": "2022-05-12T00:02:07.541482Z",
    }
    event.update(fields)
    return {k: v for k, v in event.items() if v is not None}


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture(scope="session")
def emulator_keys() -> KeySet:
    """The signing keys every in-memory emulator of this process uses (to forge edge-case tokens)."""
    return load_keys(Store(None))


@pytest.fixture
def api(altinn_emulator: EmulatorHandle) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=altinn_emulator.base_url, timeout=10, verify=shared_ssl_context()) as client:
        yield client


@pytest.fixture
def token(altinn_emulator: EmulatorHandle) -> str:
    """An Altinn token with subscribe + publish scopes (identity /organisation/991825827)."""
    return altinn_emulator.altinn_token()


def publish(client: httpx.Client, token: str, event: dict[str, Any], **headers: str) -> httpx.Response:
    return client.post(
        "/events/api/v1/events",
        content=json.dumps(event),
        headers={**bearer(token), "Content-Type": CE_JSON, **headers},
    )


def get_events(client: httpx.Client, token: str, params: Any, **headers: str) -> httpx.Response:
    return client.get("/events/api/v1/events", params=params, headers={**bearer(token), **headers})


def grant(client: httpx.Client, assertion: str) -> httpx.Response:
    return client.post("/maskinporten/token", data={"grant_type": GRANT_TYPE, "assertion": assertion})


def sign_grant(
    handle: EmulatorHandle,
    claims: dict[str, Any] | None = None,
    headers: dict[str, Any] | None = None,
    key_pem: str | None = None,
    algorithm: str = "RS256",
    drop: tuple[str, ...] = (),
) -> str:
    now = int(time.time())
    body: dict[str, Any] = {
        "aud": f"{handle.base_url}/maskinporten/",
        "iss": handle.client_id,
        "scope": "altinn:events.subscribe",
        "iat": now,
        "exp": now + 60,
        "jti": str(uuid.uuid4()),
    }
    body.update(claims or {})
    for name in drop:
        body.pop(name, None)
    hdrs = {"kid": handle.key_id} if headers is None else headers
    return jwt.encode(
        body, load_private_key(key_pem or handle.private_key_pem), algorithm=algorithm, headers=hdrs
    )


def problem_detail(response: httpx.Response) -> str:
    assert response.headers["content-type"].startswith("application/problem+json"), response.text
    body = response.json()
    assert body["status"] == response.status_code
    return str(body["detail"])


def wait_for(predicate: Any, timeout: float = 5.0, interval: float = 0.02) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError("condition not met in time")


@dataclass
class Receiver:
    """A tiny local webhook endpoint: records every request, answers with scripted statuses."""

    url: str
    requests: list[dict[str, Any]] = field(default_factory=list)
    statuses: queue.Queue[int] = field(default_factory=queue.Queue)
    default_status: int = 200

    def bodies(self) -> list[Any]:
        return [r["json"] for r in list(self.requests)]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    holder: dict[str, Receiver] = {}

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("content-length") or 0)
            raw = self.rfile.read(length)
            rec = holder["r"]
            try:
                status = rec.statuses.get_nowait()
            except queue.Empty:
                status = rec.default_status
            rec.requests.append(
                {
                    "path": self.path,
                    "headers": dict(self.headers),
                    "json": json.loads(raw or b"null"),
                    "status": status,
                }
            )
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    holder["r"] = Receiver(url=f"http://127.0.0.1:{server.server_address[1]}/webhook")
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield holder["r"]
    finally:
        server.shutdown()
        server.server_close()

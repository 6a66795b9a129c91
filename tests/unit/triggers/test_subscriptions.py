"""AltinnEventsSubscriptionValidatedTrigger: serialization, and run() against the emulator over real HTTP.

``WebhookReceiver`` (a push endpoint served by the test on 127.0.0.1) is also used by the subscription
operator tests.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Iterator
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from airflow_provider_altinn_events.triggers.subscriptions import (
    AltinnEventsSubscriptionValidatedTrigger,
    SubscriptionValidationStatus,
    deadline_after,
)

RESOURCE = "urn:altinn:resource:ttd-altinn-events-automated-tests"
CLASSPATH = "airflow_provider_altinn_events.triggers.subscriptions.AltinnEventsSubscriptionValidatedTrigger"


class WebhookReceiver:
    """A push endpoint on 127.0.0.1 that records each POST and answers ``status`` (changeable); the first
    ``fail_first`` requests get a 503."""

    def __init__(self, status: int = 200, fail_first: int = 0) -> None:
        self.status = status
        self.fail_first = fail_first
        self.received: list[dict[str, Any]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                try:
                    receiver.received.append(json.loads(body))
                except ValueError:
                    receiver.received.append({"_raw": body.decode("utf-8", "replace")})
                failing = len(receiver.received) <= receiver.fail_first
                self.send_response(503 if failing else receiver.status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:  # quiet
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/altinn/events"

    def validation_events(self) -> list[dict[str, Any]]:
        return [e for e in self.received if e.get("type") == "platform.events.validatesubscription"]

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    server = WebhookReceiver()
    try:
        yield server
    finally:
        server.close()


def make_trigger(subscription_id: int, **kwargs: Any) -> AltinnEventsSubscriptionValidatedTrigger:
    kwargs.setdefault("poll_interval_seconds", 0.1)
    return AltinnEventsSubscriptionValidatedTrigger(subscription_id=subscription_id, **kwargs)


def first_event(trigger: AltinnEventsSubscriptionValidatedTrigger, timeout: float = 20) -> dict[str, Any]:
    async def run() -> Any:
        generator = trigger.run()
        try:
            return await asyncio.wait_for(generator.__anext__(), timeout)
        finally:
            await generator.aclose()

    payload: dict[str, Any] = asyncio.run(run()).payload
    json.dumps(payload)  # a TriggerEvent payload must be JSON
    return payload


def create_subscription(endpoint: str) -> int:
    from airflow_provider_altinn_events.hooks.altinn_events import AltinnEventsHook

    hook = AltinnEventsHook()
    try:
        return int(hook.get_conn().create_subscription(endpoint=endpoint, resource_filter=RESOURCE).id)
    finally:
        hook.close()


# -- serialization ---------------------------------------------------------------------------------------


def test_serialize_round_trip_is_json_and_secret_free() -> None:
    trigger = AltinnEventsSubscriptionValidatedTrigger(
        subscription_id=12,
        altinn_events_conn_id="my_conn",
        poll_interval_seconds=2,
        timeout_seconds=30,
        deadline="2026-05-12T08:30:00.000Z",
    )
    classpath, kwargs = trigger.serialize()
    assert classpath == CLASSPATH
    assert kwargs == {
        "subscription_id": 12,
        "altinn_events_conn_id": "my_conn",
        "poll_interval_seconds": 2.0,
        "timeout_seconds": 30.0,
        "deadline": "2026-05-12T08:30:00.000Z",
    }
    assert json.loads(json.dumps(kwargs)) == kwargs
    rebuilt = AltinnEventsSubscriptionValidatedTrigger(**kwargs)
    assert rebuilt.serialize() == trigger.serialize()


def test_classpath_imports_the_class() -> None:
    import importlib

    module, _, name = CLASSPATH.rpartition(".")  # what the triggerer does with the stored classpath
    assert getattr(importlib.import_module(module), name) is AltinnEventsSubscriptionValidatedTrigger


def test_defaults_and_bad_deadline() -> None:
    assert make_trigger(3).serialize()[1]["deadline"] is None
    assert make_trigger(3).serialize()[1]["altinn_events_conn_id"] == "altinn_events_default"
    with pytest.raises(ValueError):
        make_trigger(3, deadline="next tuesday")
    with pytest.raises(ValueError, match="time zone"):
        make_trigger(3, deadline="2026-05-12T08:30:00")


def test_deadline_after_is_utc_iso() -> None:
    before = time.time()
    deadline = deadline_after(60)
    assert deadline.endswith("Z")
    moment = datetime.fromisoformat(deadline.replace("Z", "+00:00"))
    assert moment.tzinfo == timezone.utc
    assert before + 59 <= moment.timestamp() <= time.time() + 61


# -- run() against the emulator --------------------------------------------------------------------------


def test_run_yields_validated_once_the_endpoint_answers(altinn_conn: Any, receiver: WebhookReceiver) -> None:
    subscription_id = create_subscription(receiver.url)
    payload = first_event(make_trigger(subscription_id, timeout_seconds=20))
    assert payload["status"] == SubscriptionValidationStatus.VALIDATED.value
    assert payload["subscription"]["id"] == subscription_id
    assert payload["subscription"]["validated"] is True
    assert payload["message"] is None
    assert receiver.validation_events(), "the emulator should have POSTed the validation event"


def test_run_times_out_with_a_clear_message(altinn_conn: Any, receiver: WebhookReceiver) -> None:
    receiver.status = 503  # the endpoint never accepts the validation event
    subscription_id = create_subscription(receiver.url)
    started = time.monotonic()
    payload = first_event(make_trigger(subscription_id, timeout_seconds=1.5, poll_interval_seconds=0.3))
    elapsed = time.monotonic() - started
    assert payload["status"] == SubscriptionValidationStatus.TIMEOUT.value
    assert payload["subscription"]["validated"] is False
    assert receiver.url in payload["message"]
    assert "2xx" in payload["message"] and "was not validated" in payload["message"]
    assert 1.4 <= elapsed < 10


def test_run_keeps_the_absolute_deadline(altinn_conn: Any, receiver: WebhookReceiver) -> None:
    """A trigger restarted after its deadline (e.g. on another triggerer) gives up after one poll."""
    receiver.status = 500
    subscription_id = create_subscription(receiver.url)
    past = "2020-01-01T00:00:00Z"
    started = time.monotonic()
    payload = first_event(make_trigger(subscription_id, timeout_seconds=600, deadline=past))
    assert payload["status"] == SubscriptionValidationStatus.TIMEOUT.value
    assert time.monotonic() - started < 5


def test_run_reports_a_missing_subscription(altinn_conn: Any) -> None:
    payload = first_event(make_trigger(987654, timeout_seconds=20))
    assert payload["status"] == SubscriptionValidationStatus.ERROR.value
    assert "987654" in payload["message"] and "404" in payload["message"]
    assert "permanent" not in payload  # a 404 may be a replica lag: the payload keeps its old shape


def test_run_polls_through_transient_errors(altinn_conn: Any, receiver: WebhookReceiver) -> None:
    subscription_id = create_subscription(receiver.url)
    altinn_conn.add_fault(method="GET", path="/events/api/v1/subscriptions", status=503, times=2)
    payload = first_event(make_trigger(subscription_id, timeout_seconds=30))
    assert payload["status"] == SubscriptionValidationStatus.VALIDATED.value


def test_run_reports_altinn_unreachable_until_the_deadline(
    altinn_conn: Any, receiver: WebhookReceiver
) -> None:
    subscription_id = create_subscription(receiver.url)
    altinn_conn.add_fault(method="GET", path="/events/api/v1/subscriptions", status=503)  # until cleared
    payload = first_event(
        make_trigger(subscription_id, timeout_seconds=1, poll_interval_seconds=0.2), timeout=60
    )
    assert payload["status"] == SubscriptionValidationStatus.TIMEOUT.value
    assert "the last attempt to read it from Altinn failed" in payload["message"]
    assert "503" in payload["message"]


def test_run_reports_an_unusable_connection(altinn_conn: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_BROKEN", altinn_conn.connection_json(environment="nowhere"))
    payload = first_event(make_trigger(1, altinn_events_conn_id="broken"))
    assert payload["status"] == SubscriptionValidationStatus.ERROR.value
    assert "'broken' cannot be used" in payload["message"]
    assert payload["permanent"] is True  # a bad connection is the same on every try
    assert altinn_conn.private_key_pem not in payload["message"]

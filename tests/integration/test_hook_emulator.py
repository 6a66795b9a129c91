"""AltinnEventsHook against the emulator: env-var connection → clients; test_connection per step."""

from __future__ import annotations

import json
import logging
import uuid

import pytest

from airflow_provider_altinn_events.emulator.handle import EmulatorHandle, generate_private_key_pem
from airflow_provider_altinn_events.hooks.altinn_events import AltinnEventsHook

pytestmark = pytest.mark.integration

RESOURCE = "urn:altinn:resource:ttd-altinn-events-automated-tests"
ENV = "AIRFLOW_CONN_ALTINN_EVENTS_DEFAULT"


def set_connection(monkeypatch: pytest.MonkeyPatch, handle: EmulatorHandle, **extra: object) -> None:
    conn = handle.connection_dict(**extra)
    monkeypatch.setenv(ENV, json.dumps(conn))


def test_sync_client_from_the_hook(altinn_conn: EmulatorHandle) -> None:
    hook = AltinnEventsHook()
    client = hook.get_conn()
    event_id = str(uuid.uuid4())
    client.publish({"id": event_id, "source": "urn:test", "type": "t.created", "resource": RESOURCE})
    assert [e.id for e in client.list_events(resource=RESOURCE).events] == [event_id]
    assert hook.get_conn() is client
    hook.close()


@pytest.mark.usefixtures("aiohttp_path")
async def test_async_client_from_the_hook(altinn_conn: EmulatorHandle) -> None:
    altinn_conn.generate(RESOURCE, 3)
    async with await AltinnEventsHook().get_async_conn() as client:
        assert len((await client.list_events(resource=RESOURCE)).events) == 3
    assert altinn_conn.stats()["token_grants"] == 1


def test_test_connection_succeeds(altinn_conn: EmulatorHandle) -> None:
    ok, message = AltinnEventsHook().test_connection()
    assert ok, message
    assert "Maskinporten granted scopes" in message
    assert "Altinn exchanged the token (valid until" in message
    assert "listed 0 subscription(s)" in message
    stats = altinn_conn.stats()
    assert (stats["token_grants"], stats["token_exchanges"]) == (1, 1)
    assert stats["requests"]["GET /events/api/v1/subscriptions"] == 1


def test_test_connection_static_token_mode(
    altinn_emulator: EmulatorHandle, monkeypatch: pytest.MonkeyPatch
) -> None:
    conn = altinn_emulator.connection_dict(auth="altinn_token")
    conn["password"] = altinn_emulator.altinn_token()
    conn["login"] = None
    monkeypatch.setenv(ENV, json.dumps(conn))
    ok, message = AltinnEventsHook().test_connection()
    assert ok, message
    assert "static Altinn token was accepted" in message


def test_test_connection_names_the_grant_step(
    altinn_emulator: EmulatorHandle, monkeypatch: pytest.MonkeyPatch
) -> None:
    set_connection(monkeypatch, altinn_emulator, key_id="unregistered-kid")
    ok, message = AltinnEventsHook().test_connection()
    assert not ok
    assert message.startswith("Grant step failed")
    assert "invalid_client" in message and "unregistered-kid" in message


def test_test_connection_names_the_grant_step_for_a_wrong_key(
    altinn_emulator: EmulatorHandle, monkeypatch: pytest.MonkeyPatch
) -> None:
    conn = altinn_emulator.connection_dict()
    conn["password"] = generate_private_key_pem()
    monkeypatch.setenv(ENV, json.dumps(conn))
    ok, message = AltinnEventsHook().test_connection()
    assert not ok and message.startswith("Grant step failed") and "signature" in message


def test_test_connection_names_the_grant_step_for_a_missing_scope(
    altinn_emulator: EmulatorHandle, monkeypatch: pytest.MonkeyPatch
) -> None:
    set_connection(monkeypatch, altinn_emulator, scopes="altinn:events.subscribe altinn:never.granted")
    ok, message = AltinnEventsHook().test_connection()
    assert not ok and message.startswith("Grant step failed") and "invalid_scope" in message


def test_test_connection_names_the_exchange_step(altinn_conn: EmulatorHandle) -> None:
    altinn_conn.add_fault(path="/authentication/api/v1/exchange/maskinporten", status=401)
    ok, message = AltinnEventsHook().test_connection()
    assert not ok
    assert message.startswith("Exchange step failed")
    assert "401" in message


def test_test_connection_names_the_events_call(altinn_conn: EmulatorHandle) -> None:
    altinn_conn.add_fault(method="GET", path="/events/api/v1/subscriptions", status=503)
    ok, message = AltinnEventsHook().test_connection()
    assert not ok
    assert message.startswith("Events call failed")
    assert "-> 503" in message
    assert altinn_conn.stats()["requests"]["GET /events/api/v1/subscriptions"] == 1  # not retried


def test_test_connection_names_invalid_settings(
    altinn_emulator: EmulatorHandle, monkeypatch: pytest.MonkeyPatch
) -> None:
    set_connection(monkeypatch, altinn_emulator, environment="tt02")
    ok, message = AltinnEventsHook().test_connection()
    assert not ok and message.startswith("Connection settings are invalid (host)")


def test_test_connection_messages_hold_no_secret(
    altinn_emulator: EmulatorHandle, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    messages = []
    with caplog.at_level(logging.DEBUG):
        set_connection(monkeypatch, altinn_emulator)
        messages.append(AltinnEventsHook().test_connection()[1])
        set_connection(monkeypatch, altinn_emulator, key_id="bad")
        messages.append(AltinnEventsHook().test_connection()[1])
    key_lines = [line for line in altinn_emulator.private_key_pem.splitlines() if "-----" not in line]
    for text in [*messages, caplog.text]:
        assert "eyJ" not in text  # no JWT (assertion or token) of any kind
        assert not any(line in text for line in key_lines)

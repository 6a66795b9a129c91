"""The pytest plugin's fixtures give a working emulator with a registered client.

No Altinn source: the fixtures are the emulator's own (docs/guides/emulator.rst).
"""

from __future__ import annotations

import json

import httpx

from airflow_provider_altinn_events.emulator.handle import EmulatorHandle

RESOURCE = "urn:altinn:resource:fixture-smoke"


def test_grant_exchange_publish_list(altinn_emulator: EmulatorHandle) -> None:
    token = altinn_emulator.altinn_token()
    headers = {"Authorization": f"Bearer {token}"}
    event = {"specversion": "1.0", "id": "1", "source": "urn:test:1", "type": "t.a", "resource": RESOURCE}
    with httpx.Client(base_url=altinn_emulator.base_url) as client:
        published = client.post(
            "/events/api/v1/events",
            content=json.dumps(event),
            headers={**headers, "Content-Type": "application/cloudevents+json"},
        )
        assert published.status_code == 200
        page = client.get(
            "/events/api/v1/events", params={"resource": RESOURCE, "after": "0"}, headers=headers
        )
    assert page.status_code == 200
    assert [e["id"] for e in page.json()] == ["1"]


def test_each_test_starts_clean(altinn_emulator: EmulatorHandle) -> None:
    assert altinn_emulator.stats()["events"] == 0


def test_altinn_conn_sets_env(altinn_conn: EmulatorHandle) -> None:
    import os

    conn = json.loads(os.environ["AIRFLOW_CONN_ALTINN_EVENTS_DEFAULT"])
    assert conn["host"] == altinn_conn.base_url
    assert conn["login"] == altinn_conn.client_id
    assert conn["extra"] == {
        "environment": "custom",
        "key_id": altinn_conn.key_id,
        "scopes": "altinn:events.subscribe altinn:events.publish",
    }

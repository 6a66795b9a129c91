"""The demo's scenario on real Airflow components, with assertions: every example DAG, a triggerer restart in
the middle of a deferred sensor and a running watcher, and a scan for leaked credentials at the end.

The tests run in file order on one stack (``conftest.py``). Timings on a 2-core machine are printed (``-s``)
and asserted generously: the LocalExecutor needs seconds to start a task process.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
import threading
import time
from collections import Counter
from typing import Any

import httpx
import pytest

from scripts.scenario import (
    DAG_IDS,
    INGEST,
    POLL_INTERVAL,
    PUBLISH,
    PUBLISH_APP,
    RESOURCE,
    SENSOR,
    WATCHER_ASSET,
    Scenario,
)
from scripts.stack import Stack
from scripts.webhook_receiver import WebhookReceiver
from tests.e2e import secret_scan
from tests.e2e.conftest import Progress

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(420)]

SENSOR_TASK = "wait_for_batch_finished"
POLL = float(POLL_INTERVAL)
APP_RESOURCE = "urn:altinn:resource:app_ttd_apps-test"


def report(message: str) -> None:
    print(f"[e2e] {message}", flush=True)


def test_every_example_dag_parses(scenario: Scenario, stack: Stack, progress: Progress) -> None:
    scenario.wait_parsed()
    dags = {dag["dag_id"] for dag in stack.api("GET", "/dags", params={"limit": 100})["dags"]}
    assert set(DAG_IDS) <= dags
    assert stack.import_errors() == []
    progress.done.add("parsed")


def test_api_server_shows_our_connection_form(stack: Stack, progress: Progress) -> None:
    """The Airflow 3 UI builds the connection form from ``/ui/connections/hook_meta``: our fields must be there."""
    response = httpx.get(f"{stack.api_url}/ui/connections/hook_meta", timeout=30)
    assert response.status_code == 200, response.text[:300]
    (meta,) = [m for m in response.json() if m["connection_type"] == "altinn_events"]
    assert meta["hook_name"] == "Altinn Events"
    extra = meta["extra_fields"]
    for name in (
        "environment",
        "scopes",
        "key_id",
        "private_key_passphrase",
        "auth",
        "platform_access_token",
    ):
        assert name in extra, name
    assert extra["environment"]["schema"].get("enum"), "environment should be a drop-down"
    assert extra["platform_access_token"]["schema"].get("format") == "password"
    assert meta["standard_fields"]["login"]["title"] == "Maskinporten client id"


def test_sensor_defers_while_no_event_exists(scenario: Scenario, stack: Stack, progress: Progress) -> None:
    progress.need("parsed")
    run_id = scenario.start_sensor()
    progress.data["sensor_run"] = run_id
    cursor = scenario.start_watcher()  # in parallel: the sensor defers while the watcher starts
    report(f"watcher started from cursor {cursor!r}")
    scenario.wait_deferred(run_id)
    progress.done.add("watcher")

    time.sleep(3 * POLL)  # nothing published: the trigger keeps waiting and holds no worker slot
    ti = next(t for t in stack.task_instances(SENSOR, run_id) if t["task_id"] == SENSOR_TASK)
    assert ti["state"] == "deferred"
    assert ti["trigger"]["classpath"].endswith("AltinnEventsSensorTrigger")
    # the trigger row is deleted once it fires: check its kwargs now (decrypted from the metadata DB)
    fernet = secret_scan.fernet_of(stack.home)
    with sqlite3.connect(f"file:{stack.home / 'airflow.db'}?mode=ro", uri=True) as db:
        (stored,) = db.execute("SELECT kwargs FROM trigger WHERE id = ?", (ti["trigger"]["id"],)).fetchone()
    kwargs = fernet.decrypt(stored.encode()).decode() if fernet and stored.startswith("gAAAAA") else stored
    report(f"sensor trigger kwargs: {kwargs}")
    assert '"altinn_events_conn_id": "altinn_events_default"' in kwargs
    assert secret_scan.scan("sensor trigger kwargs", kwargs.encode(), needles_for(stack)) == []
    assert secret_scan.scan("sensor TI (REST)", json.dumps(ti).encode(), needles_for(stack)) == []
    progress.done.add("sensor_deferred")


def test_publish_dag_publishes_batch_and_cases(scenario: Scenario, stack: Stack, progress: Progress) -> None:
    progress.need("sensor_deferred")
    app_run = stack.trigger(PUBLISH_APP)
    run_id, state = scenario.publish()
    assert state == "success", stack.task_instances(PUBLISH, run_id)
    assert len(scenario.published_batch_ids) == 1
    assert len(scenario.published_case_ids) == 25 == len(set(scenario.published_case_ids))
    assert {e["id"] for e in emulator_events(stack)} >= set(
        scenario.published_case_ids + scenario.published_batch_ids
    )

    assert stack.wait_run(PUBLISH_APP, app_run) == "success"
    (app_id,) = stack.xcom(PUBLISH_APP, app_run, "publish_instance_created")
    scenario.other_events.append(app_id)
    progress.data["app_event_id"] = app_id
    progress.done.add("published")


def test_sensor_is_released_by_the_matching_event(
    scenario: Scenario, stack: Stack, progress: Progress
) -> None:
    progress.need("published")
    run_id = progress.data["sensor_run"]
    assert stack.wait_run(SENSOR, run_id) == "success"
    result = scenario.sensor_result(run_id)
    (event,) = result["events"]
    assert event["id"] == scenario.published_batch_ids[0]
    assert event["type"] == "no.example.batch.finished.v1" and event["resource"] == RESOURCE
    assert event["specversion"] == "1.0"  # the CloudEvent as Altinn sent it
    assert result["after"] == event["id"]
    assert result["handled"] == [event["id"]]
    assert stack.api("GET", "/variables/altinn_events_example_cursor")["value"] == event["id"]
    report(
        f"sensor: trigger fired {result['fire_latency']:.2f} s after publication (poll interval {POLL:.0f} s); "
        f"resumed task finished {result['resume_seconds']:.2f} s after the trigger fired"
    )
    # the trigger fires within two poll intervals (plus the triggerer's own loop and DB write)
    assert result["fire_latency"] <= 2 * POLL + 5
    assert result["resume_seconds"] <= 60
    progress.data["sensor_latency"] = result["fire_latency"]
    progress.done.add("sensor_released")


def test_every_case_event_reaches_a_watcher_run(scenario: Scenario, stack: Stack, progress: Progress) -> None:
    progress.need("published", "watcher")
    runs = scenario.wait_watcher()
    seen = [event_id for run in runs for event_id in run["ids"] or []]
    assert Counter(seen) == Counter(scenario.published_case_ids)  # each once: no restart happened
    assert all(run["state"] == "success" for run in runs)
    events = stack.asset_events(stack.asset_id(WATCHER_ASSET))
    for asset_event in events:
        payload = asset_event["extra"]["payload"]
        assert payload["status"] == "events" and payload["resource"] == RESOURCE
        assert all(e["type"] == "no.example.case.changed.v1" for e in payload["events"])
    report(
        f"watcher: {len(seen)} events in {len(events)} asset events, {len(runs)} DAG runs "
        f"({scenario.flushes} extra event(s) published to flush unconsumed asset events)"
    )
    progress.done.add("watcher_runs")


def test_app_event_and_poke_sensor(scenario: Scenario, stack: Stack, progress: Progress) -> None:
    progress.need("published")
    run_id, state, count = scenario.run_poke()
    assert state == "success"
    assert count == 10  # at least 5 closed cases exist; max_events=10
    events = stack.xcom("example_altinn_events_sensor_poke", run_id, "wait_for_closed_cases")
    assert all(e["data"]["status"] == "closed" for e in events)
    assert {e["id"] for e in events} <= set(scenario.published_case_ids)


def test_scheduled_ingestion_lands_ndjson(scenario: Scenario, stack: Stack, progress: Progress) -> None:
    progress.need("published")
    result = scenario.run_ingest(scheduled=True)
    assert result["state"] == "success"
    run = stack.api("GET", f"/dags/{INGEST}/dagRuns/{result['run_id']}")
    assert run["run_type"] == "scheduled"
    by_resource = {summary["resource"]: summary for summary in result["summaries"]}
    expected = set(scenario.published_batch_ids + scenario.published_case_ids)
    assert by_resource[RESOURCE]["count"] == len(expected)
    assert by_resource[APP_RESOURCE]["count"] == 1
    landed = ids_in_files(result["files"], by_resource[RESOURCE]["files"])
    assert set(landed) == expected and len(landed) == len(expected)  # every event, each once
    assert ids_in_files(result["files"], by_resource[APP_RESOURCE]["files"]) == [
        progress.data["app_event_id"]
    ]
    for summary in result["summaries"]:
        assert summary["cursor_moved"] and summary["mode"] == "new"
        assert summary["manifest"].startswith("file://")
    progress.data["ingested"] = set(landed)
    progress.done.add("ingested")


def test_subscription_dag_validates_the_receiver_and_pushes(
    scenario: Scenario, stack: Stack, receiver: WebhookReceiver, progress: Progress
) -> None:
    progress.need("parsed")
    result = scenario.run_subscriptions()
    assert result["state"] == "success"
    assert result["validations"] >= 1
    assert result["subscription"]["validated"] is True
    assert result["subscription"]["endPoint"].rstrip("/") == receiver.url.rstrip("/")
    assert result["pushed_id"] in result["pushed"], "the event published while subscribed was not pushed"
    assert stack.emulator_stats()["subscriptions"] == 0  # the DAG deleted it again
    progress.data["pushed_id"] = result["pushed_id"]
    progress.done.add("subscriptions")


def test_second_ingestion_run_continues_from_the_cursor(
    scenario: Scenario, stack: Stack, progress: Progress
) -> None:
    progress.need("ingested", "subscriptions")
    result = scenario.run_ingest(scheduled=False)
    assert result["state"] == "success"
    by_resource = {summary["resource"]: summary for summary in result["summaries"]}
    landed = ids_in_files(result["files"], by_resource[RESOURCE]["files"])
    assert landed == [progress.data["pushed_id"]]  # only what came after the first run, nothing twice
    assert by_resource[APP_RESOURCE]["count"] == 0
    assert not set(landed) & progress.data["ingested"]


def test_triggerer_restart_loses_nothing(scenario: Scenario, stack: Stack, progress: Progress) -> None:
    """Stop the triggerer while a sensor is deferred and the watcher is emitting; publish while it is down."""
    progress.need("sensor_released", "watcher_runs")
    scenario.wait_watcher()  # everything so far is consumed
    run_id = scenario.start_sensor()  # continues from the Variable cursor the first run stored
    scenario.wait_deferred(run_id)
    asset_id = stack.asset_id(WATCHER_ASSET)
    events_before = len(stack.asset_events(asset_id))

    stream = EventStream(scenario, interval=0.5)
    stream.start()
    try:
        stack.wait_until(lambda: len(stack.asset_events(asset_id)) > events_before, 60, "the watcher to emit")
        stopped_at = time.monotonic()
        stack.stop_process("triggerer")
        stop_seconds = time.monotonic() - stopped_at
        emitted_before_stop = stack.asset_events(asset_id)
        last_batch = {e["id"] for e in emitted_before_stop[-1]["extra"]["payload"]["events"]}

        run_pub, state = scenario.publish()  # while the triggerer is down
        assert state == "success"
        new_batch = scenario.published_batch_ids[-1]
        assert stack.task_state(SENSOR, run_id, SENSOR_TASK) == "deferred"
        down_seconds = time.monotonic() - stopped_at
        stack.start_component("triggerer")
        restarted_at = time.monotonic()
        time.sleep(5)
    finally:
        stream.stop()

    assert stack.wait_run(SENSOR, run_id) == "success"
    sensor_back = time.monotonic() - restarted_at
    events = stack.xcom(SENSOR, run_id, SENSOR_TASK)
    assert [e["id"] for e in events] == [new_batch]
    runs = scenario.wait_watcher()
    seen = Counter(event_id for run in runs for event_id in run["ids"] or [])
    assert set(seen) == set(scenario.published_case_ids)
    duplicates = {event_id for event_id, count in seen.items() if count > 1}
    # at least once: only the batch emitted right before the stop may come again
    assert duplicates <= last_batch, duplicates - last_batch
    report(
        f"restart: triggerer stopped in {stop_seconds:.1f} s, down {down_seconds:.1f} s; "
        f"{len(stream.ids)} events streamed across the restart + 25 published while it was down; sensor run "
        f"done {sensor_back:.1f} s after the new triggerer started; "
        f"{len(duplicates)} duplicate(s) (allowed: the {len(last_batch)} of the last batch before the stop); "
        f"{len(runs)} watcher runs in all, {scenario.flushes} flush event(s) so far"
    )
    progress.done.add("restart")


def test_emulator_stats(stack: Stack, progress: Progress) -> None:
    progress.need("published")
    stats = stack.emulator_stats()
    report(f"emulator stats: {json.dumps({k: v for k, v in stats.items() if k != 'requests'})}")
    assert stats["token_grants"] >= 1 and stats["token_exchanges"] >= 1
    assert stats["token_grant_failures"] == 0 and stats["token_exchange_failures"] == 0
    assert stats["validations"] >= 1 and stats["deliveries"] >= 1
    assert stats["requests"].get("POST /events/api/v1/events", 0) >= 26


def test_no_credential_anywhere(stack: Stack, e2e_home: Any, progress: Progress) -> None:
    """After the run (everything stopped, logs complete): DB, logs and the emulator's data hold no secret."""
    progress.need("published")
    needles = needles_for(stack)
    stack.stop()
    fernet = secret_scan.fernet_of(e2e_home)
    leaks: list[str] = []
    scanned = 0
    for where, data in secret_scan.db_cells(e2e_home / "airflow.db"):
        leaks += secret_scan.scan(where, data, needles, fernet)
        scanned += len(data)
    files = 0
    for where, data in secret_scan.home_files(e2e_home):
        leaks += secret_scan.scan(where, data, needles, fernet)
        scanned += len(data)
        files += 1
    report(f"secret scan: {files} files and the metadata DB, {scanned / 1e6:.1f} MB, {len(leaks)} finding(s)")
    assert files > 20 and (e2e_home / "logs" / "triggerer.log").exists()
    assert leaks == []

    # the scan is not vacuous: it finds each secret where one would be
    token = _TOKENS[0]
    escaped_key = json.dumps({"password": stack.private_key_pem}).encode()
    assert secret_scan.scan("control", escaped_key, needles) == ["control: private key (base64 line 1)"]
    assert any("JWT (ours" in hit for hit in secret_scan.scan("control", f"Bearer {token}".encode(), needles))
    header_only = token.split(".")[0].encode()
    assert secret_scan.scan("control", header_only, needles) != []
    if fernet is not None:
        sealed = fernet.encrypt(stack.private_key_pem.encode())
        assert secret_scan.scan("control", sealed, needles, fernet) == [
            "control (decrypted): private key (base64 line 1)"
        ]


# --------------------------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------------------------

_NEEDLES: dict[str, secret_scan.Needles] = {}
_TOKENS: list[str] = []


def needles_for(stack: Stack) -> secret_scan.Needles:
    """The private key's lines, and the headers of tokens the emulator signs for this very client."""
    if "needles" not in _NEEDLES:
        from airflow_provider_altinn_events.emulator.handle import ClientCredentials, EmulatorHandle

        credentials = ClientCredentials(
            stack.client_id,
            stack.key_id,
            stack.private_key_pem,
            tuple(stack.connection_dict()["extra"]["scopes"].split()),
            "991825827",
            None,
        )
        handle = EmulatorHandle(stack.emulator_url, credentials)
        try:
            maskinporten = handle.maskinporten_token()
            altinn = handle.altinn_token()
            assertion = handle.grant_assertion()
            kids = {key["kid"] for key in handle.admin.get("/maskinporten/jwks").json()["keys"]}
            kids |= {
                key["kid"]
                for key in handle.admin.get(
                    "/authentication/api/v1/openid/.well-known/openid-configuration/jwks"
                ).json()["keys"]
            }
        finally:
            handle.close()
        tokens = [maskinporten, altinn, assertion, stack.platform_access_token]
        kids |= {secret_scan._b64json(t.split(".")[0].encode()).get("kid", "") for t in tokens}
        _NEEDLES["needles"] = secret_scan.Needles.build(stack.private_key_pem, tokens, kids)
        _TOKENS[:] = tokens
    return _NEEDLES["needles"]


def emulator_events(stack: Stack) -> list[dict[str, Any]]:
    """Every event of the example resource, read with the provider's own client."""
    from types import SimpleNamespace

    from airflow_provider_altinn_events.client import AltinnEventsClient, AltinnSettings

    conn = SimpleNamespace(
        conn_id="e2e", **{k: v for k, v in stack.connection_dict().items() if k != "extra"}
    )
    conn.extra_dejson = stack.connection_dict()["extra"]
    with AltinnEventsClient(AltinnSettings.from_connection(conn)) as client:
        return [event.to_dict() for event in client.iter_events(resource=RESOURCE, after="0")]


def ids_in_files(files: dict[str, list[dict[str, Any]]], uris: list[str]) -> list[str]:
    return [event["id"] for uri in uris for event in files[uri]]


class EventStream:
    """Publishes one case event every ``interval`` seconds (another system) until stopped."""

    def __init__(self, scenario: Scenario, interval: float) -> None:
        self.scenario = scenario
        self.interval = interval
        self.ids: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="event-stream", daemon=True)

    def _run(self) -> None:
        number = 2000
        while not self._stop.is_set():
            with contextlib.suppress(httpx.HTTPError):
                self.ids.append(self.scenario.publish_outside_event(number))
            number += 1
            self._stop.wait(self.interval)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(10)

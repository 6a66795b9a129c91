"""The watcher's cursor across a real triggerer restart, on whichever Airflow line is installed.

Only the parts a watcher needs run (the emulator, Airflow's dag-processor and triggerer as separate
processes, SQLite): the dag-processor registers the asset's watcher, the triggerer runs it and writes the
asset events. The watcher starts from ``after="0"``, so a cursor that did not survive the restart shows
as the whole history emitted again. Where the cursor lives is the version's (docs/compatibility.rst):
the asset state store on Airflow 3.3+, an Airflow Variable on 3.0 to 3.2. ``make compat`` runs this test
on Airflow 3.0; ``make e2e`` on the newest line. It prints its figures (no timed assertions).
"""

from __future__ import annotations

import configparser
import json
import sqlite3
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path

import pytest

from scripts.stack import Stack

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(600)]

RESOURCE = "urn:altinn:resource:ttd-restart-probe"
ASSET = "altinn_restart_probe"
BATCH = 10
FIRST = 25  # published before the stop: three asset events
WHILE_DOWN = 15  # published while the triggerer is down

DAG_FILE = f'''
from airflow.sdk import DAG, Asset, AssetWatcher, task

from airflow_provider_altinn_events.triggers.altinn_events import AltinnEventsWatcherTrigger

probe = Asset(
    "{ASSET}",
    watchers=[
        AssetWatcher(
            name="restart_probe_watcher",
            trigger=AltinnEventsWatcherTrigger(
                resource="{RESOURCE}", after="0", poll_interval=1.0, max_events_per_trigger_event={BATCH}
            ),
        )
    ],
)

with DAG("altinn_restart_probe", schedule=[probe], catchup=False):
    task(lambda: None, task_id="noop")()
'''


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[Stack]:
    dags = tmp_path / "dags"
    dags.mkdir()
    (dags / "restart_probe.py").write_text(DAG_FILE)
    running = Stack(
        home=tmp_path / "home",
        dags_folder=dags,
        extra_env={"AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False"},
        log=lambda message: print(message, flush=True),
    )
    print(f"restart stack home: {running.home}", flush=True)
    try:
        running.home.mkdir(parents=True)
        running.logs.mkdir()
        running.start_emulator()
        running.register_client()
        running.migrate()
        running.start_component("dag-processor")
        running.start_component("triggerer")
        yield running
    finally:
        running.stop()
        assert not running.leftover_processes()


def _db(stack: Stack) -> sqlite3.Connection:
    return sqlite3.connect(f"file:{stack.home / 'airflow.db'}?mode=ro", uri=True, timeout=30)


def emitted(stack: Stack) -> list[list[str]]:
    """The event ids of every asset event of the probe asset, oldest first (one list per asset event)."""
    with closing(_db(stack)) as db:
        rows = db.execute(
            "SELECT e.extra FROM asset_event e JOIN asset a ON a.id = e.asset_id WHERE a.name = ? ORDER BY e.id",
            (ASSET,),
        ).fetchall()
    return [[event["id"] for event in json.loads(extra)["payload"]["events"]] for (extra,) in rows]


def _text(stored: str) -> str:
    try:
        return str(json.loads(stored))  # a JSON string
    except ValueError:
        return stored


def stored_cursor(stack: Stack) -> tuple[str, str | None]:
    """Where the cursor is stored and its value: the asset state store (3.3+) or a Variable (3.0 to 3.2)."""
    with closing(_db(stack)) as db:
        tables = {name for (name,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        if "asset_state_store" in tables:
            row = db.execute(
                "SELECT value FROM asset_state_store WHERE key LIKE 'altinn_events.after:%'"
            ).fetchone()
            return "asset_state_store", None if row is None else _text(row[0])
        row = db.execute(
            "SELECT val, is_encrypted FROM variable WHERE key LIKE 'altinn_events.after%'"
        ).fetchone()
        if row is None:
            return "variable", None
    value, encrypted = row
    if encrypted:  # with the Fernet key Airflow wrote into the home's airflow.cfg
        from cryptography.fernet import Fernet

        config = configparser.ConfigParser(interpolation=None)
        config.read(stack.home / "airflow.cfg")
        value = Fernet(config["core"]["fernet_key"].encode()).decrypt(value.encode()).decode()
    return "variable", str(value)


def published(stack: Stack) -> list[str]:
    """The probe resource's event ids in the emulator's order, read from its data file (not through the client)."""
    with closing(
        sqlite3.connect(f"file:{stack.home / 'emulator.sqlite3'}?mode=ro", uri=True, timeout=30)
    ) as db:
        rows = db.execute(
            "SELECT id FROM events WHERE resource = ? ORDER BY sequenceno", (RESOURCE,)
        ).fetchall()
    return [event_id for (event_id,) in rows]


def generate(stack: Stack, count: int) -> None:
    response = stack.emulator(
        "POST", "/_emulator/events/generate", json={"resource": RESOURCE, "count": count, "type": "probe.v1"}
    )
    assert response.status_code < 300, response.text


def test_restarted_triggerer_resumes_from_the_stored_cursor(stack: Stack) -> None:
    started = time.monotonic()
    generate(stack, FIRST)
    first = published(stack)
    assert len(first) == FIRST
    stack.wait_until(
        lambda: sum(map(len, emitted(stack))) >= FIRST, 240, "the watcher to emit the first events"
    )
    stack.wait_until(lambda: stored_cursor(stack)[1] == first[-1], 60, "the cursor to be stored")
    where, cursor = stored_cursor(stack)
    warm = time.monotonic() - started

    stopped_at = time.monotonic()
    stack.stop_process("triggerer")
    generate(stack, WHILE_DOWN)
    stack.start_component("triggerer")
    every = published(stack)
    stack.wait_until(
        lambda: set(every) <= {i for ids in emitted(stack) for i in ids},
        240,
        "the watcher to emit after the restart",
    )
    back = time.monotonic() - stopped_at
    time.sleep(3)  # one more poll interval: anything emitted twice would show now

    batches = emitted(stack)
    seen = [i for ids in batches for i in ids]
    counts = Counter(seen)
    print(
        f"\nwatcher restart: cursor in {where} ({cursor}); {FIRST} events before the stop, {WHILE_DOWN} while down; "
        f"{len(batches)} asset events, {len(seen)} event ids emitted, {len(counts)} distinct, "
        f"{sum(c - 1 for c in counts.values())} duplicate(s); first emit {warm:.1f} s, back {back:.1f} s after stop"
    )
    assert set(seen) == set(every)  # nothing lost
    assert seen == list(dict.fromkeys(seen))  # nothing twice: the restart started at the stored cursor
    assert seen == every  # in the service's order

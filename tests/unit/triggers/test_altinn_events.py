"""Trigger construction, serialization and the cursor store adapter (no HTTP; run() is in test_run.py)."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

import pytest

from airflow_provider_altinn_events.exceptions import AltinnConfigError
from airflow_provider_altinn_events.triggers._runtime import _CursorStore
from airflow_provider_altinn_events.triggers.altinn_events import (
    AltinnEventsSensorTrigger,
    AltinnEventsWatcherTrigger,
)

RES = "urn:altinn:resource:ttd-test"

SENSOR_KWARGS: list[dict[str, Any]] = [
    {"resource": RES},
    {
        "resource": RES,
        "event_types": ["a.%", "b"],
        "subject": "/party/1",
        "source": "https://x/%",
        "where": {"data.status": {"in": ["a", "b"]}, "data.n": 3},
        "after": "e42",
        "min_events": 2,
        "max_events": 5,
        "poll_interval": 1.5,
        "max_consecutive_failures": 3,
        "altinn_events_conn_id": "other",
    },
    {"resource": RES, "event_types": "single.type", "alternative_subject": "/person/1", "after": "latest"},
]

WATCHER_KWARGS: list[dict[str, Any]] = [
    {"resource": RES},
    {
        "resource": RES,
        "event_types": ("a.%",),
        "where": {"data.k": {"prefix": "x"}},
        "after": "0",
        "poll_interval": 2,
        "max_events_per_trigger_event": 1,
        "cursor_key": "mine",
        "max_consecutive_failures": 4,
        "altinn_events_conn_id": "other",
    },
]


@pytest.mark.parametrize("kwargs", SENSOR_KWARGS)
def test_sensor_trigger_serialize_round_trip(kwargs: dict[str, Any]) -> None:
    trigger = AltinnEventsSensorTrigger(**kwargs)
    classpath, data = trigger.serialize()
    assert classpath == "airflow_provider_altinn_events.triggers.altinn_events.AltinnEventsSensorTrigger"
    assert json.loads(json.dumps(data)) == data  # JSON only
    assert AltinnEventsSensorTrigger(**data).serialize() == trigger.serialize()


@pytest.mark.parametrize("kwargs", WATCHER_KWARGS)
def test_watcher_trigger_serialize_round_trip(kwargs: dict[str, Any]) -> None:
    trigger = AltinnEventsWatcherTrigger(**kwargs)
    classpath, data = trigger.serialize()
    assert classpath == "airflow_provider_altinn_events.triggers.altinn_events.AltinnEventsWatcherTrigger"
    assert json.loads(json.dumps(data)) == data
    assert AltinnEventsWatcherTrigger(**data).serialize() == trigger.serialize()


def test_kwargs_hold_the_conn_id_and_nothing_secret() -> None:
    _, data = AltinnEventsWatcherTrigger(resource=RES, altinn_events_conn_id="my_conn").serialize()
    assert data["altinn_events_conn_id"] == "my_conn"
    assert not {"token", "password", "private_key", "access_token"} & set(data)
    _, data = AltinnEventsSensorTrigger(resource=RES).serialize()
    assert set(data) == {
        "resource",
        "event_types",
        "subject",
        "alternative_subject",
        "source",
        "where",
        "after",
        "min_events",
        "max_events",
        "poll_interval",
        "max_consecutive_failures",
        "altinn_events_conn_id",
    }


def test_defaults() -> None:
    _, sensor = AltinnEventsSensorTrigger(resource=RES).serialize()
    assert sensor["after"] == "0" and sensor["min_events"] == 1 and sensor["max_events"] is None
    assert sensor["altinn_events_conn_id"] == "altinn_events_default"
    _, watcher = AltinnEventsWatcherTrigger(resource=RES).serialize()
    assert watcher["after"] == "latest"
    assert watcher["max_events_per_trigger_event"] == 100
    assert watcher["cursor_key"] == f"altinn_events.after:{RES}"


def test_subclasses_serialize_as_themselves() -> None:
    class MyWatcher(AltinnEventsWatcherTrigger):
        pass

    classpath, _ = MyWatcher(resource=RES).serialize()
    assert classpath == f"{__name__}.test_subclasses_serialize_as_themselves.<locals>.MyWatcher"


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"resource": "not-a-urn"}, "resource"),
        ({"resource": RES, "subject": "/a", "alternative_subject": "/b"}, "alternative_subject"),
        ({"resource": RES, "where": {"data.x": {"bogus": 1}}}, "where"),
        ({"resource": RES, "after": ""}, "after"),
        ({"resource": RES, "after": "None"}, "after"),
        ({"resource": RES, "event_types": 42}, "event_types"),
        ({"resource": RES, "poll_interval": -5}, "poll_interval"),
        ({"resource": RES, "poll_interval": 0}, "poll_interval"),
        ({"resource": RES, "poll_interval": "soon"}, "poll_interval"),
        ({"resource": RES, "poll_interval": float("inf")}, "poll_interval"),
        ({"resource": "urn:altinn:resource:UPPER CASE"}, "resource"),
        ({"resource": RES, "max_consecutive_failures": 0}, "max_consecutive_failures"),
        ({"resource": RES, "max_events_per_trigger_event": 0}, "max_events_per_trigger_event"),
    ],
)
def test_watcher_rejects_bad_arguments_at_construction(kwargs: dict[str, Any], field: str) -> None:
    # a watcher is built when the DAG file is parsed: mistakes show up as DAG import errors
    with pytest.raises(AltinnConfigError) as info:
        AltinnEventsWatcherTrigger(**kwargs)
    assert info.value.field == field


@pytest.mark.parametrize(
    ("kwargs", "field", "allowed"),
    [
        ({"min_events": 0}, "min_events", "at least 1"),
        ({"min_events": "x"}, "min_events", "at least 1"),
        ({"min_events": 3, "max_events": 2}, "max_events", "at least min_events"),
        ({"poll_interval": -5}, "poll_interval", "> 0"),
        ({"poll_interval": float("nan")}, "poll_interval", "> 0"),
    ],
)
def test_sensor_trigger_rejects_bad_arguments_at_construction(
    kwargs: dict[str, Any], field: str, allowed: str
) -> None:
    with pytest.raises(AltinnConfigError, match=allowed) as info:
        AltinnEventsSensorTrigger(resource=RES, **kwargs)
    assert info.value.field == field


def test_sensor_trigger_takes_limits_given_as_strings() -> None:
    trigger = AltinnEventsSensorTrigger(resource=RES, min_events="2", max_events="3", poll_interval="1.5")
    assert (trigger.min_events, trigger.max_events, trigger.poll_interval) == (2, 3, 1.5)


def test_watcher_rejects_an_empty_batch() -> None:
    with pytest.raises(ValueError, match="max_events_per_trigger_event"):
        AltinnEventsWatcherTrigger(resource=RES, max_events_per_trigger_event=0)


def test_watcher_trigger_hash_is_stable() -> None:
    # Airflow identifies asset-watcher triggers by class path + kwargs; equal arguments must give equal rows
    a = AltinnEventsWatcherTrigger(resource=RES, event_types=["x"]).serialize()
    b = AltinnEventsWatcherTrigger(resource=RES, event_types=("x",)).serialize()
    assert AltinnEventsWatcherTrigger.hash(*a) == AltinnEventsWatcherTrigger.hash(*b)


def test_message_queue_trigger_dispatches_scheme_altinn() -> None:
    from airflow.providers.common.messaging.triggers.msg_queue import MessageQueueTrigger

    from airflow_provider_altinn_events.queues.altinn_events import AltinnEventsMessageQueueProvider

    provider = AltinnEventsMessageQueueProvider()
    assert provider.scheme_matches("altinn") and not provider.scheme_matches("kafka")
    assert not provider.queue_matches("altinn://anything")
    assert provider.trigger_class() is AltinnEventsWatcherTrigger

    trigger = MessageQueueTrigger(scheme="altinn", resource=RES, event_types=["a"], poll_interval=5)
    assert isinstance(trigger.trigger, AltinnEventsWatcherTrigger)
    classpath, data = trigger.serialize()  # the triggerer stores and runs our trigger directly
    assert classpath.endswith(".AltinnEventsWatcherTrigger")
    assert data == AltinnEventsWatcherTrigger(resource=RES, event_types=["a"], poll_interval=5).serialize()[1]


def test_importing_the_modules_stays_light() -> None:
    # DAG files import the sensor and watcher on every parse; the HTTP/JWT stack must load only when used
    code = (
        "import sys\n"
        "import airflow_provider_altinn_events.sensors.altinn_events\n"
        "import airflow_provider_altinn_events.triggers.altinn_events as t\n"
        "t.AltinnEventsWatcherTrigger(resource='urn:altinn:resource:x')\n"
        "heavy = [m for m in ('jwt', 'aiohttp', 'httpx_aiohttp', 'airflow_provider_altinn_events.client.clients')"
        " if m in sys.modules]\n"
        "print(heavy)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True
    )
    assert out.stdout.strip().splitlines()[-1] == "[]"


# ---------------------------------------------------------------------------------------------------------
# the cursor store adapter
# ---------------------------------------------------------------------------------------------------------


class FakeAccessor:
    def __init__(self, values: dict[str, Any] | None = None) -> None:
        self.values = dict(values or {})
        self.writes: list[tuple[str, Any]] = []

    async def aget(self, key: str, default: Any = None) -> Any:
        return self.values.get(key, default)

    async def aset(self, key: str, value: Any) -> None:
        self.values[key] = value
        self.writes.append((key, value))


class FakeAccessors:
    """Shaped like Airflow's AssetStateStoreAccessors holding two assets (direct aget refuses)."""

    def __init__(self, first: FakeAccessor, second: FakeAccessor) -> None:
        self._by_name = {"a": first, "b": second}
        self._by_uri: dict[str, FakeAccessor] = {}
        self._total = 2

    async def aget(self, key: str, default: Any = None) -> Any:
        raise ValueError("Task has 2 concrete inlets and outlets")

    async def aset(self, key: str, value: Any) -> None:
        raise ValueError("Task has 2 concrete inlets and outlets")


class RecordingLog:
    def __init__(self) -> None:
        self.lines: list[str] = []

    def info(self, msg: str, *args: Any) -> None:
        self.lines.append(msg % args if args else msg)


async def test_cursor_store_single_asset() -> None:
    accessor = FakeAccessor({"k": "e5"})
    store = _CursorStore(accessor, "k", RecordingLog())
    assert store.durable
    assert await store.load() == "e5"
    await store.save("e5")  # unchanged: no write
    await store.save("e6")
    assert accessor.writes == [("k", "e6")]


async def test_cursor_store_several_assets_writes_all() -> None:
    first, second = FakeAccessor(), FakeAccessor({"k": "e9"})
    store = _CursorStore(FakeAccessors(first, second), "k", RecordingLog())
    assert await store.load() == "e9"
    await store.save("e10")
    assert first.values == {"k": "e10"} and second.values == {"k": "e10"}


async def test_cursor_store_in_memory_says_so_once() -> None:
    log = RecordingLog()
    store = _CursorStore(None, "k", log)
    assert not store.durable
    assert await store.load() is None
    await store.save("e1")
    await store.save("e2")
    assert len(log.lines) == 1 and "in memory" in log.lines[0]


def test_triggers_share_one_logger_per_class() -> None:
    """Hundreds of waiting triggers must not each build a structlog logger (about 1 KiB each): the triggerer
    routes lines by the trigger_id in context variables, so one logger per class logs the same."""
    first, second = AltinnEventsSensorTrigger(resource=RES), AltinnEventsSensorTrigger(resource=RES)
    watcher = AltinnEventsWatcherTrigger(resource=RES)
    assert first.log is second.log
    assert first.log is AltinnEventsSensorTrigger.logger()
    assert watcher.log is AltinnEventsWatcherTrigger(resource=RES).log
    assert watcher.log is not first.log  # still named after its own class


def test_a_default_watchers_kwargs_are_unchanged() -> None:
    # Airflow identifies a watcher by its serialized kwargs: the one argument checker and the shared failure
    # default must not change them (the values and their order, as 0.1.0 wrote them)
    assert AltinnEventsWatcherTrigger(resource=RES).serialize() == (
        "airflow_provider_altinn_events.triggers.altinn_events.AltinnEventsWatcherTrigger",
        {
            "resource": RES,
            "event_types": [],
            "subject": None,
            "alternative_subject": None,
            "source": None,
            "where": {},
            "after": "latest",
            "poll_interval": 30.0,
            "max_events_per_trigger_event": 100,
            "cursor_key": f"altinn_events.after:{RES}",
            "max_consecutive_failures": 10,
            "altinn_events_conn_id": "altinn_events_default",
        },
    )
    _, data = AltinnEventsWatcherTrigger(resource=RES).serialize()
    assert list(data) == [
        "resource",
        "event_types",
        "subject",
        "alternative_subject",
        "source",
        "where",
        "after",
        "poll_interval",
        "max_events_per_trigger_event",
        "cursor_key",
        "max_consecutive_failures",
        "altinn_events_conn_id",
    ]

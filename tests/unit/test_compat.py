"""``_compat`` and the watcher's cursor per Airflow line (docs/compatibility.rst).

The Variable path is what a watcher does in a triggerer below Airflow 3.3; here the triggerer's comms are
replaced by a dict (the real path is measured by tests/e2e/test_watcher_restart.py on each line).
"""

from __future__ import annotations

import copy
import re
from types import SimpleNamespace
from typing import Any

import pytest

from airflow_provider_altinn_events import _compat
from airflow_provider_altinn_events.sensors.altinn_events import AltinnEventsSensor
from airflow_provider_altinn_events.triggers import _runtime
from airflow_provider_altinn_events.triggers._runtime import _CursorStore
from airflow_provider_altinn_events.triggers.altinn_events import AltinnEventsWatcherTrigger

RES = "urn:altinn:resource:ttd-compat"


class Log:
    def __init__(self) -> None:
        self.lines: list[str] = []

    def info(self, msg: str, *args: Any) -> None:
        self.lines.append(msg % args if args else msg)


class Variables:
    """The metadata DB's Variables as the triggerer's supervisor serves them to a trigger."""

    def __init__(self) -> None:
        self.values: dict[str, str] = {}
        self.descriptions: dict[str, str] = {}
        self.fail_reads = False

    async def aget(self, key: str) -> str | None:
        if self.fail_reads:
            raise RuntimeError("supervisor unreachable")
        return self.values.get(key)

    async def aset(self, key: str, value: str, description: str) -> None:
        self.values[key] = value
        self.descriptions[key] = description


class Store:
    def __init__(self) -> None:
        self.values: dict[str, Any] = {}

    async def aget(self, key: str, default: Any = None) -> Any:
        return self.values.get(key, default)

    async def aset(self, key: str, value: Any) -> None:
        self.values[key] = value


@pytest.fixture
def variables(monkeypatch: pytest.MonkeyPatch) -> Variables:
    fake = Variables()
    monkeypatch.setattr(_compat, "aget_variable", fake.aget)
    monkeypatch.setattr(_compat, "aset_variable", fake.aset)
    return fake


def below_3_3(monkeypatch: pytest.MonkeyPatch, *, in_triggerer: bool = True) -> None:
    monkeypatch.setattr(_compat, "airflow_has_asset_state_store", lambda: False)
    monkeypatch.setattr(_compat, "in_triggerer", lambda: in_triggerer)


def watcher(**kwargs: Any) -> AltinnEventsWatcherTrigger:
    return AltinnEventsWatcherTrigger(**{"resource": RES, **kwargs})


async def test_below_3_3_the_cursor_lives_in_a_variable(
    monkeypatch: pytest.MonkeyPatch, variables: Variables
) -> None:
    below_3_3(monkeypatch)
    trigger, log = watcher(), Log()
    cursor = _CursorStore(None, trigger.cursor_key, log, watcher=trigger)
    assert cursor.durable and cursor.variable_key is not None
    assert await cursor.load() is None  # a first start: from the trigger's `after`
    await cursor.save("e5")
    await cursor.save("e5")  # unchanged: no second write
    assert variables.values == {cursor.variable_key: "e5"}
    assert "Delete it to start again" in variables.descriptions[cursor.variable_key]
    assert "Airflow Variable" in log.lines[0]

    restarted = _CursorStore(None, trigger.cursor_key, Log(), watcher=watcher())  # a new triggerer
    assert await restarted.load() == "e5"


async def test_below_3_3_an_unreadable_variable_fails_the_start_instead_of_skipping(
    monkeypatch: pytest.MonkeyPatch, variables: Variables
) -> None:
    below_3_3(monkeypatch)
    variables.fail_reads = True
    trigger = watcher()
    cursor = _CursorStore(None, trigger.cursor_key, Log(), watcher=trigger)
    with pytest.raises(RuntimeError):
        await cursor.load()  # the triggerer restarts the watcher; it never starts from "latest" instead


async def test_below_3_3_outside_a_triggerer_the_cursor_is_in_memory_and_says_so(
    monkeypatch: pytest.MonkeyPatch, variables: Variables
) -> None:
    below_3_3(monkeypatch, in_triggerer=False)
    trigger, log = watcher(), Log()
    cursor = _CursorStore(None, trigger.cursor_key, log, watcher=trigger)
    assert not cursor.durable
    await cursor.save("e1")
    assert variables.values == {} and "in memory only" in log.lines[0]


def test_variable_key_is_url_safe_and_apart_per_filter_and_connection() -> None:
    base = watcher()
    key = _runtime._variable_key(base.cursor_key, base)
    assert re.fullmatch(r"[A-Za-z0-9._-]+", key) and key.startswith("altinn_events.after_urn_altinn_resource")
    assert (
        _runtime._variable_key(base.cursor_key, watcher(poll_interval=5, max_events_per_trigger_event=7))
        == key
    )
    assert _runtime._variable_key(base.cursor_key, watcher(event_types=["a.b"])) != key
    assert _runtime._variable_key(base.cursor_key, watcher(altinn_events_conn_id="prod")) != key
    odd = watcher(cursor_key="my key/with#odd?chars")
    assert re.fullmatch(r"[A-Za-z0-9._-]+", _runtime._variable_key(odd.cursor_key, odd))


async def test_on_3_3_an_upgrade_takes_over_the_cursor_an_older_airflow_kept_in_a_variable(
    monkeypatch: pytest.MonkeyPatch, variables: Variables
) -> None:
    monkeypatch.setattr(_compat, "in_triggerer", lambda: True)
    trigger, store = watcher(), Store()
    variables.values[_runtime._variable_key(trigger.cursor_key, trigger)] = "e9"
    cursor = _CursorStore(store, trigger.cursor_key, Log(), watcher=trigger)
    assert await cursor.load() == "e9"  # not "latest": nothing published during the upgrade is skipped
    await cursor.save("e10")
    assert store.values == {trigger.cursor_key: "e10"}
    store.values[trigger.cursor_key] = "e11"
    assert (
        await _CursorStore(store, trigger.cursor_key, Log(), watcher=trigger).load() == "e11"
    )  # store first


def test_asset_state_store_detection_matches_the_trigger() -> None:
    _compat.airflow_has_asset_state_store.cache_clear()
    assert _compat.airflow_has_asset_state_store() == hasattr(watcher(), "asset_state_store")


def test_sensor_timeout_none_means_the_configured_default_on_every_line() -> None:
    default = _compat.conf.getfloat("sensors", "default_timeout")
    assert _compat.sensor_timeout(None) == default
    assert _compat.sensor_timeout(60) == 60
    assert AltinnEventsSensor(task_id="s", resource=RES).timeout == default  # 3.0-3.2 refuse None themselves


def test_copyable_event_survives_deepcopy_fresh() -> None:
    event = _compat.CopyableEvent()
    event.set()
    copied = copy.deepcopy({"cancel": event})["cancel"]
    assert isinstance(copied, _compat.CopyableEvent) and not copied.is_set()


def test_moved_exceptions_are_the_ones_airflow_raises() -> None:
    """The task runner catches these exact classes: the sensor's timeout and a fail-now must be Airflow's."""
    assert issubclass(_compat.AirflowFailException, _compat.AirflowException)
    assert issubclass(_compat.AirflowSensorTimeout, _compat.AirflowException)
    assert issubclass(_compat.TaskDeferred, BaseException)


# -- Airflow's private attributes, read in _compat.py only: these fail if Airflow renames one ----------------


def _real_asset_store(*names: str) -> Any:
    """task-sdk's own store of per-asset accessors (Airflow 3.3+), built as the triggerer builds it."""
    context = pytest.importorskip("airflow.sdk.execution_time.context")
    if not hasattr(context, "AssetStateStoreAccessors"):
        pytest.skip("this Airflow has no asset state store (below 3.3): the cursor lives in a Variable")
    from airflow.sdk import Asset

    return context.AssetStateStoreAccessors(inlets=[Asset(name=n, uri=f"altinn://{n}") for n in names])


def test_asset_state_accessors_finds_every_asset_of_airflows_own_store() -> None:
    """Reads ``_by_name``/``_by_uri``/``_total`` of task-sdk's AssetStateStoreAccessors: if Airflow renames them,
    a two-asset store comes back as one accessor (whose aget refuses) and this fails."""
    store = _real_asset_store("first", "second")
    accessors = _compat.asset_state_accessors(store)
    assert len(accessors) == 2 and store not in accessors
    assert all(callable(getattr(a, "aget", None)) and callable(getattr(a, "aset", None)) for a in accessors)
    assert sorted(a._name for a in accessors) == ["first", "second"]


def test_asset_state_accessors_uses_a_one_asset_store_itself() -> None:
    store = _real_asset_store("only")
    assert _compat.asset_state_accessors(store) == [store]


def test_in_triggerer_reads_a_name_the_task_sdk_still_has() -> None:
    """``in_triggerer`` reads ``task_runner.SUPERVISOR_COMMS``; renamed, it would say "not in a triggerer" for
    ever and the watcher would keep its cursor in memory below 3.3."""
    from airflow.sdk.execution_time import task_runner

    # declared (annotated) at module level, assigned only when a supervisor starts the runner
    assert "SUPERVISOR_COMMS" in vars(task_runner) or "SUPERVISOR_COMMS" in task_runner.__annotations__
    assert _compat.in_triggerer() is (getattr(task_runner, "SUPERVISOR_COMMS", None) is not None)


WHERE = {"data.status": "done", "subject": {"prefix": "/party/"}, "data.n": {"in": [1, 2]}}
# ``where=WHERE`` as Airflow 3.2.2 hands it to the watcher's trigger in the triggerer (measured: encode_trigger,
# smart_decode_trigger_kwargs and Trigger.encrypt_kwargs/_decrypt_kwargs of a real 3.2.2 on this WHERE)
WHERE_AS_AIRFLOW_3_2_STORES_IT = {
    "Encoding.VAR": {
        "data.status": "done",
        "subject": {"Encoding.VAR": {"prefix": "/party/"}, "Encoding.TYPE": "dict"},
        "data.n": {"Encoding.VAR": {"in": [1, 2]}, "Encoding.TYPE": "dict"},
    },
    "Encoding.TYPE": "dict",
}


@pytest.mark.parametrize(
    "stored",
    [
        WHERE_AS_AIRFLOW_3_2_STORES_IT,
        {"Encoding.VAR": {}, "Encoding.TYPE": "dict"},  # where=None (the restart probe's): serialized as {}
        {"__var": {"subject": {"__var": {"prefix": "/party/"}, "__type": "dict"}}, "__type": "dict"},
    ],
)
def test_watcher_takes_the_where_airflow_3_2_hands_it_still_encoded(stored: dict[str, Any]) -> None:
    """Before the fix Airflow 3.2.2's triggerer died on every watcher with ``AltinnConfigError:
    where['Encoding.VAR']: empty condition`` (tests/e2e/test_watcher_restart.py on 3.2.2)."""
    plain = _compat.decode_watcher_argument(stored)
    trigger = AltinnEventsWatcherTrigger(resource=RES, where=stored)
    assert trigger.event_filter == AltinnEventsWatcherTrigger(resource=RES, where=plain).event_filter
    assert plain in (WHERE, {}, {"subject": {"prefix": "/party/"}})
    assert trigger.serialize()[1]["where"] == plain  # what it hands on is plain again


def test_decoding_leaves_every_other_where_alone() -> None:
    for where in (WHERE, {}, None, {"Encoding.VAR": "x"}, {"data.__var": 1, "data.__type": "dict"}):
        assert _compat.decode_watcher_argument(where) is where


def test_watcher_takes_what_this_airflow_stores_for_it() -> None:
    """The real store path of the installed Airflow, where it has the functions 3.2 and 3.3 use (the
    dag-processor's ``encode_trigger`` and ``smart_decode_trigger_kwargs``, the trigger table's encryption)."""
    encoders = pytest.importorskip("airflow.serialization.encoders")
    decoders = pytest.importorskip("airflow.serialization.decoders")
    if not hasattr(encoders, "encode_trigger") or not hasattr(decoders, "smart_decode_trigger_kwargs"):
        pytest.skip("Airflow 3.0 and 3.1 store watcher arguments through other functions")
    from airflow.models.trigger import Trigger

    trigger = AltinnEventsWatcherTrigger(resource=RES, where=WHERE)
    kwargs = decoders.smart_decode_trigger_kwargs(encoders.encode_trigger(trigger)["kwargs"])
    stored = Trigger._decrypt_kwargs(Trigger.encrypt_kwargs(kwargs))
    assert AltinnEventsWatcherTrigger(**stored).event_filter == trigger.event_filter


# -- Variables from a trigger: over the runner's async channel, never a sync call from a worker thread --------


class _AsyncOnlyComms:
    """The trigger runner's channel as far as Variables need it: ``asend`` answered on the loop's thread; a
    sync ``send`` (what ``Variable.get``/``set`` use) fails, as it can on a real 3.0/3.1 triggerer when it
    interleaves with the runner's own state sync ("Response read out of order!")."""

    def __init__(self, answers: dict[str, Any]) -> None:
        self.answers = answers
        self.sent: list[Any] = []
        self.threads: set[int] = set()

    async def asend(self, msg: Any) -> Any:
        import threading

        self.sent.append(msg)
        self.threads.add(threading.get_ident())
        return self.answers.get(msg.type)

    def send(self, msg: Any) -> Any:
        raise AssertionError(
            "a sync comms call from a trigger: it can interleave with the runner's state sync"
        )


@pytest.fixture
def async_comms(monkeypatch: pytest.MonkeyPatch) -> Any:
    from airflow.sdk.execution_time import task_runner

    def install(answers: dict[str, Any]) -> _AsyncOnlyComms:
        comms = _AsyncOnlyComms(answers)
        monkeypatch.setattr(task_runner, "SUPERVISOR_COMMS", comms, raising=False)
        return comms

    return install


async def test_a_trigger_writes_and_reads_its_variable_over_the_runners_async_channel(
    async_comms: Any,
) -> None:
    import threading

    from airflow.sdk.execution_time.comms import VariableResult

    comms = async_comms({"GetVariable": VariableResult(key="k", value="evt-9")})
    await _compat.aset_variable("k", "evt-9", description="cursor")
    assert await _compat.aget_variable("k") == "evt-9"
    put, get = comms.sent
    assert (put.type, put.key, put.value, put.description) == ("PutVariable", "k", "evt-9", "cursor")
    assert (get.type, get.key) == ("GetVariable", "k")
    assert comms.threads == {threading.get_ident()}  # on the loop's own thread, no worker thread


async def test_a_missing_variable_reads_as_none_and_other_errors_raise(async_comms: Any) -> None:
    from airflow.sdk.exceptions import ErrorType
    from airflow.sdk.execution_time.comms import ErrorResponse

    async_comms({"GetVariable": ErrorResponse(error=ErrorType.VARIABLE_NOT_FOUND)})
    assert await _compat.aget_variable("absent") is None
    async_comms({"GetVariable": ErrorResponse(error=ErrorType.API_SERVER_ERROR)})
    with pytest.raises(RuntimeError, match="could not read the Variable 'k': API_SERVER_ERROR"):
        await _compat.aget_variable("k")
    async_comms({"PutVariable": ErrorResponse(error=ErrorType.API_SERVER_ERROR)})
    with pytest.raises(RuntimeError, match="could not write the Variable 'k'"):
        await _compat.aset_variable("k", "v", description="d")


# -- sync SDK calls from the triggerer's worker threads: routed back to the runner's loop ----------------------


class _Airflow31Comms:
    """The trigger runner's channel as Airflow 3.0 and 3.1 build it: ``send`` is ``async_to_sync(asend)``, and
    ``asend`` must run on the runner's loop (where its lock orders requests on the one socket)."""

    def __init__(self, loop: Any) -> None:
        self.loop = loop
        self.loops: list[Any] = []

    def send(self, msg: Any) -> Any:
        from asgiref.sync import async_to_sync

        return async_to_sync(self.asend)(msg)

    async def asend(self, msg: Any) -> Any:
        import asyncio

        self.loops.append(asyncio.get_running_loop())
        return None


async def test_a_connection_is_read_where_airflows_sync_comms_reach_the_runners_loop(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Opening a client reads the connection's extra, and Airflow's ``extra_dejson`` tells the supervisor to
    mask its secrets with a sync comms call. From a plain worker thread (``asyncio.to_thread``) that call ran
    on a loop of its own, which on a real 3.1.8 triggerer killed the runner ("Response read out of order!")."""
    import asyncio

    from airflow.sdk.execution_time import task_runner

    from airflow_provider_altinn_events.triggers import _runtime

    comms = _Airflow31Comms(asyncio.get_running_loop())
    monkeypatch.setattr(task_runner, "SUPERVISOR_COMMS", comms, raising=False)
    built = object()

    async def connection(conn_id: str) -> Any:
        return object()

    def build(conn: Any) -> Any:  # what reading extra_dejson does on Airflow 3.1: MaskSecret through send()
        comms.send(SimpleNamespace(type="MaskSecret"))
        return built

    monkeypatch.setattr(_compat, "aget_connection", connection)
    monkeypatch.setattr(_runtime, "_load_client_stack", lambda: None)
    monkeypatch.setattr(_runtime, "_build_client", build)
    assert await _runtime._open_client("altinn_events_default") is built
    assert comms.loops == [comms.loop]  # the runner's loop, not one of the worker thread's own

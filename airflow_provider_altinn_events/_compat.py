"""The only place that knows about differences between Airflow versions (3.0.6 up to 3.3; see
``docs/compatibility.rst``).

Every name that moved between Airflow 3.0 and 3.3 is imported here, by feature detection (try the new home,
fall back to the old one), never by comparing version strings; the rest of the provider imports these names
from this module. What differs in behaviour is listed in ``docs/compatibility.rst`` and said in a log line
or a warning where it happens:

* ``BaseHook``: in ``airflow.sdk`` from task-sdk 1.1 (Airflow 3.1); ``airflow.hooks.base`` on 3.0.
* ``BaseHook.aget_connection``: task-sdk 1.1+; on 3.0 the sync lookup runs in a worker thread.
* ``AirflowException``, ``AirflowFailException`` and the other task exceptions: in ``airflow.sdk.exceptions``
  from task-sdk 1.2 (Airflow 3.2); ``airflow.exceptions`` before.
* ``conf``: ``airflow.sdk.configuration`` from task-sdk 1.2; ``airflow.configuration`` before.
* ``BaseSensorOperator(timeout=None)``: accepted (meaning ``[sensors] default_timeout``) from Airflow 3.3;
  :func:`sensor_timeout` resolves ``None`` the same way on every line.
* An asset watcher's dict arguments: Airflow 3.2 hands them to the trigger still in its serialization
  envelope, keys turned into text; :func:`decode_watcher_argument` decodes them as Airflow 3.3 does.
* The asset state store (Airflow 3.3, ``BaseEventTrigger.asset_state_store``): below 3.3 the watcher keeps
  its cursor in an Airflow Variable (:func:`airflow_has_asset_state_store`, :func:`aget_variable`,
  :func:`aset_variable`).

Airflow's private attributes are read here only, each in a named function with a test that fails if Airflow
renames it (``tests/unit/test_compat.py``): the per-asset accessors of a watcher's asset state store
(:func:`asset_state_accessors`, ``_by_name``/``_by_uri``/``_total`` of task-sdk's
``AssetStateStoreAccessors``) and the task SDK's supervisor channel (:func:`in_triggerer`,
``task_runner.SUPERVISOR_COMMS``).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import timedelta
from functools import cache
from typing import TYPE_CHECKING, Any, TypeVar

try:
    from airflow.sdk import BaseHook
except ImportError:  # Airflow 3.0 (task-sdk 1.0): BaseHook still lives in core
    from airflow.hooks.base import BaseHook  # type: ignore[no-redef,attr-defined,unused-ignore]

try:  # task-sdk 1.2+ (Airflow 3.2+)
    from airflow.sdk.exceptions import (
        AirflowException,
        AirflowFailException,
        AirflowSensorTimeout,
        AirflowSkipException,
        TaskDeferred,
    )
except ImportError:  # Airflow 3.0 and 3.1: the same classes the task runner catches, in core
    from airflow.exceptions import (  # type: ignore[no-redef,attr-defined,unused-ignore]
        AirflowException,
        AirflowFailException,
        AirflowSensorTimeout,
        AirflowSkipException,
        TaskDeferred,
    )

try:  # task-sdk 1.2+ (Airflow 3.2+)
    from airflow.sdk.configuration import conf
except ImportError:  # Airflow 3.0 and 3.1
    from airflow.configuration import conf  # type: ignore[no-redef,attr-defined,unused-ignore]

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from airflow.sdk import Connection

__all__ = [
    "AirflowException",
    "AirflowFailException",
    "AirflowSensorTimeout",
    "AirflowSkipException",
    "BaseHook",
    "CopyableEvent",
    "TaskDeferred",
    "aget_connection",
    "aget_variable",
    "airflow_has_asset_state_store",
    "airflow_version",
    "aset_variable",
    "asset_state_accessors",
    "conf",
    "decode_watcher_argument",
    "in_triggerer",
    "sensor_timeout",
]


def airflow_version() -> str:
    """The installed Airflow's version, for messages only (behaviour is chosen by feature detection)."""
    try:
        from airflow import __version__
    except ImportError:  # pragma: no cover - every supported Airflow has it
        return "unknown"
    return str(__version__)


async def aget_connection(conn_id: str) -> Connection:
    """Fetch a connection without blocking the event loop.

    Uses ``BaseHook.aget_connection`` (task-sdk 1.1+). On Airflow 3.0 it runs the sync lookup in a worker
    thread via ``asgiref.sync_to_async`` (installed with Airflow): the triggerer's sync comms call
    (``async_to_sync``) must not run on the event loop's own thread. For the same reason the extra is parsed
    in that thread too: 3.0's ``Connection.extra_dejson`` registers the extra's secrets for masking through a
    sync comms call on every read (measured in a real 3.0.6 triggerer: ``RuntimeError: You cannot use
    AsyncToSync in the same thread as an async event loop``).
    """
    getter: Any = getattr(BaseHook, "aget_connection", None)
    if getter is not None:
        conn: Connection = await getter(conn_id)
        return conn
    from asgiref.sync import sync_to_async

    def read() -> Any:
        return _ParsedExtraConnection(BaseHook.get_connection(conn_id))

    found: Connection = await sync_to_async(read)()
    return found


class _ParsedExtraConnection:
    """A connection whose ``extra_dejson`` was read (and its secrets registered for masking) once, in the
    worker thread that fetched it; every other attribute is the connection's own (Airflow 3.0 only)."""

    def __init__(self, conn: Any) -> None:
        self._conn = conn
        self.extra_dejson: dict[str, Any] = conn.extra_dejson

    def __getattr__(self, name: str) -> Any:
        return getattr(self._conn, name)

    def __repr__(self) -> str:
        return repr(self._conn)


def sensor_timeout(timeout: float | timedelta | None) -> float | timedelta:
    """``timeout`` as every ``BaseSensorOperator`` accepts it: ``None`` means ``[sensors] default_timeout``.

    Airflow 3.3 resolves ``None`` itself; 3.0 to 3.2 refuse it (``ValueError``). Resolving it here gives the
    same value on every line, read at the same moment (when the sensor is built).
    """
    if timeout is None:
        return float(conf.getfloat("sensors", "default_timeout"))
    return timeout


# ---------------------------------------------------------------------------------------------------------
# Where the watcher keeps its cursor (docs/compatibility.rst, "The watcher's cursor")
# ---------------------------------------------------------------------------------------------------------


@cache
def airflow_has_asset_state_store() -> bool:
    """Whether this Airflow injects ``asset_state_store`` into event triggers (Airflow 3.3+, migration
    ``0112_3_3_0_add_task_state_store_and_asset_state_store_tables``).

    Detected on a throwaway subclass instance: ``BaseEventTrigger.__init__`` creates the attribute (``None`` until the
    triggerer injects the accessors) on the versions that have the store, and not before. Cached: imported
    lazily, so operator-only DAG files do not load the trigger base.
    """
    from airflow.triggers.base import BaseEventTrigger, TriggerEvent

    class _Probe(BaseEventTrigger):
        def serialize(self) -> tuple[str, dict[str, Any]]:  # pragma: no cover - never called
            return "", {}

        async def run(self) -> AsyncIterator[TriggerEvent]:  # pragma: no cover - never called
            return
            yield

    try:
        probe = _Probe()  # type: ignore[no-untyped-call]  # BaseEventTrigger.__init__ is unannotated
    except Exception:  # pragma: no cover - a future signature change: assume the store is there
        return True
    return hasattr(probe, "asset_state_store")


def asset_state_accessors(store: Any) -> list[Any]:
    """The accessors a watcher reads and writes its cursor through, from the ``asset_state_store`` Airflow 3.3
    injects into an event trigger: the store itself when it serves one asset (its ``aget``/``aset`` go to
    that asset), else the accessor of every asset it holds, so each watched asset keeps the cursor.

    task-sdk's ``AssetStateStoreAccessors`` (``airflow.sdk.execution_time.context``) keeps the per-asset
    accessors in the private ``_by_name`` and ``_by_uri`` and their count in ``_total``; its public
    ``__getitem__`` needs the asset objects, which a trigger does not have. Read here only; a store without
    those attributes counts as one asset (its own ``aget``/``aset`` then decide).
    """
    total = getattr(store, "_total", None)
    if callable(getattr(store, "aget", None)) and (total is None or total == 1):
        return [store]
    by_name = getattr(store, "_by_name", {}) or {}
    by_uri = getattr(store, "_by_uri", {}) or {}
    return [*by_name.values(), *by_uri.values()] or [store]


_T = TypeVar("_T")


async def in_sdk_thread(function: Callable[..., _T], *args: Any) -> _T:
    """Run a blocking ``function`` that may call Airflow's sync SDK (a connection's ``extra_dejson``, which
    registers secrets for masking through the supervisor) in a worker thread, without blocking the event loop.

    ``asgiref``'s ``sync_to_async`` (installed with Airflow), not ``asyncio.to_thread``: in its threads
    ``async_to_sync`` (which the SDK's sync comms use on Airflow 3.0 and 3.1) runs the request on the
    caller's loop, where the channel's lock orders it with the runner's own requests. From a plain thread it
    runs on a loop of its own and can read another request's answer off the socket; measured on a real 3.1.8
    triggerer: ``RuntimeError: Response read out of order!`` and the runner died with every trigger in it.
    Airflow 3.2+ bridge either way (docs/compatibility.rst).
    """
    from asgiref.sync import sync_to_async

    result: _T = await sync_to_async(function)(*args)
    return result


def _trigger_comms() -> Any | None:
    """The trigger runner's channel to its supervisor when it has an async API (``asend``), else ``None``.

    Airflow 3.0 and 3.1's sync SDK calls (``Variable.get``/``Variable.set``) from a worker thread reach the
    channel through ``async_to_sync`` outside the runner's event loop, so their request and the runner's own
    state sync can interleave on the socket: measured on a real 3.1.8 triggerer, the runner died with
    ``RuntimeError: Response read out of order!`` right after a watcher's first cursor write, taking every
    trigger of the triggerer with it (Airflow 3.2 bridges such calls to the runner's loop). Awaiting
    ``asend`` on the runner's own loop, as the runner does for its state sync, takes the channel's lock and
    cannot interleave, on every Airflow 3 line (docs/compatibility.rst).
    """
    try:
        from airflow.sdk.execution_time import task_runner
    except ImportError:  # pragma: no cover - every supported Airflow has it
        return None
    comms = getattr(task_runner, "SUPERVISOR_COMMS", None)
    return comms if callable(getattr(comms, "asend", None)) else None


async def aget_variable(key: str) -> str | None:
    """Read an Airflow Variable from a trigger without blocking the event loop; ``None`` when it does not exist.

    Airflow 3.0 to 3.2 have no async ``Variable`` API. In a triggerer the request goes to the supervisor
    (``GetVariable``), which reads the metadata DB through the execution API, over the runner's async channel
    (:func:`_trigger_comms`). Elsewhere (no async channel) the SDK's sync call runs in a worker thread.

    :raises RuntimeError: the supervisor answered with an error other than "not found".
    :raises Exception: whatever the SDK raises when the Variable cannot be read (e.g. outside a triggerer).
    """
    comms = _trigger_comms()
    if comms is None:
        from airflow.sdk import Variable
        from asgiref.sync import sync_to_async

        value = await sync_to_async(Variable.get)(key, default=None)
        return None if value is None else str(value)
    from airflow.sdk.execution_time.comms import ErrorResponse, GetVariable

    answer = await comms.asend(GetVariable(key=key))
    if isinstance(answer, ErrorResponse):
        if _error_name(answer) == "VARIABLE_NOT_FOUND":
            return None
        raise RuntimeError(f"Airflow could not read the Variable {key!r}: {_error_name(answer)}")
    value = getattr(answer, "value", None)
    return None if value is None else str(value)


async def aset_variable(key: str, value: str, description: str) -> None:
    """Write an Airflow Variable from a trigger (``PutVariable`` over the runner's async channel, see
    :func:`_trigger_comms`; elsewhere the SDK's sync call in a worker thread).

    :raises RuntimeError: the supervisor answered with an error.
    """
    comms = _trigger_comms()
    if comms is None:
        from airflow.sdk import Variable
        from asgiref.sync import sync_to_async

        await sync_to_async(Variable.set)(key, value, description=description)
        return
    from airflow.sdk.execution_time.comms import ErrorResponse, PutVariable

    answer = await comms.asend(PutVariable(key=key, value=value, description=description))
    if isinstance(answer, ErrorResponse):
        raise RuntimeError(f"Airflow could not write the Variable {key!r}: {_error_name(answer)}")


def _error_name(answer: Any) -> str:
    error = getattr(answer, "error", None)
    return str(getattr(error, "value", error))


_ENVELOPE_KEYS = {"Encoding.VAR": "__var", "Encoding.TYPE": "__type"}
"""Airflow's serialization envelope keys (``airflow.serialization.enums.Encoding``) as Airflow 3.2 stores them
(the ``str()`` of the enum member) and as they are meant to be (its value)."""


def decode_watcher_argument(value: Any) -> Any:
    """A watcher trigger's argument as the DAG gave it, also when Airflow 3.2 hands it over still encoded.

    Airflow 3.2 stores an asset watcher's trigger arguments with every dict left in Airflow's serialization
    envelope and the envelope's keys turned into text: ``where={"subject": {"prefix": "/party/"}}`` reaches
    the trigger as ``{"Encoding.VAR": {"subject": {"Encoding.VAR": {"prefix": "/party/"}, "Encoding.TYPE":
    "dict"}}, "Encoding.TYPE": "dict"}`` (``smart_decode_trigger_kwargs`` in 3.2's
    ``airflow/serialization/decoders.py`` decodes one level, then ``Trigger.encrypt_kwargs`` writes the enum
    keys as text; measured on 3.2.2). The trigger then refuses the filter, and the triggerer's runner
    process dies with every trigger in it. Airflow 3.3 decodes such envelopes itself
    (``_normalize_stringified_encoding_keys`` there); this does the same on older lines: a dict that has both
    envelope keys, at any depth, is decoded by Airflow's own ``BaseSerialization``. Anything else, and every
    argument on 3.0, 3.1 and 3.3, is returned unchanged (docs/compatibility.rst).
    """
    normalised = _normalise_envelope_keys(value)
    if not (isinstance(normalised, dict) and {"__var", "__type"} <= normalised.keys()):
        return value
    from airflow.serialization.serialized_objects import BaseSerialization

    return BaseSerialization.deserialize(normalised)


def _normalise_envelope_keys(value: Any) -> Any:
    if isinstance(value, list):
        return [_normalise_envelope_keys(item) for item in value]
    if not isinstance(value, dict):
        return value
    rename = _ENVELOPE_KEYS if _ENVELOPE_KEYS.keys() <= value.keys() else {}
    return {rename.get(key, key): _normalise_envelope_keys(item) for key, item in value.items()}


def in_triggerer() -> bool:
    """Whether the task SDK can talk to a supervisor here (a triggerer or a worker), so that
    :func:`aget_variable` and :func:`aset_variable` can work; not in ``dag.test()``'s trigger loop or a plain
    test. The trigger runner sets ``task_runner.SUPERVISOR_COMMS`` when it starts (Airflow 3.0 to 3.3)."""
    try:
        from airflow.sdk.execution_time import task_runner
    except ImportError:  # pragma: no cover - every supported Airflow has it
        return False
    return getattr(task_runner, "SUPERVISOR_COMMS", None) is not None


class CopyableEvent(threading.Event):
    """A ``threading.Event`` that survives ``copy.deepcopy`` (the copy is a fresh, unset event).

    Airflow 3.0's ``dag.test()`` deep-copies every operator of the DAG (``airflow.models.dag.DAG.from_sdk_dag``
    copies the task groups), and a plain ``Event`` holds a lock, which cannot be copied; 3.1+ do not copy
    there. Operators that keep an event for ``on_kill`` use this one.
    """

    def __copy__(self) -> CopyableEvent:
        return type(self)()

    def __deepcopy__(self, memo: dict[int, Any]) -> CopyableEvent:
        return type(self)()

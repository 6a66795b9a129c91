"""What the Altinn event triggers keep in the triggerer process: shared clients and the watcher's cursor.

* :data:`_CLIENTS`: one :class:`AsyncAltinnEventsClient` per (connection id, event loop), reference-counted,
  so every trigger of a triggerer that uses the same connection shares one connection pool and one token;
* :class:`_CursorStore`: the watcher's ``after`` cursor in the trigger's asset state store (Airflow 3.3), in
  an Airflow Variable (Airflow 3.0 to 3.2), or in memory where there is neither.

Only the standard library and ``_compat`` are imported here; the client and the hook are loaded when the
first client opens, in a worker thread (:func:`_open_client`).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import importlib
import json
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from airflow_provider_altinn_events import _compat

if TYPE_CHECKING:
    from airflow_provider_altinn_events.client import AsyncAltinnEventsClient

# ---------------------------------------------------------------------------------------------------------
# One client per (connection id, event loop), shared by every trigger in this process
# ---------------------------------------------------------------------------------------------------------


@dataclass
class _SharedClient:
    loop: asyncio.AbstractEventLoop
    opening: asyncio.Task[AsyncAltinnEventsClient]
    users: int = 0


@dataclass
class _SharedClients:
    """Reference-counted async clients keyed by connection id and the running event loop.

    The triggerer runs all triggers in one loop; sharing means one token exchange and one pool for N
    triggers. The loop is part of the key (and checked by identity) because an httpx/aiohttp client must
    only be used from the loop that created it. All bookkeeping runs on that loop, so no lock is needed.
    """

    entries: dict[tuple[str, int], _SharedClient] = field(default_factory=dict)

    async def acquire(self, conn_id: str) -> AsyncAltinnEventsClient:
        """The shared client of ``conn_id``; pair every call with :meth:`release` in a ``finally``.

        Not an async context manager: its suspended frame would live as long as each wait, in every one of
        hundreds of waiting triggers (about 0.4 KiB each, measured with ``tracemalloc``).
        """
        loop = asyncio.get_running_loop()
        key = (conn_id, id(loop))
        entry = self.entries.get(key)
        if entry is None or entry.loop is not loop:
            entry = _SharedClient(loop, loop.create_task(_open_client(conn_id)))
            self.entries[key] = entry
        try:
            client = await asyncio.shield(entry.opening)
        except Exception:
            if self.entries.get(key) is entry:
                del self.entries[key]  # let the next trigger try again (e.g. after a connection fix)
            raise
        entry.users += 1
        return client

    async def release(self, conn_id: str, client: AsyncAltinnEventsClient) -> None:
        loop = asyncio.get_running_loop()
        key = (conn_id, id(loop))
        entry = self.entries.get(key)
        if (
            entry is None
            or entry.loop is not loop
            or not entry.opening.done()
            or entry.opening.result() is not client
        ):
            await client.aclose()
            return
        entry.users -= 1
        if entry.users <= 0:
            del self.entries[key]
            await client.aclose()


#: What the first client of a process imports: the hook and client core, and under them httpx, aiohttp,
#: httpx-aiohttp, PyJWT and cryptography. Cold, that is 0.2-0.8 s of imports (docs/guides/distributed.rst).
_CLIENT_STACK = (
    "airflow_provider_altinn_events.hooks.altinn_events",
    "airflow_provider_altinn_events.client.clients",
    "airflow_provider_altinn_events.client.settings",
    "airflow_provider_altinn_events.client.transport",
    "airflow_provider_altinn_events.client.keys",
    "airflow_provider_altinn_events.client.tokens",
    "jwt",
    "jwt.algorithms",
)


def _load_client_stack() -> None:
    """Import everything a client needs, in a worker thread (see :func:`_open_client`)."""
    for name in _CLIENT_STACK:
        importlib.import_module(name)


async def _open_client(conn_id: str) -> AsyncAltinnEventsClient:
    """Open the shared client of ``conn_id`` without blocking the triggerer's event loop.

    Every trigger of a triggerer runs on one event loop, so a blocking step stalls all of them (Airflow
    logs "Triggerer's async thread was blocked" past 0.2 s). The first client's slow steps are synchronous:
    importing the HTTP/JWT stack (cold: 0.2-0.8 s), building the client (an SSL context: 20-40 ms) and
    parsing and checking the RSA key (about 0.1 s). They run in worker threads; only the connection lookup,
    which Airflow does asynchronously, stays on the loop. The steps are those of
    ``AltinnEventsHook.get_async_conn`` (connection, :class:`AltinnSettings`, client).
    """
    await asyncio.to_thread(_load_client_stack)
    from airflow_provider_altinn_events._compat import aget_connection

    conn = await aget_connection(conn_id)
    # Building the client reads the connection's extra, and Airflow's Connection.extra_dejson registers its
    # secrets for masking with a sync call to the triggerer's supervisor. From a plain worker thread
    # (asyncio.to_thread) that call runs on an event loop of its own and, on Airflow 3.0 and 3.1, shares the
    # runner's socket with the runner's own state sync: measured on a real 3.1.8 triggerer, the runner died
    # with "Response read out of order!" a second later, with every trigger in it. _compat.in_sdk_thread runs
    # it in a thread from which Airflow routes such calls back to the runner's loop.
    from airflow_provider_altinn_events._compat import in_sdk_thread

    return await in_sdk_thread(_build_client, conn)


def _build_client(conn: Any) -> AsyncAltinnEventsClient:
    from airflow_provider_altinn_events.client.clients import AsyncAltinnEventsClient
    from airflow_provider_altinn_events.client.settings import AltinnSettings

    client = AsyncAltinnEventsClient(AltinnSettings.from_connection(conn))
    if client.settings.private_key is not None:
        # a key that does not load fails here and again, the same way as before, on the first request
        with contextlib.suppress(Exception):
            client.auth.signing_key()
    return client


_CLIENTS = _SharedClients()


# ---------------------------------------------------------------------------------------------------------
# The watcher's cursor
# ---------------------------------------------------------------------------------------------------------


class _CursorStore:
    """The watcher's cursor: in the asset state store (Airflow 3.3+), in an Airflow Variable (Airflow 3.0 to
    3.2, in a triggerer), or in memory (no store injected: ``dag.test()``, a plain test, a deferred task).

    One trigger row can watch several assets (same class and kwargs in several ``Asset`` objects); the
    accessor then refuses direct ``aget``/``aset``, so the cursor is written to every watched asset and read
    from the first that has one.

    Below 3.3 there is no per-asset store; the triggerer lets a trigger read and write Variables (the
    supervisor forwards ``GetVariable``/``PutVariable`` to the execution API, i.e. the metadata DB), so the
    cursor is durable however many triggerer machines there are. The Variable's key is derived from
    ``cursor_key`` and what the watcher reads (:func:`_variable_key`). Semantics per version:
    ``docs/compatibility.rst``.
    """

    def __init__(self, store: Any, key: str, log: Any, *, watcher: Any = None) -> None:
        self.key = key
        self.accessors: list[Any] = []
        self.variable_key: str | None = None
        self.saved: str | None = None
        self.legacy_key: str | None = None  # the Variable an older Airflow kept this cursor in (upgrades)
        if store is not None and watcher is not None and _compat.in_triggerer():
            self.legacy_key = _variable_key(key, watcher)
        if store is None and watcher is not None and not _compat.airflow_has_asset_state_store():
            if _compat.in_triggerer():
                self.variable_key = _variable_key(key, watcher)
                log.info(
                    "Airflow %s has no asset state store: the cursor is kept in the Airflow Variable %r",
                    _compat.airflow_version(),
                    self.variable_key,
                )
            else:
                log.info(
                    "Not running in a triggerer (dag.test() or a plain test): the cursor is kept in memory only."
                )
        elif store is None:
            log.info(
                "No asset state store (dag.test(), a plain test, or a deferred task): the cursor is kept in "
                "memory only, so a restart starts again from the trigger's `after`."
            )
        else:
            self.accessors = _compat.asset_state_accessors(store)

    @property
    def durable(self) -> bool:
        return bool(self.accessors) or self.variable_key is not None

    async def load(self) -> str | None:
        """The stored cursor, or ``None``. A Variable that cannot be read raises (the triggerer restarts the
        watcher), rather than starting from ``after`` and skipping what arrived meanwhile."""
        if self.variable_key is not None:
            value = await _compat.aget_variable(self.variable_key)
            if value:
                self.saved = value
                return value
            return None
        for accessor in self.accessors:
            value = await accessor.aget(self.key, None)
            if isinstance(value, str) and value:
                self.saved = value
                return value
        return await self._load_legacy()

    async def _load_legacy(self) -> str | None:
        """After an upgrade to Airflow 3.3: the cursor an older Airflow kept in a Variable, read once while the
        asset state store has none, so the upgrade does not restart the watcher from ``after``. The next save
        goes to the state store; the Variable is left for the user to delete (docs/compatibility.rst)."""
        if self.legacy_key is None:
            return None
        try:
            value = await _compat.aget_variable(self.legacy_key)
        except Exception:  # no such Variable, or Variables unreachable: nothing to take over
            return None
        return value or None

    async def save(self, after: str) -> None:
        if after == self.saved:
            return
        if self.variable_key is not None:
            await _compat.aset_variable(self.variable_key, after, description=self.description)
        for accessor in self.accessors:
            await accessor.aset(self.key, after)
        self.saved = after

    @property
    def description(self) -> str:
        return (
            f"Cursor of an Altinn events asset watcher (airflow-provider-altinn-events), cursor_key {self.key!r}: "
            "the id of the last event handed to Airflow. Delete it to start again from the watcher's `after`. "
            "Used on Airflow before 3.3 only (docs/compatibility.rst)."
        )


def _variable_key(cursor_key: str, watcher: Any) -> str:
    """The Variable that holds a watcher's cursor below Airflow 3.3: ``cursor_key`` made URL-safe, plus a
    digest of what the watcher reads (filter and connection).

    Variables are one global namespace where the asset state store is per asset: the digest keeps watchers
    with different filters or connections (e.g. test and production) on the same resource apart, while a
    change of ``poll_interval`` or batch size keeps the cursor. Only letters, digits, ``._-`` go into the key,
    because the task SDK puts it into the execution API's URL path.
    """
    identity = {**watcher.event_filter.to_dict(), "altinn_events_conn_id": watcher.altinn_events_conn_id}
    digest = hashlib.sha256(json.dumps(identity, sort_keys=True, default=str).encode()).hexdigest()[:16]
    readable = re.sub(r"[^A-Za-z0-9._-]+", "_", cursor_key)[:180]
    return f"{readable}.{digest}"

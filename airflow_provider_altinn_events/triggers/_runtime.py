"""What the Altinn event triggers keep in the triggerer process: shared clients and the watcher's cursor.

* :data:`_CLIENTS`: one :class:`AsyncAltinnEventsClient` per (connection id, event loop), reference-counted,
  so every trigger of a triggerer that uses the same connection shares one connection pool and one token;
* :class:`_CursorStore`: the watcher's ``after`` cursor in the trigger's asset state store (Airflow 3.3), or
  in memory where there is none.

Only the standard library is imported here; the client and the hook are loaded when the first client opens,
in a worker thread (:func:`_open_client`).
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

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
    return await asyncio.to_thread(_build_client, conn)


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
    """The watcher's cursor in the asset state store, or in memory where there is none.

    One trigger row can watch several assets (same class and kwargs in several ``Asset`` objects); the
    accessor then refuses direct ``aget``/``aset``, so the cursor is written to every watched asset and read
    from the first that has one.
    """

    def __init__(self, store: Any, key: str, log: Any) -> None:
        self.key = key
        self.accessors: list[Any] = []
        self.saved: str | None = None
        if store is None:
            log.info(
                "No asset state store (dag.test(), a plain test, or Airflow before 3.3): the cursor is kept in "
                "memory only, so a restart starts again from the trigger's `after`."
            )
        elif callable(getattr(store, "aget", None)) and _single_asset(store):
            self.accessors = [store]
        else:
            by_name = getattr(store, "_by_name", {}) or {}
            by_uri = getattr(store, "_by_uri", {}) or {}
            self.accessors = [*by_name.values(), *by_uri.values()] or [store]

    @property
    def durable(self) -> bool:
        return bool(self.accessors)

    async def load(self) -> str | None:
        for accessor in self.accessors:
            value = await accessor.aget(self.key, None)
            if isinstance(value, str) and value:
                self.saved = value
                return value
        return None

    async def save(self, after: str) -> None:
        if after == self.saved:
            return
        for accessor in self.accessors:
            await accessor.aset(self.key, after)
        self.saved = after


def _single_asset(store: Any) -> bool:
    total = getattr(store, "_total", None)
    return total is None or total == 1

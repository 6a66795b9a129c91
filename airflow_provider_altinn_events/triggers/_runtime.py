"""What the Altinn event triggers keep in the triggerer process: shared clients and the watcher's cursor.

* :data:`_CLIENTS`: one :class:`AsyncAltinnEventsClient` per (connection id, event loop), reference-counted,
  so every trigger of a triggerer that uses the same connection shares one connection pool and one token;
* :class:`_CursorStore`: the watcher's ``after`` cursor in the trigger's asset state store (Airflow 3.3), or
  in memory where there is none.

Only the standard library is imported here; the client and the hook are loaded when the first client opens.
"""

from __future__ import annotations

import asyncio
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


async def _open_client(conn_id: str) -> AsyncAltinnEventsClient:
    from airflow_provider_altinn_events.hooks.altinn_events import AltinnEventsHook

    return await AltinnEventsHook(conn_id).get_async_conn()


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

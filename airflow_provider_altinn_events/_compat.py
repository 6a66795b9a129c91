"""The only place that knows about differences between Airflow versions.

Airflow 3.0 moved ``BaseHook`` to the Task SDK (``airflow.sdk``) and task-sdk 1.x added the non-blocking
``BaseHook.aget_connection``. Everything else in the provider imports these names from here.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

try:
    from airflow.sdk import BaseHook
except ImportError:  # pragma: no cover - Airflow 2.x layout, kept for a clear error path
    from airflow.hooks.base import BaseHook  # type: ignore[no-redef,attr-defined,unused-ignore]

if TYPE_CHECKING:
    from airflow.sdk import Connection

__all__ = ["BaseHook", "aget_connection"]


async def aget_connection(conn_id: str) -> Connection:
    """Fetch a connection without blocking the event loop.

    Uses ``BaseHook.aget_connection`` (task-sdk ≥ 1.0). On versions without it, runs the sync lookup in a
    worker thread via ``asgiref.sync_to_async`` (installed with Airflow), which the triggerer tolerates.
    """
    getter: Any = getattr(BaseHook, "aget_connection", None)
    if getter is not None:
        conn: Connection = await getter(conn_id)
        return conn
    from asgiref.sync import sync_to_async  # pragma: no cover - older task SDKs only

    return await sync_to_async(BaseHook.get_connection)(conn_id)  # type: ignore[no-any-return,unused-ignore]  # pragma: no cover

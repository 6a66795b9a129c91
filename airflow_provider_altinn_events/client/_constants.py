"""The values several layers share, each written once (docs/architecture.rst, "architecture-layers").

The client core, the hook, the sensor, the triggers and the operators import these instead of repeating the
literals; the modules that exposed them before (``client.urn.RESOURCE_PREFIX``,
``client.protocol.MAX_PAGE_SIZE``, ``client.matching.DEFAULT_PAGE_SIZE`` / ``SEEK_PAGE_SIZE``,
``operators.subscriptions.APP_RESOURCE_PREFIX``, ``_ingest.MAX_PAGE_SIZE``) re-export them. The emulator is
a model of Altinn and keeps its own copies on purpose (it never shares code with the client).

Nothing here imports Airflow or does I/O.
"""

from __future__ import annotations

__all__ = [
    "APP_RESOURCE_PREFIX",
    "DEFAULT_CONN_ID",
    "DEFAULT_PAGE_SIZE",
    "DEFAULT_POLL_INTERVAL",
    "MAX_PAGE_SIZE",
    "RESOURCE_PREFIX",
    "SEEK_PAGE_SIZE",
]

DEFAULT_CONN_ID = "altinn_events_default"
"""The Airflow connection every hook, sensor, trigger and operator uses unless told otherwise."""

RESOURCE_PREFIX = "urn:altinn:resource:"
"""The namespace of Altinn resources: what ``resource`` of every event and events query starts with."""

APP_RESOURCE_PREFIX = RESOURCE_PREFIX + "app_"
"""Resources of Altinn apps (``urn:altinn:resource:app_{org}_{app}``): subscribing to them needs no scope,
and only they may be subscribed to by ``source_filter`` alone."""

MAX_PAGE_SIZE = 1000
"""The largest ``size`` the events API serves (docs/contract.rst, "contract-paging")."""

DEFAULT_PAGE_SIZE = 100
"""Page size for normal reading by the sensor and the triggers."""

SEEK_PAGE_SIZE = MAX_PAGE_SIZE
"""Page size while seeking the current end for ``after="latest"``: the largest page the service serves."""

DEFAULT_POLL_INTERVAL = 30.0
"""Seconds between polls of the sensor and both triggers unless told otherwise."""

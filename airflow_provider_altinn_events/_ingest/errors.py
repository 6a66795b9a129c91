"""Errors of batch ingestion, re-exported from their one home, ``exceptions.py``.

The classes are defined in :mod:`airflow_provider_altinn_events.exceptions` (the whole tree lives there);
this module keeps the ``_ingest`` imports working with the very same objects.
"""

from __future__ import annotations

from airflow_provider_altinn_events.exceptions import (
    IngestCancelledError,
    IngestConflictError,
    IngestStateError,
)

__all__ = ["IngestCancelledError", "IngestConflictError", "IngestStateError"]

"""Batch ingestion of Altinn events into files, with the cursor kept next to the data.

The Airflow-free engine behind ``AltinnEventsIngestOperator``: the operator turns its arguments into an
:class:`IngestSpec`, its destination into a :class:`Storage`, and calls :func:`run_ingest` with the
hook's client. Anything else (a script, a test, a benchmark) can run the very same pipeline.
"""

from __future__ import annotations

from airflow_provider_altinn_events._ingest.errors import (
    IngestCancelledError,
    IngestConflictError,
    IngestStateError,
)
from airflow_provider_altinn_events._ingest.pipeline import run_ingest
from airflow_provider_altinn_events._ingest.spec import MAX_PAGE_SIZE, IngestMode, IngestResult, IngestSpec
from airflow_provider_altinn_events._ingest.state import Filters
from airflow_provider_altinn_events._ingest.storage import LocalStorage, PathStorage, Storage, open_storage

__all__ = [
    "MAX_PAGE_SIZE",
    "Filters",
    "IngestCancelledError",
    "IngestConflictError",
    "IngestMode",
    "IngestResult",
    "IngestSpec",
    "IngestStateError",
    "LocalStorage",
    "PathStorage",
    "Storage",
    "open_storage",
    "run_ingest",
]

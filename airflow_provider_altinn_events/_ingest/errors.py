"""Errors of batch ingestion, in the provider's tree (``exceptions.py``) under ``AltinnError``.

::

    AltinnError
    ├── IngestStateError          the destination's cursor or manifest cannot be used as it is
    │   └── IngestConflictError   someone else moved the cursor while this run was writing
    └── IngestCancelledError      the task was killed; the run stopped without committing more
"""

from __future__ import annotations

from airflow_provider_altinn_events.exceptions import AltinnError

__all__ = ["IngestCancelledError", "IngestConflictError", "IngestStateError"]


class IngestStateError(AltinnError):
    """The cursor or a manifest in the destination is unreadable, or was written for other filters.

    Never retried: the state needs a person to look at it (the message names the file); ``permanent``.
    """

    permanent = True


class IngestConflictError(IngestStateError):
    """The cursor changed under a running ingestion: two writers share one resource folder.

    The run stops without committing, so the other writer's progress is kept. Run one ingestion per
    resource and destination at a time (``max_active_runs=1``). Not permanent: the other writer may be done
    by the next try.
    """

    permanent = False


class IngestCancelledError(AltinnError):
    """The run was asked to stop (the task was killed); what it committed stays, the next try resumes."""

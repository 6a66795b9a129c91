"""What to ingest (:class:`IngestSpec`) and what an ingestion did (:class:`IngestResult`)."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any

from airflow_provider_altinn_events._ingest.ndjson import COMPRESSIONS
from airflow_provider_altinn_events._ingest.state import Filters
from airflow_provider_altinn_events.client._constants import MAX_PAGE_SIZE
from airflow_provider_altinn_events.exceptions import AltinnConfigError

__all__ = ["MAX_PAGE_SIZE", "IngestMode", "IngestResult", "IngestSpec"]


class IngestMode(str, enum.Enum):
    """How a run relates to the cursor."""

    NEW = "new"  #: first attempt of a run: starts at the committed cursor and moves it
    RESUME = "resume"  #: another attempt of the run that holds the cursor: continues from its last commit
    RERUN = "rerun"  #: a run that finished before: re-reads its own recorded range; the cursor stays put


@dataclass(frozen=True)
class IngestSpec:
    """One resource's ingestion settings (the operator's arguments, checked).

    :param resource: the resource URN, ``urn:altinn:resource:...``.
    :param filters: event types, subject or alternative subject to ask Altinn for.
    :param page_size: events per request, 1-1000.
    :param max_events: read at most this many events in one run (``None``: until Altinn has no more).
    :param start_after: where the very first run starts; ``"0"`` is the oldest event Altinn retains.
    :param compression: ``None`` or ``"gzip"``.
    :param events_per_file: events per data file; a file is also the unit of commit (see the docs).
    :param dedupe_window: how many recent event ids to remember to drop duplicates (``0``: keep all).
    :raises AltinnConfigError: an argument is out of range.
    """

    resource: str
    filters: Filters = field(default_factory=Filters)
    page_size: int = MAX_PAGE_SIZE
    max_events: int | None = None
    start_after: str = "0"
    compression: str | None = None
    events_per_file: int = 100_000
    dedupe_window: int = 100_000

    def __post_init__(self) -> None:
        if not isinstance(self.resource, str) or not self.resource.strip():
            raise AltinnConfigError("resource must be a non-empty resource URN", field="resource")
        if not isinstance(self.page_size, int) or not 1 <= self.page_size <= MAX_PAGE_SIZE:
            raise AltinnConfigError(f"page_size must be between 1 and {MAX_PAGE_SIZE}", field="page_size")
        if self.max_events is not None and (not isinstance(self.max_events, int) or self.max_events < 1):
            raise AltinnConfigError("max_events must be a positive integer or None", field="max_events")
        if (
            not isinstance(self.start_after, str)
            or not self.start_after.strip()
            or self.start_after.strip().lower() in ("none", "null")  # a template that rendered None
        ):
            shown = f'"{self.start_after}"' if isinstance(self.start_after, str) else repr(self.start_after)
            raise AltinnConfigError(
                f'start_after must be "0" (everything Altinn retains) or an event id, got {shown}',
                field="start_after",
            )
        if self.compression not in COMPRESSIONS:
            raise AltinnConfigError("compression must be None or 'gzip'", field="compression")
        if not isinstance(self.events_per_file, int) or self.events_per_file < 1:
            raise AltinnConfigError("events_per_file must be a positive integer", field="events_per_file")
        if not isinstance(self.dedupe_window, int) or self.dedupe_window < 0:
            raise AltinnConfigError("dedupe_window must be an integer >= 0", field="dedupe_window")
        if self.filters.subject and self.filters.alternative_subject:
            raise AltinnConfigError(
                "set subject or alternative_subject, not both (Altinn rejects the combination)",
                field="alternative_subject",
            )


@dataclass(frozen=True)
class IngestResult:
    """What a run did: small, JSON-ready, never the events (this is what goes to XCom).

    :param after: the cursor after this run: where the next run starts (for a rerun, the end of its range).
    :param cursor_moved: whether this run moved the shared cursor (reruns never do).
    :param files: URIs of every data file of the run, in order.
    """

    resource: str
    run_id: str
    mode: IngestMode
    start_after: str
    after: str
    count: int
    duplicates: int
    pages: int
    files: tuple[str, ...]
    manifest: str
    cursor_moved: bool
    seconds: float

    def to_dict(self) -> dict[str, Any]:
        """The XCom value."""
        return {
            "resource": self.resource,
            "run_id": self.run_id,
            "mode": self.mode.value,
            "start_after": self.start_after,
            "after": self.after,
            "count": self.count,
            "duplicates": self.duplicates,
            "pages": self.pages,
            "files": list(self.files),
            "manifest": self.manifest,
            "cursor_moved": self.cursor_moved,
            "seconds": round(self.seconds, 3),
        }

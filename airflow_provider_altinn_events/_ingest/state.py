"""The two small JSON documents ingestion keeps next to the data: the cursor and the run manifest.

``_cursor.json`` (one per resource folder) is the commit point. Its ``after`` is where the next run
starts; its ``run`` block is the progress of the run that last wrote it: enough to resume that run after
a crash, and enough to (re)write that run's manifest. The manifest (one per run folder) says what the run
wrote: start and end cursor, counts, files and event times; a rerun of that run reads its range from it.

Both carry ``version`` so that a later format can refuse to misread an older or newer file.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields, replace
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from airflow_provider_altinn_events._ingest.errors import IngestStateError

if TYPE_CHECKING:
    from airflow_provider_altinn_events.client.matching import EventFilter

__all__ = [
    "FORMAT_VERSION",
    "RECENT_LIMIT",
    "CursorContext",
    "CursorFile",
    "Filters",
    "PartFile",
    "RunRecord",
    "RunState",
    "utc_now",
]

FORMAT_VERSION = 1


def utc_now() -> str:
    """Now, as an RFC 3339 UTC timestamp (what the files record)."""
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class RunState(str, enum.Enum):
    """Where a run stands, as its cursor record or manifest says."""

    RUNNING = "running"  #: committed some files, not finished (or died; the next run tidies it up)
    COMPLETE = "complete"  #: reached the end of its range
    INTERRUPTED = "interrupted"  #: died and was superseded by a later run; only its committed files remain


@dataclass(frozen=True)
class Filters:
    """The query filters a cursor belongs to; one cursor must never serve two different queries."""

    types: tuple[str, ...] = ()
    subject: str | None = None
    alternative_subject: str | None = None

    def __post_init__(self) -> None:
        # Altinn matches any of the types: their order and repeats do not make another query.
        object.__setattr__(self, "types", tuple(sorted(set(self.types))))

    @classmethod
    def of(cls, event_filter: EventFilter) -> Filters:
        """The query filters of an :class:`EventFilter`, which alone normalises and checks event types (one
        rule for the sensor, the triggers and ingestion; docs/architecture.rst, "architecture-filter")."""
        return cls(
            types=event_filter.event_types,
            subject=event_filter.subject,
            alternative_subject=event_filter.alternative_subject,
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "types": list(self.types),
            "subject": self.subject,
            "alternative_subject": self.alternative_subject,
        }

    @classmethod
    def from_dict(cls, raw: Any, where: str) -> Filters:
        data = _mapping(raw, where)
        types = data.get("types") or []
        if not isinstance(types, list) or not all(isinstance(t, str) for t in types):
            raise IngestStateError(f"{where}: 'types' must be a list of strings")
        return cls(
            types=tuple(types),
            subject=_opt_str(data, "subject", where),
            alternative_subject=_opt_str(data, "alternative_subject", where),
        )


@dataclass(frozen=True)
class PartFile:
    """One committed data file of a run."""

    name: str
    events: int
    bytes: int

    @classmethod
    def from_dict(cls, raw: Any, where: str) -> PartFile:
        data = _mapping(raw, where)
        return cls(
            name=_str(data, "name", where),
            events=_int(data, "events", where),
            bytes=_int(data, "bytes", where),
        )


Pair = tuple[str, str]

RECENT_LIMIT = 1000
"""How many of the last events written a cursor remembers for the next run (``CursorContext.recent``)."""


@dataclass(frozen=True)
class CursorContext:
    """What a run hands the next one besides ``after``, because Altinn keys events by ``(id, source)`` and
    resumes ``after=<id>`` after the *first* event with that id (``docs/guides/ingestion.rst``).

    :param source: the ``source`` of the event at ``after``: a page that contains that very event shows the
        service resolved ``after`` to an earlier event with the same id, and all before it is dropped.
    :param held: ``(id, source)`` of events after ``after`` that are already written (the cursor was held
        before an id that several events share); dropped when the service serves them again.
    :param recent: the last events written (at most :data:`RECENT_LIMIT`), so that events served again and
        ids shared across a run boundary are recognised.
    """

    source: str | None = None
    held: tuple[Pair, ...] = ()
    recent: tuple[Pair, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.source or self.held or self.recent)

    def to_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "held": [list(pair) for pair in self.held],
            "recent": [list(pair) for pair in self.recent],
        }

    @classmethod
    def from_dict(cls, raw: Any, where: str) -> CursorContext:
        if raw is None:
            return cls()
        data = _mapping(raw, where)
        return cls(
            source=_opt_str(data, "source", where),
            held=_pairs(data, "held", where),
            recent=_pairs(data, "recent", where),
        )


@dataclass(frozen=True)
class RunRecord:
    """What one run did (so far). The cursor holds the latest run's; each manifest holds its own run's.

    :param run_id: the Airflow run id (or any id the caller uses for "the same run").
    :param start_after: the cursor the run started from; a rerun of the run starts here again.
    :param end_after: the cursor after the last event the run committed: never an id that several events
        share (Altinn resumes ``after=<id>`` after the first of them), so it may stand before the last events.
    :param start_context: what the run knew at ``start_after`` about the events around it (see
        :class:`CursorContext`); a rerun starts with it again.
    :param end_context: the same at ``end_after``: the next run starts with it.
    :param count: events written; ``fetched`` counts duplicates too (``fetched = count + duplicates``).
    :param files: committed data files, in order.
    :param events_per_file: the run's file size, kept so a resumed or rerun run cuts files identically.
    """

    run_id: str
    state: RunState
    start_after: str
    end_after: str
    count: int = 0
    duplicates: int = 0
    fetched: int = 0
    pages: int = 0
    files: tuple[PartFile, ...] = ()
    first_event_time: str | None = None
    last_event_time: str | None = None
    compression: str | None = None
    events_per_file: int = 100_000
    max_events: int | None = None
    started_at: str = field(default_factory=utc_now)
    updated_at: str = field(default_factory=utc_now)
    start_context: CursorContext = field(default_factory=lambda: CursorContext())
    end_context: CursorContext = field(default_factory=lambda: CursorContext())

    def to_dict(self) -> dict[str, Any]:
        # field by field, not ``asdict``: that deep-copies both contexts (up to 1,000 pairs each) on every commit
        data = {f.name: getattr(self, f.name) for f in fields(self)}
        data["state"] = self.state.value
        data["files"] = [asdict(part) for part in self.files]
        for key in ("start_context", "end_context"):  # written only when needed: older readers see no change
            context: CursorContext = getattr(self, key)
            if context:
                data[key] = context.to_dict()
            else:
                del data[key]
        return data

    @classmethod
    def from_dict(cls, raw: Any, where: str) -> RunRecord:
        data = _mapping(raw, where)
        try:
            state = RunState(data.get("state"))
        except ValueError:
            raise IngestStateError(f"{where}: unknown run state {data.get('state')!r}") from None
        files = data.get("files", [])
        if not isinstance(files, list):
            raise IngestStateError(f"{where}: 'files' must be a list")
        compression = _opt_str(data, "compression", where)
        if compression not in (None, "gzip"):
            raise IngestStateError(f"{where}: unknown compression {compression!r}")
        max_events = data.get("max_events")
        return cls(
            run_id=_str(data, "run_id", where),
            state=state,
            start_after=_str(data, "start_after", where),
            end_after=_str(data, "end_after", where),
            count=_int(data, "count", where),
            duplicates=_int(data, "duplicates", where),
            fetched=_int(data, "fetched", where),
            pages=_int(data, "pages", where),
            files=tuple(PartFile.from_dict(item, where) for item in files),
            first_event_time=_opt_str(data, "first_event_time", where),
            last_event_time=_opt_str(data, "last_event_time", where),
            compression=compression,
            events_per_file=_int(data, "events_per_file", where, minimum=1),
            max_events=None if max_events is None else _int(data, "max_events", where, minimum=1),
            started_at=_str(data, "started_at", where),
            updated_at=_str(data, "updated_at", where),
            start_context=CursorContext.from_dict(data.get("start_context"), f"{where} start_context"),
            end_context=CursorContext.from_dict(data.get("end_context"), f"{where} end_context"),
        )

    def touched(self, **changes: Any) -> RunRecord:
        """A copy with ``changes`` applied and ``updated_at`` set to now."""
        return replace(self, updated_at=utc_now(), **changes)

    def manifest(self, resource: str, filters: Filters) -> dict[str, Any]:
        """The run's ``_manifest.json`` document."""
        record = self.to_dict()
        record["duplicates_dropped"] = record.pop("duplicates")
        record["finished_at"] = record.pop("updated_at")
        return {"version": FORMAT_VERSION, "resource": resource, "filters": filters.to_dict(), **record}

    @classmethod
    def from_manifest(cls, raw: Any, where: str) -> tuple[RunRecord, Filters]:
        """Read a manifest back: the run record and the filters it was written for."""
        data = dict(_mapping(raw, where))
        _check_version(data, where)
        data["duplicates"] = data.pop("duplicates_dropped", 0)
        data["updated_at"] = data.pop("finished_at", "")
        return cls.from_dict(data, where), Filters.from_dict(data.get("filters", {}), where)


@dataclass(frozen=True)
class CursorFile:
    """``_cursor.json``: ``after`` (where the next run starts) plus the latest run's record.

    ``after`` is the field a person may edit by hand to re-ingest from an earlier event id (or delete the
    file to start again from the operator's ``start_after``).
    """

    resource: str
    filters: Filters
    after: str
    run: RunRecord
    revision: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "version": FORMAT_VERSION,
            "resource": self.resource,
            "filters": self.filters.to_dict(),
            "after": self.after,
            "revision": self.revision,
            "updated_at": self.run.updated_at,
            "run": self.run.to_dict(),
        }

    @classmethod
    def from_dict(cls, raw: Any, where: str) -> CursorFile:
        data = _mapping(raw, where)
        _check_version(data, where)
        return cls(
            resource=_str(data, "resource", where),
            filters=Filters.from_dict(data.get("filters", {}), where),
            after=_str(data, "after", where),
            run=RunRecord.from_dict(data.get("run"), where),
            revision=_str(data, "revision", where),
        )


def _check_version(data: Mapping[str, Any], where: str) -> None:
    version = data.get("version")
    if version != FORMAT_VERSION:
        raise IngestStateError(
            f"{where}: format version {version!r} is not {FORMAT_VERSION} (written by another provider version?)"
        )


def _mapping(raw: Any, where: str) -> Mapping[str, Any]:
    if not isinstance(raw, Mapping):
        raise IngestStateError(f"{where}: expected a JSON object, got {type(raw).__name__}")
    return raw


def _str(data: Mapping[str, Any], key: str, where: str) -> str:
    value = data.get(key)
    if not isinstance(value, str) or not value:
        raise IngestStateError(f"{where}: {key!r} must be a non-empty string")
    return value


def _pairs(data: Mapping[str, Any], key: str, where: str) -> tuple[tuple[str, str], ...]:
    value = data.get(key) or []
    if not isinstance(value, list) or not all(
        isinstance(pair, list) and len(pair) == 2 and all(isinstance(part, str) and part for part in pair)
        for pair in value
    ):
        raise IngestStateError(f"{where}: {key!r} must be a list of [id, source] pairs")
    return tuple((pair[0], pair[1]) for pair in value)


def _opt_str(data: Mapping[str, Any], key: str, where: str) -> str | None:
    value = data.get(key)
    if value is not None and not isinstance(value, str):
        raise IngestStateError(f"{where}: {key!r} must be a string or null")
    return value


def _int(data: Mapping[str, Any], key: str, where: str, minimum: int = 0) -> int:
    value = data.get(key, 0)
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        raise IngestStateError(f"{where}: {key!r} must be an integer >= {minimum}")
    return value

"""One resource's folder in the destination: its cursor, its run folders, and the rules for changing them.

Every change here can be repeated after a crash with the same result: deletes of missing files are no-ops,
manifests are rewritten from the cursor's record, and the cursor is replaced whole, atomically.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterable

from airflow_provider_altinn_events._ingest.errors import IngestConflictError, IngestStateError
from airflow_provider_altinn_events._ingest.layout import (
    CURSOR_NAME,
    MANIFEST_NAME,
    is_part_name,
    is_temp_name,
    resource_dir,
    run_dir,
)
from airflow_provider_altinn_events._ingest.logs import TaskLog
from airflow_provider_altinn_events._ingest.state import CursorFile, Filters, RunRecord, RunState
from airflow_provider_altinn_events._ingest.storage import Storage

__all__ = ["ResourceFolder"]


class ResourceFolder:
    """``{destination}/{resource}/``: read and commit the cursor, write manifests, tidy run folders.

    :param storage: the destination.
    :param resource: the resource URN (names the folder; recorded in the cursor).
    :param filters: the query filters; a cursor written for other filters is refused.
    """

    def __init__(
        self,
        storage: Storage,
        resource: str,
        filters: Filters,
        log: TaskLog,
        trace: Callable[[str], None],
    ) -> None:
        self.storage, self.resource, self.filters, self.log, self.trace = (
            storage,
            resource,
            filters,
            log,
            trace,
        )
        self.key = resource_dir(resource)
        self.cursor_key = f"{self.key}/{CURSOR_NAME}"
        #: the cursor revision this process last read or wrote; a different one on disk means a second writer
        self.revision: str | None = None

    def run_key(self, run_id: str) -> str:
        return f"{self.key}/{run_dir(run_id)}"

    def uri(self, key: str) -> str:
        return self.storage.uri(key)

    def read_cursor(self) -> CursorFile | None:
        """The committed cursor (and remember its revision), after removing a cursor write that never finished.

        :raises IngestStateError: the cursor is unreadable or belongs to another resource or other filters.
        """
        self._delete(self.key, [n for n in self.storage.list_names(self.key) if is_temp_name(n)])
        raw = self.storage.read_json(self.cursor_key)
        if raw is None:
            self.revision = None
            return None
        cursor = CursorFile.from_dict(raw, self.uri(self.cursor_key))
        if cursor.resource != self.resource or cursor.filters != self.filters:
            raise IngestStateError(
                f"{self.uri(self.cursor_key)} belongs to resource {cursor.resource!r} with filters "
                f"{cursor.filters.to_dict()}, not {self.resource!r} with {self.filters.to_dict()}; "
                "give each query its own destination"
            )
        self.revision = cursor.revision
        return cursor

    def read_manifest(self, run_id: str) -> RunRecord | None:
        """The manifest of ``run_id``, or ``None`` when that run never finished (or never ran)."""
        key = f"{self.run_key(run_id)}/{MANIFEST_NAME}"
        raw = self.storage.read_json(key)
        return None if raw is None else RunRecord.from_manifest(raw, self.uri(key))[0]

    def write_manifest(self, record: RunRecord) -> None:
        key = f"{self.run_key(record.run_id)}/{MANIFEST_NAME}"
        self.storage.write_json(key, record.manifest(self.resource, self.filters))

    def commit_cursor(self, record: RunRecord) -> None:
        """Write the cursor (``after`` = ``record.end_after``): the commit point of everything before it.

        :raises IngestConflictError: the cursor on disk is not the one this process last read or wrote.
        """
        current = self.storage.read_json(self.cursor_key)
        current_revision = current.get("revision") if isinstance(current, dict) else None
        if current_revision != self.revision:
            raise IngestConflictError(
                f"{self.uri(self.cursor_key)} changed while run {record.run_id} was writing (revision "
                f"{self.revision} -> {current_revision}): another ingestion of {self.resource} into the same "
                "destination is running. This run stops without committing."
            )
        revision = secrets.token_hex(8)
        cursor = CursorFile(self.resource, self.filters, record.end_after, record, revision)
        self.storage.write_json(self.cursor_key, cursor.to_dict())
        self.revision = revision

    def tidy_up(self, other: RunRecord) -> None:
        """Finish the bookkeeping of ``other``, the run that last wrote the cursor, before another run starts.

        If it died mid-run, delete the data files it wrote after its last commit (the new run reads those
        events again) and mark it interrupted; in any case make sure its manifest matches its record.
        """
        key = self.run_key(other.run_id)
        names = self.storage.list_names(key)
        stale = [n for n in names if is_temp_name(n)]
        if other.state is RunState.RUNNING:
            keep = {part.name for part in other.files}
            dropped = [n for n in names if is_part_name(n) and n not in keep]
            if dropped:
                self.log.warning(
                    "Run %s of %s stopped before finishing; removing the files it had not committed: %s",
                    other.run_id,
                    self.resource,
                    dropped,
                )
            stale += dropped
            other = other.touched(state=RunState.INTERRUPTED)
        self._delete(key, stale)
        self.trace("tidy-deleted")
        written = self.read_manifest(other.run_id)
        if written is None or (written.state, written.end_after, written.count) != (
            other.state,
            other.end_after,
            other.count,
        ):
            self.write_manifest(other)
            self.trace("tidy-manifest")

    def remove_stale(self, run_id: str, keep: Iterable[str]) -> None:
        """Delete data files in ``run_id``'s folder that are not in ``keep`` (earlier attempts), and temp files."""
        key, kept = self.run_key(run_id), set(keep)
        names = self.storage.list_names(key)
        self._delete(key, [n for n in names if (is_part_name(n) and n not in kept) or is_temp_name(n)])

    def _delete(self, folder: str, names: Iterable[str]) -> None:
        for name in names:
            self.storage.delete(f"{folder}/{name}")

"""An in-memory stand-in for ``GET /events`` with Altinn's paging rules, for the pure ingestion tests.

Only the pure parts (planning, files, commits) are tested against it; everything from the client up is
tested against the emulator over HTTP (tests/integration, tests/faults).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Sequence
from typing import Any

from airflow_provider_altinn_events.client.models import CloudEvent, EventPage
from airflow_provider_altinn_events.client.protocol import UndecodedEventPage

RESOURCE = "urn:altinn:resource:ttd-ingest"


def make_events(
    count: int, *, start: int = 0, resource: str = RESOURCE, type_: str = "test.created"
) -> list[dict[str, Any]]:
    return [
        {
            "specversion": "1.0",
            "id": f"e{n:07d}",
            "source": f"https://example.test/things/{n}",
            "type": type_,
            "resource": resource,
            "subject": f"/party/{n % 7}",
            "time": f"2026-01-01T00:{(n // 60) % 60:02d}:{n % 60:02d}.5Z",
            "data": {"n": n, "text": "blåbærsyltetøy"},
        }
        for n in range(start, start + count)
    ]


class FakeAltinn:
    """Serves ``events`` like Altinn: ``after`` is an event id (unknown ids start from the beginning),
    ascending order, at most ``size`` (clamped to 1000) per page, type and subject filters."""

    def __init__(self, events: Sequence[dict[str, Any]] = ()) -> None:
        self.events: list[dict[str, Any]] = list(events)
        self.calls: list[dict[str, Any]] = []
        self.before_call: Callable[[dict[str, Any]], None] | None = None
        #: the ``after`` to write into a ``next`` header, from the page (``None``: no header, as in most tests)
        self.next_after: Callable[[EventPage], str] | None = None
        self.lock = threading.Lock()

    def add(self, events: Sequence[dict[str, Any]]) -> None:
        with self.lock:
            self.events.extend(events)

    def list_events(
        self,
        *,
        resource: str,
        after: str = "0",
        types: Sequence[str] | None = None,
        subject: str | None = None,
        alternative_subject: str | None = None,
        size: int = 50,
    ) -> EventPage:
        call = {"resource": resource, "after": after, "types": types, "subject": subject, "size": size}
        self.calls.append(call)
        if self.before_call is not None:
            self.before_call(call)
        with self.lock:
            events = list(self.events)
        start = next((i + 1 for i, e in enumerate(events) if e["id"] == after), 0)
        size = 50 if size < 1 else min(size, 1000)
        page = [
            e
            for e in events[start:]
            if e.get("resource") == resource
            and (not types or e["type"] in types)
            and (subject is None or e.get("subject") == subject)
            and (alternative_subject is None or e.get("alternativesubject") == alternative_subject)
        ][:size]
        return EventPage(
            events=tuple(CloudEvent.from_dict(e) for e in page), after=page[-1]["id"] if page else after
        )

    def list_events_undecoded(self, *, after: str = "0", size: int = 50, **query: Any) -> UndecodedEventPage:
        """What ``AltinnEventsClient.list_events_undecoded`` returns: the page as JSON bytes, as the service
        sends it, decoded by the caller."""
        page = self.list_events(after=after, size=size, **query)
        body = json.dumps([e.to_dict() for e in page.events]).encode()
        hint = self.next_after(page) if self.next_after is not None and page.events else None
        next_url = (
            None if hint is None else f"http://altinn.test/events/api/v1/events?after={hint}&size={size}"
        )
        return UndecodedEventPage(body, after, size, next_url)


# -- an object store with S3's write semantics, in memory ---------------------------------------------------

OBJECT_STORE_PROTOCOL = "objmem"


def object_store_root(name: str) -> Any:
    """A ``UPath`` on an in-memory file system that, like S3, publishes a written object only on close()."""
    import fsspec
    from fsspec.implementations.memory import MemoryFile, MemoryFileSystem
    from fsspec.spec import AbstractBufferedFile
    from upath import UPath, registry
    from upath.implementations.memory import MemoryPath

    class UploadOnClose(AbstractBufferedFile):  # type: ignore[misc]
        def _initiate_upload(self) -> None:
            self.chunks: list[bytes] = []

        def _upload_chunk(self, final: bool = False) -> bool:
            self.chunks.append(self.buffer.getvalue())
            if final:  # publish the whole object at once, as S3 does when an upload completes
                self.fs.store[self.path] = MemoryFile(self.fs, self.path, b"".join(self.chunks))
            return True

    class ObjectStoreLike(MemoryFileSystem):  # type: ignore[misc]
        protocol = (OBJECT_STORE_PROTOCOL,)
        store: dict[str, Any] = {}
        pseudo_dirs = [""]

        def _open(self, path: str, mode: str = "rb", **kwargs: Any) -> Any:
            if "w" in mode:
                return UploadOnClose(self, self._strip_protocol(path), mode, block_size=1 << 16)
            return super()._open(path, mode, **kwargs)

    class ObjectStorePath(MemoryPath):
        pass

    if OBJECT_STORE_PROTOCOL not in fsspec.registry:
        fsspec.register_implementation(OBJECT_STORE_PROTOCOL, ObjectStoreLike)
        registry.register_implementation(OBJECT_STORE_PROTOCOL, ObjectStorePath)
    return UPath(f"{OBJECT_STORE_PROTOCOL}://bucket/{name}")

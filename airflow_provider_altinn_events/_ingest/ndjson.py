"""Write events as newline-delimited JSON, one CloudEvent per line, optionally gzip-compressed.

Each line is the event's attributes exactly as Altinn sent them (same names, values and order), written
as compact UTF-8 JSON. Gzip output is byte-for-byte reproducible (no timestamp or file name in the header),
so a rerun that writes the same events writes the same bytes.
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from airflow_provider_altinn_events._ingest.state import PartFile
from airflow_provider_altinn_events._ingest.storage import AtomicFile, Storage
from airflow_provider_altinn_events.client.models import json_objects

__all__ = ["COMPRESSIONS", "GZIP_LEVEL", "NdjsonPart", "encode_events"]

COMPRESSIONS = (None, "gzip")
#: zlib's own default: ~3x faster than gzip's 9 for ~5 % larger files.
GZIP_LEVEL = 6


def _lines_encoder() -> Callable[[list[Any]], bytes]:
    """NDJSON bytes of a list of dicts: msgspec's ``encode_lines`` (one call per page, 3-5x faster than the
    json module), else the json module, one line per value."""
    try:  # msgspec ships with Airflow 3
        import msgspec
    except ImportError:  # pragma: no cover - the pure part also runs without Airflow installed

        def encode_lines(values: list[Any]) -> bytes:
            return b"".join(
                json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode("utf-8") + b"\n"
                for value in values
            )

        return encode_lines
    return msgspec.json.Encoder().encode_lines


_encode_lines = _lines_encoder()


def encode_events(events: Iterable[Mapping[str, Any]]) -> bytes:
    """The NDJSON bytes of ``events``: one compact JSON object per line, each line ending in ``\\n``."""
    return _encode_lines(json_objects(events))


class _CountingSink:
    """The raw file under gzip: counts the bytes that reach storage."""

    def __init__(self, target: AtomicFile) -> None:
        self.target = target
        self.bytes = 0

    def write(self, data: bytes) -> int:
        self.bytes += len(data)
        self.target.write(data)
        return len(data)

    def flush(self) -> None:
        """Nothing to do: durability is the commit's job."""


class NdjsonPart:
    """One data file of a run, invisible until :meth:`commit`.

    :param storage: where it goes.
    :param key: its key (``resource/run=.../part-00000.ndjson[.gz]``).
    :param compression: ``None`` or ``"gzip"``.
    """

    def __init__(self, storage: Storage, key: str, compression: str | None) -> None:
        if compression not in COMPRESSIONS:
            raise ValueError(f"compression must be one of {COMPRESSIONS}, not {compression!r}")
        self.key = key
        self.name = key.rsplit("/", 1)[-1]
        self.events = 0
        self._file = storage.open_atomic(key)
        self._sink = _CountingSink(self._file)
        self._gzip = (
            gzip.GzipFile(filename="", mode="wb", compresslevel=GZIP_LEVEL, fileobj=self._sink, mtime=0)
            if compression == "gzip"
            else None
        )

    def write(self, data: bytes, events: int) -> None:
        """Append ``data`` (from :func:`encode_events`), which holds ``events`` lines."""
        if self._gzip is not None:
            self._gzip.write(data)
        else:
            self._sink.write(data)
        self.events += events

    def commit(self) -> PartFile:
        """Finish the file and make it visible; returns what the manifest records about it."""
        if self._gzip is not None:
            self._gzip.close()
        self._file.commit()
        return PartFile(name=self.name, events=self.events, bytes=self._sink.bytes)

    def abort(self) -> None:
        """Throw the file away (the key keeps its previous content, if any)."""
        self._file.abort()

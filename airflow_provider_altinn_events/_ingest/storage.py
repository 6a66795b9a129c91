"""The few storage operations ingestion needs, for a local folder and for an object store.

Everything the pipeline writes goes through :meth:`Storage.open_atomic`: readers see either the old
file or the complete new one, never a half-written file, whatever moment the process dies at.

* Local folders (plain paths, ``file://``): write to a hidden temporary file next to the target,
  ``fsync``, then ``os.replace`` it over the target (atomic on POSIX) and ``fsync`` the folder, so the
  rename survives a power cut too.
* Object stores (``s3://``, ``gs://``, ``abfs://``, ... through fsspec / Airflow's ObjectStoragePath):
  write the key directly. An upload becomes visible only when it completes on ``close()``, and it
  replaces the old object atomically; a killed process leaves at most an incomplete multipart upload,
  which the store never shows. This avoids a copy per file, which is what "rename" costs there.

Nothing here imports Airflow: an ``ObjectStoragePath`` is used through the pathlib-like methods it
shares with ``upath.UPath``.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
from abc import ABC, abstractmethod
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any, Protocol
from urllib.parse import unquote, urlparse

from airflow_provider_altinn_events._ingest.errors import IngestStateError
from airflow_provider_altinn_events._ingest.layout import TEMP_MARKER
from airflow_provider_altinn_events.exceptions import AltinnConfigError

__all__ = ["AtomicFile", "LocalStorage", "PathStorage", "Storage", "Trace", "open_storage"]

Trace = Callable[[str], None]
_LOCAL_PROTOCOLS = frozenset({"", "file", "local"})
_WRITE_BUFFER = 1 << 20


def _no_trace(point: str) -> None:
    """Default trace hook: does nothing (tests pass one that records or kills the process)."""


class AtomicFile(ABC):
    """A binary file that appears at its key only when :meth:`commit` returns."""

    @abstractmethod
    def write(self, data: bytes) -> int:
        """Append ``data``; returns the number of bytes taken."""

    @abstractmethod
    def commit(self) -> None:
        """Make the file visible under its key, complete. After this a crash cannot lose it."""

    @abstractmethod
    def abort(self) -> None:
        """Throw the file away; the key keeps whatever it held before."""


class Storage(ABC):
    """A root folder with keys like ``resource/run=x/part-00000.ndjson`` below it."""

    def __init__(self, trace: Trace | None = None) -> None:
        self.trace: Trace = trace or _no_trace

    @abstractmethod
    def uri(self, key: str = "") -> str:
        """The full URI (or path) of ``key``, for manifests, logs and XCom."""

    @abstractmethod
    def open_atomic(self, key: str) -> AtomicFile:
        """Start writing ``key``; nothing is visible until :meth:`AtomicFile.commit`."""

    @abstractmethod
    def read_bytes(self, key: str) -> bytes | None:
        """The content of ``key``, or ``None`` when it does not exist."""

    @abstractmethod
    def list_names(self, folder: str) -> list[str]:
        """Names (not keys) of the files directly in ``folder``; empty when the folder does not exist."""

    @abstractmethod
    def delete(self, key: str) -> None:
        """Remove ``key``; a missing key is not an error (deletes are re-done after a crash)."""

    def read_json(self, key: str) -> Any:
        """Parse ``key`` as JSON, or ``None`` when it does not exist.

        :raises IngestStateError: the file exists but is not JSON (someone edited or truncated it).
        """
        raw = self.read_bytes(key)
        if raw is None:
            return None
        try:
            return json.loads(raw)
        except ValueError as error:
            raise IngestStateError(f"{self.uri(key)} is not valid JSON: {error}") from error

    def write_json(self, key: str, value: Any) -> None:
        """Replace ``key`` with ``value`` as JSON, atomically (see the module docstring)."""
        data = json.dumps(value, indent=2, ensure_ascii=False).encode("utf-8") + b"\n"
        handle = self.open_atomic(key)
        try:
            handle.write(data)
            self.trace(f"json-written:{key.rsplit('/', 1)[-1]}")
            handle.commit()
        except BaseException:
            handle.abort()
            raise


class _LocalAtomicFile(AtomicFile):
    def __init__(self, target: Path, fsync: bool) -> None:
        self._target = target
        self._fsync = fsync
        target.parent.mkdir(parents=True, exist_ok=True)
        self._temp = target.with_name(f".{target.name}{TEMP_MARKER}{os.getpid()}-{secrets.token_hex(4)}")
        self._handle: IO[bytes] | None = open(self._temp, "wb", buffering=_WRITE_BUFFER)  # noqa: SIM115

    def write(self, data: bytes) -> int:
        assert self._handle is not None, "write after commit/abort"
        return self._handle.write(data)

    def commit(self) -> None:
        handle, self._handle = self._handle, None
        assert handle is not None, "commit twice"
        try:
            handle.flush()
            if self._fsync:
                os.fsync(handle.fileno())
        finally:
            handle.close()
        os.replace(self._temp, self._target)
        if self._fsync:
            _fsync_dir(self._target.parent)

    def abort(self) -> None:
        handle, self._handle = self._handle, None
        if handle is not None:
            handle.close()
        with contextlib.suppress(FileNotFoundError):
            self._temp.unlink()


def _fsync_dir(folder: Path) -> None:
    """Persist a rename: fsync the folder holding it (a no-op where folders cannot be opened)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


class LocalStorage(Storage):
    """A folder on a local (or mounted) file system.

    :param root: the destination folder; created on first write.
    :param fsync: flush data to the disk before each commit; turn off only for throwaway data.
    """

    def __init__(
        self, root: str | os.PathLike[str], *, fsync: bool = True, trace: Trace | None = None
    ) -> None:
        super().__init__(trace)
        self.root = Path(root)
        self.fsync = fsync

    def _path(self, key: str) -> Path:
        return self.root.joinpath(*[part for part in key.split("/") if part])

    def uri(self, key: str = "") -> str:
        return self._path(key).absolute().as_uri()

    def open_atomic(self, key: str) -> AtomicFile:
        return _LocalAtomicFile(self._path(key), self.fsync)

    def read_bytes(self, key: str) -> bytes | None:
        try:
            return self._path(key).read_bytes()
        except FileNotFoundError:
            return None

    def list_names(self, folder: str) -> list[str]:
        try:
            return sorted(entry.name for entry in os.scandir(self._path(folder)) if entry.is_file())
        except (FileNotFoundError, NotADirectoryError):
            return []

    def delete(self, key: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            self._path(key).unlink()


class StoragePathLike(Protocol):
    """What ingestion uses of ``ObjectStoragePath`` / ``upath.UPath`` (both satisfy it)."""

    @property
    def name(self) -> str: ...

    @property
    def parent(self) -> Any: ...

    def __truediv__(self, key: str) -> Any: ...

    def open(self, mode: str = ...) -> Any: ...

    def read_bytes(self) -> bytes: ...

    def iterdir(self) -> Any: ...

    def unlink(self) -> None: ...

    def mkdir(self, mode: int = ..., parents: bool = ..., exist_ok: bool = ...) -> None: ...


class _PathAtomicFile(AtomicFile):
    def __init__(self, path: StoragePathLike) -> None:
        with contextlib.suppress(OSError, NotImplementedError):
            path.parent.mkdir(parents=True, exist_ok=True)  # object stores have no folders; harmless
        self._path = path
        fs, key = getattr(path, "fs", None), getattr(path, "path", None)
        # The file system's own file object: an upload that is published only by close(), and that
        # discard() can cancel (the path's open() may wrap it in a proxy that hides both).
        self._handle: Any = fs.open(key, "wb") if fs is not None and key is not None else path.open("wb")

    def write(self, data: bytes) -> int:
        assert self._handle is not None, "write after commit/abort"
        self._handle.write(data)
        return len(data)

    def commit(self) -> None:
        handle, self._handle = self._handle, None
        assert handle is not None, "commit twice"
        handle.close()  # the upload completes (and becomes visible) here

    def abort(self) -> None:
        handle, self._handle = self._handle, None
        if handle is None:
            return
        discard = getattr(handle, "discard", None)
        if callable(discard):  # s3fs / gcsfs / adlfs: abort the multipart or resumable upload
            discard()
        try:
            handle.closed = True  # fsspec buffered files: now neither close() nor __del__ uploads anything
        except AttributeError:  # a file that cannot be abandoned: publish, then remove, what it holds
            handle.close()
            with contextlib.suppress(FileNotFoundError, OSError):
                self._path.unlink()


class PathStorage(Storage):
    """An object store (or any fsspec file system) reached through an ObjectStoragePath / UPath."""

    def __init__(self, root: StoragePathLike, *, trace: Trace | None = None) -> None:
        super().__init__(trace)
        self.root = root

    def _path(self, key: str) -> StoragePathLike:
        path = self.root
        for part in key.split("/"):
            if part:
                path = path / part
        return path

    def uri(self, key: str = "") -> str:
        return str(self._path(key))

    def open_atomic(self, key: str) -> AtomicFile:
        return _PathAtomicFile(self._path(key))

    def read_bytes(self, key: str) -> bytes | None:
        try:
            return self._path(key).read_bytes()
        except FileNotFoundError:
            return None

    def list_names(self, folder: str) -> list[str]:
        path = self._path(folder)
        fs, key = getattr(path, "fs", None), getattr(path, "path", None)
        try:
            if fs is None or key is None:
                return sorted(str(child.name) for child in path.iterdir())
            fs.invalidate_cache(key)  # listings are cached by s3fs & co; this one must see the latest writes
            entries = fs.ls(key, detail=True)
        except (FileNotFoundError, NotADirectoryError):
            return []
        return sorted(e["name"].rstrip("/").rsplit("/", 1)[-1] for e in entries if e.get("type") == "file")

    def delete(self, key: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            self._path(key).unlink()


def open_storage(destination: Any, *, trace: Trace | None = None, fsync: bool = True) -> Storage:
    """Pick the storage for ``destination``.

    :param destination: a local path (``str`` / ``os.PathLike``), a ``file://`` URL, or a path object
        with a ``protocol`` (``ObjectStoragePath``, ``upath.UPath``). Local ones get :class:`LocalStorage`
        (temporary file + rename + fsync); anything else :class:`PathStorage`.
    :raises AltinnConfigError: a URL string for an object store: wrap it in an ``ObjectStoragePath`` first
        (the operator does), since only Airflow knows which connection holds its credentials.
    """
    if isinstance(destination, str):
        if "://" not in destination:
            return LocalStorage(destination, fsync=fsync, trace=trace)
        parsed = urlparse(destination)
        if parsed.scheme in _LOCAL_PROTOCOLS and parsed.netloc in ("", "localhost"):
            return LocalStorage(unquote(parsed.path), fsync=fsync, trace=trace)
        raise AltinnConfigError(
            f"destination {destination!r} is a URL; pass it as an ObjectStoragePath (or a local path)",
            field="destination",
        )
    protocol = getattr(destination, "protocol", None)
    if protocol is None and isinstance(destination, os.PathLike):
        return LocalStorage(destination, fsync=fsync, trace=trace)
    if protocol in _LOCAL_PROTOCOLS:
        return LocalStorage(str(getattr(destination, "path", destination)), fsync=fsync, trace=trace)
    if protocol is None:
        raise AltinnConfigError(
            f"destination must be a path, a URL or an ObjectStoragePath, not {type(destination).__name__}",
            field="destination",
        )
    return PathStorage(destination, trace=trace)

from __future__ import annotations

import json
from pathlib import Path

import pytest
from upath import UPath

from airflow_provider_altinn_events._ingest.errors import IngestStateError
from airflow_provider_altinn_events._ingest.storage import LocalStorage, PathStorage, Storage, open_storage
from airflow_provider_altinn_events.exceptions import AltinnConfigError

from .fakes import object_store_root


@pytest.fixture(params=["local", "object-store"])
def storage(request: pytest.FixtureRequest, tmp_path: Path) -> Storage:
    if request.param == "local":
        return LocalStorage(tmp_path / "dest")
    return PathStorage(object_store_root(tmp_path.name))


def test_write_read_list_delete(storage: Storage) -> None:
    assert storage.read_json("r/_cursor.json") is None
    assert storage.list_names("r") == []
    storage.write_json("r/_cursor.json", {"after": "e1", "text": "blåbær"})
    assert storage.read_json("r/_cursor.json") == {"after": "e1", "text": "blåbær"}
    handle = storage.open_atomic("r/run=1/part-00000.ndjson")
    handle.write(b'{"id":"1"}\n')
    handle.commit()
    assert storage.read_bytes("r/run=1/part-00000.ndjson") == b'{"id":"1"}\n'
    assert storage.list_names("r") == ["_cursor.json"]
    assert storage.list_names("r/run=1") == ["part-00000.ndjson"]
    storage.delete("r/run=1/part-00000.ndjson")
    storage.delete("r/run=1/part-00000.ndjson")  # deleting twice is fine (re-done after a crash)
    assert storage.read_bytes("r/run=1/part-00000.ndjson") is None


def test_abort_keeps_the_previous_content(storage: Storage) -> None:
    storage.write_json("k.json", {"v": 1})
    handle = storage.open_atomic("k.json")
    handle.write(b"{half")
    handle.abort()
    assert storage.read_json("k.json") == {"v": 1}
    assert storage.list_names("") == ["k.json"]


def test_nothing_is_visible_before_commit_locally(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path)
    handle = storage.open_atomic("a/b.ndjson")
    handle.write(b"x" * 10)
    assert not (tmp_path / "a" / "b.ndjson").exists()
    hidden = [p.name for p in (tmp_path / "a").iterdir()]
    assert len(hidden) == 1 and hidden[0].startswith(".b.ndjson.tmp-")
    handle.commit()
    assert (tmp_path / "a" / "b.ndjson").read_bytes() == b"x" * 10
    assert [p.name for p in (tmp_path / "a").iterdir()] == ["b.ndjson"]


def test_trace_fires_between_writing_and_publishing_json(tmp_path: Path) -> None:
    seen: list[tuple[str, bool]] = []
    storage = LocalStorage(tmp_path, trace=lambda p: seen.append((p, (tmp_path / "c.json").exists())))
    storage.write_json("c.json", {})
    assert seen == [("json-written:c.json", False)]
    assert json.loads((tmp_path / "c.json").read_text()) == {}


def test_corrupt_json_names_the_file(tmp_path: Path) -> None:
    (tmp_path / "c.json").write_text("{not json")
    with pytest.raises(IngestStateError, match="c.json"):
        LocalStorage(tmp_path).read_json("c.json")


def test_open_storage_picks_by_kind(tmp_path: Path) -> None:
    assert isinstance(open_storage(str(tmp_path)), LocalStorage)
    assert isinstance(open_storage(tmp_path), LocalStorage)
    local = open_storage(f"file://{tmp_path}/x%20y")
    assert isinstance(local, LocalStorage) and local.root == tmp_path / "x y"
    assert isinstance(open_storage(UPath(f"file://{tmp_path}")), LocalStorage)
    assert isinstance(open_storage(UPath("memory://b/x")), PathStorage)
    with pytest.raises(AltinnConfigError, match="ObjectStoragePath"):
        open_storage("s3://bucket/prefix")
    with pytest.raises(AltinnConfigError):
        open_storage(42)


def test_uris(tmp_path: Path) -> None:
    assert LocalStorage(tmp_path).uri("a/b") == (tmp_path / "a" / "b").as_uri()
    assert PathStorage(UPath("memory://b/x")).uri("a/b") == "memory://b/x/a/b"


def test_object_store_abort_of_a_large_upload_publishes_nothing(tmp_path: Path) -> None:
    storage = PathStorage(object_store_root(tmp_path.name))
    storage.write_json("k.json", {"v": 1})
    handle = storage.open_atomic("k.json")
    handle.write(b"x" * (1 << 18))  # several blocks: the upload has started
    handle.abort()
    del handle
    assert storage.read_json("k.json") == {"v": 1}


def test_object_store_publishes_only_on_commit(tmp_path: Path) -> None:
    storage = PathStorage(object_store_root(tmp_path.name))
    handle = storage.open_atomic("r/part-00000.ndjson")
    handle.write(b"x" * (1 << 18))
    assert storage.read_bytes("r/part-00000.ndjson") is None
    handle.commit()
    assert storage.read_bytes("r/part-00000.ndjson") == b"x" * (1 << 18)

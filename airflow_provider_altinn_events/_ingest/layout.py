"""Where ingestion puts things in the destination: one folder per resource, one per run.

::

    {destination}/{resource}/_cursor.json                      the committed cursor (the commit point)
    {destination}/{resource}/run={run}/part-00000.ndjson[.gz]   data, names stable per run
    {destination}/{resource}/run={run}/_manifest.json          what the run wrote

Names that start with ``_`` or ``.`` are skipped by Spark, Hive and most lake readers, so the cursor,
manifests and half-written temporary files never show up as data; ``run=...`` is a Hive-style partition.
Resource URNs and Airflow run ids carry characters (``:``, ``+``) that are awkward in object keys and
illegal on some file systems, so each becomes one safe path segment; when that loses information a
short hash of the original is appended, so two different inputs never share a folder.
"""

from __future__ import annotations

import hashlib
import re

from airflow_provider_altinn_events.client.urn import RESOURCE_PREFIX

__all__ = [
    "CURSOR_NAME",
    "MANIFEST_NAME",
    "is_part_name",
    "is_temp_name",
    "part_name",
    "resource_dir",
    "run_dir",
    "safe_segment",
]

CURSOR_NAME = "_cursor.json"
MANIFEST_NAME = "_manifest.json"
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
_PART = re.compile(r"^part-\d{5,}\.ndjson(\.gz)?$")
TEMP_MARKER = ".tmp-"


def safe_segment(value: str) -> str:
    """Turn ``value`` into one path segment of ``[A-Za-z0-9._-]``, unique per distinct ``value``.

    Runs of other characters become ``_``; if anything was replaced (or the result would be empty or start
    with ``.``/``_``, which readers treat as hidden) an 8-hex-digit hash of the original is appended.
    """
    safe = _UNSAFE.sub("_", value).strip("_")
    if safe == value and safe and safe[0] not in "._":
        return safe
    digest = hashlib.sha256(value.encode("utf-8")).hexdigest()[:8]
    safe = safe.lstrip("._")
    return f"{safe}~{digest}" if safe else digest


def resource_dir(resource: str) -> str:
    """The folder of one resource: the URN without ``urn:altinn:resource:``, made safe."""
    short = resource[len(RESOURCE_PREFIX) :] if resource.startswith(RESOURCE_PREFIX) else resource
    return safe_segment(short)


def run_dir(run_id: str) -> str:
    """The folder of one run: ``run=<safe run id>``."""
    return f"run={safe_segment(run_id)}"


def part_name(index: int, compression: str | None) -> str:
    """Name of the ``index``-th data file of a run: ``part-00000.ndjson`` or ``part-00000.ndjson.gz``."""
    return f"part-{index:05d}.ndjson" + (".gz" if compression == "gzip" else "")


def is_part_name(name: str) -> bool:
    """Whether ``name`` is a data file this module names (stale ones are cleaned up by that test)."""
    return bool(_PART.match(name))


def is_temp_name(name: str) -> bool:
    """Whether ``name`` is a temporary file left by a write that never finished."""
    return name.startswith(".") and TEMP_MARKER in name

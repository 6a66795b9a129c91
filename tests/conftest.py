"""Shared test set-up.

Airflow reads ``AIRFLOW_HOME`` when it is first imported, so it is pointed at a private temporary folder here,
at import time, before any test module imports Airflow. Each pytest process gets its own home (and SQLite
database), so several test runs on one machine never share state. The ``altinn_emulator`` fixtures come from
the package's own pytest plugin (the same one our users get).
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

if "airflow.configuration" in sys.modules:  # pragma: no cover - a plugin imported Airflow before us
    raise RuntimeError("Airflow was imported before tests/conftest.py could set AIRFLOW_HOME")

_HOME = tempfile.mkdtemp(prefix="altinn-events-airflow-")
os.environ["AIRFLOW_HOME"] = _HOME
os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
os.environ["AIRFLOW__CORE__DAGS_FOLDER"] = str(REPO / "example_dags")
os.environ.setdefault("AIRFLOW__LOGGING__LOGGING_LEVEL", "INFO")
# The sensor trigger's resume grace (docs/guides/sensor.rst, "Troubleshooting") guards against a race between a
# real scheduler and executor; in-process tests have neither, so it would only slow them down. The e2e stack
# does not inherit AIRFLOW__* variables and runs with the default; tests/unit/triggers/test_grace.py sets its own.
os.environ.setdefault("AIRFLOW__ALTINN_EVENTS__SENSOR_RESUME_GRACE", "0")
# Example DAGs read where to land files from this variable; keep test output in the temp home.
os.environ.setdefault("AIRFLOW_VAR_ALTINN_EVENTS_INGEST_DESTINATION", f"file://{_HOME}/lake")


@pytest.fixture(scope="session")
def airflow_home() -> str:
    return _HOME


@pytest.fixture(scope="session")
def airflow_db(airflow_home: str) -> Iterator[str]:
    """A migrated Airflow metadata DB (SQLite in the private home); needed by ``dag.test()``."""
    result = subprocess.run(
        [sys.executable, "-m", "airflow", "db", "migrate"],
        env=os.environ.copy(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    if result.returncode != 0:
        raise RuntimeError(f"airflow db migrate failed:\n{result.stdout[-4000:]}\n{result.stderr[-4000:]}")
    yield airflow_home


@pytest.fixture(params=["fast", "adapter"])
def aiohttp_path(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Runs a test once on the aiohttp fast path and once on httpx-aiohttp's adapter (``client/transport.py``,
    ``fast_path``): every ``AltinnAiohttpTransport`` built without ``fast_path=`` during the test takes the path
    named by the parameter, so a behaviour difference between the two paths fails a test. Use it with
    ``pytestmark = pytest.mark.usefixtures("aiohttp_path")`` or on single tests."""
    from airflow_provider_altinn_events.client.transport import FAST_PATH_ENV

    monkeypatch.setenv(FAST_PATH_ENV, "1" if request.param == "fast" else "0")
    return str(request.param)

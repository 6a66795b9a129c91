"""Mistakes in a DAG file are DAG import errors, in a plain ``DagBag`` as a user's CI builds it.

Every constructor checks its arguments (``_arguments.py``), so a bad ``resource`` or interval shows up when
the file is imported, not when a watcher polls for ever in the triggerer (``docs/guides/event-driven.rst``).
``MessageQueueTrigger`` builds our trigger only when the DAG is serialized (common-messaging's design), so
there the dag-processor reports the error; a CI test has to serialize the DAG to see it (shown below).
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

HEADER = """
import pendulum
from airflow.sdk import DAG, Asset, AssetWatcher
"""

WATCHER = """
from airflow_provider_altinn_events.triggers.altinn_events import AltinnEventsWatcherTrigger

trigger = AltinnEventsWatcherTrigger(resource={resource!r}, poll_interval={poll_interval!r})
asset = Asset(name="cases", watchers=[AssetWatcher(name="cases_watcher", trigger=trigger)])
with DAG("watched", schedule=[asset], start_date=pendulum.datetime(2026, 1, 1, tz="UTC")):
    pass
"""

SENSOR = """
from airflow_provider_altinn_events.sensors.altinn_events import AltinnEventsSensor

with DAG("sensing", schedule=None, start_date=pendulum.datetime(2026, 1, 1, tz="UTC")):
    AltinnEventsSensor(task_id="wait", resource={resource!r}, poll_interval={poll_interval!r})
"""

QUEUE = """
from airflow.providers.common.messaging.triggers.msg_queue import MessageQueueTrigger

trigger = MessageQueueTrigger(scheme="altinn", resource={resource!r}, poll_interval={poll_interval!r})
asset = Asset(name="cases", watchers=[AssetWatcher(name="cases_watcher", trigger=trigger)])
with DAG("queued", schedule=[asset], start_date=pendulum.datetime(2026, 1, 1, tz="UTC")):
    pass
"""

GOOD = "urn:altinn:resource:ttd-altinn-events-automated-tests"


def bag_of(tmp_path: Path, body: str, **values: object) -> object:
    from tests.airflow_support import DagBag

    (tmp_path / "dag_file.py").write_text(textwrap.dedent(HEADER) + body.format(**values))
    return DagBag(dag_folder=str(tmp_path))


@pytest.mark.parametrize(
    ("body", "resource", "poll_interval", "named"),
    [
        (WATCHER, "urn:altinn:resource:UPPER CASE", 30, "resource"),
        (WATCHER, "urn:altinn:resource:", 30, "resource"),
        (WATCHER, GOOD, 0, "poll_interval"),
        (SENSOR, "urn:altinn:resource:UPPER CASE", 30, "resource"),
        (SENSOR, GOOD, -1, "poll_interval"),
    ],
    ids=[
        "watcher-upper-case",
        "watcher-empty-id",
        "watcher-interval",
        "sensor-upper-case",
        "sensor-interval",
    ],
)
def test_a_mistake_is_an_import_error(
    airflow_home: str, tmp_path: Path, body: str, resource: str, poll_interval: float, named: str
) -> None:
    bag = bag_of(tmp_path, body, resource=resource, poll_interval=poll_interval)
    errors = bag.import_errors  # type: ignore[attr-defined]
    assert len(errors) == 1, errors
    message = next(iter(errors.values()))
    assert "AltinnConfigError" in message and named in message


@pytest.mark.parametrize("body", [WATCHER, SENSOR, QUEUE])
def test_a_good_file_imports(airflow_home: str, tmp_path: Path, body: str) -> None:
    bag = bag_of(tmp_path, body, resource=GOOD, poll_interval=30)
    assert not bag.import_errors, bag.import_errors  # type: ignore[attr-defined]


def test_message_queue_trigger_fails_when_serialized(airflow_home: str, tmp_path: Path) -> None:
    """``MessageQueueTrigger`` keeps its kwargs until serialized, so a plain DagBag sees nothing; serializing
    the DAG as the dag-processor does (a one-line CI check) raises our error with the field named."""
    from airflow.serialization.serialized_objects import LazyDeserializedDAG

    from airflow_provider_altinn_events.exceptions import AltinnConfigError

    bag = bag_of(tmp_path, QUEUE, resource="urn:altinn:resource:UPPER CASE", poll_interval=30)
    errors = bag.import_errors  # type: ignore[attr-defined]
    if errors:  # Airflow 3.0 serializes an asset's watchers while the DAG file is imported: reported there
        (message,) = errors.values()
        assert "AltinnConfigError" in message and "resource" in message
        return
    dag = bag.dags["queued"]  # type: ignore[attr-defined]
    with pytest.raises(Exception) as info:  # Airflow may wrap it
        LazyDeserializedDAG.from_dag(dag)
    chain: list[BaseException] = []
    error: BaseException | None = info.value
    while error is not None:
        chain.append(error)
        error = error.__cause__ or error.__context__
    config_errors = [e for e in chain if isinstance(e, AltinnConfigError)]
    assert config_errors and config_errors[0].field == "resource"

"""One permanent-error rule for every operator (``_boundary.py``): refused credentials fail the task at once.

Over real HTTP against the emulator: a connection whose Maskinporten client is unknown gets a 400
``invalid_client`` from the grant, on every try. Before the rule lived on the error tree, only the publish
operators and the subscription operators knew a few such classes, and a refused grant went through every
Airflow retry in all of them.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from airflow_provider_altinn_events._compat import AirflowFailException
from airflow_provider_altinn_events.exceptions import TokenGrantError
from airflow_provider_altinn_events.operators.ingest import AltinnEventsIngestOperator
from airflow_provider_altinn_events.operators.publish import (
    AltinnEventsPublishOperator,
    AltinnEventsPublishRejectedError,
)
from airflow_provider_altinn_events.operators.subscriptions import (
    AltinnEventsCreateSubscriptionOperator,
    AltinnEventsDeleteSubscriptionOperator,
)
from tests.fakes import FakeTI

RESOURCE = "urn:altinn:resource:ttd-permanent-errors"
EVENT = {"type": "t.created", "source": "https://example.org/x", "resource": RESOURCE, "id": "e1"}


@pytest.fixture
def unknown_client(altinn_emulator: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    connection = json.loads(altinn_emulator.connection_json())
    connection["login"] = "a-client-maskinporten-does-not-know"
    monkeypatch.setenv("AIRFLOW_CONN_ALTINN_EVENTS_DEFAULT", json.dumps(connection))
    return altinn_emulator


def publish(tmp: Any) -> Any:
    return AltinnEventsPublishOperator(task_id="p", event=EVENT).execute({"ti": FakeTI()})


def publish_list(tmp: Any) -> Any:
    events = [{**EVENT, "id": f"e{i}"} for i in range(3)]
    return AltinnEventsPublishOperator(task_id="p", event=events).execute({"ti": FakeTI()})


def ingest(tmp: Any) -> Any:
    operator = AltinnEventsIngestOperator(task_id="i", resource=RESOURCE, destination=str(tmp / "lake"))
    return operator.execute({"ti": FakeTI(), "run_id": "manual__1"})  # type: ignore[arg-type]


def subscribe(tmp: Any) -> Any:
    operator = AltinnEventsCreateSubscriptionOperator(
        task_id="s", endpoint="https://hooks.example.org/altinn", resource_filter=RESOURCE
    )
    return operator.execute({"ti": FakeTI()})  # type: ignore[arg-type]


def unsubscribe(tmp: Any) -> Any:
    return AltinnEventsDeleteSubscriptionOperator(task_id="u", subscription_id=7).execute({"ti": FakeTI()})


@pytest.mark.parametrize("run", [publish, publish_list, ingest, subscribe, unsubscribe])
def test_refused_credentials_fail_every_operator_at_once(
    unknown_client: Any, tmp_path: Any, run: Any
) -> None:
    with pytest.raises(AirflowFailException) as info:
        run(tmp_path)
    error = info.value
    if isinstance(error, AltinnEventsPublishRejectedError):
        assert error.not_published_ids  # the publish error still says what did not go out
    assert isinstance(error.__cause__, TokenGrantError) and error.__cause__.permanent
    assert unknown_client.stats()["events"] == 0

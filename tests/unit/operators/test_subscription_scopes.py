"""The create-subscription operator checks the scope a generic subscription needs before any request."""

from __future__ import annotations

from typing import Any

import pytest

from airflow_provider_altinn_events._compat import AirflowFailException
from airflow_provider_altinn_events.exceptions import AltinnConfigError
from airflow_provider_altinn_events.operators.subscriptions import AltinnEventsCreateSubscriptionOperator
from tests.fakes import FakeTI


def create(**kwargs: Any) -> dict[str, Any]:
    operator = AltinnEventsCreateSubscriptionOperator(
        task_id="subscribe", endpoint="https://hooks.example.org/altinn", **kwargs
    )
    return operator.execute({"ti": FakeTI()})


@pytest.fixture
def publish_only(altinn_conn: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setenv(
        "AIRFLOW_CONN_ALTINN_EVENTS_DEFAULT", altinn_conn.connection_json(scopes="altinn:events.publish")
    )
    return altinn_conn


def test_generic_subscription_without_the_scope_is_refused_before_any_request(publish_only: Any) -> None:
    with pytest.raises(AirflowFailException, match="altinn:events.subscribe") as info:
        create(resource_filter="urn:altinn:resource:ttd-generic")
    cause = info.value.__cause__
    assert isinstance(cause, AltinnConfigError) and cause.field == "scopes"
    assert publish_only.stats()["requests"] == {}


@pytest.mark.parametrize(
    "filters",
    [
        {"resource_filter": "urn:altinn:resource:app_ttd_apps-test"},
        {"source_filter": "https://ttd.apps.altinn.no/ttd/apps-test"},
    ],
)
def test_app_subscriptions_need_no_scope(publish_only: Any, filters: dict[str, str]) -> None:
    try:
        create(**filters)
    except AirflowFailException as error:  # the service may refuse; the pre-check must not
        assert not (isinstance(error.__cause__, AltinnConfigError) and error.__cause__.field == "scopes")
    assert publish_only.stats()["requests"] != {}

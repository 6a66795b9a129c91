"""The subscription operators' own logic, with ``execute`` run against the emulator (no Airflow database).

The same operators run inside real Airflow in ``tests/integration/test_subscriptions_dag.py``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from airflow_provider_altinn_events._compat import AirflowException, AirflowFailException, TaskDeferred
from airflow_provider_altinn_events.exceptions import AltinnConfigError, AltinnForbiddenError
from airflow_provider_altinn_events.operators.subscriptions import (
    AltinnEventsCreateSubscriptionOperator,
    AltinnEventsDeleteSubscriptionOperator,
)
from airflow_provider_altinn_events.triggers.subscriptions import AltinnEventsSubscriptionValidatedTrigger
from tests.fakes import FakeTI
from tests.unit.triggers.test_subscriptions import WebhookReceiver

RESOURCE = "urn:altinn:resource:ttd-altinn-events-automated-tests"


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    server = WebhookReceiver()
    try:
        yield server
    finally:
        server.close()


def subscriptions(handle: Any) -> list[Any]:
    from airflow_provider_altinn_events.hooks.altinn_events import AltinnEventsHook

    hook = AltinnEventsHook()
    try:
        return list(hook.get_conn().list_subscriptions().subscriptions)
    finally:
        hook.close()


def other_consumer_connection(handle: Any) -> str:
    """Register a second Maskinporten client (another organisation) and return its connection JSON."""
    other = handle.register_client(client_id="other-consumer", orgnumber="897069652", org=None)
    return json.dumps(
        {
            "conn_type": "altinn_events",
            "host": handle.base_url,
            "login": other.client_id,
            "password": other.private_key_pem,
            "extra": {"environment": "custom", "key_id": other.key_id, "scopes": " ".join(other.scopes)},
        }
    )


def create(endpoint: str, **kwargs: Any) -> AltinnEventsCreateSubscriptionOperator:
    kwargs.setdefault("resource_filter", RESOURCE)
    return AltinnEventsCreateSubscriptionOperator(task_id="create", endpoint=endpoint, **kwargs)


# -- construction --------------------------------------------------------------------------------------------


def test_templated_fields() -> None:
    assert set(create("https://h.example.org/x").template_fields) == {
        "endpoint",
        "resource_filter",
        "source_filter",
        "subject_filter",
        "alternative_subject_filter",
        "type_filter",
        "include_subunits",
        "altinn_events_conn_id",
    }
    delete = AltinnEventsDeleteSubscriptionOperator(task_id="d", subscription_id="{{ x }}")
    assert set(delete.template_fields) == {"subscription_id", "altinn_events_conn_id"}
    assert delete.fail_if_not_exists is False


def test_timeouts_must_be_positive() -> None:
    with pytest.raises(ValueError):
        create("https://h.example.org/x", validation_timeout_seconds=0)
    with pytest.raises(ValueError):
        create("https://h.example.org/x", poll_interval_seconds=-1)


# -- create ------------------------------------------------------------------------------------------------


def test_invalid_arguments_fail_before_any_request(altinn_conn: Any) -> None:
    operator = create("http://hooks.example.org/x")
    with pytest.raises(AirflowFailException, match="No subscription was created") as info:
        operator.execute({"ti": FakeTI()})
    assert isinstance(info.value.__cause__, AltinnConfigError) and info.value.__cause__.field == "endpoint"
    assert altinn_conn.stats()["requests"] == {}


def test_create_returns_the_subscription_and_pushes_its_id(
    altinn_conn: Any, receiver: WebhookReceiver
) -> None:
    ti = FakeTI()
    result = create(receiver.url, type_filter="no.example.case.changed.v1", subject_filter="").execute(
        {"ti": ti}
    )
    assert isinstance(result["id"], int) and ti.pushed == {"subscription_id": result["id"]}
    assert result["resourceFilter"] == RESOURCE and result["typeFilter"] == "no.example.case.changed.v1"
    assert "subjectFilter" not in result or result["subjectFilter"] is None  # blank filter sent as none
    assert "validated" in result


def test_create_twice_gives_one_subscription(altinn_conn: Any, receiver: WebhookReceiver) -> None:
    first = create(receiver.url).execute({"ti": FakeTI()})
    second = create(receiver.url).execute({"ti": FakeTI()})
    assert first["id"] == second["id"]
    assert [s.id for s in subscriptions(altinn_conn)] == [first["id"]]


def test_include_subunits_rendered_as_text(altinn_conn: Any, receiver: WebhookReceiver) -> None:
    result = create(receiver.url, subject_filter="/organisation/991825827", include_subunits="True").execute(
        {"ti": FakeTI()}
    )
    assert result["includeSubunits"] is True


def test_altinn_refusal_fails_without_retries(altinn_conn: Any, receiver: WebhookReceiver) -> None:
    altinn_conn.add_access(resource=RESOURCE, consumer="/organisation/999999999", actions=["subscribe"])
    with pytest.raises(AirflowFailException, match="refused the subscription") as info:
        create(receiver.url).execute({"ti": FakeTI()})
    assert isinstance(info.value.__cause__, AltinnForbiddenError)


def test_wait_for_validation_defers_with_json_kwargs(altinn_conn: Any, receiver: WebhookReceiver) -> None:
    receiver.status = 500  # not validated yet when execute() looks
    operator = create(
        receiver.url, wait_for_validation=True, validation_timeout_seconds=30, poll_interval_seconds=1
    )
    with pytest.raises(TaskDeferred) as info:
        operator.execute({"ti": FakeTI()})
    deferred = info.value
    assert isinstance(deferred.trigger, AltinnEventsSubscriptionValidatedTrigger)
    assert deferred.method_name == "execute_complete"
    kwargs = deferred.trigger.serialize()[1]
    assert kwargs["altinn_events_conn_id"] == "altinn_events_default"
    assert kwargs["timeout_seconds"] == 30 and kwargs["poll_interval_seconds"] == 1
    assert kwargs["deadline"].endswith("Z")
    assert deferred.timeout is not None and deferred.timeout.total_seconds() > 30


def test_already_validated_subscription_does_not_defer(altinn_conn: Any, receiver: WebhookReceiver) -> None:
    import time

    from airflow_provider_altinn_events.hooks.altinn_events import AltinnEventsHook

    first = create(receiver.url).execute({"ti": FakeTI()})
    hook = AltinnEventsHook()
    deadline = time.monotonic() + 15
    while not hook.get_conn().get_subscription(first["id"]).validated:
        assert time.monotonic() < deadline, "the emulator never validated the subscription"
        time.sleep(0.05)
    hook.close()
    result = create(receiver.url, wait_for_validation=True).execute({"ti": FakeTI()})  # no TaskDeferred
    assert result["id"] == first["id"] and result["validated"] is True


def test_execute_complete() -> None:
    operator = create("https://h.example.org/x")
    subscription = {"id": 5, "validated": True, "endPoint": "https://h.example.org/x"}
    event = {"status": "validated", "subscription_id": 5, "subscription": subscription, "message": None}
    assert operator.execute_complete({}, event) == subscription
    with pytest.raises(AirflowException, match="not validated: the endpoint said no") as info:
        operator.execute_complete(
            {}, {"status": "timeout", "subscription": None, "message": "the endpoint said no"}
        )
    assert not isinstance(info.value, AirflowFailException)  # a retry re-sends the validation event


def test_execute_complete_fails_without_retries_on_a_permanent_error() -> None:
    """The trigger marks an error no retry can fix (403, unusable connection); the task fails at once."""
    operator = create("https://h.example.org/x")
    event = {
        "status": "error",
        "subscription_id": 5,
        "subscription": None,
        "message": "subscription 5 cannot be read: GET ... -> 403",
        "permanent": True,
    }
    with pytest.raises(AirflowFailException, match="not validated: subscription 5 cannot be read"):
        operator.execute_complete({}, event)
    old_shape = {key: value for key, value in event.items() if key != "permanent"}
    with pytest.raises(AirflowException) as info:
        operator.execute_complete({}, old_shape)
    assert not isinstance(info.value, AirflowFailException)


def test_execute_complete_reads_the_trigger_payload_end_to_end(
    altinn_conn: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What the trigger writes for an unusable connection is what the operator fails on without retries."""
    import asyncio

    from airflow_provider_altinn_events.triggers.subscriptions import AltinnEventsSubscriptionValidatedTrigger

    monkeypatch.setenv("AIRFLOW_CONN_BROKEN", altinn_conn.connection_json(environment="nowhere"))

    async def first() -> dict[str, Any]:
        trigger = AltinnEventsSubscriptionValidatedTrigger(
            1, altinn_events_conn_id="broken", timeout_seconds=5
        )
        async for event in trigger.run():
            return dict(event.payload)
        raise AssertionError("the trigger yielded nothing")

    with pytest.raises(AirflowFailException, match="'broken' cannot be used"):
        create("https://h.example.org/x").execute_complete({}, asyncio.run(first()))


# -- delete ------------------------------------------------------------------------------------------------


def test_delete(altinn_conn: Any, receiver: WebhookReceiver) -> None:
    subscription_id = create(receiver.url).execute({"ti": FakeTI()})["id"]
    AltinnEventsDeleteSubscriptionOperator(task_id="d", subscription_id=str(subscription_id)).execute({})
    assert subscriptions(altinn_conn) == []


def test_delete_missing_is_fine_unless_asked(altinn_conn: Any) -> None:
    AltinnEventsDeleteSubscriptionOperator(task_id="d", subscription_id=424242).execute({})
    operator = AltinnEventsDeleteSubscriptionOperator(
        task_id="d", subscription_id=424242, fail_if_not_exists=True
    )
    with pytest.raises(AirflowFailException, match="424242 does not exist"):
        operator.execute({})


@pytest.mark.parametrize("value", ["abc", 0, None, "{{ not rendered }}"])
def test_delete_invalid_id(altinn_conn: Any, value: Any) -> None:
    with pytest.raises(AirflowFailException, match="positive integer"):
        AltinnEventsDeleteSubscriptionOperator(task_id="d", subscription_id=value).execute({})
    assert altinn_conn.stats()["requests"] == {}


def test_delete_another_consumers_subscription_is_403(
    altinn_conn: Any, receiver: WebhookReceiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_ALTINN_EVENTS_OTHER", other_consumer_connection(altinn_conn))
    theirs = create(receiver.url, altinn_events_conn_id="altinn_events_other").execute({"ti": FakeTI()})
    operator = AltinnEventsDeleteSubscriptionOperator(task_id="d", subscription_id=theirs["id"])
    with pytest.raises(AirflowFailException, match="another consumer") as info:
        operator.execute({})
    assert isinstance(info.value.__cause__, AltinnForbiddenError)
    assert altinn_conn.stats()["subscriptions"] == 1  # still there


def test_invalid_connection_fails_without_retries(altinn_conn: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(
        "AIRFLOW_CONN_ALTINN_EVENTS_DEFAULT", altinn_conn.connection_json(environment="nowhere")
    )
    with pytest.raises(AirflowFailException, match="No subscription was created: connection"):
        create("https://hooks.example.org/altinn").execute({"ti": FakeTI()})
    with pytest.raises(AirflowFailException, match="Nothing was deleted: connection"):
        AltinnEventsDeleteSubscriptionOperator(task_id="d", subscription_id=1).execute({})
    assert altinn_conn.stats()["requests"] == {}

"""Trigger payloads: one typed shape, JSON both ways, strict parsing."""

from __future__ import annotations

import json
from typing import Any

import pytest

from airflow_provider_altinn_events._payloads import TriggerError, TriggerPayload, TriggerStatus
from airflow_provider_altinn_events.client.models import CloudEvent
from airflow_provider_altinn_events.exceptions import AltinnPayloadError, AltinnServerError, ProblemDetails

RES = "urn:altinn:resource:ttd-test"
EVENT = {
    "specversion": "1.0",
    "id": "e1",
    "source": "https://s",
    "type": "t",
    "resource": RES,
    "data": {"k": 1},
}


def test_status_is_a_str_enum() -> None:
    assert TriggerStatus.SUCCESS == "success"
    assert str(TriggerStatus.EVENTS) == "events"
    assert TriggerStatus("error") is TriggerStatus.ERROR


@pytest.mark.parametrize(
    "payload",
    [
        TriggerPayload.success(RES, "e1", [CloudEvent.from_dict(EVENT)]),
        TriggerPayload.batch(RES, "e1", [EVENT]),
        TriggerPayload.success(RES, "0", []),
        TriggerPayload.failure(RES, "e0", TriggerError("AltinnForbiddenError", "no", False, 403)),
    ],
    ids=["success", "batch", "empty", "error"],
)
def test_round_trip_through_json(payload: TriggerPayload) -> None:
    raw = payload.to_dict()
    assert json.loads(json.dumps(raw)) == raw
    assert type(raw["status"]) is str
    assert TriggerPayload.from_dict(json.loads(json.dumps(raw))) == payload


def test_events_are_kept_whole() -> None:
    payload = TriggerPayload.batch(RES, "e1", [CloudEvent.from_dict(EVENT)])
    assert payload.to_dict()["events"] == [EVENT]
    assert payload.event_ids == ["e1"]
    assert payload.cloud_events()[0].data == {"k": 1}


def test_failure_from_exception() -> None:
    error = AltinnServerError(
        "boom", status_code=503, method="GET", url="http://x/events", problem=ProblemDetails(status=503)
    )
    payload = TriggerPayload.failure(RES, "e3", error)
    assert payload.status is TriggerStatus.ERROR
    assert payload.error == TriggerError("AltinnServerError", str(error), True, 503)
    assert payload.to_dict()["error"]["status_code"] == 503


def test_failure_from_a_plain_exception() -> None:
    payload = TriggerPayload.failure(RES, "0", RuntimeError())
    assert payload.error is not None
    assert payload.error.type == "RuntimeError" and payload.error.message == "RuntimeError"
    assert payload.error.retryable is False and payload.error.status_code is None


@pytest.mark.parametrize(
    "raw",
    [
        None,
        [],
        {"status": "nope", "resource": RES, "after": "0"},
        {"status": "success", "after": "0"},
        {"status": "success", "resource": RES, "after": 5},
        {"status": "success", "resource": RES, "after": "0", "events": "x"},
        {"status": "success", "resource": RES, "after": "0", "events": [1]},
        {"status": "error", "resource": RES, "after": "0"},
        {"status": "error", "resource": RES, "after": "0", "error": {"message": "no type"}},
    ],
)
def test_from_dict_is_strict(raw: Any) -> None:
    with pytest.raises(AltinnPayloadError):
        TriggerPayload.from_dict(raw)


# -- the subscription trigger's payload ----------------------------------------------------------------------


def test_subscription_payload_round_trip_through_json() -> None:
    from airflow_provider_altinn_events._payloads import SubscriptionPayload, SubscriptionValidationStatus

    for payload in (
        SubscriptionPayload(SubscriptionValidationStatus.VALIDATED, 7, {"id": 7, "validated": True}, None),
        SubscriptionPayload(SubscriptionValidationStatus.TIMEOUT, 7, {"id": 7}, "not validated by ..."),
        SubscriptionPayload(SubscriptionValidationStatus.ERROR, 7, None, "403", permanent=True),
    ):
        raw = json.loads(json.dumps(payload.to_dict()))
        assert SubscriptionPayload.from_dict(raw) == payload


def test_subscription_payload_keys_are_as_before_and_permanent_only_when_set() -> None:
    from airflow_provider_altinn_events._payloads import SubscriptionPayload, SubscriptionValidationStatus

    plain = SubscriptionPayload(SubscriptionValidationStatus.ERROR, 7, None, "404").to_dict()
    assert plain == {"status": "error", "subscription_id": 7, "subscription": None, "message": "404"}
    permanent = SubscriptionPayload(SubscriptionValidationStatus.ERROR, 7, None, "403", permanent=True)
    assert permanent.to_dict() == {**plain, "message": "403", "permanent": True}


def test_subscription_payload_of_an_older_trigger_parses_as_not_permanent() -> None:
    from airflow_provider_altinn_events._payloads import SubscriptionPayload, SubscriptionValidationStatus

    old = {"status": "timeout", "subscription_id": 3, "subscription": None, "message": "late"}
    parsed = SubscriptionPayload.from_dict(old)
    assert parsed.status is SubscriptionValidationStatus.TIMEOUT
    assert parsed.message == "late" and not parsed.permanent


@pytest.mark.parametrize(
    "raw",
    [
        None,
        {"status": "nope"},
        {"status": "validated", "subscription_id": 1, "subscription": None},
        {"status": "error", "subscription": "text"},
    ],
)
def test_subscription_payload_rejects_what_no_trigger_wrote(raw: Any) -> None:
    from airflow_provider_altinn_events._payloads import SubscriptionPayload

    with pytest.raises(AltinnPayloadError):
        SubscriptionPayload.from_dict(raw)

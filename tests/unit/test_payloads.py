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

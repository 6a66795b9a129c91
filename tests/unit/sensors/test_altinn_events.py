"""AltinnEventsSensor without HTTP: arguments, templating surface, execute_complete, early errors.

Poke and defer paths against the emulator are in ``test_sensor_emulator.py``.
"""

from __future__ import annotations

from typing import Any

import pytest

from airflow_provider_altinn_events._compat import AirflowException
from airflow_provider_altinn_events._payloads import TriggerError, TriggerPayload
from airflow_provider_altinn_events.exceptions import AltinnConfigError
from airflow_provider_altinn_events.sensors.altinn_events import AltinnEventsSensor

RES = "urn:altinn:resource:ttd-test"
EVENT = {"specversion": "1.0", "id": "e1", "source": "https://s", "type": "t", "resource": RES}


class FakeTI:
    def __init__(self) -> None:
        self.pushed: dict[str, Any] = {}

    def xcom_push(self, key: str, value: Any) -> None:
        self.pushed[key] = value


def make(**kwargs: Any) -> AltinnEventsSensor:
    kwargs.setdefault("task_id", "wait")
    kwargs.setdefault("resource", RES)
    return AltinnEventsSensor(**kwargs)


def test_defaults_and_poll_interval() -> None:
    sensor = make(poll_interval=7)
    assert sensor.poke_interval == 7 and sensor.poll_interval == 7
    assert sensor.after == "0" and sensor.min_events == 1 and sensor.max_events is None
    assert sensor.altinn_events_conn_id == "altinn_events_default"
    assert sensor.deferrable is False  # [operators] default_deferrable is False in the test config


def test_poke_interval_still_wins_when_given() -> None:
    sensor = make(poke_interval=3)
    assert sensor.poke_interval == 3 and sensor.poll_interval == 3


def test_templated_fields() -> None:
    assert set(AltinnEventsSensor.template_fields) == {
        "resource",
        "event_types",
        "subject",
        "alternative_subject",
        "source",
        "where",
        "after",
        "altinn_events_conn_id",
    }


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"min_events": 0}, "min_events"),
        ({"min_events": 3, "max_events": 2}, "max_events"),
        ({"poll_interval": 0}, "poll_interval"),
    ],
)
def test_bad_limits_fail_at_parse_time(kwargs: dict[str, Any], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        make(**kwargs)


def test_execute_complete_returns_events_and_pushes_the_cursor() -> None:
    ti = FakeTI()
    event = TriggerPayload.success(RES, "e1", [EVENT]).to_dict()
    assert make(deferrable=True).execute_complete({"ti": ti}, event) == [EVENT]  # type: ignore[arg-type]
    assert ti.pushed == {"after": "e1"}


def test_execute_complete_raises_on_an_error_payload() -> None:
    ti = FakeTI()
    error = TriggerError("AltinnForbiddenError", "GET /events -> 403", retryable=False, status_code=403)
    event = TriggerPayload.failure(RES, "e7", error).to_dict()
    with pytest.raises(AirflowException) as info:
        make(deferrable=True).execute_complete({"ti": ti}, event)  # type: ignore[arg-type]
    message = str(info.value)
    assert "AltinnForbiddenError" in message and "HTTP 403" in message and "'e7'" in message
    assert ti.pushed == {}


def test_execute_complete_rejects_a_foreign_payload() -> None:
    from airflow_provider_altinn_events.exceptions import AltinnPayloadError

    with pytest.raises(AltinnPayloadError):
        make(deferrable=True).execute_complete({"ti": FakeTI()}, {"status": "success"})  # type: ignore[arg-type]


def test_reschedule_mode_cannot_start_at_latest() -> None:
    sensor = make(mode="reschedule", after="latest")
    with pytest.raises(AltinnConfigError) as info:
        sensor.execute({"ti": FakeTI()})  # type: ignore[arg-type]
    assert info.value.field == "after"


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"resource": "urn:wrong:x"}, "resource"),
        ({"subject": "/a", "alternative_subject": "/b"}, "alternative_subject"),
        ({"where": {"data.x": {"nope": 1}}}, "where"),
        ({"after": ""}, "after"),
    ],
)
def test_bad_rendered_arguments_fail_before_any_request(kwargs: dict[str, Any], field: str) -> None:
    # no connection exists in this test: the filter is checked before the hook is touched
    sensor = make(**kwargs)
    with pytest.raises(AltinnConfigError) as info:
        sensor.poke({"ti": FakeTI()})  # type: ignore[arg-type]
    assert info.value.field == field

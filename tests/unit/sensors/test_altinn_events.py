"""AltinnEventsSensor without HTTP: arguments, templating surface, execute_complete, early errors.

Poke and defer paths against the emulator are in ``test_sensor_emulator.py``.
"""

from __future__ import annotations

from typing import Any

import pytest

from airflow_provider_altinn_events._compat import AirflowException, AirflowFailException
from airflow_provider_altinn_events._payloads import TriggerError, TriggerPayload
from airflow_provider_altinn_events.exceptions import AltinnConfigError
from airflow_provider_altinn_events.sensors.altinn_events import AltinnEventsSensor
from tests.fakes import FakeTI

RES = "urn:altinn:resource:ttd-test"
EVENT = {"specversion": "1.0", "id": "e1", "source": "https://s", "type": "t", "resource": RES}


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
    with pytest.raises(AirflowFailException) as info:  # a mistake: no Airflow retry can fix it
        sensor.execute({"ti": FakeTI()})  # type: ignore[arg-type]
    assert isinstance(info.value.__cause__, AltinnConfigError) and info.value.__cause__.field == "after"


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"resource": "urn:wrong:x"}, "resource"),
        ({"resource": "urn:altinn:resource:UPPER CASE"}, "resource"),
        ({"subject": "/a", "alternative_subject": "/b"}, "alternative_subject"),
        ({"where": {"data.x": {"nope": 1}}}, "where"),
        ({"after": ""}, "after"),
    ],
)
def test_bad_arguments_fail_at_construction(kwargs: dict[str, Any], field: str) -> None:
    # the sensor is built when its DAG file is imported: a plain DagBag test reports the mistake
    with pytest.raises(AltinnConfigError) as info:
        make(**kwargs)
    assert info.value.field == field


@pytest.mark.parametrize(
    ("kwargs", "rendered", "field"),
    [
        ({"resource": "{{ params.r }}"}, {"resource": "urn:wrong:x"}, "resource"),
        ({"resource": "{{ params.r }}"}, {"resource": "urn:altinn:resource:Upper Case"}, "resource"),
        ({"where": {"data.x": "{{ ds }}"}}, {"where": {"data.x": {"nope": 1}}}, "where"),
        ({"after": "{{ ti.xcom_pull('x') }}"}, {"after": "None"}, "after"),
    ],
)
def test_bad_rendered_arguments_fail_before_any_request(
    kwargs: dict[str, Any], rendered: dict[str, Any], field: str
) -> None:
    # templates are judged once rendered; no connection exists in this test: checked before the hook
    sensor = make(**kwargs)
    for name, value in rendered.items():
        setattr(sensor, name, value)
    with pytest.raises(AltinnConfigError) as info:
        sensor.poke({"ti": FakeTI()})  # type: ignore[arg-type]
    assert info.value.field == field


def test_the_cursor_handed_to_the_trigger_is_never_a_shared_id() -> None:
    # A deferring sensor restarts the trigger right before its first match. Here that is after the second
    # event with the id "shared": after="shared" would resume after the *first* one (Altinn's rule), so
    # the cursor must be "q", the last event before it with an id of its own.
    from airflow_provider_altinn_events.client.matching import EventFilter, initial_state, poll_step
    from airflow_provider_altinn_events.client.models import CloudEvent, EventPage
    from airflow_provider_altinn_events.sensors.altinn_events import _cursor_before

    res = "urn:altinn:resource:ttd-test"

    def ev(event_id: str, source: str, type_: str) -> CloudEvent:
        return CloudEvent.from_dict({"id": event_id, "source": source, "type": type_, "resource": res})

    events = (ev("shared", "https://a", "x"), ev("q", "https://a", "x"), ev("shared", "https://b", "x"))
    page = EventPage(events=(*events, ev("m", "https://a", "wanted")), after="m")
    flt = EventFilter(resource=res, event_types=("wanted",))
    before = initial_state("0")
    step = poll_step(before, page, flt, min_events=2)
    assert [e.id for e in step.new_events] == ["m"]
    assert _cursor_before(before, step, page, flt) == "q"

"""The sensor trigger's resume grace (issue 18, ``triggers/_grace.py``): the argument and the option, the hold
itself, the kwargs it adds only when set, and the sensor handing it over. The race it guards against needs a
real scheduler and executor: ``tests/e2e/test_defer_race.py``.

``tests/conftest.py`` turns the configured grace off for the test session; these tests set it themselves.
"""

from __future__ import annotations

import asyncio
import logging
import math
from typing import Any

import pytest

from airflow_provider_altinn_events._compat import TaskDeferred
from airflow_provider_altinn_events._payloads import TriggerPayload, TriggerStatus
from airflow_provider_altinn_events.exceptions import AltinnConfigError
from airflow_provider_altinn_events.sensors.altinn_events import AltinnEventsSensor
from airflow_provider_altinn_events.triggers import _grace
from airflow_provider_altinn_events.triggers.altinn_events import AltinnEventsSensorTrigger

RES = "urn:altinn:resource:ttd-grace-tests"
ENV = "AIRFLOW__ALTINN_EVENTS__SENSOR_RESUME_GRACE"


@pytest.mark.parametrize(("value", "expected"), [(None, None), (0, 0.0), (2.5, 2.5), ("3", 3.0)])
def test_resume_grace_accepts_seconds_or_none(value: Any, expected: float | None) -> None:
    assert _grace.check_resume_grace(value) == expected


@pytest.mark.parametrize("value", [-1, math.nan, math.inf, True, "soon", [1]])
def test_resume_grace_refuses_anything_else_naming_the_field(value: Any) -> None:
    with pytest.raises(AltinnConfigError, match=r"resume_grace must be a number of seconds >= 0") as info:
        _grace.check_resume_grace(value)
    assert info.value.field == "resume_grace"


def test_the_option_sets_the_grace_and_its_default_is_ten_seconds(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(ENV, raising=False)
    assert _grace.configured_resume_grace() == _grace.DEFAULT_RESUME_GRACE == 10.0
    monkeypatch.setenv(ENV, "4.5")
    assert _grace.configured_resume_grace() == 4.5
    monkeypatch.setenv(ENV, "-2")
    with pytest.raises(AltinnConfigError) as info:
        _grace.configured_resume_grace()
    assert info.value.field == "[altinn_events] sensor_resume_grace"


def test_kwargs_carry_resume_grace_only_when_set() -> None:
    _, default = AltinnEventsSensorTrigger(resource=RES).serialize()
    assert "resume_grace" not in default  # triggers that do not set it serialize as before
    trigger = AltinnEventsSensorTrigger(resource=RES, resume_grace=0)
    _, data = trigger.serialize()
    assert data["resume_grace"] == 0.0
    assert AltinnEventsSensorTrigger(**data).serialize() == trigger.serialize()
    with pytest.raises(AltinnConfigError):
        AltinnEventsSensorTrigger(resource=RES, resume_grace=-1)


async def test_hold_resolves_at_the_deadline_not_before() -> None:
    loop = asyncio.get_running_loop()
    log = logging.getLogger("test")
    passed = _grace.hold(loop.time() - 1, log, RES)
    assert passed.done()  # nothing to wait for
    deadline = loop.time() + 0.2
    await _grace.hold(deadline, log, RES)
    assert loop.time() >= deadline


async def test_sensor_trigger_holds_an_event_found_inside_the_grace(
    altinn_conn: Any, caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    altinn_conn.generate(RES, 1, type="a.created")  # there before the trigger starts: found on its first poll
    loop = asyncio.get_running_loop()
    started = loop.time()
    # long enough that the first poll (token grant and exchange included) comes well inside it
    trigger = AltinnEventsSensorTrigger(resource=RES, poll_interval=0.05, resume_grace=3)
    with caplog.at_level(logging.INFO):
        event = await asyncio.wait_for(anext(trigger.run()), timeout=15)
    assert loop.time() - started >= 3
    assert TriggerPayload.from_dict(event.payload).status is TriggerStatus.SUCCESS
    out = capsys.readouterr().out
    assert "holding them" in out and "sensor_resume_grace" in out, out


async def test_sensor_trigger_does_not_hold_an_event_found_after_the_grace(
    altinn_conn: Any, caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    trigger = AltinnEventsSensorTrigger(
        resource=RES, event_types="late", poll_interval=0.05, resume_grace=0.1
    )
    with caplog.at_level(logging.INFO):
        task = asyncio.ensure_future(anext(trigger.run()))
        await asyncio.sleep(0.5)  # the grace has passed; the trigger is still waiting
        assert not task.done()
        altinn_conn.generate(RES, 1, type="late")
        event = await asyncio.wait_for(task, timeout=15)
    assert TriggerPayload.from_dict(event.payload).events[0]["type"] == "late"
    out = capsys.readouterr().out
    assert "Found 1 matching event" in out and "holding them" not in out, out


async def test_sensor_trigger_uses_the_option_when_the_argument_is_unset(
    altinn_conn: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(ENV, "0.4")
    altinn_conn.generate(RES, 1, type="a.created")
    loop = asyncio.get_running_loop()
    started = loop.time()
    await asyncio.wait_for(
        anext(AltinnEventsSensorTrigger(resource=RES, poll_interval=0.05).run()), timeout=15
    )
    assert loop.time() - started >= 0.4


def test_sensor_hands_resume_grace_to_its_trigger(altinn_conn: Any) -> None:
    def deferred_trigger(**kwargs: Any) -> AltinnEventsSensorTrigger:
        sensor = AltinnEventsSensor(
            task_id="wait", resource=RES, poll_interval=0.05, deferrable=True, **kwargs
        )
        with pytest.raises(TaskDeferred) as info:
            sensor.execute({"ti": None})
        trigger = info.value.trigger
        assert isinstance(trigger, AltinnEventsSensorTrigger)
        return trigger

    assert "resume_grace" not in deferred_trigger(after="latest").serialize()[1]
    assert deferred_trigger(after="latest", resume_grace=3).serialize()[1]["resume_grace"] == 3.0


def test_sensor_refuses_a_bad_resume_grace_at_parse_time() -> None:
    with pytest.raises(AltinnConfigError) as info:
        AltinnEventsSensor(task_id="wait", resource=RES, resume_grace="later")
    assert info.value.field == "resume_grace"


def test_the_grace_argument_is_checked_by_the_one_argument_checker() -> None:
    """``check_resume_grace`` lives in ``_arguments`` (issue 16); ``_grace`` keeps the same function."""
    from airflow_provider_altinn_events import _arguments

    assert _grace.check_resume_grace is _arguments.check_resume_grace
    assert "check_resume_grace" in _arguments.__all__

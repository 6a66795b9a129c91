"""AltinnEventsSensor against the emulator over real HTTP: poke mode, the defer hand-over, faults, tokens."""

from __future__ import annotations

import asyncio
import threading
import time
from datetime import timedelta
from typing import Any

import pytest
from airflow.sdk import PokeReturnValue

from airflow_provider_altinn_events._compat import AirflowFailException, AirflowSensorTimeout, TaskDeferred
from airflow_provider_altinn_events.exceptions import AltinnForbiddenError, AltinnServerError
from airflow_provider_altinn_events.sensors.altinn_events import AltinnEventsSensor
from airflow_provider_altinn_events.triggers.altinn_events import AltinnEventsSensorTrigger
from tests.fakes import FakeTI

RES = "urn:altinn:resource:ttd-sensor-tests"
EVENTS_PATH = "/events/api/v1/events"


def make(**kwargs: Any) -> AltinnEventsSensor:
    kwargs.setdefault("task_id", "wait")
    kwargs.setdefault("resource", RES)
    kwargs.setdefault("poll_interval", 0.05)
    return AltinnEventsSensor(**kwargs)


def listed_ids(handle: Any, count: int = 100) -> list[str]:
    token = handle.altinn_token()
    response = handle.admin.get(
        EVENTS_PATH,
        params={"resource": RES, "after": "0", "size": count},
        headers={"Authorization": f"Bearer {token}"},
    )
    response.raise_for_status()
    return [e["id"] for e in response.json()]


def later(seconds: float, action: Any, *args: Any, **kwargs: Any) -> threading.Thread:
    thread = threading.Thread(target=lambda: (time.sleep(seconds), action(*args, **kwargs)), daemon=True)
    thread.start()
    return thread


def test_poke_mode_returns_events_and_pushes_the_cursor(altinn_conn: Any) -> None:
    altinn_conn.generate(RES, 3, type="a.created")
    ti = FakeTI()
    events = make().execute({"ti": ti})
    expected = listed_ids(altinn_conn)
    assert [e["id"] for e in events] == expected
    assert ti.pushed == {"after": expected[-1]}
    assert events[0]["resource"] == RES and events[0]["specversion"] == "1.0"


def test_poke_mode_waits_until_the_event_appears(altinn_conn: Any) -> None:
    altinn_conn.generate(RES, 2, type="old")
    ti = FakeTI()
    thread = later(1.0, altinn_conn.generate, RES, 1, type="new")
    started = time.monotonic()
    events = make(after="latest", timeout=30).execute({"ti": ti})
    thread.join()
    assert time.monotonic() - started >= 0.9
    assert [e["type"] for e in events] == ["new"]
    assert ti.pushed["after"] == events[0]["id"]


def test_cursor_chaining_sees_every_event_once(altinn_conn: Any) -> None:
    altinn_conn.generate(RES, 5, type="c")
    seen: list[str] = []
    after = "0"
    for _ in range(3):
        ti = FakeTI()
        seen += [e["id"] for e in make(after=after, max_events=2).execute({"ti": ti})]
        after = ti.pushed["after"]
        if len(seen) == 5:
            break
    assert seen == listed_ids(altinn_conn)


def test_poke_mode_times_out(altinn_conn: Any) -> None:
    with pytest.raises(AirflowSensorTimeout):
        make(after="latest", timeout=0.5).execute({"ti": FakeTI()})


def test_poke_counts_transient_failures_then_recovers(altinn_conn: Any) -> None:
    altinn_conn.generate(RES, 1, type="x")
    altinn_conn.add_fault(method="GET", path=EVENTS_PATH, status=503, retry_after=0, times=5)
    sensor = make(max_consecutive_failures=2)
    assert sensor.poke({"ti": FakeTI()}) is False  # failed after the client's retries; counted, not raised
    result = sensor.poke({"ti": FakeTI()})
    assert isinstance(result, PokeReturnValue) and result.is_done and len(result.xcom_value) == 1


def test_poke_raises_when_the_budget_is_spent(altinn_conn: Any) -> None:
    altinn_conn.add_fault(method="GET", path=EVENTS_PATH, status=503, retry_after=0)
    sensor = make(max_consecutive_failures=2)
    assert sensor.poke({"ti": FakeTI()}) is False
    with pytest.raises(AltinnServerError):
        sensor.poke({"ti": FakeTI()})


def test_poke_honours_a_long_retry_after_without_spending_the_budget(altinn_conn: Any) -> None:
    # Retry-After above the client's own limit (60 s): the client gives up at once and the sensor pauses
    altinn_conn.add_fault(method="GET", path=EVENTS_PATH, status=429, retry_after=120, times=10)
    sensor = make(max_consecutive_failures=1)
    assert sensor.poke({"ti": FakeTI()}) is False  # a rate limit is not a failure: not raised
    assert sensor.poke({"ti": FakeTI()}) is False  # inside the pause: nothing sent
    assert altinn_conn.stats()["requests"][f"GET {EVENTS_PATH}"] == 1
    assert sensor._failures == 0


def test_poke_waits_a_503_retry_after_as_the_triggers_do(altinn_conn: Any) -> None:
    # a 503 that says when to come back: counted as a failure, and no poll before the pause is over
    altinn_conn.add_fault(method="GET", path=EVENTS_PATH, status=503, retry_after=120, times=10)
    sensor = make(max_consecutive_failures=5)
    assert sensor.poke({"ti": FakeTI()}) is False
    assert sensor.poke({"ti": FakeTI()}) is False  # inside the pause: nothing sent
    assert altinn_conn.stats()["requests"][f"GET {EVENTS_PATH}"] == 1
    assert sensor._failures == 1


@pytest.mark.parametrize("retry_after", ["86400000", "Fri, 31 Dec 9999 23:59:59 GMT", "inf"])
@pytest.mark.parametrize("status", [429, 503])
def test_poke_does_not_park_on_an_endless_retry_after(
    altinn_conn: Any, retry_after: str, status: int
) -> None:
    # the wait is capped (here at 0.2 s instead of 15 min, so the test can see the next poll go out)
    altinn_conn.add_fault(method="GET", path=EVENTS_PATH, status=status, retry_after=retry_after, times=1)
    altinn_conn.generate(RES, 1, type="x")
    # ("inf" is no valid Retry-After: it is ignored, and the client's own retries get past the fault)
    sensor = make(max_consecutive_failures=5)
    sensor.max_wait_seconds = 0.2
    for _ in range(5):
        result = sensor.poke({"ti": FakeTI()})
        if result:
            break
        time.sleep(0.3)
    assert isinstance(result, PokeReturnValue) and result.is_done
    assert altinn_conn.stats()["requests"][f"GET {EVENTS_PATH}"] == 2


def test_permanent_errors_fail_at_once(altinn_conn: Any) -> None:
    altinn_conn.add_fault(method="GET", path=EVENTS_PATH, status=403)
    with pytest.raises(AirflowFailException) as info:  # no Airflow retry: the next try gets the same 403
        make().execute({"ti": FakeTI()})
    assert isinstance(info.value.__cause__, AltinnForbiddenError)
    assert altinn_conn.stats()["requests"][f"GET {EVENTS_PATH}"] == 1


def test_deferrable_returns_at_once_when_events_exist(altinn_conn: Any) -> None:
    altinn_conn.generate(RES, 2, type="x")
    ti = FakeTI()
    events = make(deferrable=True).execute({"ti": ti})  # no TaskDeferred: found on the worker
    assert len(events) == 2 and ti.pushed["after"] == events[-1]["id"]


def test_deferrable_defers_with_the_resolved_cursor(altinn_conn: Any) -> None:
    altinn_conn.generate(RES, 2, type="new.x", data={"k": 0})
    altinn_conn.generate(RES, 2, type="other")  # not even read while seeking: the service filters the types
    sensor = make(
        deferrable=True,
        after="latest",
        event_types=["new.%"],
        where={"data.k": 1},
        timeout=120,
        altinn_events_conn_id="altinn_events_default",
    )
    with pytest.raises(TaskDeferred) as info:
        sensor.execute({"ti": FakeTI()})
    deferred = info.value
    assert deferred.method_name == "execute_complete"
    assert deferred.timeout == timedelta(seconds=120)
    trigger = deferred.trigger
    assert isinstance(trigger, AltinnEventsSensorTrigger)
    classpath, kwargs = trigger.serialize()
    # "latest" is resolved on the worker (the last event that passes the service's filters), not re-sought
    assert kwargs["after"] == listed_ids(altinn_conn)[1]
    assert kwargs["event_types"] == ["new.%"] and kwargs["where"] == {"data.k": 1}
    assert kwargs["altinn_events_conn_id"] == "altinn_events_default"
    assert "token" not in str(kwargs).lower()

    # the trigger (as the triggerer would rebuild it) finds the event, and execute_complete returns it
    altinn_conn.generate(RES, 1, type="new.one", data={"k": 1})
    rebuilt = AltinnEventsSensorTrigger(**kwargs)

    async def fire() -> Any:
        return await asyncio.wait_for(anext(rebuilt.run()), 15)

    event = asyncio.run(fire())
    ti = FakeTI()
    events = sensor.execute_complete({"ti": ti}, event.payload)
    assert [e["type"] for e in events] == ["new.one"]
    assert ti.pushed["after"] == events[0]["id"]


def test_deferral_restarts_before_partial_matches(altinn_conn: Any) -> None:
    # min_events=2 with one match on the worker: the trigger must see that match again, not skip it
    altinn_conn.generate(RES, 1, type="skip")
    altinn_conn.generate(RES, 1, type="hit")
    ids = listed_ids(altinn_conn)
    sensor = make(deferrable=True, where={"type": "hit"}, min_events=2)  # filtered on our side
    with pytest.raises(TaskDeferred) as info:
        sensor.execute({"ti": FakeTI()})
    assert info.value.trigger.serialize()[1]["after"] == ids[0]


def test_token_expiry_during_a_long_poke_wait(
    altinn_emulator_factory: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    handle = altinn_emulator_factory(token_lifetime=2)
    monkeypatch.setenv("AIRFLOW_CONN_ALTINN_EVENTS_DEFAULT", handle.connection_json())
    thread = later(5.0, handle.generate, RES, 1, type="late")
    events = make(after="latest", poll_interval=0.5, timeout=30).execute({"ti": FakeTI()})
    thread.join()
    assert [e["type"] for e in events] == ["late"]
    stats = handle.stats()
    assert stats["token_exchanges"] >= 2

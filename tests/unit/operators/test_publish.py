"""The publish operators' own logic: ids, argument checks, batches and failure reports.

``execute`` runs with a minimal context against the emulator over real HTTP (no Airflow database); the
same operators run inside real Airflow in ``tests/integration/test_publish_dag.py``.
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from airflow_provider_altinn_events._compat import AirflowFailException
from airflow_provider_altinn_events.exceptions import AltinnConfigError, AltinnForbiddenError
from airflow_provider_altinn_events.operators.publish import (
    AltinnEventsPublishAppEventOperator,
    AltinnEventsPublishError,
    AltinnEventsPublishOperator,
    AltinnEventsPublishRejectedError,
    event_id_for,
)
from tests.fakes import FakeTI

RESOURCE = "urn:altinn:resource:ttd-altinn-events-automated-tests"
OTHER_RESOURCE = "urn:altinn:resource:ttd-restricted"
APP_SOURCE = "https://ttd.apps.altinn.no/ttd/apps-test/instances/1337/6fb3f738-6800-4f29-9f3e-1c66862656cd"


RUN_ID = "manual__2026-05-12T08:30:00+00:00"


def context(**ti: Any) -> dict[str, Any]:
    return {"ti": FakeTI(**{"task_id": "publish", "run_id": RUN_ID, **ti})}


def make_event(number: int = 1, resource: str = RESOURCE, **extra: Any) -> dict[str, Any]:
    return {
        "type": "no.example.case.changed.v1",
        "source": f"https://cases.example.org/cases/{number}",
        "resource": resource,
        "subject": "/organisation/991825827",
        "data": {"case": number},
        **extra,
    }


def stored_ids(handle: Any, resource: str = RESOURCE) -> list[str]:
    from airflow_provider_altinn_events.hooks.altinn_events import AltinnEventsHook

    hook = AltinnEventsHook()
    try:
        return [event.id for event in hook.get_conn().iter_events(resource=resource, after="0")]
    finally:
        hook.close()


def request_count(handle: Any, key: str) -> int:
    return int(handle.stats().get("requests", {}).get(key, 0))


POST_EVENTS = "POST /events/api/v1/events"
POST_APP = "POST /events/api/v1/app"


# -- ids ---------------------------------------------------------------------------------------------------


def test_event_id_is_a_stable_uuid_per_task_instance_and_position() -> None:
    first = event_id_for("dag", "task", "run", -1, 0)
    assert first == event_id_for("dag", "task", "run", -1, 0)
    assert uuid.UUID(first).version == 5
    others = {
        event_id_for("dag2", "task", "run", -1, 0),
        event_id_for("dag", "task2", "run", -1, 0),
        event_id_for("dag", "task", "run2", -1, 0),
        event_id_for("dag", "task", "run", 0, 0),
        event_id_for("dag", "task", "run", -1, 1),
    }
    assert first not in others
    assert event_id_for("dag", "task", "run", None, 0) == first  # None map index means unmapped (-1)


# -- construction --------------------------------------------------------------------------------------------


def test_templated_fields_and_defaults() -> None:
    operator = AltinnEventsPublishOperator(task_id="p", event=make_event())
    assert set(operator.template_fields) == {"event", "altinn_events_conn_id"}
    assert operator.altinn_events_conn_id == "altinn_events_default"
    assert operator.max_concurrency == 8
    app = AltinnEventsPublishAppEventOperator(task_id="a", event={}, altinn_events_conn_id="apps")
    assert set(app.template_fields) == {"event", "altinn_events_conn_id"}


@pytest.mark.parametrize("value", [0, -1, True, 1.5, "4"])
def test_max_concurrency_must_be_a_positive_int(value: Any) -> None:
    with pytest.raises(ValueError, match="max_concurrency"):
        AltinnEventsPublishOperator(task_id="p", event=make_event(), max_concurrency=value)


def test_errors_carry_both_lists_and_permanent_ones_skip_retries() -> None:
    error = AltinnEventsPublishRejectedError(
        "x", published_ids=["a"], not_published_ids=["b"], published_indices=[0], not_published_indices=[1]
    )
    assert isinstance(error, AltinnEventsPublishError) and isinstance(error, AirflowFailException)
    assert (error.published_ids, error.not_published_ids) == (["a"], ["b"])
    assert not isinstance(
        AltinnEventsPublishError(
            "x", published_ids=[], not_published_ids=[], published_indices=[], not_published_indices=[]
        ),
        AirflowFailException,
    )


# -- validation before any request -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("event", "field"),
    [
        ([make_event(1), make_event(2, resource="urn:altinn:resource:Upper")], "event[1].resource"),
        (
            make_event(source="https://not a host/x"),
            "event.source",
        ),  # docs/contract.rst: Uri refuses the host
        ([make_event(1), make_event(2, data={1, 2})], "event[1].data"),
        ("not json", "event"),
        ([], "event"),
    ],
)
def test_invalid_input_fails_before_any_request(altinn_conn: Any, event: Any, field: str) -> None:
    operator = AltinnEventsPublishOperator(task_id="p", event=event)
    with pytest.raises(AirflowFailException, match="Nothing was published") as info:
        operator.execute(context())
    cause = info.value.__cause__
    assert isinstance(cause, AltinnConfigError) and cause.field == field
    assert altinn_conn.stats()["requests"] == {}  # not even a token grant
    assert altinn_conn.stats()["events"] == 0


def test_invalid_connection_fails_without_retries(altinn_conn: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(
        "AIRFLOW_CONN_ALTINN_EVENTS_DEFAULT", altinn_conn.connection_json(environment="nowhere")
    )
    for events in (make_event(), [make_event(1), make_event(2)]):
        with pytest.raises(
            AirflowFailException, match="connection 'altinn_events_default' is invalid"
        ) as info:
            AltinnEventsPublishOperator(task_id="p", event=events).execute(context())
        assert isinstance(info.value.__cause__, AltinnConfigError)
        assert altinn_conn.private_key_pem not in str(info.value)
    assert altinn_conn.stats()["requests"] == {}


@pytest.mark.parametrize(
    ("extra", "refused"),
    [
        ({"scopes": "altinn:events.subscribe"}, True),
        ({"scopes": "altinn:events.subscribe altinn:events.publish.admin"}, False),
        ({"scopes": "altinn:events.subscribe", "platform_access_token": "pat"}, False),
    ],
)
def test_publish_scope_is_checked_before_any_request(
    altinn_conn: Any, monkeypatch: pytest.MonkeyPatch, extra: dict[str, Any], refused: bool
) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_ALTINN_EVENTS_DEFAULT", altinn_conn.connection_json(**extra))
    operator = AltinnEventsPublishOperator(task_id="p", event=make_event())
    if not refused:  # the service decides (the emulator may still refuse): only the pre-check is tested here
        try:
            operator.execute(context())
        except AltinnEventsPublishError as error:
            assert not isinstance(error.__cause__, AltinnConfigError)
        return
    with pytest.raises(AirflowFailException, match="altinn:events.publish") as info:
        operator.execute(context())
    assert isinstance(info.value.__cause__, AltinnConfigError) and info.value.__cause__.field == "scopes"
    assert altinn_conn.stats()["requests"] == {}


def test_timed_out_events_are_listed_as_not_confirmed(
    altinn_conn: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_ALTINN_EVENTS_DEFAULT", altinn_conn.connection_json(timeout=0.3))
    altinn_conn.add_fault(method="POST", path="/events/api/v1/events", delay_ms=700, times=100)
    operator = AltinnEventsPublishOperator(
        task_id="p", event=[make_event(1), make_event(2)], max_concurrency=1
    )
    with pytest.raises(AltinnEventsPublishError) as info:
        operator.execute(context())
    error = info.value
    ids = [event_id_for("dag", "publish", RUN_ID, -1, i) for i in range(2)]
    assert error.unconfirmed_ids == ids[:1] and error.unconfirmed_indices == [0]
    assert error.not_published_ids == ids and error.not_published_indices == [0, 1]  # as before: re-send all
    assert "0 of 2 event(s); 1 not confirmed" in str(error) and "1 not published" in str(error)
    assert f"Not confirmed ids: [{ids[0]}]" in str(error)


# -- publishing ----------------------------------------------------------------------------------------------


def test_single_event_gets_defaults_and_returns_its_id(altinn_conn: Any) -> None:
    ids = AltinnEventsPublishOperator(task_id="p", event=make_event()).execute(context())
    assert ids == [event_id_for("dag", "publish", "manual__2026-05-12T08:30:00+00:00", -1, 0)]
    assert stored_ids(altinn_conn) == ids
    assert request_count(altinn_conn, POST_EVENTS) == 1


def test_explicit_ids_are_kept(altinn_conn: Any) -> None:
    ids = AltinnEventsPublishOperator(task_id="p", event=[make_event(1, id="case-1"), make_event(2)]).execute(
        context()
    )
    assert ids[0] == "case-1" and ids[1] == event_id_for("dag", "publish", RUN_ID, -1, 1)


def test_json_string_event_is_accepted(altinn_conn: Any) -> None:
    import json

    ids = AltinnEventsPublishOperator(task_id="p", event=json.dumps([make_event(1), make_event(2)])).execute(
        context()
    )
    assert len(ids) == 2 and sorted(stored_ids(altinn_conn)) == sorted(ids)


def test_batch_is_published_concurrently_once_each(altinn_conn: Any) -> None:
    events = [make_event(n) for n in range(60)]
    ids = AltinnEventsPublishOperator(task_id="p", event=events, max_concurrency=6).execute(context())
    assert len(set(ids)) == 60
    assert altinn_conn.stats()["token_grants"] == 1  # one token for the whole batch
    assert request_count(altinn_conn, POST_EVENTS) == 60
    assert sorted(stored_ids(altinn_conn)) == sorted(ids)


def test_rerun_of_the_same_task_instance_sends_the_same_ids(altinn_conn: Any) -> None:
    events = [make_event(n) for n in range(5)]
    first = AltinnEventsPublishOperator(task_id="p", event=events).execute(context(try_number=1))
    second = AltinnEventsPublishOperator(task_id="p", event=events).execute(context(try_number=2))
    assert first == second
    assert request_count(altinn_conn, POST_EVENTS) == 10
    assert sorted(stored_ids(altinn_conn)) == sorted(first)  # the emulator holds each event once
    assert altinn_conn.stats()["events"] == 5
    third = AltinnEventsPublishOperator(task_id="p", event=events).execute(context(run_id="another-run"))
    assert not set(third) & set(first)


def test_mapped_instances_get_different_ids(altinn_conn: Any) -> None:
    a = AltinnEventsPublishOperator(task_id="p", event=make_event()).execute(context(map_index=0))
    b = AltinnEventsPublishOperator(task_id="p", event=make_event()).execute(context(map_index=1))
    assert a != b and altinn_conn.stats()["events"] == 2


# -- failures ------------------------------------------------------------------------------------------------


def restrict_publishing(handle: Any, resource: str) -> None:
    """Only someone else may publish to ``resource``: the emulator then answers 403 for us."""
    handle.add_access(resource=resource, consumer="/organisation/999999999", actions=["publish"])


def test_sequential_failure_names_published_and_not_published(altinn_conn: Any) -> None:
    restrict_publishing(altinn_conn, OTHER_RESOURCE)
    events = [
        make_event(0),
        make_event(1),
        make_event(2, resource=OTHER_RESOURCE),
        make_event(3),
        make_event(4),
    ]
    operator = AltinnEventsPublishOperator(task_id="p", event=events, max_concurrency=1)
    with pytest.raises(AltinnEventsPublishRejectedError) as info:
        operator.execute(context())
    error = info.value
    ids = [event_id_for("dag", "publish", RUN_ID, -1, n) for n in range(5)]
    assert error.published_ids == ids[:2]
    assert error.not_published_ids == ids[2:]
    assert (error.published_indices, error.not_published_indices) == ([0, 1], [2, 3, 4])
    assert isinstance(error.__cause__, AltinnForbiddenError)
    message = str(error)
    assert "published 2 of 5" in message and ids[2] in message and ids[4] in message
    assert "altinn:events.publish" in message  # the 403 hint
    assert sorted(stored_ids(altinn_conn)) == sorted(ids[:2])
    assert request_count(altinn_conn, POST_EVENTS) == 3  # stopped at the failure


def test_concurrent_failure_accounts_for_every_event(altinn_conn: Any) -> None:
    restrict_publishing(altinn_conn, OTHER_RESOURCE)
    events = [make_event(n) for n in range(20)] + [make_event(20, resource=OTHER_RESOURCE)]
    events += [make_event(n) for n in range(21, 40)]
    with pytest.raises(AltinnEventsPublishRejectedError) as info:
        AltinnEventsPublishOperator(task_id="p", event=events, max_concurrency=4).execute(context())
    error = info.value
    ids = [event_id_for("dag", "publish", RUN_ID, -1, n) for n in range(40)]
    assert sorted(error.published_ids + error.not_published_ids) == sorted(ids)
    assert ids[20] in error.not_published_ids
    assert 20 <= len(error.published_ids) < 40
    assert sorted(stored_ids(altinn_conn)) == sorted(error.published_ids)


def test_non_permanent_failure_lets_airflow_retry(altinn_conn: Any) -> None:
    altinn_conn.add_fault(method="POST", path="/events/api/v1/events", status=409, times=1)
    operator = AltinnEventsPublishOperator(
        task_id="p", event=[make_event(1), make_event(2)], max_concurrency=1
    )
    with pytest.raises(AltinnEventsPublishError) as info:
        operator.execute(context())
    assert not isinstance(info.value, AirflowFailException)
    assert info.value.published_ids == [] and len(info.value.not_published_ids) == 2
    assert operator.execute(context()) == info.value.not_published_ids  # the retry, same ids
    assert altinn_conn.stats()["events"] == 2


# -- app events ----------------------------------------------------------------------------------------------


def app_event(**extra: Any) -> dict[str, Any]:
    return {"source": APP_SOURCE, "type": "app.instance.created", "subject": "/party/1337", **extra}


def use_platform_token(handle: Any, monkeypatch: pytest.MonkeyPatch, token: str) -> None:
    monkeypatch.setenv(
        "AIRFLOW_CONN_ALTINN_EVENTS_DEFAULT", handle.connection_json(platform_access_token=token)
    )


def test_app_events_with_a_platform_access_token(altinn_conn: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    use_platform_token(altinn_conn, monkeypatch, altinn_conn.platform_access_token("ttd", "apps-test"))
    ids = AltinnEventsPublishAppEventOperator(task_id="a", event=[app_event(), app_event()]).execute(
        context()
    )
    assert len(set(ids)) == 2 and all(uuid.UUID(i) for i in ids)
    assert sorted(stored_ids(altinn_conn, "urn:altinn:resource:app_ttd_apps-test")) == sorted(ids)


def test_app_event_without_a_platform_access_token(altinn_conn: Any) -> None:
    with pytest.raises(AltinnEventsPublishRejectedError, match="platform_access_token") as info:
        AltinnEventsPublishAppEventOperator(task_id="a", event=app_event()).execute(context())
    assert info.value.not_published_indices == [0]
    assert request_count(altinn_conn, POST_APP) == 0


def test_app_event_with_a_token_altinn_refuses_is_403(
    altinn_conn: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    use_platform_token(altinn_conn, monkeypatch, "not-a-platform-access-token")
    with pytest.raises(AltinnEventsPublishRejectedError, match="platform access token") as info:
        AltinnEventsPublishAppEventOperator(task_id="a", event=app_event()).execute(context())
    assert isinstance(info.value.__cause__, AltinnForbiddenError)
    assert request_count(altinn_conn, POST_APP) == 1


def test_app_event_fields_are_checked_before_any_request(altinn_conn: Any) -> None:
    with pytest.raises(AirflowFailException, match="does not take: id") as info:
        AltinnEventsPublishAppEventOperator(task_id="a", event=app_event(id="mine")).execute(context())
    assert isinstance(info.value.__cause__, AltinnConfigError) and info.value.__cause__.field == "event.id"
    assert altinn_conn.stats()["requests"] == {}


# -- the bounded-concurrency loop on its own ---------------------------------------------------------------------


def test_concurrency_is_bounded_and_every_item_sent_once() -> None:
    import asyncio

    from airflow_provider_altinn_events.operators.publish import _publish_concurrently

    in_flight = peak = 0
    sent: list[int] = []

    async def send(item: int) -> str:
        nonlocal in_flight, peak
        in_flight += 1
        peak = max(peak, in_flight)
        await asyncio.sleep(0.001 * (item % 3))
        sent.append(item)
        in_flight -= 1
        return f"id-{item}"

    outcome = asyncio.run(_publish_concurrently(list(range(200)), send, 7))
    assert peak == 7
    assert sorted(sent) == list(range(200))
    assert outcome.results == {n: f"id-{n}" for n in range(200)} and not outcome.errors


def test_concurrent_loop_stops_starting_requests_after_a_failure() -> None:
    import asyncio

    from airflow_provider_altinn_events.operators.publish import _publish_concurrently

    started: list[int] = []

    async def send(item: int) -> None:
        started.append(item)
        await asyncio.sleep(0.001)
        if item == 10:
            raise RuntimeError("boom")

    outcome = asyncio.run(_publish_concurrently(list(range(100)), send, 4))
    assert list(outcome.errors) == [10]
    assert len(started) < 20  # the rest were never started
    assert set(outcome.results) == set(started) - {10}

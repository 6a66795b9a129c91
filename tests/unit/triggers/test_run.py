"""The triggers' run() against the emulator over real HTTP (no patching): waits, filters, faults, tokens,
the shared client, and the watcher's cursor in a (fake) asset state store."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from airflow.triggers.base import TriggerEvent

from airflow_provider_altinn_events._payloads import TriggerPayload, TriggerStatus
from airflow_provider_altinn_events.triggers._runtime import _CLIENTS
from airflow_provider_altinn_events.triggers.altinn_events import (
    AltinnEventsSensorTrigger,
    AltinnEventsWatcherTrigger,
)
from tests.fakes import FakeStore

RES = "urn:altinn:resource:ttd-trigger-tests"
EVENTS_PATH = "/events/api/v1/events"
TIMEOUT = 15


async def first(gen: AsyncIterator[TriggerEvent], timeout: float = TIMEOUT) -> TriggerPayload:
    event = await asyncio.wait_for(anext(gen), timeout=timeout)
    return TriggerPayload.from_dict(event.payload)


def ids(payload: TriggerPayload) -> list[str]:
    return payload.event_ids


def listed_ids(handle: Any, count: int) -> list[str]:
    """The ids the emulator holds for RES, in order (read with the admin client, not the code under test)."""
    token = handle.altinn_token()
    response = handle.admin.get(
        EVENTS_PATH,
        params={"resource": RES, "after": "0", "size": count},
        headers={"Authorization": f"Bearer {token}"},
    )
    response.raise_for_status()
    return [e["id"] for e in response.json()]


# ---------------------------------------------------------------------------------------------------------
# the sensor trigger
# ---------------------------------------------------------------------------------------------------------


async def test_sensor_trigger_fires_on_existing_events(altinn_conn: Any) -> None:
    altinn_conn.generate(RES, 3, type="a.created")
    payload = await first(AltinnEventsSensorTrigger(resource=RES, poll_interval=0.001).run())
    assert payload.status is TriggerStatus.SUCCESS and payload.resource == RES
    assert ids(payload) == listed_ids(altinn_conn, 3)
    assert payload.after == ids(payload)[-1]
    assert payload.events[0]["type"] == "a.created" and payload.events[0]["resource"] == RES


async def test_sensor_trigger_waits_for_a_new_event(altinn_conn: Any) -> None:
    altinn_conn.generate(RES, 2, type="old")
    trigger = AltinnEventsSensorTrigger(resource=RES, after="latest", poll_interval=0.05)
    task = asyncio.ensure_future(first(trigger.run()))
    await asyncio.sleep(1.0)
    assert not task.done()  # nothing new yet: it keeps polling
    polls_before = altinn_conn.stats()["requests"].get(f"GET {EVENTS_PATH}", 0)
    assert polls_before >= 3
    await asyncio.to_thread(altinn_conn.generate, RES, 1, type="new")
    payload = await asyncio.wait_for(task, TIMEOUT)
    assert [e["type"] for e in payload.events] == ["new"]


async def test_sensor_trigger_min_max_and_filters(altinn_conn: Any) -> None:
    altinn_conn.generate(RES, 2, type="app.instance.created", data={"status": "open"})
    altinn_conn.generate(RES, 3, type="app.instance.created", data={"status": "closed"})
    altinn_conn.generate(RES, 2, type="other.type", data={"status": "closed"})
    all_ids = listed_ids(altinn_conn, 10)
    trigger = AltinnEventsSensorTrigger(
        resource=RES,
        event_types=["app.instance.%"],
        where={"data.status": "closed"},
        min_events=2,
        max_events=2,
        poll_interval=0.001,
    )
    payload = await first(trigger.run())
    assert ids(payload) == all_ids[2:4]
    assert payload.after == all_ids[3]  # stops before the third match: nothing skipped
    rest = await first(
        AltinnEventsSensorTrigger(
            resource=RES,
            event_types=["app.instance.%"],
            where={"data.status": "closed"},
            after=payload.after,
            poll_interval=0.001,
        ).run()
    )
    assert ids(rest) == all_ids[4:5]


async def test_sensor_trigger_permanent_error_is_a_typed_payload(altinn_conn: Any) -> None:
    altinn_conn.add_fault(method="GET", path=EVENTS_PATH, status=403)
    payload = await first(AltinnEventsSensorTrigger(resource=RES, poll_interval=0.001).run())
    assert payload.status is TriggerStatus.ERROR
    assert payload.error is not None and payload.error.status_code == 403 and not payload.error.retryable
    assert payload.error.type == "AltinnForbiddenError"
    assert altinn_conn.stats()["requests"][f"GET {EVENTS_PATH}"] == 1  # not retried


async def test_sensor_trigger_survives_a_fault_burst_within_its_budget(altinn_conn: Any) -> None:
    altinn_conn.generate(RES, 1, type="x")
    # 5 x 503 = one poll failing after the client's own retries; the next poll succeeds
    altinn_conn.add_fault(method="GET", path=EVENTS_PATH, status=503, retry_after=0, times=5)
    payload = await first(
        AltinnEventsSensorTrigger(resource=RES, poll_interval=0.001, max_consecutive_failures=2).run()
    )
    assert payload.status is TriggerStatus.SUCCESS and len(payload.events) == 1


async def test_sensor_trigger_gives_up_when_the_budget_is_spent(altinn_conn: Any) -> None:
    altinn_conn.generate(RES, 1, type="x")
    altinn_conn.add_fault(method="GET", path=EVENTS_PATH, status=503, retry_after=0)
    payload = await first(
        AltinnEventsSensorTrigger(resource=RES, poll_interval=0.001, max_consecutive_failures=2).run()
    )
    assert payload.status is TriggerStatus.ERROR
    assert payload.error is not None and payload.error.status_code == 503 and payload.error.retryable
    assert payload.after == "0"


async def test_token_expiry_during_a_long_wait(
    altinn_emulator_factory: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    handle = altinn_emulator_factory(token_lifetime=2)
    monkeypatch.setenv("AIRFLOW_CONN_ALTINN_EVENTS_DEFAULT", handle.connection_json())
    trigger = AltinnEventsSensorTrigger(resource=RES, after="latest", poll_interval=0.5)
    task = asyncio.ensure_future(first(trigger.run(), timeout=30))
    await asyncio.sleep(5)  # more than two token lifetimes
    assert not task.done()
    await asyncio.to_thread(handle.generate, RES, 1, type="late")
    payload = await asyncio.wait_for(task, 30)
    assert payload.status is TriggerStatus.SUCCESS and [e["type"] for e in payload.events] == ["late"]
    stats = handle.stats()
    assert stats["token_exchanges"] >= 2  # the client fetched new tokens by itself


async def test_triggers_share_one_client_per_connection(altinn_conn: Any) -> None:
    altinn_conn.generate(RES, 1, type="x")
    triggers = [AltinnEventsSensorTrigger(resource=RES, poll_interval=0.05, min_events=2) for _ in range(5)]
    tasks = [asyncio.ensure_future(first(t.run())) for t in triggers]
    await asyncio.sleep(0.5)
    assert len(_CLIENTS.entries) == 1
    (entry,) = _CLIENTS.entries.values()
    assert entry.users == 5
    await asyncio.to_thread(altinn_conn.generate, RES, 1, type="x")
    payloads = await asyncio.wait_for(asyncio.gather(*tasks), TIMEOUT)
    assert all(len(p.events) == 2 for p in payloads)
    assert altinn_conn.stats()["token_exchanges"] == 1  # one token for all five
    assert _CLIENTS.entries == {}  # the last user closed it


# ---------------------------------------------------------------------------------------------------------
# the watcher trigger
# ---------------------------------------------------------------------------------------------------------


async def test_watcher_batches_per_poll_and_writes_the_cursor_after_the_yield(altinn_conn: Any) -> None:
    altinn_conn.generate(RES, 3, type="w")
    store = FakeStore()
    trigger = AltinnEventsWatcherTrigger(
        resource=RES, after="0", poll_interval=0.001, max_events_per_trigger_event=2
    )
    trigger.asset_state_store = store
    key = trigger.cursor_key
    all_ids = listed_ids(altinn_conn, 3)
    gen = trigger.run()
    try:
        batch1 = await first(gen)
        assert batch1.status is TriggerStatus.EVENTS and ids(batch1) == all_ids[:2]
        assert store.writes == []  # suspended at the yield: nothing written yet
        batch2 = await first(gen)
        assert store.writes[0] == (key, all_ids[1])  # written right after the first yield
        assert ids(batch2) == all_ids[2:]
        assert batch2.after == all_ids[2]
    finally:
        await gen.aclose()


async def test_watcher_resumes_after_a_restart(altinn_conn: Any) -> None:
    altinn_conn.generate(RES, 2, type="w")
    store = FakeStore()

    def make() -> AltinnEventsWatcherTrigger:
        trigger = AltinnEventsWatcherTrigger(resource=RES, after="0", poll_interval=0.001)
        trigger.asset_state_store = store
        return trigger

    gen = make().run()
    batch1 = await first(gen)
    altinn_conn.generate(RES, 1, type="w")
    batch2 = await first(gen)  # the cursor of batch 1 is stored now
    await gen.aclose()  # "crash" while suspended at the second yield: its cursor was never stored
    assert store.values[make().cursor_key] == batch1.after

    restarted = make().run()
    try:
        again = await first(restarted)
        assert ids(again) == ids(batch2)  # the documented at-least-once window: re-emitted, not lost
        altinn_conn.generate(RES, 1, type="w")
        after_restart = await first(restarted)
        assert len(after_restart.events) == 1 and after_restart.event_ids[0] not in ids(batch1) + ids(batch2)
    finally:
        await restarted.aclose()
    assert store.values[make().cursor_key] == again.after


async def test_watcher_latest_skips_history_and_stores_the_end_at_once(altinn_conn: Any) -> None:
    altinn_conn.generate(RES, 5, type="old")
    store = FakeStore()
    trigger = AltinnEventsWatcherTrigger(resource=RES, poll_interval=0.05)  # after="latest" by default
    trigger.asset_state_store = store
    gen = trigger.run()
    try:
        task = asyncio.ensure_future(first(gen))
        for _ in range(
            200
        ):  # until the first write (not a fixed sleep: opening the client takes ~0.4 s on 3.2)
            if store.values or task.done():
                break
            await asyncio.sleep(0.05)
        assert not task.done()
        end = listed_ids(altinn_conn, 5)[-1]
        assert store.values == {trigger.cursor_key: end}  # a restart now would not re-seek past new events
        await asyncio.to_thread(altinn_conn.generate, RES, 1, type="new")
        payload = await asyncio.wait_for(task, TIMEOUT)
        assert [e["type"] for e in payload.events] == ["new"]
    finally:
        await gen.aclose()


async def test_watcher_without_a_store_keeps_the_cursor_in_memory(
    altinn_conn: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    altinn_conn.generate(RES, 1, type="w")
    trigger = AltinnEventsWatcherTrigger(resource=RES, after="0", poll_interval=0.001)
    assert getattr(trigger, "asset_state_store", None) is None  # (no such attribute before Airflow 3.3)
    gen = trigger.run()
    try:
        payload = await first(gen)
        altinn_conn.generate(RES, 1, type="w")
        second = await first(gen)
        assert ids(payload) != ids(second)  # moved on in memory
    finally:
        await gen.aclose()
    out = capsys.readouterr()
    assert (out.out + out.err).count("the cursor is kept in memory only") == 1  # said once


async def test_watcher_failure_budget_resets_after_each_good_poll(altinn_conn: Any) -> None:
    altinn_conn.generate(RES, 1, type="w")
    trigger = AltinnEventsWatcherTrigger(
        resource=RES, after="0", poll_interval=0.001, max_consecutive_failures=2
    )
    gen = trigger.run()
    try:
        altinn_conn.add_fault(method="GET", path=EVENTS_PATH, status=503, retry_after=0, times=5)
        assert len((await first(gen)).events) == 1  # one failed poll, then a good one
        altinn_conn.add_fault(method="GET", path=EVENTS_PATH, status=503, retry_after=0, times=5)
        altinn_conn.generate(RES, 1, type="w")
        assert len((await first(gen)).events) == 1  # would have raised had the count not been reset
    finally:
        await gen.aclose()


async def test_watcher_raises_when_the_budget_is_spent(altinn_conn: Any) -> None:
    from airflow_provider_altinn_events.exceptions import AltinnServerError

    altinn_conn.add_fault(method="GET", path=EVENTS_PATH, status=503, retry_after=0)
    trigger = AltinnEventsWatcherTrigger(
        resource=RES, after="0", poll_interval=0.001, max_consecutive_failures=2
    )
    with pytest.raises(AltinnServerError):
        await asyncio.wait_for(anext(trigger.run()), TIMEOUT)
    assert _CLIENTS.entries == {}


async def test_watcher_filters_on_our_side(altinn_conn: Any) -> None:
    altinn_conn.generate(RES, 2, type="w", source="https://a.example/1")
    altinn_conn.generate(RES, 2, type="w", source="https://b.example/2")
    trigger = AltinnEventsWatcherTrigger(
        resource=RES, after="0", poll_interval=0.001, source="https://b.example/%"
    )
    gen = trigger.run()
    try:
        payload = await first(gen)
        assert [e["source"] for e in payload.events] == ["https://b.example/2"] * 2
    finally:
        await gen.aclose()


async def test_message_queue_trigger_runs_the_watcher(altinn_conn: Any) -> None:
    from airflow.providers.common.messaging.triggers.msg_queue import MessageQueueTrigger

    altinn_conn.generate(RES, 2, type="mq")
    trigger = MessageQueueTrigger(scheme="altinn", resource=RES, after="0", poll_interval=0.001)
    gen = trigger.run()
    try:
        payload = await first(gen)
        assert payload.status is TriggerStatus.EVENTS and len(payload.events) == 2
    finally:
        await gen.aclose()


# ---------------------------------------------------------------------------------------------------------
# scopes and rate limits
# ---------------------------------------------------------------------------------------------------------


def _set_scopes(handle: Any, monkeypatch: pytest.MonkeyPatch, scopes: str) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_ALTINN_EVENTS_DEFAULT", handle.connection_json(scopes=scopes))


async def test_sensor_trigger_without_the_subscribe_scope_reports_it_before_any_request(
    altinn_conn: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    _set_scopes(altinn_conn, monkeypatch, "altinn:events.publish")
    before = altinn_conn.stats()["requests"]
    payload = await first(AltinnEventsSensorTrigger(resource=RES, poll_interval=0.001).run())
    assert payload.status is TriggerStatus.ERROR and payload.error is not None
    assert payload.error.type == "AltinnConfigError" and "altinn:events.subscribe" in payload.error.message
    assert altinn_conn.stats()["requests"] == before


async def test_watcher_without_the_subscribe_scope_raises_before_any_request(
    altinn_conn: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from airflow_provider_altinn_events.exceptions import AltinnConfigError

    _set_scopes(altinn_conn, monkeypatch, "altinn:events.publish")
    before = altinn_conn.stats()["requests"]
    with pytest.raises(AltinnConfigError, match="altinn:events.subscribe") as info:
        await first(AltinnEventsWatcherTrigger(resource=RES, after="0", poll_interval=0.001).run())
    assert info.value.field == "scopes"
    assert altinn_conn.stats()["requests"] == before


async def test_rate_limits_do_not_spend_the_failure_budget(altinn_conn: Any) -> None:
    altinn_conn.generate(RES, 1, type="x")
    # more 429s than the client's own attempts: the trigger sees several rate-limited polls in a row
    altinn_conn.add_fault(method="GET", path=EVENTS_PATH, status=429, retry_after=0, times=12)
    payload = await first(
        AltinnEventsSensorTrigger(resource=RES, poll_interval=0.001, max_consecutive_failures=1).run()
    )
    assert payload.status is TriggerStatus.SUCCESS and len(payload.events) == 1
    assert altinn_conn.stats()["requests"][f"GET {EVENTS_PATH}"] == 13

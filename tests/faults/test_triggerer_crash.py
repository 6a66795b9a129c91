"""The one documented duplicate window: the triggerer dies between a watcher's yield and its cursor write.

The watcher stores its cursor right after each yield (Airflow's asset state store has no acknowledgement).
If the triggerer dies in between, the restarted watcher starts from the previous cursor and emits that one
batch again (at least once; consumers dedupe by event id, as the event-driven guide says). Nothing else is
repeated and nothing is lost. The summary counts these duplicates as documented.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator
from typing import Any, cast

import pytest

from airflow_provider_altinn_events._payloads import TriggerPayload
from airflow_provider_altinn_events.emulator.handle import EmulatorHandle
from airflow_provider_altinn_events.triggers.altinn_events import AltinnEventsWatcherTrigger
from tests.faults.ledger import FaultLedger
from tests.faults.support import CONN_ID, FakeStore, connection_env, new_resource, run_watcher, stored_ids

BATCH = 20
FIRST = 70
LATER = 15


async def test_crash_between_yield_and_cursor_write_repeats_one_batch(
    altinn_emulator: EmulatorHandle, monkeypatch: pytest.MonkeyPatch, fault_results: FaultLedger
) -> None:
    monkeypatch.setenv(*connection_env(altinn_emulator))
    resource = new_resource("crash")
    store = FakeStore()
    await asyncio.to_thread(altinn_emulator.generate, resource, FIRST, type="a")

    # a clean stretch: two batches, each followed by its cursor write (the triggerer resumes after a yield)
    first = await run_watcher(resource, store=store, batch=BATCH, want=lambda ids: len(ids) >= 2 * BATCH)
    assert first.error is None and len(first.ids) == 2 * BATCH

    # the crash: the watcher yields its third batch and the process dies before the cursor is written
    trigger = AltinnEventsWatcherTrigger(
        resource=resource,
        after="0",
        poll_interval=0.1,
        max_events_per_trigger_event=BATCH,
        altinn_events_conn_id=CONN_ID,
    )
    trigger.asset_state_store = store
    gen = cast(AsyncGenerator[Any, None], trigger.run())
    crashed = TriggerPayload.from_dict((await asyncio.wait_for(anext(gen), 30)).payload).event_ids
    await gen.aclose()  # no resume after the yield: the cursor of this batch is never written
    assert crashed and store.values[trigger.cursor_key] == first.after

    # a new triggerer: the watcher resumes from the stored cursor; more events arrive meanwhile
    await asyncio.to_thread(altinn_emulator.generate, resource, LATER, type="a")
    total = FIRST + LATER
    restarted = await run_watcher(
        resource, store=store, batch=BATCH, want=lambda ids: len(set(first.ids + crashed + ids)) >= total
    )
    assert restarted.error is None
    seen = first.ids + crashed + restarted.ids
    expected = stored_ids(altinn_emulator, resource)
    run = fault_results.record(
        scenario="triggerer dies between yield and cursor",
        component="watcher trigger",
        faults_injected=1,
        completed=True,
        outcome="completed, last batch again",
        expected=expected,
        seen=seen,
        documented_duplicates=len(crashed),
    )
    assert run.lost == 0
    assert run.duplicated == len(crashed)  # only the batch in flight at the crash came twice
    assert restarted.ids[: len(crashed)] == crashed
    assert list(dict.fromkeys(seen)) == expected  # first delivery of every event in service order

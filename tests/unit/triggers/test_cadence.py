"""The triggers' poll schedule: wake-ups on a shared tick grid, at a fixed rate, never bunched after a slow poll.

Pure scheduling, so a loop stand-in with a settable clock records where each alarm is set; one test runs
the real event loop to check that alarms on the same grid point wake in the same loop pass.
"""

from __future__ import annotations

import asyncio
import math
import random
from typing import Any

import pytest

from airflow_provider_altinn_events.triggers._cadence import MAX_TICK, MIN_TICK, Cadence, tick_for


class ClockLoop:
    """Just what ``Cadence`` uses of a loop: ``time``, ``create_future`` and ``call_at`` (recorded)."""

    def __init__(self, now: float = 1000.0) -> None:
        self.now = now
        self.alarms: list[float] = []

    def time(self) -> float:
        return self.now

    def create_future(self) -> Any:
        return object()

    def call_at(self, when: float, callback: Any, *args: Any) -> None:
        self.alarms.append(when)


def on_grid(value: float, tick: float) -> bool:
    return math.isclose(value / tick, round(value / tick), abs_tol=1e-9)


@pytest.mark.parametrize(
    ("interval", "tick"),
    [
        (0.1, MIN_TICK),
        (0.5, MIN_TICK),
        (2.0, 0.2),
        (5.0, 0.5),
        (10.0, MAX_TICK),
        (30.0, MAX_TICK),
        (3600.0, 1.0),
    ],
)
def test_tick_is_a_tenth_of_the_interval_within_bounds(interval: float, tick: float) -> None:
    assert tick_for(interval) == pytest.approx(tick)


def test_first_poll_is_on_the_grid_within_one_interval_and_spread() -> None:
    random.seed(7)
    firsts = []
    for _ in range(200):
        loop = ClockLoop(now=1000.03)
        cadence = Cadence(5.0, loop)  # type: ignore[arg-type]
        cadence.first()
        (when,) = loop.alarms
        assert 1000.03 <= when <= 1000.03 + 5.0 + cadence.tick
        assert on_grid(when, cadence.tick)
        firsts.append(when)
    assert len(set(firsts)) >= 9  # spread over the ten ticks of the interval, not bunched


def test_next_polls_keep_the_interval_when_polls_are_fast() -> None:
    loop = ClockLoop(now=1000.0)
    cadence = Cadence(5.0, loop)  # type: ignore[arg-type]
    cadence.first()
    for _ in range(20):
        loop.now = loop.alarms[-1] + 0.037  # woke on time; the poll took 37 ms
        cadence.next()
    gaps = [b - a for a, b in zip(loop.alarms, loop.alarms[1:], strict=False)]
    assert all(gap == pytest.approx(5.0) for gap in gaps)  # fixed rate: the poll's own time is not added
    assert all(on_grid(when, cadence.tick) for when in loop.alarms)


def test_a_slow_poll_is_not_followed_by_another_at_once() -> None:
    loop = ClockLoop(now=1000.0)
    cadence = Cadence(5.0, loop)  # type: ignore[arg-type]
    cadence.first()
    loop.now = loop.alarms[-1] + 31.0  # retries or a rate limit waited out inside the poll
    cadence.next()
    assert loop.alarms[-1] >= loop.now + 2.5  # at least half an interval from now
    assert on_grid(loop.alarms[-1], cadence.tick)


def test_at_least_pushes_the_next_poll_out() -> None:
    loop = ClockLoop(now=1000.0)
    cadence = Cadence(1.0, loop)  # type: ignore[arg-type]
    cadence.first()
    loop.now = loop.alarms[-1]
    cadence.next(at_least=2.0)  # the watcher's settle time after a yield
    assert loop.alarms[-1] >= loop.now + 2.0
    assert loop.alarms[-1] - loop.now < 2.0 + cadence.tick + 1e-9


async def test_alarms_on_one_grid_point_wake_in_the_same_loop_pass() -> None:
    loop = asyncio.get_running_loop()
    cadences = [Cadence(0.5, loop) for _ in range(40)]  # tick 50 ms: 40 polls over ten ticks
    random.seed(3)
    futures = [cadence.first() for cadence in cadences]
    order: list[tuple[float, int]] = []
    passes = 0

    def count_pass() -> None:  # one callback per loop pass while waiting
        nonlocal passes
        passes += 1
        if not all(future.done() for future in futures):
            loop.call_soon(count_pass)

    def woke(index: int, _future: Any) -> None:
        order.append((cadences[index].due, passes))

    for index, future in enumerate(futures):
        future.add_done_callback(lambda f, i=index: woke(i, f))
    loop.call_soon(count_pass)
    await asyncio.wait_for(asyncio.gather(*futures), timeout=5)
    by_due: dict[float, set[int]] = {}
    for due, seen_in_pass in order:
        by_due.setdefault(due, set()).add(seen_in_pass)
    assert len(by_due) < len(cadences)  # several triggers share a grid point
    assert all(len(passes_seen) == 1 for passes_seen in by_due.values())  # and wake together


async def test_a_cancelled_wait_does_not_fail_when_its_alarm_fires() -> None:
    loop = asyncio.get_running_loop()
    cadence = Cadence(0.1, loop)
    waiting = asyncio.ensure_future(cadence.first())
    await asyncio.sleep(0)
    waiting.cancel()
    handler_errors: list[Any] = []
    loop.set_exception_handler(lambda _loop, context: handler_errors.append(context))
    try:
        await asyncio.sleep(0.25)  # past the alarm
    finally:
        loop.set_exception_handler(None)
    assert waiting.cancelled()
    assert handler_errors == []

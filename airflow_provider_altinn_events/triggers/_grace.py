"""The sensor trigger's resume grace: an event found right after the task deferred is held back a little.

Why (docs/guides/sensor.rst, "Troubleshooting"): when a deferrable task defers, its worker process exits
and the executor reports that exit to the scheduler as a ``success`` of the same try. If the trigger fires
and the scheduler re-queues the task before it has processed that report, Airflow's scheduler (3.0 to
3.3.2 at least; apache/airflow#66374, #67287, #71580, #72716) takes the stale ``success`` for a task killed
behind its back ("finished with state success, but the task instance's state attribute is queued") and
fails the try. A trigger that fires no sooner than ``grace`` seconds after it started leaves the executor
that long to report the exit while the task is still deferred, where the report is harmless.

The grace costs nothing when the event is found later than that, and at most ``grace`` seconds when it is
found at once. It is measured from the start of ``run()``, which is after the deferral, so it is never
shorter than intended. The argument and the option are checked by ``_arguments.check_resume_grace``, the one
argument checker (re-exported here). Only the standard library and Airflow's configuration are used; no I/O.
"""

from __future__ import annotations

import asyncio
from typing import Any

from airflow_provider_altinn_events._arguments import check_resume_grace

__all__ = [
    "CONFIG_KEY",
    "CONFIG_SECTION",
    "DEFAULT_RESUME_GRACE",
    "check_resume_grace",
    "configured_resume_grace",
    "hold",
    "resume_deadline",
]

#: Seconds a sensor trigger holds an event it found that soon after it started (when neither the argument nor
#: the configuration says otherwise). Covers an executor that reports a worker's exit several seconds late,
#: as seen on a busy 2-core machine (docs/performance.rst).
DEFAULT_RESUME_GRACE = 10.0
CONFIG_SECTION = "altinn_events"
CONFIG_KEY = "sensor_resume_grace"
_OPTION = f"[{CONFIG_SECTION}] {CONFIG_KEY}"


def configured_resume_grace() -> float:
    """The grace from ``[altinn_events] sensor_resume_grace`` (read where the trigger runs, the triggerer),
    or :data:`DEFAULT_RESUME_GRACE`.

    :raises AltinnConfigError: the option is set to something else than seconds >= 0.
    """
    from airflow_provider_altinn_events._compat import conf

    raw = conf.get(CONFIG_SECTION, CONFIG_KEY, fallback=None)
    if raw is None or not str(raw).strip():
        return DEFAULT_RESUME_GRACE
    seconds = check_resume_grace(str(raw).strip(), field=_OPTION)
    assert seconds is not None  # a non-empty string is never None
    return seconds


def resume_deadline(grace: float | None, loop: asyncio.AbstractEventLoop | None = None) -> float:
    """The loop time before which a found event is held: now plus ``grace`` (``None``: the configured one)."""
    seconds = configured_resume_grace() if grace is None else grace
    return (loop or asyncio.get_running_loop()).time() + seconds


def _wake(future: asyncio.Future[None]) -> None:
    if not future.done():  # cancelled meanwhile: the trigger was stopped
        future.set_result(None)


def hold(deadline: float, log: Any, resource: str) -> asyncio.Future[None]:
    """A future that resolves at ``deadline`` (at once when it has passed); logs the hold when there is one.

    A plain future and ``call_at``, not a coroutine, like ``_cadence.Cadence``: no extra frame per trigger.
    """
    loop = asyncio.get_running_loop()
    future: asyncio.Future[None] = loop.create_future()
    remaining = deadline - loop.time()
    if remaining <= 0:
        future.set_result(None)
        return future
    log.info(
        "Found the events of %s right after deferring; holding them %.1f s so the executor can report the "
        "deferred try's exit first (%s, see docs/guides/sensor.rst)",
        resource,
        remaining,
        _OPTION,
    )
    loop.call_at(deadline, _wake, future)
    return future

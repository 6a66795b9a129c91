"""Test-only: a LocalExecutor whose reports of finished workloads reach the scheduler late.

Used by ``test_defer_race.py`` (and only there, through ``AIRFLOW__CORE__EXECUTOR``) to widen the window of
Airflow's stale-executor-event race deterministically. On a busy machine the report of a worker's exit
after ``defer()`` (a ``success`` for the same try) can reach the scheduler's ``process_executor_events``
seconds after the task deferred (apache/airflow#67287, #72716; the run in issue 18 saw more than 4 s).
Holding every report for ``ALTINN_E2E_EXIT_REPORT_DELAY`` seconds before ``change_state`` hands it to the
scheduler does the same on purpose: nothing else about the executor changes.
"""

from __future__ import annotations

import os
import time
from collections import deque
from typing import Any

from airflow.executors.local_executor import LocalExecutor

DELAY_ENV = "ALTINN_E2E_EXIT_REPORT_DELAY"


class SlowExitReportsLocalExecutor(LocalExecutor):  # type: ignore[misc]  # Airflow's classes are untyped
    """:class:`LocalExecutor` that passes each worker result on ``ALTINN_E2E_EXIT_REPORT_DELAY`` s late."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.report_delay = float(os.environ.get(DELAY_ENV, "0"))
        self._late: deque[tuple[float, Any, Any]] = deque()

    def _read_results(self) -> None:
        now = time.monotonic()
        while not self.result_queue.empty():
            key, state, _error = self.result_queue.get()
            self._late.append((now + self.report_delay, key, state))
        while self._late and self._late[0][0] <= now:
            _, key, state = self._late.popleft()
            self.log.info("Passing on a worker result %.1f s late: %s %s", self.report_delay, key, state)
            self.change_state(key, state)

    def end(self) -> None:
        super().end()
        while self._late:  # shutting down: hand on whatever is still held
            _, key, state = self._late.popleft()
            self.change_state(key, state)

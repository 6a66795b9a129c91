"""The fault suite's results collector: what each run met, how it ended, and what happened to every event.

Every fault test records one row; ``make faults`` prints the table at the end of the run (the
``pytest_terminal_summary`` hook in ``tests/faults/conftest.py``). Any test may use it, through the
``fault_results`` fixture or by importing :data:`LEDGER`; it is optional: a test that records nothing is
simply not in the table.

Counting rules, the same for every component:

* *expected*: the distinct event ids the run had to deliver (or publish);
* *seen*: deliveries the consumer got, duplicates included;
* *duplicated*: ``seen`` minus the distinct ids among them; *documented* duplicates (an at-least-once window
  the docs describe) are reported apart and are not a failure;
* *lost*: expected ids never seen.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from dataclasses import dataclass, field

__all__ = ["LEDGER", "FaultLedger", "FaultRun"]


@dataclass(frozen=True)
class FaultRun:
    """One component run under one fault scenario."""

    scenario: str
    component: str
    faults_injected: int
    completed: bool
    outcome: str
    expected: int
    seen: int
    duplicated: int
    documented_duplicates: int
    lost: int


@dataclass
class FaultLedger:
    """Thread-safe list of :class:`FaultRun` rows, printed as one table."""

    runs: list[FaultRun] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def record(
        self,
        *,
        scenario: str,
        component: str,
        faults_injected: int,
        completed: bool,
        outcome: str = "",
        expected: Iterable[str] = (),
        seen: Iterable[str] = (),
        documented_duplicates: int = 0,
    ) -> FaultRun:
        """Add one run; returns the row (its ``lost`` and ``duplicated`` are what tests assert on).

        :param scenario: the fault, e.g. ``"503 for 30% of calls"``.
        :param component: what ran, e.g. ``"sensor (poke)"``.
        :param faults_injected: faulted responses the emulator actually served to this run.
        :param completed: the run ended as it should: with every event, or with a classified error once its
            retry budget was spent (for budget tests).
        :param outcome: a short word on how it ended, e.g. ``"completed"`` or ``"AltinnServerError"``.
        :param expected: ids that had to arrive (or be published).
        :param seen: ids that arrived, in delivery order, duplicates included.
        :param documented_duplicates: how many of the duplicates fall in a documented at-least-once window.
        """
        expected_ids = set(expected)
        seen_ids = list(seen)
        distinct = set(seen_ids)
        run = FaultRun(
            scenario=scenario,
            component=component,
            faults_injected=faults_injected,
            completed=completed,
            outcome=outcome or ("completed" if completed else "failed"),
            expected=len(expected_ids),
            seen=len(seen_ids),
            duplicated=len(seen_ids) - len(distinct),
            documented_duplicates=documented_duplicates,
            lost=len(expected_ids - distinct),
        )
        with self._lock:
            self.runs.append(run)
        return run

    def table(self) -> list[str]:
        """The summary as lines of text (empty when nothing was recorded)."""
        with self._lock:
            runs = list(self.runs)
        if not runs:
            return []
        header = (
            f"{'scenario':40s} {'component':18s} {'faults':>6s} {'outcome':36s} "
            f"{'expected':>8s} {'seen':>6s} {'dup':>7s} {'lost':>5s}"
        )
        lines = [header, "-" * len(header)]
        for run in runs:
            dup = f"{run.duplicated}" + (
                f"({run.documented_duplicates}d)" if run.documented_duplicates else ""
            )
            lines.append(
                f"{run.scenario[:40]:40s} {run.component[:18]:18s} {run.faults_injected:6d} "
                f"{run.outcome[:36]:36s} {run.expected:8d} {run.seen:6d} {dup:>7s} {run.lost:5d}"
            )
        lines.append("-" * len(header))
        completed = sum(run.completed for run in runs)
        lines.append(
            f"faults injected {sum(r.faults_injected for r in runs)}, runs completed {completed}/{len(runs)}, "
            f"events expected {sum(r.expected for r in runs)} / seen {sum(r.seen for r in runs)} / "
            f"duplicated {sum(r.duplicated for r in runs)} "
            f"(documented {sum(r.documented_duplicates for r in runs)}) / lost {sum(r.lost for r in runs)}"
        )
        return lines


#: The one ledger of a pytest session.
LEDGER = FaultLedger()

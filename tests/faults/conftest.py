"""Fault suite set-up: the ``faults`` marker on every test here, fresh shared clients, the results ledger.

Every test under ``tests/faults/`` is marked ``faults`` (so ``-m faults`` selects the suite, and
``-m "not faults"`` leaves it out). ``make faults`` runs ``pytest tests/faults -s`` and this module's
``pytest_terminal_summary`` prints what the suite met: faults injected, runs completed, and events expected /
seen / duplicated / lost per run (see ``ledger.py``).

Other fault tests (e.g. the ingestion ones) may add their rows: take the ``fault_results`` fixture and call
``fault_results.record(scenario=..., component=..., faults_injected=..., completed=..., expected=ids,
seen=ids)``. It is optional; nothing breaks when a test records nothing.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from airflow_provider_altinn_events.triggers import altinn_events as trigger_module
from tests.faults.ledger import LEDGER, FaultLedger

_HERE = Path(__file__).resolve().parent


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if _HERE in Path(str(item.fspath)).resolve().parents:
            item.add_marker(pytest.mark.faults)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    lines = LEDGER.table()
    if not lines:
        return
    terminalreporter.section("fault suite summary")
    for line in lines:
        terminalreporter.write_line(line)


@pytest.fixture
def fault_results() -> FaultLedger:
    """The session's fault ledger (optional: record a row per run to have it in the summary)."""
    return LEDGER


@pytest.fixture(autouse=True)
def _fresh_shared_clients() -> Iterator[None]:
    """Each test runs in its own event loop: start without the triggers' shared clients of another loop."""
    shared = vars(trigger_module)["_CLIENTS"]  # private on purpose: tests reset it between event loops
    shared.entries.clear()
    yield
    shared.entries.clear()

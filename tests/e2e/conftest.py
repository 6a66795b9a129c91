"""One real stack per test module: the emulator plus Airflow's api-server, scheduler, dag-processor and
triggerer as separate processes (``scripts/stack.py``), driven over REST like ``make demo`` drives it.

Starting it costs ~30-40 s on 2 cores, so the scenario's tests share it and run in file order; a test that
needs an earlier one's outcome is skipped (not failed again) when that one failed. The home (metadata DB,
every log, the emulator's data, the lake) is kept under pytest's temporary directory for post-mortems; its
path is printed when the stack starts.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from scripts.scenario import Scenario, new_stack
from scripts.stack import Stack
from scripts.webhook_receiver import WebhookReceiver


class Progress:
    """Which steps of the scenario succeeded, so later tests can skip instead of failing for the same reason."""

    def __init__(self) -> None:
        self.done: set[str] = set()
        self.data: dict[str, Any] = {}

    def need(self, *steps: str) -> None:
        missing = [name for name in steps if name not in self.done]
        if missing:
            pytest.skip(f"needs the earlier step(s) {missing}, which did not succeed")


@pytest.fixture(scope="module")
def e2e_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("e2e-home")


@pytest.fixture(scope="module")
def receiver(e2e_home: Path) -> Iterator[WebhookReceiver]:
    with WebhookReceiver(e2e_home / "webhook-received.ndjson") as running:
        yield running


@pytest.fixture(scope="module")
def stack(e2e_home: Path) -> Iterator[Stack]:
    running = new_stack(e2e_home, log=lambda message: print(message, flush=True))
    print(f"e2e stack home: {e2e_home}", flush=True)
    try:
        running.start()
        yield running
    finally:
        running.stop()
        left = running.leftover_processes()
        assert not left, f"processes left behind: {left}"


@pytest.fixture(scope="module")
def scenario(stack: Stack, receiver: WebhookReceiver) -> Scenario:
    return Scenario(stack, receiver)


@pytest.fixture(scope="module")
def progress() -> Progress:
    return Progress()

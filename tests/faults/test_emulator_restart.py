"""The Altinn side goes away mid-run and comes back: the emulator CLI is killed (SIGKILL) and started again
on the same port with the same ``--data`` file while each component runs.

Readers are waiting with events already stored; after the restart more events arrive, and each reader must
deliver every event once. The publisher is killed under while a list goes out; afterwards every id is stored
exactly once. A component may end one try with a classified, retryable error (its retry budget ran out while
the service was down); the test then runs the next try as Airflow would (same arguments, same run id) and the
summary says so.
"""

from __future__ import annotations

import asyncio
import re
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from airflow_provider_altinn_events.emulator.handle import EmulatorHandle
from tests.faults.ledger import FaultLedger
from tests.faults.support import (
    COMPONENTS,
    connection_env,
    ending,
    new_resource,
    publish_ids,
    run_publish,
    run_sensor_poke,
    run_sensor_trigger,
    run_watcher,
    stored_ids,
    with_task_retries,
)

READY = re.compile(r"Altinn emulator listening on (http://127\.0\.0\.1:\d+)")
BEFORE = 40
AFTER_RESTART = 25
PUBLISH_COUNT = 80
DOWNTIME = 1.0  # plus the emulator's own start-up time


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class EmulatorProcess:
    """The ``altinn-events-emulator`` console script on a fixed port with a data file."""

    def __init__(self, data: Path) -> None:
        self.data = data
        self.port = free_port()
        self.process: subprocess.Popen[str] | None = None
        self.base_url = f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        script = Path(sys.executable).with_name("altinn-events-emulator")
        command = (
            [str(script)]
            if script.exists()
            else [sys.executable, "-m", "airflow_provider_altinn_events.emulator"]
        )
        self.process = subprocess.Popen(
            [*command, "--port", str(self.port), "--data", str(self.data), "--log-level", "warning"],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        match = READY.search(line)
        assert match and match.group(1) == self.base_url, line

    def kill(self) -> None:
        """Crash it: no shutdown, open connections reset, whatever was committed stays in the data file."""
        assert self.process is not None
        self.process.kill()
        self.process.wait(10)
        self._close()

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            self._close()
            return
        self.process.send_signal(signal.SIGINT)
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self._close()

    def _close(self) -> None:
        if self.process is not None and self.process.stdout is not None:
            self.process.stdout.close()


@pytest.fixture
def emulator_process(tmp_path: Path) -> Iterator[EmulatorProcess]:
    process = EmulatorProcess(tmp_path / "altinn.sqlite")
    process.start()
    try:
        yield process
    finally:
        process.stop()


async def restart(process: EmulatorProcess, after: float) -> None:
    await asyncio.sleep(after)
    await asyncio.to_thread(process.kill)
    await asyncio.sleep(DOWNTIME)
    await asyncio.to_thread(process.start)


@pytest.mark.parametrize("component", COMPONENTS)
async def test_emulator_restarted_mid_run(
    component: str,
    emulator_process: EmulatorProcess,
    monkeypatch: pytest.MonkeyPatch,
    fault_results: FaultLedger,
) -> None:
    handle = EmulatorHandle.create(emulator_process.base_url)
    try:
        monkeypatch.setenv(*connection_env(handle, timeout=2))
        resource = new_resource("restart")
        if component == "publish operator":
            crash = asyncio.create_task(restart(emulator_process, 0.2))
            outcome, tries = await with_task_retries(
                lambda: run_publish(resource, count=PUBLISH_COUNT, max_concurrency=2)
            )
            await crash
            expected = publish_ids(resource, PUBLISH_COUNT)
            outcome.ids = stored_ids(handle, resource)
        else:
            await asyncio.to_thread(handle.generate, resource, BEFORE, type="no.example.faults.v1")
            total = BEFORE + AFTER_RESTART

            async def crash_then_publish() -> None:
                await restart(emulator_process, 0.5)
                await asyncio.to_thread(handle.generate, resource, AFTER_RESTART, type="no.example.faults.v1")

            crash = asyncio.create_task(crash_then_publish())
            tries = 1
            if component == "sensor (poke)":
                outcome, tries = await with_task_retries(lambda: run_sensor_poke(resource, min_events=total))
            elif component == "sensor trigger":
                outcome = await run_sensor_trigger(resource, min_events=total)
            else:
                outcome = await run_watcher(resource, want=lambda ids: len(set(ids)) >= total)
            await crash
            expected = stored_ids(handle, resource)
    finally:
        handle.close()

    run = fault_results.record(
        scenario="emulator killed and restarted (--data)",
        component=component,
        faults_injected=1,
        completed=outcome.error is None,
        outcome=ending(outcome, tries),
        expected=expected,
        seen=outcome.ids,
    )
    assert outcome.error is None, f"{component} failed: {outcome.error!r}"
    if component == "publish operator":
        assert len(expected) == PUBLISH_COUNT and sorted(outcome.ids) == sorted(expected)
    else:
        assert len(expected) == BEFORE + AFTER_RESTART
        assert outcome.ids == expected
    assert run.lost == 0 and run.duplicated == 0

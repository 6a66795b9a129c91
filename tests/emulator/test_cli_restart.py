"""The console script: the ready line, and a restart with ``--data`` that loses nothing.

No Altinn source: the emulator's own command line (docs/guides/emulator.rst); sequence numbers are never
reused, as Altinn's ``sequenceno`` (src/Events/Migration/v0.55/02-functions-and-procedures.sql).
"""

from __future__ import annotations

import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from airflow_provider_altinn_events.emulator.handle import ClientCredentials, EmulatorHandle

from .conftest import RESOURCE, Receiver, bearer, get_events, make_event, publish, wait_for

READY = re.compile(r"^Altinn emulator listening on (http://127\.0\.0\.1:(\d+))$")


@contextmanager
def cli(*args: str) -> Iterator[str]:
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "airflow_provider_altinn_events.emulator",
            "--port",
            "0",
            "--log-level",
            "warning",
            *args,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline().strip()
        match = READY.match(line)
        assert match, (line, process.stderr.read() if process.poll() is not None and process.stderr else "")
        assert int(match.group(2)) > 0
        yield match.group(1)
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        if process.stdout:
            process.stdout.close()
        if process.stderr:
            process.stderr.close()


def test_restart_with_data_keeps_everything(tmp_path: Path, receiver: Receiver) -> None:
    data = str(tmp_path / "altinn.sqlite")
    flags = ("--data", data, "--allow-http-webhooks", "--retry-schedule", "fast")
    with cli(*flags) as base:
        handle = EmulatorHandle.create(base)
        creds: ClientCredentials = handle.credentials
        token = handle.altinn_token()
        with httpx.Client(base_url=base) as client:
            for i in range(3):
                assert publish(client, token, make_event(f"before-{i}")).status_code == 200
            sub = client.post(
                "/events/api/v1/subscriptions",
                json={"endPoint": receiver.url, "resourceFilter": RESOURCE},
                headers=bearer(token),
            ).json()
            wait_for(
                lambda: client.get(f"/events/api/v1/subscriptions/{sub['id']}", headers=bearer(token)).json()[
                    "validated"
                ]
            )
        handle.add_access("urn:altinn:resource:locked", "/org/nobody", ["subscribe"])
        handle.close()
    receiver.requests.clear()

    with cli(*flags) as base:
        handle = EmulatorHandle(base, creds)  # the client registration survived
        with httpx.Client(base_url=base) as client:
            # the Altinn token from before the restart still verifies: signing keys are in the data file
            events = get_events(client, token, {"resource": RESOURCE, "after": "0"}).json()
            assert [e["id"] for e in events] == ["before-0", "before-1", "before-2"]
            fresh = handle.altinn_token()
            assert publish(client, fresh, make_event("after-0")).status_code == 200
            page = get_events(client, fresh, {"resource": RESOURCE, "after": "before-2"}).json()
            assert [e["id"] for e in page] == ["after-0"]  # sequence numbers continue
            listing = client.get("/events/api/v1/subscriptions", headers=bearer(fresh)).json()
            assert listing["count"] == 1 and listing["subscriptions"][0]["validated"] is True
            wait_for(
                lambda: [b["id"] for b in receiver.bodies()] == ["after-0"]
            )  # pushes resume, old ones not re-sent
            publish(client, fresh, make_event("hidden", resource="urn:altinn:resource:locked"))
            hidden = get_events(
                client, fresh, {"resource": "urn:altinn:resource:locked", "after": "0"}
            ).json()
            assert hidden == []  # the policy rule survived
        handle.close()


def test_help_lists_the_flags() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "airflow_provider_altinn_events.emulator", "--help"],
        capture_output=True,
        text=True,
        check=True,
    )
    for flag in (
        "--host",
        "--port",
        "--data",
        "--token-lifetime",
        "--visibility-delay",
        "--allow-http-webhooks",
        "--public-url",
        "--retry-schedule",
    ):
        assert flag in result.stdout

"""Run one ingestion (the operator's pipeline, without Airflow) in a process a test can SIGKILL.

Usage: ``python -m tests.faults._ingest_child --dest D --run-id R --resource U [--kill-at POINT:N] ...``
with the connection JSON (the ``AIRFLOW_CONN_...`` form) in ``ALTINN_INGEST_CONN``. It prints ``started`` when the
pipeline starts and, on success, the run's summary as one JSON line. With ``--kill-at POINT:N`` it kills itself with SIGKILL the N-th time the
pipeline passes trace point POINT: no ``finally``, no flush, exactly like the OOM killer or a lost node.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
from collections.abc import Callable
from types import SimpleNamespace


def _killer(spec: str | None, requests_seen: Callable[[], None] | None = None) -> Callable[[str], None]:
    point, _, nth = (spec or "-:0").rpartition(":")
    remaining = int(nth)

    def trace(name: str) -> None:
        nonlocal remaining
        if name == "start":  # lets a test time a kill from the moment the pipeline starts
            sys.stdout.write("started\n")
            sys.stdout.flush()
        if name == point:
            remaining -= 1
            if remaining == 0:
                if requests_seen is not None:
                    requests_seen()
                os.kill(os.getpid(), signal.SIGKILL)

    return trace


def _requests_seen(stats_url: str, key: str, count: str) -> Callable[[], None]:
    def wait() -> None:
        import time

        import httpx

        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if int(httpx.get(stats_url, timeout=10).json()["requests"].get(key, 0)) >= int(count):
                return
            time.sleep(0.005)
        raise SystemExit(f"the emulator never counted {count} requests {key!r}")

    return wait


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--dest", required=True)
    parser.add_argument("--run-id", required=True)
    parser.add_argument("--resource", required=True)
    parser.add_argument("--page-size", type=int, default=1000)
    parser.add_argument("--events-per-file", type=int, default=100_000)
    parser.add_argument("--max-events", type=int)
    parser.add_argument("--compression", choices=("gzip",))
    parser.add_argument("--kill-at")
    parser.add_argument(
        "--kill-when-requests",
        help="STATS_URL KEY N: at the kill point, first wait until the emulator has counted N requests KEY "
        "(so a request known to be sent ahead is in flight at the kill, however loaded the machine)",
        nargs=3,
    )
    args = parser.parse_args()

    from airflow_provider_altinn_events._ingest import IngestSpec, open_storage, run_ingest
    from airflow_provider_altinn_events.client import AltinnEventsClient, AltinnSettings

    raw = json.loads(os.environ["ALTINN_INGEST_CONN"])
    conn = SimpleNamespace(
        conn_id="altinn_events_default",
        host=raw.get("host"),
        login=raw.get("login"),
        password=raw.get("password"),
        extra_dejson=raw.get("extra") or {},
    )
    spec = IngestSpec(
        args.resource,
        page_size=args.page_size,
        events_per_file=args.events_per_file,
        max_events=args.max_events,
        compression=args.compression,
    )
    with AltinnEventsClient(AltinnSettings.from_connection(conn)) as client:
        trace = _killer(
            args.kill_at, _requests_seen(*args.kill_when_requests) if args.kill_when_requests else None
        )
        result = run_ingest(client, open_storage(args.dest), spec, args.run_id, trace=trace)
    sys.stdout.write(json.dumps(result.to_dict()) + "\n")


if __name__ == "__main__":
    main()

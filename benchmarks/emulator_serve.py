"""Benchmark the emulator: ``generate`` throughput and ``GET /events`` pages of 1000 from a large store.

Usage::

    .venv/bin/python benchmarks/emulator_serve.py              # 1,000,000 events
    .venv/bin/python benchmarks/emulator_serve.py --count 100000
    .venv/bin/python benchmarks/emulator_serve.py --url http://127.0.0.1:8765   # an emulator already running

The emulator runs in this process (uvicorn in a thread) unless ``--url`` is given, so client and server
share one GIL; the figures are a lower bound for a separate emulator process.
"""

from __future__ import annotations

import argparse
import statistics
import time

import httpx

from airflow_provider_altinn_events.emulator.handle import EmulatorHandle

RESOURCE = "urn:altinn:resource:benchmark"


def run(base_url: str, count: int, batch: int, page_size: int) -> None:
    handle = EmulatorHandle.create(base_url)
    handle.admin.timeout = httpx.Timeout(600)
    token = handle.altinn_token(["altinn:events.subscribe"])
    before = handle.stats()["events"]

    started = time.perf_counter()
    first_id = ""
    remaining = count
    while remaining:
        n = min(batch, remaining)
        ids = handle.generate(RESOURCE, n, type="benchmark.generated", subject="/party/1")
        first_id = first_id or ids["first_id"]
        remaining -= n
    generate_s = time.perf_counter() - started
    print(
        f"generate: {count:,} events in {generate_s:.2f} s = {count / generate_s:,.0f} events/s "
        f"(batches of {batch:,}; store now {before + count:,} events)"
    )

    headers = {"Authorization": f"Bearer {token}"}
    durations: list[float] = []
    served = 0
    after = "0"
    with httpx.Client(base_url=base_url, headers=headers, timeout=60) as client:
        started = time.perf_counter()
        while True:
            t0 = time.perf_counter()
            response = client.get(
                "/events/api/v1/events", params={"resource": RESOURCE, "after": after, "size": page_size}
            )
            response.raise_for_status()
            page = response.json()
            durations.append(time.perf_counter() - t0)
            if not page:
                break
            served += len(page)
            after = page[-1]["id"]
        read_s = time.perf_counter() - started
        deep = []
        for _ in range(20):  # the last full page, from the far end of the index
            t0 = time.perf_counter()
            client.get(
                "/events/api/v1/events", params={"resource": RESOURCE, "after": first_id, "size": page_size}
            )
            deep.append(time.perf_counter() - t0)
    pages = len(durations) - 1
    ms = sorted(d * 1000 for d in durations[:-1]) or [0.0]
    print(
        f"read: {served:,} events in {pages:,} pages of {page_size} in {read_s:.2f} s = {served / read_s:,.0f} events/s served"
    )
    print(
        f"page latency (request + JSON decode): p50 {statistics.median(ms):.1f} ms, "
        f"p95 {ms[int(len(ms) * 0.95) - 1]:.1f} ms, max {ms[-1]:.1f} ms; "
        f"page right after the first event: median {statistics.median(deep) * 1000:.1f} ms"
    )
    handle.close()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--count", type=int, default=1_000_000, help="events to generate (default 1,000,000)")
    parser.add_argument(
        "--batch", type=int, default=100_000, help="events per generate call (default 100,000)"
    )
    parser.add_argument("--page-size", type=int, default=1000, help="GET /events size (default 1000)")
    parser.add_argument("--url", help="benchmark an emulator that is already running at this base URL")
    parser.add_argument("--data", help="SQLite file for the in-process emulator (default: in memory)")
    args = parser.parse_args()
    if args.url:
        run(args.url.rstrip("/"), args.count, args.batch, args.page_size)
        return
    from airflow_provider_altinn_events.emulator import EmulatorServer

    with EmulatorServer(data_path=args.data) as server:
        print(f"emulator at {server.base_url} ({'file ' + args.data if args.data else 'in memory'})")
        run(server.base_url, args.count, args.batch, args.page_size)


if __name__ == "__main__":
    main()

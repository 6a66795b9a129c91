"""Ingestion throughput and memory: the operator's pipeline against a bare httpx loop, same emulator.

What it measures (issue 6):

* **events/s** of the pipeline ``AltinnEventsIngestOperator`` runs (``_ingest.run_ingest`` with the hook's
  client; fetching the next page on a background thread while the previous one is written) and of a bare
  httpx loop that pages the same emulator the same way (``after`` = last id, 1000 per page) and writes the
  same NDJSON, one request after the other; and their ratio. Target: ratio >= 1.0.
* **peak memory** (``ru_maxrss`` of a fresh process that runs only the pipeline) at 10,000 and 1,000,000
  events. Target: 1M within 50 MB of 10k. With ``--tracemalloc`` also the peak of Python allocations.

The emulator runs as its own process (``altinn-events-emulator``), as Altinn would be on another host, and
each measurement runs in a fresh process, alternating pipeline and bare loop; the figure is the median.
Both time only the paging and writing (token and imports before the clock starts).

Usage: python benchmarks/ingest.py [--events 200000] [--repeat 3] [--memory-events 10000,1000000]
       [--tracemalloc] [--quick]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
THROUGHPUT_RESOURCE = "urn:altinn:resource:bench-throughput"
MEMORY_RESOURCE = "urn:altinn:resource:bench-memory-{n}"
PAGE = 1000


# -- children: one measurement each, in a fresh interpreter ---------------------------------------------


def _settings(conn: dict[str, Any]) -> Any:
    from types import SimpleNamespace

    from airflow_provider_altinn_events.client import AltinnSettings

    return AltinnSettings.from_connection(
        SimpleNamespace(
            conn_id="bench",
            host=conn["host"],
            login=conn["login"],
            password=conn["password"],
            extra_dejson=conn["extra"],
        )
    )


def child_pipeline(conn: dict[str, Any], resource_urn: str, dest: str, trace_memory: bool) -> dict[str, Any]:
    from airflow_provider_altinn_events._ingest import IngestSpec, LocalStorage, run_ingest
    from airflow_provider_altinn_events.client import AltinnEventsClient

    with AltinnEventsClient(_settings(conn)) as client:
        client.list_events(resource="urn:altinn:resource:bench-warmup", size=1)  # token + connection
        if trace_memory:
            import tracemalloc

            tracemalloc.start()
        started = time.perf_counter()
        result = run_ingest(client, LocalStorage(dest), IngestSpec(resource_urn, page_size=PAGE), "bench")
        seconds = time.perf_counter() - started
    out = {"events": result.count, "seconds": seconds, "files": len(result.files)}
    if trace_memory:
        out["tracemalloc_peak_mb"] = tracemalloc.get_traced_memory()[1] / 2**20
    return out


def child_bare(conn: dict[str, Any], resource_urn: str, dest: str, encoder: str) -> dict[str, Any]:
    """What one would write by hand: page with httpx, write each page, ask for the next."""
    import httpx

    from airflow_provider_altinn_events.client import AltinnEventsClient

    settings = _settings(conn)
    with AltinnEventsClient(settings) as client:  # only to get a token the same way
        client.list_events(resource="urn:altinn:resource:bench-warmup", size=1)
        token = client.auth._token.value if client.auth._token else ""  # benchmark only: reuse its token
    if encoder == "msgspec":
        import msgspec

        encode = msgspec.json.Encoder().encode
    else:

        def encode(event: Any) -> bytes:
            return json.dumps(event, ensure_ascii=False, separators=(",", ":")).encode()

    url = f"{settings.events_url.rstrip('/')}/events"
    headers = {"Authorization": f"Bearer {token}", "Accept": "application/cloudevents+json"}
    count, after = 0, "0"
    started = time.perf_counter()
    with httpx.Client(headers=headers, timeout=60) as http, open(Path(dest) / "bare.ndjson", "wb") as out:
        while True:
            response = http.get(url, params={"resource": resource_urn, "after": after, "size": PAGE})
            response.raise_for_status()
            events = response.json()
            if not events:
                break
            out.write(b"".join(encode(event) + b"\n" for event in events))
            count += len(events)
            after = events[-1]["id"]
    return {"events": count, "seconds": time.perf_counter() - started}


def child_main(args: argparse.Namespace) -> None:
    conn = json.loads(os.environ["BENCH_CONN"])
    if args.child == "pipeline":
        result = child_pipeline(conn, args.resource, args.dest, args.tracemalloc)
    else:
        result = child_bare(conn, args.resource, args.dest, args.child.split("-", 1)[1])
    result["maxrss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps(result))


# -- parent ---------------------------------------------------------------------------------------------


def start_emulator() -> tuple[subprocess.Popen[str], str]:
    exe = Path(sys.executable).with_name("altinn-events-emulator")
    command = (
        [str(exe)] if exe.exists() else [sys.executable, "-m", "airflow_provider_altinn_events.emulator.cli"]
    )
    process = subprocess.Popen(
        [*command, "--port", "0", "--log-level", "warning"],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    line = process.stdout.readline()
    match = re.search(r"listening on (\S+)", line)
    if not match:
        process.kill()
        raise SystemExit(f"emulator did not start: {line!r}")
    return process, match.group(1)


def run_child(
    kind: str, conn: dict[str, Any], resource_urn: str, tracemalloc: bool = False
) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="bench-ingest-") as dest:
        command = [sys.executable, __file__, "--child", kind, "--resource", resource_urn, "--dest", dest]
        if tracemalloc:
            command.append("--tracemalloc")
        env = {**os.environ, "BENCH_CONN": json.dumps(conn), "PYTHONPATH": str(REPO)}
        out = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
        if out.returncode:
            raise SystemExit(f"{kind} child failed:\n{out.stderr[-3000:]}")
        result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
        return result


def generate(handle: Any, resource_urn: str, count: int) -> None:
    started = time.perf_counter()
    remaining = count
    while remaining:  # in chunks: one huge insert holds the emulator's lock for long
        chunk = min(remaining, 250_000)
        handle.generate(
            resource_urn, chunk, type="no.example.case.changed.v1", data={"case": 12345, "status": "closed"}
        )
        remaining -= chunk
    print(f"  generated {count:,} events in {time.perf_counter() - started:.1f} s", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=200_000, help="events for the throughput runs")
    parser.add_argument("--repeat", type=int, default=3, help="throughput runs per contender (median)")
    parser.add_argument("--memory-events", default="10000,1000000", help="comma-separated sizes")
    parser.add_argument("--tracemalloc", action="store_true", help="also trace Python allocations (slow)")
    parser.add_argument("--quick", action="store_true", help="small sizes, for a smoke test")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--resource", help=argparse.SUPPRESS)
    parser.add_argument("--dest", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child_main(args)
        return
    if args.quick:
        args.events, args.repeat, args.memory_events = 20_000, 1, "10000,50000"
    memory_sizes = [int(n) for n in args.memory_events.split(",")]

    from airflow_provider_altinn_events.emulator.handle import EmulatorHandle

    process, base_url = start_emulator()
    try:
        handle = EmulatorHandle.create(base_url, scopes=("altinn:events.subscribe",))
        conn = handle.connection_dict()
        print(f"emulator {base_url} (own process); Python {sys.version.split()[0]}; {os.cpu_count()} CPUs")
        generate(handle, THROUGHPUT_RESOURCE, args.events)

        print(f"throughput: {args.events:,} events, page size {PAGE}, {args.repeat} runs each (median)")
        contenders = ["pipeline", "bare-json", "bare-msgspec"]
        samples: dict[str, list[float]] = {kind: [] for kind in contenders}
        for _ in range(args.repeat):
            for kind in contenders:
                result = run_child(kind, conn, THROUGHPUT_RESOURCE)
                assert result["events"] == args.events, result
                samples[kind].append(result["events"] / result["seconds"])
        rates = {kind: statistics.median(values) for kind, values in samples.items()}
        for kind in contenders:
            shown = ", ".join(f"{v:,.0f}" for v in samples[kind])
            print(f"  {kind:13s} {rates[kind]:>9,.0f} events/s   (runs: {shown})")
        print(
            f"  ratio pipeline / bare httpx loop (stdlib json):     {rates['pipeline'] / rates['bare-json']:.2f}"
        )
        print(
            f"  ratio pipeline / bare httpx loop (same encoder):    {rates['pipeline'] / rates['bare-msgspec']:.2f}"
        )

        print("memory: peak RSS of a fresh process running only the pipeline")
        peaks: dict[int, float] = {}
        for size in memory_sizes:
            urn = MEMORY_RESOURCE.format(n=size)
            generate(handle, urn, size)
            result = run_child("pipeline", conn, urn)
            assert result["events"] == size, result
            peaks[size] = result["maxrss_mb"]
            extra = ""
            if args.tracemalloc:
                traced = run_child("pipeline", conn, urn, tracemalloc=True)
                extra = f", tracemalloc peak {traced['tracemalloc_peak_mb']:.1f} MB"
            print(
                f"  {size:>9,} events: peak RSS {result['maxrss_mb']:.1f} MB{extra} "
                f"({result['events'] / result['seconds']:,.0f} events/s, {result['files']} files)"
            )
        if len(peaks) >= 2:
            low, high = min(peaks), max(peaks)
            print(
                f"  difference {high:,} vs {low:,} events: {peaks[high] - peaks[low]:+.1f} MB (target: < 50 MB)"
            )
    finally:
        process.terminate()
        process.wait(timeout=30)


if __name__ == "__main__":
    main()

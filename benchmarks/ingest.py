"""Ingestion throughput and memory: the operator's pipeline against a bare httpx loop, same emulator.

What it measures (issue 6):

* **events/s** of the pipeline ``AltinnEventsIngestOperator`` runs (``_ingest.run_ingest`` with the hook's
  client; the request for the next page in flight while the current one is written), of the same pipeline
  with ``overlap=False`` (one page after the other: what the overlap gains), and of a bare httpx loop that
  pages the same emulator the same way (``after`` = last id, 1000 per page) and writes the same NDJSON, one
  request after the other, with the pipeline's encoder (msgspec) and with the stdlib's ``json``; and the
  ratios. Target (issue 17): pipeline / same-encoder loop >= 1.1.
* **CPU per page** of each (the process's CPU time over the pages): the pace a loaded machine sets, where
  there is no idle core left for the overlap to use.
* **peak memory** (``ru_maxrss`` of a fresh process that runs only the pipeline) at 10,000 and 1,000,000
  events. Target: 1M within 50 MB of 10k. With ``--tracemalloc`` also the peak of Python allocations.

The emulator runs as its own process (``altinn-events-emulator``), as Altinn would be on another host, and
each measurement runs in a fresh process, the contenders taking turns within each repetition so that load
from other work hits them alike; the figure is the median, and the ratio is also given per repetition
(pipeline and loop measured back to back). All time only the paging and writing (token and imports before
the clock starts).

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


def child_pipeline(
    conn: dict[str, Any], resource_urn: str, dest: str, trace_memory: bool, overlap: bool = True
) -> dict[str, Any]:
    from airflow_provider_altinn_events._ingest import IngestSpec, LocalStorage, run_ingest
    from airflow_provider_altinn_events.client import AltinnEventsClient

    with AltinnEventsClient(_settings(conn)) as client:
        client.list_events(resource="urn:altinn:resource:bench-warmup", size=1)  # token + connection
        if trace_memory:
            import tracemalloc

            tracemalloc.start()
        started, cpu = time.perf_counter(), time.process_time()
        result = run_ingest(
            client, LocalStorage(dest), IngestSpec(resource_urn, page_size=PAGE), "bench", overlap=overlap
        )
        seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
    out = {
        "events": result.count,
        "seconds": seconds,
        "cpu": cpu,
        "pages": result.pages,
        "files": len(result.files),
    }
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
    count, after, pages = 0, "0", 0
    started, cpu = time.perf_counter(), time.process_time()
    with httpx.Client(headers=headers, timeout=60) as http, open(Path(dest) / "bare.ndjson", "wb") as out:
        while True:
            response = http.get(url, params={"resource": resource_urn, "after": after, "size": PAGE})
            response.raise_for_status()
            pages += 1
            events = response.json()
            if not events:
                break
            out.write(b"".join(encode(event) + b"\n" for event in events))
            count += len(events)
            after = events[-1]["id"]
    return {
        "events": count,
        "seconds": time.perf_counter() - started,
        "cpu": time.process_time() - cpu,
        "pages": pages,
    }


def child_main(args: argparse.Namespace) -> None:
    conn = json.loads(os.environ["BENCH_CONN"])
    if args.child in ("pipeline", "pipeline-sequential"):
        overlap = args.child == "pipeline"
        result = child_pipeline(conn, args.resource, args.dest, args.tracemalloc, overlap)
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


CONTENDERS = {
    "pipeline": "ours: the operator's pipeline (overlap)",
    "pipeline-sequential": "ours, overlap=False",
    "bare-msgspec": "bare httpx loop, same encoder",
    "bare-json": "bare httpx loop, stdlib json",
}


def throughput(conn: dict[str, Any], events: int, repeat: int) -> dict[str, float]:
    """Run the contenders in turns, ``repeat`` times; print events/s, CPU per page and the ratios."""
    samples: dict[str, list[dict[str, Any]]] = {kind: [] for kind in CONTENDERS}
    for round_ in range(repeat):
        order = list(CONTENDERS) if round_ % 2 == 0 else list(reversed(CONTENDERS))
        for kind in order:
            result = run_child(kind, conn, THROUGHPUT_RESOURCE)
            assert result["events"] == events, result
            result["rate"] = result["events"] / result["seconds"]
            samples[kind].append(result)
    rates = {kind: statistics.median(r["rate"] for r in runs) for kind, runs in samples.items()}
    print(f"  {'contender':40s} {'events/s':>9s} {'CPU/page':>9s}   runs (events/s)")
    for kind, label in CONTENDERS.items():
        runs = samples[kind]
        cpu = statistics.median(1000 * r["cpu"] / max(1, r["pages"]) for r in runs)
        shown = ", ".join(f"{r['rate']:,.0f}" for r in runs)
        print(f"  {label:40s} {rates[kind]:>9,.0f} {cpu:>7.2f} ms   ({shown})")
    same = "bare-msgspec"
    paired = [a["rate"] / b["rate"] for a, b in zip(samples["pipeline"], samples[same], strict=True)]
    print(
        f"  ours / bare loop, same encoder:   {rates['pipeline'] / rates[same]:.2f} "
        f"(per repetition: {', '.join(f'{r:.2f}' for r in paired)}; target >= 1.1)"
    )
    print(f"  ours / bare loop, stdlib json:    {rates['pipeline'] / rates['bare-json']:.2f}")
    print(f"  ours, overlap=False / same encoder: {rates['pipeline-sequential'] / rates[same]:.2f}")
    print(f"  overlap gain (ours / overlap=False): {rates['pipeline'] / rates['pipeline-sequential']:.2f}")
    return rates


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
        print(
            f"emulator {base_url} (own process); Python {sys.version.split()[0]}; {os.cpu_count()} CPUs; "
            f"load average {os.getloadavg()[0]:.2f}"
        )
        generate(handle, THROUGHPUT_RESOURCE, args.events)

        print(
            f"throughput: {args.events:,} events, page size {PAGE}, {args.repeat} runs each, taking turns "
            "(median)"
        )
        throughput(conn, args.events, args.repeat)

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

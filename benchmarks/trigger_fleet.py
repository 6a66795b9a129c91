"""Trigger fleet: N sensor or watcher triggers in one event loop, as a triggerer runs them, vs ``HttpEventTrigger``.

What a triggerer pays for a fleet of Altinn waits, measured against what a user would otherwise write: the
HTTP provider's ``HttpEventTrigger`` polling ``GET /events`` with a bearer header and an async response
check. For every fleet size N and every kind, N triggers, each on its own resource, poll every
``--poll-interval`` seconds in this one event loop. Kinds:

* ``sensor``: ``AltinnEventsSensorTrigger``; ``watcher``: ``AltinnEventsWatcherTrigger`` without an asset
  state store (in-memory cursor). Both spread their first poll over the interval themselves, on a tick grid
  they share (``triggers/_cadence.py``).
* ``http``: ``HttpEventTrigger``, started at random moments over one interval (a deployment's steady state:
  deferred tasks reach the triggerer at different times); ``http-burst``: all started at once, as after a
  triggerer restart (it has no jitter, so they keep polling together).
* ``bare`` (optional): a jittered loop on one shared httpx client with the httpx-aiohttp transport, the
  floor of our client stack.

Per run it prints:

* token grants and exchanges the fleet caused (emulator stats; target: one per token lifetime, whatever N;
  ``HttpEventTrigger`` has no token flow, so its bearer token is fetched once by this script, not counted);
* polls (``GET /events`` requests) per second and CPU milliseconds per poll (``time.process_time`` of this
  process, all threads, over a measuring window with no events and no tracing);
* memory per trigger: Python heap growth (``tracemalloc``) since just before the triggers were created,
  averaged over one poll interval once every trigger has polled (requests in flight hold memory too),
  divided by N; the RSS growth over the same span is printed for reference (it is noisy: freed memory is
  reused rather than returned, so a later run in the same process may show less). With two sizes or more,
  the marginal heap per trigger (the slope between sizes) and what a fleet pays once are printed too;
* event-to-TriggerEvent latency p50/p99: events are generated on a sample of the resources while the fleet
  runs; latency is from just before the generate call to the moment the trigger yields.

The emulator runs as a separate process (the ``altinn-events-emulator`` console script), so its CPU is not
in the figures. Nothing is asserted: the figures are printed, with the ratios against ``HttpEventTrigger``
(issue 8 targets: CPU per poll and memory per trigger at most 0.5 of it).

Usage::

    .venv/bin/python benchmarks/trigger_fleet.py                       # N = 100, 500, 1000
    .venv/bin/python benchmarks/trigger_fleet.py --sizes 100,500 --window 10
    .venv/bin/python benchmarks/trigger_fleet.py --kinds sensor,http --sizes 200
    .venv/bin/python benchmarks/trigger_fleet.py --kinds sensor,bare --sizes 200 --profile /tmp/fleet
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import gc
import json
import os
import platform
import random
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import tracemalloc
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# Airflow reads these on first import: keep its home out of ~/airflow and its log level at warnings, so the
# fleet's start-up lines do not turn the benchmark into a logging benchmark.
os.environ.setdefault("AIRFLOW_HOME", tempfile.mkdtemp(prefix="altinn-bench-airflow-"))
os.environ.setdefault("AIRFLOW__LOGGING__LOGGING_LEVEL", "WARNING")
os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")

import httpx
import psutil

CONN_ID = "altinn_bench"
HTTP_CONN_ID = "altinn_bench_http"
EVENTS_PATH = "/events/api/v1/events"
POLL_KEY = f"GET {EVENTS_PATH}"
CHECK_MODULE = "altinn_bench_http_check"
KINDS = (
    "sensor",
    "watcher",
    "sensor-unshared",
    "watcher-unshared",
    "watcher-unfiltered",
    "http",
    "http-burst",
    "bare",
)
OURS = ("sensor", "watcher", "sensor-unshared", "watcher-unshared")
DEFAULT_KINDS = ("sensor", "watcher", "http")
READY = re.compile(r"Altinn emulator listening on (http://\S+)")

# The response check a user of HttpEventTrigger writes: "are there any events after my cursor?". It must be
# an importable module (HttpEventTrigger imports and reloads it on every poll), so it is written to a temp dir.
CHECK_SOURCE = '''"""Response check for HttpEventTrigger in the trigger fleet benchmark."""


async def has_events(response):
    return response.status_code == 200 and bool(response.json())
'''


@dataclass
class RunResult:
    """The figures of one fleet run (one kind, one N)."""

    kind: str
    n: int
    resources: int = 0
    poll_interval: float = 5.0
    window_s: float = 0.0
    polls: int = 0
    cpu_s: float = 0.0
    heap_bytes: int = 0
    rss_bytes: int = 0
    grants: int = 0
    exchanges: int = 0
    latencies: list[float] = field(default_factory=list)
    published: int = 0
    errors: list[str] = field(default_factory=list)

    @property
    def polls_per_s(self) -> float:
        return self.polls / self.window_s if self.window_s else 0.0

    @property
    def cpu_ms_per_poll(self) -> float:
        return self.cpu_s / self.polls * 1000 if self.polls else float("nan")

    @property
    def requests_per_interval(self) -> float:
        return self.polls_per_s * self.poll_interval

    @property
    def wakes(self) -> float:
        """Trigger wake-ups in the window: each of the N triggers wakes once per interval."""
        return self.n * self.window_s / self.poll_interval if self.poll_interval else 0.0

    @property
    def cpu_us_per_wake(self) -> float:
        return self.cpu_s / self.wakes * 1e6 if self.wakes else float("nan")

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "n": self.n,
            "resources": self.resources,
            "poll_interval_s": self.poll_interval,
            "window_s": round(self.window_s, 2),
            "requests_per_interval": round(self.requests_per_interval, 2),
            "cpu_ms_per_request": round(self.cpu_ms_per_poll, 3),
            "cpu_us_per_trigger_wake": round(self.cpu_us_per_wake, 1),
            "heap_kib_per_trigger": round(self.heap_kib_per_trigger, 2),
            "latency_p50_s": round(self.latency(0.5), 3),
            "latency_p99_s": round(self.latency(0.99), 3),
            "latency_samples": len(self.latencies),
            "grants": self.grants,
            "exchanges": self.exchanges,
            "errors": len(self.errors),
        }

    @property
    def heap_kib_per_trigger(self) -> float:
        return self.heap_bytes / self.n / 1024

    @property
    def rss_kib_per_trigger(self) -> float:
        return self.rss_bytes / self.n / 1024

    def latency(self, q: float) -> float:
        if not self.latencies:
            return float("nan")
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, max(0, round(q * len(ordered)) - 1))]


# ---------------------------------------------------------------------------------------------------------
# The emulator, in its own process
# ---------------------------------------------------------------------------------------------------------


def emulator_command() -> list[str]:
    script = Path(sys.executable).with_name("altinn-events-emulator")
    base = (
        [str(script)]
        if script.exists()
        else [sys.executable, "-m", "airflow_provider_altinn_events.emulator"]
    )
    return [*base, "--host", "127.0.0.1", "--port", "0", "--log-level", "warning"]


@contextmanager
def emulator_process() -> Iterator[tuple[str, int]]:
    """Start the emulator CLI; yield its base URL and pid; stop it (SIGINT, then SIGKILL) afterwards."""
    process = subprocess.Popen(
        emulator_command(), stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        match = READY.search(line)
        if not match:
            raise RuntimeError(f"the emulator did not start: {line!r}")
        yield match.group(1), process.pid
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        if process.stdout is not None:
            process.stdout.close()


# ---------------------------------------------------------------------------------------------------------
# One fleet run
# ---------------------------------------------------------------------------------------------------------


class BarePoller:
    """The floor: a jittered loop on one shared httpx client with the aiohttp transport and a fixed bearer
    header, no auth flow, no cursor, no parsing into models. What the client stack alone costs per poll."""

    client: httpx.AsyncClient | None = None
    users = 0
    token = ""
    base_url = ""

    def __init__(self, resource: str, poll_interval: float) -> None:
        self.resource = resource
        self.poll_interval = poll_interval

    async def run(self) -> AsyncIterator[dict[str, Any]]:
        cls = BarePoller
        if cls.client is None:
            from httpx_aiohttp import AiohttpTransport

            cls.client = httpx.AsyncClient(
                base_url=cls.base_url,
                transport=AiohttpTransport(),
                headers={"Authorization": f"Bearer {cls.token}"},
                timeout=30,
            )
        cls.users += 1
        try:
            await asyncio.sleep(random.uniform(0, self.poll_interval))
            while True:
                response = await cls.client.get(
                    EVENTS_PATH, params={"resource": self.resource, "after": "0", "size": 100}
                )
                if response.status_code == 200 and response.json():
                    yield {"status": "success"}
                    return
                await asyncio.sleep(self.poll_interval)
        finally:
            cls.users -= 1
            if cls.users == 0 and cls.client is not None:
                client, cls.client = cls.client, None
                await client.aclose()


def make_trigger(kind: str, resource: str, poll_interval: float, subject: str | None = None) -> Any:
    """One trigger as a DAG author would configure it (the triggerer re-creates it from these kwargs).

    ``*-unshared``: the same trigger with ``shared_polls = False`` (the class attribute), i.e. one request per
    trigger per interval, as before shared polls; ``watcher-unfiltered``: ``shared_unfiltered_reads = True``,
    one read of the whole resource for triggers that differ in ``subject``."""
    if kind == "bare":
        return BarePoller(resource, poll_interval)
    if kind in ("sensor", "sensor-unshared"):
        from airflow_provider_altinn_events.triggers.altinn_events import AltinnEventsSensorTrigger

        sensor = AltinnEventsSensorTrigger(
            resource=resource, after="0", poll_interval=poll_interval, altinn_events_conn_id=CONN_ID
        )
        sensor.shared_polls = kind == "sensor"
        return sensor
    if kind in ("watcher", "watcher-unshared", "watcher-unfiltered"):
        from airflow_provider_altinn_events.triggers.altinn_events import AltinnEventsWatcherTrigger

        trigger = AltinnEventsWatcherTrigger(
            resource=resource, subject=subject, poll_interval=poll_interval, altinn_events_conn_id=CONN_ID
        )
        trigger.asset_state_store = None  # as under dag.test(): the cursor is kept in memory
        trigger.shared_polls = kind != "watcher-unshared"
        trigger.shared_unfiltered_reads = kind == "watcher-unfiltered"
        return trigger
    from airflow.providers.http.triggers.http import HttpEventTrigger

    assert kind in ("http", "http-burst"), kind
    return HttpEventTrigger(
        response_check_path=f"{CHECK_MODULE}.has_events",
        http_conn_id=HTTP_CONN_ID,
        method="GET",
        endpoint=EVENTS_PATH.lstrip("/"),
        data={"resource": resource, "after": "0", "size": "100"},
        poll_interval=poll_interval,
    )


class Fleet:
    """N triggers driven as the triggerer drives them: one task per trigger iterating ``run()``.

    :param stagger: start each trigger after a random delay up to this many seconds. A deployment's deferred
        tasks reach the triggerer at different moments, so in the steady state ``HttpEventTrigger`` instances
        (which have no start jitter of their own) poll spread over their interval; after a triggerer restart
        they all start, and keep polling, together (kind ``http-burst``).
    """

    def __init__(self, kind: str, triggers: list[Any], stagger: float = 0.0) -> None:
        self.kind = kind
        self.triggers = triggers
        self.stagger = stagger
        self.fired: dict[int, float] = {}
        self.errors: list[str] = []
        self.tasks: list[asyncio.Task[None]] = []

    def start(self) -> None:
        self.tasks = [asyncio.create_task(self._drive(i, t)) for i, t in enumerate(self.triggers)]

    async def _drive(self, index: int, trigger: Any) -> None:
        if self.stagger > 0:
            await asyncio.sleep(random.uniform(0, self.stagger))
        events: AsyncIterator[Any] = trigger.run()
        try:
            async for event in events:
                self.fired.setdefault(index, time.monotonic())
                payload = getattr(event, "payload", None)
                if isinstance(payload, dict) and payload.get("status") == "error":
                    self.errors.append(str(payload.get("error")))
        except Exception as error:  # a trigger that dies is a finding, not a crash of the benchmark
            self.errors.append(f"{type(error).__name__}: {error}")

    async def stop(self) -> None:
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)


TRAFFIC_SOURCE = """
import sys, time, httpx
base, interval, each, subjects, *pool = sys.argv[1:]
with httpx.Client(base_url=base, timeout=60) as admin:
    while True:
        started = time.monotonic()
        for resource in pool:
            for k in range(int(subjects)):
                admin.post("/_emulator/events/generate", json={"resource": resource, "count": int(each),
                           "type": "bench.traffic", "subject": f"/party/{k}"}).raise_for_status()
        time.sleep(max(0.0, float(interval) - (time.monotonic() - started)))
"""


@contextmanager
def traffic_process(
    base_url: str, pool: list[str], per_interval: int, subjects: int, poll_interval: float
) -> Iterator[None]:
    """``per_interval`` events per interval on every resource of ``pool``, spread over ``subjects`` subjects,
    published by a process of its own, so that its CPU is not counted as the fleet's."""
    each = max(1, per_interval // subjects)
    process = subprocess.Popen(
        [sys.executable, "-c", TRAFFIC_SOURCE, base_url, str(poll_interval), str(each), str(subjects), *pool]
    )
    try:
        yield
    finally:
        process.terminate()
        process.wait()


async def stats(admin: httpx.AsyncClient) -> dict[str, Any]:
    response = await admin.get("/_emulator/stats")
    response.raise_for_status()
    body: dict[str, Any] = response.json()
    return body


async def wait_quiet(admin: httpx.AsyncClient, poll_interval: float, quiet: float = 0.4) -> None:
    """Return once the emulator has counted no poll for ``quiet`` seconds (or after two poll intervals)."""
    deadline = time.monotonic() + 2 * poll_interval
    count = (await stats(admin))["requests"].get(POLL_KEY, 0)
    still_since = time.monotonic()
    while time.monotonic() < deadline:
        await asyncio.sleep(0.1)
        now = (await stats(admin))["requests"].get(POLL_KEY, 0)
        if now != count:
            count, still_since = now, time.monotonic()
        elif time.monotonic() - still_since >= quiet:
            return


async def run_fleet(
    admin: httpx.AsyncClient,
    kind: str,
    n: int,
    poll_interval: float,
    window: float,
    sample: int,
    profile: Path | None = None,
    spread: int | None = None,
    subjects: int = 0,
    traffic: int = 0,
    traffic_subjects: int = 0,
) -> RunResult:
    """One fleet: ``n`` triggers of ``kind`` over ``spread`` resources (trigger ``i`` on resource
    ``i % spread``; ``None``: one resource per trigger). With ``subjects``, trigger ``i`` waits on subject
    ``i % subjects`` (watchers only), and ``traffic`` events per interval arrive on every resource during
    the CPU window, spread over ``traffic_subjects`` subjects (the first ``subjects`` of them are waited on)."""
    m = spread or n
    result = RunResult(kind=kind, n=n, resources=m, poll_interval=poll_interval)
    pool = [f"urn:altinn:resource:bench-{kind}-{n}-{m}-{i}" for i in range(m)]
    resources = [pool[i % m] for i in range(n)]
    before = await stats(admin)
    process = psutil.Process()

    # 1. create and start the fleet under tracemalloc; once every trigger has polled, sample the traced heap
    #    for one poll interval (a time average: in-flight requests hold memory too), then stop tracing
    gc.collect()
    rss0 = process.memory_info().rss
    tracemalloc.start()
    heap0 = tracemalloc.get_traced_memory()[0]
    fleet = Fleet(
        kind,
        [
            make_trigger(kind, r, poll_interval, f"/party/{i % subjects}" if subjects else None)
            for i, r in enumerate(resources)
        ],
        stagger=poll_interval if kind == "http" else 0.0,
    )
    fleet.start()
    deadline = time.monotonic() + poll_interval * 3 + 10
    await asyncio.sleep(poll_interval + 1)
    # every trigger polls once in its first interval; shared triggers share requests, so only the unshared
    # kinds are waited for by request count
    expected_first = n if kind not in ("sensor", "watcher") else 0
    while (await stats(admin))["requests"].get(POLL_KEY, 0) - before["requests"].get(
        POLL_KEY, 0
    ) < expected_first and time.monotonic() < deadline:
        await asyncio.sleep(0.5)
    samples: list[int] = []
    rss: list[int] = []
    sampled_until = time.monotonic() + poll_interval
    while time.monotonic() < sampled_until:
        samples.append(tracemalloc.get_traced_memory()[0] - heap0)
        rss.append(process.memory_info().rss - rss0)
        await asyncio.sleep(0.1)
    tracemalloc.stop()
    result.heap_bytes = int(statistics.mean(samples))
    result.rss_bytes = int(statistics.mean(rss))

    # 2. the measuring window: no events, no tracing; polls counted by the emulator. HttpEventTrigger has no
    #    start jitter, so that fleet polls in bursts: its window starts and ends in a quiet moment, so that no
    #    burst is cut in two (its requests counted on one side of the edge, its CPU on the other)
    bursts = kind == "http-burst"
    if bursts:
        await wait_quiet(admin, poll_interval)
    first = await stats(admin)
    profiler = cProfile.Profile() if profile is not None else None
    cpu0, t0 = time.process_time(), time.monotonic()
    if profiler is not None:
        profiler.enable()
    if traffic:
        with traffic_process(
            str(admin.base_url).rstrip("/"), pool, traffic, traffic_subjects or subjects or 1, poll_interval
        ):
            await asyncio.sleep(window)
    else:
        await asyncio.sleep(window)
    if bursts:
        await wait_quiet(admin, poll_interval)
    if profiler is not None:
        profiler.disable()
    cpu1, t1 = time.process_time(), time.monotonic()
    if profiler is not None and profile is not None:
        profiler.dump_stats(profile.with_name(f"{profile.name}-{kind}-{n}.prof"))
    last = await stats(admin)
    result.cpu_s = cpu1 - cpu0
    result.window_s = t1 - t0
    result.polls = last["requests"].get(POLL_KEY, 0) - first["requests"].get(POLL_KEY, 0)

    # 3. latency: one event on each of `sample` resources, spread over one poll interval; measured for every
    #    trigger on those resources (with few resources, every trigger of the fleet)
    chosen = sorted({round(i * (m - 1) / max(1, sample - 1)) for i in range(min(sample, m))})
    published: dict[str, float] = {}

    async def publish(resource: str, delay: float) -> None:
        await asyncio.sleep(delay)
        started = time.monotonic()
        response = await admin.post(
            "/_emulator/events/generate",
            json={"resource": resource, "count": 1, "type": "bench.changed"},
        )
        response.raise_for_status()
        published[resource] = started

    gap = poll_interval / max(1, len(chosen))
    await asyncio.gather(*(publish(pool[r], k * gap) for k, r in enumerate(chosen)))
    waiting = [i for i in range(n) if resources[i] in published]
    deadline = time.monotonic() + poll_interval * 3 + 5
    while not all(i in fleet.fired for i in waiting) and time.monotonic() < deadline:
        await asyncio.sleep(0.1)
    result.published = len(waiting)
    result.latencies = [fleet.fired[i] - published[resources[i]] for i in waiting if i in fleet.fired]

    await fleet.stop()
    after = await stats(admin)
    result.grants = after["token_grants"] - before["token_grants"]
    result.exchanges = after["token_exchanges"] - before["token_exchanges"]
    result.errors = fleet.errors
    del fleet
    gc.collect()
    await asyncio.sleep(1)  # let closed connections settle before the next run
    return result


# ---------------------------------------------------------------------------------------------------------
# Set-up, report
# ---------------------------------------------------------------------------------------------------------


def set_connections(base_url: str, workdir: Path) -> None:
    """Env-var connections (what ``BaseHook.aget_connection`` resolves outside a task) for both fleets."""
    from airflow_provider_altinn_events.emulator.handle import EmulatorHandle

    handle = EmulatorHandle.create(base_url, scopes=("altinn:events.subscribe",))
    try:
        os.environ[f"AIRFLOW_CONN_{CONN_ID.upper()}"] = handle.connection_json()
        token = handle.altinn_token()  # for HttpEventTrigger: a bearer header it cannot refresh itself
    finally:
        handle.close()
    os.environ[f"AIRFLOW_CONN_{HTTP_CONN_ID.upper()}"] = json.dumps(
        {
            "conn_type": "http",
            "host": base_url,
            "extra": {"Authorization": f"Bearer {token}", "Accept": "application/cloudevents+json"},
        }
    )
    BarePoller.token, BarePoller.base_url = token, base_url
    (workdir / f"{CHECK_MODULE}.py").write_text(CHECK_SOURCE)
    sys.path.insert(0, str(workdir))


def describe_machine() -> str:
    from importlib.metadata import PackageNotFoundError, version

    def of(name: str) -> str:
        try:
            return version(name)
        except PackageNotFoundError:
            return "not installed"

    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as info:
            names = [ln.split(":", 1)[1].strip() for ln in info if ln.startswith("model name")]
        cpu = names[0] if names else cpu
    except OSError:
        pass
    return (
        f"{os.cpu_count()} CPU(s) ({cpu}), {platform.system()} {platform.release()}, Python "
        f"{platform.python_version()}, Airflow {of('apache-airflow-core')}, httpx {of('httpx')}, "
        f"httpx-aiohttp {of('httpx-aiohttp')}, aiohttp {of('aiohttp')}, apache-airflow-providers-http "
        f"{of('apache-airflow-providers-http')}, airflow-provider-altinn-events {of('airflow-provider-altinn-events')}"
    )


def print_result(r: RunResult) -> None:
    print(
        f"  {r.kind:16s} N={r.n:<5d} resources={r.resources:<5d} requests/interval "
        f"{r.requests_per_interval:7.1f}  CPU/wake {r.cpu_us_per_wake:6.0f} us  "
        f"polls/s {r.polls_per_s:7.1f}  CPU/poll {r.cpu_ms_per_poll:6.2f} ms  "
        f"heap/trigger {r.heap_kib_per_trigger:6.1f} KiB (RSS {r.rss_kib_per_trigger:6.1f} KiB)  "
        f"grants/exchanges {r.grants}/{r.exchanges}  latency p50 {r.latency(0.5):5.2f} s "
        f"p99 {r.latency(0.99):5.2f} s ({len(r.latencies)}/{r.published} fired)"
        + (f"  errors {len(r.errors)}: {r.errors[0][:120]}" if r.errors else ""),
        flush=True,
    )


def print_ratios(results: list[RunResult]) -> None:
    print("\nRatios against HttpEventTrigger (issue 8 targets: at most 0.5)")
    by = {(r.kind, r.n): r for r in results}
    for baseline in ("http", "http-burst"):
        for n in sorted({r.n for r in results}):
            base = by.get((baseline, n))
            if base is None:
                continue
            for kind in ("sensor", "watcher", "bare"):
                ours = by.get((kind, n))
                if ours is None:
                    continue
                cpu = (
                    ours.cpu_ms_per_poll / base.cpu_ms_per_poll if base.polls and ours.polls else float("nan")
                )
                heap = ours.heap_bytes / base.heap_bytes if base.heap_bytes > 0 else float("nan")
                print(
                    f"  N={n:<5d} {kind:8s} vs {baseline:10s} CPU per poll {cpu:5.2f}   "
                    f"memory per trigger (heap) {heap:5.2f}"
                )
    print_marginal(by)


def print_marginal(by: dict[tuple[str, int], RunResult]) -> None:
    """Heap one more trigger costs: the slope of total heap between two fleet sizes of one kind.

    Heap per trigger (total / N) includes what a fleet pays once, however large: for our triggers the shared
    client (its kept-alive connections, token, aiohttp's URL caches), spread over few triggers at small N. The
    slope leaves that out; it is the figure to size a triggerer with.
    """
    sizes = sorted({n for _, n in by})
    if len(sizes) < 2:
        return
    print("\nMarginal heap per trigger (slope of the fleet's total heap between sizes), KiB")
    slopes: dict[tuple[str, int, int], float] = {}
    for kind in KINDS:
        for low, high in zip(sizes, sizes[1:], strict=False):
            a, b = by.get((kind, low)), by.get((kind, high))
            if a is None or b is None:
                continue
            slopes[(kind, low, high)] = (b.heap_bytes - a.heap_bytes) / (high - low) / 1024
            fixed = (a.heap_bytes / 1024) - slopes[(kind, low, high)] * low
            print(
                f"  {kind:10s} N={low}..{high}: {slopes[(kind, low, high)]:5.1f} KiB per trigger, "
                f"{fixed:7.0f} KiB once"
            )
    for baseline in ("http", "http-burst"):
        for (kind, low, high), slope in slopes.items():
            base = slopes.get((baseline, low, high))
            if kind in ("sensor", "watcher") and base and base > 0:
                print(f"  N={low}..{high} {kind:8s} vs {baseline:10s} marginal memory {slope / base:5.2f}")


def print_shared(results: list[RunResult]) -> None:
    """Shared polls against the same triggers polling on their own (``*-unshared``), side by side."""
    by = {(r.kind, r.n, r.resources): r for r in results}
    lines = []
    for (kind, n, m), shared in sorted(by.items()):
        alone = by.get((f"{kind}-unshared", n, m))
        if kind not in ("sensor", "watcher") or alone is None:
            continue
        lines.append(
            f"  {kind:8s} N={n:<5d} resources={m:<5d} requests/interval {shared.requests_per_interval:7.1f} vs "
            f"{alone.requests_per_interval:7.1f}   CPU per trigger wake {shared.cpu_us_per_wake:5.0f} vs "
            f"{alone.cpu_us_per_wake:5.0f} us   heap/trigger {shared.heap_kib_per_trigger:4.1f} vs "
            f"{alone.heap_kib_per_trigger:4.1f} KiB   latency p99 {shared.latency(0.99):5.2f} vs "
            f"{alone.latency(0.99):5.2f} s"
        )
    if lines:
        print("\nShared polls vs each trigger polling on its own (shared vs unshared)")
        print("\n".join(lines))


async def warm_up(kinds: list[str]) -> None:
    """Run three triggers of each kind briefly, so imports and one-time set-up are not measured as memory."""
    for kind in kinds:
        fleet = Fleet(
            kind, [make_trigger(kind, f"urn:altinn:resource:warm-up-{kind}-{i}", 0.2) for i in range(3)]
        )
        fleet.start()
        await asyncio.sleep(1.0)
        await fleet.stop()


async def main_async(args: argparse.Namespace, base_url: str) -> list[RunResult]:
    results: list[RunResult] = []
    async with httpx.AsyncClient(base_url=base_url, timeout=60) as admin:
        await warm_up(args.kinds)
        for n in args.sizes:
            for spread in args.resources:
                m = n if spread is None else min(spread, n)
                print(f"N = {n} on {m} resource(s)", flush=True)
                for kind in args.kinds:
                    result = await run_fleet(
                        admin,
                        kind,
                        n,
                        args.poll_interval,
                        args.window,
                        args.latency_sample,
                        args.profile,
                        spread=m,
                        subjects=args.subjects,
                        traffic=args.traffic,
                        traffic_subjects=args.traffic_subjects,
                    )
                    print_result(result)
                    results.append(result)
    return results


def parse_sizes(text: str) -> list[int]:
    sizes = [int(part) for part in text.split(",") if part.strip()]
    if not sizes or any(size < 1 for size in sizes):
        raise argparse.ArgumentTypeError("sizes must be positive integers, e.g. 100,500,1000")
    return sizes


def parse_resources(text: str) -> list[int | None]:
    """``1,10,N``: the triggers spread over 1, 10 and N resources (``N``: one per trigger)."""
    spreads: list[int | None] = []
    for part in (p.strip() for p in text.split(",")):
        if part.upper() == "N":
            spreads.append(None)
        elif part.isdigit() and int(part) >= 1:
            spreads.append(int(part))
        else:
            raise argparse.ArgumentTypeError("resources must be positive integers or N, e.g. 1,10,N")
    return spreads


def parse_kinds(text: str) -> list[str]:
    kinds = [part.strip() for part in text.split(",") if part.strip()]
    if not kinds or any(kind not in KINDS for kind in kinds):
        raise argparse.ArgumentTypeError(f"kinds must be drawn from {', '.join(KINDS)}")
    return kinds


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", type=parse_sizes, default=[100, 500, 1000], help="fleet sizes N")
    parser.add_argument(
        "--kinds",
        type=parse_kinds,
        default=list(DEFAULT_KINDS),
        help="sensor,watcher,http (default); http-burst: HttpEventTriggers that all start together (a triggerer "
        "restart); bare: a jittered loop on one shared httpx client (the floor of our client stack)",
    )
    parser.add_argument(
        "--resources",
        type=parse_resources,
        default=[None],
        help="how many resources the N triggers wait on, e.g. 1,10,N (default N: one each)",
    )
    parser.add_argument(
        "--json", type=Path, default=None, metavar="PATH", help="also write the figures as JSON to PATH"
    )
    parser.add_argument(
        "--subjects",
        type=int,
        default=0,
        help="watchers wait on this many subjects (trigger i on subject i %% K); with --traffic, compares "
        "kinds watcher (one read per subject) and watcher-unfiltered (one read of the resource)",
    )
    parser.add_argument(
        "--traffic", type=int, default=0, help="events per interval on every resource during the CPU window"
    )
    parser.add_argument(
        "--traffic-subjects",
        type=int,
        default=0,
        help="the traffic's subjects (default --subjects); more than --subjects: events nobody waits on",
    )
    parser.add_argument("--poll-interval", type=float, default=5.0, help="seconds between polls (5)")
    parser.add_argument("--window", type=float, default=15.0, help="CPU measuring window in seconds (15)")
    parser.add_argument(
        "--latency-sample", type=int, default=50, help="resources that get an event per run (50)"
    )
    parser.add_argument(
        "--profile",
        type=Path,
        default=None,
        metavar="PREFIX",
        help="run cProfile over each measuring window and write PREFIX-<kind>-<N>.prof (read them with "
        "`python -m pstats`); the profiler roughly doubles the CPU figures, so do not quote them",
    )
    args = parser.parse_args()

    print(f"Trigger fleet benchmark on {describe_machine()}")
    print(
        f"poll interval {args.poll_interval:g} s, CPU window {args.window:g} s, latency sample "
        f"{args.latency_sample} events per run; emulator in a separate process"
    )
    with (
        tempfile.TemporaryDirectory(prefix="altinn-bench-") as workdir,
        emulator_process() as (base_url, pid),
    ):
        print(f"emulator {base_url} (pid {pid})", flush=True)
        set_connections(base_url, Path(workdir))
        results = asyncio.run(main_async(args, base_url))
    print_ratios(results)
    print_shared(results)
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(
            json.dumps(
                {
                    "machine": describe_machine(),
                    "command": "benchmarks/trigger_fleet.py " + " ".join(sys.argv[1:]),
                    "measured": time.strftime("%Y-%m-%d", time.gmtime()),
                    "runs": [r.to_json() for r in results],
                },
                indent=1,
            )
            + "\n"
        )
        print(f"\nwrote {args.json}")


if __name__ == "__main__":
    main()

"""The poll floor: CPU per poll of our client's poll against a bare aiohttp loop and a bare httpx loop.

Issue 17 asks for a poll within 1.3 times a bare aiohttp loop on the same grid and endpoint, measured side by
side in one run. N pollers, each on its own resource (no events: every poll gets ``[]``, as nearly every poll
of a waiting trigger does), poll ``GET /events`` of one emulator every ``--poll-interval`` seconds in one
event loop, on the shared tick grid of ``triggers/_cadence.py`` (the same schedule for every contender).
Contenders:

* ``client``: what a trigger does per poll, without Airflow: ``AsyncAltinnEventsClient.list_events`` (token,
  request building, retries, error mapping, size bound, page parsing) and ``poll_step`` (``client/matching.py``);
* ``client-adapter``: the same through httpx-aiohttp's adapter (``fast_path=False``, ``client/transport.py``);
* ``aiohttp``: one ``aiohttp.ClientSession`` (8 connections, as our pool), a fixed bearer header, the query as
  ``params``, the body read and, when not ``[]``, ``json.loads``-ed: the floor of the issue;
* ``httpx``: one ``httpx.AsyncClient`` on httpx-aiohttp's transport with a fixed bearer header and
  ``response.json()`` (the ``bare`` kind of ``trigger_fleet.py``).

Every contender runs ``--rounds`` times, in turns, the order reversed every other round (A B C, C B A,
A B C, ...), so a slow moment of a shared machine falls on all of them and no contender always runs first
or last. Printed per contender: the median of its rounds; and, against ``aiohttp``, the ratio of each round
to the ``aiohttp`` turn of the same round and the median of those per-round ratios (the figure issue 17's
1.3 is checked against: a round's turns run back to back, so the machine's drift between rounds cancels).
CPU is ``time.process_time`` of this process over a window after a warm-up interval; polls are counted by
the pollers. The emulator runs in its own process, so its CPU is not in the figures.

Every contender sends the same query (``resource``, ``after``, ``size``: the triggers' default page size),
over at most 8 connections, with a bearer header and ``Accept``; the bare loops set them once per session,
as a plain user of each library would.

Usage::

    .venv/bin/python benchmarks/poll_floor.py                      # N = 200, 1 s interval, 6 rounds of 8 s
    .venv/bin/python benchmarks/poll_floor.py --n 500 --window 15 --rounds 5
    .venv/bin/python benchmarks/poll_floor.py --kinds client,aiohttp --profile /tmp/floor   # cProfile files

``run_floor(base_url, token, connection_json, ...)`` is the importable entry point (``trigger_fleet.py``).
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import gc
import json
import os
import statistics
import sys
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from trigger_fleet import emulator_process as _fleet_emulator  # benchmarks/ is sys.path[0] when run

from airflow_provider_altinn_events.client._constants import DEFAULT_PAGE_SIZE

EVENTS_PATH = "/events/api/v1/events"
KINDS = ("client", "client-adapter", "aiohttp", "httpx")
PAGE_SIZE = DEFAULT_PAGE_SIZE  # what a waiting trigger asks for, so every contender sends the same query


@dataclass
class Figures:
    kind: str
    cpu_ms_per_poll: list[float] = field(default_factory=list)
    polls_per_s: list[float] = field(default_factory=list)

    @property
    def median(self) -> float:
        return statistics.median(self.cpu_ms_per_poll) if self.cpu_ms_per_poll else float("nan")

    def ratios(self, floor: Figures) -> list[float]:
        """Each round's CPU per poll over the floor's in the same round."""
        return [
            mine / theirs
            for mine, theirs in zip(self.cpu_ms_per_poll, floor.cpu_ms_per_poll, strict=False)
            if theirs > 0
        ]


# -- the emulator in its own process ------------------------------------------------------------------------


@contextmanager
def emulator_process() -> Iterator[str]:
    """The emulator CLI in its own process, as ``trigger_fleet.py`` starts it; yields its base URL."""
    with _fleet_emulator() as (base_url, _pid):
        yield base_url


def credentials(base_url: str) -> tuple[str, str]:
    """A connection (JSON, for our client) and an Altinn token (for the bare loops) of the emulator."""
    from airflow_provider_altinn_events.emulator.handle import EmulatorHandle

    handle = EmulatorHandle.create(base_url, scopes=("altinn:events.subscribe",))
    try:
        return handle.connection_json(), handle.altinn_token()
    finally:
        handle.close()


# -- the contenders: each returns (poll one resource, close) ------------------------------------------------

Poll = Callable[[str], Awaitable[bool]]


async def make_client(connection_json: str, *, fast_path: bool) -> tuple[Poll, Callable[[], Awaitable[None]]]:
    from types import SimpleNamespace

    from airflow_provider_altinn_events.client.clients import POOL_LIMITS, AsyncAltinnEventsClient
    from airflow_provider_altinn_events.client.matching import EventFilter, initial_state, poll_step
    from airflow_provider_altinn_events.client.settings import AltinnSettings
    from airflow_provider_altinn_events.client.transport import AltinnAiohttpTransport

    raw = json.loads(connection_json)
    extra = raw.get("extra") or {}
    conn = SimpleNamespace(
        conn_id="altinn_floor",
        host=raw.get("host"),
        login=raw.get("login"),
        password=raw.get("password"),
        port=raw.get("port"),
        schema=raw.get("schema"),
        extra_dejson=extra if isinstance(extra, dict) else json.loads(extra),
    )
    settings = AltinnSettings.from_connection(conn)
    client = AsyncAltinnEventsClient(
        settings, transport=AltinnAiohttpTransport(limits=POOL_LIMITS, fast_path=fast_path)
    )
    filters: dict[str, Any] = {}

    async def poll(resource: str) -> bool:
        found = filters.get(resource)
        if found is None:
            found = filters[resource] = (EventFilter(resource=resource), initial_state("0"))
        event_filter, state = found
        page = await client.list_events(
            after=state.after, size=state.page_size, **event_filter.server_query()
        )
        step = poll_step(state, page, event_filter)
        filters[resource] = (event_filter, step.state)
        return bool(step.done)

    return poll, client.aclose


async def make_aiohttp(base_url: str, token: str) -> tuple[Poll, Callable[[], Awaitable[None]]]:
    import aiohttp

    session = aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=8),
        headers={"Authorization": f"Bearer {token}", "Accept": "application/cloudevents+json"},
        timeout=aiohttp.ClientTimeout(total=30),
    )
    url = f"{base_url}{EVENTS_PATH}"

    async def poll(resource: str) -> bool:
        async with session.get(
            url, params={"resource": resource, "after": "0", "size": PAGE_SIZE}
        ) as response:
            body = await response.read()
            return response.status == 200 and body != b"[]" and bool(json.loads(body))

    return poll, session.close


async def make_httpx(base_url: str, token: str) -> tuple[Poll, Callable[[], Awaitable[None]]]:
    import httpx
    from httpx_aiohttp import AiohttpTransport

    client = httpx.AsyncClient(
        base_url=base_url,
        transport=AiohttpTransport(limits=httpx.Limits(max_connections=8)),
        headers={"Authorization": f"Bearer {token}", "Accept": "application/cloudevents+json"},
        timeout=30,
    )

    async def poll(resource: str) -> bool:
        response = await client.get(
            EVENTS_PATH, params={"resource": resource, "after": "0", "size": PAGE_SIZE}
        )
        return response.status_code == 200 and bool(response.json())

    return poll, client.aclose


async def contender(kind: str, base_url: str, token: str, connection_json: str) -> Any:
    if kind == "client":
        return await make_client(connection_json, fast_path=True)
    if kind == "client-adapter":
        return await make_client(connection_json, fast_path=False)
    if kind == "aiohttp":
        return await make_aiohttp(base_url, token)
    if kind == "httpx":
        return await make_httpx(base_url, token)
    raise ValueError(f"kind must be one of {', '.join(KINDS)}, not {kind!r}")


# -- one round ----------------------------------------------------------------------------------------------


async def one_round(
    kind: str,
    n: int,
    poll_interval: float,
    window: float,
    base_url: str,
    token: str,
    connection_json: str,
    profile: Path | None = None,
    round_no: int = 0,
) -> tuple[float, float]:
    """CPU ms per poll and polls per second of N pollers of ``kind`` over ``window`` seconds."""
    from airflow_provider_altinn_events.triggers._cadence import Cadence

    poll, close = await contender(kind, base_url, token, connection_json)
    polls = 0
    errors: list[BaseException] = []

    async def poller(resource: str) -> None:
        nonlocal polls
        cadence = Cadence(poll_interval)
        await cadence.first()
        while True:
            try:
                await poll(resource)
            except Exception as error:  # a failed poll is a finding, not a crash of the benchmark
                errors.append(error)
            polls += 1
            await cadence.next()

    tasks = [asyncio.create_task(poller(f"urn:altinn:resource:floor-{kind}-{i}")) for i in range(n)]
    await asyncio.sleep(poll_interval * 1.5)  # every poller has polled; connections and token are warm
    gc.collect()
    profiler = cProfile.Profile() if profile is not None else None
    count0, cpu0, t0 = polls, time.process_time(), time.monotonic()
    if profiler is not None:
        profiler.enable()
    await asyncio.sleep(window)
    if profiler is not None:
        profiler.disable()
    count1, cpu1, t1 = polls, time.process_time(), time.monotonic()
    if profiler is not None and profile is not None:
        profiler.dump_stats(profile.with_name(f"{profile.name}-{kind}-{round_no}.prof"))
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    await close()
    if errors:
        print(
            f"  {kind}: {len(errors)} failed poll(s), e.g. {type(errors[0]).__name__}: {errors[0]}",
            flush=True,
        )
    done = count1 - count0
    return ((cpu1 - cpu0) / done * 1000 if done else float("nan")), done / (t1 - t0)


async def run_floor(
    base_url: str,
    token: str,
    connection_json: str,
    *,
    kinds: tuple[str, ...] = KINDS,
    n: int = 200,
    poll_interval: float = 1.0,
    window: float = 8.0,
    rounds: int = 6,
    profile: Path | None = None,
) -> dict[str, Figures]:
    """Every kind ``rounds`` times, in turns, the order reversed every other round; the figures per kind."""
    figures = {kind: Figures(kind) for kind in kinds}
    for round_no in range(rounds):
        for kind in kinds if round_no % 2 == 0 else tuple(reversed(kinds)):
            cpu, rate = await one_round(
                kind, n, poll_interval, window, base_url, token, connection_json, profile, round_no
            )
            figures[kind].cpu_ms_per_poll.append(cpu)
            figures[kind].polls_per_s.append(rate)
            print(
                f"  round {round_no + 1} {kind:15s} {cpu:6.3f} ms CPU/poll  {rate:7.1f} polls/s", flush=True
            )
    return figures


def print_figures(figures: dict[str, Figures]) -> None:
    floor = figures.get("aiohttp")
    print("median over rounds (each round's figure in brackets):")
    for kind, figure in figures.items():
        spread = ", ".join(f"{v:.3f}" for v in figure.cpu_ms_per_poll)
        print(f"  {kind:15s} {figure.median:6.3f} ms CPU/poll ({spread})", flush=True)
    if floor is None:
        return
    print("against aiohttp: median of the per-round ratios (each round's ratio in brackets):")
    for kind, figure in figures.items():
        if figure is floor:
            continue
        ratios = figure.ratios(floor)
        if ratios:
            spread = ", ".join(f"{r:.2f}" for r in ratios)
            print(f"  {kind:15s} {statistics.median(ratios):5.2f}x ({spread})", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--n", type=int, default=200, help="pollers (200)")
    parser.add_argument("--poll-interval", type=float, default=1.0, help="seconds between polls (1)")
    parser.add_argument("--window", type=float, default=8.0, help="CPU measuring window in seconds (8)")
    parser.add_argument("--rounds", type=int, default=6, help="rounds per contender, in turns (6)")
    parser.add_argument("--kinds", default=",".join(KINDS), help=f"comma-separated, from {', '.join(KINDS)}")
    parser.add_argument("--profile", type=Path, default=None, help="write cProfile files with this prefix")
    args = parser.parse_args()
    kinds = tuple(k for k in args.kinds.split(",") if k)
    if not kinds or any(k not in KINDS for k in kinds):
        parser.error(f"--kinds must be drawn from {', '.join(KINDS)}")
    with emulator_process() as base_url:
        connection_json, token = credentials(base_url)
        print(
            f"poll floor: N = {args.n}, interval {args.poll_interval} s, window {args.window} s, "
            f"{args.rounds} round(s), {os.cpu_count()} CPU(s), Python {sys.version.split()[0]}",
            flush=True,
        )
        figures = asyncio.run(
            run_floor(
                base_url,
                token,
                connection_json,
                kinds=kinds,
                n=args.n,
                poll_interval=args.poll_interval,
                window=args.window,
                rounds=args.rounds,
                profile=args.profile,
            )
        )
    print_figures(figures)


if __name__ == "__main__":
    main()

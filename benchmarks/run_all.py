"""Run every benchmark in ``benchmarks/`` one after the other and print their figures (``make bench``).

Each script runs in its own interpreter, so one benchmark's imports, threads and memory never colour the
next; their output is passed through as it comes. The default sizes are modest, so the whole run takes about
ten minutes on two cores; ``--full`` gives each script its own defaults (the sizes issue 8 names: 1,000,000
events for the emulator, 200,000 for ingestion throughput, 15 s windows for the trigger fleet) and takes
much longer. A script added to ``benchmarks/`` later runs too, with no arguments, unless its name starts with
``_``. Nothing is asserted: the figures are printed; the exit status is non-zero only when a script failed.

Usage::

    .venv/bin/python benchmarks/run_all.py                     # all, modest sizes
    .venv/bin/python benchmarks/run_all.py --only trigger_fleet,import_cost
    .venv/bin/python benchmarks/run_all.py --full
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent

#: Arguments for a run of about ten minutes in all on two cores (script name -> arguments).
MODEST: dict[str, list[str]] = {
    "import_cost": ["5"],
    "emulator_serve": ["--count", "200000"],
    "ingest": ["--events", "100000", "--repeat", "3", "--memory-events", "10000,1000000"],
    "trigger_fleet": [
        *("--sizes", "100,500,1000", "--kinds", "sensor,watcher,http,http-burst"),
        *("--window", "10", "--latency-sample", "50"),
    ],
}
#: The order they run in; scripts not listed follow in name order.
ORDER = ("import_cost", "emulator_serve", "ingest", "trigger_fleet")


@dataclass
class Outcome:
    name: str
    seconds: float
    code: int


def scripts() -> list[str]:
    found = sorted(p.stem for p in HERE.glob("*.py") if not p.name.startswith("_") and p.name != "run_all.py")
    return [name for name in ORDER if name in found] + [name for name in found if name not in ORDER]


def machine() -> str:
    cpu = platform.machine()
    try:
        with open("/proc/cpuinfo") as info:
            names = [line.split(":", 1)[1].strip() for line in info if line.startswith("model name")]
        cpu = names[0] if names else cpu
    except OSError:
        pass
    return f"{os.cpu_count()} CPU(s) ({cpu}), {platform.system()} {platform.release()}, Python {platform.python_version()}"


def run(name: str, args: list[str]) -> Outcome:
    command = [sys.executable, str(HERE / f"{name}.py"), *args]
    print(f"\n=== {name} {' '.join(args)}".rstrip(), flush=True)
    started = time.monotonic()
    code = subprocess.call(command, cwd=HERE.parent)
    outcome = Outcome(name, time.monotonic() - started, code)
    status = "ok" if code == 0 else f"FAILED (exit {code})"
    print(f"=== {name}: {status} in {outcome.seconds:.0f} s", flush=True)
    return outcome


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--only", help="comma-separated script names (without .py)")
    parser.add_argument("--full", action="store_true", help="each script's own (larger) default sizes")
    args = parser.parse_args()

    names = scripts()
    if args.only:
        wanted = [name.strip().removesuffix(".py") for name in args.only.split(",") if name.strip()]
        unknown = sorted(set(wanted) - set(names))
        if unknown:
            parser.error(f"unknown benchmark(s) {', '.join(unknown)}; there are: {', '.join(names)}")
        names = [name for name in names if name in wanted]

    print(f"Benchmarks on {machine()}: {', '.join(names)} ({'full' if args.full else 'modest'} sizes)")
    outcomes = [run(name, [] if args.full else MODEST.get(name, [])) for name in names]

    print("\nSummary")
    for outcome in outcomes:
        status = "ok" if outcome.code == 0 else f"FAILED (exit {outcome.code})"
        print(f"  {outcome.name:16s} {outcome.seconds:6.0f} s  {status}")
    print(f"  {'total':16s} {sum(o.seconds for o in outcomes):6.0f} s")
    if any(outcome.code for outcome in outcomes):
        sys.exit(1)


if __name__ == "__main__":
    main()

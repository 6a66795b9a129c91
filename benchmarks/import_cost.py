"""DAG parse cost: how much importing our operators and sensor adds to ``import airflow.sdk``.

Every DAG file is parsed again and again by the DAG processor, so the provider's import cost is paid on
every parse. Each sample runs in a fresh interpreter; the figure is the median wall time over N runs, the
two sides interleaved so that drift in the machine's load hits both alike. Wall time includes interpreter
start-up and exit, which vary by +-10% between runs on a small VM; so the imports are also timed inside the
interpreter (``airflow.sdk``, then the provider's modules on top), the steadier figure.
Target (issue 8): ratio at most 1.1.

Usage: python benchmarks/import_cost.py [N]
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import time

BASELINE = "import airflow.sdk"
PROVIDER = (
    "import airflow.sdk\n"
    "from airflow_provider_altinn_events.operators.publish import AltinnEventsPublishOperator\n"
    "from airflow_provider_altinn_events.operators.subscriptions import AltinnEventsCreateSubscriptionOperator\n"
    "from airflow_provider_altinn_events.operators.ingest import AltinnEventsIngestOperator\n"
    "from airflow_provider_altinn_events.sensors.altinn_events import AltinnEventsSensor\n"
    "from airflow_provider_altinn_events.triggers.altinn_events import AltinnEventsWatcherTrigger\n"
)


def sample(code: str) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], check=True)
    return time.perf_counter() - start


def heavy_modules() -> list[str]:
    """Modules the provider imports that a DAG file should not pay for."""
    probe = PROVIDER + (
        "import sys\n"
        "print(','.join(m for m in ('httpx_aiohttp','aiohttp','jwt','cryptography.hazmat.primitives.asymmetric.rsa',"
        "'airflow_provider_altinn_events.client.clients','airflow_provider_altinn_events.client.auth') if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], check=True, capture_output=True, text=True
    ).stdout.strip()
    return [m for m in out.split(",") if m]


def in_process(code: str) -> tuple[float, float]:
    """Seconds ``import airflow.sdk`` (the first line of ``code``) and then the rest of ``code`` take inside a
    fresh interpreter: interpreter start-up, the noisiest part of a wall-clock sample, is left out."""
    lines = code.splitlines()
    first, rest = lines[0], "\n".join(lines[1:]) or "pass"
    probe = (
        "import time\n"
        f"t0 = time.perf_counter()\n{first}\nt1 = time.perf_counter()\n{rest}\nt2 = time.perf_counter()\n"
        "print(t1 - t0, t2 - t1)"
    )
    out = subprocess.run([sys.executable, "-c", probe], check=True, capture_output=True, text=True).stdout
    sdk, provider = (float(x) for x in out.split())
    return sdk, provider


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 7
    sample(BASELINE)  # warm the OS page cache once
    base: list[float] = []
    ours: list[float] = []
    for _ in range(n):  # interleaved, so drift in the machine's load hits both sides alike
        base.append(sample(BASELINE))
        ours.append(sample(PROVIDER))
    b, o = statistics.median(base), statistics.median(ours)
    print(f"import airflow.sdk alone            : {b * 1000:7.1f} ms wall (median of {n})")
    print(f"+ provider operators, sensor, trigger: {o * 1000:7.1f} ms wall (median of {n})")
    print(f"ratio                                : {o / b:7.3f}  (target <= 1.1)")
    sdk_times: list[float] = []
    provider_times: list[float] = []
    for _ in range(n):
        sdk_times.append(in_process(BASELINE)[0])
        sdk, provider = in_process(PROVIDER)
        sdk_times.append(sdk)
        provider_times.append(provider)
    bi, pi = statistics.median(sdk_times), statistics.median(provider_times)
    print(
        f"imports alone, in process           : {bi * 1000:7.1f} ms airflow.sdk + {pi * 1000:5.1f} ms "
        f"the provider; ratio {(bi + pi) / bi:5.3f}"
    )
    print(f"heavy modules loaded at import       : {heavy_modules() or 'none'}")


if __name__ == "__main__":
    main()

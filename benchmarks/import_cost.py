"""DAG parse cost: how much importing our operators and sensor adds to ``import airflow.sdk``.

Every DAG file is parsed again and again by the DAG processor, so the provider's import cost is paid on
every parse. Each sample runs in a fresh interpreter; the figure is the median wall time over N runs.
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


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 7
    sample(BASELINE)  # warm the OS page cache once
    base = [sample(BASELINE) for _ in range(n)]
    ours = [sample(PROVIDER) for _ in range(n)]
    b, o = statistics.median(base), statistics.median(ours)
    print(f"import airflow.sdk alone            : {b * 1000:7.1f} ms (median of {n})")
    print(f"+ provider operators, sensor, trigger: {o * 1000:7.1f} ms (median of {n})")
    print(f"ratio                                : {o / b:7.3f}  (target <= 1.1)")
    print(f"heavy modules loaded at import       : {heavy_modules() or 'none'}")


if __name__ == "__main__":
    main()

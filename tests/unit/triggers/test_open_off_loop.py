"""The first trigger of a triggerer opens its client without blocking the event loop (issue: a cold triggerer
imported the HTTP/JWT stack and parsed the RSA key on the loop, 0.2-0.8 s during which every other trigger
of that triggerer stood still and Airflow warned about a blocked loop).

Asserted on the mechanism, in a fresh interpreter so the imports are cold: nothing of the client stack is
imported, and no key is parsed, on the loop's thread. The heartbeat's longest gap is printed, not asserted.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from airflow_provider_altinn_events.emulator.handle import generate_private_key_pem

SCRIPT = Path(__file__).with_name("_cold_open.py")
REPO = Path(__file__).resolve().parents[3]


def test_first_client_imports_and_parses_the_key_off_the_event_loop(tmp_path: Path) -> None:
    connection = {
        "conn_type": "altinn_events",
        "host": "http://127.0.0.1:9",  # never called: opening a client does no network I/O
        "login": "client-id",
        "password": generate_private_key_pem(),
        "extra": {"environment": "custom", "key_id": "kid-1", "scopes": "altinn:events.subscribe"},
    }
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")}
    env.update(
        {
            "AIRFLOW_HOME": str(tmp_path),
            "AIRFLOW_CONN_ALTINN_EVENTS_DEFAULT": json.dumps(connection),
            "PYTHONPATH": os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")]),
        }
    )
    done = subprocess.run(
        [sys.executable, str(SCRIPT)], env=env, capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    print(
        f"\nfirst client opened in {result['open_seconds']:.3f} s; "
        f"longest event-loop gap meanwhile {result['max_gap'] * 1000:.0f} ms"
    )
    assert result["on_loop"] == []
    assert result["key_loaded"]  # parsed while opening (in the worker thread), not on the first request

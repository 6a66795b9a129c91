"""Run by test_open_off_loop.py in a fresh interpreter: open a trigger's shared client with cold imports.

Like a triggerer, Airflow is loaded before the event loop starts and the provider's client stack is not.
While the first trigger opens its client, a profiler on the loop's thread records every module executed
(an import) and every key parse there, and a heartbeat coroutine records its longest gap. Prints JSON.
"""

from __future__ import annotations

import asyncio
import json
import sys
import threading
import time
from types import FrameType
from typing import Any

import airflow.sdk  # noqa: F401  # loaded in every triggerer before any trigger runs

from airflow_provider_altinn_events.triggers import _runtime

WATCHED = ("airflow_provider_altinn_events", "httpx", "httpx_aiohttp", "aiohttp", "jwt", "cryptography")
on_loop: list[str] = []


def _module_of(filename: str) -> str | None:
    parts = filename.replace("\\", "/").split("/")
    for index, part in enumerate(parts):
        if part in WATCHED and index + 1 < len(parts):
            return ".".join(parts[index:]).removesuffix(".py")
    return None


def _profile(frame: FrameType, event: str, arg: Any) -> None:
    if event != "call":
        return
    code = frame.f_code
    if code.co_name == "<module>" or code.co_name in ("load_signing_key", "signing_key"):
        name = _module_of(code.co_filename)
        if name is not None:
            on_loop.append(f"{name}:{code.co_name}")


async def main() -> dict[str, Any]:
    gaps: list[float] = []
    stop = asyncio.Event()

    async def heartbeat() -> None:
        last = time.perf_counter()
        while not stop.is_set():
            await asyncio.sleep(0.005)
            now = time.perf_counter()
            gaps.append(now - last)
            last = now

    beat = asyncio.create_task(heartbeat())
    await asyncio.sleep(0.05)
    assert threading.current_thread() is threading.main_thread()
    sys.setprofile(_profile)  # this thread only: the loop's
    started = time.perf_counter()
    try:
        client = await _runtime._CLIENTS.acquire("altinn_events_default")
    finally:
        sys.setprofile(None)
    opened = time.perf_counter() - started
    key_loaded = client.auth._key is not None
    await _runtime._CLIENTS.release("altinn_events_default", client)
    stop.set()
    await beat
    return {"on_loop": on_loop, "max_gap": max(gaps), "open_seconds": opened, "key_loaded": key_loaded}


if __name__ == "__main__":
    print(json.dumps(asyncio.run(main())))

"""Fault injection for the Altinn paths (``POST /_emulator/faults``) and request counting.

Faults apply in registration order to every path outside ``/_emulator/`` (token services included).
A fault with ``times`` is used up after that many matching requests; one without lasts until
``DELETE /_emulator/faults``. A fault may delay the request (``delay_ms``; then it proceeds unless it
also has a ``status``), answer with a ``status`` (and ``Retry-After``), or drop the connection
without any response.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
from dataclasses import asdict, dataclass
from typing import Any

from starlette.types import ASGIApp, Receive, Scope, Send

from .responses import problem_body
from .state import Stats

log = logging.getLogger(__name__)
ADMIN_PREFIX = "/_emulator"


class FaultSpecError(ValueError):
    """A fault body the emulator cannot use."""


@dataclass
class Fault:
    """One registered fault."""

    id: int
    path: str
    method: str | None = None
    status: int | None = None
    retry_after: str | None = None
    delay_ms: int = 0
    drop_connection: bool = False
    times: int | None = None
    body: Any = None

    def matches(self, method: str, path: str) -> bool:
        return (self.method is None or self.method in ("*", method)) and path.startswith(self.path)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class FaultList:
    """Thread-safe, ordered list of faults."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._faults: list[Fault] = []
        self._next_id = 1

    def add(self, spec: Any) -> Fault:
        """Validate and register a fault.

        :raises FaultSpecError: when a field has the wrong type or nothing would happen.
        """
        if not isinstance(spec, dict):
            raise FaultSpecError("fault must be a JSON object")
        path = spec.get("path", "/")
        if not isinstance(path, str) or not path.startswith("/"):
            raise FaultSpecError("path must be a path prefix starting with '/'")
        if path.startswith(ADMIN_PREFIX):
            raise FaultSpecError("faults apply to the Altinn paths only, not /_emulator/")
        method = spec.get("method")
        if method is not None and not isinstance(method, str):
            raise FaultSpecError("method must be a string such as 'GET'")
        status = spec.get("status")
        if status is not None and (
            not isinstance(status, int) or isinstance(status, bool) or not 100 <= status <= 599
        ):
            raise FaultSpecError("status must be an HTTP status code")
        retry_after = spec.get("retry_after")
        if retry_after is not None and not isinstance(retry_after, int | float | str):
            raise FaultSpecError("retry_after must be seconds or an HTTP date")
        delay = spec.get("delay_ms", 0) or 0
        if not isinstance(delay, int | float) or delay < 0:
            raise FaultSpecError("delay_ms must be a non-negative number")
        drop = spec.get("drop_connection", False)
        if not isinstance(drop, bool):
            raise FaultSpecError("drop_connection must be true or false")
        times = spec.get("times")
        if times is not None and (not isinstance(times, int) or isinstance(times, bool) or times < 1):
            raise FaultSpecError("times must be a positive integer")
        if status is None and not drop and not delay:
            raise FaultSpecError("a fault needs status, delay_ms or drop_connection")
        with self._lock:
            fault = Fault(
                id=self._next_id,
                path=path,
                method=method.upper() if method else None,
                status=status,
                retry_after=None if retry_after is None else _retry_after_text(retry_after),
                delay_ms=int(delay),
                drop_connection=drop,
                times=times,
                body=spec.get("body"),
            )
            self._next_id += 1
            self._faults.append(fault)
        return fault

    def take(self, method: str, path: str) -> Fault | None:
        """The first matching fault, consuming one of its ``times``."""
        with self._lock:
            for fault in self._faults:
                if fault.matches(method, path):
                    if fault.times is not None:
                        fault.times -= 1
                        if fault.times <= 0:
                            self._faults.remove(fault)
                    return fault
        return None

    def clear(self) -> int:
        with self._lock:
            count = len(self._faults)
            self._faults.clear()
            return count

    def list(self) -> list[dict[str, Any]]:
        with self._lock:
            return [f.to_dict() for f in self._faults]


def _retry_after_text(value: int | float | str) -> str:
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return str(value)


class FaultMiddleware:
    """ASGI middleware: counts requests, then applies faults to Altinn paths."""

    def __init__(self, app: ASGIApp, faults: FaultList, stats: Stats) -> None:
        self.app = app
        self.faults = faults
        self.stats = stats

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or str(scope["path"]).startswith(ADMIN_PREFIX):
            await self.app(scope, receive, send)
            return
        method, path = str(scope["method"]), str(scope["path"])
        self.stats.count_request(f"{method} {path}")
        fault = self.faults.take(method, path)
        if fault is None:
            await self.app(scope, receive, send)
            return
        if fault.delay_ms:
            await asyncio.sleep(fault.delay_ms / 1000)
        if fault.drop_connection:
            await _drop(receive, send)
            return
        if fault.status is None:
            await self.app(scope, receive, send)
            return
        await _send_fault(fault, send)


async def _send_fault(fault: Fault, send: Send) -> None:
    status = fault.status or 500
    headers: list[tuple[bytes, bytes]] = []
    if fault.body is not None:
        body = json.dumps(fault.body).encode()
        headers.append((b"content-type", b"application/json; charset=utf-8"))
    elif status >= 400 and status not in (401, 403):
        body = json.dumps(problem_body(status, "Fault injected by the Altinn emulator.")).encode()
        headers.append((b"content-type", b"application/problem+json; charset=utf-8"))
    else:
        body = b""
    if fault.retry_after is not None:
        headers.append((b"retry-after", fault.retry_after.encode()))
    headers.append((b"content-length", str(len(body)).encode()))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def _drop(receive: Receive, send: Send) -> None:
    """Close the TCP connection without sending a byte of response.

    uvicorn hands the app bound methods of its per-request cycle object, which holds the transport;
    closing it makes the client see a dropped connection. Once uvicorn has noticed the disconnect it
    does not try to answer. Under another server we fall back to an aborted response.
    """
    cycle: Any = getattr(receive, "__self__", None)
    transport = getattr(cycle, "transport", None)
    if transport is not None and hasattr(cycle, "disconnected"):
        transport.abort() if hasattr(transport, "abort") else transport.close()
        for _ in range(100):
            if getattr(cycle, "disconnected", False):
                return
            await asyncio.sleep(0)
        cycle.disconnected = True
        return
    raise ConnectionAbortedError("fault: drop_connection")

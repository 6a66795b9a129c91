"""A tiny local push endpoint for Altinn subscriptions: answers every POST with 200 and records the body.

The emulator (run with ``--allow-http-webhooks``) accepts ``http://127.0.0.1`` endpoints, so ``make demo`` and
the end-to-end suite can watch a subscription being validated and events being pushed without TLS. Each
received CloudEvent is kept in memory and appended to an NDJSON file, one line per POST.

Run it on its own to see what Altinn (or the emulator) pushes::

    python scripts/webhook_receiver.py --port 8799 --out received.ndjson
"""

from __future__ import annotations

import argparse
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

VALIDATION_TYPE = "platform.events.validatesubscription"


class WebhookReceiver:
    """An HTTP server on ``127.0.0.1`` in a background thread that records every POSTed JSON body.

    :param out: NDJSON file to append each received body to (``None``: memory only).
    :param port: TCP port; ``0`` picks a free one.
    """

    def __init__(self, out: Path | None = None, port: int = 0) -> None:
        self.out = out
        self.received: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length)
                try:
                    body = json.loads(raw) if raw else None
                except ValueError:
                    body = {"unparsed": raw.decode("utf-8", "replace")}
                receiver._record(self.path, body)
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                """Quiet: the demo prints its own summary."""

        self._server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self._server.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}/altinn/events"

    def _record(self, path: str, body: Any) -> None:
        entry = {"received_at": time.time(), "path": path, "body": body}
        with self._changed:
            self.received.append(entry)
            if self.out is not None:
                with self.out.open("a", encoding="utf-8") as handle:
                    handle.write(json.dumps(entry) + "\n")
            self._changed.notify_all()

    def events(self, type_: str | None = None) -> list[dict[str, Any]]:
        """The received bodies (CloudEvents), optionally only those of one type."""
        with self._lock:
            bodies = [entry["body"] for entry in self.received if isinstance(entry["body"], dict)]
        return [body for body in bodies if type_ is None or body.get("type") == type_]

    def validations(self) -> list[dict[str, Any]]:
        return self.events(VALIDATION_TYPE)

    def pushed(self) -> list[dict[str, Any]]:
        """Events other than the validation handshake."""
        return [body for body in self.events() if body.get("type") != VALIDATION_TYPE]

    def wait_for(self, predicate: Any, timeout: float) -> bool:
        """Wait until ``predicate(self)`` is true; returns whether it became true in time."""
        deadline = time.monotonic() + timeout
        while not predicate(self):
            if time.monotonic() >= deadline:
                return False
            with self._changed:
                self._changed.wait(0.2)
        return True

    def start(self) -> WebhookReceiver:
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="webhook-receiver", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(5)

    def __enter__(self) -> WebhookReceiver:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=8799)
    parser.add_argument("--out", type=Path, default=None, help="append each body to this NDJSON file")
    args = parser.parse_args()
    with WebhookReceiver(args.out, args.port) as receiver:
        print(f"listening on {receiver.url} (Ctrl-C to stop)", flush=True)
        seen = 0
        try:
            while True:
                receiver.wait_for(lambda r, seen=seen: len(r.received) > seen, 3600)
                for entry in receiver.received[seen:]:
                    print(json.dumps(entry["body"]), flush=True)
                seen = len(receiver.received)
        except KeyboardInterrupt:
            pass


if __name__ == "__main__":
    main()

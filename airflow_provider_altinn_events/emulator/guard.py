"""Last line of defence: an unexpected error becomes a 500 ProblemDetails, never a dead server.

Starlette's own 500 handler re-raises after answering (uvicorn then logs a traceback as if the server
had failed); this middleware answers like ``/events/api/v1/error`` in Altinn and logs once.
"""

from __future__ import annotations

import json
import logging

from starlette.requests import ClientDisconnect
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .responses import problem_body

log = logging.getLogger(__name__)


class CrashGuardMiddleware:
    """Turn exceptions escaping the app into ``500`` ProblemDetails (if nothing was sent yet)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        except ClientDisconnect:
            return  # the client is gone (logged at debug level where it was noticed); nobody to answer
        except Exception:
            log.exception("Unhandled error in %s %s", scope.get("method"), scope.get("path"))
            if started:
                return
            body = json.dumps(
                problem_body(500, "An unexpected error occurred in the Altinn emulator.")
            ).encode()
            await send(
                {
                    "type": "http.response.start",
                    "status": 500,
                    "headers": [
                        (b"content-type", b"application/problem+json; charset=utf-8"),
                        (b"content-length", str(len(body)).encode()),
                    ],
                }
            )
            await send({"type": "http.response.body", "body": body})

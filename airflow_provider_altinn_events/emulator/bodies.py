"""Reading request bodies safely: size limit (Kestrel's 30 MB default), media type, JSON parsing."""

from __future__ import annotations

import json
import logging
from typing import Any

from starlette.requests import ClientDisconnect, Request

from . import jsonvalue

log = logging.getLogger(__name__)


class BodyTooLargeError(Exception):
    """The body exceeds the configured maximum; answered with 413 by the app's error handler."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"Request body too large. The max request body size is {limit} bytes.")
        self.limit = limit


class JsonBodyError(ValueError):
    """The body is not valid JSON; ``message`` is worded like System.Text.Json's."""


async def read_body(request: Request, limit: int) -> bytes:
    """Read the whole body, refusing more than ``limit`` bytes before reading them all.

    :raises BodyTooLargeError: when Content-Length or the streamed size exceeds ``limit``.
    :raises ClientDisconnect: the client went away first (logged at debug level only).
    """
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise BodyTooLargeError(limit)
    chunks: list[bytes] = []
    size = 0
    try:
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise BodyTooLargeError(limit)
            chunks.append(chunk)
    except ClientDisconnect:
        # Normal under faults (a delay longer than the client's timeout): one line, not a traceback. The
        # crash guard lets the exception end the request quietly; there is nobody left to answer.
        log.debug("%s %s: the client went away before its body was read", request.method, request.url.path)
        raise
    return b"".join(chunks)


def media_type(request: Request) -> str:
    """The request's media type, lower case, without parameters ('' when absent)."""
    return request.headers.get("content-type", "").split(";", 1)[0].strip().lower()


def charset(request: Request) -> str:
    for part in request.headers.get("content-type", "").split(";")[1:]:
        key, _, value = part.partition("=")
        if key.strip().lower() == "charset":
            return value.strip().strip('"').lower()
    return "utf-8"


def parse_json(raw: bytes, encoding: str = "utf-8") -> Any:
    """Decode JSON, raising :class:`JsonBodyError` with a message shaped like .NET's.

    Numbers come back as :class:`~.jsonvalue.RawNumber` (their text kept, so ``1e400`` can be served
    back as JSON); use :func:`~.jsonvalue.plain` where Python numbers are needed.

    :raises JsonBodyError: on undecodable bytes, invalid JSON, NaN/Infinity, nesting deeper than 64 or
        a lone surrogate.
    """
    try:
        text = raw.decode(encoding)
    except (UnicodeDecodeError, LookupError) as exc:
        raise JsonBodyError(f"The request body could not be decoded as {encoding}.") from exc
    try:
        return jsonvalue.loads(text)
    except jsonvalue.JsonTextError as exc:
        raise JsonBodyError(str(exc)) from exc
    except json.JSONDecodeError as exc:
        found = text[exc.pos : exc.pos + 1] if exc.pos < len(text) else ""
        where = f"LineNumber: {exc.lineno - 1} | BytePositionInLine: {exc.colno - 1}."
        if not found:
            raise JsonBodyError(
                f"Expected depth to be zero at the end of the JSON payload. There is an open JSON object"
                f" or array that should be closed. {where}"
            ) from exc
        raise JsonBodyError(f"'{found}' is an invalid start of a value. {where}") from exc

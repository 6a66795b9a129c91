"""The four error body shapes Altinn Events produces, plus small helpers.

The facts: docs/contract.rst, "contract-errors".

* ProblemDetails (``application/problem+json``) from ``Problem(detail, null, status)``;
* ValidationProblemDetails from ``[ApiController]`` model validation;
* a bare JSON string literal from ``StatusCode(code, "message")``;
* an empty body (401 challenge, 403 ``Forbid()``, ``Ok()``).
"""

from __future__ import annotations

import json
import secrets
from typing import Any

from starlette.responses import Response

_TYPES: dict[int, tuple[str, str]] = {
    400: ("https://tools.ietf.org/html/rfc9110#section-15.5.1", "Bad Request"),
    401: ("https://tools.ietf.org/html/rfc9110#section-15.5.2", "Unauthorized"),
    403: ("https://tools.ietf.org/html/rfc9110#section-15.5.4", "Forbidden"),
    404: ("https://tools.ietf.org/html/rfc9110#section-15.5.5", "Not Found"),
    405: ("https://tools.ietf.org/html/rfc9110#section-15.5.6", "Method Not Allowed"),
    406: ("https://tools.ietf.org/html/rfc9110#section-15.5.7", "Not Acceptable"),
    408: ("https://tools.ietf.org/html/rfc9110#section-15.5.9", "Request Timeout"),
    409: ("https://tools.ietf.org/html/rfc9110#section-15.5.10", "Conflict"),
    410: ("https://tools.ietf.org/html/rfc9110#section-15.5.11", "Gone"),
    413: ("https://tools.ietf.org/html/rfc9110#section-15.5.14", "Content Too Large"),
    415: ("https://tools.ietf.org/html/rfc9110#section-15.5.16", "Unsupported Media Type"),
    422: ("https://tools.ietf.org/html/rfc4918#section-11.2", "Unprocessable Entity"),
    429: ("https://tools.ietf.org/html/rfc6585#section-4", "Too Many Requests"),
    500: (
        "https://tools.ietf.org/html/rfc9110#section-15.6.1",
        "An error occurred while processing your request.",
    ),
    502: ("https://tools.ietf.org/html/rfc9110#section-15.6.3", "Bad Gateway"),
    503: ("https://tools.ietf.org/html/rfc9110#section-15.6.4", "Service Unavailable"),
    504: ("https://tools.ietf.org/html/rfc9110#section-15.6.5", "Gateway Timeout"),
}

PROBLEM_JSON = "application/problem+json; charset=utf-8"
JSON = "application/json; charset=utf-8"


def trace_id() -> str:
    """A W3C trace id shaped like ASP.NET's ``traceId`` (``00-<32 hex>-<16 hex>-00``)."""
    return f"00-{secrets.token_hex(16)}-{secrets.token_hex(8)}-00"


def problem_body(status: int, detail: str | None = None, title: str | None = None) -> dict[str, Any]:
    kind, default_title = _TYPES.get(status, (None, None))
    body: dict[str, Any] = {}
    if kind:
        body["type"] = kind
    if title or default_title:
        body["title"] = title or default_title
    body["status"] = status
    if detail is not None:
        body["detail"] = detail
    body["traceId"] = trace_id()
    return body


def problem(
    status: int, detail: str | None = None, *, title: str | None = None, headers: dict[str, str] | None = None
) -> Response:
    """ProblemDetails, as ``Problem(detail, null, status)`` renders it."""
    return Response(
        json.dumps(problem_body(status, detail, title)), status, headers=headers, media_type=PROBLEM_JSON
    )


def validation_problem(errors: dict[str, list[str]]) -> Response:
    """ValidationProblemDetails, as ``[ApiController]`` answers a model binding failure."""
    body = {
        "type": _TYPES[400][0],
        "title": "One or more validation errors occurred.",
        "status": 400,
        "errors": errors,
        "traceId": trace_id(),
    }
    return Response(json.dumps(body), 400, media_type=PROBLEM_JSON)


def json_string(status: int, message: str, headers: dict[str, str] | None = None) -> Response:
    """A bare JSON string literal, as ``StatusCode(code, "message")`` on a JSON endpoint renders it."""
    return Response(json.dumps(message), status, headers=headers, media_type=JSON)


def empty(status: int, headers: dict[str, str] | None = None) -> Response:
    """A response without a body (401 challenge, 403 ``Forbid()``, 200 ``Ok()``)."""
    return Response(b"", status, headers=headers)


def json_response(status: int, data: Any, headers: dict[str, str] | None = None) -> Response:
    """Plain JSON (camelCase already applied by the caller)."""
    return Response(json.dumps(data), status, headers=headers, media_type=JSON)


def oauth_error(status: int, error: str, description: str) -> Response:
    """An OAuth 2.0 error response (RFC 6749 section 5.2), as Maskinporten answers a bad grant."""
    body = {"error": error, "error_description": description}
    return Response(
        json.dumps(body), status, media_type=JSON, headers={"Cache-Control": "no-store", "Pragma": "no-cache"}
    )

"""The error factory shared by both clients: any Altinn error response or transport failure → the error tree.

:func:`error_from_response` parses every error body shape Altinn produces into
:class:`~airflow_provider_altinn_events.exceptions.ProblemDetails`, picks the subclass from the status, reads
``Retry-After`` and strips query strings from URLs; :func:`error_from_transport` names the step (grant,
exchange, Events call) of a request that got no answer. Pure functions; :mod:`.protocol` re-exports them.
"""

from __future__ import annotations

import email.utils
import json
import logging
import math
import re
import ssl
import time
from typing import Any

import httpx

from airflow_provider_altinn_events.client.settings import AltinnSettings
from airflow_provider_altinn_events.exceptions import (
    AltinnAPIError,
    AltinnBadRequestError,
    AltinnError,
    AltinnForbiddenError,
    AltinnNotFoundError,
    AltinnPayloadError,
    AltinnRateLimitError,
    AltinnServerError,
    AltinnTransportError,
    AltinnUnauthorizedError,
    ProblemDetails,
    TokenExchangeError,
    TokenGrantError,
)

__all__ = [
    "RedactingLogFilter",
    "error_from_response",
    "error_from_transport",
    "parse_problem",
    "parse_retry_after",
    "redact",
    "strip_query",
]

_MAX_DETAIL = 300
# Anything shaped like a JWT or a piece of one (a base64url run that starts like a JSON header, ``eyJ``, and any
# dot-joined parts after it), so an echoed token or grant never reaches a message, even cut short by a proxy.
_JWT_LIKE = re.compile(r"eyJ[A-Za-z0-9_-]{4,}(?:\.[A-Za-z0-9_-]*)*")
# Credentials a proxy may echo in other shapes: an Authorization header value (an opaque static token is no
# JWT) and the form fields of the grant and of OAuth answers.
_CREDENTIAL = re.compile(
    r"(?i)\b(bearer|basic)(\s+)[^\s,;\"'<>]+"
    r"|\b(assertion|client_assertion|access_token|refresh_token|id_token)(\\?[\"']?\s*[=:]\s*\\?[\"']?)"
    r"[^\s&,;\"'<>\\]+"
)

_STATUS_MESSAGES = {
    400: "the service rejected the request",
    401: "the Altinn token was missing, invalid or expired",
    403: (
        "forbidden: the token lacks the scope this call needs (reading events and generic subscriptions "
        "need altinn:events.subscribe, publishing needs altinn:events.publish, POST /app needs a platform "
        "access token) or the resource's policy does not allow this consumer"
    ),
    404: "not found",
    415: "unsupported media type",
    429: "rate limited",
}


def strip_query(url: httpx.URL | str) -> str:
    """The URL without query string or fragment: queries may carry subjects and never belong in messages."""
    parsed = httpx.URL(str(url))
    return str(parsed.copy_with(query=None, fragment=None))


def _scrub(text: str) -> str:
    """``text`` with every credential-shaped part replaced by ``[redacted]`` (length and lines kept)."""
    text = _JWT_LIKE.sub("[redacted]", text)
    return _CREDENTIAL.sub(lambda m: f"{m[1] or m[3]}{m[2] or m[4]}[redacted]", text)


def redact(text: str) -> str:
    """Replace anything that looks like a token or a grant with ``[redacted]``; cut to one short line.

    Every string a server controls (problem details, OAuth ``error``/``error_description``, the reason phrase,
    ``x-request-id``) goes through this before it reaches an exception: a proxy or stand-in that echoes the
    request's ``Authorization`` header or the grant would otherwise put a live credential into task logs,
    tracebacks, trigger payloads and XCom (docs/guides/client.rst, "Security").
    """
    one_line = " ".join(_scrub(text).split())
    return one_line if len(one_line) <= _MAX_DETAIL else one_line[: _MAX_DETAIL - 1] + "…"


class RedactingLogFilter(logging.Filter):
    """Scrubs credential-shaped text from log records' arguments (installed on httpx's logger by the clients).

    httpx logs each response's reason phrase at INFO; a reason phrase is server-controlled like any header.
    Airflow keeps httpx at WARNING, but a client used outside Airflow, or a DEBUG configuration, would show it.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple) and record.args:
            record.args = tuple(_scrub(a) if isinstance(a, str) else a for a in record.args)
        if isinstance(record.msg, str):
            record.msg = _scrub(record.msg)
        return True


def parse_problem(response: httpx.Response) -> ProblemDetails:
    """Whatever error body shape Altinn chose, as :class:`ProblemDetails`.

    The four shapes (docs/contract.rst, "contract-errors"): RFC 7807 problem details; validation problem
    details with ``errors``;
    a bare JSON string such as ``"Resource filter must be a valid urn"``; an empty body. Plain text (the token
    exchange's 400) and gateway HTML end up, shortened, in ``detail``.
    """
    status = response.status_code
    text = response.text.strip() if response.content else ""
    if not text:
        return ProblemDetails(status=status)
    try:
        body = json.loads(text)
    except ValueError:
        return ProblemDetails(status=status, detail=redact(text))
    if isinstance(body, str):
        return ProblemDetails(status=status, detail=redact(body))
    if not isinstance(body, dict):
        return ProblemDetails(status=status, detail=redact(text))
    errors: dict[str, tuple[str, ...]] = {}
    raw_errors = body.get("errors")
    if isinstance(raw_errors, dict):
        for name, messages in raw_errors.items():
            items = messages if isinstance(messages, list) else [messages]
            errors[redact(str(name))] = tuple(redact(str(m)) for m in items)

    def text_of(key: str) -> str | None:
        value = body.get(key)
        return redact(str(value)) if value not in (None, "") else None

    body_status = body.get("status")
    return ProblemDetails(
        status=body_status if isinstance(body_status, int) else status,
        title=text_of("title"),
        detail=text_of("detail") or text_of("error_description") or text_of("message"),
        type=text_of("type"),
        errors=errors,
        trace_id=text_of("traceId"),
    )


def parse_retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header: delay-seconds or an HTTP date; ``None`` if absent/invalid.

    Never NaN, infinite or negative: ``inf``, ``nan`` or a number too large for a float are invalid (as if the
    header were absent), a negative number or a past date is 0. How long a poll loop then really waits is
    capped by ``client/polling.py``.
    """
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        pass
    else:
        return max(0.0, seconds) if math.isfinite(seconds) else None
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when is None:
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


def error_from_response(response: httpx.Response, *, hint: str | None = None) -> AltinnAPIError:
    """Pick the :class:`AltinnAPIError` subclass for a non-2xx Events API response.

    :param response: the response; its request gives method and URL (the URL loses its query string).
    :param hint: an extra sentence for the message, e.g. the connection's scopes on a 403.
    """
    status = response.status_code
    problem = parse_problem(response)
    try:
        request = response.request
        method, url = request.method, strip_query(request.url)
    except RuntimeError:  # a response built by hand, without a request
        method, url = "?", "?"
    reason = redact(response.reason_phrase) if response.reason_phrase else None
    message = problem.summary() or _STATUS_MESSAGES.get(status) or reason or f"HTTP {status}"
    if hint:
        message = f"{message}; {hint}"
    header_id = response.headers.get("x-request-id") or response.headers.get("request-id")
    request_id = problem.trace_id or (redact(header_id) if header_id else None)
    kwargs: dict[str, Any] = {
        "status_code": status,
        "method": method,
        "url": url,
        "problem": problem,
        "request_id": request_id,
    }
    retry_after = parse_retry_after(response.headers.get("Retry-After"))
    if status == 429:
        return AltinnRateLimitError(message, retry_after=retry_after, **kwargs)
    if status >= 500:
        return AltinnServerError(message, retry_after=retry_after, **kwargs)
    cls = {
        400: AltinnBadRequestError,
        401: AltinnUnauthorizedError,
        403: AltinnForbiddenError,
        404: AltinnNotFoundError,
    }.get(status, AltinnAPIError)
    return cls(message, **kwargs)


def _causes(error: BaseException) -> list[BaseException]:
    """The error and what lies under it: ``__cause__``/``__context__`` and aiohttp's ``os_error`` and
    ``certificate_error`` (the sync and the async transport nest the socket's error differently)."""
    found: list[BaseException] = []
    todo: list[BaseException | None] = [error]
    while todo and len(found) < 16:
        current = todo.pop(0)
        if current is None or any(current is seen for seen in found):
            continue
        found.append(current)
        todo += [current.__cause__, current.__context__]
        for name in ("certificate_error", "os_error"):
            nested = getattr(current, name, None)
            if isinstance(nested, BaseException):
                todo.append(nested)
    return found


def error_from_transport(error: httpx.RequestError, settings: AltinnSettings) -> AltinnError:
    """Translate an httpx error (no HTTP answer) into the provider's tree, naming the step that failed.

    A failure on the Maskinporten token URL becomes a :class:`TokenGrantError`, one on the exchange URL a
    :class:`TokenExchangeError`, anything else :class:`AltinnTransportError`. All are retryable, except a TLS
    certificate that fails verification: sending again meets the same certificate, so it is reported at once
    and says so. A refused connection says so too (not "timed out"), whichever client saw it.
    """
    try:
        request = error.request
        method, url = request.method, strip_query(request.url)
    except RuntimeError:
        method, url = "?", "?"
    kind = type(error).__name__
    reason = redact(str(error)) or kind
    if isinstance(error, httpx.DecodingError):
        return AltinnPayloadError(f"{method} {url}: the response body could not be decoded ({reason})")
    causes = _causes(error)
    # aiohttp's certificate error is itself an SSLCertVerificationError; the ssl module's (under it) says why
    certificates = [c for c in causes if isinstance(c, ssl.SSLCertVerificationError)]
    retryable = isinstance(error, httpx.TransportError) and not isinstance(error, httpx.UnsupportedProtocol)
    if certificates:
        messages = [getattr(c, "verify_message", None) for c in certificates]
        why = redact(next((m for m in messages if m), None) or str(certificates[-1]))
        reason = (
            f"TLS certificate verification failed ({why}); not retried: the certificate the server presented "
            "is not trusted for this host (a TLS-intercepting proxy, a wrong host, or a CA missing from the "
            "trust store)"
        )
        retryable = False
    elif any(isinstance(c, ConnectionRefusedError) for c in causes):
        reason = (
            f"connection refused ({kind}: {reason})" if reason != kind else f"connection refused ({kind})"
        )
    elif isinstance(error, httpx.TimeoutException):
        reason = f"timed out after {settings.timeout_seconds:g} s ({kind})"
    elif reason != kind:
        reason = f"{kind}: {reason}"
    if url == strip_query(settings.maskinporten_token_url):
        return TokenGrantError(
            f"could not reach Maskinporten at {url}",
            error="transport",
            description=reason,
            url=url,
            retryable=retryable,
        )
    if url == strip_query(settings.exchange_url):
        return TokenExchangeError(
            f"could not reach Altinn's token exchange at {url}",
            error="transport",
            description=reason,
            url=url,
            retryable=retryable,
        )
    not_sent = isinstance(error, (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout))
    transport_error = AltinnTransportError(
        f"{method} {url}: {reason}", method=method, url=url, request_sent=False if not_sent else None
    )
    transport_error.retryable = retryable
    return transport_error

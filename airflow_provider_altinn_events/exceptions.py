"""The provider's whole error tree.

Every error carries data (status, problem details, whether a retry can help) instead of packing it into a
message that callers would have to parse. Nothing here imports Airflow: the client core raises these, and
Airflow fails a task on any exception anyway, so an ``AirflowException`` base would buy nothing.

::

    AltinnError(Exception)                          root; the only thing callers must catch
    ├── AltinnConfigError(AltinnError, ValueError)  bad connection or arguments; never retried; permanent
    ├── AltinnAuthError(AltinnError)                getting a token failed
    │   ├── TokenGrantError                         Maskinporten refused the JWT grant (status, OAuth error)
    │   └── TokenExchangeError                      Altinn refused to exchange the Maskinporten token
    │                                               (a 4xx other than 429 is permanent: bad credentials)
    ├── AltinnTransportError(AltinnError)           DNS/connect/read/timeout; retryable; httpx error as __cause__
    ├── AltinnAPIError(AltinnError)                 any non-2xx from the Events API
    │   ├── AltinnBadRequestError        400        problem.errors exposed; permanent
    │   ├── AltinnUnauthorizedError      401
    │   ├── AltinnForbiddenError         403        usually a missing scope or policy; permanent
    │   ├── AltinnNotFoundError          404
    │   ├── AltinnRateLimitError         429        retry_after parsed from the header; retryable
    │   └── AltinnServerError            5xx        retryable
    ├── AltinnPayloadError(AltinnError, ValueError) a response or event body is not what the contract says
    ├── IngestStateError(AltinnError)               the destination's cursor or manifest cannot be used as it
    │   │                                           is; permanent
    │   └── IngestConflictError                     someone else moved the cursor while this run was writing
    └── IngestCancelledError(AltinnError)           the task was killed; the run stopped without committing more

Beside the tree, in ``operators/publish.py``: ``AltinnEventsPublishError`` (an ``AirflowException``) and
``AltinnEventsPublishRejectedError`` (an ``AirflowFailException``), raised by the publish operator after it has
sent what it could, with the per-event outcomes attached. They subclass Airflow's exceptions, so they cannot
live here, in the Airflow-free core (docs/guides/publishing.rst).

``retryable`` says whether sending the same request again may help (the client's retry policy reads it);
``permanent`` says whether running the task again may help: ``False`` for anything a later try could get
past, ``True`` for a mistake someone has to fix (400, 403, refused credentials, bad configuration). The
Airflow layer turns permanent errors into ``AirflowFailException`` in one place (``_boundary.py``), so Airflow
does not spend its task retries on them.

Messages never contain tokens, assertions or keys: URLs are stripped of their query strings, and bodies are
quoted only from the service's own error responses.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "AltinnAPIError",
    "AltinnAuthError",
    "AltinnBadRequestError",
    "AltinnConfigError",
    "AltinnError",
    "AltinnForbiddenError",
    "AltinnNotFoundError",
    "AltinnPayloadError",
    "AltinnRateLimitError",
    "AltinnServerError",
    "AltinnTransportError",
    "AltinnUnauthorizedError",
    "IngestCancelledError",
    "IngestConflictError",
    "IngestStateError",
    "ProblemDetails",
    "TokenExchangeError",
    "TokenGrantError",
]


@dataclass(frozen=True)
class ProblemDetails:
    """An error body from Altinn, whatever shape it came in.

    Altinn answers errors in four shapes (docs/contract.rst, "contract-errors"): RFC 7807 problem details,
    validation problem
    details with ``errors``, a bare JSON string, or an empty body. All four end up here so that callers
    read ``detail`` and ``errors`` without caring which one the endpoint used.
    """

    status: int | None = None
    title: str | None = None
    detail: str | None = None
    type: str | None = None
    errors: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    trace_id: str | None = None

    def summary(self) -> str:
        """One line for an exception message: the detail, the title and each field error."""
        parts: list[str] = []
        if self.detail:
            parts.append(self.detail)
        elif self.title:
            parts.append(self.title)
        for name, messages in self.errors.items():
            parts.append(f"{name}: {'; '.join(messages)}")
        return " | ".join(parts)


class AltinnError(Exception):
    """Root of every error this provider raises.

    ``retryable`` says whether sending the same request again may succeed (the client's retry policy reads it
    and never inspects messages). ``permanent`` says that no later try can succeed until someone changes the
    request, the connection or the service's grants (the Airflow layer then fails the task without retries).
    ``attempts`` is how many times the client sent the request before giving up.
    """

    retryable: bool = False
    permanent: bool = False
    attempts: int = 1

    def __reduce__(self) -> tuple[Any, ...]:
        # Keyword-only constructor data (status, url, field, ...) must survive pickling, which Python's default
        # (``cls(*args)``) would drop or fail on; rebuild from args plus the instance dict instead.
        return (_rebuild_error, (type(self), self.args, dict(self.__dict__)))

    def _attempts_suffix(self) -> str:
        return f" [gave up after {self.attempts} attempts]" if self.attempts > 1 else ""


def _rebuild_error(cls: type[AltinnError], args: tuple[Any, ...], state: dict[str, Any]) -> AltinnError:
    error = cls.__new__(cls)
    Exception.__init__(error, *args)
    error.__dict__.update(state)
    return error


class AltinnConfigError(AltinnError, ValueError):
    """A connection field or an argument is wrong; found before any network call where possible.

    :param field: the connection field or argument at fault, so the message and callers can name it.
    """

    permanent = True

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


class AltinnAuthError(AltinnError):
    """Getting a token failed.

    :param status_code: HTTP status of the token service, or ``None`` when no response came back.
    :param error: the OAuth2 ``error`` code (Maskinporten) or a short reason.
    :param description: the service's ``error_description`` or problem detail (never contains a token).
    :param url: the token service's URL, without a query string.
    :param retryable: override; by default 5xx and 429 are retryable, other statuses are not.

    A refusal with a 4xx status other than 429 (wrong key, unknown client, a scope the client may not have)
    is ``permanent``: the same credentials get the same answer on every try.

    The class attribute ``step`` (``"grant"`` or ``"exchange"``) says which step of the token flow failed, so
    ``test_connection`` and logs can name it without parsing the message.
    """

    step = "auth"

    def __init__(
        self,
        message: str,
        *,
        status_code: int | None = None,
        error: str | None = None,
        description: str | None = None,
        url: str | None = None,
        retryable: bool | None = None,
    ) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.error = error
        self.description = description
        self.url = url
        if retryable is not None:
            self.retryable = retryable
        elif status_code is not None:
            self.retryable = status_code >= 500 or status_code == 429
        self.permanent = not self.retryable and status_code is not None and 400 <= status_code < 500

    def __str__(self) -> str:
        base = super().__str__()
        extra = []
        if self.status_code is not None:
            extra.append(f"status {self.status_code}")
        if self.error:
            extra.append(self.error)
        if self.description:
            extra.append(self.description)
        text = f"{base} ({', '.join(extra)})" if extra else base
        return text + self._attempts_suffix()


class TokenGrantError(AltinnAuthError):
    """Maskinporten refused the JWT grant (wrong key, unknown client or kid, scope not allowed, ...)."""

    step = "grant"


class TokenExchangeError(AltinnAuthError):
    """Altinn Authentication refused to exchange the Maskinporten token for an Altinn token."""

    step = "exchange"


class AltinnTransportError(AltinnError):
    """The request never got an HTTP answer: DNS, connect, read or timeout. The httpx error is ``__cause__``."""

    retryable = True

    def __init__(
        self,
        message: str,
        *,
        method: str | None = None,
        url: str | None = None,
        request_sent: bool | None = None,
    ) -> None:
        super().__init__(message)
        self.method = method
        self.url = url
        #: ``False`` when the connection failed before the request left (safe to retry any request),
        #: ``None`` when unknown (a read timeout may mean the service processed it).
        self.request_sent = request_sent

    def __str__(self) -> str:
        return super().__str__() + self._attempts_suffix()


class AltinnAPIError(AltinnError):
    """The Events API answered with a non-2xx status.

    :param status_code: the HTTP status.
    :param method: the HTTP method of the request.
    :param url: the request URL without its query string (queries can carry subjects; never tokens).
    :param problem: the parsed error body.
    :param request_id: the ``traceId`` of the problem details or a request id header, for Altinn support.
    :param retry_after: seconds the service asked us to wait (``Retry-After``), if it said.
    """

    def __init__(
        self,
        message: str,
        *,
        status_code: int,
        method: str,
        url: str,
        problem: ProblemDetails | None = None,
        request_id: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.method = method
        self.url = url
        self.problem = problem or ProblemDetails(status=status_code)
        self.request_id = request_id
        #: seconds from a ``Retry-After`` header (429, and 503 when the service sends one)
        self.retry_after = retry_after

    def __str__(self) -> str:
        base = f"{self.method} {self.url} -> {self.status_code}: {super().__str__()}"
        if self.request_id:
            base = f"{base} (request id {self.request_id})"
        return base + self._attempts_suffix()


class AltinnBadRequestError(AltinnAPIError):
    """400: the service rejected the input; ``problem.errors`` names the fields. Permanent."""

    permanent = True


class AltinnUnauthorizedError(AltinnAPIError):
    """401: the Altinn token was missing, invalid or expired."""


class AltinnForbiddenError(AltinnAPIError):
    """403: authenticated but not allowed; usually a missing scope or resource policy. Permanent."""

    permanent = True


class AltinnNotFoundError(AltinnAPIError):
    """404: the subscription (or other object) does not exist."""


class AltinnRateLimitError(AltinnAPIError):
    """429: slow down. ``retry_after`` holds the seconds from the ``Retry-After`` header, if any."""

    retryable = True

    def __init__(self, message: str, *, retry_after: float | None = None, **kwargs: Any) -> None:
        super().__init__(message, retry_after=retry_after, **kwargs)


class AltinnServerError(AltinnAPIError):
    """5xx: the service failed; retrying may help."""

    retryable = True


class AltinnPayloadError(AltinnError, ValueError):
    """A response or an event body does not match the contract (not JSON, not a CloudEvent, ...)."""


class IngestStateError(AltinnError):
    """The cursor or a manifest in the destination is unreadable, or was written for other filters.

    Never retried: the state needs a person to look at it (the message names the file); ``permanent``.
    """

    permanent = True


class IngestConflictError(IngestStateError):
    """The cursor changed under a running ingestion: two writers share one resource folder.

    The run stops without committing, so the other writer's progress is kept. Run one ingestion per
    resource and destination at a time (``max_active_runs=1``). Not permanent: the other writer may be done
    by the next try.
    """

    permanent = False


class IngestCancelledError(AltinnError):
    """The run was asked to stop (the task was killed); what it committed stays, the next try resumes."""

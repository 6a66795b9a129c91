"""The error tree: shape, status table, formatting, and that no secret ever shows in str() or repr()."""

from __future__ import annotations

import pickle

import httpx
import pytest

from airflow_provider_altinn_events import exceptions as exc
from airflow_provider_altinn_events.client.protocol import error_from_response


def test_tree() -> None:
    assert issubclass(exc.AltinnConfigError, exc.AltinnError) and issubclass(
        exc.AltinnConfigError, ValueError
    )
    assert issubclass(exc.AltinnPayloadError, exc.AltinnError) and issubclass(
        exc.AltinnPayloadError, ValueError
    )
    for auth_cls in (exc.TokenGrantError, exc.TokenExchangeError):
        assert issubclass(auth_cls, exc.AltinnAuthError)
    for cls in (
        exc.AltinnBadRequestError,
        exc.AltinnUnauthorizedError,
        exc.AltinnForbiddenError,
        exc.AltinnNotFoundError,
        exc.AltinnRateLimitError,
        exc.AltinnServerError,
    ):
        assert issubclass(cls, exc.AltinnAPIError)
    assert set(exc.__all__) == {
        name
        for name in dir(exc)
        if isinstance(getattr(exc, name), type) and getattr(exc, name).__module__ == exc.__name__
    }


@pytest.mark.parametrize(
    ("status", "cls"),
    [
        (400, exc.AltinnBadRequestError),
        (401, exc.AltinnUnauthorizedError),
        (403, exc.AltinnForbiddenError),
        (404, exc.AltinnNotFoundError),
        (429, exc.AltinnRateLimitError),
        (500, exc.AltinnServerError),
        (502, exc.AltinnServerError),
        (503, exc.AltinnServerError),
        (410, exc.AltinnAPIError),
    ],
)
def test_status_table(status: int, cls: type[exc.AltinnAPIError]) -> None:
    request = httpx.Request("GET", "https://platform.tt02.altinn.no/events/api/v1/events?resource=x")
    error = error_from_response(httpx.Response(status, request=request))
    assert type(error) is cls
    assert error.retryable is (status == 429 or status >= 500)


def test_api_error_str() -> None:
    error = exc.AltinnNotFoundError(
        "not found",
        status_code=404,
        method="GET",
        url="https://h/events/api/v1/subscriptions/3",
        request_id="00-1",
    )
    assert str(error) == "GET https://h/events/api/v1/subscriptions/3 -> 404: not found (request id 00-1)"
    error.attempts = 3
    assert str(error).endswith("[gave up after 3 attempts]")
    assert error.problem.status == 404


def test_auth_error_str_and_retryable_by_status() -> None:
    error = exc.TokenGrantError(
        "refused", status_code=400, error="invalid_grant", description="MP-012 used before"
    )
    assert str(error) == "refused (status 400, invalid_grant, MP-012 used before)"
    assert not error.retryable and error.step == "grant"
    assert exc.TokenExchangeError("x", status_code=503).retryable
    assert exc.TokenExchangeError("x", status_code=503, retryable=False).retryable is False
    assert exc.TokenExchangeError("x").step == "exchange"
    assert str(exc.AltinnAuthError("plain")) == "plain"


def test_transport_and_rate_limit_errors() -> None:
    transport = exc.AltinnTransportError(
        "GET https://h/x: ConnectError", method="GET", url="https://h/x", request_sent=False
    )
    assert transport.retryable and transport.request_sent is False
    limited = exc.AltinnRateLimitError("slow down", status_code=429, method="GET", url="u", retry_after=3.0)
    assert limited.retry_after == 3.0 and limited.retryable


def test_config_error_names_field() -> None:
    error = exc.AltinnConfigError("bad timeout", field="timeout")
    assert error.field == "timeout"
    assert isinstance(error, ValueError)


def test_problem_details_summary() -> None:
    problem = exc.ProblemDetails(
        status=400, title="One or more validation errors occurred.", errors={"resource": ("required",)}
    )
    assert problem.summary() == "One or more validation errors occurred. | resource: required"
    assert exc.ProblemDetails(detail="d", title="t").summary() == "d"
    assert exc.ProblemDetails().summary() == ""


def test_no_secret_in_str_or_repr() -> None:
    token = "eyJhbGciOiJSUzI1NiJ9.eyJzY29wZSI6ImFsdGlubjpldmVudHMifQ.c2lnbmF0dXJlc2lnbmF0dXJl"
    request = httpx.Request(
        "GET",
        "https://h/events/api/v1/events?subject=/person/01038712345",
        headers={"Authorization": f"Bearer {token}"},
    )
    response = httpx.Response(401, request=request, text=f"token {token} rejected")
    error = error_from_response(response)
    for text in (str(error), repr(error), repr(error.problem)):
        assert token not in text
        assert "01038712345" not in text


def test_errors_pickle() -> None:
    # Airflow ships exceptions between processes in some paths; keyword-only data must survive.
    error = exc.AltinnConfigError("x", field="f")
    copy = pickle.loads(pickle.dumps(error))
    assert (copy.args, copy.field) == (("x",), "f")
    api = exc.AltinnRateLimitError("slow", status_code=429, method="GET", url="u", retry_after=2.0)
    api.attempts = 4
    copy = pickle.loads(pickle.dumps(api))
    assert type(copy) is exc.AltinnRateLimitError
    assert (copy.status_code, copy.retry_after, copy.attempts, str(copy)) == (429, 2.0, 4, str(api))
    grant = pickle.loads(pickle.dumps(exc.TokenGrantError("g", status_code=400, error="invalid_grant")))
    assert (grant.error, grant.retryable, str(grant)) == (
        "invalid_grant",
        False,
        "g (status 400, invalid_grant)",
    )


def test_ingest_errors_have_one_home_in_exceptions() -> None:
    """The ingest errors users are told to catch import from ``exceptions`` and are the ``_ingest`` objects."""
    from airflow_provider_altinn_events import _ingest
    from airflow_provider_altinn_events._ingest import errors as ingest_errors
    from airflow_provider_altinn_events.operators import ingest as ingest_operator

    for name in ("IngestStateError", "IngestConflictError", "IngestCancelledError"):
        cls = getattr(exc, name)
        assert name in exc.__all__
        assert cls.__module__ == exc.__name__
        assert getattr(ingest_errors, name) is cls
        assert getattr(_ingest, name) is cls
        if hasattr(ingest_operator, name):
            assert getattr(ingest_operator, name) is cls
    assert issubclass(exc.IngestConflictError, exc.IngestStateError)
    assert issubclass(exc.IngestStateError, exc.AltinnError)
    assert issubclass(exc.IngestCancelledError, exc.AltinnError)
    assert exc.IngestStateError.permanent and not exc.IngestConflictError.permanent

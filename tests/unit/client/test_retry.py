from __future__ import annotations

import dataclasses

import pytest

from airflow_provider_altinn_events.client.retry import RetryPolicy
from airflow_provider_altinn_events.exceptions import (
    AltinnAPIError,
    AltinnBadRequestError,
    AltinnConfigError,
    AltinnError,
    AltinnForbiddenError,
    AltinnPayloadError,
    AltinnRateLimitError,
    AltinnServerError,
    AltinnTransportError,
    AltinnUnauthorizedError,
    TokenExchangeError,
    TokenGrantError,
)
from tests.fakes import api_error as api

MAX = RetryPolicy(rng=lambda: 0.999999)  # the jitter draws the cap
MIN = RetryPolicy(rng=lambda: 0.0)


@pytest.mark.parametrize(
    ("error", "retried"),
    [
        (api(AltinnServerError, 500), True),
        (api(AltinnServerError, 503), True),
        (api(AltinnRateLimitError, 429), True),
        (AltinnTransportError("boom"), True),
        (TokenGrantError("g", status_code=503), True),
        (TokenGrantError("g", error="transport", retryable=True), True),
        (TokenExchangeError("e", status_code=502), True),
        (TokenGrantError("g", status_code=400, error="invalid_grant"), False),
        (TokenExchangeError("e", status_code=401), False),
        (api(AltinnBadRequestError, 400), False),
        (api(AltinnUnauthorizedError, 401), False),
        (api(AltinnForbiddenError, 403), False),
        (api(AltinnAPIError, 415), False),
        (AltinnConfigError("c"), False),
        (AltinnPayloadError("p"), False),
    ],
)
def test_which_errors_are_retried(error: AltinnError, retried: bool) -> None:
    assert (MAX.next_delay(error, 1) is not None) is retried


@pytest.mark.parametrize(("attempt", "cap"), [(1, 0.5), (2, 1.0), (3, 2.0), (4, 4.0)])
def test_exponential_caps_with_full_jitter(attempt: int, cap: float) -> None:
    policy = RetryPolicy(max_attempts=10, budget_seconds=1000)
    policy_max = dataclasses.replace(policy, rng=lambda: 0.999999)
    policy_min = dataclasses.replace(policy, rng=lambda: 0.0)
    error = api(AltinnServerError, 503)
    assert policy_max.next_delay(error, attempt) == pytest.approx(cap, rel=1e-3)
    assert policy_min.next_delay(error, attempt) == 0.0


def test_delay_is_capped_by_backoff_max() -> None:
    policy = RetryPolicy(max_attempts=50, backoff_max_seconds=3, budget_seconds=1000, rng=lambda: 0.999999)
    assert policy.next_delay(api(AltinnServerError, 500), 20) == pytest.approx(3, rel=1e-3)


def test_real_jitter_stays_within_the_cap() -> None:
    policy = RetryPolicy(max_attempts=10, budget_seconds=1000)
    delays = {policy.next_delay(api(AltinnServerError, 500), 3) for _ in range(200)}
    assert all(d is not None and 0 <= d <= 2.0 for d in delays)
    assert len(delays) > 100  # actually random


def test_retry_after_is_honoured() -> None:
    error = api(AltinnRateLimitError, 429, retry_after=7.0)
    assert MIN.next_delay(error, 1) == 7.0
    server = api(AltinnServerError, 503, retry_after=2.0)
    assert MIN.next_delay(server, 1) == 2.0


def test_too_long_retry_after_gives_up() -> None:
    assert (
        RetryPolicy(max_retry_after_seconds=30).next_delay(
            api(AltinnRateLimitError, 429, retry_after=31.0), 1
        )
        is None
    )


def test_max_attempts() -> None:
    policy = RetryPolicy(max_attempts=3)
    error = api(AltinnServerError, 500)
    assert policy.next_delay(error, 2) is not None
    assert policy.next_delay(error, 3) is None
    assert RetryPolicy.disabled().next_delay(error, 1) is None


def test_time_budget() -> None:
    policy = RetryPolicy(budget_seconds=10, rng=lambda: 0.999999)
    error = api(AltinnServerError, 500)
    assert policy.next_delay(error, 1, elapsed_seconds=9.0) is not None
    assert policy.next_delay(error, 1, elapsed_seconds=9.6) is None
    assert policy.next_delay(api(AltinnRateLimitError, 429, retry_after=5.0), 1, elapsed_seconds=6.0) is None


@pytest.mark.parametrize(
    ("error", "retried"),
    [
        (api(AltinnRateLimitError, 429), True),
        (api(AltinnServerError, 503), True),
        (api(AltinnServerError, 500), False),
        (api(AltinnServerError, 504), False),
        (AltinnTransportError("refused", request_sent=False), True),
        (AltinnTransportError("read timeout", request_sent=None), False),
        (TokenGrantError("g", status_code=500), True),
    ],
)
def test_non_idempotent_requests_retry_only_when_surely_not_processed(
    error: AltinnError, retried: bool
) -> None:
    assert (MAX.next_delay(error, 1, idempotent=False) is not None) is retried


def test_policy_is_frozen_and_validated() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        MAX.max_attempts = 3  # type: ignore[misc]
    with pytest.raises(ValueError):
        RetryPolicy(max_attempts=0)
    with pytest.raises(ValueError):
        RetryPolicy(budget_seconds=-1)

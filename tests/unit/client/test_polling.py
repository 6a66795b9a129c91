"""The poll-failure policy the poke sensor and both triggers share: table-driven, no HTTP, no sleeping."""

from __future__ import annotations

import dataclasses
import math

import pytest

from airflow_provider_altinn_events.client.errors import parse_retry_after
from airflow_provider_altinn_events.client.polling import (
    DEFAULT_MAX_CONSECUTIVE_FAILURES,
    MAX_WAIT_SECONDS,
    PollFailurePolicy,
    PollWait,
)
from airflow_provider_altinn_events.client.retry import RetryPolicy
from airflow_provider_altinn_events.exceptions import (
    AltinnBadRequestError,
    AltinnConfigError,
    AltinnError,
    AltinnForbiddenError,
    AltinnNotFoundError,
    AltinnPayloadError,
    AltinnRateLimitError,
    AltinnServerError,
    AltinnTransportError,
    AltinnUnauthorizedError,
    TokenExchangeError,
    TokenGrantError,
)
from tests.fakes import api_error as api

POLICY = PollFailurePolicy(poll_interval=30.0, max_consecutive_failures=3)
RAISE = None


@pytest.mark.parametrize(
    ("error", "failures", "expected"),
    [
        # a rate limit never counts; it waits max(interval, Retry-After)
        (api(AltinnRateLimitError, 429), 0, PollWait(0, 30.0, None, rate_limited=True)),
        (api(AltinnRateLimitError, 429, retry_after=5.0), 2, PollWait(2, 30.0, 5.0, rate_limited=True)),
        (api(AltinnRateLimitError, 429, retry_after=120.0), 2, PollWait(2, 120.0, 120.0, rate_limited=True)),
        # ... even when the budget would be spent by a counted failure
        (api(AltinnRateLimitError, 429, retry_after=60.0), 5, PollWait(5, 60.0, 60.0, rate_limited=True)),
        # a retryable error counts and waits max(interval, its Retry-After if any)
        (api(AltinnServerError, 500), 0, PollWait(1, 30.0)),
        (api(AltinnServerError, 503, retry_after=90.0), 1, PollWait(2, 90.0, 90.0)),
        (api(AltinnServerError, 503, retry_after=1.0), 0, PollWait(1, 30.0, 1.0)),
        (AltinnTransportError("refused", request_sent=False), 0, PollWait(1, 30.0)),
        (TokenGrantError("g", status_code=502), 1, PollWait(2, 30.0)),
        (TokenExchangeError("e", error="transport", retryable=True), 0, PollWait(1, 30.0)),
        # the budget: the third failure in a row of max_consecutive_failures=3 raises
        (api(AltinnServerError, 503), 2, RAISE),
        (AltinnTransportError("timeout"), 2, RAISE),
        # anything not retryable raises at once, whatever the count
        (api(AltinnBadRequestError, 400), 0, RAISE),
        (api(AltinnForbiddenError, 403), 0, RAISE),
        (api(AltinnUnauthorizedError, 401), 0, RAISE),
        (api(AltinnNotFoundError, 404), 0, RAISE),
        (TokenGrantError("g", status_code=400, error="invalid_client"), 0, RAISE),
        (AltinnConfigError("c", field="scopes"), 0, RAISE),
        (AltinnPayloadError("p"), 0, RAISE),
    ],
)
def test_decision(error: AltinnError, failures: int, expected: PollWait | None) -> None:
    assert POLICY.after_failure(error, failures) == expected


@pytest.mark.parametrize(
    ("retry_after", "interval", "wait"),
    [
        (86_400_000.0, 30.0, MAX_WAIT_SECONDS),  # 1000 days
        (math.inf, 30.0, MAX_WAIT_SECONDS),
        (MAX_WAIT_SECONDS + 1, 30.0, MAX_WAIT_SECONDS),
        (MAX_WAIT_SECONDS, 30.0, MAX_WAIT_SECONDS),
        (86_400_000.0, 3600.0, 3600.0),  # the interval is longer than the cap: the interval wins
        (math.nan, 30.0, 30.0),  # not a number: as if absent
        (-5.0, 30.0, 30.0),
    ],
)
@pytest.mark.parametrize("status", [429, 503])
def test_waits_are_capped(retry_after: float, interval: float, wait: float, status: int) -> None:
    cls = AltinnRateLimitError if status == 429 else AltinnServerError
    error = api(cls, status, retry_after=retry_after)
    decision = PollFailurePolicy(poll_interval=interval).after_failure(error, 0)
    assert decision is not None and decision.seconds == wait
    assert decision.capped is (not math.isnan(retry_after) and retry_after > wait)


def test_the_log_line_says_what_the_service_asked_for_and_what_is_used() -> None:
    error = api(AltinnRateLimitError, 429, retry_after=86_400_000.0)
    decision = POLICY.after_failure(error, 0)
    assert decision is not None
    line = decision.describe("urn:altinn:resource:r", error, POLICY.max_consecutive_failures)
    assert "rate limiting urn:altinn:resource:r" in line
    assert "86400000 s (Retry-After)" in line and "next poll in 900 s" in line
    forever = POLICY.after_failure(api(AltinnServerError, 503, retry_after=math.inf), 0)
    assert forever is not None
    line = forever.describe("r", error, 3)
    assert "forever" in line and "1 of 3 allowed in a row" in line


def test_the_watcher_counts_errors_that_are_not_retryable() -> None:
    watcher = dataclasses.replace(POLICY, unretryable_counts=True)
    assert watcher.after_failure(api(AltinnForbiddenError, 403), 0) == PollWait(1, 30.0)
    assert watcher.after_failure(api(AltinnForbiddenError, 403), 2) is RAISE


def test_one_default_for_every_poll_loop() -> None:
    from airflow_provider_altinn_events.sensors.altinn_events import AltinnEventsSensor
    from airflow_provider_altinn_events.triggers.altinn_events import (
        AltinnEventsSensorTrigger,
        AltinnEventsWatcherTrigger,
    )

    assert PollFailurePolicy(1.0).max_consecutive_failures == DEFAULT_MAX_CONSECUTIVE_FAILURES == 10
    assert AltinnEventsSensor(task_id="t", resource="urn:altinn:resource:r").max_consecutive_failures == 10
    assert AltinnEventsSensorTrigger(resource="urn:altinn:resource:r").max_consecutive_failures == 10
    assert AltinnEventsWatcherTrigger(resource="urn:altinn:resource:r").max_consecutive_failures == 10


@pytest.mark.parametrize(
    "kwargs",
    [
        {"poll_interval": 0},
        {"poll_interval": math.inf},
        {"poll_interval": math.nan},
        {"poll_interval": 1, "max_consecutive_failures": 0},
        {"poll_interval": 1, "max_wait_seconds": -1},
    ],
)
def test_policy_is_validated(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        PollFailurePolicy(**kwargs)  # type: ignore[arg-type]


# ---------------------------------------------------------------------------------------------------------
# Retry-After parsing and the client's retry policy never see inf, NaN or a negative number
# ---------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("header", "seconds"),
    [
        ("120", 120.0),
        ("86400000", 86_400_000.0),
        ("0", 0.0),
        ("-5", 0.0),
        ("inf", None),
        ("-inf", None),
        ("Infinity", None),
        ("nan", None),
        ("1" + "0" * 400, None),  # too large for a float
        ("soon", None),
        ("", None),
        (None, None),
        ("Wed, 21 Oct 2015 07:28:00 GMT", 0.0),  # in the past
    ],
)
def test_parse_retry_after_is_finite_and_not_negative(header: str | None, seconds: float | None) -> None:
    assert parse_retry_after(header, now=1_700_000_000.0) == seconds


def test_a_far_http_date_is_finite_and_then_capped() -> None:
    seconds = parse_retry_after("Fri, 31 Dec 9999 23:59:59 GMT", now=1_700_000_000.0)
    assert seconds is not None and math.isfinite(seconds) and seconds > 1e11
    decision = POLICY.after_failure(api(AltinnRateLimitError, 429, retry_after=seconds), 0)
    assert decision is not None and decision.seconds == MAX_WAIT_SECONDS and decision.capped


@pytest.mark.parametrize(
    ("retry_after", "delay"), [(math.inf, None), (math.nan, 0.0), (-3.0, 0.0), (2.0, 2.0)]
)
def test_retry_policy_handles_odd_retry_after_values(retry_after: float, delay: float | None) -> None:
    # NaN is ignored (the jittered backoff applies, here drawn as 0), inf gives up, negative waits 0
    policy = RetryPolicy(rng=lambda: 0.0)
    assert policy.next_delay(api(AltinnRateLimitError, 429, retry_after=retry_after), 1) == delay

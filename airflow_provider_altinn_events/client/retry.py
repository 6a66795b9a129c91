"""When to send a failed request again, and after how long: a pure decision, no sleeping here.

Retried: transport errors (connect, read, timeouts), 5xx and 429, including the token services' 5xx/429 and
transport errors. Never retried: any other 4xx, configuration and payload errors. The policy reads
``error.retryable`` and ``retry_after``; it never parses messages.

Backoff is exponential with *full jitter* (a uniform draw between 0 and the exponential cap), which spreads
the retries of many triggers that failed together; a ``Retry-After`` from the service is honoured instead.
Two bounds stop the loop: ``max_attempts`` and ``budget_seconds`` of total elapsed time (a retry that would
end past the budget is not started). The caller then re-raises the last error, which is still ``retryable``
and names the last status, so Airflow's own task retries can take over.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeGuard

from airflow_provider_altinn_events.exceptions import AltinnAuthError, AltinnError, AltinnTransportError

__all__ = ["RetryPolicy"]


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff with full jitter, bounded by attempts and a time budget.

    :param max_attempts: total sends, the first included (1 disables retries).
    :param backoff_base_seconds: the cap of the first retry's delay; doubles with each attempt.
    :param backoff_max_seconds: the largest cap for a single delay.
    :param budget_seconds: total time (from the first send) after which no retry starts.
    :param max_retry_after_seconds: a ``Retry-After`` longer than this ends the retries at once.
    :param rng: a ``random()``-like function returning [0, 1); inject a fixed one for exact delays in tests.
    """

    max_attempts: int = 5
    backoff_base_seconds: float = 0.5
    backoff_max_seconds: float = 20.0
    budget_seconds: float = 60.0
    max_retry_after_seconds: float = 60.0
    rng: Callable[[], float] = field(default=random.random, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        if self.backoff_base_seconds < 0 or self.backoff_max_seconds < 0 or self.budget_seconds < 0:
            raise ValueError("backoff and budget seconds must not be negative")

    @classmethod
    def disabled(cls) -> RetryPolicy:
        """Send once, never retry (``test_connection`` uses this to report the first failure as it is)."""
        return cls(max_attempts=1)

    def next_delay(
        self,
        error: AltinnError,
        attempt: int,
        *,
        elapsed_seconds: float = 0.0,
        idempotent: bool = True,
    ) -> float | None:
        """Seconds to wait before the next attempt, or ``None`` to give up and raise ``error``.

        :param error: what the attempt raised.
        :param attempt: the number of the attempt that just failed (1 for the first send).
        :param elapsed_seconds: time since the first send.
        :param idempotent: ``False`` for requests that must not run twice (``POST /app`` creates a new event
            each time): then only failures that prove the request was not processed are retried, i.e. 429,
            503 and connection failures before sending.
        """
        if not error.retryable or attempt >= self.max_attempts:
            return None
        if not idempotent and not _surely_not_processed(error):
            return None
        retry_after = getattr(error, "retry_after", None)
        if _usable_seconds(retry_after):
            if retry_after > self.max_retry_after_seconds:  # inf too: the poll loop's cap takes over
                return None
            delay = max(0.0, float(retry_after))
        else:
            cap = min(self.backoff_max_seconds, self.backoff_base_seconds * (2 ** (attempt - 1)))
            delay = self.rng() * cap
        if elapsed_seconds + delay > self.budget_seconds:
            return None
        return delay


def _usable_seconds(value: object) -> TypeGuard[float]:
    """Whether ``value`` is a number of seconds to honour (not a bool, not NaN; ``inf`` is usable: too long)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and not math.isnan(value)


def _surely_not_processed(error: AltinnError) -> bool:
    if isinstance(error, AltinnAuthError):  # the token flow failed, so the request itself never went out
        return True
    if isinstance(error, AltinnTransportError):
        return error.request_sent is False
    status = getattr(error, "status_code", None)
    return status in (429, 503)

"""What a poll loop does after a failed poll: a pure decision, no sleeping here.

The poke sensor (``sensors/altinn_events.py``) and both triggers (``triggers/altinn_events.py``) poll
``GET /events`` again and again. Each poll has already been retried inside the client (:mod:`.retry`); what
still fails comes here, with the number of polls in a row that failed before it, and the answer is either
"wait this long, the count is now n" or ``None``: raise the error now.

* **Rate limit (429).** The service asks us to slow down; that is not a failure, so the count stays as it is,
  and the next poll waits ``max(poll_interval, Retry-After)``.
* **Retryable error** (5xx, transport, a token service's 5xx). It counts; once ``max_consecutive_failures``
  polls in a row have failed the loop gives up. Otherwise the next poll waits ``max(poll_interval,
  Retry-After)`` when the service said when to come back (a 503 may), else ``poll_interval``.
* **Any other error** (400, 403, a refused grant, bad configuration, ...) is raised at once: polling again
  would get the same answer. Whether the task may then retry is the error's ``permanent`` flag, read at the
  Airflow boundary (``_boundary.py``), not here.

**Bounded waits.** A ``Retry-After`` is the service's word, and a broken or hostile proxy can say anything:
``86400000`` s, an HTTP date years away. Waiting that out would park a sensor until its timeout and a watcher
until the triggerer restarts, silently. So no wait is longer than ``max(poll_interval, MAX_WAIT_SECONDS)``
(15 minutes by default, ``docs/performance.rst``): the worst a wrong ``Retry-After`` can cost is one request
per 15 minutes that gets the same answer, while a real rate limit (Altinn's are per minute) is always waited
out in full. :class:`PollWait` says when the service asked for more, so the caller logs it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from airflow_provider_altinn_events.exceptions import AltinnError, AltinnRateLimitError

__all__ = ["DEFAULT_MAX_CONSECUTIVE_FAILURES", "MAX_WAIT_SECONDS", "PollFailurePolicy", "PollWait"]

DEFAULT_MAX_CONSECUTIVE_FAILURES = 10
"""Failed polls in a row (after the client's own retries) before the sensor and both triggers give up.

With the default ``poll_interval`` of 30 s that is five minutes of an unreachable or failing service.
"""

MAX_WAIT_SECONDS = 900.0
"""The longest pause a ``Retry-After`` can impose on a poll loop (15 minutes) unless ``poll_interval`` is
longer: long enough for any rate limit Altinn applies (per minute), short enough that a wrong header costs a
sensor a few polls, not its whole timeout."""


@dataclass(frozen=True, slots=True)
class PollWait:
    """Poll again after :attr:`seconds`; :attr:`failures` is the new count of failed polls in a row.

    :param failures: consecutive failed polls, this one included (unchanged after a rate limit).
    :param seconds: how long to wait before the next poll (never more than the policy's cap).
    :param requested: the service's ``Retry-After`` in seconds, if it sent one.
    :param rate_limited: the failure was a 429 and did not count.
    """

    failures: int
    seconds: float
    requested: float | None = None
    rate_limited: bool = False

    @property
    def capped(self) -> bool:
        """Whether the service asked for a longer pause than the one used."""
        return self.requested is not None and self.requested > self.seconds

    def describe(self, resource: str, error: AltinnError, max_failures: int) -> str:
        """One log line for the sensor and both triggers alike: what failed, how long until the next poll and,
        when the ``Retry-After`` was cut, what the service asked for."""
        if self.rate_limited:
            head = f"Altinn is rate limiting {resource} (HTTP 429)"
        else:
            head = f"Polling {resource} failed ({self.failures} of {max_failures} allowed in a row)"
        asked = ""
        if self.capped:
            asked = (
                f"; the service asked for {_seconds(self.requested)} (Retry-After), which is more than the "
                f"{_seconds(self.seconds)} a poll loop waits at most"
            )
        elif self.requested is not None:
            asked = f" (Retry-After {_seconds(self.requested)})"
        return f"{head}; next poll in {_seconds(self.seconds)}{asked}: {error}"


@dataclass(frozen=True, slots=True)
class PollFailurePolicy:
    """The rule every poll loop follows after a failed poll (see the module docstring).

    :param poll_interval: seconds between polls once caught up; the shortest wait after a failure.
    :param max_consecutive_failures: counted failures in a row that end the loop (at least 1).
    :param max_wait_seconds: the longest wait a ``Retry-After`` can impose (when longer than ``poll_interval``).
    :param unretryable_counts: count errors that are not retryable like retryable ones instead of raising at
        once. The watcher sets it: a watcher has no task to fail, and raising only makes the triggerer start
        it again (first poll within one ``poll_interval``), so counting keeps its pace and its log readable.
    """

    poll_interval: float
    max_consecutive_failures: int = DEFAULT_MAX_CONSECUTIVE_FAILURES
    max_wait_seconds: float = MAX_WAIT_SECONDS
    unretryable_counts: bool = False

    def __post_init__(self) -> None:
        if not (math.isfinite(self.poll_interval) and self.poll_interval > 0):
            raise ValueError("poll_interval must be a finite number of seconds > 0")
        if self.max_consecutive_failures < 1:
            raise ValueError("max_consecutive_failures must be at least 1")
        if not self.max_wait_seconds >= 0:
            raise ValueError("max_wait_seconds must not be negative")

    @property
    def longest_wait(self) -> float:
        """The longest wait this policy ever returns."""
        return max(self.poll_interval, self.max_wait_seconds)

    def after_failure(self, error: AltinnError, failures: int) -> PollWait | None:
        """How to go on after ``error``, or ``None`` to raise it now.

        :param error: what the poll raised (after the client's own retries).
        :param failures: counted failures in a row before this one (0 after a good poll).
        """
        requested = _retry_after(error)
        if isinstance(error, AltinnRateLimitError):
            return PollWait(failures, self._wait(requested), requested, rate_limited=True)
        if not error.retryable and not self.unretryable_counts:
            return None
        failures += 1
        if failures >= self.max_consecutive_failures:
            return None
        return PollWait(failures, self._wait(requested), requested)

    def _wait(self, requested: float | None) -> float:
        if requested is None:
            return self.poll_interval
        return max(self.poll_interval, min(requested, self.max_wait_seconds))


def _retry_after(error: AltinnError) -> float | None:
    """The error's ``Retry-After`` in seconds, or ``None`` when absent or not a usable number (NaN, negative,
    a bool): such a header is treated as if it had not been sent; ``inf`` stays, and the cap cuts it."""
    value = getattr(error, "retry_after", None)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    if math.isnan(value) or value < 0:
        return None
    return float(value)


def _seconds(value: float | None) -> str:
    if value is None:
        return "?"
    if math.isinf(value):
        return "forever"
    return f"{value:.0f} s" if value >= 10 else f"{value:g} s"

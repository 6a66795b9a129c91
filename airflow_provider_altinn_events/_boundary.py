"""Where the provider's errors meet Airflow: the one rule for which failures skip Airflow's task retries.

An error whose ``permanent`` flag is set (``exceptions.py``: 400, 403, refused credentials, bad arguments or
connection, an unusable ingestion state) gets the same answer on every try, so every operator, the sensor
(poke and deferred) fails the task at once with ``AirflowFailException``; everything else is raised as it is
and Airflow's ``retries`` apply. The client core never imports Airflow, so the rule lives here, once.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

from airflow_provider_altinn_events._compat import AirflowException, AirflowFailException
from airflow_provider_altinn_events.exceptions import AltinnError

__all__ = ["is_permanent", "permanent_errors_fail_task", "task_failure"]


def is_permanent(error: BaseException) -> bool:
    """Whether no later try of the task can get past ``error``."""
    return bool(getattr(error, "permanent", False))


def task_failure(message: str, *, permanent: bool) -> AirflowException:
    """The exception to fail a task with: ``AirflowFailException`` (no retries) when ``permanent``."""
    return AirflowFailException(message) if permanent else AirflowException(message)


@contextmanager
def permanent_errors_fail_task(message: str | Callable[[AltinnError], str] = "") -> Iterator[None]:
    """Fail the task at once on a permanent :class:`AltinnError` raised inside; let the rest through as is.

    :param message: a prefix for ``str(error)``, or a function that writes the whole message from the error.
    :raises AirflowFailException: the error was permanent (chained, so the original stays in the traceback).
    """
    try:
        yield
    except AltinnError as error:
        if not error.permanent:
            raise
        text = message(error) if callable(message) else f"{message}{error}"
        raise AirflowFailException(text) from error

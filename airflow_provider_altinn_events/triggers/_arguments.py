"""The triggers' argument checks, run at construction: a watcher is built when its DAG file is parsed, so a
mistake shows up as a DAG import error instead of a trigger polling in a tight loop or failing in the triggerer.

Only the standard library is imported at module level; the filter and the errors are loaded on first use.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from airflow_provider_altinn_events.client.matching import EventFilter

__all__ = ["_event_filter", "_min_max_events", "_poll_interval"]


def _event_filter(
    resource: str,
    event_types: Sequence[str] | str | None,
    subject: str | None,
    alternative_subject: str | None,
    source: str | None,
    where: Mapping[str, Any] | None,
) -> EventFilter:
    """Normalise and check the filter arguments (at construction, so a watcher's typo is a DAG import error).

    The trigger keeps the checked filter, not its kwargs: it is what every poll uses, and a slotted frozen
    value is the smallest form to hold for hundreds of waiting triggers; ``serialize()`` writes it back out.
    """
    from airflow_provider_altinn_events.client.matching import EventFilter

    return EventFilter.from_arguments(
        resource=resource,
        event_types=event_types,
        subject=subject,
        alternative_subject=alternative_subject,
        source=source,
        where=where,
    )


def _poll_interval(value: Any) -> float:
    """``poll_interval`` checked: a negative or zero pause would poll Altinn in a tight loop.

    :raises AltinnConfigError: not a number of seconds > 0.
    """
    from airflow_provider_altinn_events.exceptions import AltinnConfigError

    try:
        seconds = float(value)
    except (TypeError, ValueError):
        seconds = float("nan")
    if isinstance(value, bool) or not seconds > 0 or seconds == float("inf"):
        raise AltinnConfigError(
            f"poll_interval must be a number of seconds > 0, e.g. 30; got {value!r}", field="poll_interval"
        )
    return seconds


def _min_max_events(min_events: Any, max_events: Any) -> tuple[int, int | None]:
    """``min_events`` and ``max_events`` checked, as the sensor checks them.

    :raises AltinnConfigError: ``min_events`` below 1, or ``max_events`` below ``min_events``.
    """
    from airflow_provider_altinn_events.exceptions import AltinnConfigError

    low = _as_int(min_events)
    if low is None or low < 1:
        raise AltinnConfigError(
            f"min_events must be at least 1 (an integer), got {min_events!r}", field="min_events"
        )
    if max_events is None:
        return low, None
    high = _as_int(max_events)
    if high is None or high < low:
        raise AltinnConfigError(
            f"max_events must be at least min_events ({low}) or None, got {max_events!r}", field="max_events"
        )
    return low, high


def _as_int(value: Any) -> int | None:
    """``value`` as an int (``2`` or ``"2"``, as kwargs may come), or ``None`` if it is not one."""
    if isinstance(value, bool):
        return None
    try:
        number = int(value)
    except (TypeError, ValueError):
        return None
    return number if number == value or isinstance(value, str) else None

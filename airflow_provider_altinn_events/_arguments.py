"""The one argument checker of every constructor: the sensor, both event triggers and the operators.

Each check raises :class:`~airflow_provider_altinn_events.exceptions.AltinnConfigError` naming the argument
(``field``) and what is allowed, and runs in ``__init__``: operators, sensors and watchers are built when
their DAG file is imported, so a mistake is a DAG import error, in the dag-processor and in a plain
``DagBag`` test alike, instead of a task or trigger failing hours later (``docs/guides/event-driven.rst``).

Values that are still Jinja templates (the sensor's templated fields) cannot be judged before they are
rendered; :func:`is_templated` tells the caller to check them again after rendering.

Only the standard library is imported at module level (DAG files import this on every parse); the filter,
the URN rule and the errors are loaded on first use.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from airflow_provider_altinn_events.client.matching import EventFilter

__all__ = [
    "check_event_filter",
    "filter_arguments",
    "check_failures",
    "check_int",
    "check_min_max_events",
    "check_resume_grace",
    "check_seconds",
    "is_templated",
]


def check_event_filter(**arguments: Any) -> EventFilter:
    """The filter from the constructor arguments (keywords named as ``EventFilter``'s fields), checked.

    Besides the filter's own rules, ``resource`` must be a URN Altinn accepts (``client/urn.py``): the events
    query only checks its prefix, so ``urn:altinn:resource:My Resource`` would be polled for ever and match
    nothing, as no event can carry it.

    :raises AltinnConfigError: an argument cannot be sent to the service or is not a valid condition.
    """
    from airflow_provider_altinn_events.client.matching import EventFilter
    from airflow_provider_altinn_events.client.urn import URN_HELP, is_valid_urn
    from airflow_provider_altinn_events.exceptions import AltinnConfigError

    event_filter = EventFilter.from_arguments(**arguments)
    if not is_valid_urn(event_filter.resource):
        raise AltinnConfigError(
            f"resource {event_filter.resource!r} is not a resource URN Altinn accepts: it must be {URN_HELP}",
            field="resource",
        )
    return event_filter


def check_seconds(value: Any, field: str, *, example: str = "30") -> float:
    """A finite number of seconds > 0 (a number or a numeric string, as rendered kwargs may come).

    :raises AltinnConfigError: anything else; zero or less would poll in a tight loop, ``inf`` never.
    """
    from airflow_provider_altinn_events.exceptions import AltinnConfigError

    try:
        seconds = float(value)
    except (TypeError, ValueError):
        seconds = math.nan
    if isinstance(value, bool) or not math.isfinite(seconds) or seconds <= 0:
        raise AltinnConfigError(
            f"{field} must be a number of seconds > 0, e.g. {example}; got {value!r}", field=field
        )
    return seconds


def check_resume_grace(value: Any, field: str = "resume_grace") -> float | None:
    """``resume_grace`` checked: ``None`` (use the configuration) or a finite number of seconds >= 0.

    Also checks the ``[altinn_events] sensor_resume_grace`` option (``triggers/_grace.py`` passes its name as
    ``field``); what the grace is for is told there.

    :raises AltinnConfigError: anything else, naming ``field``.
    """
    if value is None:
        return None
    from airflow_provider_altinn_events.exceptions import AltinnConfigError

    try:
        seconds = float(value)
    except (TypeError, ValueError):
        seconds = math.nan
    if isinstance(value, bool) or not 0 <= seconds < math.inf:
        from airflow_provider_altinn_events.triggers._grace import DEFAULT_RESUME_GRACE

        raise AltinnConfigError(
            f"{field} must be a number of seconds >= 0 (0 turns the grace off), e.g. "
            f"{DEFAULT_RESUME_GRACE:g}; got {value!r}",
            field=field,
        )
    return seconds


def check_int(
    value: Any,
    field: str,
    *,
    minimum: int,
    maximum: int | None = None,
    why: str = "",
    lenient: bool = False,
) -> int:
    """An integer between ``minimum`` and ``maximum``.

    :param why: said after the maximum in the message, e.g. ``" (Altinn's page limit)"``.
    :param lenient: also take ``"2"`` and ``2.0``: trigger kwargs, which the triggerer rebuilds from JSON and
        which older releases accepted so (an operator argument must be a real ``int``).
    :raises AltinnConfigError: not an integer, or out of range.
    """
    from airflow_provider_altinn_events.exceptions import AltinnConfigError

    strict = value if isinstance(value, int) and not isinstance(value, bool) else None
    number = _as_int(value) if lenient else strict
    if number is None or number < minimum:
        allowed = "a positive integer (at least 1)" if minimum == 1 else f"an integer of at least {minimum}"
        raise AltinnConfigError(f"{field} must be {allowed}, got {value!r}", field=field)
    if maximum is not None and number > maximum:
        raise AltinnConfigError(f"{field} must be at most {maximum}{why}, got {value!r}", field=field)
    return number


def check_failures(value: Any) -> int:
    """``max_consecutive_failures``: failed polls in a row before giving up, at least 1."""
    return check_int(value, "max_consecutive_failures", minimum=1, lenient=True)


def check_min_max_events(min_events: Any, max_events: Any) -> tuple[int, int | None]:
    """``min_events`` and ``max_events``: at least 1, and ``max_events`` ``None`` or at least ``min_events``.

    :raises AltinnConfigError: naming the argument at fault.
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


def filter_arguments(arguments: Mapping[str, Any]) -> dict[str, Any]:
    """The filter arguments among a constructor's ``locals()``: one per ``EventFilter`` field, so the sensor
    and the triggers pass a new field on without listing it again (docs/architecture.rst,
    "architecture-filter")."""
    from airflow_provider_altinn_events.client.matching import FILTER_FIELDS

    return {name: arguments[name] for name in FILTER_FIELDS}


def is_templated(value: Any) -> bool:
    """Whether ``value`` (or anything inside it) is not final yet: a Jinja string or an object Airflow
    resolves at run time, such as an upstream task's ``.output``."""
    if isinstance(value, str):
        return "{{" in value or "{%" in value
    if value is None or isinstance(value, (bool, int, float)):
        return False
    if isinstance(value, Mapping):
        return any(is_templated(k) or is_templated(v) for k, v in value.items())
    if isinstance(value, (list, tuple, set, frozenset)):
        return any(is_templated(item) for item in value)
    return True


def _as_int(value: Any) -> int | None:
    """``value`` as an int (``2``, ``2.0`` or ``"2"``, as kwargs may come), or ``None`` if it is not one."""
    if isinstance(value, bool):
        return None
    try:
        number = int(value)
    except (TypeError, ValueError, OverflowError):
        return None
    return number if number == value or isinstance(value, str) else None

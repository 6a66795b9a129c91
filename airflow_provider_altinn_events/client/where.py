"""The declarative ``where`` filter: conditions on event fields by dotted path, checked on our side.

``{"data.status": "completed", "subject": {"prefix": "/party/"}}`` means: ``data.status`` equals
``"completed"`` and ``subject`` starts with ``/party/``. A plain value means equality; a dict uses operators
from :data:`WHERE_OPERATORS`, all of which must hold. :func:`validate_where` checks a filter once, up front
(a typo fails the task instead of matching nothing); :func:`where_matches` applies it to one event.
:func:`like_match` is the service's own ``LIKE`` matching, which the ``like`` operator and
:class:`~airflow_provider_altinn_events.client.matching.EventFilter` (for ``event_types`` and ``source``) use.

Nothing here imports Airflow or does I/O.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import lru_cache
from typing import Any

from airflow_provider_altinn_events.exceptions import AltinnConfigError

__all__ = ["WHERE_OPERATORS", "like_match", "validate_where", "where_matches"]

WHERE_OPERATORS = frozenset(
    {"eq", "ne", "in", "not_in", "prefix", "suffix", "contains", "like", "exists", "gt", "gte", "lt", "lte"}
)
"""Operators a ``where`` condition may use; a plain (non-dict) value means ``eq``."""

_STRING_OPERATORS = frozenset({"prefix", "suffix", "like"})
_LIST_OPERATORS = frozenset({"in", "not_in"})
_ORDER_OPERATORS = frozenset({"gt", "gte", "lt", "lte"})
_MISSING = object()


_Segment = tuple[int, tuple[tuple[int, str], ...]]
"""A run of a ``LIKE`` pattern between two ``%``: its length, and its literal pieces at their offsets (the
positions in between are ``_``, any one character)."""


@lru_cache(maxsize=256)
def _like_segments(pattern: str) -> tuple[_Segment, ...]:
    """``pattern`` split at its unescaped ``%``: one segment if there is none, else one more than there are."""
    segments: list[_Segment] = []
    pieces: list[tuple[int, str]] = []
    literal: list[str] = []
    length = 0

    def close_literal() -> None:
        if literal:
            pieces.append((length - len(literal), "".join(literal)))
            literal.clear()

    escaped = False
    for char in pattern:
        if not escaped and char == "\\":
            escaped = True
            continue
        if not escaped and char == "%":
            close_literal()
            segments.append((length, tuple(pieces)))
            pieces, length = [], 0
            continue
        if not escaped and char == "_":
            close_literal()
        else:
            literal.append(char)
        escaped = False
        length += 1
    if escaped:  # a trailing backslash stands for itself
        literal.append("\\")
        length += 1
    close_literal()
    segments.append((length, tuple(pieces)))
    return tuple(segments)


def _segment_at(segment: _Segment, value: str, position: int) -> bool:
    length, pieces = segment
    return position + length <= len(value) and all(
        value.startswith(piece, position + offset) for offset, piece in pieces
    )


def _find_segment(segment: _Segment, value: str, position: int) -> int:
    """The leftmost position from ``position`` on where ``segment`` matches, or -1. Candidates come from
    ``str.find`` of its first literal piece, so a segment without ``_`` costs one linear search."""
    length, pieces = segment
    if not pieces:
        return position if position + length <= len(value) else -1
    offset, first = pieces[0]
    found = value.find(first, position + offset)
    while found != -1:
        start = found - offset
        if start + length > len(value):
            return -1
        if _segment_at(segment, value, start):
            return start
        found = value.find(first, found + 1)
    return -1


def like_match(pattern: str, value: str) -> bool:
    """Match ``value`` the way the service matches ``type`` (SQL ``LIKE``, case-sensitive).

    ``%`` matches any run of characters, ``_`` any one character, a backslash makes the next character
    literal. Used for ``event_types`` and ``source`` so that our own check never disagrees with the server.

    No regular expression and no backtracking (a ``%a%b`` regex took seconds on a 64 KB ``source``, on the
    triggerer's event loop): the first segment must match at the start and the last at the end, and each
    segment in between is taken at its leftmost match after the previous one, which is the right choice
    because any later match leaves the rest less room. Each segment is searched once from left to right, so
    the cost is at most ``len(value)`` times the pattern's length, and ``len(value)`` for a pattern without
    ``_``.
    """
    segments = _like_segments(pattern)
    if len(segments) == 1:
        return len(value) == segments[0][0] and _segment_at(segments[0], value, 0)
    if not _segment_at(segments[0], value, 0):
        return False
    position = segments[0][0]
    for segment in segments[1:-1]:
        found = _find_segment(segment, value, position)
        if found == -1:
            return False
        position = found + segment[0]
    last = segments[-1]
    return len(value) - last[0] >= position and _segment_at(last, value, len(value) - last[0])


def _resolve(event: Mapping[str, Any], path: str) -> Any:
    """Follow a dotted path (``data.status``, ``data.items.0.id``) into an event; ``_MISSING`` if absent."""
    current: Any = event
    for part in path.split("."):
        if isinstance(current, Mapping):
            if part not in current:
                return _MISSING
            current = current[part]
        elif isinstance(current, list) and part.lstrip("-").isdigit():
            index = int(part)
            if not -len(current) <= index < len(current):
                return _MISSING
            current = current[index]
        else:
            return _MISSING
    return current


def _compare(operator: str, actual: Any, expected: Any) -> bool:
    """One ``where`` operator; mismatched types (e.g. ``gt`` of a string and a number) are a non-match."""
    if operator == "exists":
        return (actual is not _MISSING) is bool(expected)
    if actual is _MISSING:
        return operator in {"ne", "not_in"}
    if operator == "eq":
        return bool(actual == expected)
    if operator == "ne":
        return bool(actual != expected)
    if operator == "in":
        return actual in expected
    if operator == "not_in":
        return actual not in expected
    if operator == "contains":
        if isinstance(actual, str):
            return isinstance(expected, str) and expected in actual
        return isinstance(actual, (list, Mapping)) and expected in actual
    if operator in _STRING_OPERATORS:
        if not isinstance(actual, str):
            return False
        if operator == "prefix":
            return actual.startswith(expected)
        if operator == "suffix":
            return actual.endswith(expected)
        return like_match(expected, actual)
    # ordering: only numbers with numbers and strings with strings (ISO times compare as strings)
    numbers = (int, float)
    comparable = (
        isinstance(actual, numbers)
        and isinstance(expected, numbers)
        and not isinstance(actual, bool)
        and not isinstance(expected, bool)
    ) or (isinstance(actual, str) and isinstance(expected, str))
    if not comparable:
        return False
    if operator == "gt":
        return bool(actual > expected)
    if operator == "gte":
        return bool(actual >= expected)
    if operator == "lt":
        return bool(actual < expected)
    return bool(actual <= expected)


def validate_where(where: Mapping[str, Any]) -> dict[str, Any]:
    """Check a ``where`` filter once, up front, so a typo fails the task instead of matching nothing."""
    if not isinstance(where, Mapping):
        raise AltinnConfigError("where must be a mapping of field path to condition", field="where")
    checked: dict[str, Any] = {}
    for path, condition in where.items():
        if not isinstance(path, str) or not path or any(not part for part in path.split(".")):
            raise AltinnConfigError(f"where: bad field path {path!r}", field="where")
        if isinstance(condition, Mapping):
            if not condition:
                raise AltinnConfigError(f"where[{path!r}]: empty condition", field="where")
            for operator, operand in condition.items():
                if operator not in WHERE_OPERATORS:
                    raise AltinnConfigError(
                        f"where[{path!r}]: unknown operator {operator!r} (use one of {sorted(WHERE_OPERATORS)};"
                        " wrap a literal dict in {'eq': ...})",
                        field="where",
                    )
                if operator in _LIST_OPERATORS and not isinstance(operand, (list, tuple)):
                    raise AltinnConfigError(f"where[{path!r}].{operator} needs a list", field="where")
                if operator in _STRING_OPERATORS and not isinstance(operand, str):
                    raise AltinnConfigError(f"where[{path!r}].{operator} needs a string", field="where")
                if operator == "exists" and not isinstance(operand, bool):
                    raise AltinnConfigError(f"where[{path!r}].exists needs true or false", field="where")
                if operator in _ORDER_OPERATORS and (
                    isinstance(operand, bool) or not isinstance(operand, (int, float, str))
                ):
                    raise AltinnConfigError(
                        f"where[{path!r}].{operator} needs a number or string", field="where"
                    )
            checked[path] = {op: list(v) if isinstance(v, tuple) else v for op, v in condition.items()}
        else:
            checked[path] = list(condition) if isinstance(condition, tuple) else condition
    return checked


def where_matches(where: Mapping[str, Any], event: Mapping[str, Any]) -> bool:
    """Whether ``event`` meets every condition of a ``where`` filter checked by :func:`validate_where`."""
    for path, condition in where.items():
        actual = _resolve(event, path)
        if isinstance(condition, Mapping):
            if not all(_compare(op, actual, operand) for op, operand in condition.items()):
                return False
        elif not _compare("eq", actual, condition):
            return False
    return True

"""JSON as System.Text.Json reads and writes it, so nothing accepted is unservable (docs/contract.rst).

* numbers keep their text (``1e400`` stays ``1e400``; Python's ``float`` would make it ``Infinity``,
  which is not JSON); ``NaN`` / ``Infinity`` literals are refused as ``JsonDocument`` refuses them;
* nesting deeper than ``JsonDocumentOptions.MaxDepth`` (64) is refused;
* a string holding a lone UTF-16 surrogate (``"\\ud800"``) is refused with the message .NET gives when
  it reads it as a string: such a string has no UTF-8 form and could never be sent back.
"""

from __future__ import annotations

import json
import re
from typing import Any

#: ``JsonDocumentOptions.MaxDepth`` / ``JsonSerializerOptions.MaxDepth`` default.
MAX_DEPTH = 64
_SURROGATE = re.compile("[\ud800-\udfff]")
_INT32 = re.compile(r"-?[0-9]+\Z")


class RawNumber:
    """A JSON number kept as its text, written back unchanged."""

    __slots__ = ("text",)

    def __init__(self, text: str) -> None:
        self.text = text

    def __repr__(self) -> str:
        return f"RawNumber({self.text})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, RawNumber) and other.text == self.text

    def __hash__(self) -> int:
        return hash(self.text)

    def as_int32(self) -> int | None:
        """``JsonElement.TryGetInt32``: an integer literal (no fraction or exponent) within Int32."""
        if not _INT32.match(self.text) or len(self.text) > 12:
            return None
        value = int(self.text)
        return value if -(2**31) <= value < 2**31 else None


class JsonTextError(ValueError):
    """Not JSON as System.Text.Json reads it; the message follows .NET's wording."""


def _refuse_constant(name: str) -> Any:
    raise JsonTextError(f"'{name[0]}' is an invalid start of a value. LineNumber: 0 | BytePositionInLine: 0.")


def _integer(text: str) -> Any:
    """JSON integers have no leading zeros, so ``int`` writes the same text back, except ``-0`` and
    integers beyond Python's digit limit, which stay :class:`RawNumber`."""
    return int(text) if len(text) < 4000 and text != "-0" else RawNumber(text)


def _fraction(text: str) -> Any:
    """A ``float`` when Python writes it back with the same text, else a :class:`RawNumber` (``1e400``,
    ``1.50``, ``1E+2``)."""
    value = float(text)
    return value if repr(value) == text else RawNumber(text)


def loads(text: str) -> Any:
    """Parse ``text`` keeping each number's text (plain numbers as ``int`` / ``float``, others as
    :class:`RawNumber`).

    :raises JsonTextError: on NaN/Infinity, nesting deeper than 64, or a lone surrogate.
    :raises json.JSONDecodeError: on malformed JSON (the caller words it).
    """
    try:
        value = json.loads(text, parse_int=_integer, parse_float=_fraction, parse_constant=_refuse_constant)
    except RecursionError as exc:
        raise _too_deep() from exc
    if text.count("[") + text.count("{") > MAX_DEPTH and _max_depth(text) > MAX_DEPTH:
        raise _too_deep()
    if _ESCAPED_SURROGATE.search(text):  # raw UTF-8 cannot hold a surrogate: only an escape can
        check(value)
    return value


_STRING_LITERAL = re.compile(r'"(?:[^"\\]|\\.)*"')
_ESCAPED_SURROGATE = re.compile(r"\\u[dD][89a-fA-F]")
_BRACKETS = {ord(c): None for c in map(chr, range(0x80)) if c not in "[]{}"}


def _max_depth(text: str) -> int:
    """Deepest nesting of a valid JSON text (strings removed first, then only brackets counted)."""
    brackets = _STRING_LITERAL.sub("", text).translate(_BRACKETS)
    depth = deepest = 0
    for char in brackets:
        if char in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif char in "]}":
            depth -= 1
    return deepest


def _too_deep() -> JsonTextError:
    return JsonTextError(
        f"The maximum configured depth of {MAX_DEPTH} has been exceeded. Cannot read next JSON object."
        " LineNumber: 0 | BytePositionInLine: 0."
    )


def check(value: Any) -> None:
    """Refuse nesting beyond :data:`MAX_DEPTH` and strings with lone surrogates (iteratively)."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            if depth > MAX_DEPTH:
                raise _too_deep()
            for key, child in item.items():
                _check_string(key)
                stack.append((child, depth + 1))
        elif isinstance(item, list):
            if depth > MAX_DEPTH:
                raise _too_deep()
            stack.extend((child, depth + 1) for child in item)
        elif isinstance(item, str):
            _check_string(item)


def _check_string(text: str) -> None:
    found = _SURROGATE.search(text)
    if found:
        raise JsonTextError(
            "Cannot read invalid UTF-16 JSON text as string. Invalid surrogate value:"
            f" '0x{ord(found.group()):X}'."
        )


def dumps(value: Any) -> str:
    """Compact JSON with :class:`RawNumber` written as its text.

    The standard library's encoder when no :class:`RawNumber` is in the value (nearly always); else an
    iterative writer (no recursion limit).
    """
    try:
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    except (TypeError, ValueError, RecursionError):
        return _dumps_slow(value)


def _dumps_slow(value: Any) -> str:
    out: list[str] = []
    # A work list of values to write and literal separators to emit.
    work: list[Any] = [value]
    while work:
        item = work.pop()
        if isinstance(item, (_Literal, RawNumber)):
            out.append(item.text)
        elif isinstance(item, dict):
            parts: list[Any] = [_Literal("{")]
            for index, (key, child) in enumerate(item.items()):
                if index:
                    parts.append(_Literal(","))
                parts.append(_Literal(json.dumps(key, ensure_ascii=False) + ":"))
                parts.append(child)
            parts.append(_Literal("}"))
            work.extend(reversed(parts))
        elif isinstance(item, list):
            parts = [_Literal("[")]
            for index, child in enumerate(item):
                if index:
                    parts.append(_Literal(","))
                parts.append(child)
            parts.append(_Literal("]"))
            work.extend(reversed(parts))
        elif isinstance(item, float):
            out.append(json.dumps(item, allow_nan=False))
        else:
            out.append(json.dumps(item, ensure_ascii=False))
    return "".join(out)


class _Literal:
    __slots__ = ("text",)

    def __init__(self, text: str) -> None:
        self.text = text


def plain(value: Any) -> Any:
    """Replace :class:`RawNumber` by ``int`` / ``float`` (for callers that need Python numbers)."""
    if isinstance(value, RawNumber):
        number = value.as_int32()
        if number is not None:
            return number
        try:
            return (
                int(value.text) if _INT32.match(value.text) and len(value.text) < 4000 else float(value.text)
            )
        except ValueError:
            return float("inf")
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [plain(v) for v in value]
    return value

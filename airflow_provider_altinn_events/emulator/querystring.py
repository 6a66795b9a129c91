"""Query strings the ASP.NET way: case-insensitive keys grouped in first-seen order, and ``next`` links.

``SetNextLink`` walks ``HttpContext.Request.Query`` (a dictionary: repeated keys grouped together in
the order their key first appeared), drops ``after``, and appends ``&key=value`` with the *decoded*
values, not re-encoded (docs/contract.rst, "contract-paging").
"""

from __future__ import annotations

import re
from urllib.parse import parse_qsl, quote

#: Characters Kestrel refuses in a response header value (controls and non-ASCII).
_UNSENDABLE = re.compile(r"[^\x20-\x7e]+")
#: ``int.Parse`` with ``NumberStyles.Integer``: optional white space, optional sign, ASCII digits.
_INTEGER = re.compile(r"\A[ \t\n\v\f\r]*[+-]?[0-9]+[ \t\n\v\f\r]*\Z")


class QueryParams:
    """Decoded query parameters with ASP.NET's grouping and case-insensitive lookup."""

    def __init__(self, raw_query: str) -> None:
        self._groups: dict[str, tuple[str, list[str]]] = {}
        for key, value in parse_qsl(raw_query, keep_blank_values=True):
            folded = key.lower()
            if folded not in self._groups:
                self._groups[folded] = (key, [])
            self._groups[folded][1].append(value)

    def has(self, key: str) -> bool:
        return key.lower() in self._groups

    def first(self, key: str) -> str | None:
        group = self._groups.get(key.lower())
        return group[1][0] if group else None

    def all(self, key: str) -> list[str]:
        group = self._groups.get(key.lower())
        return list(group[1]) if group else []

    def next_link(self, base: str, path: str, last_id: str) -> str:
        """``{base}{path}?after={last_id}`` plus every other parameter as ``&key=value``."""
        parts = [f"{base}{path}?after={last_id}"]
        for key, values in self._groups.values():
            if key == "after":
                continue
            parts.extend(f"&{key}={value}" for value in values)
        return sendable_header("".join(parts))


def sendable_header(value: str) -> str:
    """Percent-encode what a header value cannot carry (controls, non-ASCII).

    Deviation (docs/contract.rst): Kestrel refuses such a ``next`` header and Altinn answers 500; the
    emulator sends the link with those characters percent-encoded (UTF-8) instead.
    """
    return _UNSENDABLE.sub(lambda m: quote(m.group(), safe=""), value)


def parse_int32(text: str) -> int | None:
    """``int.Parse`` as model binding uses it: ``None`` for anything else or outside Int32."""
    if not _INTEGER.match(text):
        return None
    value = int(text.strip(" \t\n\v\f\r"))
    return value if -(2**31) <= value < 2**31 else None


def bind_int(params: QueryParams, name: str, default: int, errors: dict[str, list[str]]) -> int:
    """Model-bind an ``int`` query parameter; a non-number adds the ASP.NET model state error."""
    raw = params.first(name)
    if raw is None:
        return default
    text = raw.strip()
    if text == "":
        errors.setdefault(name, []).append("The value '' is invalid.")
        return default
    value = parse_int32(raw)
    if value is None:
        errors.setdefault(name, []).append(f"The value '{raw}' is not valid for {name}.")
        return default
    return value


def like_to_glob(pattern: str) -> str:
    """Translate a PostgreSQL ``LIKE`` pattern (``%``, ``_``, backslash escape) to a SQLite ``GLOB``.

    GLOB is case-sensitive, like PostgreSQL's ``LIKE``; SQLite's own ``LIKE`` is not.
    """
    out: list[str] = []
    escaped = False
    for char in pattern:
        if escaped:
            out.append(_glob_literal(char))
            escaped = False
        elif char == "\\":
            escaped = True
        elif char == "%":
            out.append("*")
        elif char == "_":
            out.append("?")
        else:
            out.append(_glob_literal(char))
    if escaped:
        out.append(_glob_literal("\\"))
    return "".join(out)


def _glob_literal(char: str) -> str:
    return f"[{char}]" if char in "*?[" else char

"""``LIKE`` matching (``event_types``, ``source``, ``where ... like``) without backtracking.

The reference below is the regex the provider used before: correct, but backtracking, so a pattern with
two ``%`` cost time quadratic in the value (seconds for a 64 KB ``source`` on the triggerer's event loop).
The matcher must agree with it everywhere and not use regular expressions at all.
"""

from __future__ import annotations

import re
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from airflow_provider_altinn_events.client import where as where_module
from airflow_provider_altinn_events.client.matching import EventFilter
from airflow_provider_altinn_events.client.models import CloudEvent
from airflow_provider_altinn_events.client.where import like_match, where_matches

RES = "urn:altinn:resource:ttd-test"


def reference(pattern: str, value: str) -> bool:
    """SQL ``LIKE`` with backslash escapes, as a regex (the old implementation)."""
    parts: list[str] = []
    escaped = False
    for char in pattern:
        if escaped:
            parts.append(re.escape(char))
            escaped = False
        elif char == "\\":
            escaped = True
        elif char == "%":
            parts.append(".*")
        elif char == "_":
            parts.append(".")
        else:
            parts.append(re.escape(char))
    if escaped:
        parts.append(re.escape("\\"))
    return re.fullmatch("".join(parts), value, re.DOTALL) is not None


alphabet = st.sampled_from(["a", "b", "%", "_", "\\", ".", "\n"])


@settings(max_examples=1000, deadline=None)
@given(
    pattern=st.text(alphabet, max_size=10),
    value=st.text(st.sampled_from(["a", "b", "%", "_", "\\", "\n"]), max_size=12),
)
def test_agrees_with_the_regex_reference(pattern: str, value: str) -> None:
    assert like_match(pattern, value) is reference(pattern, value)


@pytest.mark.parametrize(
    ("pattern", "value", "expected"),
    [
        ("%a%b", "ab", True),
        ("%a%b", "ba", False),
        ("a%a", "a", False),  # the start and the end segment may not overlap
        ("a%a", "aa", True),
        ("%_%", "", False),
        ("%_%", "x", True),
        ("_%_", "x", False),
        ("a\\_c", "a_c", True),
        ("a\\_c", "abc", False),
        ("a\\\\c", "a\\c", True),
        ("trailing\\", "trailing\\", True),
        ("%%", "anything", True),
        ("x%y%z", "xyz", True),
        ("x%y%z", "xzy", False),
    ],
)
def test_edge_cases(pattern: str, value: str, expected: bool) -> None:
    assert like_match(pattern, value) is expected is reference(pattern, value)


def test_the_matcher_uses_no_regular_expressions() -> None:
    assert not hasattr(where_module, "re")


def test_a_64_kb_adversarial_source_is_matched_without_backtracking() -> None:
    # `%/%/x` against 64 KiB of "/" and no "x": the regex `.*/.*/x` tried every pair of positions (about
    # seven seconds here, measured before the fix; not timed by the test)
    value = "/" * 65536
    event = CloudEvent.from_dict({"id": "1", "source": value, "type": "t", "resource": RES})
    started = time.perf_counter()
    assert EventFilter(resource=RES, source="%/%/x").matches(event) is False
    assert EventFilter(resource=RES, source="%/%/").matches(event) is True
    assert where_matches({"source": {"like": "%/_/%/x"}}, event) is False
    assert like_match("%a%b", "a" * 65536) is False
    assert like_match("%a%b", "a" * 65535 + "b") is True
    print(f"\n64 KiB adversarial LIKE matches: {(time.perf_counter() - started) * 1000:.1f} ms for five")

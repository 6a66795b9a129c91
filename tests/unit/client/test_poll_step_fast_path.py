"""The poll step's fast path (every id in the page new and its own) decides exactly as its event-by-event walk.

``poll_step`` takes a page whose ids are all unknown to the wait and distinct in one go, with set operations,
and walks any other page event by event (``client/matching.py``, ``_fresh_page`` and ``_walk_page``). Two waits
read the same Altinn log side by side, one as shipped and one with the fast path switched off; after every
page their steps must be equal: the state (cursor, seen, held, shared ids), the events handed over, ``done``
and ``at_end``. The logs mix fresh ids with ids reused by other sources, so both paths run (checked).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from airflow_provider_altinn_events.client import matching
from airflow_provider_altinn_events.client.matching import EventFilter, PollStep, initial_state, poll_step
from airflow_provider_altinn_events.client.models import CloudEvent, EventPage

RES = "urn:altinn:resource:ttd-fast"


def ev(event_id: str, source: str, type_: str = "a.created", subject: str = "/party/1") -> CloudEvent:
    return CloudEvent.from_dict(
        {
            "specversion": "1.0",
            "id": event_id,
            "source": source,
            "type": type_,
            "resource": RES,
            "subject": subject,
        }
    )


class Log:
    """``GET /events`` as Altinn pages it: after the first event with the ``after`` id (unknown: the start)."""

    def __init__(self) -> None:
        self.events: list[CloudEvent] = []

    def page(self, after: str, size: int) -> EventPage:
        start = next((i + 1 for i, e in enumerate(self.events) if e.id == after), 0)
        events = tuple(self.events[start : start + size])
        return EventPage(events=events, after=events[-1].id if events else after)


def walk_only(state: Any, page: EventPage, flt: EventFilter, **limits: Any) -> PollStep:
    """``poll_step`` with the fast path off: every page goes through the event-by-event walk."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(matching, "_fresh_page", lambda *args: None)
        return poll_step(state, page, flt, **limits)


def same(a: PollStep, b: PollStep) -> None:
    assert a.state == b.state
    assert [(e.id, e.source) for e in a.new_events] == [(e.id, e.source) for e in b.new_events]
    assert (a.done, a.at_end) == (b.done, b.at_end)


sources = st.sampled_from(["https://s/1", "https://s/2"])
types = st.sampled_from(["a.created", "b.deleted"])
subjects = st.sampled_from(["/party/1", "/party/2"])
FILTERS = [
    EventFilter(resource=RES),
    EventFilter(resource=RES, event_types=("a.%",)),
    EventFilter(resource=RES, subject="/party/2"),
    EventFilter(resource=RES, source="https://s/2"),
    EventFilter(resource=RES, where={"subject": "/party/1"}),
]


@st.composite
def batches(draw: st.DrawFn) -> list[list[CloudEvent]]:
    """Batches of events, unique per (id, source) as at Altinn; ids are mostly fresh, some reused."""
    taken: set[tuple[str, str]] = set()
    out: list[list[CloudEvent]] = []
    fresh = 0
    for _ in range(draw(st.integers(1, 5))):
        batch = []
        for reuse, source, type_, subject in draw(
            st.lists(st.tuples(st.integers(0, 9), sources, types, subjects), max_size=12)
        ):
            if reuse < 7 or not taken:  # a new id
                fresh += 1
                event_id = f"e{fresh}"
            else:  # an id already in the log, perhaps from another source
                event_id = sorted(taken)[reuse % len(taken)][0]
            if (event_id, source) not in taken:
                taken.add((event_id, source))
                batch.append(ev(event_id, source, type_, subject))
        out.append(batch)
    return out


@settings(max_examples=300, deadline=None)
@given(
    log_batches=batches(),
    flt=st.sampled_from(FILTERS),
    start=st.sampled_from(["0", "latest"]),
    remembered=st.sampled_from([(), ("e2",), ("e1", "e4")]),
    limits=st.sampled_from([{}, {"min_events": 2}, {"max_events": 1}, {"min_events": 1, "max_events": 3}]),
    page_size=st.sampled_from([2, 3, 50]),
)
def test_the_fast_path_decides_as_the_walk(
    log_batches: list[list[CloudEvent]],
    flt: EventFilter,
    start: str,
    remembered: tuple[str, ...],
    limits: dict[str, int],
    page_size: int,
) -> None:
    log = Log()
    # ``remembered``: ids a long wait knows to be shared though their pairs left ``seen`` (it is bounded)
    fast = walk = replace(initial_state(start), ambiguous=remembered)
    for batch in log_batches:
        log.events += batch
        for _ in range(len(log.events) + 3):
            page = log.page(fast.after, min(page_size + fast.behind, 1000))
            a, b = poll_step(fast, page, flt, **limits), walk_only(walk, page, flt, **limits)
            same(a, b)
            fast, walk = a.state, b.state
            if a.done:
                fast, walk = fast.handed_over(), walk.handed_over()
            if a.at_end:
                break


def test_a_page_of_new_distinct_ids_takes_the_fast_path_and_one_with_a_reused_id_does_not(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    taken: list[bool] = []
    real = matching._fresh_page

    def spy(*args: Any) -> Any:
        result = real(*args)
        taken.append(result is not None)
        return result

    monkeypatch.setattr(matching, "_fresh_page", spy)
    flt = EventFilter(resource=RES)
    first = poll_step(initial_state("0"), EventPage((ev("1", "s/a"), ev("2", "s/a")), "2"), flt)
    assert taken == [True] and first.state.after == "2"
    # the next page reuses id "1" from another source: the walk decides (and holds the cursor before it)
    second = poll_step(first.state, EventPage((ev("3", "s/a"), ev("1", "s/b")), "1"), flt)
    assert taken == [True, False]
    assert second.state.after == "3" and "1" in second.state.ambiguous
    assert [(e.id, e.source) for e in second.new_events] == [("3", "s/a"), ("1", "s/b")]


@pytest.mark.parametrize("flt", FILTERS, ids=lambda f: ",".join(k for k, v in f.to_dict().items() if v))
def test_select_keeps_what_matches_keeps(flt: EventFilter) -> None:
    events = [
        ev(f"e{n}", source, type_, subject)
        for n, (source, type_, subject) in enumerate(
            (s, t, j)
            for s in ("https://s/1", "https://s/2")
            for t in ("a.created", "b.deleted")
            for j in ("/party/1", "/party/2")
        )
    ]
    other = CloudEvent.from_dict({"id": "x", "source": "s", "type": "a.created", "resource": RES + "-other"})
    events.append(other)
    assert flt.select(events) == [e for e in events if flt.matches(e)]
    assert other not in flt.select(events)

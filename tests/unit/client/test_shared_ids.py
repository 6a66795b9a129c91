"""Events that share an ``id``: Altinn keys events by ``(id, source)`` and ``after=<id>`` resumes after the
*first* event with that id (docs/contract.rst, "contract-paging": ``events.getevents_v2`` takes the smallest sequence number of an
event with that id). The poll step must deliver every event once and never fetch without a pause on a page
that brings nothing new.

:class:`AltinnLog` is a model of that paging (no HTTP); the emulator tests
(``tests/unit/sensors/test_shared_ids_emulator.py``) check the same over real HTTP.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from airflow_provider_altinn_events.client import matching
from airflow_provider_altinn_events.client.matching import (
    DEFAULT_PAGE_SIZE,
    SEEK_PAGE_SIZE,
    EventFilter,
    PollState,
    initial_state,
    poll_step,
)
from airflow_provider_altinn_events.client.models import CloudEvent, EventPage

RES = "urn:altinn:resource:ttd-test"


def ev(event_id: str, source: str = "https://a/1", type_: str = "a.created") -> CloudEvent:
    return CloudEvent.from_dict(
        {"specversion": "1.0", "id": event_id, "source": source, "type": type_, "resource": RES}
    )


class AltinnLog:
    """The service's event log as ``GET /events`` pages it: ``after`` is resolved to the first event with
    that id (an unknown id is "from the start"), then the next ``size`` events in sequence order."""

    def __init__(self, events: list[CloudEvent] | None = None) -> None:
        self.events: list[CloudEvent] = list(events or [])
        self.requests = 0

    def page(self, after: str, size: int) -> EventPage:
        self.requests += 1
        start = next((i + 1 for i, e in enumerate(self.events) if e.id == after), 0)
        events = tuple(self.events[start : start + size])
        return EventPage(events=events, after=events[-1].id if events else after)


def wait_until_caught_up(
    log: AltinnLog, state: PollState, flt: EventFilter, *, max_requests: int = 100, **limits: Any
) -> tuple[PollState, list[CloudEvent], int]:
    """Read pages as the sensor and the triggers do (the next page at once unless at_end); returns the state,
    what was kept and how many requests it took to reach at_end (the loops sleep poll_interval there)."""
    kept: list[CloudEvent] = []
    for requests in range(1, max_requests + 1):
        step = poll_step(state, log.page(state.after, state.page_size), flt, **limits)
        state = step.state
        kept += step.new_events
        if step.done:
            state = state.handed_over()
        if step.at_end:
            return state, kept, requests
    raise AssertionError(
        f"no at_end after {max_requests} requests: the loop would spin; cursor {state.after}"
    )


def pairs(events: list[CloudEvent]) -> list[tuple[str, str]]:
    return [(e.id, e.source) for e in events]


FLT = EventFilter(resource=RES)


def test_two_sources_same_id_both_delivered_and_the_end_is_caught_up() -> None:
    # the page ends on the second "x": after=x would resume after the first "x" and serve the second again
    log = AltinnLog([ev("p"), ev("x", "https://a/1"), ev("q"), ev("x", "https://b/2")])
    state, kept, requests = wait_until_caught_up(log, initial_state("0"), FLT)
    assert pairs(kept) == pairs(log.events)
    assert state.after == "q"  # the last event whose id is its own; the second "x" is held behind it
    assert state.behind == 1 and "x" in state.ambiguous
    assert requests == 2  # the page, then a page that brings nothing new: caught up, no spinning
    # every further poll (one per poll_interval) is one request and stays caught up
    for _ in range(3):
        state, kept, requests = wait_until_caught_up(log, state, FLT)
        assert kept == [] and requests == 1
    # a new event is found behind the held one, and the cursor moves on
    log.events.append(ev("r"))
    state, kept, _ = wait_until_caught_up(log, state, FLT)
    assert pairs(kept) == [("r", "https://a/1")] and state.after == "r" and state.behind == 0


def test_cursor_on_a_later_occurrence_from_an_earlier_wait_drops_what_is_served_again() -> None:
    # A wait whose cursor stands on the second "x" (say it was pushed by an older provider version, or the
    # first "x" was not known when the cursor moved): the service serves from after the first "x".
    log = AltinnLog([ev("x", "https://a/1"), ev("p"), ev("x", "https://b/2"), ev("n")])
    state = PollState(after="x", after_source="https://b/2")
    state, kept, requests = wait_until_caught_up(log, state, FLT)
    assert pairs(kept) == [("n", "https://a/1")]  # "p" and the second "x" were handled before the cursor
    assert state.after == "n" and "x" in state.ambiguous and requests == 2


@pytest.mark.parametrize("size_shared", [1, 5, DEFAULT_PAGE_SIZE - 1, DEFAULT_PAGE_SIZE + 40])
def test_a_run_of_later_occurrences_is_read_past_with_a_larger_page(size_shared: int) -> None:
    # source b re-uses source a's ids: every b event is a later occurrence of an id already seen
    first = [ev(f"id{i}", "https://a/1") for i in range(size_shared)]
    again = [ev(f"id{i}", "https://b/2") for i in range(size_shared)]
    log = AltinnLog([*first, ev("mid"), *again])
    state, kept, _ = wait_until_caught_up(log, initial_state("0"), FLT)
    assert pairs(kept) == pairs(log.events)
    assert state.after == "mid" and state.behind == size_shared
    assert state.page_size == min(SEEK_PAGE_SIZE, DEFAULT_PAGE_SIZE + size_shared)
    log.events.append(ev("new"))
    state, kept, requests = wait_until_caught_up(log, state, FLT)
    assert pairs(kept) == [("new", "https://a/1")] and state.after == "new" and requests == 2


def test_latest_seek_stops_on_a_page_that_does_not_move() -> None:
    # the retained history ends on a shared id: the seek must end (not re-read the same page forever) and
    # must not hand over the events before "latest" afterwards
    log = AltinnLog([ev("x", "https://a/1"), ev("p"), ev("x", "https://b/2")])
    state, kept, requests = wait_until_caught_up(log, initial_state("latest"), FLT)
    assert kept == [] and not state.seeking and state.after == "p" and requests == 2
    state, kept, requests = wait_until_caught_up(log, state, FLT)
    assert kept == [] and requests == 1
    log.events.append(ev("fresh"))
    state, kept, _ = wait_until_caught_up(log, state, FLT)
    assert pairs(kept) == [("fresh", "https://a/1")]


def test_max_events_with_shared_ids_hands_over_each_event_once() -> None:
    log = AltinnLog([ev("x", "https://a/1"), ev("x", "https://b/2"), ev("y", "https://b/2"), ev("z")])
    state, delivered = initial_state("0"), []
    for _ in range(10):
        step = poll_step(state, log.page(state.after, state.page_size), FLT, min_events=1, max_events=1)
        delivered += step.new_events
        state = step.state.handed_over()
        if step.at_end and not step.new_events:
            break
    assert pairs(delivered) == pairs(log.events)


# -- property: every event once, bounded requests, whatever the ids ------------------------------------------

ids = st.sampled_from(["a", "b", "c", "d", "e", "f"])  # few ids: many collisions
sources = st.sampled_from(["https://s/1", "https://s/2", "https://s/3"])


@st.composite
def logs(draw: st.DrawFn) -> list[list[CloudEvent]]:
    """Batches of events (each batch appears before one poll), unique per (id, source) as at Altinn."""
    taken: set[tuple[str, str]] = set()
    batches: list[list[CloudEvent]] = []
    for _ in range(draw(st.integers(1, 6))):
        batch = []
        for event_id, source in draw(st.lists(st.tuples(ids, sources), max_size=8)):
            if (event_id, source) not in taken:
                taken.add((event_id, source))
                batch.append(ev(event_id, source))
        batches.append(batch)
    return batches


@settings(max_examples=400, deadline=None)
@given(
    batches=logs(),
    types=st.sampled_from([(), ("a.created",), ("none",)]),
    page_size=st.sampled_from([1, 2, 3, DEFAULT_PAGE_SIZE]),
)
def test_every_event_once_and_no_spinning(
    batches: list[list[CloudEvent]], types: tuple[str, ...], page_size: int
) -> None:
    with pytest.MonkeyPatch.context() as patch:  # small pages: page ends fall on shared ids often
        patch.setattr(matching, "DEFAULT_PAGE_SIZE", page_size)
        _every_event_once(batches, types)


def _every_event_once(batches: list[list[CloudEvent]], types: tuple[str, ...]) -> None:
    flt = EventFilter(resource=RES, event_types=types)
    log = AltinnLog()
    state = initial_state("0")
    kept: list[CloudEvent] = []
    for batch in batches:
        log.events += batch
        # events in a poll: at most one request per page of new events plus one per held run, then at_end
        state, new, requests = wait_until_caught_up(log, state, flt, max_requests=len(log.events) + 3)
        kept += new
    expected = [e for e in log.events if flt.matches(e)]
    assert pairs(kept) == pairs(expected)
    # and a poll after the last batch is one request that brings nothing (the loops sleep between them)
    _, new, requests = wait_until_caught_up(log, state, flt)
    assert new == [] and requests == 1

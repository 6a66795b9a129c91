"""The pure poll step and the event filter, table-driven (no HTTP, no Airflow)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest

from airflow_provider_altinn_events.client.matching import (
    DEFAULT_PAGE_SIZE,
    SEEK_PAGE_SIZE,
    SEEN_IDS_LIMIT,
    EventFilter,
    PollState,
    initial_state,
    like_match,
    poll_step,
)
from airflow_provider_altinn_events.client.models import CloudEvent, EventPage
from airflow_provider_altinn_events.exceptions import AltinnConfigError

RES = "urn:altinn:resource:ttd-test"


def ev(event_id: str, type_: str = "a.created", **extra: Any) -> CloudEvent:
    raw = {"specversion": "1.0", "id": event_id, "source": "https://src/x", "type": type_, "resource": RES}
    raw.update(extra)
    return CloudEvent.from_dict(raw)


def page(after: str, *events: CloudEvent) -> EventPage:
    return EventPage(events=tuple(events), after=events[-1].id if events else after)


# ---------------------------------------------------------------------------------------------------------
# poll_step over a sequence of pages
# ---------------------------------------------------------------------------------------------------------


@dataclass
class Case:
    """Feed ``pages`` (lists of events) one by one until a step is done; then check the outcome."""

    pages: list[list[CloudEvent]]
    expect_ids: list[str]
    expect_after: str
    expect_done: bool = True
    after: str = "0"
    min_events: int = 1
    max_events: int | None = None
    filter: dict[str, Any] = field(default_factory=dict)
    expect_steps: int | None = None


CASES: dict[str, Case] = {
    "empty page: not done, cursor stays": Case(
        pages=[[]], expect_ids=[], expect_after="0", expect_done=False
    ),
    "empty page keeps an id cursor": Case(
        pages=[[]], after="e5", expect_ids=[], expect_after="e5", expect_done=False
    ),
    "one match": Case(pages=[[ev("1")]], expect_ids=["1"], expect_after="1"),
    "all matches of the page are returned when max_events is None": Case(
        pages=[[ev("1"), ev("2"), ev("3")]], expect_ids=["1", "2", "3"], expect_after="3"
    ),
    "short pages are not the end": Case(
        pages=[[ev("1", "other")], [ev("2", "other")], [ev("3")]],
        filter={"event_types": ["a.created"]},
        expect_ids=["3"],
        expect_after="3",
        expect_steps=3,
    ),
    "non-matching events move the cursor": Case(
        pages=[[ev("1", "other"), ev("2", "other")], []],
        filter={"event_types": ["a.created"]},
        expect_ids=[],
        expect_after="2",
        expect_done=False,
    ),
    "min_events gathers across pages": Case(
        pages=[[ev("1")], [ev("2", "x")], [ev("3")]],
        filter={"event_types": ["a.%"]},
        min_events=2,
        expect_ids=["1", "3"],
        expect_after="3",
    ),
    "min_events not reached at the end": Case(
        pages=[[ev("1")], []], min_events=2, expect_ids=["1"], expect_after="1", expect_done=False
    ),
    "max_events stops mid-page before the next match": Case(
        pages=[[ev("1"), ev("2", "x"), ev("3"), ev("4")]],
        filter={"event_types": ["a.created"]},
        max_events=1,
        expect_ids=["1"],
        expect_after="2",
    ),
    "max_events equal to the page": Case(
        pages=[[ev("1"), ev("2")]], max_events=2, expect_ids=["1", "2"], expect_after="2"
    ),
    "max_events consumes trailing non-matches": Case(
        pages=[[ev("1"), ev("2", "x"), ev("3", "x")]],
        filter={"event_types": ["a.created"]},
        max_events=1,
        expect_ids=["1"],
        expect_after="3",
    ),
    "duplicate ids within a page are dropped": Case(
        pages=[[ev("1"), ev("1"), ev("2")]], expect_ids=["1", "2"], expect_after="2"
    ),
    "duplicates across pages are dropped": Case(
        pages=[[ev("1", "x")], [ev("1"), ev("2", "x")], [ev("3")]],
        filter={"event_types": ["a.created"]},
        expect_ids=["3"],
        expect_after="3",
    ),
    "an event sharing the starting cursor's id is another event (Altinn keys by id and source)": Case(
        pages=[[ev("e5", source="https://src/other"), ev("e6")]],
        after="e5",
        expect_ids=["e5", "e6"],
        expect_after="e6",
    ),
    "type wildcard %": Case(
        pages=[[ev("1", "app.instance.created"), ev("2", "app.other")]],
        filter={"event_types": ["app.instance.%"]},
        expect_ids=["1"],
        expect_after="2",
    ),
    "type wildcard _": Case(
        pages=[[ev("1", "v1.done"), ev("2", "v22.done")]],
        filter={"event_types": ["v_.done"]},
        expect_ids=["1"],
        expect_after="2",
    ),
    "several types": Case(
        pages=[[ev("1", "a"), ev("2", "b"), ev("3", "c")]],
        filter={"event_types": ["a", "c"]},
        expect_ids=["1", "3"],
        expect_after="3",
    ),
    "source pattern": Case(
        pages=[[ev("1", source="https://one/1"), ev("2", source="https://two/2")]],
        filter={"source": "https://two/%"},
        expect_ids=["2"],
        expect_after="2",
    ),
    "subject filter": Case(
        pages=[[ev("1", subject="/party/1"), ev("2", subject="/party/2")]],
        filter={"subject": "/party/2"},
        expect_ids=["2"],
        expect_after="2",
    ),
    "alternative subject filter": Case(
        pages=[[ev("1", alternativesubject="/person/1"), ev("2", alternativesubject="/person/2")]],
        filter={"alternative_subject": "/person/1"},
        expect_ids=["1"],
        expect_after="2",
    ),
    "where on data": Case(
        pages=[[ev("1", data={"status": "open"}), ev("2", data={"status": "completed"})]],
        filter={"where": {"data.status": "completed"}},
        expect_ids=["2"],
        expect_after="2",
    ),
    "events of another resource never match": Case(
        pages=[[ev("1", resource="urn:altinn:resource:other"), ev("2")]], expect_ids=["2"], expect_after="2"
    ),
    "latest: seeks to the end without matching": Case(
        pages=[[ev("1"), ev("2")], [ev("3")], []],
        after="latest",
        expect_ids=[],
        expect_after="3",
        expect_done=False,
        expect_steps=3,
    ),
    "latest: matches what comes after the end": Case(
        pages=[[ev("1")], [], [ev("2")]], after="latest", expect_ids=["2"], expect_after="2", expect_steps=3
    ),
    "latest on an empty resource": Case(
        pages=[[], [ev("1")]], after="latest", expect_ids=["1"], expect_after="1", expect_steps=2
    ),
}


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_poll_step_sequence(case: Case) -> None:
    flt = EventFilter(resource=RES, **case.filter)
    state = initial_state(case.after)
    steps = 0
    step = None
    for events in case.pages:
        step = poll_step(
            state, page(state.after, *events), flt, min_events=case.min_events, max_events=case.max_events
        )
        steps += 1
        state = step.state
        if step.done:
            break
    assert step is not None
    assert step.done is case.expect_done
    assert [e.id for e in state.matched] == case.expect_ids
    assert state.after == case.expect_after
    if case.expect_steps is not None:
        assert steps == case.expect_steps
    assert state.pages == steps


def test_step_reports_new_events_and_at_end() -> None:
    flt = EventFilter(resource=RES)
    first = poll_step(initial_state("0"), page("0", ev("1")), flt, min_events=2)
    assert [e.id for e in first.new_events] == ["1"] and not first.done and not first.at_end
    second = poll_step(first.state, page("1"), flt, min_events=2)
    assert second.new_events == () and second.at_end and not second.done
    third = poll_step(second.state, page("1", ev("2")), flt, min_events=2)
    assert [e.id for e in third.new_events] == ["2"] and third.done
    assert [e.id for e in third.state.matched] == ["1", "2"]


def test_handed_over_clears_matches_but_keeps_cursor_and_seen() -> None:
    flt = EventFilter(resource=RES)
    step = poll_step(initial_state("0"), page("0", ev("1"), ev("2")), flt)
    state = step.state.handed_over()
    assert state.matched == () and state.after == "2"
    assert state.seen == (("1", "https://src/x"), ("2", "https://src/x"))
    again = poll_step(state, page("2", ev("2"), ev("3")), flt)
    assert [e.id for e in again.state.matched] == ["3"]


def test_empty_page_with_enough_gathered_is_done() -> None:
    # the watcher asks with min_events = max_events_per_trigger_event and hands over at the end
    flt = EventFilter(resource=RES)
    step = poll_step(PollState(after="1", matched=(ev("1"),)), page("1"), flt, min_events=1)
    assert step.done and step.at_end


def test_seen_ids_are_bounded() -> None:
    flt = EventFilter(resource=RES, event_types=("never",))
    events = [ev(str(i)) for i in range(SEEN_IDS_LIMIT + 10)]
    step = poll_step(initial_state("0"), page("0", *events), flt)
    assert len(step.state.seen) == SEEN_IDS_LIMIT
    assert step.state.seen[-1] == (events[-1].id, events[-1].source)
    assert step.state.events_read == len(events)


def test_page_size_while_seeking() -> None:
    assert initial_state("latest").page_size == SEEK_PAGE_SIZE
    assert initial_state("0").page_size == DEFAULT_PAGE_SIZE
    assert initial_state("latest").seeking and initial_state("latest").after == "0"


@pytest.mark.parametrize("after", ["", "   ", None, 5, "None", "null", " NULL "])
def test_initial_state_rejects_bad_after(after: Any) -> None:
    with pytest.raises(AltinnConfigError) as info:
        initial_state(after)
    assert info.value.field == "after"


@pytest.mark.parametrize(("min_events", "max_events"), [(0, None), (2, 1)])
def test_poll_step_rejects_bad_limits(min_events: int, max_events: int | None) -> None:
    with pytest.raises(AltinnConfigError):
        poll_step(
            initial_state("0"),
            page("0"),
            EventFilter(resource=RES),
            min_events=min_events,
            max_events=max_events,
        )


# ---------------------------------------------------------------------------------------------------------
# like_match and where
# ---------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("pattern", "value", "expected"),
    [
        ("a.b", "a.b", True),
        ("a.b", "a.bc", False),
        ("a.b", "aXb", False),  # '.' is literal, unlike a regex
        ("a.%", "a.", True),
        ("a.%", "a.b.c", True),
        ("%.created", "app.instance.created", True),
        ("a_c", "abc", True),
        ("a_c", "abbc", False),
        ("100\\%", "100%", True),
        ("100\\%", "1000", False),
        ("A.B", "a.b", False),  # case-sensitive like the service
        ("%", "", True),
    ],
)
def test_like_match(pattern: str, value: str, expected: bool) -> None:
    assert like_match(pattern, value) is expected


EVENT = ev(
    "1",
    subject="/party/1337",
    data={"status": "completed", "amount": 120, "tags": ["x", "y"], "items": [{"id": "i1"}], "note": None},
    time="2024-01-02T03:04:05Z",
)


@pytest.mark.parametrize(
    ("where", "expected"),
    [
        ({"data.status": "completed"}, True),
        ({"data.status": "open"}, False),
        ({"data.status": {"eq": "completed"}}, True),
        ({"data.status": {"ne": "open"}}, True),
        ({"data.status": {"in": ["open", "completed"]}}, True),
        ({"data.status": {"not_in": ["completed"]}}, False),
        ({"data.status": {"prefix": "comp"}}, True),
        ({"data.status": {"suffix": "ted"}}, True),
        ({"data.status": {"like": "c%d"}}, True),
        ({"data.status": {"contains": "plete"}}, True),
        ({"data.tags": {"contains": "y"}}, True),
        ({"data.tags": {"contains": "z"}}, False),
        ({"data.amount": {"gt": 100}}, True),
        ({"data.amount": {"gte": 120, "lt": 121}}, True),
        ({"data.amount": {"lte": 119}}, False),
        ({"data.amount": {"gt": "100"}}, False),  # string vs number: no match, no TypeError
        ({"time": {"gte": "2024-01-01"}}, True),
        ({"data.items.0.id": "i1"}, True),
        ({"data.items.5.id": "i1"}, False),
        ({"data.missing": {"exists": False}}, True),
        ({"data.missing": {"exists": True}}, False),
        ({"data.note": {"exists": True}}, True),  # present but null
        ({"data.note": None}, True),
        ({"data.missing": None}, False),  # missing is not null
        ({"data.missing": {"ne": "x"}}, True),
        ({"data.missing": {"prefix": "x"}}, False),
        ({"data.status.deeper": "x"}, False),
        ({"subject": {"prefix": "/party/"}, "data.status": "completed"}, True),
        ({"subject": {"prefix": "/party/"}, "data.status": "open"}, False),
        ({"data": {"eq": {"status": "x"}}}, False),
    ],
)
def test_where(where: dict[str, Any], expected: bool) -> None:
    assert EventFilter(resource=RES, where=where).matches(EVENT) is expected


@pytest.mark.parametrize(
    "where",
    [
        {"data.status": {"startswith": "x"}},  # unknown operator
        {"data.status": {}},
        {"": "x"},
        {"data..status": "x"},
        {"data.status": {"in": "abc"}},
        {"data.status": {"prefix": 1}},
        {"data.status": {"exists": "yes"}},
        {"data.amount": {"gt": [1]}},
        {"data.amount": {"gt": True}},
        ["not", "a", "mapping"],
    ],
)
def test_where_is_validated_up_front(where: Any) -> None:
    with pytest.raises(AltinnConfigError) as info:
        EventFilter(resource=RES, where=where)
    assert info.value.field == "where"


# ---------------------------------------------------------------------------------------------------------
# EventFilter construction and JSON round trip
# ---------------------------------------------------------------------------------------------------------


def test_filter_round_trip_is_plain_json() -> None:
    import json

    flt = EventFilter(
        resource=RES,
        event_types=["a.%", "b"],  # type: ignore[arg-type]  # lists are accepted and frozen to tuples
        subject="/party/1",
        source="https://x/%",
        where={"data.status": {"in": ("a", "b")}, "data.n": 1},
    )
    raw = flt.to_dict()
    assert json.loads(json.dumps(raw)) == raw
    assert raw["event_types"] == ["a.%", "b"]
    assert raw["where"] == {"data.status": {"in": ["a", "b"]}, "data.n": 1}
    assert EventFilter.from_dict(raw) == flt
    assert EventFilter.from_dict(raw).to_dict() == raw


def test_filter_accepts_a_single_type_string() -> None:
    assert EventFilter(resource=RES, event_types="a.b").event_types == ("a.b",)  # type: ignore[arg-type]


def test_server_query() -> None:
    assert EventFilter(resource=RES).server_query() == {
        "resource": RES,
        "types": None,
        "subject": None,
        "alternative_subject": None,
    }
    q = EventFilter(resource=RES, event_types=("a",), alternative_subject="/person/1").server_query()
    assert q["types"] == ["a"] and q["alternative_subject"] == "/person/1" and q["subject"] is None


@pytest.mark.parametrize(
    ("kwargs", "bad_field"),
    [
        ({"resource": "urn:other:x"}, "resource"),
        ({"resource": ""}, "resource"),
        ({"resource": RES, "subject": "/a", "alternative_subject": "/b"}, "alternative_subject"),
        ({"resource": RES, "event_types": ["ok", ""]}, "event_types"),
        ({"resource": RES, "event_types": 42}, "event_types"),
        ({"resource": RES, "event_types": {"a": 1}}, "event_types"),
    ],
)
def test_filter_rejects_bad_arguments(kwargs: dict[str, Any], bad_field: str) -> None:
    with pytest.raises(AltinnConfigError) as info:
        EventFilter(**kwargs)
    assert info.value.field == bad_field


def test_from_dict_rejects_unknown_keys() -> None:
    with pytest.raises(AltinnConfigError, match="unknown event filter keys"):
        EventFilter.from_dict({"resource": RES, "typo": 1})


def test_matches_plain_dicts_too() -> None:
    assert EventFilter(resource=RES, event_types=("a.created",)).matches(ev("1").to_dict())
    assert not EventFilter(resource=RES, event_types=("a.created",)).matches({"id": "1"})


@pytest.mark.parametrize("event_types", [42, 4.2, {"a.created": True}, b"a.created"])
def test_from_arguments_refuses_event_types_that_are_not_strings_or_lists(event_types: Any) -> None:
    with pytest.raises(AltinnConfigError, match="a string or a list of non-empty strings") as info:
        EventFilter.from_arguments(resource=RES, event_types=event_types)
    assert info.value.field == "event_types" and repr(event_types) in str(info.value)


def test_event_types_as_a_set_get_a_stable_order() -> None:
    assert EventFilter.from_arguments(resource=RES, event_types={"b", "a"}).event_types == ("a", "b")


def test_an_empty_page_keeps_every_other_field_of_the_state() -> None:
    """The empty-page path builds the next state field by field (the hot path of a waiting trigger); a field
    added to PollState later must be carried over there too, or this fails."""
    import dataclasses

    state = PollState(
        after="7",
        seeking=True,
        matched=(ev("6"),),
        seen=(("6", "https://src/x"), ("7", "https://src/x")),
        pages=3,
        events_read=9,
        after_source="https://src/x",
        behind=1,
        ambiguous=("5",),
    )
    assert all(getattr(state, f.name) != f.default for f in dataclasses.fields(PollState))
    step = poll_step(state, page("7"), EventFilter(resource=RES), min_events=5)
    assert step.state == dataclasses.replace(state, seeking=False, pages=4, events_read=9)
    assert step.at_end and not step.done

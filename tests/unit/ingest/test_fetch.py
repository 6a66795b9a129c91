from __future__ import annotations

import threading
import time
from typing import Any

import pytest

from airflow_provider_altinn_events._ingest.fetch import FetchRange, PagePrefetcher
from airflow_provider_altinn_events._ingest.state import CursorContext, Filters
from airflow_provider_altinn_events.client.protocol import UndecodedEventPage
from airflow_provider_altinn_events.exceptions import AltinnServerError

from .fakes import RESOURCE, FakeAltinn, make_events


def _prefetcher(
    source: FakeAltinn, fetch_range: FetchRange, page_size: int = 10, **kw: Any
) -> PagePrefetcher:
    return PagePrefetcher(
        source, resource=RESOURCE, filters=Filters(), fetch_range=fetch_range, page_size=page_size, **kw
    )


def _ids(pages: Any) -> list[list[str]]:
    return [[e.id for e in page.events] for page in pages]


def test_pages_until_the_first_empty_page() -> None:
    source = FakeAltinn(make_events(25))
    pages = list(_prefetcher(source, FetchRange(after="0")))
    assert [len(p.events) for p in pages] == [10, 10, 5]
    assert [p.after for p in pages] == ["e0000009", "e0000019", "e0000024"]
    assert [c["after"] for c in source.calls] == ["0", "e0000009", "e0000019", "e0000024"]


def test_limit_asks_for_no_more_than_needed() -> None:
    source = FakeAltinn(make_events(25))
    pages = list(_prefetcher(source, FetchRange(after="e0000002", limit=12)))
    assert _ids(pages) == [[f"e{n:07d}" for n in range(3, 13)], ["e0000013", "e0000014"]]
    assert [c["size"] for c in source.calls] == [10, 2]


def test_stop_at_ends_after_that_event() -> None:
    source = FakeAltinn(make_events(25))
    pages = list(_prefetcher(source, FetchRange(after="0", limit=100, stop_at="e0000013")))
    assert pages[-1].after == "e0000013" and sum(len(p.events) for p in pages) == 14
    assert len(source.calls) == 2


def test_filters_are_sent() -> None:
    source = FakeAltinn(make_events(5))
    prefetcher = PagePrefetcher(
        source,
        resource=RESOURCE,
        filters=Filters(("a.b",), "/party/1"),
        fetch_range=FetchRange("0"),
        page_size=3,
    )
    assert list(prefetcher) == []
    assert source.calls == [
        {"resource": RESOURCE, "after": "0", "types": ["a.b"], "subject": "/party/1", "size": 3}
    ]


def test_errors_reach_the_consumer() -> None:
    source = FakeAltinn(make_events(30))

    def fail(call: dict[str, Any]) -> None:
        if call["after"] != "0":
            raise AltinnServerError("boom", status_code=503, method="GET", url="http://x/events")

    source.before_call = fail
    pages = []
    with pytest.raises(AltinnServerError):
        for page in _prefetcher(source, FetchRange("0")):
            pages.append(page)
    assert len(pages) == 1


@pytest.mark.parametrize("overlap", [True, False])
def test_events_that_share_an_id_are_each_fetched_once_and_the_end_is_found(overlap: bool) -> None:
    # before: IngestStateError "paging by it would loop forever", on every run
    events = make_events(6)
    events[5]["id"] = events[1]["id"]  # two events share an id: after=<it> goes back to the first one
    source = FakeAltinn(events)
    prefetcher = _prefetcher(source, FetchRange("0"), page_size=3, overlap=overlap)
    pages = list(prefetcher)
    assert [(e.id, e.source) for p in pages for e in p.events] == [(e["id"], e["source"]) for e in events]
    assert pages[-1].after == events[4]["id"]  # the cursor stays on an id of its own
    assert pages[-1].context.held == ((events[5]["id"], events[5]["source"]),)
    walk = [("0", 3), (events[2]["id"], 3), (events[4]["id"], 4)]  # 4: room for the held event and 3 new
    calls = [(c["after"], c["size"]) for c in source.calls]
    if overlap:  # the guess after page 2's last (shared) id, and maybe one guessed after it, were dropped
        assert prefetcher.missed == 1
        assert calls[:3] == [*walk[:2], (events[5]["id"], 3)] and calls[-1] == walk[-1]
        assert len(calls) <= len(walk) + 2
    else:
        assert calls == walk and prefetcher.missed == 0


def test_held_events_are_not_fetched_again() -> None:
    events = make_events(6)
    events[5]["id"] = events[1]["id"]
    source = FakeAltinn(events)
    held = CursorContext(held=((events[5]["id"], events[5]["source"]),))
    pages = list(_prefetcher(source, FetchRange(events[4]["id"], context=held), page_size=3))
    assert pages == [] and [c["size"] for c in source.calls] == [4]  # room for the held one and 3 new
    source.add(make_events(1, start=6))
    pages = list(_prefetcher(source, FetchRange(events[4]["id"], context=held), page_size=3))
    assert [e.id for p in pages for e in p.events] == ["e0000006"]


def test_leaving_early_stops_the_thread_and_keeps_memory_bounded() -> None:
    source = FakeAltinn(make_events(1000))
    prefetcher = _prefetcher(source, FetchRange("0"), page_size=10)
    iterator = iter(prefetcher)
    next(iterator)
    time.sleep(0.2)
    assert len(source.calls) <= 3  # one handed out, one waiting for the consumer, one waiting to be handed
    iterator.close()  # type: ignore[attr-defined]
    assert not any(t.name == "altinn-ingest-fetch" for t in threading.enumerate())


def test_closing_does_not_wait_for_a_stuck_request_forever() -> None:
    source = FakeAltinn(make_events(100))
    release = threading.Event()

    def stuck(call: dict[str, Any]) -> None:
        if call["after"] != "0":
            release.wait(10)

    source.before_call = stuck
    prefetcher = _prefetcher(source, FetchRange("0"))
    iterator = iter(prefetcher)
    next(iterator)
    started = time.monotonic()
    prefetcher.close(wait_seconds=0.3)
    assert time.monotonic() - started < 2
    release.set()


@pytest.mark.parametrize("overlap", [True, False])
def test_pages_are_decoded_on_the_consumers_thread_after_the_next_request_is_out(
    monkeypatch: pytest.MonkeyPatch, overlap: bool
) -> None:
    """The fetch thread hands a page over undecoded and sends the next request at once; the consumer decodes
    (issue 17: decoding on the fetch thread put its cost between two requests)."""
    source = FakeAltinn(make_events(30))
    arrived: dict[str, threading.Event] = {}

    def arrive(call: dict[str, Any]) -> None:
        arrived.setdefault(call["after"], threading.Event()).set()

    source.before_call = arrive
    decoded: list[tuple[str, bool]] = []
    real = UndecodedEventPage.decode

    def decode(page: UndecodedEventPage) -> Any:
        result = real(page)
        if result.events:  # was the request after this page's last id out before the page was decoded?
            out = arrived.setdefault(result.after, threading.Event()).wait(2 if overlap else 0)
            decoded.append((threading.current_thread().name, out))
        return result

    monkeypatch.setattr(UndecodedEventPage, "decode", decode)
    pages = list(_prefetcher(source, FetchRange("0"), overlap=overlap))
    assert [len(p.events) for p in pages] == [10, 10, 10]
    consumer = threading.current_thread().name
    assert decoded == [(consumer, overlap)] * 3


@pytest.mark.parametrize(
    ("body", "outline"),
    [
        (b'[{"id":"a","source":"s","type":"t"},{"id":"b","source":"s","type":"t"}]', (2, "b")),
        (b"[]", None),
        (b'{"id":"a"}', None),  # not an array: decode() says why
        (b'[{"id":"a"},{"source":"s"}]', None),  # the last item has no id
        (b'[{"id":"a"},{"id":7}]', None),  # not a string
        (b"[{", None),  # not JSON
    ],
)
def test_the_outline_is_the_count_and_last_id_or_nothing(body: bytes, outline: Any) -> None:
    assert UndecodedEventPage(body, "0", 10).outline() == outline


@pytest.mark.parametrize("honest", [True, False])
def test_the_next_header_is_only_a_hint_for_the_guess(honest: bool) -> None:
    """The request thread guesses the next request from Altinn's ``next`` header when it can (no scan of the
    body); a header that names another id (Altinn does not re-encode it) costs one dropped guess, nothing else."""
    source = FakeAltinn(make_events(30))
    source.next_after = (lambda page: page.after) if honest else (lambda page: "e0000003")
    prefetcher = _prefetcher(source, FetchRange("0"))
    pages = list(prefetcher)
    assert [e.id for p in pages for e in p.events] == [f"e{n:07d}" for n in range(30)]
    walk = ["0", "e0000009", "e0000019", "e0000029"]
    calls = [c["after"] for c in source.calls]
    if honest:
        assert calls == walk and prefetcher.missed == 0
    else:  # each wrong guess (after e0000003) is sent, dropped unread, and the right request follows
        assert [c for c in calls if c != "e0000003"] == walk
        assert prefetcher.missed >= 1


def test_next_after_reads_the_header_as_altinn_writes_it() -> None:
    page = UndecodedEventPage(
        b"[]", "0", 10, "https://x/events/api/v1/events?after=abc-1&resource=urn:a:b&size=10"
    )
    assert page.next_after() == "abc-1"
    assert UndecodedEventPage(b"[]", "0", 10, None).next_after() is None
    assert UndecodedEventPage(b"[]", "0", 10, "https://x/events?resource=r").next_after() is None

"""What to wait for, and the one poll step that the sensor and both triggers share.

``AltinnEventsSensor.poke()`` (sync, on a worker), ``AltinnEventsSensorTrigger.run()`` and
``AltinnEventsWatcherTrigger.run()`` (async, in the triggerer) all fetch a page of ``GET /events`` and then
hand it to :func:`poll_step`. Keeping the decision in one pure function means poke mode and deferrable mode
cannot diverge, and the decision is tested table-driven without any HTTP at all.

Paging rules it follows (docs/contract.rst, "contract-paging"):

* ``after`` is an event id; events come in the service's own order, after the event with that id.
* An empty page is the current end; ask again later with the same ``after``. A *short* page is not the end:
  the service drops events the consumer may not see after applying ``size``, so pages can be short anywhere.
* ``after="latest"`` means "only events that appear from now on": the first pages are read to the end once,
  only to move the cursor, without matching anything. The service applies its own filters (resource, types,
  subject) while we seek, so this costs one request per 1000 retained events that pass them.
* Altinn keys events by ``(id, source)``, and ``after=<id>`` resumes after the *first* event with that id.
  An event already handled in the same wait (same id *and* source) is dropped (:data:`SEEN_IDS_LIMIT`); the
  cursor is never an id known to be shared; a page that brings nothing new and does not move the cursor is
  the current end (see :func:`poll_step`).

The declarative ``where`` conditions an :class:`EventFilter` may carry are checked and applied by
:mod:`.where`. Nothing here imports Airflow or does I/O.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Mapping, Sequence
from dataclasses import MISSING, Field, dataclass, field, fields, replace
from typing import Any

from airflow_provider_altinn_events.client._constants import (
    DEFAULT_PAGE_SIZE,
    RESOURCE_PREFIX,
    SEEK_PAGE_SIZE,
)
from airflow_provider_altinn_events.client.models import CloudEvent, EventPage, attribute_values
from airflow_provider_altinn_events.client.where import (
    WHERE_OPERATORS,
    like_match,
    validate_where,
    where_matches,
)
from airflow_provider_altinn_events.exceptions import AltinnConfigError

__all__ = [
    "DEFAULT_PAGE_SIZE",
    "FILTER_FIELDS",
    "LATEST",
    "SEEK_PAGE_SIZE",
    "SEEN_IDS_LIMIT",
    "WHERE_OPERATORS",
    "EventFilter",
    "PollState",
    "PollStep",
    "initial_state",
    "like_match",
    "poll_step",
]

LATEST = "latest"
"""The ``after`` value meaning "only events that appear after the wait starts"."""

SEEN_IDS_LIMIT = 2048
"""How many recent events (``(id, source)`` pairs) a poll state remembers to drop the ones served again;
bounded so a watcher that runs for months does not grow without end. Events are served again only right
after the cursor (a cursor held before a shared id, or an id the service resolved to an earlier event), so
they are recent; two events that share an id further apart than this may be delivered twice (at least
once, never lost)."""

AMBIGUOUS_IDS_LIMIT = 256
"""How many ids known to be shared by several events a poll state remembers (never used as the cursor)."""

logger = logging.getLogger(__name__)

_ALWAYS: Mapping[str, Any] = {"always": True}
"""Field metadata of the filter keys 0.1.0 serialized (see :class:`EventFilter`)."""


@dataclass(frozen=True, slots=True)
class EventFilter:
    """Which events to wait for; a plain-JSON value so it travels in trigger kwargs.

    The server filters by ``resource``, ``event_types``, ``subject`` and ``alternative_subject``;
    :meth:`matches` checks those again (cheap, and it keeps a poll that did not filter on the server correct)
    and adds what the service cannot filter: ``source`` and ``where``.

    :param resource: ``urn:altinn:resource:...``; the service requires it on every query.
    :param event_types: event ``type`` patterns; the service's ``%`` (any run) and ``_`` (one character)
        wildcards work, as in SQL ``LIKE``. Empty means every type.
    :param subject: exact ``subject`` (the service's own filter).
    :param alternative_subject: exact ``alternativesubject`` (sent as the ``Altinn-AlternativeSubject``
        header); the service refuses ``subject`` and ``alternative_subject`` together.
    :param source: ``source`` pattern, same wildcard rules as ``event_types``; matched on our side.
    :param where: conditions on event fields by dotted path, all of which must hold, e.g.
        ``{"data.status": "completed", "source": {"prefix": "https://ttd.apps"}}``. A plain value means
        equality; a dict uses operators from :data:`WHERE_OPERATORS`.
    :raises AltinnConfigError: an argument cannot be sent to the service or is not a valid condition.
    """

    # Every field is a filter argument of the sensor and both triggers (a test checks their signatures) and a
    # key of to_dict(). The fields marked _ALWAYS are the ones 0.1.0 serialized: they stay in every
    # to_dict(), so deployed watchers keep their identity; a field added later is written only when it is
    # set (not its default), so adding one changes no existing watcher (docs/architecture.rst,
    # "architecture-filter").
    resource: str = field(metadata=_ALWAYS)
    event_types: tuple[str, ...] = field(default=(), metadata=_ALWAYS)
    subject: str | None = field(default=None, metadata=_ALWAYS)
    alternative_subject: str | None = field(default=None, metadata=_ALWAYS)
    source: str | None = field(default=None, metadata=_ALWAYS)
    where: Mapping[str, Any] = field(default_factory=dict, metadata=_ALWAYS)

    def __post_init__(self) -> None:
        if not isinstance(self.resource, str) or not self.resource.startswith(RESOURCE_PREFIX):
            raise AltinnConfigError(
                f"resource must start with {RESOURCE_PREFIX!r}, got {self.resource!r}", field="resource"
            )
        object.__setattr__(self, "event_types", _event_types(self.event_types))
        if any(not isinstance(t, str) or not t for t in self.event_types):
            raise AltinnConfigError(
                f"event_types must be non-empty strings ({_EVENT_TYPES_HELP}), got {list(self.event_types)!r}",
                field="event_types",
            )
        if self.subject and self.alternative_subject:
            raise AltinnConfigError(
                "give subject or alternative_subject, not both (the service refuses both together)",
                field="alternative_subject",
            )
        object.__setattr__(self, "where", validate_where(self.where or {}))

    @classmethod
    def from_arguments(cls, **arguments: Any) -> EventFilter:
        """The filter from the sensor's and the triggers' keyword arguments (named as the fields): one type
        may be given as a plain string, and ``None`` means the field's default (no types, no ``where``).

        :raises AltinnConfigError: an argument is unknown or invalid (as for the constructor).
        """
        return cls.from_dict(arguments)

    def server_query(self) -> dict[str, Any]:
        """Keyword arguments for ``list_events`` (everything the service itself can filter on)."""
        return {
            "resource": self.resource,
            "types": list(self.event_types) or None,
            "subject": self.subject or None,
            "alternative_subject": self.alternative_subject or None,
        }

    def matches(self, event: Mapping[str, Any]) -> bool:
        """Whether one event (a :class:`CloudEvent` or a plain dict) passes every part of the filter."""
        resource = event.get("resource")
        if resource is not None and resource != self.resource:
            return False
        if self.event_types:
            event_type = event.get("type")
            if not isinstance(event_type, str) or not any(
                like_match(p, event_type) for p in self.event_types
            ):
                return False
        if self.subject and event.get("subject") != self.subject:
            return False
        if self.alternative_subject and event.get("alternativesubject") != self.alternative_subject:
            return False
        if self.source:
            source = event.get("source")
            if not isinstance(source, str) or not like_match(self.source, source):
                return False
        # most filters have no `where`: skip the call (the poll step asks this for every event of every page)
        return not self.where or where_matches(self.where, event)

    def select(self, events: Sequence[CloudEvent]) -> list[CloudEvent]:
        """The events that :meth:`matches`, in order. A filter the service applied whole (resource, types,
        subject, alternative subject: all but ``source`` and ``where``) and without types is checked only
        for the resource, without a call per event: the case of every ingestion page."""
        if self.event_types or self.source or self.where:
            return [event for event in events if self.matches(event)]
        resource, subject, alternative = self.resource, self.subject, self.alternative_subject
        if not subject and not alternative and set(attribute_values(events, "resource")) <= {None, resource}:
            return list(events)
        return [
            event
            for event in events
            if ((found := event.get("resource")) is None or found == resource)
            and (not subject or event.get("subject") == subject)
            and (not alternative or event.get("alternativesubject") == alternative)
        ]

    def to_dict(self) -> dict[str, Any]:
        """The filter as plain JSON (the form trigger kwargs and docs use), in field order: the 0.1.0 fields
        always, any later field only when it differs from its default."""
        return {
            f.name: _plain(getattr(self, f.name))
            for f in fields(self)
            if f.metadata.get("always") or getattr(self, f.name) != _default(f)
        }

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> EventFilter:
        """Rebuild a filter from :meth:`to_dict` output (a missing key or ``None`` is the field's default).

        :raises AltinnConfigError: a key is unknown, or a value is invalid.
        """
        unknown = set(raw) - {f.name for f in fields(cls)}
        if unknown:
            raise AltinnConfigError(f"unknown event filter keys: {sorted(unknown)}", field=sorted(unknown)[0])
        arguments: dict[str, Any] = {}
        for f in fields(cls):
            value = raw.get(f.name)
            if value is not None:
                arguments[f.name] = value
            elif f.default is MISSING and f.default_factory is MISSING:
                arguments[f.name] = None  # refused by __post_init__ with the field named
        return cls(**arguments)


FILTER_FIELDS: tuple[str, ...] = tuple(f.name for f in fields(EventFilter))
"""The names of :class:`EventFilter`'s fields, in order: the filter arguments of the sensor and both
triggers, and the keys of :meth:`EventFilter.to_dict`."""


def _default(f: Field[Any]) -> Any:
    return f.default_factory() if f.default_factory is not MISSING else f.default


def _plain(value: Any) -> Any:
    """A field's value as plain JSON: tuples become lists, mappings dicts."""
    if isinstance(value, tuple):
        return list(value)
    if isinstance(value, Mapping):
        return dict(value)
    return value


_EVENT_TYPES_HELP = "a string or a list of non-empty strings: type patterns; % and _ are wildcards"


def _event_types(value: Any) -> tuple[str, ...]:
    """``event_types`` as a tuple: one string is one pattern, ``None`` or empty means every type.

    :raises AltinnConfigError: ``value`` is neither a string nor a list (tuple, set) of them, e.g. ``42``.
    """
    if value is None:
        return ()
    if isinstance(value, str):
        return (value,)
    if isinstance(value, (set, frozenset)):
        return tuple(sorted(value, key=str))  # a stable order: trigger kwargs (and watcher identity) hash it
    if isinstance(value, Sequence) and not isinstance(value, (bytes, bytearray)):
        return tuple(value)
    raise AltinnConfigError(f"event_types must be {_EVENT_TYPES_HELP}; got {value!r}", field="event_types")


@dataclass(frozen=True, slots=True)
class PollState:
    """Where a wait stands: the cursor, the matches not yet handed over, and recently seen events.

    Altinn keys an event by ``(id, source)``: two sources may publish the same ``id``, and ``after=<id>``
    resumes after the *first* event with that id. So the cursor is only ever an id that (as far as this wait
    knows) belongs to one event; when the last event of a page shares its id with an earlier one, the cursor
    stays at the last event before it whose id is unambiguous, and the next page serves the events after
    that again (``behind`` of them), which :data:`seen` drops. See ``docs/guides/sensor.rst``.

    :param after: the cursor the next page is asked for with: the id of the last event this state has fully
        handled (matched and kept, or found not to match) whose id no other event it knows of shares.
    :param seeking: still paging to the current end for ``after="latest"``; nothing is matched meanwhile.
    :param matched: matching events gathered since the last hand-over, in the service's order.
    :param seen: the most recent handled events as ``(id, source)`` pairs (at most :data:`SEEN_IDS_LIMIT`),
        to drop the events the service serves again.
    :param pages: pages read so far (for logs: the cost of a wait, and of ``"latest"``).
    :param events_read: events read so far, matching or not.
    :param after_source: the ``source`` of the event the cursor stands on (``None`` for a cursor given by
        the user): a page that contains that very event shows that the service resolved the cursor to an
        earlier event with the same id, so everything up to it is served again and dropped.
    :param behind: handled events after the cursor (the cursor was held before a shared id); the next page
        serves them again first, so it is asked that much larger (see :attr:`page_size`).
    :param ambiguous: ids known to be shared by more than one event (most recent last, bounded); never used
        as the cursor.
    """

    after: str
    seeking: bool = False
    matched: tuple[CloudEvent, ...] = ()
    seen: tuple[tuple[str, str], ...] = ()
    pages: int = 0
    events_read: int = 0
    after_source: str | None = None
    behind: int = 0
    ambiguous: tuple[str, ...] = ()

    @property
    def page_size(self) -> int:
        """The ``size`` to ask for next: large while seeking (fewer requests), moderate otherwise, and larger
        by the events held ``behind`` the cursor so that a page still has room for new ones (at most
        :data:`SEEK_PAGE_SIZE`, the service's largest page)."""
        if self.seeking:
            return SEEK_PAGE_SIZE
        return min(SEEK_PAGE_SIZE, DEFAULT_PAGE_SIZE + self.behind)

    def handed_over(self) -> PollState:
        """The state after its ``matched`` events were delivered (the watcher's per-poll reset)."""
        return replace(self, matched=())


_NO_VALUE = frozenset({"none", "null"})
"""How ``None`` looks once a template rendered it: Altinn would read it as an unknown id, i.e. "from the start",
and serve the whole retained history again."""


def initial_state(after: str) -> PollState:
    """The state a wait starts in, from the user's ``after`` (an event id, ``"0"`` or ``"latest"``).

    :raises AltinnConfigError: ``after`` is empty, not a string, or ``"None"``/``"null"`` (a rendered
        ``None``; the service would read it as an unknown id and serve the history from the start).
    """
    if not isinstance(after, str) or not after.strip() or after.strip().lower() in _NO_VALUE:
        hint = (
            " (a template that rendered nothing, e.g. an xcom_pull of a run that pushed no cursor?)"
            if after is None or isinstance(after, str) and after.strip().lower() in _NO_VALUE
            else ""
        )
        raise AltinnConfigError(
            f'after must be an event id, "0" (from the start) or "latest"; got {after!r}{hint}', field="after"
        )
    after = after.strip()
    if after == LATEST:
        return PollState(after="0", seeking=True)
    return PollState(after=after)


@dataclass(frozen=True, slots=True)
class PollStep:
    """What one page did to a wait.

    :param state: the new state; callers keep it for the next page.
    :param new_events: the events this page added to ``state.matched``.
    :param done: enough events were gathered (``min_events``), or ``max_events`` was reached mid-page;
        deliver ``state.matched`` and ``state.after`` now.
    :param at_end: the wait has caught up: the page was empty, or it brought nothing new and did not move the
        cursor (the service served events this wait already handled, e.g. after a cursor held before a shared
        id); sleep ``poll_interval`` before the next page. When neither ``done`` nor ``at_end``, fetch the next
        page at once.
    """

    state: PollState
    new_events: tuple[CloudEvent, ...]
    done: bool
    at_end: bool


def poll_step(
    state: PollState,
    page: EventPage,
    event_filter: EventFilter,
    *,
    min_events: int = 1,
    max_events: int | None = None,
) -> PollStep:
    """Apply one fetched page to a wait: drop what was handled before, match, move the cursor, decide.

    Rules, each needed for "nothing lost, nothing spins" when ids are shared (``docs/guides/sensor.rst``):

    * An event is dropped only if its ``(id, source)`` was handled before in this wait (Altinn stores one
      event per pair, so it is the same event), or if it comes before the cursor's own event in the page
      (the service resolved the cursor's id to an earlier event and served those again).
    * The cursor only moves to a handled event whose id no other event known to this wait shares; otherwise
      it stays where it was and ``behind`` counts the events handled past it.
    * A page that adds nothing and leaves the cursor where it was is the current end (``at_end``).

    When ``max_events`` is reached in the middle of a page the cursor stops at or before the last kept event,
    so the next wait (which starts from the cursor pushed to XCom) sees the rest. Nothing is ever skipped.

    :param state: the state the page was asked for with (``page`` must answer ``after=state.after``).
    :param page: the page the service returned.
    :param event_filter: which events count.
    :param min_events: how many matching events end the wait (at least 1).
    :param max_events: the most events to hand over at once; ``None`` means all that one page brings.
    :raises AltinnConfigError: ``min_events``/``max_events`` are out of range.
    """
    if min_events < 1:
        raise AltinnConfigError("min_events must be at least 1", field="min_events")
    if max_events is not None and max_events < min_events:
        raise AltinnConfigError("max_events must be at least min_events", field="max_events")
    pages = state.pages + 1
    events_read = state.events_read + len(page.events)
    if page.is_empty:
        # the current end: seeking is over; the cursor stays (no `next` on an empty page)
        # the constructor, not dataclasses.replace (which looks up the fields each time): nearly every poll of a
        # waiting trigger comes here
        caught_up = PollState(
            after=state.after,
            seeking=False,
            matched=state.matched,
            seen=state.seen,
            pages=pages,
            events_read=events_read,
            after_source=state.after_source,
            behind=state.behind,
            ambiguous=state.ambiguous,
        )
        return PollStep(caught_up, (), done=len(caught_up.matched) >= min_events, at_end=True)

    events = page.events
    ids = [event.id for event in events]
    # the first source each known id was seen with (reversed: the earliest pair is written last and wins),
    # and the ids known to be shared: ``seen`` holds distinct pairs, so as many ids as pairs means none is
    first_source: dict[str, str] = dict(reversed(state.seen))
    shared = set(state.ambiguous)
    newly_shared: list[str] = []
    if len(first_source) != len(state.seen):
        newly_shared = list(
            dict.fromkeys(i for i, source in state.seen if first_source[i] != source and i not in shared)
        )
        shared.update(newly_shared)

    # The cursor's own event in the page: the service resolved `after` to an earlier event with that id.
    served_again = 0
    if state.after_source is not None and state.after in ids:
        for index, event in enumerate(events):
            if event.id == state.after and event.source == state.after_source:
                served_again = index + 1
                break
    if served_again and state.after not in shared:
        shared.add(state.after)
        newly_shared.append(state.after)

    seeking = state.seeking
    cursor_source: str | None
    fresh = _fresh_page(ids, events, state, first_source, shared) if not served_again else None
    if fresh is not None:
        # Nearly every page with events: every id new to this wait and its own. Each event is then new,
        # first seen, and unshared, so the loop below would keep the matches, remember every key and end
        # with the cursor on the last event (tested against the loop: test_poll_step_fast_path.py).
        kept = [] if seeking else event_filter.select(events)
        total = len(state.matched) + len(kept)
        if max_events is None or total <= max_events:
            full = False
            new_seen = fresh
            added = handled = len(events)
            cursor_index = handled - 1
            cursor, cursor_source = events[cursor_index].id, fresh[cursor_index][1]
        else:
            fresh = None  # the page fills max_events mid-way: the loop finds where to stop
    if fresh is None:
        new_seen, kept, total, added, handled, full, cursor, cursor_source, cursor_index = _walk_page(
            state,
            events,
            event_filter,
            first_source,
            shared,
            newly_shared,
            served_again,
            max_events,
        )
    for event_id in dict.fromkeys(newly_shared):
        logger.warning(
            "Events of %s share the id %r (Altinn keys events by id and source, and after=%r resumes after "
            "the first of them): the cursor is kept at an id of its own and events served again are dropped",
            event_filter.resource,
            event_id,
            event_id,
        )
    ambiguous = state.ambiguous
    if newly_shared:
        ambiguous = (ambiguous + tuple(dict.fromkeys(newly_shared)))[-AMBIGUOUS_IDS_LIMIT:]
    behind = handled - 1 - cursor_index
    if behind >= SEEK_PAGE_SIZE - DEFAULT_PAGE_SIZE and not added:
        logger.warning(
            "%d events of %s after cursor %r share ids with earlier events; Altinn's paging cannot reach past "
            "them (a page holds at most %d events)",
            behind,
            event_filter.resource,
            cursor,
            SEEK_PAGE_SIZE,
        )
    at_end = not added and cursor == state.after
    new_state = PollState(
        after=cursor,
        seeking=seeking and not at_end,
        matched=state.matched + tuple(kept),
        seen=(state.seen + tuple(new_seen))[-SEEN_IDS_LIMIT:],
        pages=pages,
        events_read=events_read,
        after_source=cursor_source,
        behind=behind,
        ambiguous=ambiguous,
    )
    done = full or total >= min_events or (max_events is not None and total >= max_events)
    return PollStep(new_state, tuple(kept), done=done, at_end=at_end)


def _fresh_page(
    ids: list[str],
    events: Sequence[CloudEvent],
    state: PollState,
    first_source: dict[str, str],
    shared: set[str],
) -> list[tuple[str, str]] | None:
    """The page's ``(id, source)`` keys when every id in it is new to the wait and appears once in the page
    (the common case, checked with set operations at C speed), else ``None``: then :func:`_walk_page` decides
    event by event. A page whose ids are all unknown and distinct can drop nothing and share nothing."""
    distinct = set(ids)
    if len(distinct) != len(ids) or not distinct.isdisjoint(first_source) or not distinct.isdisjoint(shared):
        return None
    if state.after_source is not None and state.after in distinct:
        return None  # the cursor's id again: the loop checks whether it is the cursor's own event
    intern = sys.intern  # few distinct sources: one string each in memory
    return [(event_id, intern(event.source)) for event_id, event in zip(ids, events, strict=True)]


def _walk_page(
    state: PollState,
    events: Sequence[CloudEvent],
    event_filter: EventFilter,
    first_source: dict[str, str],
    shared: set[str],
    newly_shared: list[str],
    served_again: int,
    max_events: int | None,
) -> tuple[list[tuple[str, str]], list[CloudEvent], int, int, int, bool, str, str | None, int]:
    """:func:`poll_step`'s rules applied event by event (ids seen before, shared ids, the cursor's own event
    served again, ``max_events`` reached mid-page); adds the ids it finds shared to ``shared`` and
    ``newly_shared``. Returns ``(new_seen, kept, total, added, handled, full, cursor, cursor_source,
    cursor_index)``."""
    seeking = state.seeking
    seen_set = set(state.seen)
    new_seen: list[tuple[str, str]] = []
    page_keys: set[tuple[str, str]] = set()
    kept: list[CloudEvent] = []
    cursor, cursor_source, cursor_index = state.after, state.after_source, -1
    total = len(state.matched)
    handled = 0
    added = 0
    full = False
    for index, event in enumerate(events):
        source = sys.intern(event.source)  # few distinct sources: one string each in memory
        key = (event.id, source)
        earlier = key in seen_set  # handled on an earlier page
        known = earlier or key in page_keys
        if earlier and index >= state.behind and index >= served_again and state.after not in shared:
            # a correct answer to after=X brings only the `behind` held events before new ones: X is shared
            shared.add(state.after)
            newly_shared.append(state.after)
        if not known and index >= served_again:
            if not seeking and event_filter.matches(event):
                if max_events is not None and total >= max_events:
                    full = True
                    break
                kept.append(event)
                total += 1
            added += 1
        if not known:
            page_keys.add(key)
            new_seen.append(key)
        if first_source.setdefault(event.id, source) != source and event.id not in shared:
            shared.add(event.id)
            newly_shared.append(event.id)
        if event.id not in shared:
            cursor, cursor_source, cursor_index = event.id, source, index
        handled = index + 1
    return new_seen, kept, total, added, handled, full, cursor, cursor_source, cursor_index

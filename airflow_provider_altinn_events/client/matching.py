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
* Delivery is at least once, so an id seen before in the same wait is dropped (:data:`SEEN_IDS_LIMIT`).

The declarative ``where`` conditions an :class:`EventFilter` may carry are checked and applied by
:mod:`.where`. Nothing here imports Airflow or does I/O.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from airflow_provider_altinn_events.client.models import CloudEvent, EventPage
from airflow_provider_altinn_events.client.urn import RESOURCE_PREFIX
from airflow_provider_altinn_events.client.where import (
    WHERE_OPERATORS,
    like_match,
    validate_where,
    where_matches,
)
from airflow_provider_altinn_events.exceptions import AltinnConfigError

__all__ = [
    "DEFAULT_PAGE_SIZE",
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

DEFAULT_PAGE_SIZE = 100
"""Page size for normal reading (the service caps ``size`` at 1000)."""

SEEK_PAGE_SIZE = 1000
"""Page size while seeking the current end for ``after="latest"``: the largest page the service serves."""

SEEN_IDS_LIMIT = 2048
"""How many recent event ids a poll state remembers to drop duplicates; bounded so a watcher that runs for
months does not grow without end. The cursor only moves forward, so duplicates are always recent."""


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

    resource: str
    event_types: tuple[str, ...] = ()
    subject: str | None = None
    alternative_subject: str | None = None
    source: str | None = None
    where: Mapping[str, Any] = field(default_factory=dict)

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
    def from_arguments(
        cls,
        *,
        resource: str,
        event_types: Sequence[str] | str | None = None,
        subject: str | None = None,
        alternative_subject: str | None = None,
        source: str | None = None,
        where: Mapping[str, Any] | None = None,
    ) -> EventFilter:
        """The filter from the sensor's and the triggers' arguments: one type may be given as a plain string,
        and ``None`` means no types or no ``where`` conditions.

        :raises AltinnConfigError: an argument is invalid (as for the constructor).
        """
        return cls(
            resource=resource,
            event_types=_event_types(event_types),
            subject=subject,
            alternative_subject=alternative_subject,
            source=source,
            where=where or {},
        )

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
        return where_matches(self.where, event)

    def to_dict(self) -> dict[str, Any]:
        """The filter as plain JSON (the form trigger kwargs and docs use)."""
        return {
            "resource": self.resource,
            "event_types": list(self.event_types),
            "subject": self.subject,
            "alternative_subject": self.alternative_subject,
            "source": self.source,
            "where": dict(self.where),
        }

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> EventFilter:
        """Rebuild a filter from :meth:`to_dict` output.

        :raises AltinnConfigError: a key is unknown, or a value is invalid.
        """
        unknown = set(raw) - {"resource", "event_types", "subject", "alternative_subject", "source", "where"}
        if unknown:
            raise AltinnConfigError(f"unknown event filter keys: {sorted(unknown)}", field=sorted(unknown)[0])
        return cls(
            resource=raw.get("resource"),  # type: ignore[arg-type]  # checked in __post_init__
            event_types=_event_types(raw.get("event_types")),
            subject=raw.get("subject"),
            alternative_subject=raw.get("alternative_subject"),
            source=raw.get("source"),
            where=raw.get("where") or {},
        )


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
    """Where a wait stands: the cursor, the matches not yet handed over, and recently seen ids.

    :param after: the cursor the next page is asked for with; it is the id of the last event this state has
        fully handled (matched and kept, or found not to match).
    :param seeking: still paging to the current end for ``after="latest"``; nothing is matched meanwhile.
    :param matched: matching events gathered since the last hand-over, in the service's order.
    :param seen: the most recent handled event ids (at most :data:`SEEN_IDS_LIMIT`), to drop duplicates.
    :param pages: pages read so far (for logs: the cost of a wait, and of ``"latest"``).
    :param events_read: events read so far, matching or not.
    """

    after: str
    seeking: bool = False
    matched: tuple[CloudEvent, ...] = ()
    seen: tuple[str, ...] = ()
    pages: int = 0
    events_read: int = 0

    @property
    def page_size(self) -> int:
        """The ``size`` to ask for next: large while seeking (fewer requests), moderate otherwise."""
        return SEEK_PAGE_SIZE if self.seeking else DEFAULT_PAGE_SIZE

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
    return PollState(after=after, seen=() if after == "0" else (after,))


@dataclass(frozen=True, slots=True)
class PollStep:
    """What one page did to a wait.

    :param state: the new state; callers keep it for the next page.
    :param new_events: the events this page added to ``state.matched``.
    :param done: enough events were gathered (``min_events``), or ``max_events`` was reached mid-page;
        deliver ``state.matched`` and ``state.after`` now.
    :param at_end: the page was empty: the wait has caught up; sleep ``poll_interval`` before the next page.
        When neither ``done`` nor ``at_end``, fetch the next page at once.
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
    """Apply one fetched page to a wait: match, drop duplicates, move the cursor, decide whether to stop.

    The cursor moves past every event that was looked at and either kept or rejected; when ``max_events`` is
    reached in the middle of a page the cursor stops after the last kept event, so the next wait (which
    starts from the cursor pushed to XCom) sees the rest. Nothing is ever skipped.

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
        caught_up = replace(state, seeking=False, pages=pages, events_read=events_read)
        return PollStep(caught_up, (), done=len(caught_up.matched) >= min_events, at_end=True)
    if state.seeking:
        moved = replace(state, after=page.after or page.events[-1].id, pages=pages, events_read=events_read)
        return PollStep(moved, (), done=False, at_end=False)

    seen_set = set(state.seen)
    new_seen: list[str] = []
    kept: list[CloudEvent] = []
    after = state.after
    total = len(state.matched)
    full = False
    for event in page.events:
        if event.id in seen_set:
            after = event.id
            continue
        if event_filter.matches(event):
            if max_events is not None and total >= max_events:
                full = True
                break
            kept.append(event)
            total += 1
        seen_set.add(event.id)
        new_seen.append(event.id)
        after = event.id
    seen = (state.seen + tuple(new_seen))[-SEEN_IDS_LIMIT:]
    new_state = PollState(
        after=after,
        seeking=False,
        matched=state.matched + tuple(kept),
        seen=seen,
        pages=pages,
        events_read=events_read,
    )
    done = full or total >= min_events or (max_events is not None and total >= max_events)
    return PollStep(new_state, tuple(kept), done=done, at_end=False)

"""Typed views of what Altinn Events sends and receives: CloudEvents, pages and subscriptions.

A ``CloudEvent`` keeps the dict exactly as Altinn sent it (``to_dict()``), because users store it, push it
to XCom and compare it with what Altinn's own tooling shows; the typed properties are a view on that dict,
not a re-serialisation that could drop an extension attribute.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from itertools import repeat
from typing import Any

from airflow_provider_altinn_events.exceptions import AltinnPayloadError

__all__ = [
    "CloudEvent",
    "EventPage",
    "Subscription",
    "SubscriptionList",
    "attribute_values",
    "events_from_decoded",
    "json_objects",
]


class CloudEvent(Mapping[str, Any]):
    """One CloudEvent as Altinn serialises it (all attribute names lowercase, absent ones omitted).

    It is a read-only mapping over the original dict, so ``event["data"]`` and ``dict(event)`` work as
    users expect, and the typed properties cover the attributes Altinn defines.
    """

    # ``id`` and ``source`` are slots, set once from the dict: the poll step reads them several times for every
    # event of every page, and a slot is read at C speed where a property costs a call (docs/performance.rst,
    # "Ingestion"). ``__setattr__`` keeps them read-only, as the properties were.
    __slots__ = ("_raw", "id", "source")

    _raw: dict[str, Any]
    id: str
    """The event's ``id`` (with ``source``, Altinn's key for an event)."""
    source: str
    """The event's ``source``."""

    def __init__(self, raw: Mapping[str, Any]) -> None:
        _set_raw(self, dict(raw))
        _fill_key(self)

    @classmethod
    def from_dict(cls, raw: Any) -> CloudEvent:
        """Check the attributes every CloudEvent has and wrap it.

        :raises AltinnPayloadError: ``raw`` is not an object or lacks a string ``id``, ``source`` or ``type``.
        """
        if not isinstance(raw, Mapping):
            raise AltinnPayloadError(f"a CloudEvent must be a JSON object, got {type(raw).__name__}")
        for name in ("id", "source", "type"):
            value = raw.get(name)
            if not isinstance(value, str) or not value:
                raise AltinnPayloadError(f"CloudEvent attribute {name!r} must be a non-empty string")
        return cls(raw)

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError(f"CloudEvent is read-only: cannot set {name!r}")

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"CloudEvent is read-only: cannot delete {name!r}")

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self._raw,))

    def __getitem__(self, key: str) -> Any:
        return self._raw[key]

    def get(self, key: str, default: Any = None) -> Any:
        """As ``dict.get`` (the ``Mapping`` default goes through ``__getitem__`` and an exception)."""
        return self._raw.get(key, default)

    def __contains__(self, key: object) -> bool:
        return key in self._raw

    def __iter__(self) -> Iterator[str]:
        return iter(self._raw)

    def __len__(self) -> int:
        return len(self._raw)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, CloudEvent):
            return self._raw == other._raw
        if isinstance(other, Mapping):
            return self._raw == dict(other)
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]  # mutable-content mapping: not hashable, like dict

    def __repr__(self) -> str:
        return f"CloudEvent(id={self.id!r}, type={self.type!r}, resource={self.resource!r})"

    def to_dict(self) -> dict[str, Any]:
        """A copy of the event exactly as Altinn sent it (JSON-ready)."""
        return dict(self._raw)

    @property
    def type(self) -> str:
        return str(self._raw["type"])

    @property
    def specversion(self) -> str | None:
        return self._raw.get("specversion")

    @property
    def subject(self) -> str | None:
        return self._raw.get("subject")

    @property
    def alternativesubject(self) -> str | None:
        return self._raw.get("alternativesubject")

    @property
    def resource(self) -> str | None:
        return self._raw.get("resource")

    @property
    def resourceinstance(self) -> str | None:
        return self._raw.get("resourceinstance")

    @property
    def time(self) -> str | None:
        return self._raw.get("time")

    @property
    def data(self) -> Any:
        return self._raw.get("data")


_set_raw = CloudEvent._raw.__set__  # type: ignore[attr-defined]  # the slots' own setters: past __setattr__
_set_id = CloudEvent.id.__set__  # type: ignore[attr-defined]
_set_source = CloudEvent.source.__set__  # type: ignore[attr-defined]


def _fill_key(event: CloudEvent) -> None:
    """Set ``id`` and ``source`` from the dict, as strings; an attribute the dict lacks stays unset (reading
    it raises ``AttributeError``; ``from_dict`` refuses such a dict)."""
    raw = event._raw
    if "id" in raw:
        _set_id(event, str(raw["id"]))
    if "source" in raw:
        _set_source(event, str(raw["source"]))


def events_from_decoded(items: list[Any]) -> tuple[CloudEvent, ...]:
    """CloudEvents for the items of a JSON array just decoded from a response: the checks of
    :meth:`CloudEvent.from_dict`, without its copy (nobody else holds these dicts) and without its abstract
    ``Mapping`` check for plain dicts. It runs on every page the clients read, 1,000 events for ingestion,
    where the copy and the checks cost as much as decoding the page (docs/performance.rst, "Ingestion").

    :raises AltinnPayloadError: as :meth:`CloudEvent.from_dict`.
    """
    new, set_raw, set_id, set_source = object.__new__, _set_raw, _set_id, _set_source
    events: list[CloudEvent] = []
    append = events.append
    for raw in items:
        if type(raw) is dict:
            event_id, source, type_ = raw.get("id"), raw.get("source"), raw.get("type")
            if (
                type(event_id) is str
                and event_id
                and type(source) is str
                and source
                and type(type_) is str
                and type_
            ):
                event = new(CloudEvent)
                set_raw(event, raw)
                set_id(event, event_id)
                set_source(event, source)
                append(event)
                continue
        append(CloudEvent.from_dict(raw))  # anything else: its checks, its errors
    return tuple(events)


def attribute_values(events: Sequence[CloudEvent], name: str) -> list[Any]:
    """Each event's attribute ``name`` (``None`` where absent), read without a Python call per event: the
    poll step checks a whole page at once (docs/performance.rst, "Ingestion")."""
    return list(map(dict.get, [event._raw for event in events], repeat(name)))


def json_objects(events: Iterable[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """Each event as the JSON object to encode: a :class:`CloudEvent`'s own dict as Altinn sent it, not a copy
    (an encoder only reads it; ingestion encodes 1,000 events a page), any other mapping as a dict."""
    return [event._raw if type(event) is CloudEvent else dict(event) for event in events]


@dataclass(frozen=True, slots=True)
class EventPage:
    """One page of ``GET /events`` (or ``GET /app/...``).

    :param events: the events of the page, in the service's order (ascending sequence number).
    :param after: the cursor to ask for the next page with: the id of the last event, or the request's own
        ``after`` when the page is empty (Altinn sends no ``next`` header on an empty page;
        docs/contract.rst, "contract-paging").
    :param next_url: the ``next`` header as sent, for information; clients rebuild the URL themselves because
        Altinn does not re-encode the values it copies into it.
    """

    events: tuple[CloudEvent, ...]
    after: str
    next_url: str | None = None

    def __len__(self) -> int:
        return len(self.events)

    @property
    def is_empty(self) -> bool:
        """An empty page is the end of what the service has now; poll again later from the same ``after``."""
        return not self.events


@dataclass(frozen=True)
class Subscription:
    """A push subscription as ``/subscriptions`` returns it (camelCase keys in ``raw``)."""

    id: int
    endpoint: str
    resource_filter: str | None
    source_filter: str | None
    subject_filter: str | None
    alternative_subject_filter: str | None
    type_filter: str | None
    consumer: str | None
    created_by: str | None
    created: str | None
    validated: bool
    include_subunits: bool
    raw: Mapping[str, Any]

    @classmethod
    def from_dict(cls, raw: Any) -> Subscription:
        """Parse the service's JSON.

        :raises AltinnPayloadError: ``raw`` is not an object or has no integer ``id`` or no ``endPoint``.
        """
        if not isinstance(raw, Mapping):
            raise AltinnPayloadError(f"a subscription must be a JSON object, got {type(raw).__name__}")
        sub_id = raw.get("id")
        if not isinstance(sub_id, int) or isinstance(sub_id, bool):
            raise AltinnPayloadError("subscription attribute 'id' must be an integer")
        endpoint = raw.get("endPoint", raw.get("endpoint"))
        if not isinstance(endpoint, str):
            raise AltinnPayloadError("subscription attribute 'endPoint' must be a string")
        return cls(
            id=sub_id,
            endpoint=endpoint,
            resource_filter=raw.get("resourceFilter"),
            source_filter=raw.get("sourceFilter"),
            subject_filter=raw.get("subjectFilter"),
            alternative_subject_filter=raw.get("alternativeSubjectFilter"),
            type_filter=raw.get("typeFilter"),
            consumer=raw.get("consumer"),
            created_by=raw.get("createdBy"),
            created=raw.get("created"),
            validated=bool(raw.get("validated", False)),
            include_subunits=bool(raw.get("includeSubunits", False)),
            raw=dict(raw),
        )

    def to_dict(self) -> dict[str, Any]:
        """The subscription as the service sent it (camelCase), JSON-ready for XCom."""
        return dict(self.raw)


@dataclass(frozen=True)
class SubscriptionList:
    """``GET /subscriptions``: ``{"count": N, "subscriptions": [...]}``."""

    count: int
    subscriptions: tuple[Subscription, ...]

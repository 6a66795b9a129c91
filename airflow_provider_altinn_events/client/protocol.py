"""The Events API as pure functions: one request builder and one response parser per endpoint.

Nothing here does I/O, sleeps or keeps state (beyond the events endpoint parsed once per platform URL), so the sync and the async
client share every line of it and it is tested without any transport. Each builder returns an ``httpx.Request`` with an absolute URL; each parser
takes the ``httpx.Response`` (body already read) and either returns a model or raises the error that
:func:`error_from_response` picks for the status (the error factory lives in :mod:`.errors` and is
re-exported here). The facts behind each function are in docs/contract.rst, "contract-facts".
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any, NamedTuple
from urllib.parse import parse_qsl, quote_plus, urlencode

import httpx

from airflow_provider_altinn_events.client._constants import MAX_PAGE_SIZE
from airflow_provider_altinn_events.client.errors import (
    error_from_response,
    error_from_transport,
    parse_problem,
    parse_retry_after,
    redact,
    strip_query,
)
from airflow_provider_altinn_events.client.models import (
    EventPage,
    Subscription,
    SubscriptionList,
    events_from_decoded,
)
from airflow_provider_altinn_events.client.settings import AltinnSettings
from airflow_provider_altinn_events.client.urn import RESOURCE_PREFIX
from airflow_provider_altinn_events.exceptions import AltinnConfigError, AltinnPayloadError

__all__ = [
    "CLOUDEVENTS_JSON",
    "MAX_RESPONSE_BYTES",
    "build_create_subscription_request",
    "build_delete_subscription_request",
    "build_get_subscription_request",
    "build_list_app_events_request",
    "build_list_events_request",
    "build_list_subscriptions_request",
    "build_publish_app_event_request",
    "build_publish_request",
    "error_from_response",
    "error_from_transport",
    "parse_empty_response",
    "parse_events_page",
    "parse_problem",
    "parse_publish_app_event_response",
    "parse_retry_after",
    "parse_subscription_list_response",
    "parse_subscription_response",
    "redact",
    "response_too_large",
    "strip_query",
    "undecoded_events_page",
    "with_query",
    "UndecodedEventPage",
]

CLOUDEVENTS_JSON = "application/cloudevents+json"
JSON = "application/json"

MAX_RESPONSE_BYTES = 8 * 1024 * 1024
"""The largest response body the clients read (8 MiB, after decompression): a full page of 1,000 events of
8 KiB each. A larger answer is refused with :class:`AltinnPayloadError` (not retried: the same request gets
the same answer) before it is read whole, so one bad answer cannot take a triggerer's memory, which all its
triggers share. Clients take ``max_response_bytes`` to change it; see ``docs/performance.rst``."""


def response_too_large(request: httpx.Request, limit: int, size: int | None = None) -> AltinnPayloadError:
    """The error for an answer over ``limit`` bytes (``size`` when the server declared it)."""
    declared = f" (Content-Length {size})" if size is not None else ""
    return AltinnPayloadError(
        f"the response to {request.method} {request.url.path} is larger than {limit} bytes{declared}; refusing "
        "to read it (max_response_bytes, docs/performance.rst)"
    )


def _json_decoder() -> Callable[[bytes], Any]:
    try:  # msgspec ships with Airflow 3 and decodes pages several times faster than the json module
        import msgspec
    except ImportError:  # pragma: no cover - the client core runs without Airflow too
        return json.loads
    return msgspec.json.Decoder().decode


#: bytes -> Python objects; raises a ``ValueError`` (``msgspec.DecodeError`` is one) on invalid JSON.
_decode_json = _json_decoder()


def _outliner() -> Callable[[bytes], tuple[int, str] | None]:
    """``body -> (count, last id)`` of a JSON array: msgspec splits the array into raw items without decoding
    them and decodes only the last one's ``id``; without msgspec, a full decode."""
    try:
        import msgspec
    except ImportError:  # pragma: no cover - the client core runs without Airflow too

        def decoded_outline(content: bytes) -> tuple[int, str] | None:
            items = json.loads(content)
            return (len(items), items[-1]["id"]) if items and isinstance(items[-1]["id"], str) else None

        return decoded_outline

    class _Id(msgspec.Struct):
        id: str

    split, last_id = msgspec.json.Decoder(list[msgspec.Raw]).decode, msgspec.json.Decoder(_Id).decode

    def outline(content: bytes) -> tuple[int, str] | None:
        items = split(content)
        return (len(items), last_id(items[-1]).id) if items else None

    return outline


_outline = _outliner()


# -- shared helpers -------------------------------------------------------------------------------------------


def _json_body(payload: Mapping[str, Any], what: str) -> bytes:
    try:
        return json.dumps(dict(payload), separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    except (TypeError, ValueError) as error:
        raise AltinnPayloadError(f"{what} is not JSON-serialisable: {error}") from None


def _non_empty(value: Any, name: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise AltinnConfigError(f"{name} must be a non-empty string", field=name)
    return value


def _types(types: Sequence[str] | str | None) -> list[str]:
    if types is None:
        return []
    items = [types] if isinstance(types, str) else list(types)
    return [_non_empty(t, "types") for t in items]


def _size(size: int) -> int:
    if isinstance(size, bool) or not isinstance(size, int) or not 1 <= size <= MAX_PAGE_SIZE:
        raise AltinnConfigError(
            f"size must be an integer from 1 to {MAX_PAGE_SIZE}, got {size!r}", field="size"
        )
    return size


def _time_param(value: datetime | str, name: str) -> str:
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise AltinnConfigError(
                f"{name} must be timezone-aware (Altinn refuses times without an offset)", field=name
            )
        return value.isoformat()
    return _non_empty(value, name)


# -- publish ----------------------------------------------------------------------------------------------------


def build_publish_request(settings: AltinnSettings, event: Any) -> httpx.Request:
    """``POST /events``: one structured-mode CloudEvent, ``application/cloudevents+json``.

    ``event`` is a dict or a ``cloudevents`` SDK event, in every form the publish operator takes (an aware
    ``datetime`` as ``time``, ``bytes`` as ``data``: see :func:`.validation.normalize_event`).
    ``specversion`` defaults to ``"1.0"``; ``id``, ``source``, ``type`` and ``resource`` are required. The
    event is checked with Altinn's own rules (docs/contract.rst) before anything is sent.

    :raises AltinnPayloadError: the event is not an event or breaks a rule; the message names the attribute.
    """
    from airflow_provider_altinn_events.client.validation import normalize_event, validate_cloud_event

    try:
        body = normalize_event(event, field="event")
        body.setdefault("specversion", "1.0")
        validate_cloud_event(body, field="event")
    except AltinnConfigError as error:
        raise AltinnPayloadError(str(error)) from error
    return httpx.Request(
        "POST",
        f"{settings.events_url}/events",
        content=_json_body(body, "the event"),
        headers={"Content-Type": CLOUDEVENTS_JSON, "Accept": JSON},
    )


def build_publish_app_event_request(settings: AltinnSettings, event: Any) -> httpx.Request:
    """``POST /app``: an app event (the server assigns ``id``, ``time`` and ``resource``).

    :raises AltinnConfigError: the connection has no ``platform_access_token`` (the endpoint requires one).
    :raises AltinnPayloadError: ``source``, ``type`` or ``subject`` is missing.
    """
    if not settings.platform_access_token:
        raise AltinnConfigError(
            "publishing app events needs extra platform_access_token (POST /app accepts only apps' "
            "platform access tokens)",
            field="platform_access_token",
        )
    from airflow_provider_altinn_events.client.validation import normalize_event

    try:
        body = normalize_event(event, field="event")
    except AltinnConfigError as error:
        raise AltinnPayloadError(str(error)) from error
    body.setdefault("specversion", "1.0")
    for name in ("source", "type", "subject"):
        if not isinstance(body.get(name), str) or not body[name]:
            raise AltinnPayloadError(f"the app event needs a non-empty string {name!r}")
    return httpx.Request(
        "POST",
        f"{settings.events_url}/app",
        content=_json_body(body, "the app event"),
        headers={"Content-Type": JSON, "Accept": JSON},
    )


def parse_publish_app_event_response(response: httpx.Response) -> str:
    """The new event id from a 201 (the body is the id as a JSON string)."""
    _raise_for_status(response)
    text = response.text.strip()
    try:
        value = json.loads(text) if text.startswith('"') else text
    except ValueError:
        value = text
    if not isinstance(value, str) or not value:
        raise AltinnPayloadError("POST /app answered without the new event id")
    return value


def parse_empty_response(response: httpx.Response) -> None:
    """Any 2xx with a body we do not need (publish, delete)."""
    _raise_for_status(response)


# -- consume ----------------------------------------------------------------------------------------------------


def build_list_events_request(
    settings: AltinnSettings,
    *,
    resource: str,
    after: str = "0",
    types: Sequence[str] | None = None,
    subject: str | None = None,
    alternative_subject: str | None = None,
    size: int = 50,
) -> httpx.Request:
    """``GET /events``: one page after the cursor ``after`` (an event id; ``"0"`` for the beginning).

    The request is the one ``httpx.Request("GET", url, params=..., headers=...)`` builds (the same URL,
    headers in the same order, an empty body already read), built without httpx's parse of the URL and its
    defaults pass: every waiting trigger sends one per poll (docs/performance.rst, "poll-floor");
    ``tests/unit/client/test_protocol.py`` compares the two. It carries its query as pairs too
    (:data:`QUERY_EXTENSION`), for a transport that hands the query to aiohttp as ``params``.

    :raises AltinnConfigError: ``resource`` is not an ``urn:altinn:resource:`` URN, ``after`` is empty, both
        subjects are given, or ``size`` is outside 1..1000.
    """
    _non_empty(resource, "resource")
    if not resource.startswith(RESOURCE_PREFIX):
        raise AltinnConfigError(
            f"resource must begin with {RESOURCE_PREFIX!r}, got {resource!r}", field="resource"
        )
    _non_empty(after, "after")
    if subject and alternative_subject:
        raise AltinnConfigError(
            "give subject or alternative_subject, not both (Altinn refuses the combination)", field="subject"
        )
    params: tuple[tuple[str, str], ...] = (("resource", resource), ("after", after))
    if types is not None:
        params += tuple(("type", t) for t in _types(types))
    if subject:
        params += (("subject", subject),)
    params += (("size", str(_size(size))),)
    # Not memoised per filter: a URL kept per waiting trigger costs about 0.8 KiB each. The endpoint is parsed
    # once per platform URL instead, and the query attached without a second parse (docs/performance.rst)
    endpoint = _events_endpoint(settings.events_url)
    url = with_query(endpoint.url, params)
    if alternative_subject:
        # encoded as httpx encodes a str header value it is given (ASCII, else UnicodeEncodeError)
        headers: httpx.Headers | list[tuple[bytes, bytes]] = [
            *endpoint.headers.raw,
            (b"Altinn-AlternativeSubject", alternative_subject.encode("ascii")),
        ]
    else:
        headers = endpoint.headers
    request = httpx.Request("GET", url, headers=headers, stream=_NO_BODY)
    request.read()  # b"", as httpx reads a body it was given whole; the fast path sends only read bodies
    # request.url, not url: httpx.Request keeps a copy of the URL it is given
    request.extensions[QUERY_EXTENSION] = QueryParts(request.url, endpoint.base, params)
    return request


#: The ``request.extensions`` key under which :func:`build_list_events_request` hands its query over as the
#: pairs it encoded (:class:`QueryParts`), so the aiohttp fast path (``client/_aiohttp_fast.py``) passes them
#: to aiohttp as ``params`` without decoding the URL it has just encoded. Other transports ignore it.
QUERY_EXTENSION = "altinn_events.query"


class QueryParts(NamedTuple):
    """A request's query as pairs, with the URL they belong to (``request.url`` must still be this very
    object: a request given another URL since is sent to that URL, decoded) and that URL without its query."""

    url: httpx.URL
    base: str
    params: tuple[tuple[str, str], ...]


class _Endpoint(NamedTuple):
    url: httpx.URL
    base: str
    headers: httpx.Headers  # Host, then Accept: the headers httpx.Request writes for a GET of this endpoint


@functools.lru_cache(maxsize=16)
def _events_endpoint(events_url: str) -> _Endpoint:
    """``GET /events`` of one platform URL: its URL parsed once, as a string, and its request headers (each
    request copies them; ``httpx.Request`` copies headers it is given)."""
    url = _endpoint(f"{events_url}/events")
    return _Endpoint(
        url, str(url), httpx.Headers([(b"Host", url.netloc), (b"Accept", CLOUDEVENTS_JSON.encode("ascii"))])
    )


#: The body of a GET: ``httpx.Request(stream=...)`` skips the body encoding and the default headers, which
#: the builder writes itself (``ByteStream`` only hands its bytes out, so one serves every request).
_NO_BODY = httpx.ByteStream(b"")


@functools.lru_cache(maxsize=16)
def _endpoint(url: str) -> httpx.URL:
    """An endpoint URL, parsed and checked once: one per platform URL a process talks to (a handful), not one
    per waiting trigger. ``httpx.URL`` is immutable, so every request may share it."""
    return httpx.URL(url)


def _replaceable_parts() -> bool:
    """Whether this httpx keeps a URL's parts as the named tuple ``_uri_reference`` with a ``query`` field
    (httpx 0.23 to 0.28): then :func:`with_query` swaps the query in without parsing the URL again.
    A seam (docs/performance.rst, "seams"): a later httpx without it takes the public path, which parses."""
    parts = getattr(httpx.URL("http://a/"), "_uri_reference", None)
    return callable(getattr(parts, "_replace", None)) and "query" in getattr(parts, "_fields", ())


_REPLACEABLE_PARTS = _replaceable_parts()

#: What ``urlencode`` (``quote_plus``) leaves as it is: ASCII letters, digits and ``_.-~``.
_UNRESERVED = re.compile(r"[A-Za-z0-9_.~-]*")
#: The same with ``:``, the one character an Altinn URN adds (``urn:altinn:resource:...``).
_UNRESERVED_OR_COLON = re.compile(r"[A-Za-z0-9_.~:-]*")


def _quote_plus(value: str) -> str:
    """``urllib.parse.quote_plus(value, safe="")``, as ``urlencode`` writes each key and value, without its
    per-character work for the values a poll sends (digits, ids, URNs); anything else goes to ``quote_plus``.
    A hypothesis test in ``tests/unit/client/test_protocol.py`` checks it against ``urlencode``."""
    if _UNRESERVED.fullmatch(value):
        return value
    if _UNRESERVED_OR_COLON.fullmatch(value):
        return value.replace(":", "%3A")
    return quote_plus(value, safe="")


def _urlencode(params: Sequence[tuple[str, str]]) -> str:
    """``urllib.parse.urlencode(params)`` (what httpx writes for ``params``), quicker for string pairs."""
    try:
        return "&".join([f"{_quote_plus(key)}={_quote_plus(value)}" for key, value in params])
    except TypeError:  # a key or value that is not a str (with_query is public): as urlencode writes it
        return urlencode(params)


def with_query(endpoint: httpx.URL, params: Sequence[tuple[str, str]]) -> httpx.URL:
    """``endpoint`` with ``params`` as its query, exactly as ``httpx.Request(..., params=params)`` writes it.

    httpx's own way parses and checks the whole URL twice per request (about 40 us of a poll, most of what
    our client added to a bare aiohttp poll: ``benchmarks/poll_floor.py``). The query is encoded here as
    httpx encodes ``params`` (``urlencode``, which leaves only ``A-Z a-z 0-9 _.-~ % + = &``, characters
    httpx's parser keeps as they are), so swapping it into the parsed endpoint gives the same URL without
    the parse; ``tests/unit/client/test_protocol.py`` checks both agree. ``params`` must not repeat a key
    apart from its other values (httpx would group them; the request builders never do).
    """
    query = _urlencode(params)
    if not query:
        return endpoint
    if _REPLACEABLE_PARTS:
        url = httpx.URL.__new__(httpx.URL)
        url._uri_reference = endpoint._uri_reference._replace(query=query)
        return url
    return httpx.URL(endpoint, query=query.encode("ascii"))


def build_list_app_events_request(
    settings: AltinnSettings,
    org: str,
    app: str,
    *,
    after: str | None = None,
    from_: datetime | str | None = None,
    to: datetime | str | None = None,
    party: int | None = None,
    unit: str | None = None,
    person: str | None = None,
    types: Sequence[str] | None = None,
    size: int = 50,
) -> httpx.Request:
    """``GET /app/{org}/{app}``: app events for a service owner (token must carry ``urn:altinn:org``).

    :raises AltinnConfigError: neither ``after`` nor ``from_`` is given, or conflicting party filters.
    """
    _non_empty(org, "org")
    _non_empty(app, "app")
    if not after and from_ is None:
        raise AltinnConfigError("give after or from_ (Altinn needs one of them)", field="after")
    if party is not None and (person or unit):
        raise AltinnConfigError("give only one of party, person or unit", field="party")
    if unit is not None and not re.fullmatch(r"\d{9}", unit):
        raise AltinnConfigError("unit must be exactly 9 digits", field="unit")
    params: list[tuple[str, str]] = []
    if after:
        params.append(("after", after))
    if from_ is not None:
        params.append(("from", _time_param(from_, "from_")))
    if to is not None:
        params.append(("to", _time_param(to, "to")))
    if party is not None:
        params.append(("party", str(int(party))))
    if unit:
        params.append(("unit", unit))
    params += [("type", t) for t in _types(types)]
    params.append(("size", str(_size(size))))
    headers = {"Accept": JSON}
    if person:
        headers["person"] = person
    return httpx.Request(
        "GET", f"{settings.events_url}/app/{org}/{app}", params=tuple(params), headers=headers
    )


def parse_events_page(response: httpx.Response, *, after: str, size: int | None = None) -> EventPage:
    """A page of events; ``EventPage.after`` is the last event's id, or the request's ``after`` if empty.

    The ``next`` header is kept for information only: Altinn omits it on an empty page and copies query values
    into it without re-encoding, so the clients rebuild the next request from ``EventPage.after``.

    :param size: the ``size`` the page was asked for: a page with more events is refused, so the work per
        page stays what the caller asked for (Altinn never serves more).
    :raises AltinnPayloadError: the body is not a JSON array of CloudEvents, or has more than ``size``.
    """
    return undecoded_events_page(response, after=after, size=size).decode()


def undecoded_events_page(
    response: httpx.Response, *, after: str, size: int | None = None
) -> UndecodedEventPage:
    """The status of a page checked (an error status raises here, inside the client's retries), its body
    kept undecoded: :meth:`UndecodedEventPage.decode` applies :func:`parse_events_page`'s rules later, where
    the caller wants the work done (ingestion decodes on the task's thread while its fetch thread already
    waits for the next page: docs/guides/ingestion.rst, "Throughput and memory")."""
    _raise_for_status(response)
    return UndecodedEventPage(response.content, after, size, response.headers.get("next"))


class UndecodedEventPage:
    """A page of ``GET /events`` read but not yet decoded: the body, and what it was asked for with.

    :param content: the body as received.
    :param after: the request's ``after`` (the page's cursor when it is empty).
    :param size: the request's ``size``: :meth:`decode` refuses a page with more events.
    :param next_url: the ``next`` header, for information (see :func:`parse_events_page`).
    """

    __slots__ = ("after", "content", "next_url", "size")

    def __init__(
        self, content: bytes, after: str, size: int | None = None, next_url: str | None = None
    ) -> None:
        self.content, self.after, self.size, self.next_url = content, after, size, next_url

    def __repr__(self) -> str:
        return f"UndecodedEventPage(after={self.after!r}, size={self.size!r}, bytes={len(self.content)})"

    def decode(self) -> EventPage:
        """The page, by :func:`parse_events_page`'s rules.

        :raises AltinnPayloadError: the body is not a JSON array of CloudEvents, or has more than ``size``.
        """
        content, after, size = self.content, self.after, self.size
        if content == b"[]":  # what a waiting trigger gets on almost every poll
            return EventPage(events=(), after=after, next_url=self.next_url)
        try:
            items = _decode_json(content) if content.strip() else []
        except ValueError:
            raise AltinnPayloadError("the events response is not JSON") from None
        if not isinstance(items, list):
            raise AltinnPayloadError(f"the events response must be a JSON array, got {type(items).__name__}")
        if size is not None and len(items) > size:
            raise AltinnPayloadError(
                f"the events response has {len(items)} events, more than the {size} asked for (size={size}); "
                "refusing the page (Altinn never serves more than size)"
            )
        events = events_from_decoded(items)
        return EventPage(events=events, after=events[-1].id if events else after, next_url=self.next_url)

    def next_after(self) -> str | None:
        """The ``after`` in the ``next`` header: the id of the page's last event as Altinn wrote it, or ``None``
        (no header: an empty page). Altinn does not re-encode it, so an id with ``&``, ``+`` or ``%`` comes back
        wrong: a hint for guessing the next request, never a cursor (docs/contract.rst, "contract-paging")."""
        if not self.next_url:
            return None
        _, _, query = self.next_url.partition("?")
        for name, value in parse_qsl(query, keep_blank_values=True):
            if name == "after":
                return value or None
        return None

    def outline(self) -> tuple[int, str] | None:
        """``(number of events, id of the last one)`` by a scan that builds no event (a fifth of the cost of
        :meth:`decode`); ``None`` when the body is not a list whose last item has a string ``id``. What
        :meth:`decode` makes of the body is the answer; this is for guessing the next request early."""
        try:
            return _outline(self.content)
        except (ValueError, TypeError, KeyError, IndexError):
            return None


# -- subscriptions ------------------------------------------------------------------------------------------------


def build_create_subscription_request(
    settings: AltinnSettings,
    *,
    endpoint: str,
    resource_filter: str | None = None,
    source_filter: str | None = None,
    subject_filter: str | None = None,
    alternative_subject_filter: str | None = None,
    type_filter: str | None = None,
    include_subunits: bool = False,
) -> httpx.Request:
    """``POST /subscriptions`` with the camelCase body Altinn expects.

    An empty-string filter is refused here: Altinn stores ``""`` and then never matches any event.

    :raises AltinnConfigError: ``endpoint`` is empty, or a filter is an empty string.
    """
    body: dict[str, Any] = {"endPoint": _non_empty(endpoint, "endpoint")}
    for key, name, value in (
        ("resourceFilter", "resource_filter", resource_filter),
        ("sourceFilter", "source_filter", source_filter),
        ("subjectFilter", "subject_filter", subject_filter),
        ("alternativeSubjectFilter", "alternative_subject_filter", alternative_subject_filter),
        ("typeFilter", "type_filter", type_filter),
    ):
        if value is None:
            continue
        if not isinstance(value, str) or not value.strip():
            raise AltinnConfigError(
                f"{name} must be omitted or a non-empty string (Altinn never matches an empty filter)",
                field=name,
            )
        body[key] = value
    if include_subunits:
        body["includeSubunits"] = True
    return httpx.Request(
        "POST",
        f"{settings.events_url}/subscriptions",
        content=_json_body(body, "the subscription"),
        headers={"Content-Type": JSON, "Accept": JSON},
    )


def _subscription_id(subscription_id: int) -> int:
    if isinstance(subscription_id, bool) or not isinstance(subscription_id, int):
        raise AltinnConfigError(
            f"subscription_id must be an integer, got {subscription_id!r}", field="subscription_id"
        )
    return subscription_id


def build_get_subscription_request(settings: AltinnSettings, subscription_id: int) -> httpx.Request:
    """``GET /subscriptions/{id}``."""
    sub_id = _subscription_id(subscription_id)
    return httpx.Request("GET", f"{settings.events_url}/subscriptions/{sub_id}", headers={"Accept": JSON})


def build_list_subscriptions_request(settings: AltinnSettings) -> httpx.Request:
    """``GET /subscriptions``: every subscription the caller's identity created."""
    return httpx.Request("GET", f"{settings.events_url}/subscriptions", headers={"Accept": JSON})


def build_delete_subscription_request(settings: AltinnSettings, subscription_id: int) -> httpx.Request:
    """``DELETE /subscriptions/{id}``."""
    sub_id = _subscription_id(subscription_id)
    return httpx.Request("DELETE", f"{settings.events_url}/subscriptions/{sub_id}", headers={"Accept": JSON})


def parse_subscription_response(response: httpx.Response) -> Subscription:
    """One subscription (201 from create, 200 from get)."""
    _raise_for_status(response)
    return Subscription.from_dict(_json(response, "subscription"))


def parse_subscription_list_response(response: httpx.Response) -> SubscriptionList:
    """``{"count": N, "subscriptions": [...]}``."""
    _raise_for_status(response)
    body = _json(response, "subscription list")
    items = body.get("subscriptions") if isinstance(body, dict) else None
    if not isinstance(items, list):
        raise AltinnPayloadError("the subscription list has no 'subscriptions' array")
    subscriptions = tuple(Subscription.from_dict(item) for item in items)
    count = body.get("count")
    return SubscriptionList(
        count=count if isinstance(count, int) else len(subscriptions), subscriptions=subscriptions
    )


def _json(response: httpx.Response, what: str) -> Any:
    try:
        return response.json()
    except ValueError:
        raise AltinnPayloadError(f"the {what} response is not JSON") from None


def _raise_for_status(response: httpx.Response) -> None:
    if not response.is_success:
        raise error_from_response(response)

from __future__ import annotations

import json
from datetime import datetime, timezone
from email.utils import format_datetime
from typing import Any

import httpx
import pytest
from hypothesis import given
from hypothesis import settings as hyp_settings
from hypothesis import strategies as st

from airflow_provider_altinn_events.client import protocol as p
from airflow_provider_altinn_events.exceptions import (
    AltinnAPIError,
    AltinnBadRequestError,
    AltinnConfigError,
    AltinnForbiddenError,
    AltinnNotFoundError,
    AltinnPayloadError,
    AltinnRateLimitError,
    AltinnServerError,
    AltinnTransportError,
    AltinnUnauthorizedError,
    TokenExchangeError,
    TokenGrantError,
)
from tests.unit.client.helpers import BASE, RESOURCE, event, settings

S = settings(platform_access_token="pat-value")
EVENTS = f"{BASE}/events/api/v1"
FAKE_JWT = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJlLXNpZ25hdHVyZQ"


def respond(request: httpx.Request, status: int, **kwargs: object) -> httpx.Response:
    return httpx.Response(status, request=request, **kwargs)  # type: ignore[arg-type]


# -- requests ---------------------------------------------------------------------------------------------------


def test_list_events_request_shape() -> None:
    request = p.build_list_events_request(
        S, resource=RESOURCE, after="e-1", types=["a.b", "c.d"], subject="/party/1337", size=100
    )
    assert request.method == "GET"
    assert request.url.path == "/events/api/v1/events"
    assert request.url.params.multi_items() == [
        ("resource", RESOURCE),
        ("after", "e-1"),
        ("type", "a.b"),
        ("type", "c.d"),
        ("subject", "/party/1337"),
        ("size", "100"),
    ]
    assert request.headers["Accept"] == "application/cloudevents+json"


def test_list_events_alternative_subject_is_a_header_and_single_type_string_is_one_type() -> None:
    request = p.build_list_events_request(
        S, resource=RESOURCE, alternative_subject="/person/01038712345", types="x.y"
    )
    assert request.headers["Altinn-AlternativeSubject"] == "/person/01038712345"
    assert request.url.params.get_list("type") == ["x.y"]
    assert "subject" not in request.url.params


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"resource": "urn:other:x"}, "resource"),
        ({"resource": ""}, "resource"),
        ({"resource": RESOURCE, "after": ""}, "after"),
        ({"resource": RESOURCE, "size": 0}, "size"),
        ({"resource": RESOURCE, "size": 1001}, "size"),
        ({"resource": RESOURCE, "subject": "a", "alternative_subject": "b"}, "subject"),
        ({"resource": RESOURCE, "types": [""]}, "types"),
    ],
)
def test_list_events_request_validation(kwargs: dict[str, object], field: str) -> None:
    with pytest.raises(AltinnConfigError) as info:
        p.build_list_events_request(S, **kwargs)  # type: ignore[arg-type]
    assert info.value.field == field


def test_publish_request() -> None:
    request = p.build_publish_request(S, {k: v for k, v in event("1").items() if k != "specversion"})
    assert request.method == "POST"
    assert str(request.url) == f"{EVENTS}/events"
    assert request.headers["Content-Type"] == "application/cloudevents+json"
    body = json.loads(request.content)
    assert body["specversion"] == "1.0"
    assert body["id"] == "1"


@pytest.mark.parametrize("missing", ["id", "source", "type", "resource"])
def test_publish_request_requires_attributes(missing: str) -> None:
    body = event("1")
    del body[missing]
    with pytest.raises(AltinnPayloadError, match=missing):
        p.build_publish_request(S, body)


def test_publish_request_refuses_other_specversion_and_unserialisable_data() -> None:
    with pytest.raises(AltinnPayloadError, match="specversion"):
        p.build_publish_request(S, event("1", specversion="0.3"))
    with pytest.raises(AltinnPayloadError, match="JSON"):
        p.build_publish_request(S, event("1", data={"x": object()}))
    with pytest.raises(AltinnPayloadError):
        p.build_publish_request(S, ["not", "a", "mapping"])  # type: ignore[arg-type]


def test_publish_app_event_request_and_response() -> None:
    request = p.build_publish_app_event_request(
        S, {"source": "https://ttd.apps/ttd/app/instances/1/x", "type": "t", "subject": "/party/1"}
    )
    assert str(request.url) == f"{EVENTS}/app"
    assert request.headers["Content-Type"] == "application/json"
    assert p.parse_publish_app_event_response(respond(request, 201, json="new-id")) == "new-id"
    with pytest.raises(AltinnPayloadError):
        p.parse_publish_app_event_response(respond(request, 201, content=b""))
    with pytest.raises(AltinnConfigError) as info:
        p.build_publish_app_event_request(settings(), {"source": "s", "type": "t", "subject": "x"})
    assert info.value.field == "platform_access_token"
    with pytest.raises(AltinnPayloadError, match="subject"):
        p.build_publish_app_event_request(S, {"source": "s", "type": "t"})


def test_list_app_events_request() -> None:
    since = datetime(2024, 1, 2, 3, 4, 5, tzinfo=timezone.utc)
    request = p.build_list_app_events_request(
        S,
        "ttd",
        "app",
        from_=since,
        to="2024-02-01T00:00:00Z",
        party=1337,
        types=["app.instance.created"],
        size=10,
    )
    assert request.url.path == "/events/api/v1/app/ttd/app"
    assert request.url.params["from"] == "2024-01-02T03:04:05+00:00"
    assert request.url.params["party"] == "1337"
    request = p.build_list_app_events_request(S, "ttd", "app", after="x", person="01038712345")
    assert request.headers["person"] == "01038712345"
    assert request.url.params["after"] == "x"


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({}, "after"),
        ({"after": "x", "party": 1, "unit": "991825827"}, "party"),
        ({"after": "x", "unit": "123"}, "unit"),
        ({"from_": datetime(2024, 1, 1)}, "from_"),
    ],
)
def test_list_app_events_validation(kwargs: dict[str, object], field: str) -> None:
    with pytest.raises(AltinnConfigError) as info:
        p.build_list_app_events_request(S, "ttd", "app", **kwargs)  # type: ignore[arg-type]
    assert info.value.field == field


def test_subscription_requests() -> None:
    request = p.build_create_subscription_request(
        S,
        endpoint="https://hook.example/x",
        resource_filter=RESOURCE,
        subject_filter="/party/1",
        type_filter="a.b",
        include_subunits=True,
    )
    assert json.loads(request.content) == {
        "endPoint": "https://hook.example/x",
        "resourceFilter": RESOURCE,
        "subjectFilter": "/party/1",
        "typeFilter": "a.b",
        "includeSubunits": True,
    }
    assert str(p.build_get_subscription_request(S, 7).url) == f"{EVENTS}/subscriptions/7"
    assert p.build_delete_subscription_request(S, 7).method == "DELETE"
    assert str(p.build_list_subscriptions_request(S).url) == f"{EVENTS}/subscriptions"


def test_empty_filter_and_bad_ids_refused() -> None:
    with pytest.raises(AltinnConfigError) as info:
        p.build_create_subscription_request(S, endpoint="https://x", type_filter="")
    assert info.value.field == "type_filter"
    with pytest.raises(AltinnConfigError) as info:
        p.build_create_subscription_request(S, endpoint="")
    assert info.value.field == "endpoint"
    with pytest.raises(AltinnConfigError) as info:
        p.build_get_subscription_request(S, "7")  # type: ignore[arg-type]
    assert info.value.field == "subscription_id"


# -- responses --------------------------------------------------------------------------------------------------


def test_events_page_after_is_last_id_and_next_header_is_informational() -> None:
    request = p.build_list_events_request(S, resource=RESOURCE, after="0")
    page = p.parse_events_page(
        respond(
            request, 200, json=[event("a"), event("b")], headers={"next": "http://x/events?after=b&bad value"}
        ),
        after="0",
    )
    assert [e.id for e in page.events] == ["a", "b"]
    assert page.after == "b"
    assert page.next_url == "http://x/events?after=b&bad value"


def test_empty_page_keeps_the_request_cursor() -> None:
    request = p.build_list_events_request(S, resource=RESOURCE, after="e-9")
    page = p.parse_events_page(respond(request, 200, json=[]), after="e-9")
    assert page.is_empty
    assert page.after == "e-9"
    assert page.next_url is None


@pytest.mark.parametrize("body", [b"{}", b"not json", b'[{"id": "x"}]'])
def test_bad_events_body(body: bytes) -> None:
    request = p.build_list_events_request(S, resource=RESOURCE)
    with pytest.raises(AltinnPayloadError):
        p.parse_events_page(respond(request, 200, content=body), after="0")


@pytest.mark.parametrize(
    ("item", "message"),
    [
        ([1], "must be a JSON object, got list"),
        ({"source": "s", "type": "t"}, "'id' must be a non-empty string"),
        ({"id": "", "source": "s", "type": "t"}, "'id' must be a non-empty string"),
        ({"id": 7, "source": "s", "type": "t"}, "'id' must be a non-empty string"),
        ({"id": "a", "source": None, "type": "t"}, "'source' must be a non-empty string"),
        ({"id": "a", "source": "s"}, "'type' must be a non-empty string"),
    ],
)
def test_every_event_of_a_page_is_checked_as_from_dict_checks_it(item: object, message: str) -> None:
    # the page wraps decoded events without copying them (issue 17); the checks and errors stay from_dict's
    request = p.build_list_events_request(S, resource=RESOURCE)
    body = json.dumps([event("ok"), item]).encode()
    with pytest.raises(AltinnPayloadError, match=message):
        p.parse_events_page(respond(request, 200, content=body), after="0")


def test_a_page_keeps_each_event_exactly_as_sent() -> None:
    request = p.build_list_events_request(S, resource=RESOURCE)
    sent = [{**event("a"), "extension": {"nested": [1, "ø"]}, "data": None}, event("b")]
    page = p.parse_events_page(respond(request, 200, json=sent), after="0")
    assert [e.to_dict() for e in page.events] == sent
    assert page.events[0].get("extension") == {"nested": [1, "ø"]} and "data" in page.events[0]
    assert page.events[0].get("missing", 5) == 5 and "missing" not in page.events[0]


def test_a_cloud_event_stays_read_only_and_copies_whole() -> None:
    import copy
    import pickle

    from airflow_provider_altinn_events.client.models import CloudEvent

    request = p.build_list_events_request(S, resource=RESOURCE)
    for made in (
        p.parse_events_page(respond(request, 200, json=[event("a")]), after="0").events[0],
        CloudEvent.from_dict(event("a")),
    ):
        assert (made.id, made.source) == ("a", event("a")["source"])
        with pytest.raises(AttributeError, match="read-only"):
            made.id = "b"  # type: ignore[misc]
        with pytest.raises(AttributeError):
            made.other = 1  # type: ignore[attr-defined]
        for twin in (pickle.loads(pickle.dumps(made)), copy.deepcopy(made), copy.copy(made)):
            assert twin == made and (twin.id, twin.source) == (made.id, made.source)


def test_subscription_parsing() -> None:
    request = p.build_list_subscriptions_request(S)
    raw = {
        "id": 3,
        "endPoint": "https://x",
        "resourceFilter": RESOURCE,
        "validated": True,
        "consumer": "/org/ttd",
    }
    sub = p.parse_subscription_response(respond(request, 201, json=raw))
    assert (sub.id, sub.endpoint, sub.validated, sub.consumer) == (3, "https://x", True, "/org/ttd")
    listing = p.parse_subscription_list_response(
        respond(request, 200, json={"count": 1, "subscriptions": [raw]})
    )
    assert listing.count == 1 and listing.subscriptions[0].id == 3
    with pytest.raises(AltinnPayloadError):
        p.parse_subscription_list_response(respond(request, 200, json={"count": 0}))


# -- errors -----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "cls", "retryable"),
    [
        (400, AltinnBadRequestError, False),
        (401, AltinnUnauthorizedError, False),
        (403, AltinnForbiddenError, False),
        (404, AltinnNotFoundError, False),
        (409, AltinnAPIError, False),
        (415, AltinnAPIError, False),
        (429, AltinnRateLimitError, True),
        (500, AltinnServerError, True),
        (503, AltinnServerError, True),
    ],
)
def test_status_to_class(status: int, cls: type[AltinnAPIError], retryable: bool) -> None:
    request = p.build_list_subscriptions_request(S)
    error = p.error_from_response(respond(request, status))
    assert type(error) is cls
    assert error.retryable is retryable
    assert error.status_code == status
    assert error.method == "GET"


def test_problem_details_shape() -> None:
    request = p.build_list_events_request(S, resource=RESOURCE, subject="/person/123")
    body = {
        "type": "https://tools.ietf.org/html/rfc9110#section-15.5.1",
        "title": "Bad Request",
        "status": 400,
        "detail": "The 'after' parameter must be defined.",
        "traceId": "00-abc-01",
    }
    error = p.error_from_response(respond(request, 400, json=body))
    assert error.problem.detail == "The 'after' parameter must be defined."
    assert error.request_id == "00-abc-01"
    assert error.url == f"{EVENTS}/events"  # no query string: subjects stay out of messages
    assert "/person/123" not in str(error)
    assert str(error).startswith(f"GET {EVENTS}/events -> 400: The 'after' parameter must be defined.")


def test_validation_problem_details_shape() -> None:
    request = p.build_list_events_request(S, resource=RESOURCE)
    body = {
        "title": "One or more validation errors occurred.",
        "status": 400,
        "errors": {"resource": ["The resource field is required."]},
    }
    error = p.error_from_response(respond(request, 400, json=body))
    assert isinstance(error, AltinnBadRequestError)
    assert error.problem.errors == {"resource": ("The resource field is required.",)}
    assert "resource: The resource field is required." in str(error)


def test_bare_json_string_shape() -> None:
    request = p.build_list_subscriptions_request(S)
    error = p.error_from_response(respond(request, 400, content=b'"Resource filter must be a valid urn"'))
    assert error.problem.detail == "Resource filter must be a valid urn"
    assert "Resource filter must be a valid urn" in str(error)


def test_empty_body_shape_gets_a_helpful_message() -> None:
    request = p.build_list_subscriptions_request(S)
    error = p.error_from_response(respond(request, 403))
    assert error.problem.detail is None
    assert "altinn:events.subscribe" in str(error)
    error = p.error_from_response(respond(request, 401), hint="extra hint")
    assert "token" in str(error) and "extra hint" in str(error)


def test_plain_text_and_html_bodies_are_shortened_and_tokens_redacted() -> None:
    request = p.build_list_subscriptions_request(S)
    error = p.error_from_response(respond(request, 502, text="<html>" + "x" * 2000 + "</html>"))
    assert len(error.problem.detail or "") <= 300
    error = p.error_from_response(respond(request, 400, text=f"bad token {FAKE_JWT}"))
    assert FAKE_JWT not in str(error)
    assert "[redacted]" in str(error)


def test_retry_after_seconds_and_http_date() -> None:
    request = p.build_list_subscriptions_request(S)
    error = p.error_from_response(respond(request, 429, headers={"Retry-After": "7"}))
    assert isinstance(error, AltinnRateLimitError)
    assert error.retry_after == 7.0
    when = datetime(2030, 1, 1, tzinfo=timezone.utc)
    assert p.parse_retry_after(
        format_datetime(when, usegmt=True), now=when.timestamp() - 12
    ) == pytest.approx(12)
    assert p.parse_retry_after("garbage") is None
    assert p.parse_retry_after(None) is None
    error = p.error_from_response(respond(request, 503, headers={"Retry-After": "2"}))
    assert error.retry_after == 2.0


def test_error_from_transport_names_the_step() -> None:
    grant = httpx.Request("POST", S.maskinporten_token_url)
    error = p.error_from_transport(httpx.ConnectError("refused", request=grant), S)
    assert isinstance(error, TokenGrantError) and error.retryable
    exchange = httpx.Request("GET", S.exchange_url)
    error = p.error_from_transport(httpx.ReadTimeout("slow", request=exchange), S)
    assert isinstance(error, TokenExchangeError) and "timed out" in str(error)
    events = httpx.Request("GET", f"{EVENTS}/events?resource=x")
    error = p.error_from_transport(httpx.ConnectError("refused", request=events), S)
    assert isinstance(error, AltinnTransportError)
    assert error.retryable and error.request_sent is False
    assert error.url == f"{EVENTS}/events"
    error = p.error_from_transport(httpx.ReadError("reset", request=events), S)
    assert isinstance(error, AltinnTransportError) and error.request_sent is None
    error = p.error_from_transport(httpx.UnsupportedProtocol("ftp", request=events), S)
    assert not error.retryable


def test_strip_query_and_redact() -> None:
    assert p.strip_query("https://h/p?a=1#f") == "https://h/p"
    assert p.redact(f"x {FAKE_JWT} y") == "x [redacted] y"


# -- the events URL built without a second parse (protocol.with_query, a seam: docs/performance.rst) ----------

_VALUES = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=12)
_QUERIES = st.dictionaries(
    st.sampled_from(["resource", "after", "type", "subject", "size", "a b", "x&y=z", "%"]),
    st.lists(_VALUES, min_size=1, max_size=3),
    max_size=5,
)
_ENDPOINTS = [
    "http://altinn.test/events/api/v1/events",
    "https://platform.tt02.altinn.no:8443/events/api/v1/events",
]


def _flat(query: dict[str, list[str]]) -> tuple[tuple[str, str], ...]:
    return tuple((key, value) for key, values in query.items() for value in values)


@pytest.mark.parametrize("replaceable", [True, False])
@hyp_settings(max_examples=300, deadline=None)
@given(query=_QUERIES, endpoint=st.sampled_from(_ENDPOINTS))
def test_with_query_writes_the_url_httpx_writes(
    replaceable: bool, query: dict[str, list[str]], endpoint: str
) -> None:
    params = _flat(query)
    expected = httpx.Request("GET", endpoint, params=params).url
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(p, "_REPLACEABLE_PARTS", replaceable and p._REPLACEABLE_PARTS)
        url = p.with_query(httpx.URL(endpoint), params)
    assert url == expected
    assert (url.raw_path, url.query, url.host, url.port, url.scheme) == (
        expected.raw_path,
        expected.query,
        expected.host,
        expected.port,
        expected.scheme,
    )
    assert url.params.multi_items() == expected.params.multi_items()


def test_the_url_seam_is_in_use() -> None:
    """Fails if httpx stops keeping a URL's parts in ``_uri_reference`` (a named tuple with ``query``): the
    builder then parses every events URL again (slower, same URL); look at docs/performance.rst, "seams"."""
    assert p._REPLACEABLE_PARTS is True


def test_the_events_endpoint_is_parsed_once_per_platform_url() -> None:
    first = p.build_list_events_request(S, resource=RESOURCE, after="1")
    second = p.build_list_events_request(S, resource=RESOURCE + "-other", after="2")
    assert first.url.copy_with(query=None) == second.url.copy_with(query=None)
    assert p._endpoint(f"{S.events_url}/events") is p._endpoint(f"{S.events_url}/events")


# -- the events request built without httpx's defaults pass (protocol.build_list_events_request) -------------

_QUERY_TEXT = st.text(alphabet=st.sampled_from("az09_.~-:/ +%&=?#éø\u2603\x00"), max_size=10)


@hyp_settings(max_examples=300, deadline=None)
@given(value=st.one_of(_QUERY_TEXT, _VALUES))
def test_query_values_are_encoded_as_urlencode_encodes_them(value: str) -> None:
    """The shortcuts for digits, ids and URNs write what ``urlencode`` (httpx's ``params``) writes."""
    from urllib.parse import urlencode

    assert p._urlencode([("k", value), (value, "v")]) == urlencode([("k", value), (value, "v")])


def test_query_values_that_are_not_strings_are_encoded_as_urlencode_encodes_them() -> None:
    """``with_query`` is public: an int or bytes value is written as ``urlencode`` writes it, as before."""
    from urllib.parse import urlencode

    pairs: Any = [("size", 5), ("b", b"x y:z"), ("c", "urn:a b")]
    url = p.with_query(httpx.URL(_ENDPOINTS[0]), pairs)
    assert url.query.decode() == urlencode(pairs) == "size=5&b=x+y%3Az&c=urn%3Aa+b"


@hyp_settings(max_examples=200, deadline=None)
@given(
    suffix=_QUERY_TEXT.filter(str.strip),
    after=_QUERY_TEXT.filter(str.strip),
    types=st.none() | st.lists(_QUERY_TEXT.filter(str.strip), max_size=2),
    subject=st.none() | _QUERY_TEXT,
    alternative_subject=st.none() | _QUERY_TEXT,
    size=st.integers(min_value=1, max_value=1000),
)
def test_the_events_request_is_the_one_httpx_builds(
    suffix: str,
    after: str,
    types: list[str] | None,
    subject: str | None,
    alternative_subject: str | None,
    size: int,
) -> None:
    """Built without httpx's URL parse and defaults pass, the request is the one ``httpx.Request(params=...)``
    builds: the same URL, the same headers in the same order, an empty body already read; a header value httpx
    cannot encode fails as it fails in httpx."""
    resource = RESOURCE + suffix
    if subject and alternative_subject:
        alternative_subject = None
    params = [("resource", resource), ("after", after)]
    params += [("type", t) for t in types or ()]
    params += [("subject", subject)] if subject else []
    params += [("size", str(size))]
    headers = {"Accept": p.CLOUDEVENTS_JSON}
    if alternative_subject:
        headers["Altinn-AlternativeSubject"] = alternative_subject
    kwargs = dict(types=types, subject=subject, alternative_subject=alternative_subject, size=size)
    try:
        expected = httpx.Request("GET", f"{S.events_url}/events", params=params, headers=headers)
    except UnicodeEncodeError:
        with pytest.raises(UnicodeEncodeError):
            p.build_list_events_request(S, resource=resource, after=after, **kwargs)  # type: ignore[arg-type]
        return
    request = p.build_list_events_request(S, resource=resource, after=after, **kwargs)  # type: ignore[arg-type]
    assert (request.method, str(request.url), request.url.raw_path) == (
        expected.method,
        str(expected.url),
        expected.url.raw_path,
    )
    assert request.headers.raw == expected.headers.raw
    assert request.content == expected.content == b""
    assert type(request.stream) is type(expected.stream)
    assert set(vars(request)) == set(vars(expected))
    query = request.extensions.pop(p.QUERY_EXTENSION)
    assert request.extensions == expected.extensions
    # the pairs the fast path hands to aiohttp: those the URL was encoded from, for this very URL
    assert query.url is request.url
    assert list(query.params) == params
    assert query.base == str(expected.url.copy_with(query=None))


def test_a_request_does_not_share_its_headers_with_the_next() -> None:
    """Every request copies the endpoint's headers: the token put on one is not on the next."""
    first = p.build_list_events_request(S, resource=RESOURCE, after="1")
    first.headers["Authorization"] = "Bearer one"
    second = p.build_list_events_request(S, resource=RESOURCE, after="2")
    assert "Authorization" not in second.headers
    assert second.headers.raw == [(b"Host", b"altinn.test"), (b"Accept", p.CLOUDEVENTS_JSON.encode())]

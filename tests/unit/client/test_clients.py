"""The two shells, tested as mirrored pairs over ``httpx.MockTransport`` (client core only)."""

from __future__ import annotations

import asyncio
import inspect
import json
import logging
import time
from collections.abc import Callable

import httpx
import pytest

from airflow_provider_altinn_events.client import clients as clients_module
from airflow_provider_altinn_events.client.clients import AltinnEventsClient, AsyncAltinnEventsClient
from airflow_provider_altinn_events.client.retry import RetryPolicy
from airflow_provider_altinn_events.exceptions import (
    AltinnBadRequestError,
    AltinnNotFoundError,
    AltinnPayloadError,
    AltinnServerError,
    AltinnTransportError,
    AltinnUnauthorizedError,
)
from tests.unit.client.helpers import RESOURCE, FakeAltinn, event, pem, rsa_key, settings

FAST = RetryPolicy(max_attempts=5, backoff_base_seconds=0.001, backoff_max_seconds=0.01, budget_seconds=5)
Handler = Callable[[httpx.Request], httpx.Response]


class Store:
    """Events by resource, served by after-cursor like GET /events; every call recorded."""

    def __init__(self, count: int) -> None:
        self.events = [event(f"e{i}") for i in range(1, count + 1)]
        self.calls: list[httpx.Request] = []
        self.faults: list[httpx.Response] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.calls.append(request)
        if self.faults:
            return self.faults.pop(0)
        path = request.url.path
        if path.endswith("/events") and request.method == "GET":
            after = request.url.params["after"]
            size = int(request.url.params["size"])
            ids = [e["id"] for e in self.events]
            start = ids.index(after) + 1 if after in ids else 0
            page = self.events[start : start + size]
            headers = {"next": f"http://wrong.example/?after={page[-1]['id']}"} if page else {}
            return httpx.Response(200, json=page, headers=headers)
        if path.endswith("/events") and request.method == "POST":
            return httpx.Response(200)
        if path.endswith("/app") and request.method == "POST":
            return httpx.Response(201, json="new-app-event-id")
        if "/app/" in path:
            return httpx.Response(200, json=self.events)
        if path.endswith("/subscriptions") and request.method == "POST":
            body = json.loads(request.content)
            return httpx.Response(201, json={"id": 5, **body})
        if path.endswith("/subscriptions/5") and request.method == "GET":
            return httpx.Response(200, json={"id": 5, "endPoint": "https://x"})
        if path.endswith("/subscriptions/5") and request.method == "DELETE":
            return httpx.Response(200)
        if path.endswith("/subscriptions"):
            return httpx.Response(
                200, json={"count": 1, "subscriptions": [{"id": 5, "endPoint": "https://x"}]}
            )
        return httpx.Response(404)


def make(store: Store) -> tuple[FakeAltinn, httpx.MockTransport]:
    fake = FakeAltinn(events_handler=store)
    return fake, fake.transport()


def test_the_shells_are_mirror_images() -> None:
    def public(cls: type) -> list[str]:
        return [n for n, _ in inspect.getmembers(cls, callable) if not n.startswith("_")]

    sync_names = [n for n in public(AltinnEventsClient) if n != "close"]
    async_names = [n for n in public(AsyncAltinnEventsClient) if n != "aclose"]
    assert sync_names == async_names
    expected = [
        "publish", "publish_app_event", "list_events", "iter_pages", "iter_events", "list_app_events",
        "create_subscription", "get_subscription", "list_subscriptions", "delete_subscription",
    ]  # fmt: skip
    assert set(expected) <= set(sync_names)
    source = inspect.getsource(clients_module)
    sync_order = [source.index(f"    def {n}(", source.index("class AltinnEventsClient")) for n in expected]
    async_order = [
        source.index(f"    async def {n}(", source.index("class AsyncAltinnEventsClient")) for n in expected
    ]
    assert sync_order == sorted(sync_order) and async_order == sorted(async_order)
    for name in expected:
        assert inspect.signature(getattr(AltinnEventsClient, name)).parameters.keys() == (
            inspect.signature(getattr(AsyncAltinnEventsClient, name)).parameters.keys()
        )


def test_every_public_method_documents_what_it_raises() -> None:
    for cls in (AltinnEventsClient, AsyncAltinnEventsClient):
        for name, member in inspect.getmembers(cls, callable):
            if not name.startswith("_") and name not in ("close", "aclose"):
                assert ":raises" in (member.__doc__ or ""), f"{cls.__name__}.{name}"


# -- sync / async pairs -------------------------------------------------------------------------------------------


def test_iter_pages_follows_last_id_and_stops_before_the_empty_page() -> None:
    store = Store(7)
    _, transport = make(store)
    with AltinnEventsClient(settings(), transport=transport, retry=FAST) as client:
        pages = list(client.iter_pages(resource=RESOURCE, size=3))
    assert [[e.id for e in p.events] for p in pages] == [["e1", "e2", "e3"], ["e4", "e5", "e6"], ["e7"]]
    afters = [c.url.params["after"] for c in store.calls]
    assert afters == ["0", "e3", "e6", "e7"]  # rebuilt from the last id, not from the (wrong) next header
    assert all(c.url.host == "altinn.test" for c in store.calls)


async def test_iter_pages_follows_last_id_and_stops_before_the_empty_page_async() -> None:
    store = Store(7)
    _, transport = make(store)
    async with AsyncAltinnEventsClient(settings(), transport=transport, retry=FAST) as client:
        pages = [p async for p in client.iter_pages(resource=RESOURCE, size=3)]
    assert [[e.id for e in p.events] for p in pages] == [["e1", "e2", "e3"], ["e4", "e5", "e6"], ["e7"]]
    assert [c.url.params["after"] for c in store.calls] == ["0", "e3", "e6", "e7"]


def test_list_events_undecoded_retries_and_raises_status_errors_and_leaves_the_body_to_decode() -> None:
    store = Store(3)
    store.faults = [httpx.Response(503), httpx.Response(200, content=b"[{not json")]
    _, transport = make(store)
    with AltinnEventsClient(settings(), transport=transport, retry=FAST) as client:
        bad = client.list_events_undecoded(
            resource=RESOURCE, size=2
        )  # the 503 retried; the body not read yet
        with pytest.raises(AltinnPayloadError, match="not JSON"):
            bad.decode()
        page = client.list_events_undecoded(resource=RESOURCE, size=2)
        assert page.outline() == (2, "e2")
        assert page.decode() == client.list_events(resource=RESOURCE, size=2)
        store.faults = [httpx.Response(404)]
        with pytest.raises(AltinnNotFoundError):
            client.list_events_undecoded(resource=RESOURCE)
    assert len(store.calls) == 5


async def test_list_events_undecoded_retries_and_raises_status_errors_and_leaves_the_body_to_decode_async() -> (
    None
):
    store = Store(3)
    store.faults = [httpx.Response(503), httpx.Response(200, content=b"[{not json")]
    _, transport = make(store)
    async with AsyncAltinnEventsClient(settings(), transport=transport, retry=FAST) as client:
        bad = await client.list_events_undecoded(resource=RESOURCE, size=2)
        with pytest.raises(AltinnPayloadError, match="not JSON"):
            bad.decode()
        page = await client.list_events_undecoded(resource=RESOURCE, size=2)
        assert page.outline() == (2, "e2")
        assert page.decode() == await client.list_events(resource=RESOURCE, size=2)
        store.faults = [httpx.Response(404)]
        with pytest.raises(AltinnNotFoundError):
            await client.list_events_undecoded(resource=RESOURCE)
    assert len(store.calls) == 5


def test_iter_events_and_max_pages() -> None:
    store = Store(5)
    _, transport = make(store)
    with AltinnEventsClient(settings(), transport=transport) as client:
        assert [e.id for e in client.iter_events(resource=RESOURCE, after="e1", size=2)] == [
            "e2",
            "e3",
            "e4",
            "e5",
        ]
        assert len(list(client.iter_pages(resource=RESOURCE, size=1, max_pages=2))) == 2


async def test_iter_events_and_max_pages_async() -> None:
    store = Store(5)
    _, transport = make(store)
    async with AsyncAltinnEventsClient(settings(), transport=transport) as client:
        assert [e.id async for e in client.iter_events(resource=RESOURCE, after="e1", size=2)] == [
            "e2",
            "e3",
            "e4",
            "e5",
        ]
        assert len([p async for p in client.iter_pages(resource=RESOURCE, size=1, max_pages=2)]) == 2


class SharedIds:
    """GET /events over a log where two sources published the id ``x``, and the page ends on the second:
    like Altinn (docs/contract.rst, "contract-paging"), ``after=<id>`` resumes after the *first* event with that id."""

    def __init__(self) -> None:
        self.events = [
            event("x", source="https://a.example/1"),
            event("p"),
            event("x", source="https://b.example/2"),
        ]
        self.afters: list[str] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        after = request.url.params["after"]
        self.afters.append(after)
        size = int(request.url.params["size"])
        start = next((i + 1 for i, e in enumerate(self.events) if e["id"] == after), 0)
        return httpx.Response(200, json=self.events[start : start + size])


def test_iter_events_yields_events_that_share_an_id_once_each_and_ends() -> None:
    # before: the second "x" ended the page, after=x served "p" and "x" again, and iter_pages raised
    # AltinnPayloadError ("the cursor did not advance") on every run
    log = SharedIds()
    with AltinnEventsClient(settings(), transport=FakeAltinn(events_handler=log).transport()) as client:
        got = [(e.id, e.source) for e in client.iter_events(resource=RESOURCE, after="0", size=3)]
    assert got == [(e["id"], e["source"]) for e in log.events]
    assert log.afters == ["0", "p"]  # resumes at "p" (its own id), finds only the second "x" again: done


async def test_iter_events_yields_events_that_share_an_id_once_each_and_ends_async() -> None:
    log = SharedIds()
    transport = FakeAltinn(events_handler=log).transport()
    async with AsyncAltinnEventsClient(settings(), transport=transport) as client:
        got = [(e.id, e.source) async for e in client.iter_events(resource=RESOURCE, after="0", size=3)]
    assert got == [(e["id"], e["source"]) for e in log.events]
    assert log.afters == ["0", "p"]


def test_a_page_that_serves_only_known_events_ends_the_walk() -> None:
    # a service that answers every cursor with the same event: one yield, then caught up (not an error)
    calls: list[str] = []

    def stuck(request: httpx.Request) -> httpx.Response:
        calls.append(request.url.params["after"])
        return httpx.Response(200, json=[event("same")])

    fake = FakeAltinn(events_handler=stuck)
    with AltinnEventsClient(settings(), transport=fake.transport()) as client:
        assert [e.id for e in client.iter_events(resource=RESOURCE, after="0")] == ["same"]
    assert calls == ["0", "same"]


def test_503_burst_then_success() -> None:
    store = Store(1)
    store.faults = [httpx.Response(503), httpx.Response(503), httpx.Response(502)]
    _, transport = make(store)
    with AltinnEventsClient(settings(), transport=transport, retry=FAST) as client:
        assert [e.id for e in client.list_events(resource=RESOURCE).events] == ["e1"]
    assert len(store.calls) == 4


async def test_503_burst_then_success_async() -> None:
    store = Store(1)
    store.faults = [httpx.Response(503), httpx.Response(503), httpx.Response(502)]
    _, transport = make(store)
    async with AsyncAltinnEventsClient(settings(), transport=transport, retry=FAST) as client:
        assert [e.id for e in (await client.list_events(resource=RESOURCE)).events] == ["e1"]
    assert len(store.calls) == 4


def test_429_retry_after_is_honoured(monkeypatch: pytest.MonkeyPatch) -> None:
    slept: list[float] = []
    monkeypatch.setattr(time, "sleep", slept.append)
    store = Store(1)
    store.faults = [httpx.Response(429, headers={"Retry-After": "2"})]
    _, transport = make(store)
    with AltinnEventsClient(settings(), transport=transport, retry=FAST) as client:
        client.list_events(resource=RESOURCE)
    assert slept == [2.0]


async def test_429_retry_after_is_honoured_async(monkeypatch: pytest.MonkeyPatch) -> None:
    slept: list[float] = []
    real_sleep = asyncio.sleep
    test_loop = asyncio.get_running_loop()

    async def fake_sleep(seconds: float) -> None:
        # Other event loops in this process (an emulator server thread left by another test) keep real sleeps.
        if asyncio.get_running_loop() is not test_loop:
            await real_sleep(seconds)
            return
        slept.append(seconds)

    monkeypatch.setattr(asyncio, "sleep", fake_sleep)
    store = Store(1)
    store.faults = [httpx.Response(429, headers={"Retry-After": "2"})]
    _, transport = make(store)
    async with AsyncAltinnEventsClient(settings(), transport=transport, retry=FAST) as client:
        await client.list_events(resource=RESOURCE)
    assert slept == [2.0]


def test_budget_exhausted_raises_retryable_error_naming_last_status(caplog: pytest.LogCaptureFixture) -> None:
    store = Store(0)
    store.faults = [httpx.Response(503)] * 3 + [httpx.Response(500)] * 10
    _, transport = make(store)
    policy = RetryPolicy(max_attempts=4, backoff_base_seconds=0.001)
    with (
        AltinnEventsClient(settings(), transport=transport, retry=policy) as client,
        caplog.at_level(logging.WARNING),
        pytest.raises(AltinnServerError) as info,
    ):
        client.list_events(resource=RESOURCE)
    error = info.value
    assert error.retryable and error.status_code == 500 and error.attempts == 4
    assert "-> 500" in str(error) and "4 attempts" in str(error)
    assert "giving up" in caplog.text


async def test_budget_exhausted_raises_retryable_error_naming_last_status_async() -> None:
    store = Store(0)
    store.faults = [httpx.Response(503)] * 10
    _, transport = make(store)
    policy = RetryPolicy(max_attempts=3, backoff_base_seconds=0.001)
    async with AsyncAltinnEventsClient(settings(), transport=transport, retry=policy) as client:
        with pytest.raises(AltinnServerError) as info:
            await client.list_events(resource=RESOURCE)
    assert info.value.retryable and info.value.status_code == 503 and info.value.attempts == 3


def test_other_4xx_are_not_retried() -> None:
    store = Store(0)
    store.faults = [httpx.Response(400, json={"detail": "The 'after' parameter must be defined."})]
    _, transport = make(store)
    with (
        AltinnEventsClient(settings(), transport=transport, retry=FAST) as client,
        pytest.raises(AltinnBadRequestError, match="after"),
    ):
        client.list_events(resource=RESOURCE)
    assert len(store.calls) == 1


def test_transport_errors_are_retried_then_raised() -> None:
    calls = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        raise httpx.ConnectError("refused", request=request)

    s = settings(auth="altinn_token", password="tok", login=None)
    with (
        AltinnEventsClient(s, transport=httpx.MockTransport(handler), retry=FAST) as client,
        pytest.raises(AltinnTransportError) as info,
    ):
        client.list_subscriptions()
    assert len(calls) == 5 and info.value.attempts == 5 and info.value.__cause__ is not None


async def test_transport_errors_are_retried_then_raised_async() -> None:
    calls = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        raise httpx.ReadTimeout("slow", request=request)

    s = settings(auth="altinn_token", password="tok", login=None)
    async with AsyncAltinnEventsClient(s, transport=httpx.MockTransport(handler), retry=FAST) as client:
        with pytest.raises(AltinnTransportError, match="timed out"):
            await client.list_subscriptions()
    assert len(calls) == 5


def test_publish_app_event_is_not_retried_on_500() -> None:
    store = Store(0)
    store.faults = [httpx.Response(500, json="Unable to register cloud event.")]
    _, transport = make(store)
    s = settings(platform_access_token="pat")
    with AltinnEventsClient(s, transport=transport, retry=FAST) as client, pytest.raises(AltinnServerError):
        client.publish_app_event(
            {"source": "https://x/ttd/app/instances/1/2", "type": "t", "subject": "/party/1"}
        )
    assert len(store.calls) == 1


def test_every_endpoint_sync() -> None:
    store = Store(2)
    _, transport = make(store)
    with AltinnEventsClient(settings(platform_access_token="pat"), transport=transport) as client:
        client.publish(event("x"))
        assert (
            client.publish_app_event({"source": "https://x/a", "type": "t", "subject": "/party/1"})
            == "new-app-event-id"
        )
        assert client.list_app_events("ttd", "app", after="0").after == "e2"
        sub = client.create_subscription(endpoint="https://x", resource_filter=RESOURCE)
        assert sub.id == 5 and sub.resource_filter == RESOURCE
        assert client.get_subscription(5).endpoint == "https://x"
        assert client.list_subscriptions().count == 1
        client.delete_subscription(5)
        with pytest.raises(AltinnNotFoundError):
            client.get_subscription(6)
        assert "altinn_test" in repr(client)


async def test_every_endpoint_async() -> None:
    store = Store(2)
    _, transport = make(store)
    async with AsyncAltinnEventsClient(settings(platform_access_token="pat"), transport=transport) as client:
        await client.publish(event("x"))
        assert (
            await client.publish_app_event({"source": "https://x/a", "type": "t", "subject": "/party/1"})
            == "new-app-event-id"
        )
        assert (await client.list_app_events("ttd", "app", after="0")).after == "e2"
        sub = await client.create_subscription(endpoint="https://x", resource_filter=RESOURCE)
        assert sub.id == 5
        assert (await client.get_subscription(5)).endpoint == "https://x"
        assert (await client.list_subscriptions()).count == 1
        await client.delete_subscription(5)
        with pytest.raises(AltinnNotFoundError):
            await client.get_subscription(6)


def test_settings_type_is_checked() -> None:
    with pytest.raises(TypeError):
        AltinnEventsClient({"host": "x"})  # type: ignore[arg-type]


@pytest.mark.usefixtures("aiohttp_path")
async def test_async_client_defaults_to_the_aiohttp_transport() -> None:
    from httpx_aiohttp import AiohttpTransport

    from airflow_provider_altinn_events.client.transport import AltinnAiohttpTransport

    client = AsyncAltinnEventsClient(settings())
    try:
        transport = client._http._transport
        assert isinstance(transport, AltinnAiohttpTransport) and isinstance(transport, AiohttpTransport)
        assert transport.limits.max_connections == clients_module.MAX_CONNECTIONS
    finally:
        await client.aclose()


class Refusing:
    """GET /events that answers 200 until ``refuse`` is set, then 401 whatever the token."""

    def __init__(self) -> None:
        self.refuse = False
        self.calls = 0

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.calls += 1
        return httpx.Response(401 if self.refuse else 200, json=[])


async def test_fast_path_a_second_401_after_one_refresh_is_raised_async() -> None:
    events = Refusing()
    fake = FakeAltinn(events_handler=events)
    async with AsyncAltinnEventsClient(settings(), transport=fake.transport(), retry=FAST) as client:
        await client.list_events(
            resource=RESOURCE
        )  # a fresh token is cached: the next call takes the fast path
        assert (fake.grants, fake.exchanges) == (1, 1)
        events.refuse = True
        with pytest.raises(AltinnUnauthorizedError):
            await client.list_events(resource=RESOURCE)
    assert (fake.grants, fake.exchanges) == (2, 2)  # exactly one refresh, no loop
    assert events.calls == 3  # the good call, the refused one, the one retry with the new token


async def test_fast_path_401_with_a_static_token_is_final_async() -> None:
    events = Refusing()
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return events(request)

    s = settings(auth="altinn_token", password="static-token", login=None)
    async with AsyncAltinnEventsClient(s, transport=httpx.MockTransport(handler), retry=FAST) as client:
        await client.list_events(resource=RESOURCE)
        events.refuse = True
        with pytest.raises(AltinnUnauthorizedError):
            await client.list_events(resource=RESOURCE)
    assert [r.url.path for r in seen] == ["/events/api/v1/events"] * 2  # no grant, no exchange, no second try
    assert all(r.headers["Authorization"] == "Bearer static-token" for r in seen)


@pytest.mark.usefixtures("aiohttp_path")
async def test_fast_path_transport_error_names_the_url_async() -> None:
    fake = FakeAltinn()
    broken = {"now": False}

    def handler(request: httpx.Request) -> httpx.Response:
        if broken["now"] and request.url.path.endswith("/events"):
            raise httpx.ConnectError("refused")
        return fake.handle(request)

    async with AsyncAltinnEventsClient(
        settings(), transport=httpx.MockTransport(handler), retry=FAST
    ) as client:
        await client.list_events(resource=RESOURCE)
        broken["now"] = True
        with pytest.raises(AltinnTransportError) as info:
            await client.list_events(resource=RESOURCE)
    assert "/events/api/v1/events" in str(info.value)
    assert "urn:altinn" not in str(info.value)  # the query (filters, cursor) is left out


async def test_a_closed_async_client_refuses_to_send() -> None:
    fake = FakeAltinn()
    client = AsyncAltinnEventsClient(settings(), transport=fake.transport(), retry=FAST)
    await client.list_events(resource=RESOURCE)
    await client.aclose()
    with pytest.raises(RuntimeError, match="closed"):
        await client.list_events(resource=RESOURCE)


def test_secrets_never_reach_logs_or_errors(caplog: pytest.LogCaptureFixture) -> None:
    key_pem = pem(rsa_key())
    fake = FakeAltinn()
    s = settings(password=key_pem, platform_access_token="pat-secret-value", private_key_passphrase=None)
    texts: list[str] = []
    with (
        caplog.at_level(logging.DEBUG),
        AltinnEventsClient(s, transport=fake.transport(), retry=FAST) as client,
    ):
        client.list_events(resource=RESOURCE)
        fake.revoked.add(fake.tokens[0])
        client.list_events(resource=RESOURCE)
        fake.events_handler = lambda request: httpx.Response(403)
        try:
            client.list_events(resource=RESOURCE)
        except Exception as error:
            texts += [str(error), repr(error)]
        texts += [repr(client), repr(s), repr(client.auth)]
    texts.append(caplog.text)
    secrets = [*fake.tokens, *fake.assertions, *(f"mp-token-{i}" for i in range(1, 5)), "pat-secret-value"]
    secrets += [line for line in key_pem.splitlines() if "-----" not in line]
    for text in texts:
        for secret in secrets:
            assert secret not in text

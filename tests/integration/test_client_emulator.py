"""The real clients against the emulator over real HTTP: grant, exchange, calls, token reuse, refresh,
key formats, clear errors, retries, and no secret in any log line or exception text."""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import threading
import time
import urllib.parse
import uuid
from collections.abc import Callable, Iterator
from types import SimpleNamespace
from typing import Any

import httpx
import jwt
import pytest

from airflow_provider_altinn_events.client import tokens as tokens_module
from airflow_provider_altinn_events.client.clients import (
    MAX_CONNECTIONS,
    AltinnEventsClient,
    AsyncAltinnEventsClient,
)
from airflow_provider_altinn_events.client.retry import RetryPolicy
from airflow_provider_altinn_events.client.settings import AltinnSettings
from airflow_provider_altinn_events.emulator.handle import (
    EmulatorHandle,
    generate_private_key_pem,
    load_private_key,
)
from airflow_provider_altinn_events.exceptions import (
    AltinnConfigError,
    AltinnForbiddenError,
    AltinnServerError,
    AltinnUnauthorizedError,
    TokenExchangeError,
    TokenGrantError,
)
from tests.unit.client.helpers import cert_pem, certificate, pem, pkcs12_b64, private_jwk

pytestmark = pytest.mark.integration

RESOURCE = "urn:altinn:resource:ttd-altinn-events-automated-tests"
GET_EVENTS = "GET /events/api/v1/events"
FAST = RetryPolicy(max_attempts=6, backoff_base_seconds=0.01, backoff_max_seconds=0.05, budget_seconds=20)


def settings_for(handle: EmulatorHandle, *, password: str | None = None, **extra: Any) -> AltinnSettings:
    conn = handle.connection_dict(**extra)
    return AltinnSettings.from_connection(
        SimpleNamespace(
            conn_id="emulator",
            host=conn["host"],
            login=conn["login"],
            password=conn["password"] if password is None else password,
            extra_dejson=conn["extra"],
        )
    )


def event(**fields: Any) -> dict[str, Any]:
    return {
        "specversion": "1.0",
        "id": str(uuid.uuid4()),
        "source": "https://github.com/Altinn/altinn-events/tree/main/test/k6",
        "type": "automatedtest.triggered",
        "subject": "/autotest/k6",
        "resource": RESOURCE,
        **fields,
    }


def token_counts(handle: EmulatorHandle) -> tuple[int, int]:
    stats = handle.stats()
    return stats["token_grants"], stats["token_exchanges"]


# -- the happy path, sync and async --------------------------------------------------------------------------------


def test_grant_exchange_and_every_call_sync(altinn_emulator: EmulatorHandle) -> None:
    generated = altinn_emulator.generate(RESOURCE, 5)
    with AltinnEventsClient(settings_for(altinn_emulator), retry=FAST) as client:
        first = client.list_events(resource=RESOURCE, size=2)
        assert first.events[0].id == generated["first_id"] and first.after == first.events[-1].id
        ids = [e.id for e in client.iter_events(resource=RESOURCE, size=2)]
        assert len(ids) == 5 and ids[-1] == generated["last_id"]
        mine = event()
        client.publish(mine)
        page = client.list_events(resource=RESOURCE, after=generated["last_id"])
        assert [e.id for e in page.events] == [mine["id"]]
        empty = client.list_events(resource=RESOURCE, after=mine["id"])
        assert empty.is_empty and empty.after == mine["id"]
        sub = client.create_subscription(endpoint="http://127.0.0.1:9/hook", resource_filter=RESOURCE)
        assert client.get_subscription(sub.id).resource_filter == RESOURCE
        assert [s.id for s in client.list_subscriptions().subscriptions] == [sub.id]
        client.delete_subscription(sub.id)
        assert client.list_subscriptions().count == 0
    assert token_counts(altinn_emulator) == (1, 1)


@pytest.mark.usefixtures("aiohttp_path")
async def test_grant_exchange_and_every_call_async(altinn_emulator: EmulatorHandle) -> None:
    generated = altinn_emulator.generate(RESOURCE, 5)
    async with AsyncAltinnEventsClient(settings_for(altinn_emulator), retry=FAST) as client:
        ids = [e.id async for e in client.iter_events(resource=RESOURCE, size=2)]
        assert len(ids) == 5 and ids[-1] == generated["last_id"]
        mine = event()
        await client.publish(mine)
        page = await client.list_events(resource=RESOURCE, after=generated["last_id"])
        assert [e.id for e in page.events] == [mine["id"]]
        sub = await client.create_subscription(endpoint="http://127.0.0.1:9/hook", resource_filter=RESOURCE)
        assert (await client.get_subscription(sub.id)).id == sub.id
        assert (await client.list_subscriptions()).count == 1
        await client.delete_subscription(sub.id)
    assert token_counts(altinn_emulator) == (1, 1)


def test_app_events_with_platform_access_token(altinn_emulator: EmulatorHandle) -> None:
    pat = altinn_emulator.platform_access_token("ttd", "apps-test")
    s = settings_for(
        altinn_emulator, platform_access_token=pat, scopes="altinn:events.subscribe altinn:serviceowner"
    )
    source = "https://ttd.apps.altinn.no/ttd/apps-test/instances/1337/6fb3f738-6800-4f29-9f3e-1c66862656cd"
    with AltinnEventsClient(s, retry=FAST) as client:
        new_id = client.publish_app_event(
            {"source": source, "type": "app.instance.created", "subject": "/party/1337"}
        )
        page = client.list_app_events("ttd", "apps-test", after="0")
    assert [e.id for e in page.events] == [new_id]


# -- token reuse --------------------------------------------------------------------------------------------------


def test_two_hundred_calls_across_twenty_threads_use_one_grant_and_one_exchange(
    altinn_emulator: EmulatorHandle,
) -> None:
    barrier = threading.Barrier(20)
    failures: list[BaseException] = []
    with AltinnEventsClient(settings_for(altinn_emulator), retry=FAST) as client:

        def work() -> None:
            try:
                barrier.wait()
                for _ in range(10):
                    client.list_events(resource=RESOURCE)
            except BaseException as error:  # pragma: no cover - reported below
                failures.append(error)

        threads = [threading.Thread(target=work) for _ in range(20)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert not failures
    stats = altinn_emulator.stats()
    assert (stats["token_grants"], stats["token_exchanges"]) == (1, 1)
    assert stats["requests"][GET_EVENTS] == 200


@pytest.mark.usefixtures("aiohttp_path")
async def test_two_hundred_concurrent_coroutines_use_one_grant_and_one_exchange(
    altinn_emulator: EmulatorHandle,
) -> None:
    async with AsyncAltinnEventsClient(settings_for(altinn_emulator), retry=FAST) as client:
        pages = await asyncio.gather(*(client.list_events(resource=RESOURCE) for _ in range(200)))
    assert len(pages) == 200
    stats = altinn_emulator.stats()
    assert (stats["token_grants"], stats["token_exchanges"]) == (1, 1)
    assert stats["requests"][GET_EVENTS] == 200


@pytest.mark.usefixtures("aiohttp_path")
async def test_a_burst_of_requests_shares_a_bounded_pool_of_connections(
    altinn_emulator: EmulatorHandle,
) -> None:
    """A triggerer's polls arrive in ticks; the shared client must carry a tick of hundreds of requests on at
    most MAX_CONNECTIONS connections (each kept alive costs memory) and still answer every one of them."""
    import psutil

    port = urllib.parse.urlsplit(altinn_emulator.base_url).port
    process = psutil.Process()
    most = 0
    done = asyncio.Event()

    def established() -> int:
        return sum(
            1
            for c in process.net_connections(kind="tcp")
            if c.raddr and c.raddr.port == port and c.status == psutil.CONN_ESTABLISHED
        )

    async def count_connections() -> None:
        nonlocal most
        while not done.is_set():
            most = max(most, established())
            await asyncio.sleep(0.005)

    async with AsyncAltinnEventsClient(settings_for(altinn_emulator), retry=FAST) as client:
        await client.list_events(resource=RESOURCE)  # the token first: its requests are not the burst's
        # the token flow keeps its own connection to this host (Maskinporten and the exchange are emulated here)
        others = established() - 1
        sampler = asyncio.create_task(count_connections())
        try:
            pages = await asyncio.gather(
                *(client.list_events(resource=f"{RESOURCE}-{i}") for i in range(300))
            )
        finally:
            done.set()
            await sampler
    assert len(pages) == 300
    assert altinn_emulator.stats()["requests"][GET_EVENTS] == 301
    assert 2 <= most - others <= MAX_CONNECTIONS  # concurrent (more than one), and bounded


def test_short_token_lifetime_leads_to_exactly_one_refresh(
    altinn_emulator_factory: Callable[..., EmulatorHandle],
) -> None:
    handle = altinn_emulator_factory(token_lifetime=4)
    with AltinnEventsClient(settings_for(handle), retry=FAST) as client:
        client.list_events(resource=RESOURCE)
        client.list_events(resource=RESOURCE)
        assert token_counts(handle) == (1, 1)
        time.sleep(3.2)  # past exp - margin (the margin shrinks to a quarter of a short lifetime)
        for _ in range(5):
            client.list_events(resource=RESOURCE)
    assert token_counts(handle) == (2, 2)
    assert handle.stats()["requests"][GET_EVENTS] == 7  # no 401 was needed: refreshed before expiry


@pytest.mark.usefixtures("aiohttp_path")
async def test_short_token_lifetime_leads_to_exactly_one_refresh_async(
    altinn_emulator_factory: Callable[..., EmulatorHandle],
) -> None:
    handle = altinn_emulator_factory(token_lifetime=4)
    async with AsyncAltinnEventsClient(settings_for(handle), retry=FAST) as client:
        await client.list_events(resource=RESOURCE)
        await asyncio.sleep(3.2)
        await asyncio.gather(*(client.list_events(resource=RESOURCE) for _ in range(20)))
    assert token_counts(handle) == (2, 2)


def test_token_revoked_early_is_refreshed_once(altinn_emulator: EmulatorHandle) -> None:
    with AltinnEventsClient(settings_for(altinn_emulator), retry=FAST) as client:
        client.list_events(resource=RESOURCE)
        altinn_emulator.add_fault(method="GET", path="/events/api/v1/events", status=401, times=1)
        assert client.list_events(resource=RESOURCE).is_empty
    assert token_counts(altinn_emulator) == (2, 2)


@pytest.mark.usefixtures("aiohttp_path")
async def test_token_revoked_early_is_refreshed_once_async(altinn_emulator: EmulatorHandle) -> None:
    async with AsyncAltinnEventsClient(settings_for(altinn_emulator), retry=FAST) as client:
        await client.list_events(resource=RESOURCE)
        altinn_emulator.add_fault(method="GET", path="/events/api/v1/events", status=401, times=1)
        assert (await client.list_events(resource=RESOURCE)).is_empty
    assert token_counts(altinn_emulator) == (2, 2)


def test_persistent_401_refreshes_once_then_raises(altinn_emulator: EmulatorHandle) -> None:
    altinn_emulator.add_fault(method="GET", path="/events/api/v1/events", status=401)
    with (
        AltinnEventsClient(settings_for(altinn_emulator), retry=FAST) as client,
        pytest.raises(AltinnUnauthorizedError),
    ):
        client.list_events(resource=RESOURCE)
    assert token_counts(altinn_emulator) == (2, 2)


# -- key formats ---------------------------------------------------------------------------------------------------


def register(
    handle: EmulatorHandle, key_pem: str | None = None, kid: str | None = None
) -> tuple[str, str, str]:
    creds = handle.register_client(private_key_pem=key_pem or generate_private_key_pem(), key_id=kid)
    return creds.client_id, creds.key_id, creds.private_key_pem


def settings_with(handle: EmulatorHandle, client_id: str, password: str, **extra: Any) -> AltinnSettings:
    base = {"environment": "custom", "scopes": "altinn:events.subscribe"}
    base.update(extra)
    return AltinnSettings.from_connection(
        SimpleNamespace(
            conn_id="k", host=handle.base_url, login=client_id, password=password, extra_dejson=base
        )
    )


def works(s: AltinnSettings) -> bool:
    with AltinnEventsClient(s, retry=FAST) as client:
        return client.list_events(resource=RESOURCE).is_empty


def test_encrypted_pem_with_passphrase(altinn_emulator: EmulatorHandle) -> None:
    client_id, kid, key_pem = register(altinn_emulator)
    encrypted = pem(load_private_key(key_pem), passphrase="correct horse")
    assert works(
        settings_with(
            altinn_emulator, client_id, encrypted, key_id=kid, private_key_passphrase="correct horse"
        )
    )


def test_jwk_json_with_its_own_kid(altinn_emulator: EmulatorHandle) -> None:
    client_id, kid, key_pem = register(altinn_emulator)
    jwk = json.dumps(private_jwk(load_private_key(key_pem), kid=kid))
    assert works(settings_with(altinn_emulator, client_id, jwk))
    as_base64 = base64.b64encode(jwk.encode()).decode()
    assert works(settings_with(altinn_emulator, client_id, as_base64))


def test_pkcs12_bundle_signs_with_x5c(altinn_emulator: EmulatorHandle) -> None:
    client_id, _, key_pem = register(altinn_emulator)
    key = load_private_key(key_pem)
    bundle = pkcs12_b64(key, certificate(key), "p12-password")
    assert works(settings_with(altinn_emulator, client_id, bundle, private_key_passphrase="p12-password"))


def test_pem_with_certificate_extra_signs_with_x5c(altinn_emulator: EmulatorHandle) -> None:
    client_id, _, key_pem = register(altinn_emulator)
    cert = cert_pem(certificate(load_private_key(key_pem)))
    assert works(settings_with(altinn_emulator, client_id, key_pem, certificate=cert))


# -- clear errors --------------------------------------------------------------------------------------------------


def test_wrong_key(altinn_emulator: EmulatorHandle) -> None:
    s = settings_for(altinn_emulator, password=generate_private_key_pem())
    with AltinnEventsClient(s, retry=FAST) as client, pytest.raises(TokenGrantError) as info:
        client.list_events(resource=RESOURCE)
    assert info.value.error == "invalid_grant" and not info.value.retryable
    assert "signature" in str(info.value) and "kid" in str(info.value)


def test_unknown_kid(altinn_emulator: EmulatorHandle) -> None:
    s = settings_for(altinn_emulator, key_id="no-such-kid")
    with AltinnEventsClient(s, retry=FAST) as client, pytest.raises(TokenGrantError) as info:
        client.list_events(resource=RESOURCE)
    assert info.value.error == "invalid_client"
    assert "no-such-kid" in str(info.value) and "key_id" in str(info.value)


def test_replayed_jti(altinn_emulator: EmulatorHandle, monkeypatch: pytest.MonkeyPatch) -> None:
    fixed = uuid.uuid4()
    monkeypatch.setattr(tokens_module, "uuid", SimpleNamespace(uuid4=lambda: fixed))
    with AltinnEventsClient(settings_for(altinn_emulator), retry=FAST) as client:
        client.list_events(resource=RESOURCE)
        client.auth.invalidate()
        with pytest.raises(TokenGrantError) as info:
            client.list_events(resource=RESOURCE)
    assert "MP-012" in str(info.value) and "replayed" in str(info.value)


def test_scope_the_client_may_not_have(altinn_emulator: EmulatorHandle) -> None:
    s = settings_for(altinn_emulator, scopes="altinn:events.subscribe altinn:not.granted")
    with AltinnEventsClient(s, retry=FAST) as client, pytest.raises(TokenGrantError) as info:
        client.list_events(resource=RESOURCE)
    assert info.value.error == "invalid_scope"
    assert "altinn:not.granted" in str(info.value)


def test_scope_missing_from_the_connection(altinn_emulator: EmulatorHandle) -> None:
    s = settings_for(altinn_emulator, scopes="altinn:events.publish")
    with AltinnEventsClient(s, retry=FAST) as client, pytest.raises(AltinnForbiddenError) as info:
        client.list_events(resource=RESOURCE)
    assert "altinn:events.subscribe" in str(info.value)


def test_wrong_environment_is_refused_before_any_call(altinn_emulator: EmulatorHandle) -> None:
    with pytest.raises(AltinnConfigError) as info:
        settings_for(altinn_emulator, environment="tt02")
    assert info.value.field == "host" and "custom" in str(info.value)


def test_wrong_maskinporten_audience(altinn_emulator: EmulatorHandle) -> None:
    s = settings_for(
        altinn_emulator,
        maskinporten_issuer="https://test.maskinporten.no/",
        maskinporten_token_url=f"{altinn_emulator.base_url}/maskinporten/token",
    )
    with AltinnEventsClient(s, retry=FAST) as client, pytest.raises(TokenGrantError) as info:
        client.list_events(resource=RESOURCE)
    assert "MP-110" in str(info.value) and "environment" in str(info.value)


def test_exchange_refused(altinn_emulator: EmulatorHandle) -> None:
    altinn_emulator.add_fault(path="/authentication/api/v1/exchange/maskinporten", status=401)
    with (
        AltinnEventsClient(settings_for(altinn_emulator), retry=FAST) as client,
        pytest.raises(TokenExchangeError) as info,
    ):
        client.list_events(resource=RESOURCE)
    assert info.value.status_code == 401 and "environment" in str(info.value)


# -- retries -------------------------------------------------------------------------------------------------------


def test_503_burst_is_retried_then_succeeds(altinn_emulator: EmulatorHandle) -> None:
    altinn_emulator.add_fault(method="GET", path="/events/api/v1/events", status=503, times=3)
    altinn_emulator.add_fault(method="POST", path="/maskinporten/token", status=503, times=2)
    with AltinnEventsClient(settings_for(altinn_emulator), retry=FAST) as client:
        assert client.list_events(resource=RESOURCE).is_empty
    stats = altinn_emulator.stats()
    assert stats["requests"][GET_EVENTS] == 4
    assert stats["token_grants"] == 1


@pytest.mark.usefixtures("aiohttp_path")
async def test_503_burst_is_retried_then_succeeds_async(altinn_emulator: EmulatorHandle) -> None:
    altinn_emulator.add_fault(method="GET", path="/events/api/v1/events", status=503, times=3)
    async with AsyncAltinnEventsClient(settings_for(altinn_emulator), retry=FAST) as client:
        assert (await client.list_events(resource=RESOURCE)).is_empty
    assert altinn_emulator.stats()["requests"][GET_EVENTS] == 4


def test_429_retry_after_is_honoured_then_succeeds(altinn_emulator: EmulatorHandle) -> None:
    with AltinnEventsClient(settings_for(altinn_emulator), retry=FAST) as client:
        client.list_events(resource=RESOURCE)  # token first, so the timing below is the retry alone
        altinn_emulator.add_fault(
            method="GET", path="/events/api/v1/events", status=429, retry_after="1", times=1
        )
        started = time.monotonic()
        assert client.list_events(resource=RESOURCE).is_empty
        assert time.monotonic() - started >= 0.95


@pytest.mark.usefixtures("aiohttp_path")
async def test_429_retry_after_is_honoured_then_succeeds_async(altinn_emulator: EmulatorHandle) -> None:
    async with AsyncAltinnEventsClient(settings_for(altinn_emulator), retry=FAST) as client:
        await client.list_events(resource=RESOURCE)
        altinn_emulator.add_fault(
            method="GET", path="/events/api/v1/events", status=429, retry_after="1", times=1
        )
        started = time.monotonic()
        assert (await client.list_events(resource=RESOURCE)).is_empty
        assert time.monotonic() - started >= 0.95


def test_dropped_connections_are_retried(altinn_emulator: EmulatorHandle) -> None:
    altinn_emulator.add_fault(method="GET", path="/events/api/v1/events", drop_connection=True, times=2)
    with AltinnEventsClient(settings_for(altinn_emulator), retry=FAST) as client:
        assert client.list_events(resource=RESOURCE).is_empty


def test_budget_exhausted_ends_with_a_retryable_error_naming_the_last_status(
    altinn_emulator: EmulatorHandle,
) -> None:
    altinn_emulator.add_fault(method="GET", path="/events/api/v1/events", status=503)
    policy = RetryPolicy(max_attempts=3, backoff_base_seconds=0.01)
    with (
        AltinnEventsClient(settings_for(altinn_emulator), retry=policy) as client,
        pytest.raises(AltinnServerError) as info,
    ):
        client.list_events(resource=RESOURCE)
    error = info.value
    assert error.retryable and error.status_code == 503 and error.attempts == 3
    assert "-> 503" in str(error) and "3 attempts" in str(error)


@pytest.mark.usefixtures("aiohttp_path")
async def test_budget_exhausted_ends_with_a_retryable_error_naming_the_last_status_async(
    altinn_emulator: EmulatorHandle,
) -> None:
    altinn_emulator.add_fault(method="GET", path="/events/api/v1/events", status=502)
    policy = RetryPolicy(max_attempts=5, backoff_base_seconds=0.2, budget_seconds=0.5)
    async with AsyncAltinnEventsClient(settings_for(altinn_emulator), retry=policy) as client:
        with pytest.raises(AltinnServerError) as info:
            await client.list_events(resource=RESOURCE)
    assert info.value.retryable and info.value.status_code == 502 and "-> 502" in str(info.value)


# -- secrets ---------------------------------------------------------------------------------------------------------


class Recorder(httpx.BaseTransport):
    """Wraps the real transport and keeps every assertion and token that crossed the wire."""

    def __init__(self) -> None:
        self._inner = httpx.HTTPTransport()
        self.secrets: set[str] = set()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/maskinporten/token"):
            self.secrets.add(dict(urllib.parse.parse_qsl(request.read().decode()))["assertion"])
        auth = request.headers.get("Authorization", "")
        if auth:
            self.secrets.add(auth.removeprefix("Bearer "))
        response = self._inner.handle_request(request)
        response.read()
        if request.url.path.endswith("/maskinporten/token") and response.status_code == 200:
            self.secrets.add(response.json()["access_token"])
        if request.url.path.endswith("/exchange/maskinporten") and response.status_code == 200:
            self.secrets.add(response.text.strip())
        return response

    def close(self) -> None:
        self._inner.close()


@pytest.fixture
def recorder() -> Iterator[Recorder]:
    recorder = Recorder()
    yield recorder
    recorder.close()


def test_no_secret_in_logs_or_exception_texts(
    altinn_emulator: EmulatorHandle, recorder: Recorder, caplog: pytest.LogCaptureFixture
) -> None:
    texts: list[str] = []

    def capture(call: Callable[[], Any]) -> None:
        try:
            call()
        except Exception as error:
            texts.extend([str(error), repr(error), str(error.__cause__ or ""), repr(error.__dict__)])

    s = settings_for(altinn_emulator, platform_access_token=altinn_emulator.platform_access_token("ttd", "x"))
    with caplog.at_level(logging.DEBUG), AltinnEventsClient(s, transport=recorder, retry=FAST) as client:
        client.list_events(resource=RESOURCE)
        altinn_emulator.add_fault(method="GET", path="/events/api/v1/events", status=401, times=1)
        client.list_events(resource=RESOURCE)  # refresh after 401
        altinn_emulator.add_fault(method="GET", path="/events/api/v1/subscriptions", status=403)
        capture(client.list_subscriptions)
        altinn_emulator.add_fault(method="GET", path="/events/api/v1/events", status=503)
        capture(lambda: client.list_events(resource=RESOURCE, subject="/person/01038712345"))
        altinn_emulator.clear_faults()
        client.auth.invalidate()
        altinn_emulator.add_fault(path="/authentication/api/v1/exchange/maskinporten", status=401)
        capture(lambda: client.list_events(resource=RESOURCE))
        texts += [repr(client), repr(client.settings), repr(client.auth), repr(client.auth.signing_key())]
    bad = settings_for(altinn_emulator, key_id="wrong-kid")
    with caplog.at_level(logging.DEBUG), AltinnEventsClient(bad, transport=recorder, retry=FAST) as client:
        capture(lambda: client.list_events(resource=RESOURCE))
    texts.append(caplog.text)

    assert len(texts) > 10 and len(recorder.secrets) >= 6
    secrets = set(recorder.secrets) | {s.platform_access_token or ""}
    secrets |= {line for line in altinn_emulator.private_key_pem.splitlines() if "-----" not in line}
    for secret in secrets:
        assert secret
        for text in texts:
            assert secret not in text
    # each JWT part is long enough to be unique: check the signature parts too, in case of partial leaks
    for token in recorder.secrets:
        for part in token.split(".")[1:]:
            if len(part) > 20:
                assert all(part not in text for text in texts)
    assert jwt.get_unverified_header(next(iter(recorder.secrets)))

"""The token flow: assertion claims, grant and exchange parsing, caching, single-flight refresh, 401 refresh."""

from __future__ import annotations

import asyncio
import base64
import json
import threading
import time

import httpx
import jwt
import pytest

from airflow_provider_altinn_events.client.auth import AltinnAuth
from airflow_provider_altinn_events.client.clients import AltinnEventsClient, AsyncAltinnEventsClient
from airflow_provider_altinn_events.client.keys import load_signing_key
from airflow_provider_altinn_events.client.retry import RetryPolicy
from airflow_provider_altinn_events.client.tokens import (
    AltinnToken,
    build_grant_assertion,
    parse_token_exchange_response,
    parse_token_grant_response,
    static_altinn_token,
)
from airflow_provider_altinn_events.exceptions import (
    AltinnAuthError,
    AltinnUnauthorizedError,
    TokenExchangeError,
    TokenGrantError,
)
from tests.unit.client.helpers import (
    BASE,
    RESOURCE,
    FakeAltinn,
    FakeClock,
    cert_pem,
    certificate,
    pem,
    rsa_key,
    settings,
)

KEY = rsa_key()
NO_RETRY = RetryPolicy.disabled()


def claims_of(assertion: str) -> dict[str, object]:
    return jwt.decode(assertion, KEY.public_key(), algorithms=["RS256"], audience=f"{BASE}/maskinporten/")


# -- the assertion ----------------------------------------------------------------------------------------------


def test_assertion_claims_and_kid_header() -> None:
    s = settings(scopes="altinn:events.subscribe altinn:events.publish")
    key = load_signing_key(pem(KEY), key_id="kid-1")
    now = time.time()
    first = build_grant_assertion(s, key, now=now)
    second = build_grant_assertion(s, key, now=now)
    claims = claims_of(first)
    assert set(claims) == {"aud", "iss", "scope", "iat", "exp", "jti"}
    assert claims["aud"] == f"{BASE}/maskinporten/"
    assert claims["iss"] == "client-1"
    assert claims["scope"] == "altinn:events.subscribe altinn:events.publish"
    assert 0 < claims["exp"] - claims["iat"] <= 120  # type: ignore[operator]
    assert claims["jti"] != claims_of(second)["jti"]
    header = jwt.get_unverified_header(first)
    assert header["alg"] == "RS256" and header["kid"] == "kid-1" and "x5c" not in header


def test_assertion_with_x5c_consumer_org_and_system_user() -> None:
    s = settings(key_id=None, consumer_org="991825827", system_user_org="0192:950474084")
    key = load_signing_key(pem(KEY), certificate=cert_pem(certificate(KEY)))
    assertion = build_grant_assertion(s, key, now=time.time())
    header = jwt.get_unverified_header(assertion)
    assert "kid" not in header and isinstance(header["x5c"], list) and base64.b64decode(header["x5c"][0])
    claims = claims_of(assertion)
    assert claims["consumer_org"] == "991825827"
    assert claims["authorization_details"] == [
        {
            "type": "urn:altinn:systemuser",
            "systemuser_org": {"authority": "iso6523-actorid-upis", "ID": "0192:950474084"},
        }
    ]


# -- parsing the token services ---------------------------------------------------------------------------------

S = settings()


def grant_response(status: int, **kwargs: object) -> httpx.Response:
    return httpx.Response(status, request=httpx.Request("POST", S.maskinporten_token_url), **kwargs)  # type: ignore[arg-type]


def test_grant_errors_carry_oauth_error_and_hint() -> None:
    body = {"error": "invalid_scope", "error_description": "MP-200 Scope altinn:x not allowed"}
    with pytest.raises(TokenGrantError) as info:
        parse_token_grant_response(S, grant_response(400, json=body))
    error = info.value
    assert (error.status_code, error.error, error.retryable) == (400, "invalid_scope", False)
    assert "MP-200" in str(error) and "scopes" in str(error)
    assert error.step == "grant"
    with pytest.raises(TokenGrantError) as info:
        parse_token_grant_response(S, grant_response(503, text="down"))
    assert info.value.retryable
    with pytest.raises(TokenGrantError):
        parse_token_grant_response(S, grant_response(200, json={"token_type": "Bearer"}))


def exchange_response(status: int, **kwargs: object) -> httpx.Response:
    return httpx.Response(status, request=httpx.Request("GET", S.exchange_url), **kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize("quoted", [False, True])
def test_exchange_reads_raw_or_quoted_token_and_its_exp(quoted: bool) -> None:
    now = int(time.time())
    token = jwt.encode({"iat": now, "exp": now + 1800}, KEY, algorithm="RS256")
    body = json.dumps(token) if quoted else f"{token}\n"
    parsed = parse_token_exchange_response(S, exchange_response(200, text=body), now=now)
    assert parsed.value == token
    assert parsed.expires_at == now + 1800
    assert parsed.refresh_at(60) == now + 1740


def test_exchange_opaque_token_falls_back_to_a_short_lifetime() -> None:
    parsed = parse_token_exchange_response(S, exchange_response(200, text="opaque"), now=1000.0)
    assert parsed.expires_at == 1300.0


def test_exchange_401_explains_the_environment_pairing() -> None:
    with pytest.raises(TokenExchangeError) as info:
        parse_token_exchange_response(S, exchange_response(401), now=0)
    assert info.value.status_code == 401 and not info.value.retryable
    assert "environment" in str(info.value)
    with pytest.raises(TokenExchangeError) as info:
        parse_token_exchange_response(S, exchange_response(502), now=0)
    assert info.value.retryable


def test_refresh_margin_is_capped_for_short_tokens() -> None:
    assert AltinnToken("t", expires_at=1005.0, issued_at=1000.0).refresh_at(60) == 1003.75
    assert AltinnToken("t", expires_at=2800.0, issued_at=1000.0).refresh_at(60) == 2740.0
    assert "secret-token" not in repr(AltinnToken("secret-token", 1.0, 0.0))


def test_static_token() -> None:
    now = time.time()
    token = jwt.encode({"exp": int(now) + 100}, KEY, algorithm="RS256")
    assert static_altinn_token(token, now=now).value == token
    assert static_altinn_token("opaque", now=now).expires_at == float("inf")
    with pytest.raises(AltinnAuthError, match="expired") as info:
        static_altinn_token(jwt.encode({"exp": int(now) - 1}, KEY, algorithm="RS256"), now=now)
    assert not info.value.retryable


# -- the flow through a client --------------------------------------------------------------------------------


def test_token_is_fetched_once_and_reused() -> None:
    fake = FakeAltinn(public_key=KEY.public_key())
    with AltinnEventsClient(settings(), transport=fake.transport()) as client:
        for _ in range(5):
            client.list_events(resource=RESOURCE)
        assert client.auth.refresh_count == 1
    assert (fake.grants, fake.exchanges) == (1, 1)
    events_calls = [r for r in fake.requests if r.url.path.startswith("/events/")]
    assert all(r.headers["Authorization"] == f"Bearer {fake.tokens[0]}" for r in events_calls)


def test_expiry_by_the_tokens_own_exp_refreshes_exactly_once() -> None:
    clock = FakeClock()
    fake = FakeAltinn(token_lifetime=1800, clock=clock)
    with AltinnEventsClient(settings(), transport=fake.transport(), clock=clock) as client:
        client.list_events(resource=RESOURCE)
        clock.advance(1700)  # still before exp - 60
        client.list_events(resource=RESOURCE)
        assert fake.grants == 1
        clock.advance(60)  # inside the margin
        client.list_events(resource=RESOURCE)
        client.list_events(resource=RESOURCE)
    assert (fake.grants, fake.exchanges) == (2, 2)


def test_401_refreshes_once_and_retries() -> None:
    fake = FakeAltinn()
    with AltinnEventsClient(settings(), transport=fake.transport(), retry=NO_RETRY) as client:
        client.list_events(resource=RESOURCE)
        fake.revoked.add(fake.tokens[0])
        page = client.list_events(resource=RESOURCE)
        assert page.is_empty
    assert (fake.grants, fake.exchanges) == (2, 2)


def test_second_401_is_raised_not_looped() -> None:
    fake = FakeAltinn(events_handler=lambda request: httpx.Response(401))
    with (
        AltinnEventsClient(settings(), transport=fake.transport()) as client,
        pytest.raises(AltinnUnauthorizedError),
    ):
        client.list_events(resource=RESOURCE)
    assert (fake.grants, fake.exchanges) == (2, 2)


def test_static_altinn_token_mode_and_platform_access_token() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(401 if len(seen) > 1 else 200, json=[])

    s = settings(
        auth="altinn_token", login=None, password="static-altinn-token", platform_access_token="pat-1"
    )
    with AltinnEventsClient(s, transport=httpx.MockTransport(handler)) as client:
        client.list_events(resource=RESOURCE)
        with pytest.raises(AltinnUnauthorizedError):
            client.list_events(resource=RESOURCE)
    assert len(seen) == 2  # no grant, no exchange, no refresh on 401
    assert seen[0].headers["Authorization"] == "Bearer static-altinn-token"
    assert seen[0].headers["PlatformAccessToken"] == "pat-1"


def test_platform_access_token_only_goes_to_the_events_api() -> None:
    fake = FakeAltinn()
    with AltinnEventsClient(settings(platform_access_token="pat-1"), transport=fake.transport()) as client:
        client.list_events(resource=RESOURCE)
    by_path = {r.url.path: r for r in fake.requests}
    assert "PlatformAccessToken" not in by_path["/maskinporten/token"].headers
    assert "PlatformAccessToken" not in by_path["/authentication/api/v1/exchange/maskinporten"].headers
    assert by_path["/events/api/v1/events"].headers["PlatformAccessToken"] == "pat-1"
    assert by_path["/authentication/api/v1/exchange/maskinporten"].headers["Accept"] == "text/plain"


def test_quoted_exchange_body_is_accepted_end_to_end() -> None:
    fake = FakeAltinn(quote_exchange=True)
    with AltinnEventsClient(settings(), transport=fake.transport()) as client:
        client.list_events(resource=RESOURCE)
    assert fake.grants == 1


def test_twenty_threads_share_one_grant_and_exchange() -> None:
    fake = FakeAltinn()
    barrier = threading.Barrier(20)
    errors: list[BaseException] = []
    with AltinnEventsClient(settings(), transport=fake.transport()) as client:

        def work() -> None:
            try:
                barrier.wait()
                for _ in range(10):
                    client.list_events(resource=RESOURCE)
            except BaseException as error:  # pragma: no cover - reported below
                errors.append(error)

        threads = [threading.Thread(target=work) for _ in range(20)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert not errors
    assert (fake.grants, fake.exchanges) == (1, 1)
    assert len([r for r in fake.requests if r.url.path.startswith("/events/")]) == 200


async def test_two_hundred_coroutines_share_one_grant_and_exchange() -> None:
    fake = FakeAltinn()
    async with AsyncAltinnEventsClient(settings(), transport=fake.transport()) as client:
        await asyncio.gather(*(client.list_events(resource=RESOURCE) for _ in range(200)))
        assert client.auth.refresh_count == 1
    assert (fake.grants, fake.exchanges) == (1, 1)


async def test_async_401_refreshes_once() -> None:
    fake = FakeAltinn()
    async with AsyncAltinnEventsClient(settings(), transport=fake.transport(), retry=NO_RETRY) as client:
        await client.list_events(resource=RESOURCE)
        fake.revoked.add(fake.tokens[0])
        await asyncio.gather(*(client.list_events(resource=RESOURCE) for _ in range(20)))
    assert (fake.grants, fake.exchanges) == (2, 2)


async def test_async_expiry_refreshes_exactly_once() -> None:
    clock = FakeClock()
    fake = FakeAltinn(clock=clock, token_lifetime=600)
    async with AsyncAltinnEventsClient(settings(), transport=fake.transport(), clock=clock) as client:
        await client.list_events(resource=RESOURCE)
        clock.advance(600)
        await asyncio.gather(*(client.list_events(resource=RESOURCE) for _ in range(50)))
    assert (fake.grants, fake.exchanges) == (2, 2)


def test_grant_refused_is_a_token_grant_error_not_retried() -> None:
    fake = FakeAltinn(grant_status=400, grant_body={"error": "invalid_client", "error_description": "MP-100"})
    with (
        AltinnEventsClient(settings(), transport=fake.transport()) as client,
        pytest.raises(TokenGrantError) as info,
    ):
        client.list_events(resource=RESOURCE)
    assert info.value.error == "invalid_client"
    assert fake.grants == 1


def test_grant_503_is_retried_with_a_fresh_jti() -> None:
    fake = FakeAltinn(grant_status=503, grant_body={"error": "server_error"})
    policy = RetryPolicy(max_attempts=3, backoff_base_seconds=0.001)
    with (
        AltinnEventsClient(settings(), transport=fake.transport(), retry=policy) as client,
        pytest.raises(TokenGrantError) as info,
    ):
        client.list_events(resource=RESOURCE)
    assert info.value.retryable and info.value.attempts == 3
    jtis = {claims_of(a)["jti"] for a in fake.assertions}
    assert len(jtis) == 3


def test_exchange_refused() -> None:
    fake = FakeAltinn(exchange_status=401)
    with (
        AltinnEventsClient(settings(), transport=fake.transport()) as client,
        pytest.raises(TokenExchangeError),
    ):
        client.list_events(resource=RESOURCE)


def test_auth_repr_and_invalidate() -> None:
    auth = AltinnAuth(settings())
    assert "altinn_test" in repr(auth)
    assert auth.token_expires_at is None
    auth.invalidate()

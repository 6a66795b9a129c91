"""Altinn token exchange (``/authentication/api/v1/exchange/maskinporten``) and Altinn's OIDC keys.

Source (docs/contract.rst): Altinn/altinn-authentication src/Authentication/Controllers/
AuthenticationController.cs (ExchangeExternalSystemToken) and OpenIdController.cs.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

import httpx
import jwt
import pytest

from airflow_provider_altinn_events.emulator.handle import EmulatorHandle
from airflow_provider_altinn_events.emulator.keys import KeySet

from .conftest import bearer

EXCHANGE = "/authentication/api/v1/exchange/maskinporten"


def _claims(token: str) -> dict[str, Any]:
    return dict(jwt.decode(token, options={"verify_signature": False}))


def test_plain_text_by_default_and_claims_carried_over(
    altinn_emulator: EmulatorHandle, api: httpx.Client
) -> None:
    mp_token = altinn_emulator.maskinporten_token()
    response = api.get(EXCHANGE, headers=bearer(mp_token))
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    mp, altinn = _claims(mp_token), _claims(response.text)
    for kept in ("scope", "client_id", "consumer", "token_type", "jti"):
        assert altinn[kept] == mp[kept]
    assert "client_amr" not in altinn and "aud" not in altinn
    assert altinn["iss"] == f"{altinn_emulator.base_url}/authentication/api/v1/openid/"
    assert altinn["urn:altinn:orgNumber"] == "991825827"
    assert altinn["urn:altinn:authenticatemethod"] == "maskinporten"
    assert altinn["urn:altinn:authlevel"] == 3
    assert "urn:altinn:org" not in altinn
    assert altinn["exp"] - altinn["iat"] == 1800
    assert altinn["sid"] != mp.get("sid")
    stats = altinn_emulator.stats()
    assert stats["token_exchanges"] == 1


def test_json_string_when_json_accepted(altinn_emulator: EmulatorHandle, api: httpx.Client) -> None:
    response = api.get(
        EXCHANGE, headers={**bearer(altinn_emulator.maskinporten_token()), "Accept": "application/json"}
    )
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/json")
    assert response.text.startswith('"') and response.text.endswith('"')
    assert _claims(response.json())["urn:altinn:orgNumber"] == "991825827"
    both = api.get(
        EXCHANGE,
        headers={**bearer(altinn_emulator.maskinporten_token()), "Accept": "text/plain, application/json"},
    )
    assert not both.text.startswith('"')


def test_altinn_token_verifies_against_openid_jwks(
    altinn_emulator: EmulatorHandle, api: httpx.Client
) -> None:
    config = api.get("/authentication/api/v1/openid/.well-known/openid-configuration").json()
    assert config["issuer"] == f"{altinn_emulator.base_url}/authentication/api/v1/openid/"
    jwks = jwt.PyJWKSet.from_dict(api.get(config["jwks_uri"].replace(altinn_emulator.base_url, "")).json())
    token = altinn_emulator.altinn_token()
    header = jwt.get_unverified_header(token)
    assert header["kid"] == jwks.keys[0].key_id and header["x5t"]
    jwt.decode(token, jwks.keys[0].key, algorithms=["RS256"], options={"verify_aud": False})


def test_service_owner_org_only_with_serviceowner_scope(
    altinn_emulator: EmulatorHandle, api: httpx.Client
) -> None:
    token = altinn_emulator.altinn_token(["altinn:events.subscribe", "altinn:serviceowner"])
    assert _claims(token)["urn:altinn:org"] == "ttd"
    unregistered = altinn_emulator.register_client(org=None, orgnumber="310000002")
    token = altinn_emulator.altinn_token(["altinn:serviceowner"], credentials=unregistered)
    assert "urn:altinn:org" not in _claims(token)


def test_test_flag_maps_digdir_to_ttd(altinn_emulator: EmulatorHandle, api: httpx.Client) -> None:
    digdir = altinn_emulator.register_client(org="digdir", orgnumber="991825828")
    mp_token = altinn_emulator.maskinporten_token(["altinn:serviceowner"], credentials=digdir)
    assert _claims(api.get(EXCHANGE, headers=bearer(mp_token)).text)["urn:altinn:org"] == "digdir"
    mp_token = altinn_emulator.maskinporten_token(["altinn:serviceowner"], credentials=digdir)
    assert (
        _claims(api.get(EXCHANGE, params={"test": "true"}, headers=bearer(mp_token)).text)["urn:altinn:org"]
        == "ttd"
    )


def _forge_mp(keys: KeySet, handle: EmulatorHandle, **overrides: Any) -> str:
    now = int(time.time())
    claims: dict[str, Any] = {
        "iss": f"{handle.base_url}/maskinporten/",
        "client_id": handle.client_id,
        "consumer": {"authority": "iso6523-actorid-upis", "ID": "0192:991825827"},
        "scope": "altinn:events.subscribe",
        "iat": now,
        "exp": now + 120,
        "jti": str(uuid.uuid4()),
    }
    claims.update(overrides)
    claims = {k: v for k, v in claims.items() if v is not None}
    return jwt.encode(
        claims, keys.maskinporten.private_key, algorithm="RS256", headers={"kid": keys.maskinporten.kid}
    )


def test_maskinporten_token_expiry_with_ten_second_skew(
    altinn_emulator: EmulatorHandle, api: httpx.Client, emulator_keys: KeySet
) -> None:
    now = int(time.time())
    recent = _forge_mp(emulator_keys, altinn_emulator, iat=now - 125, exp=now - 5)
    assert api.get(EXCHANGE, headers=bearer(recent)).status_code == 200
    old = _forge_mp(emulator_keys, altinn_emulator, iat=now - 140, exp=now - 20)
    response = api.get(EXCHANGE, headers=bearer(old))
    assert response.status_code == 401 and response.content == b""


@pytest.mark.parametrize(
    "overrides",
    [
        {"iss": "https://test.maskinporten.no/"},
        {"consumer": None},
        {"consumer": {"authority": "other", "ID": "0192:991825827"}},
        {"consumer": {"authority": "iso6523-actorid-upis", "ID": "991825827"}},
    ],
)
def test_bad_maskinporten_tokens_get_empty_401(
    altinn_emulator: EmulatorHandle, api: httpx.Client, emulator_keys: KeySet, overrides: dict[str, Any]
) -> None:
    response = api.get(EXCHANGE, headers=bearer(_forge_mp(emulator_keys, altinn_emulator, **overrides)))
    assert response.status_code == 401 and response.content == b""


def test_missing_forged_or_altinn_tokens_get_401(altinn_emulator: EmulatorHandle, api: httpx.Client) -> None:
    assert api.get(EXCHANGE).status_code == 401
    assert api.get(EXCHANGE, headers={"Authorization": "Basic abc"}).status_code == 401
    assert api.get(EXCHANGE, headers=bearer("not.a.jwt")).status_code == 401
    # an Altinn token is not a Maskinporten token
    assert api.get(EXCHANGE, headers=bearer(altinn_emulator.altinn_token())).status_code == 401
    forged = jwt.encode(
        {"iss": "x", "exp": int(time.time()) + 60}, altinn_emulator.private_key_pem, algorithm="RS256"
    )
    assert api.get(EXCHANGE, headers=bearer(forged)).status_code == 401
    assert altinn_emulator.stats()["token_exchange_failures"] >= 5


def test_unknown_provider_and_enterprise_user(altinn_emulator: EmulatorHandle, api: httpx.Client) -> None:
    response = api.get("/authentication/api/v1/exchange/facebook")
    assert response.status_code == 400
    assert response.headers["content-type"].startswith("text/plain")
    assert response.text == (
        "Invalid token provider: facebook. Trusted token providers are 'Maskinporten', 'Id-porten' and 'AltinnStudio'."
    )
    assert api.get("/authentication/api/v1/exchange/MaskinPorten").status_code == 401
    gone = api.get(
        EXCHANGE,
        headers={
            **bearer(altinn_emulator.maskinporten_token()),
            "X-Altinn-EnterpriseUser-Authentication": "x",
        },
    )
    assert gone.status_code == 410
    assert gone.json()["status"] == 410


def test_token_lifetime_option(altinn_emulator_factory: Any) -> None:
    handle = altinn_emulator_factory(token_lifetime=60)
    claims = _claims(handle.altinn_token())
    assert claims["exp"] - claims["iat"] == 60

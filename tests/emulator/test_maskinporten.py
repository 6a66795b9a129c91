"""Maskinporten emulation: metadata, JWKS and every way a JWT-bearer grant is accepted or refused.

Source: Digdir's Maskinporten documentation (felleslosninger/docs maskinporten_protocol_jwtgrant.md,
maskinporten_protocol_token.md, maskinporten_feilsoking.md); not Altinn code.
"""

from __future__ import annotations

import base64
import datetime as dt
import time

import httpx
import jwt
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509.oid import NameOID

from airflow_provider_altinn_events.emulator.handle import (
    EmulatorHandle,
    generate_private_key_pem,
    load_private_key,
)

from .conftest import GRANT_TYPE, grant, sign_grant


def test_metadata_and_jwks(altinn_emulator: EmulatorHandle, api: httpx.Client) -> None:
    meta = api.get("/maskinporten/.well-known/oauth-authorization-server").json()
    issuer = f"{altinn_emulator.base_url}/maskinporten/"
    assert meta["issuer"] == issuer
    assert meta["token_endpoint"] == f"{issuer}token"
    assert meta["grant_types_supported"] == [GRANT_TYPE]
    assert meta["token_endpoint_auth_signing_alg_values_supported"] == ["RS256", "RS384", "RS512"]
    keys = api.get("/maskinporten/jwk").json()["keys"]
    assert keys[0]["kty"] == "RSA" and keys[0]["kid"]


def test_successful_grant_issues_verifiable_token(altinn_emulator: EmulatorHandle, api: httpx.Client) -> None:
    response = grant(
        api, sign_grant(altinn_emulator, {"scope": "altinn:events.subscribe altinn:events.publish"})
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 120
    assert body["scope"] == "altinn:events.subscribe altinn:events.publish"
    jwks = jwt.PyJWKSet.from_dict(api.get("/maskinporten/jwk").json())
    claims = jwt.decode(body["access_token"], jwks.keys[0].key, algorithms=["RS256"], audience="unspecified")
    assert claims["iss"] == f"{altinn_emulator.base_url}/maskinporten/"
    assert claims["client_id"] == altinn_emulator.client_id
    assert claims["client_amr"] == "private_key_jwt"
    assert claims["consumer"] == {"authority": "iso6523-actorid-upis", "ID": "0192:991825827"}
    assert claims["exp"] - claims["iat"] == 120
    assert claims["token_type"] == "Bearer"
    assert altinn_emulator.stats()["token_grants"] == 1


@pytest.mark.parametrize("algorithm", ["RS384", "RS512"])
def test_other_rsa_algorithms_accepted(
    altinn_emulator: EmulatorHandle, api: httpx.Client, algorithm: str
) -> None:
    assert grant(api, sign_grant(altinn_emulator, algorithm=algorithm)).status_code == 200


def _error(response: httpx.Response, status: int, error: str, fragment: str) -> None:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["error"] == error
    assert fragment in body["error_description"]


def test_replayed_jti_refused(altinn_emulator: EmulatorHandle, api: httpx.Client) -> None:
    assertion = sign_grant(altinn_emulator)
    assert grant(api, assertion).status_code == 200
    _error(grant(api, assertion), 400, "invalid_grant", "MP-012")
    same_jti = sign_grant(
        altinn_emulator, {"jti": jwt.decode(assertion, options={"verify_signature": False})["jti"]}
    )
    _error(grant(api, same_jti), 400, "invalid_grant", "MP-012")


def test_wrong_audience_refused(altinn_emulator: EmulatorHandle, api: httpx.Client) -> None:
    _error(
        grant(api, sign_grant(altinn_emulator, {"aud": "https://test.maskinporten.no/"})),
        400,
        "invalid_grant",
        "MP-110",
    )
    token_url = f"{altinn_emulator.base_url}/maskinporten/token"
    _error(grant(api, sign_grant(altinn_emulator, {"aud": token_url})), 400, "invalid_grant", "MP-110")


def test_wrong_key_refused(altinn_emulator: EmulatorHandle, api: httpx.Client) -> None:
    other = generate_private_key_pem()
    _error(grant(api, sign_grant(altinn_emulator, key_pem=other)), 400, "invalid_grant", "MP-120")


def test_unknown_kid_and_client_refused(altinn_emulator: EmulatorHandle, api: httpx.Client) -> None:
    _error(grant(api, sign_grant(altinn_emulator, headers={"kid": "nope"})), 401, "invalid_client", "kid")
    _error(
        grant(api, sign_grant(altinn_emulator, {"iss": "unknown-client"})), 401, "invalid_client", "MP-100"
    )


@pytest.mark.parametrize(
    ("claims", "error", "fragment"),
    [
        ({"iat": 60, "exp": 100}, "invalid_grant", "after now"),
        ({"iat": -60, "exp": 30}, "invalid_grant", "MP-130"),
        ({"exp": 200}, "invalid_grant", "120"),
        ({"iat": -5, "exp": -1}, "invalid_grant", "expired"),
        ({"scope": "altinn:not-mine"}, "invalid_scope", "altinn:not-mine"),
        ({"scope": ""}, "invalid_scope", "MP-200"),
        ({"sub": "someone"}, "invalid_grant", "sub"),
    ],
)
def test_bad_claims_refused(
    altinn_emulator: EmulatorHandle, api: httpx.Client, claims: dict[str, object], error: str, fragment: str
) -> None:
    now = int(time.time())
    resolved = {k: now + v if k in ("iat", "exp") and isinstance(v, int) else v for k, v in claims.items()}
    _error(grant(api, sign_grant(altinn_emulator, resolved)), 400, error, fragment)


def test_small_clock_skew_tolerated(altinn_emulator: EmulatorHandle, api: httpx.Client) -> None:
    now = int(time.time())
    assert grant(api, sign_grant(altinn_emulator, {"iat": now + 5, "exp": now + 65})).status_code == 200
    assert grant(api, sign_grant(altinn_emulator, {"iat": now - 8, "exp": now + 100})).status_code == 200


def test_missing_jti_and_malformed_requests(altinn_emulator: EmulatorHandle, api: httpx.Client) -> None:
    _error(grant(api, sign_grant(altinn_emulator, drop=("jti",))), 400, "invalid_grant", "jti")
    _error(grant(api, "not-a-jwt"), 400, "invalid_request", "MP-011")
    _error(api.post("/maskinporten/token", data={"assertion": "x"}), 400, "invalid_request", "grant_type")
    _error(
        api.post("/maskinporten/token", data={"grant_type": "client_credentials"}),
        400,
        "unsupported_grant_type",
        "",
    )
    _error(
        api.post("/maskinporten/token", data={"grant_type": GRANT_TYPE}), 400, "invalid_request", "assertion"
    )
    _error(
        api.post("/maskinporten/token", json={"grant_type": GRANT_TYPE}),
        400,
        "invalid_request",
        "Content-Type",
    )
    hs = jwt.encode({"iss": altinn_emulator.client_id}, "secret-secret-secret-secret-1234", algorithm="HS256")
    _error(grant(api, hs), 400, "invalid_grant", "alg")


def test_consumer_org_makes_supplier_token(altinn_emulator: EmulatorHandle, api: httpx.Client) -> None:
    response = grant(api, sign_grant(altinn_emulator, {"consumer_org": "910000000"}))
    assert response.status_code == 200, response.text
    claims = jwt.decode(response.json()["access_token"], options={"verify_signature": False})
    assert claims["consumer"]["ID"] == "0192:910000000"
    assert claims["supplier"]["ID"] == "0192:991825827"
    _error(
        grant(api, sign_grant(altinn_emulator, {"consumer_org": "991825827"})), 400, "invalid_request", "own"
    )
    _error(grant(api, sign_grant(altinn_emulator, {"consumer_org": "12"})), 400, "invalid_request", "9-digit")


def test_system_user_authorization_details(altinn_emulator: EmulatorHandle, api: httpx.Client) -> None:
    details = [
        {
            "type": "urn:altinn:systemuser",
            "systemuser_org": {"authority": "iso6523-actorid-upis", "ID": "0192:310000001"},
        }
    ]
    response = grant(api, sign_grant(altinn_emulator, {"authorization_details": details}))
    assert response.status_code == 200, response.text
    claims = jwt.decode(response.json()["access_token"], options={"verify_signature": False})
    entry = claims["authorization_details"][0]
    assert entry["type"] == "urn:altinn:systemuser"
    assert len(entry["systemuser_id"]) == 1 and entry["system_id"]
    assert entry["systemuser_org"]["ID"] == "0192:310000001"
    bad = [{"type": "urn:altinn:other"}]
    _error(
        grant(api, sign_grant(altinn_emulator, {"authorization_details": bad})),
        400,
        "invalid_authorization_details",
        "MP-301",
    )


def _certificate_b64(private_pem: str) -> str:
    key = serialization.load_pem_private_key(private_pem.encode(), password=None)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "emulator test")])
    now = dt.datetime.now(dt.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())  # type: ignore[arg-type]
        .serial_number(1)
        .not_valid_before(now)
        .not_valid_after(now + dt.timedelta(days=1))
        .sign(key, hashes.SHA256())  # type: ignore[arg-type]
    )
    return base64.b64encode(cert.public_bytes(serialization.Encoding.DER)).decode()


def test_x5c_certificate_of_registered_key_accepted(
    altinn_emulator: EmulatorHandle, api: httpx.Client
) -> None:
    x5c = [_certificate_b64(altinn_emulator.private_key_pem)]
    response = grant(api, sign_grant(altinn_emulator, headers={"x5c": x5c}))
    assert response.status_code == 200, response.text
    claims = jwt.decode(response.json()["access_token"], options={"verify_signature": False})
    assert claims["client_amr"] == "virksomhetssertifikat"
    other = generate_private_key_pem()
    response = grant(
        api, sign_grant(altinn_emulator, headers={"x5c": [_certificate_b64(other)]}, key_pem=other)
    )
    assert response.status_code == 400
    _error(grant(api, sign_grant(altinn_emulator, headers={"x5c": x5c[0]})), 400, "invalid_grant", "MP-123")
    _error(grant(api, sign_grant(altinn_emulator, headers={})), 400, "invalid_grant", "kid or x5c")


def test_registered_jwk_and_second_key(altinn_emulator: EmulatorHandle, api: httpx.Client) -> None:
    second = generate_private_key_pem()
    public = load_private_key(second).public_key()
    jwk = jwt.algorithms.RSAAlgorithm.to_jwk(public, as_dict=True)
    jwk["kid"] = "rotated"
    response = api.post(
        "/_emulator/clients",
        json={"client_id": altinn_emulator.client_id, "jwk": jwk, "scopes": ["altinn:events.subscribe"]},
    )
    assert response.status_code == 201, response.text
    assert (
        grant(api, sign_grant(altinn_emulator, headers={"kid": "rotated"}, key_pem=second)).status_code == 200
    )
    assert grant(api, sign_grant(altinn_emulator)).status_code == 200  # the first key still works

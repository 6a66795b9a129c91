from __future__ import annotations

import base64
import json

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from airflow_provider_altinn_events.client.keys import load_signing_key
from airflow_provider_altinn_events.exceptions import AltinnConfigError
from tests.unit.client.helpers import cert_pem, certificate, pem, pkcs12_b64, private_jwk, rsa_key

KEY = rsa_key()
OTHER = rsa_key(2)


def same_key(loaded: object) -> bool:
    return bool(loaded.public_key().public_numbers() == KEY.public_key().public_numbers())  # type: ignore[attr-defined]


def test_pem_pkcs8_with_key_id() -> None:
    key = load_signing_key(pem(KEY), key_id="kid-1")
    assert same_key(key.private_key)
    assert key.jwt_headers() == {"kid": "kid-1"}
    assert key.source_format == "pem"


def test_pem_traditional_rsa() -> None:
    assert same_key(load_signing_key(pem(KEY, traditional=True), key_id="k").private_key)


def test_encrypted_pem_with_passphrase() -> None:
    key = load_signing_key(pem(KEY, passphrase="s3cret-pass"), key_id="k", passphrase="s3cret-pass")
    assert same_key(key.private_key)


def test_encrypted_pem_without_passphrase() -> None:
    with pytest.raises(AltinnConfigError) as info:
        load_signing_key(pem(KEY, passphrase="s3cret-pass"), key_id="k")
    assert info.value.field == "private_key_passphrase"
    assert "encrypted" in str(info.value)


def test_encrypted_pem_wrong_passphrase() -> None:
    with pytest.raises(AltinnConfigError) as info:
        load_signing_key(pem(KEY, passphrase="s3cret-pass"), key_id="k", passphrase="wrong")
    assert info.value.field == "private_key_passphrase"
    assert "wrong" in str(info.value)


def test_passphrase_for_unencrypted_pem() -> None:
    with pytest.raises(AltinnConfigError) as info:
        load_signing_key(pem(KEY), key_id="k", passphrase="x")
    assert info.value.field == "private_key_passphrase"


def test_pem_base64_encoded() -> None:
    encoded = base64.b64encode(pem(KEY).encode()).decode()
    assert same_key(load_signing_key(encoded, key_id="k").private_key)


def test_truncated_pem() -> None:
    text = pem(KEY)
    broken = text[: len(text) // 2] + "\n-----END PRIVATE KEY-----\n"
    with pytest.raises(AltinnConfigError) as info:
        load_signing_key(broken, key_id="k")
    assert info.value.field == "password"
    assert text[40:80] not in str(info.value)


def test_pem_without_private_key() -> None:
    with pytest.raises(AltinnConfigError) as info:
        load_signing_key(cert_pem(certificate(KEY)), key_id="k")
    assert info.value.field == "password"


def test_jwk_json_kid_defaults_from_jwk() -> None:
    key = load_signing_key(json.dumps(private_jwk(KEY, kid="from-jwk")))
    assert same_key(key.private_key)
    assert key.kid == "from-jwk"
    assert key.source_format == "jwk"


def test_jwk_base64_and_jwk_set() -> None:
    encoded = base64.b64encode(json.dumps(private_jwk(KEY)).encode()).decode()
    assert load_signing_key(encoded).kid == "jwk-kid"
    jwks = json.dumps({"keys": [private_jwk(KEY)]})
    assert load_signing_key(jwks).kid == "jwk-kid"


def test_jwk_kid_must_match_declared_key_id() -> None:
    with pytest.raises(AltinnConfigError) as info:
        load_signing_key(json.dumps(private_jwk(KEY, kid="a")), key_id="b")
    assert info.value.field == "key_id"
    assert "'a'" in str(info.value) and "'b'" in str(info.value)
    assert load_signing_key(json.dumps(private_jwk(KEY, kid="a")), key_id="a").kid == "a"


def test_jwk_without_kid_uses_key_id() -> None:
    assert load_signing_key(json.dumps(private_jwk(KEY, kid=None)), key_id="declared").kid == "declared"


def test_public_jwk_refused() -> None:
    jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(KEY.public_key()))
    with pytest.raises(AltinnConfigError) as info:
        load_signing_key(json.dumps(jwk), key_id="k")
    assert "public" in str(info.value)


def test_non_rsa_jwk_and_pem_refused() -> None:
    with pytest.raises(AltinnConfigError) as info:
        load_signing_key(json.dumps({"kty": "EC", "crv": "P-256", "d": "x"}), key_id="k")
    assert "RSA" in str(info.value)
    ec_pem = (
        ec.generate_private_key(ec.SECP256R1())
        .private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        .decode()
    )
    with pytest.raises(AltinnConfigError) as info:
        load_signing_key(ec_pem, key_id="k")
    assert "RS256" in str(info.value)


def test_invalid_jwk_json() -> None:
    with pytest.raises(AltinnConfigError) as info:
        load_signing_key('{"kty": "RSA", "d": ', key_id="k")
    assert info.value.field == "password"


def test_pkcs12_with_password_sends_x5c_chain() -> None:
    cert = certificate(KEY)
    key = load_signing_key(pkcs12_b64(KEY, cert, "p12-pass"), passphrase="p12-pass")
    assert same_key(key.private_key)
    assert key.kid is None
    assert key.source_format == "pkcs12"
    headers = key.jwt_headers()
    der = base64.b64decode(headers["x5c"][0])
    assert der == cert.public_bytes(serialization.Encoding.DER)


def test_pkcs12_with_key_id_sends_kid() -> None:
    key = load_signing_key(pkcs12_b64(KEY, certificate(KEY), None), key_id="registered")
    assert key.jwt_headers() == {"kid": "registered"}


def test_pkcs12_wrong_password() -> None:
    with pytest.raises(AltinnConfigError) as info:
        load_signing_key(pkcs12_b64(KEY, certificate(KEY), "right"), passphrase="wrong")
    assert info.value.field == "private_key_passphrase"


def test_pem_bundle_with_certificate_gives_x5c() -> None:
    cert = certificate(KEY)
    key = load_signing_key(pem(KEY) + cert_pem(cert))
    assert len(key.x5c) == 1
    assert "x5c" in key.jwt_headers()


def test_certificate_extra_must_match_key() -> None:
    key = load_signing_key(pem(KEY), certificate=cert_pem(certificate(KEY)))
    assert key.x5c
    with pytest.raises(AltinnConfigError) as info:
        load_signing_key(pem(KEY), certificate=cert_pem(certificate(OTHER)))
    assert info.value.field == "certificate"


def test_certificate_extra_as_base64_der() -> None:
    der = certificate(KEY).public_bytes(serialization.Encoding.DER)
    key = load_signing_key(pem(KEY), certificate=base64.b64encode(der).decode())
    assert key.x5c == (base64.b64encode(der).decode(),)


def test_bad_certificate_extra() -> None:
    with pytest.raises(AltinnConfigError) as info:
        load_signing_key(pem(KEY), certificate="-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----")
    assert info.value.field == "certificate"


def test_neither_kid_nor_certificate() -> None:
    with pytest.raises(AltinnConfigError) as info:
        load_signing_key(pem(KEY))
    assert info.value.field == "key_id"
    assert "kid" in str(info.value)


@pytest.mark.parametrize("garbage", ["not a key at all!", "aGVsbG8gd29ybGQ=", "%%%"])
def test_garbage_is_a_clear_error(garbage: str) -> None:
    with pytest.raises(AltinnConfigError) as info:
        load_signing_key(garbage, key_id="k")
    assert info.value.field in ("password", "private_key_passphrase")
    assert garbage not in str(info.value)


def test_repr_has_no_key_material() -> None:
    key = load_signing_key(pem(KEY), key_id="kid-1")
    text = repr(key)
    assert "kid-1" in text
    assert "private_key" not in text
    assert "RSAPrivateKey" not in text


@pytest.fixture(scope="module")
def small_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=1024)


def test_rsa_keys_under_2048_bits_are_refused_in_every_format(small_key: rsa.RSAPrivateKey) -> None:
    forms = {
        "pem": pem(small_key),
        "jwk": json.dumps(private_jwk(small_key)),
        "pkcs12": pkcs12_b64(small_key, certificate(small_key), "pw"),
    }
    for form, material in forms.items():
        with pytest.raises(AltinnConfigError) as info:
            load_signing_key(material, key_id="kid-1", passphrase="pw" if form == "pkcs12" else None)
        assert info.value.field == "password", form
        assert "1024 bits" in str(info.value) and "2048" in str(info.value), form


def test_a_2048_bit_key_is_enough() -> None:
    assert load_signing_key(pem(rsa_key()), key_id="kid-1").private_key.key_size == 2048

"""Key material for the Maskinporten grant: PEM, JWK JSON or PKCS#12, loaded once into a :class:`SigningKey`.

Maskinporten accepts an assertion signed with either a key registered on the client (the JWT header names it
with ``kid``) or a business certificate (the header carries the chain as ``x5c``). Users hold that key in
whichever form their tooling produced, so all common forms are accepted:

* PEM: ``BEGIN PRIVATE KEY`` / ``RSA PRIVATE KEY`` / ``ENCRYPTED PRIVATE KEY`` (with
  ``private_key_passphrase``), optionally followed by the certificate chain in the same text;
* JWK JSON (``{"kty": "RSA", "d": ..., "kid": ...}``), also base64-encoded as Digdir's libraries take it;
  ``kid`` defaults to the JWK's own;
* PKCS#12 (``.p12``/``.pfx``) as base64, with ``private_key_passphrase`` as its password; the chain in the
  bundle becomes ``x5c``.

No message raised here ever quotes the key text, and :class:`SigningKey` has no key in its ``repr``.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass, field
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import pkcs12

from airflow_provider_altinn_events.exceptions import AltinnConfigError

__all__ = ["MIN_RSA_KEY_BITS", "SigningKey", "load_signing_key"]

#: The smallest RSA key accepted: shorter RSA keys have not been considered safe for signatures since NIST
#: SP 800-131A, and a grant signed with a breakable key proves little (docs/connection.rst, "Key formats").
MIN_RSA_KEY_BITS = 2048


@dataclass(frozen=True)
class SigningKey:
    """A private RSA key ready for RS256, with how the JWT header identifies it.

    :param private_key: the key (never shown by ``repr``).
    :param kid: the key id registered at Maskinporten; when set the header carries ``kid``.
    :param x5c: base64 DER certificates, leaf first; used when there is no ``kid``.
    """

    private_key: rsa.RSAPrivateKey = field(repr=False)
    kid: str | None = None
    x5c: tuple[str, ...] = ()
    source_format: str = "pem"

    def jwt_headers(self) -> dict[str, Any]:
        """The JOSE header fields that tell Maskinporten which key signed the grant."""
        if self.kid:
            return {"kid": self.kid}
        return {"x5c": list(self.x5c)}


def load_signing_key(
    material: str,
    *,
    key_id: str | None = None,
    passphrase: str | None = None,
    certificate: str | None = None,
) -> SigningKey:
    """Load the connection's private key, whatever its format, and check it against ``kid`` and certificate.

    :param material: the connection password: PEM, JWK JSON, base64 JWK, or base64 PKCS#12.
    :param key_id: the connection's ``key_id`` extra; must match a JWK's own ``kid`` when both are given.
    :param passphrase: decrypts an encrypted PEM or a PKCS#12 bundle.
    :param certificate: PEM or base64 DER certificate chain for ``x5c``; its public key must match.
    :raises AltinnConfigError: the key does not parse, is not RSA, the passphrase is wrong or missing, the
        key does not match the certificate or the declared ``kid``, or neither ``kid`` nor a certificate is
        available to identify it.
    """
    text = material.strip()
    chain: list[x509.Certificate] = []
    jwk_kid: str | None = None
    if text.startswith("-----BEGIN"):
        fmt = "pem"
        key = _load_pem(text.encode(), passphrase)
        chain = _pem_certificates(text.encode())
    elif text.startswith("{"):
        fmt = "jwk"
        key, jwk_kid = _load_jwk(text)
    else:
        raw = _b64decode(text)
        if raw.lstrip().startswith(b"-----BEGIN"):
            fmt = "pem"
            key = _load_pem(raw, passphrase)
            chain = _pem_certificates(raw)
        elif raw.lstrip().startswith(b"{"):
            fmt = "jwk"
            key, jwk_kid = _load_jwk(raw.decode("utf-8", "replace"))
        else:
            fmt = "pkcs12"
            key, chain = _load_pkcs12_or_der(raw, passphrase)

    if certificate:
        chain = _certificates(certificate)
    if chain:
        leaf_key = chain[0].public_key()
        if (
            not isinstance(leaf_key, rsa.RSAPublicKey)
            or leaf_key.public_numbers() != key.public_key().public_numbers()
        ):
            raise AltinnConfigError(
                "the certificate (x5c) does not belong to the private key: its public key differs; use the "
                "certificate issued for this key, leaf first",
                field="certificate",
            )

    if key_id and jwk_kid and key_id != jwk_kid:
        raise AltinnConfigError(
            f"the key's JWK kid {jwk_kid!r} does not match the declared key_id {key_id!r}; remove key_id to use "
            "the JWK's own kid, or use the key registered under that kid",
            field="key_id",
        )
    kid = key_id or jwk_kid
    x5c = tuple(
        base64.b64encode(cert.public_bytes(serialization.Encoding.DER)).decode("ascii") for cert in chain
    )
    if not kid and not x5c:
        raise AltinnConfigError(
            "Maskinporten needs to know which key signed the grant: set extra key_id to the kid registered "
            "for this key, or give the business certificate (extra certificate, or a PKCS#12 bundle) for x5c",
            field="key_id",
        )
    return SigningKey(private_key=key, kid=kid, x5c=x5c, source_format=fmt)


def _rsa(key: object) -> rsa.RSAPrivateKey:
    if not isinstance(key, rsa.RSAPrivateKey):
        raise AltinnConfigError(
            f"the private key is a {type(key).__name__.lstrip('_')}, but the Maskinporten grant is signed with "
            "RS256 and needs an RSA key",
            field="password",
        )
    if key.key_size < MIN_RSA_KEY_BITS:
        raise AltinnConfigError(
            f"the private key is an RSA key of {key.key_size} bits; at least {MIN_RSA_KEY_BITS} bits are "
            "required (generate a new key, e.g. openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:3072, "
            "and register its public key at Maskinporten)",
            field="password",
        )
    return key


def _load_pem(data: bytes, passphrase: str | None) -> rsa.RSAPrivateKey:
    if b"PRIVATE KEY-----" not in data:
        raise AltinnConfigError(
            "the PEM text holds no private key (expected a 'BEGIN PRIVATE KEY' or 'BEGIN RSA PRIVATE KEY' block)",
            field="password",
        )
    password = passphrase.encode() if passphrase else None
    try:
        key = serialization.load_pem_private_key(data, password=password)
    except TypeError:
        if password is None:
            raise AltinnConfigError(
                "the PEM private key is encrypted: set extra private_key_passphrase",
                field="private_key_passphrase",
            ) from None
        raise AltinnConfigError(
            "private_key_passphrase is set but the PEM private key is not encrypted: remove the passphrase",
            field="private_key_passphrase",
        ) from None
    except ValueError:
        if password is not None and b"ENCRYPTED" in data:
            raise AltinnConfigError(
                "could not decrypt the PEM private key: private_key_passphrase is wrong",
                field="private_key_passphrase",
            ) from None
        raise AltinnConfigError(
            "the private key in password is not a valid PEM key (is it complete, with its BEGIN/END lines?)",
            field="password",
        ) from None
    except Exception:  # cryptography raises UnsupportedAlgorithm and friends for exotic input
        raise AltinnConfigError("the PEM private key could not be loaded", field="password") from None
    return _rsa(key)


def _pem_certificates(data: bytes) -> list[x509.Certificate]:
    if b"-----BEGIN CERTIFICATE-----" not in data:
        return []
    try:
        return x509.load_pem_x509_certificates(data)
    except ValueError:
        raise AltinnConfigError(
            "the certificate in the PEM text does not parse", field="certificate"
        ) from None


def _certificates(text: str) -> list[x509.Certificate]:
    stripped = text.strip()
    if stripped.startswith("-----BEGIN"):
        return _pem_certificates(stripped.encode()) or _no_certificate()
    try:
        return [
            x509.load_der_x509_certificate(_b64decode(part, field_name="certificate"))
            for part in stripped.split()
        ]
    except ValueError:
        raise AltinnConfigError(
            "extra certificate must be PEM certificates or base64 DER (leaf first)", field="certificate"
        ) from None


def _no_certificate() -> list[x509.Certificate]:
    raise AltinnConfigError("extra certificate holds no 'BEGIN CERTIFICATE' block", field="certificate")


def _load_jwk(text: str) -> tuple[rsa.RSAPrivateKey, str | None]:
    from jwt.algorithms import RSAAlgorithm

    try:
        jwk = json.loads(text)
    except ValueError:
        raise AltinnConfigError(
            "the private key looks like JWK JSON but is not valid JSON", field="password"
        ) from None
    if not isinstance(jwk, dict):
        raise AltinnConfigError("the JWK must be a JSON object", field="password")
    if "keys" in jwk and isinstance(jwk["keys"], list):  # a JWK set with one key
        if len(jwk["keys"]) != 1:
            raise AltinnConfigError("the JWK set must hold exactly one key", field="password")
        jwk = jwk["keys"][0]
    if jwk.get("kty") != "RSA":
        raise AltinnConfigError(
            f"the JWK has kty {jwk.get('kty')!r}, but the Maskinporten grant is signed with RS256 and needs kty 'RSA'",
            field="password",
        )
    if "d" not in jwk:
        raise AltinnConfigError(
            "the JWK is a public key (no 'd'); the connection needs the private JWK", field="password"
        )
    try:
        key = RSAAlgorithm.from_jwk(jwk)
    except Exception:
        raise AltinnConfigError("the JWK does not hold a valid RSA private key", field="password") from None
    kid = jwk.get("kid")
    return _rsa(key), str(kid) if kid else None


def _load_pkcs12_or_der(
    raw: bytes, passphrase: str | None
) -> tuple[rsa.RSAPrivateKey, list[x509.Certificate]]:
    password = passphrase.encode() if passphrase else None
    try:
        key, cert, extra = pkcs12.load_key_and_certificates(raw, password)
    except ValueError:
        try:
            der_key = serialization.load_der_private_key(raw, password=None)
        except Exception:
            der_key = None
        if der_key is not None:
            return _rsa(der_key), []
        if raw[:1] == b"\x30" and len(raw) > 64:  # an ASN.1 SEQUENCE: a bundle we could not open
            raise AltinnConfigError(
                "could not open the PKCS#12 bundle: private_key_passphrase is missing or wrong (or the bundle "
                "is damaged)",
                field="private_key_passphrase",
            ) from None
        raise AltinnConfigError(
            "the private key is not PEM, JWK JSON, base64 JWK, or base64 PKCS#12", field="password"
        ) from None
    if key is None:
        raise AltinnConfigError("the PKCS#12 bundle holds no private key", field="password")
    chain = ([cert] if cert is not None else []) + list(extra or [])
    return _rsa(key), chain


def _b64decode(text: str, *, field_name: str = "password") -> bytes:
    compact = "".join(text.split())
    try:
        return base64.b64decode(compact + "=" * (-len(compact) % 4), validate=True)
    except (binascii.Error, ValueError):
        try:
            return base64.urlsafe_b64decode(compact + "=" * (-len(compact) % 4))
        except (binascii.Error, ValueError):
            raise AltinnConfigError(
                "the private key is not PEM, JWK JSON, base64 JWK, or base64 PKCS#12", field=field_name
            ) from None

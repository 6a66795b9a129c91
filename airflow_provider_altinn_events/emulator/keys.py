"""The emulator's own signing keys (Maskinporten, Altinn Authentication, platform access tokens).

Keys are generated on first start and kept in the store's ``meta`` table, so with a data file the
tokens handed out before a restart still verify afterwards. In-memory emulators in one process share
one generated set (RSA generation costs ~0.1 s per key; a test session starts many emulators).
"""

from __future__ import annotations

import base64
import hashlib
import json
import threading
from dataclasses import dataclass
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from .store import Store

_ROLES = ("maskinporten", "altinn", "platform")
_PROCESS_KEYS: dict[str, bytes] = {}
_PROCESS_LOCK = threading.Lock()


@dataclass(frozen=True)
class SigningKey:
    """A private RSA key with the ``kid`` it is published under."""

    kid: str
    private_key: rsa.RSAPrivateKey

    @property
    def public_key(self) -> rsa.RSAPublicKey:
        return self.private_key.public_key()

    def jwk(self) -> dict[str, Any]:
        """The public half as a JWK (what ``/jwk`` and the OIDC ``jwks`` endpoints publish)."""
        numbers = self.public_key.public_numbers()
        return {
            "kty": "RSA",
            "use": "sig",
            "alg": "RS256",
            "kid": self.kid,
            "n": _b64uint(numbers.n),
            "e": _b64uint(numbers.e),
        }


@dataclass(frozen=True)
class KeySet:
    """The three signing keys one emulator uses."""

    maskinporten: SigningKey
    altinn: SigningKey
    platform: SigningKey


def load_keys(store: Store) -> KeySet:
    """Load the signing keys from the store, generating (and saving) missing ones."""
    found: dict[str, SigningKey] = {}
    for role in _ROLES:
        pem = store.get_meta(f"key:{role}")
        if pem is None:
            pem_bytes = _generate_pem(role) if store.path is None else _new_pem()
            store.set_meta(f"key:{role}", pem_bytes.decode())
        else:
            pem_bytes = pem.encode()
        private = serialization.load_pem_private_key(pem_bytes, password=None)
        assert isinstance(private, rsa.RSAPrivateKey)
        found[role] = SigningKey(kid=thumbprint(private.public_key()), private_key=private)
    return KeySet(**found)


def thumbprint(public_key: rsa.RSAPublicKey) -> str:
    """Upper-case SHA-1 hex of the DER public key, shaped like an X.509 thumbprint (Altinn's kid)."""
    der = public_key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return hashlib.sha1(der, usedforsecurity=False).hexdigest().upper()


def public_key_from_jwk(jwk: dict[str, Any] | str) -> rsa.RSAPublicKey:
    """Parse a public RSA JWK (dict or JSON text)."""
    data = json.loads(jwk) if isinstance(jwk, str) else jwk
    if data.get("kty") != "RSA":
        raise ValueError("only RSA keys are supported")
    n = int.from_bytes(_b64decode(str(data["n"])), "big")
    e = int.from_bytes(_b64decode(str(data["e"])), "big")
    return rsa.RSAPublicNumbers(e, n).public_key()


def public_pem(public_key: rsa.RSAPublicKey) -> str:
    return public_key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode()


def _generate_pem(role: str) -> bytes:
    with _PROCESS_LOCK:
        if role not in _PROCESS_KEYS:
            _PROCESS_KEYS[role] = _new_pem()
        return _PROCESS_KEYS[role]


def _new_pem() -> bytes:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _b64uint(value: int) -> str:
    raw = value.to_bytes((value.bit_length() + 7) // 8, "big")
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _b64decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))

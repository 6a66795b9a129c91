"""Test helpers for the client core: generated keys and certificates, connections, small MockTransport fakes.

Keys are generated at test time (never committed). The fakes here are deliberately tiny ``httpx.MockTransport``
handlers for pure client-core unit tests; everything above the client core talks to the emulator.
"""

from __future__ import annotations

import base64
import datetime
import functools
import json
import threading
import time
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import httpx
import jwt
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import NameOID

from airflow_provider_altinn_events.client.settings import AltinnSettings

BASE = "http://altinn.test"
RESOURCE = "urn:altinn:resource:ttd-test"


@functools.lru_cache(maxsize=4)
def rsa_key(n: int = 0) -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def pem(key: rsa.RSAPrivateKey, passphrase: str | None = None, traditional: bool = False) -> str:
    encryption: serialization.KeySerializationEncryption = (
        serialization.BestAvailableEncryption(passphrase.encode())
        if passphrase
        else serialization.NoEncryption()
    )
    fmt = serialization.PrivateFormat.TraditionalOpenSSL if traditional else serialization.PrivateFormat.PKCS8
    return key.private_bytes(serialization.Encoding.PEM, fmt, encryption).decode()


def private_jwk(key: rsa.RSAPrivateKey, kid: str | None = "jwk-kid") -> dict[str, Any]:
    jwk: dict[str, Any] = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(key))
    if kid:
        jwk["kid"] = kid
    return jwk


def certificate(key: rsa.RSAPrivateKey, name: str = "Test Org") -> x509.Certificate:
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.timezone.utc)
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=30))
        .sign(key, hashes.SHA256())
    )


def cert_pem(cert: x509.Certificate) -> str:
    return cert.public_bytes(serialization.Encoding.PEM).decode()


def pkcs12_b64(key: rsa.RSAPrivateKey, cert: x509.Certificate, password: str | None) -> str:
    encryption: serialization.KeySerializationEncryption = (
        serialization.BestAvailableEncryption(password.encode()) if password else serialization.NoEncryption()
    )
    blob = pkcs12.serialize_key_and_certificates(b"test", key, cert, None, encryption)
    return base64.b64encode(blob).decode()


def conn(
    *,
    host: str | None = BASE,
    login: str | None = "client-1",
    password: str | None = None,
    conn_id: str = "altinn_test",
    **extra: Any,
) -> SimpleNamespace:
    extra.setdefault("environment", "custom")
    if password is None:
        password = pem(rsa_key())
    if "key_id" not in extra:
        extra["key_id"] = "kid-1"
    extra = {k: v for k, v in extra.items() if v is not None}
    return SimpleNamespace(conn_id=conn_id, host=host, login=login, password=password, extra_dejson=extra)


def settings(**kwargs: Any) -> AltinnSettings:
    return AltinnSettings.from_connection(conn(**kwargs))


@dataclass
class FakeAltinn:
    """A tiny Maskinporten + exchange + Events fake for MockTransport; counts grants and exchanges.

    ``events`` responses come from ``events_handler``; token lifetime and failures are configurable.
    """

    token_lifetime: float = 1800.0
    clock: Callable[[], float] = time.time
    grant_status: int = 200
    grant_body: Any = None
    exchange_status: int = 200
    quote_exchange: bool = False
    public_key: rsa.RSAPublicKey | None = None
    events_handler: Callable[[httpx.Request], httpx.Response] | None = None
    grants: int = 0
    exchanges: int = 0
    assertions: list[str] = field(default_factory=list)
    tokens: list[str] = field(default_factory=list)
    requests: list[httpx.Request] = field(default_factory=list)
    revoked: set[str] = field(default_factory=set)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self.handle)

    def handle(self, request: httpx.Request) -> httpx.Response:
        with self._lock:
            self.requests.append(request)
        path = request.url.path
        if path == "/maskinporten/token":
            return self._grant(request)
        if path == "/authentication/api/v1/exchange/maskinporten":
            return self._exchange(request)
        auth = request.headers.get("Authorization", "")
        token = auth.removeprefix("Bearer ")
        if token not in self.tokens or token in self.revoked:
            return httpx.Response(401)
        claims = jwt.decode(token, options={"verify_signature": False})
        if claims["exp"] <= self.clock():
            return httpx.Response(401)
        if self.events_handler is not None:
            return self.events_handler(request)
        if path.endswith("/subscriptions"):
            return httpx.Response(200, json={"count": 0, "subscriptions": []})
        return httpx.Response(200, json=[])

    def _grant(self, request: httpx.Request) -> httpx.Response:
        form = dict(urllib.parse.parse_qsl(request.content.decode()))
        with self._lock:
            self.grants += 1
            self.assertions.append(form["assertion"])
        if self.public_key is not None:
            jwt.decode(
                form["assertion"], self.public_key, algorithms=["RS256"], audience=f"{BASE}/maskinporten/"
            )
        if self.grant_status != 200:
            return httpx.Response(self.grant_status, json=self.grant_body)
        return httpx.Response(200, json={"access_token": f"mp-token-{self.grants}", "expires_in": 120})

    def _exchange(self, request: httpx.Request) -> httpx.Response:
        with self._lock:
            self.exchanges += 1
            n = self.exchanges
        assert request.headers["Authorization"].startswith("Bearer mp-token-")
        if self.exchange_status != 200:
            return httpx.Response(self.exchange_status)
        now = int(self.clock())
        token = jwt.encode(
            {"iat": now, "exp": now + int(self.token_lifetime), "n": n, "scope": "altinn:events.subscribe"},
            rsa_key(1),
            algorithm="RS256",
        )
        with self._lock:
            self.tokens.append(token)
        body = json.dumps(token) if self.quote_exchange else token
        return httpx.Response(200, text=body, headers={"Content-Type": "text/plain; charset=utf-8"})


def event(event_id: str, **attrs: Any) -> dict[str, Any]:
    return {
        "specversion": "1.0",
        "id": event_id,
        "source": "urn:test",
        "type": "t.created",
        "resource": RESOURCE,
        **attrs,
    }


class FakeClock:
    def __init__(self, now: float | None = None) -> None:
        self.now = time.time() if now is None else now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds

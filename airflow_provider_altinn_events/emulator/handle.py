"""What the pytest fixtures hand a test: a registered client on a running emulator, plus admin helpers.

Usable outside pytest as well (``EmulatorHandle.create(base_url)``). Keys are generated at run time
with ``cryptography``; nothing secret is ever written to disk.
"""

from __future__ import annotations

import base64
import functools
import json
import ssl
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import httpx
import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

DEFAULT_SCOPES = ("altinn:events.subscribe", "altinn:events.publish")
ALLOWED_SCOPES = (
    "altinn:events.subscribe",
    "altinn:events.publish",
    "altinn:events.publish.admin",
    "altinn:serviceowner",
)
DEFAULT_ORGNUMBER = "991825827"
DEFAULT_ORG = "ttd"


def sdk_event_to_dict(event: Any) -> dict[str, Any]:
    """A dict or a ``cloudevents`` SDK event as the structured-mode JSON object it stands for.

    Duck-typed (``get_attributes`` / ``get_data``), so the SDK stays optional. The emulator's own copy of
    this conversion: the emulator shares no code with the provider's client.
    """
    if isinstance(event, dict):
        body = dict(event)
    elif callable(getattr(event, "get_attributes", None)) and callable(getattr(event, "get_data", None)):
        body = {k: v for k, v in dict(event.get_attributes()).items() if v is not None}
        data = event.get_data()
        if data is not None:
            body["data"] = data
    else:
        raise TypeError(f"expected a dict or a cloudevents SDK event, got {type(event).__name__}")
    moment = body.get("time")
    if isinstance(moment, datetime):
        body["time"] = moment.isoformat().replace("+00:00", "Z")
    data = body.get("data")
    if isinstance(data, (bytes, bytearray)):
        del body["data"]
        body["data_base64"] = base64.b64encode(bytes(data)).decode("ascii")
    return body


def generate_private_key_pem() -> str:
    """A fresh RSA-2048 private key (PKCS#8 PEM, unencrypted)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()


@functools.lru_cache(maxsize=1)
def shared_ssl_context() -> ssl.SSLContext:
    """One default SSL context for all handles: httpx builds one per client otherwise (~0.1 s each)."""
    return ssl.create_default_context()


@functools.lru_cache(maxsize=64)
def load_private_key(private_key_pem: str) -> rsa.RSAPrivateKey:
    """Parse a PEM once (RSA key checks make parsing cost ~0.1 s; tests sign many grants)."""
    key = serialization.load_pem_private_key(
        private_key_pem.encode(), password=None, unsafe_skip_rsa_key_validation=True
    )
    if not isinstance(key, rsa.RSAPrivateKey):
        raise ValueError("only RSA keys are supported")
    return key


def public_key_pem(private_key_pem: str) -> str:
    key = load_private_key(private_key_pem)
    return (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )


@dataclass(frozen=True)
class ClientCredentials:
    """A Maskinporten client registered on the emulator."""

    client_id: str
    key_id: str
    private_key_pem: str = field(repr=False)
    scopes: tuple[str, ...]
    orgnumber: str
    org: str | None


class EmulatorHandle:
    """A running emulator with one registered client (``client_id``, ``key_id``, ``private_key_pem``).

    :param base_url: the emulator's base URL.
    :param credentials: the default client; ``scopes`` are those the connection requests.
    """

    def __init__(self, base_url: str, credentials: ClientCredentials) -> None:
        self.base_url = base_url.rstrip("/")
        self.credentials = credentials
        self.admin = httpx.Client(base_url=self.base_url, timeout=30.0, verify=shared_ssl_context())
        #: the dedicated server behind this handle, when a factory fixture started one
        self.server: Any = None

    @classmethod
    def create(
        cls,
        base_url: str,
        *,
        private_key_pem: str | None = None,
        scopes: Sequence[str] = DEFAULT_SCOPES,
        client_id: str | None = None,
    ) -> EmulatorHandle:
        """Register a client on an emulator and return a handle for it."""
        handle = cls(base_url, ClientCredentials("", "", "", tuple(scopes), DEFAULT_ORGNUMBER, DEFAULT_ORG))
        handle.credentials = handle.register_client(
            client_id=client_id, private_key_pem=private_key_pem, requested_scopes=scopes
        )
        return handle

    # -- the registered client -----------------------------------------------------------------
    @property
    def client_id(self) -> str:
        return self.credentials.client_id

    @property
    def key_id(self) -> str:
        return self.credentials.key_id

    @property
    def private_key_pem(self) -> str:
        return self.credentials.private_key_pem

    @property
    def scopes(self) -> tuple[str, ...]:
        return self.credentials.scopes

    def connection_dict(self, **extra_overrides: Any) -> dict[str, Any]:
        """The Airflow connection (JSON form) for this client; keyword arguments override ``extra``."""
        extra: dict[str, Any] = {
            "environment": "custom",
            "key_id": self.key_id,
            "scopes": " ".join(self.scopes),
        }
        extra.update(extra_overrides)
        return {
            "conn_type": "altinn_events",
            "host": self.base_url,
            "login": self.client_id,
            "password": self.private_key_pem,
            "extra": extra,
        }

    def connection_json(self, **extra_overrides: Any) -> str:
        """:meth:`connection_dict` as JSON, ready for ``AIRFLOW_CONN_ALTINN_EVENTS_DEFAULT``."""
        return json.dumps(self.connection_dict(**extra_overrides))

    # -- admin ---------------------------------------------------------------------------------
    def _admin(self, method: str, path: str, body: Any = None, expected: int = 200) -> Any:
        response = self.admin.request(method, path, json=body)
        if response.status_code != expected:
            raise RuntimeError(f"{method} {path} -> {response.status_code}: {response.text}")
        return response.json()

    def register_client(
        self,
        client_id: str | None = None,
        *,
        private_key_pem: str | None = None,
        scopes: Sequence[str] = ALLOWED_SCOPES,
        requested_scopes: Sequence[str] | None = None,
        orgnumber: str = DEFAULT_ORGNUMBER,
        org: str | None = DEFAULT_ORG,
        key_id: str | None = None,
    ) -> ClientCredentials:
        """Register a Maskinporten client (a fresh key unless given) and return its credentials.

        :param scopes: the scopes the client may request.
        :param requested_scopes: the scopes its connection asks for (default: the handle's default).
        """
        pem = private_key_pem or generate_private_key_pem()
        cid = client_id or str(uuid.uuid4())
        kid = key_id or f"key-{cid[:8]}"
        body: dict[str, Any] = {
            "client_id": cid,
            "public_key_pem": public_key_pem(pem),
            "kid": kid,
            "scopes": list(scopes),
            "orgnumber": orgnumber,
        }
        if org:
            body["org"] = org
        self._admin("POST", "/_emulator/clients", body, 201)
        return ClientCredentials(cid, kid, pem, tuple(requested_scopes or DEFAULT_SCOPES), orgnumber, org)

    def add_access(
        self, resource: str, consumer: str, actions: Sequence[str] = ("publish", "subscribe", "read")
    ) -> dict[str, Any]:
        """Add a policy rule: only listed consumers get the listed actions on ``resource``."""
        return dict(
            self._admin(
                "POST",
                "/_emulator/access",
                {"resource": resource, "consumer": consumer, "actions": list(actions)},
                201,
            )
        )

    def platform_access_token(self, org: str, app: str) -> str:
        """A ``PlatformAccessToken`` header value, as an Altinn app ``org/app`` would hold."""
        return str(self._admin("POST", "/_emulator/platform-access-token", {"org": org, "app": app})["token"])

    def add_fault(self, **fault: Any) -> dict[str, Any]:
        """Register a fault (``path``, ``method``, ``status``, ``retry_after``, ``delay_ms``,
        ``drop_connection``, ``times``)."""
        return dict(self._admin("POST", "/_emulator/faults", fault, 201))

    def clear_faults(self) -> None:
        self._admin("DELETE", "/_emulator/faults")

    def stats(self) -> dict[str, Any]:
        return dict(self._admin("GET", "/_emulator/stats"))

    def generate(self, resource: str, count: int, **fields: Any) -> dict[str, Any]:
        """Insert ``count`` events fast (``type``, ``subject``, ``source``, ``alternativesubject``, ``data``)."""
        return dict(
            self._admin(
                "POST", "/_emulator/events/generate", {"resource": resource, "count": count, **fields}, 201
            )
        )

    def publish(self, event: Any, token: str | None = None) -> httpx.Response:
        """``POST /events`` one event, as a publisher would send it: a dict or a ``cloudevents`` SDK event
        (``cloudevents.core`` or ``cloudevents.v1``; its attributes plus data, ``datetime`` times as RFC 3339,
        ``bytes`` data as ``data_base64``). Returns the response (200 when accepted; see docs/contract.rst).

        :param token: an Altinn token; default: a fresh one with this handle's client.
        """
        body = sdk_event_to_dict(event)
        return self.admin.post(
            "/events/api/v1/events",
            content=json.dumps(body),
            headers={
                "Authorization": f"Bearer {token or self.altinn_token()}",
                "Content-Type": "application/cloudevents+json",
            },
        )

    def reset(self) -> None:
        """Forget everything on the emulator and register this handle's client again."""
        self._admin("POST", "/_emulator/reset")
        creds = self.credentials
        self.register_client(
            creds.client_id,
            private_key_pem=creds.private_key_pem,
            requested_scopes=creds.scopes,
            orgnumber=creds.orgnumber,
            org=creds.org,
            key_id=creds.key_id,
        )

    # -- tokens, the way a real client gets them ----------------------------------------------------
    def grant_assertion(
        self, scopes: Sequence[str] | None = None, credentials: ClientCredentials | None = None, **claims: Any
    ) -> str:
        """A signed JWT-bearer grant for the Maskinporten endpoint (extra ``claims`` override)."""
        creds = credentials or self.credentials
        now = int(time.time())
        body: dict[str, Any] = {
            "aud": f"{self.base_url}/maskinporten/",
            "iss": creds.client_id,
            "scope": " ".join(scopes or creds.scopes),
            "iat": now,
            "exp": now + 60,
            "jti": str(uuid.uuid4()),
        }
        body.update(claims)
        return jwt.encode(
            body, load_private_key(creds.private_key_pem), algorithm="RS256", headers={"kid": creds.key_id}
        )

    def maskinporten_token(
        self, scopes: Sequence[str] | None = None, credentials: ClientCredentials | None = None
    ) -> str:
        response = self.admin.post(
            "/maskinporten/token",
            data={
                "grant_type": "urn:ietf:params:oauth:grant-type:jwt-bearer",
                "assertion": self.grant_assertion(scopes, credentials),
            },
        )
        response.raise_for_status()
        return str(response.json()["access_token"])

    def altinn_token(
        self, scopes: Sequence[str] | None = None, credentials: ClientCredentials | None = None
    ) -> str:
        """Grant + exchange: an Altinn token for the Events API."""
        response = self.admin.get(
            "/authentication/api/v1/exchange/maskinporten",
            headers={"Authorization": f"Bearer {self.maskinporten_token(scopes, credentials)}"},
        )
        response.raise_for_status()
        return response.text

    def close(self) -> None:
        self.admin.close()

    def __repr__(self) -> str:
        return f"EmulatorHandle(base_url={self.base_url!r}, client_id={self.client_id!r})"

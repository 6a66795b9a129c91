"""Who is calling the Events API: Altinn token verification, scopes, identity, platform access tokens.

The Events API accepts only tokens signed by Altinn Authentication (here: the emulator's exchange key),
from ``Authorization: Bearer`` or the ``AltinnStudioRuntime`` cookie; issuer and audience are not
checked, expiry is required and checked with zero clock skew (docs/contract.rst, "contract-platform-token").
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Any

import jwt
from starlette.requests import Request

from .keys import KeySet

log = logging.getLogger(__name__)

SCOPE_PUBLISH = "altinn:events.publish"
SCOPE_PUBLISH_ADMIN = "altinn:events.publish.admin"
SCOPE_SUBSCRIBE = "altinn:events.subscribe"
SYSTEMUSER_TYPE = "urn:altinn:systemuser"
PLATFORM_TOKEN_HEADER = "PlatformAccessToken"


@dataclass(frozen=True)
class Principal:
    """An authenticated caller of the Events API."""

    claims: dict[str, Any]
    scopes: frozenset[str] = field(default_factory=frozenset)

    @property
    def org(self) -> str | None:
        value = self.claims.get("urn:altinn:org")
        return str(value) if value else None

    @property
    def orgnumber(self) -> str | None:
        value = self.claims.get("urn:altinn:orgNumber")
        return str(value) if value else None

    @property
    def user_id(self) -> str | None:
        value = self.claims.get("urn:altinn:userid")
        return str(value) if value else None

    @property
    def systemuser_id(self) -> str | None:
        """The system user id from ``authorization_details`` (``ClaimsPrincipalExtensions.GetSystemUser``)."""
        details = self.claims.get("authorization_details")
        if isinstance(details, dict):
            details = [details]
        if not isinstance(details, list):
            return None
        for entry in details:
            if isinstance(entry, dict) and entry.get("type") == SYSTEMUSER_TYPE:
                ids = entry.get("systemuser_id")
                if isinstance(ids, list) and ids and ids[0]:
                    return str(ids[0])
                if isinstance(ids, str) and ids:
                    return ids
        return None

    @property
    def identity(self) -> str | None:
        """The consumer/createdBy string (``SubscriptionService.GetEntityFromPrincipal``; first match wins)."""
        if self.org:
            return f"/org/{self.org}"
        if self.user_id:
            return f"/user/{self.user_id}"
        if self.systemuser_id:
            return f"/systemuser/{self.systemuser_id}"
        if self.orgnumber:
            return f"/organisation/{self.orgnumber}"
        return None

    @property
    def identities(self) -> frozenset[str]:
        """Every consumer name this caller answers to (for the local policy's rules)."""
        names = set()
        if self.org:
            names.add(f"/org/{self.org}")
        if self.user_id:
            names.add(f"/user/{self.user_id}")
        if self.systemuser_id:
            names.add(f"/systemuser/{self.systemuser_id}")
        if self.orgnumber:
            names.add(f"/organisation/{self.orgnumber}")
        return frozenset(names)

    def has_scope(self, scope: str) -> bool:
        return scope.lower() in self.scopes


def _bearer(request: Request) -> str | None:
    header = request.headers.get("authorization")
    if header:
        scheme, _, token = header.partition(" ")
        if scheme.lower() == "bearer" and token.strip():
            return token.strip()
        return None
    cookie = request.cookies.get("AltinnStudioRuntime")
    return cookie or None


def authenticate(request: Request, keys: KeySet) -> Principal | None:
    """The caller's principal, or ``None`` (-> 401) when the token is missing, forged or expired."""
    token = _bearer(request)
    if token is None:
        return None
    try:
        claims = jwt.decode(
            token,
            keys.altinn.public_key,
            algorithms=["RS256"],
            options={"require": ["exp"], "verify_aud": False, "verify_iss": False},
            leeway=0,
        )
    except jwt.PyJWTError as exc:
        log.info("Rejected Altinn token: %s", type(exc).__name__)
        return None
    raw_scope = claims.get("urn:altinn:scope") or claims.get("scope") or ""
    scopes = frozenset(s.lower() for s in str(raw_scope).split() if s)
    return Principal(claims=claims, scopes=scopes)


def platform_access(request: Request, keys: KeySet) -> tuple[str, str] | None:
    """The ``(org, app)`` of a valid ``PlatformAccessToken`` header, else ``None``.

    Exactly one header value is required; the signature must be the emulator's platform key and the
    token unexpired (zero skew), as ``AccessTokenHandlerBase`` checks.
    """
    values = request.headers.getlist(PLATFORM_TOKEN_HEADER)
    if len(values) != 1 or not values[0]:
        return None
    try:
        claims = jwt.decode(
            values[0],
            keys.platform.public_key,
            algorithms=["RS256"],
            options={"require": ["exp"], "verify_aud": False, "verify_iss": False},
            leeway=0,
        )
    except jwt.PyJWTError:
        return None
    issuer = str(claims.get("iss") or "")
    app = str(claims.get("urn:altinn:app") or "")
    return (issuer, app) if issuer else None


def issue_platform_access_token(keys: KeySet, org: str, app: str, lifetime: int) -> str:
    """A token as an Altinn app holds it: ``iss`` = org, ``urn:altinn:app`` = app."""
    now = int(time.time())
    claims = {
        "iss": org,
        "aud": "platform.altinn.no",
        "urn:altinn:app": app,
        "iat": now,
        "nbf": now,
        "exp": now + lifetime,
    }
    return jwt.encode(
        claims, keys.platform.private_key, algorithm="RS256", headers={"kid": keys.platform.kid}
    )

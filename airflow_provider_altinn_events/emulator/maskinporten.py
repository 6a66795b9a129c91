"""Emulated Maskinporten: the JWT-bearer grant (``POST /maskinporten/token``), metadata and JWKS.

Checks a grant the way docs/contract.rst, "contract-maskinporten" describes: RS256/384/512, a registered
``kid`` (or an ``x5c``
leaf certificate whose public key is registered), signature, ``iss`` = client id, ``aud`` = issuer,
``iat`` within 10 s, ``0 < exp - iat <= 120``, unexpired, fresh ``jti``, known claims only, scopes
the client may have, and the optional ``consumer_org`` / system user ``authorization_details``.
"""

from __future__ import annotations

import base64
import logging
import re
import time
import uuid
from typing import Any
from urllib.parse import parse_qs

import jwt
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import rsa
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from .bodies import media_type, read_body
from .clients import client_public_keys
from .responses import json_response, oauth_error
from .state import EmulatorState, get_state

log = logging.getLogger(__name__)

GRANT_TYPE = "urn:ietf:params:oauth:grant-type:jwt-bearer"
ALGORITHMS = ("RS256", "RS384", "RS512")
SKEW = 10
MAX_GRANT_LIFETIME = 120
KNOWN_CLAIMS = frozenset(
    {
        "aud",
        "iss",
        "iat",
        "exp",
        "jti",
        "scope",
        "resource",
        "pid",
        "consumer_org",
        "authorization_details",
        "iss_onbehalfof",
    }
)
_ORGNO = re.compile(r"^\d{9}$")
_ISO6523 = "iso6523-actorid-upis"


class GrantError(Exception):
    """A refused grant, answered as OAuth2 JSON."""

    def __init__(self, error: str, description: str, status: int = 400) -> None:
        super().__init__(description)
        self.error = error
        self.description = description
        self.status = status


async def token_endpoint(request: Request) -> Response:
    state = get_state(request)
    try:
        if media_type(request) != "application/x-www-form-urlencoded":
            raise GrantError(
                "invalid_request", "Content-Type must be application/x-www-form-urlencoded (MP-011)"
            )
        raw = await read_body(request, state.config.max_body_bytes)
        form = {k: v[0] for k, v in parse_qs(raw.decode("utf-8", "replace"), keep_blank_values=True).items()}
        grant_type = form.get("grant_type")
        if not grant_type:
            raise GrantError("invalid_request", "Missing grant_type parameter (MP-011)")
        if grant_type != GRANT_TYPE:
            raise GrantError("unsupported_grant_type", f"Unsupported grant_type: {grant_type}")
        assertion = form.get("assertion")
        if not assertion:
            raise GrantError("invalid_request", "Missing assertion parameter (MP-011)")
        body = verify_and_issue(state, assertion)
    except GrantError as exc:
        state.stats.bump("token_grant_failures")
        return oauth_error(exc.status, exc.error, exc.description)
    state.stats.bump("token_grants")
    return json_response(200, body, headers={"Cache-Control": "no-store", "Pragma": "no-cache"})


def verify_and_issue(state: EmulatorState, assertion: str) -> dict[str, Any]:
    """Check a grant and mint a Maskinporten access token.

    :raises GrantError: for every reason Maskinporten refuses a grant.
    """
    try:
        header = jwt.get_unverified_header(assertion)
        unverified = jwt.decode(assertion, options={"verify_signature": False})
    except jwt.PyJWTError as exc:
        raise GrantError("invalid_request", "Invalid assertion. Not a well-formed JWT (MP-011)") from exc
    alg = header.get("alg")
    if alg not in ALGORITHMS:
        raise GrantError("invalid_grant", f"Invalid assertion. Unsupported alg {alg!r}; use RS256 (MP-011)")
    client_id = unverified.get("iss")
    if not isinstance(client_id, str) or not client_id:
        raise GrantError("invalid_grant", "Invalid assertion. Missing iss (client_id) (MP-011)")
    client = state.store.get_client(client_id)
    if client is None:
        raise GrantError("invalid_client", f"Invalid client: unknown client_id {client_id} (MP-100)", 401)
    key, client_amr = _select_key(client, header)
    now = time.time()
    try:
        claims = jwt.decode(
            assertion,
            key,
            algorithms=list(ALGORITHMS),
            options={"verify_aud": False, "verify_exp": False, "verify_iat": False, "verify_nbf": False},
        )
    except jwt.InvalidSignatureError as exc:
        raise GrantError(
            "invalid_grant", "Invalid assertion. Client authentication failed: bad signature (MP-120)"
        ) from exc
    except jwt.PyJWTError as exc:
        raise GrantError("invalid_grant", "Invalid assertion (MP-011)") from exc
    unknown = sorted(set(claims) - KNOWN_CLAIMS)
    if unknown:
        raise GrantError(
            "invalid_grant", f"Invalid assertion. Unknown claim(s): {', '.join(unknown)} (MP-011)"
        )
    if claims.get("aud") != state.config.maskinporten_issuer:
        raise GrantError(
            "invalid_grant",
            f"Invalid assertion. Invalid audience {claims.get('aud')!r}; expected"
            f" {state.config.maskinporten_issuer!r} (MP-110)",
        )
    iat, exp = claims.get("iat"), claims.get("exp")
    if not isinstance(iat, int | float) or not isinstance(exp, int | float):
        raise GrantError("invalid_grant", "Invalid assertion. iat and exp are required (MP-011)")
    if iat > now + SKEW:
        raise GrantError("invalid_grant", "Invalid assertion. Issue time is after now (MP-130)")
    if iat < now - SKEW:
        raise GrantError("invalid_grant", "Invalid assertion. Issue time is too far in the past (MP-130)")
    if not 0 < exp - iat <= MAX_GRANT_LIFETIME:
        raise GrantError(
            "invalid_grant", "Invalid assertion. exp - iat must be between 1 and 120 seconds (MP-130)"
        )
    if exp <= now:
        raise GrantError("invalid_grant", "Invalid assertion. The grant has expired (MP-130)")
    jti = claims.get("jti")
    if not isinstance(jti, str) or not jti:
        raise GrantError("invalid_grant", "Invalid assertion. Missing jti (MP-011)")
    if not state.store.use_jti(client_id, jti, float(exp), now):
        raise GrantError("invalid_grant", "Invalid assertion. The jti has been used before (MP-012)")
    scopes = str(claims.get("scope") or "").split()
    if not scopes:
        raise GrantError("invalid_scope", "Missing scope (MP-200)")
    allowed = set(client.get("scopes") or ())
    missing = [s for s in scopes if s not in allowed]
    if missing:
        raise GrantError(
            "invalid_scope", f"Scope(s) not allowed for this client: {' '.join(missing)} (MP-200)"
        )
    token_claims = _token_claims(state, client, claims, scopes, client_amr, int(now))
    token = jwt.encode(
        token_claims,
        state.keys.maskinporten.private_key,
        algorithm="RS256",
        headers={"kid": state.keys.maskinporten.kid},
    )
    return {
        "access_token": token,
        "token_type": "Bearer",
        "expires_in": state.config.maskinporten_lifetime,
        "scope": " ".join(scopes),
    }


def _select_key(client: dict[str, Any], header: dict[str, Any]) -> tuple[rsa.RSAPublicKey, str]:
    keys = client_public_keys(client)
    kid, x5c = header.get("kid"), header.get("x5c")
    if kid is not None and x5c is not None:
        raise GrantError("invalid_grant", "Invalid assertion. Use either kid or x5c, not both (MP-011)")
    if x5c is not None:
        if not isinstance(x5c, list) or not x5c or not all(isinstance(c, str) for c in x5c):
            raise GrantError(
                "invalid_grant", "Invalid assertion. x5c must be an array of base64 DER certificates (MP-123)"
            )
        try:
            leaf = x509.load_der_x509_certificate(base64.b64decode(x5c[0]))
        except ValueError as exc:
            raise GrantError(
                "invalid_grant", "Invalid assertion. Malformed x5c certificate (MP-123)"
            ) from exc
        public = leaf.public_key()
        for registered in keys.values():
            if (
                isinstance(public, rsa.RSAPublicKey)
                and public.public_numbers() == registered.public_numbers()
            ):
                return registered, "virksomhetssertifikat"
        raise GrantError(
            "invalid_grant", "Invalid assertion. Certificate is not registered for this client (MP-120)"
        )
    if not isinstance(kid, str) or not kid:
        raise GrantError("invalid_grant", "Invalid assertion. Header must carry kid or x5c (MP-011)")
    if kid not in keys:
        raise GrantError(
            "invalid_client", f"Invalid client: kid {kid!r} is not registered for this client (MP-100)", 401
        )
    return keys[kid], "private_key_jwt"


def _token_claims(
    state: EmulatorState,
    client: dict[str, Any],
    grant: dict[str, Any],
    scopes: list[str],
    client_amr: str,
    now: int,
) -> dict[str, Any]:
    orgnumber = str(client.get("orgnumber") or "")
    claims: dict[str, Any] = {
        "iss": state.config.maskinporten_issuer,
        "client_amr": client_amr,
        "token_type": "Bearer",
        "aud": grant.get("resource") or "unspecified",
        "scope": " ".join(scopes),
        "client_id": client["client_id"],
        "consumer": {"authority": _ISO6523, "ID": f"0192:{orgnumber}"},
        "iat": now,
        "exp": now + state.config.maskinporten_lifetime,
        "jti": str(uuid.uuid4()),
    }
    consumer_org = grant.get("consumer_org")
    if consumer_org is not None:
        if not isinstance(consumer_org, str) or not _ORGNO.match(consumer_org):
            raise GrantError("invalid_request", "consumer_org must be a 9-digit organisation number (MP-011)")
        if consumer_org == orgnumber:
            raise GrantError(
                "invalid_request", "consumer_org cannot be the client's own organisation (MP-251)"
            )
        delegations = client.get("consumer_orgs")
        if delegations is not None and consumer_org not in delegations:
            raise GrantError("invalid_grant", f"Missing delegation from {consumer_org} (MP-251)", 403)
        claims["consumer"] = {"authority": _ISO6523, "ID": f"0192:{consumer_org}"}
        claims["supplier"] = {"authority": _ISO6523, "ID": f"0192:{orgnumber}"}
        claims["delegation_source"] = "https://www.altinn.no"
    details = grant.get("authorization_details")
    if details is not None:
        claims["authorization_details"] = [_systemuser(client, details)]
    return claims


def _systemuser(client: dict[str, Any], details: Any) -> dict[str, Any]:
    if not isinstance(details, list) or len(details) != 1 or not isinstance(details[0], dict):
        raise GrantError(
            "invalid_authorization_details", "authorization_details must hold exactly one entry (MP-303)"
        )
    entry = details[0]
    if entry.get("type") != "urn:altinn:systemuser":
        raise GrantError(
            "invalid_authorization_details",
            f"Unknown authorization_details type {entry.get('type')!r} (MP-301)",
        )
    unknown = sorted(set(entry) - {"type", "systemuser_org", "externalRef"})
    if unknown:
        raise GrantError(
            "invalid_authorization_details",
            f"Unknown authorization_details field(s): {', '.join(unknown)} (MP-302)",
        )
    org = entry.get("systemuser_org")
    org_id = org.get("ID") if isinstance(org, dict) else None
    if (
        not isinstance(org, dict)
        or org.get("authority") != _ISO6523
        or not isinstance(org_id, str)
        or not _ORGNO.match(org_id.partition(":")[2])
    ):
        raise GrantError("invalid_authorization_details", "Invalid systemuser_org (MP-303)")
    orgno = org_id.partition(":")[2]
    ref = str(entry.get("externalRef") or "")
    user_id = uuid.uuid5(
        uuid.NAMESPACE_URL, f"altinn-emulator:systemuser:{client['client_id']}:{orgno}:{ref}"
    )
    return {
        "type": "urn:altinn:systemuser",
        "systemuser_id": [str(user_id)],
        "systemuser_org": {"authority": _ISO6523, "ID": f"0192:{orgno}"},
        "system_id": str(client.get("system_id") or f"{client['client_id']}_system"),
    }


async def metadata(request: Request) -> Response:
    config = get_state(request).config
    issuer = config.maskinporten_issuer
    return json_response(
        200,
        {
            "issuer": issuer,
            "token_endpoint": f"{issuer}token",
            "jwks_uri": f"{issuer}jwk",
            "token_endpoint_auth_methods_supported": ["private_key_jwt"],
            "grant_types_supported": [GRANT_TYPE],
            "token_endpoint_auth_signing_alg_values_supported": list(ALGORITHMS),
            "authorization_details_types_supported": ["urn:altinn:systemuser"],
        },
    )


async def jwks(request: Request) -> Response:
    return json_response(200, {"keys": [get_state(request).keys.maskinporten.jwk()]})


routes = [
    Route("/maskinporten/token", token_endpoint, methods=["POST"]),
    Route("/maskinporten/.well-known/oauth-authorization-server", metadata, methods=["GET"]),
    Route("/maskinporten/jwk", jwks, methods=["GET"]),
    Route("/maskinporten/jwks", jwks, methods=["GET"]),
]

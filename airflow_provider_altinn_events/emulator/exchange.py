"""Emulated Altinn Authentication: the Maskinporten token exchange and Altinn's OIDC key endpoints.

``GET /authentication/api/v1/exchange/{provider}`` as ``AuthenticationController`` does it
(docs/contract.rst, "contract-exchange"): 401 with an empty body on any validation failure, the Altinn
token as ``text/plain``
or as a JSON string literal when ``Accept: application/json`` wins content negotiation.
"""

from __future__ import annotations

import base64
import json
import logging
import time
import uuid
from typing import Any

import jwt
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from .responses import empty, json_response, problem
from .state import EmulatorState, get_state

log = logging.getLogger(__name__)

_PROVIDERS = {"maskinporten", "id-porten", "altinnstudio"}
_DROPPED = {"aud", "iss", "client_amr", "sid"}
_MP_SKEW = 10


def _wants_json(request: Request) -> bool:
    """ASP.NET output formatter selection for a string: the first acceptable media type wins."""
    for part in request.headers.get("accept", "").split(","):
        media = part.split(";", 1)[0].strip().lower()
        if media in ("text/plain", "text/*", "*/*"):
            return False
        if media in ("application/json", "text/json", "application/*+json", "application/*"):
            return True
    return False


async def exchange(request: Request) -> Response:
    state = get_state(request)
    provider = request.path_params["provider"]
    if provider.lower() not in _PROVIDERS:
        return Response(
            f"Invalid token provider: {provider}. Trusted token providers are 'Maskinporten', 'Id-porten'"
            " and 'AltinnStudio'.",
            400,
            media_type="text/plain",
        )
    token = None if provider.lower() != "maskinporten" else _exchange_maskinporten(state, request)
    if token is None:
        state.stats.bump("token_exchange_failures")
        return empty(401)
    if isinstance(token, Response):
        return token
    state.stats.bump("token_exchanges")
    if _wants_json(request):
        return Response(json.dumps(token), 200, media_type="application/json; charset=utf-8")
    return Response(token, 200, media_type="text/plain; charset=utf-8")


def _exchange_maskinporten(state: EmulatorState, request: Request) -> str | Response | None:
    header = request.headers.get("authorization", "")
    scheme, _, raw = header.partition(" ")
    if scheme.lower() != "bearer" or not raw.strip():
        return None
    try:
        claims = jwt.decode(
            raw.strip(),
            state.keys.maskinporten.public_key,
            algorithms=["RS256"],
            options={"require": ["exp"], "verify_aud": False, "verify_iss": False},
            leeway=_MP_SKEW,
        )
    except jwt.PyJWTError as exc:
        log.info("Exchange refused a Maskinporten token: %s", type(exc).__name__)
        return None
    if claims.get("iss") != state.config.maskinporten_issuer:
        # Altinn checks that ``iss`` is a substring of its configured well-known URL; an empty or
        # partial issuer ("", "http", "/maskinporten/") would pass such a test, so the emulator
        # compares exactly (docs/contract.rst, issue 12 item 10).
        return None
    orgnumber = _consumer_orgnumber(claims.get("consumer"))
    if orgnumber is None:
        return None
    if "X-Altinn-EnterpriseUser-Authentication" in request.headers:
        return problem(
            410,
            "Virksomhetsbruker is no longer available. Altinn 2 enterprise users have been discontinued;"
            " use a system user instead.",
        )
    new_claims: dict[str, Any] = {k: v for k, v in claims.items() if k not in _DROPPED}
    if "altinn:serviceowner" in str(claims.get("scope") or ""):
        org = _service_owner(state, orgnumber, str(claims.get("client_id") or ""))
        if org == "digdir" and request.query_params.get("test", "").lower() == "true":
            org = "ttd"
        if org:
            new_claims["urn:altinn:org"] = org
    now = int(time.time())
    new_claims.update(
        {
            "urn:altinn:orgNumber": orgnumber,
            "urn:altinn:authenticatemethod": "maskinporten",
            "urn:altinn:authlevel": 3,
            "iss": state.config.altinn_issuer,
            "sid": str(uuid.uuid4()),
            "iat": now,
            "nbf": now,
            "exp": now + state.config.token_lifetime,
        }
    )
    key = state.keys.altinn
    x5t = base64.urlsafe_b64encode(bytes.fromhex(key.kid)).rstrip(b"=").decode()
    return jwt.encode(new_claims, key.private_key, algorithm="RS256", headers={"kid": key.kid, "x5t": x5t})


def _consumer_orgnumber(consumer: Any) -> str | None:
    if isinstance(consumer, str):
        try:
            consumer = json.loads(consumer)
        except ValueError:
            return None
    if not isinstance(consumer, dict) or consumer.get("authority") != "iso6523-actorid-upis":
        return None
    ident = str(consumer.get("ID") or "")
    if ":" not in ident:
        return None
    orgnumber = ident.split(":", 1)[1]
    return orgnumber or None


def _service_owner(state: EmulatorState, orgnumber: str, client_id: str) -> str | None:
    """The service-owner code for an org number: the calling client's ``org`` first, then any client's."""
    client = state.store.get_client(client_id) if client_id else None
    if client and client.get("org") and client.get("orgnumber") == orgnumber:
        return str(client["org"])
    for other in state.store.all_clients():
        if other.get("org") and other.get("orgnumber") == orgnumber:
            return str(other["org"])
    return None


async def openid_configuration(request: Request) -> Response:
    config = get_state(request).config
    issuer = config.altinn_issuer
    return json_response(
        200,
        {
            "issuer": issuer,
            "jwks_uri": f"{issuer}.well-known/openid-configuration/jwks",
            "authorization_endpoint": f"{config.base}/authentication/api/v1/authentication",
            "response_types_supported": ["token"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256"],
        },
    )


async def openid_jwks(request: Request) -> Response:
    key = get_state(request).keys.altinn
    jwk = key.jwk()
    jwk["x5t"] = base64.urlsafe_b64encode(bytes.fromhex(key.kid)).rstrip(b"=").decode()
    return json_response(200, {"keys": [jwk]})


routes = [
    Route("/authentication/api/v1/exchange/{provider}", exchange, methods=["GET"]),
    Route(
        "/authentication/api/v1/openid/.well-known/openid-configuration",
        openid_configuration,
        methods=["GET"],
    ),
    Route(
        "/authentication/api/v1/openid/.well-known/openid-configuration/jwks", openid_jwks, methods=["GET"]
    ),
]

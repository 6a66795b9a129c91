"""The token services as pure functions: the Maskinporten grant and the Altinn exchange.

The facts: docs/contract.rst, "contract-maskinporten", "contract-exchange".

``build_grant_assertion`` signs the RFC 7523 JWT; the ``build_*``/``parse_*`` pairs make and read the two
HTTP calls. :mod:`~airflow_provider_altinn_events.client.auth` strings them together, caches the result and
keeps the locks; nothing here holds state or does I/O.

Secrets discipline: the assertion and both tokens only ever travel inside request bodies and headers. Errors
quote the services' ``error``/``error_description`` only through :func:`.errors.redact` (anything shaped like a
token or a grant becomes ``[redacted]``), never a token.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import httpx

from airflow_provider_altinn_events.client.errors import parse_problem, redact, strip_query
from airflow_provider_altinn_events.client.settings import AltinnSettings
from airflow_provider_altinn_events.exceptions import AltinnAuthError, TokenExchangeError, TokenGrantError

if TYPE_CHECKING:
    from airflow_provider_altinn_events.client.keys import SigningKey

__all__ = [
    "GRANT_LIFETIME_SECONDS",
    "JWT_BEARER",
    "AltinnToken",
    "build_grant_assertion",
    "build_token_exchange_request",
    "build_token_grant_request",
    "parse_token_exchange_response",
    "parse_token_grant_response",
    "static_altinn_token",
]

JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"
#: Maskinporten allows at most 120 s between iat and exp; stay clear of that edge.
GRANT_LIFETIME_SECONDS = 100
#: Used when the exchanged token is not a readable JWT (never the case with Altinn), so we still refresh.
OPAQUE_TOKEN_LIFETIME_SECONDS = 300.0

_GRANT_HINTS = {
    "invalid_client": (
        "the client id is unknown in this Maskinporten environment, or the key id (kid) is not registered "
        "on the client: check login, extra key_id and extra environment"
    ),
    "invalid_grant": (
        "Maskinporten refused the signed assertion: a key that does not match the registered kid or "
        "certificate, a wrong audience (is the environment right?), an expired or replayed grant, or clock skew"
    ),
    "invalid_scope": (
        "a requested scope is not allowed for this client: compare extra scopes with the scopes granted "
        "to the client in Digdir's self-service portal"
    ),
    "invalid_request": "Maskinporten found the grant request malformed",
    "unauthorized_client": "this client may not use the JWT-bearer grant",
}


@dataclass(frozen=True)
class AltinnToken:
    """An Altinn token with its lifetime, read from its own ``iat``/``exp`` (decoded without verification).

    :param value: the token (never in ``repr``).
    :param expires_at: ``exp`` as epoch seconds.
    :param issued_at: ``iat`` as epoch seconds, or the time we received it.
    """

    value: str = field(repr=False)
    expires_at: float
    issued_at: float

    def refresh_at(self, margin_seconds: float) -> float:
        """When to fetch a new token: ``exp - margin``, the margin capped at a quarter of the lifetime so a
        short-lived token (the emulator's ``--token-lifetime 5``) is still used for most of its life."""
        lifetime = max(0.0, self.expires_at - self.issued_at)
        return self.expires_at - min(margin_seconds, lifetime / 4)

    def is_fresh(self, now: float, margin_seconds: float) -> bool:
        return now < self.refresh_at(margin_seconds)


def build_grant_assertion(
    settings: AltinnSettings, key: SigningKey, *, now: float, jti: str | None = None
) -> str:
    """Sign the JWT grant: RS256, ``kid`` or ``x5c`` header, ``aud`` = issuer, fresh ``jti``, 100 s lifetime.

    Only the claims Maskinporten documents are sent (it rejects unknown ones): ``aud, iss, scope, iat, exp,
    jti`` and, when configured, ``consumer_org`` and the system-user ``authorization_details``.
    """
    import jwt

    iat = int(now)
    claims: dict[str, Any] = {
        "aud": settings.maskinporten_issuer,
        "iss": settings.client_id,
        "scope": settings.scope,
        "iat": iat,
        "exp": iat + GRANT_LIFETIME_SECONDS,
        "jti": jti or str(uuid.uuid4()),
    }
    if settings.consumer_org:
        claims["consumer_org"] = settings.consumer_org
    if settings.system_user_org:
        claims["authorization_details"] = [
            {
                "type": "urn:altinn:systemuser",
                "systemuser_org": {
                    "authority": "iso6523-actorid-upis",
                    "ID": f"0192:{settings.system_user_org}",
                },
            }
        ]
    return jwt.encode(claims, key.private_key, algorithm="RS256", headers=key.jwt_headers())


def build_token_grant_request(settings: AltinnSettings, assertion: str) -> httpx.Request:
    """``POST {token_url}`` with the form-encoded JWT-bearer grant."""
    return httpx.Request(
        "POST",
        settings.maskinporten_token_url,
        data={"grant_type": JWT_BEARER, "assertion": assertion},
        headers={"Accept": "application/json"},
    )


def parse_token_grant_response(settings: AltinnSettings, response: httpx.Response) -> str:
    """The Maskinporten access token from a 200, or :class:`TokenGrantError` with the OAuth error.

    :raises TokenGrantError: any non-200 (``error``/``error_description`` and a hint in the message;
        retryable for 5xx and 429), or a 200 without ``access_token``.
    """
    url = strip_query(settings.maskinporten_token_url)
    if response.status_code == 200:
        try:
            body = response.json()
        except ValueError:
            body = None
        token = body.get("access_token") if isinstance(body, dict) else None
        if not isinstance(token, str) or not token:
            raise TokenGrantError(
                f"Maskinporten at {url} answered 200 without an access_token", status_code=200, url=url
            )
        return token
    error, description = _oauth_error(response)
    hint = _GRANT_HINTS.get(error or "", "")
    if response.status_code >= 500 or response.status_code == 429:
        hint = "Maskinporten is unavailable; retrying may help"
    message = f"Maskinporten refused the token grant for client {settings.client_id!r} at {url}"
    if hint:
        message = f"{message}: {hint}"
    raise TokenGrantError(
        message, status_code=response.status_code, error=error, description=description, url=url
    )


def build_token_exchange_request(settings: AltinnSettings, maskinporten_token: str) -> httpx.Request:
    """``GET .../exchange/maskinporten`` with the Maskinporten token; ``Accept: text/plain`` gets the raw JWT."""
    return httpx.Request(
        "GET",
        settings.exchange_url,
        headers={"Authorization": f"Bearer {maskinporten_token}", "Accept": "text/plain"},
    )


def parse_token_exchange_response(
    settings: AltinnSettings, response: httpx.Response, *, now: float
) -> AltinnToken:
    """The Altinn token from a 200, its lifetime from its own ``exp``.

    The body is the raw JWT (``text/plain``); a JSON string literal (``"eyJ..."``, what Altinn sends for
    ``Accept: application/json``) is unquoted too.

    :raises TokenExchangeError: any non-200, with why Altinn usually says so (401 has no body).
    """
    url = strip_query(settings.exchange_url)
    if response.status_code != 200:
        problem = parse_problem(response)
        if response.status_code == 401:
            hint = (
                "Altinn did not accept the Maskinporten token: it comes from a Maskinporten environment that "
                "does not pair with this Altinn environment (test.maskinporten.no pairs with tt02 and atNN, "
                "maskinporten.no with production), or it expired"
            )
        elif response.status_code >= 500 or response.status_code == 429:
            hint = "Altinn Authentication is unavailable; retrying may help"
        else:
            hint = "Altinn refused the token exchange"
        raise TokenExchangeError(
            f"the token exchange at {url} failed: {hint}",
            status_code=response.status_code,
            error=problem.title,
            description=problem.detail,
            url=url,
        )
    value = _unquote(response.text)
    if not value:
        raise TokenExchangeError(
            f"the token exchange at {url} answered 200 with an empty body", status_code=200, url=url
        )
    return _token_with_lifetime(value, now=now)


def static_altinn_token(value: str, *, now: float) -> AltinnToken:
    """Wrap the connection's static Altinn token (``auth = altinn_token``).

    :raises AltinnAuthError: the token is a JWT whose ``exp`` has passed: calling Altinn with it would only
        produce 401s, and nothing can refresh it.
    """
    token = _token_with_lifetime(_unquote(value), now=now, default_lifetime=float("inf"))
    if token.expires_at <= now:
        raise AltinnAuthError(
            "the static Altinn token in the connection's password has expired; put a fresh one there, or use "
            "auth 'maskinporten' so the provider fetches tokens itself",
            error="token_expired",
            retryable=False,
        )
    return token


def _unquote(text: str) -> str:
    value = text.strip()
    if value.startswith('"'):
        try:
            loaded = json.loads(value)
        except ValueError:
            loaded = None
        value = loaded if isinstance(loaded, str) else value.strip('"')
    return value.strip()


def _token_with_lifetime(
    value: str, *, now: float, default_lifetime: float = OPAQUE_TOKEN_LIFETIME_SECONDS
) -> AltinnToken:
    import jwt

    try:
        claims = jwt.decode(
            value, options={"verify_signature": False, "verify_exp": False, "verify_aud": False}
        )
    except jwt.PyJWTError:
        claims = {}
    exp, iat = claims.get("exp"), claims.get("iat")
    expires_at = float(exp) if isinstance(exp, (int, float)) else now + default_lifetime
    issued_at = float(iat) if isinstance(iat, (int, float)) else now
    return AltinnToken(value=value, expires_at=expires_at, issued_at=min(issued_at, now))


def _oauth_error(response: httpx.Response) -> tuple[str | None, str | None]:
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict):
        error = body.get("error")
        description = body.get("error_description")
        # both are the server's words: a proxy that echoes the grant or a token puts it in either one
        return (
            redact(str(error)) if error else None,
            redact(str(description)) if description else None,
        )
    problem = parse_problem(response)
    return problem.title, problem.detail

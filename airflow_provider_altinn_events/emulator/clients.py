"""The registry of Maskinporten clients (``POST /_emulator/clients``) and their public keys."""

from __future__ import annotations

import re
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from .keys import public_key_from_jwk, public_pem
from .store import Store

DEFAULT_SCOPES = ("altinn:events.subscribe",)
DEFAULT_ORGNUMBER = "991825827"
_ORGNO = re.compile(r"^\d{9}$")


class ClientRegistrationError(ValueError):
    """The registration body is unusable; the message says which field and why."""


def _load_public(pem: str) -> rsa.RSAPublicKey:
    data = pem.encode()
    key: Any
    try:
        if b"CERTIFICATE" in data:
            key = x509.load_pem_x509_certificate(data).public_key()
        else:
            key = serialization.load_pem_public_key(data)
    except ValueError as exc:
        raise ClientRegistrationError("public_key_pem is not a PEM public key or certificate") from exc
    if not isinstance(key, rsa.RSAPublicKey):
        raise ClientRegistrationError("only RSA keys are supported")
    return key


def register_client(store: Store, body: Any) -> dict[str, Any]:
    """Validate a registration body and store the client; a known client gains the new key.

    :raises ClientRegistrationError: on a missing or malformed field.
    """
    if not isinstance(body, dict):
        raise ClientRegistrationError("body must be a JSON object")
    client_id = body.get("client_id")
    if not isinstance(client_id, str) or not client_id:
        raise ClientRegistrationError("client_id is required")
    pem, jwk = body.get("public_key_pem"), body.get("jwk")
    if (pem is None) == (jwk is None):
        raise ClientRegistrationError("give exactly one of public_key_pem or jwk")
    kid = body.get("kid")
    if jwk is not None:
        if not isinstance(jwk, dict | str):
            raise ClientRegistrationError("jwk must be a JWK object")
        try:
            key = public_key_from_jwk(jwk)
        except (ValueError, KeyError, TypeError) as exc:
            raise ClientRegistrationError(f"jwk is not a usable RSA public key: {exc}") from exc
        if kid is None and isinstance(jwk, dict):
            kid = jwk.get("kid")
    else:
        if not isinstance(pem, str):
            raise ClientRegistrationError("public_key_pem must be a string")
        key = _load_public(pem)
    if not isinstance(kid, str) or not kid:
        raise ClientRegistrationError("kid is required (or a jwk carrying one)")
    scopes = body.get("scopes", list(DEFAULT_SCOPES))
    if isinstance(scopes, str):
        scopes = scopes.split()
    if not isinstance(scopes, list) or not all(isinstance(s, str) for s in scopes):
        raise ClientRegistrationError("scopes must be a list of strings")
    orgnumber = str(body.get("orgnumber") or DEFAULT_ORGNUMBER)
    if not _ORGNO.match(orgnumber):
        raise ClientRegistrationError("orgnumber must be 9 digits")
    org = body.get("org")
    if org is not None and (not isinstance(org, str) or not org):
        raise ClientRegistrationError("org must be a service owner code such as 'ttd'")
    existing = store.get_client(client_id)
    keys = dict(existing["keys"]) if existing else {}
    keys[kid] = public_pem(key)
    data: dict[str, Any] = {
        "client_id": client_id,
        "keys": keys,
        "scopes": scopes,
        "orgnumber": orgnumber,
        "org": org,
    }
    for optional in ("consumer_orgs", "system_id"):
        if body.get(optional) is not None:
            data[optional] = body[optional]
    store.put_client(client_id, data)
    return {"client_id": client_id, "kid": kid, "scopes": scopes, "orgnumber": orgnumber, "org": org}


def client_public_keys(client: dict[str, Any]) -> dict[str, rsa.RSAPublicKey]:
    """The client's registered public keys by kid."""
    return {kid: _load_public(pem) for kid, pem in dict(client.get("keys") or {}).items()}

"""The ``altinn_events`` connection form, as data (``conn-fields`` + ``ui-field-behaviour``).

``get_provider_info`` spreads :data:`CONNECTION_FORM` into the ``connection-types`` entry; Airflow 3's UI reads
it without importing the hook (docs/architecture.rst, "airflow-connection-form"). Pure data: no Airflow
import, nothing computed at
import time beyond literals. Keep it in step with ``client/settings.py`` (``EXTRA_KEYS``) and
``docs/connection.rst``; a unit test checks the first.
"""

from __future__ import annotations

from typing import Any

__all__ = ["CONNECTION_FORM", "ENVIRONMENT_CHOICES"]

#: The dropdown's values. Other internal environments (any ``atNN``/``ytNN``) are accepted when typed into
#: the connection's JSON extra; the form offers the common ones.
ENVIRONMENT_CHOICES = ["tt02", "production", "at22", "at23", "at24", "at25", "custom"]


def _text(label: str, description: str, **schema: Any) -> dict[str, Any]:
    return {"label": label, "description": description, "schema": {"type": ["string", "null"], **schema}}


CONNECTION_FORM: dict[str, Any] = {
    "ui-field-behaviour": {
        "hidden-fields": ["schema", "port"],
        "relabeling": {
            "host": "Platform base URL (environment 'custom' only)",
            "login": "Maskinporten client id",
            "password": "Private key (PEM, JWK JSON or base64 PKCS#12) or Altinn token",
        },
        "placeholders": {
            "host": "http://127.0.0.1:8765 (leave empty for tt02/production/atNN)",
            "login": "3f1c2a9e-0000-4000-8000-000000000000",
            "password": "PEM private key (BEGIN PRIVATE KEY ...), JWK JSON, or an Altinn token",
            "extra": '{"environment": "tt02", "key_id": "my-key-2026", "scopes": "altinn:events.subscribe"}',
        },
    },
    "conn-fields": {
        "environment": {
            "label": "Environment",
            "description": (
                "Altinn environment; selects both the platform and the matching Maskinporten "
                "(tt02 and atNN use test.maskinporten.no, production uses maskinporten.no). "
                "'custom' derives every URL from the host (the emulator)."
            ),
            "schema": {"type": "string", "enum": ENVIRONMENT_CHOICES, "default": "tt02"},
        },
        "scopes": _text(
            "Scopes",
            "Space-separated Maskinporten scopes: altinn:events.subscribe to read events and subscribe, "
            "altinn:events.publish to publish.",
            default="altinn:events.subscribe",
        ),
        "key_id": _text(
            "Key id (kid)",
            "The kid the public key was registered under at Maskinporten. Optional for a JWK that carries its "
            "own kid; leave empty to sign with a business certificate (x5c).",
        ),
        "private_key_passphrase": _text(
            "Private key passphrase",
            "Passphrase of an encrypted PEM key, or the password of a PKCS#12 bundle.",
            format="password",
        ),
        "certificate": _text(
            "Certificate chain (x5c)",
            "PEM certificate(s) of a business certificate, leaf first; sent as x5c when no key id is set.",
            format="multiline",
        ),
        "consumer_org": _text(
            "Consumer organisation",
            "9-digit organisation number you act for through an Altinn API delegation (Maskinporten consumer_org).",
            pattern="^(0192:)?[0-9]{9}$",
        ),
        "system_user_org": _text(
            "System user organisation",
            "9-digit organisation number of the customer whose system user the token should represent.",
            pattern="^(0192:)?[0-9]{9}$",
        ),
        "auth": {
            "label": "Authentication",
            "description": (
                "'maskinporten' (default): JWT grant + Altinn token exchange, refreshed automatically. "
                "'altinn_token': the password field holds a ready Altinn token (never refreshed)."
            ),
            "schema": {"type": "string", "enum": ["maskinporten", "altinn_token"], "default": "maskinporten"},
        },
        "platform_access_token": _text(
            "Platform access token",
            "Sent as the PlatformAccessToken header; needed only to publish app events (POST /app).",
            format="password",
        ),
        "timeout": {
            "label": "Timeout (seconds)",
            "description": "HTTP timeout for every call to Maskinporten and Altinn.",
            "schema": {"type": ["number", "null"], "default": 30, "minimum": 1, "maximum": 3600},
        },
        "maskinporten_issuer": _text(
            "Maskinporten issuer (override)",
            "The grant's audience; defaults from the environment (e.g. https://test.maskinporten.no/). On "
            "tt02/production/atNN only that environment's Maskinporten host is accepted.",
            format="url",
        ),
        "maskinporten_token_url": _text(
            "Maskinporten token URL (override)",
            "Defaults to the issuer + 'token'. On tt02/production/atNN: that environment's Maskinporten host only.",
            format="url",
        ),
        "exchange_url": _text(
            "Token exchange URL (override)",
            "Defaults to {platform}/authentication/api/v1/exchange/maskinporten. On tt02/production/atNN: "
            "that environment's platform host only.",
            format="url",
        ),
        "events_url": _text(
            "Events API URL (override)",
            "Defaults to {platform}/events/api/v1. On tt02/production/atNN: that environment's platform host only.",
            format="url",
        ),
    },
}

"""Connection → :class:`AltinnSettings`: parsed and validated once, frozen, Airflow-free.

Everything below the hook sees only this value, never an Airflow ``Connection``. Parsing happens before any
network call, so a typo in the connection fails with a message that names the field and the allowed values
instead of as an obscure 401 three calls later.

Connection fields (the docs' connection page lists the same table)::

    host      platform base URL; only with environment "custom" (e.g. the emulator's http://127.0.0.1:PORT)
    login     Maskinporten client id (integration id)
    password  the private key (PEM, JWK JSON, base64 PKCS#12), or the Altinn token when auth = "altinn_token"
    extra     environment, scopes, key_id, private_key_passphrase, certificate, consumer_org,
              system_user_org, auth, platform_access_token, timeout,
              maskinporten_issuer, maskinporten_token_url, exchange_url, events_url
"""

from __future__ import annotations

import difflib
import ipaddress
import json
import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, Protocol
from urllib.parse import urlsplit

from airflow_provider_altinn_events.exceptions import AltinnConfigError

__all__ = [
    "EXTRA_KEYS",
    "AltinnAuthMode",
    "AltinnEnvironment",
    "AltinnSettings",
    "ConnectionLike",
]

logger = logging.getLogger(__name__)

DEFAULT_SCOPES = ("altinn:events.subscribe",)
DEFAULT_TIMEOUT_SECONDS = 30.0

#: Every extra key the connection understands (anything else is reported as a probable typo).
EXTRA_KEYS = (
    "environment",
    "scopes",
    "key_id",
    "private_key_passphrase",
    "certificate",
    "consumer_org",
    "system_user_org",
    "auth",
    "platform_access_token",
    "timeout",
    "maskinporten_issuer",
    "maskinporten_token_url",
    "exchange_url",
    "events_url",
)
# Older Airflow UIs stored custom form fields as ``extra__<conn_type>__<name>``; accept that spelling too.
_LEGACY_PREFIX = "extra__altinn_events__"

_TEST_MASKINPORTEN = "https://test.maskinporten.no/"
_PROD_MASKINPORTEN = "https://maskinporten.no/"
_INTERNAL_ENV = re.compile(r"^(?:at|yt)\d{2}$")
# Characters that URL parsers disagree on (httpx, aiohttp, urllib): refused in any URL so the host checked here
# is the host the request goes to.
_AMBIGUOUS_URL = re.compile(r"[\s\\\x00-\x1f\x7f]")
_ORGNUMBER = re.compile(r"^\d{9}$")


class AltinnEnvironment(str, Enum):
    """Which Altinn platform, and so which Maskinporten, a connection talks to.

    ``TT02`` pairs with ``test.maskinporten.no``; ``PRODUCTION`` with ``maskinporten.no``; Altinn's internal
    test environments (``at22``, ``at23``, ... and ``yt01``: any ``atNN``/``ytNN``) live on
    ``platform.<env>.altinn.cloud`` and use ``test.maskinporten.no``. ``CUSTOM`` derives every URL from the
    connection's ``host`` the way the emulator lays them out.
    """

    TT02 = "tt02"
    PRODUCTION = "production"
    AT22 = "at22"
    AT23 = "at23"
    AT24 = "at24"
    AT25 = "at25"
    CUSTOM = "custom"

    @classmethod
    def _missing_(cls, value: object) -> AltinnEnvironment | None:
        # Case-insensitive lookup, "prod" as an alias, and any other internal test environment by pattern.
        if not isinstance(value, str):
            return None
        name = value.strip().lower()
        if name == "prod":
            name = "production"
        for member in cls:
            if member.value == name:
                return member
        if _INTERNAL_ENV.match(name):
            pseudo = str.__new__(cls, name)
            pseudo._name_ = name.upper()
            pseudo._value_ = name
            return pseudo
        return None

    @property
    def is_real(self) -> bool:
        """True for Altinn's own environments, where plain http is refused."""
        return self is not AltinnEnvironment.CUSTOM

    def platform_url(self) -> str | None:
        """The Altinn platform base URL, or ``None`` for ``custom`` (it comes from ``host``)."""
        if self is AltinnEnvironment.TT02:
            return "https://platform.tt02.altinn.no"
        if self is AltinnEnvironment.PRODUCTION:
            return "https://platform.altinn.no"
        if self is AltinnEnvironment.CUSTOM:
            return None
        return f"https://platform.{self.value}.altinn.cloud"

    def maskinporten_host(self) -> str | None:
        """The host of this environment's Maskinporten, or ``None`` for ``custom``: where a grant may go."""
        issuer = self.maskinporten_issuer()
        return urlsplit(issuer).hostname if issuer else None

    def platform_host(self) -> str | None:
        """The host of this environment's Altinn platform, or ``None`` for ``custom``: where tokens may go."""
        platform = self.platform_url()
        return urlsplit(platform).hostname if platform else None

    def maskinporten_issuer(self) -> str | None:
        """The Maskinporten issuer (the grant's ``aud``), or ``None`` for ``custom``."""
        if self is AltinnEnvironment.PRODUCTION:
            return _PROD_MASKINPORTEN
        if self is AltinnEnvironment.CUSTOM:
            return None
        return _TEST_MASKINPORTEN


class AltinnAuthMode(str, Enum):
    """How the client gets the Altinn token it sends to the Events API."""

    #: JWT grant at Maskinporten, then Altinn's token exchange; refreshed automatically.
    MASKINPORTEN = "maskinporten"
    #: The connection's password *is* an Altinn token (no Maskinporten); never refreshed.
    ALTINN_TOKEN = "altinn_token"


class ConnectionLike(Protocol):
    """What :meth:`AltinnSettings.from_connection` needs: an Airflow ``Connection`` or any plain object."""

    @property
    def conn_id(self) -> str: ...

    @property
    def host(self) -> str | None: ...

    @property
    def login(self) -> str | None: ...

    @property
    def password(self) -> str | None: ...

    @property
    def extra_dejson(self) -> dict[str, Any]: ...


def _allowed_environments() -> str:
    return "tt02, production, at22, at23, at24, at25 (or another atNN/ytNN), custom"


@dataclass(frozen=True)
class AltinnSettings:
    """Everything the client core needs, parsed from one connection; immutable and hashable.

    Secrets (``private_key``, ``private_key_passphrase``, ``altinn_token``, ``platform_access_token``) are
    excluded from ``repr`` so a settings object in a log line or a traceback shows no secret.
    """

    conn_id: str
    environment: AltinnEnvironment
    auth: AltinnAuthMode
    platform_url: str
    maskinporten_issuer: str
    maskinporten_token_url: str
    exchange_url: str
    events_url: str
    client_id: str | None = None
    scopes: tuple[str, ...] = DEFAULT_SCOPES
    key_id: str | None = None
    consumer_org: str | None = None
    system_user_org: str | None = None
    timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS
    private_key: str | None = field(default=None, repr=False)
    private_key_passphrase: str | None = field(default=None, repr=False)
    certificate: str | None = field(default=None, repr=False)
    altinn_token: str | None = field(default=None, repr=False)
    platform_access_token: str | None = field(default=None, repr=False)

    @property
    def scope(self) -> str:
        """The scopes as Maskinporten wants them: one space-separated string."""
        return " ".join(self.scopes)

    @classmethod
    def from_connection(cls, conn: ConnectionLike) -> AltinnSettings:
        """Parse and validate an Airflow connection (or anything shaped like one).

        Extras may arrive as strings (the URI form of ``AIRFLOW_CONN_...`` turns every extra into a string),
        so ``timeout="30"`` is accepted as well as ``timeout=30``.

        :param conn: the connection; only ``conn_id``, ``host``, ``login``, ``password`` and
            ``extra_dejson`` are read.
        :raises AltinnConfigError: a field is missing or invalid; ``field`` names it and the message says
            what is allowed.
        """
        conn_id = str(getattr(conn, "conn_id", None) or "<unnamed>")
        extra = _normalise_extra(conn_id, conn.extra_dejson or {})

        env_raw = extra.get("environment") or AltinnEnvironment.TT02.value
        try:
            environment = AltinnEnvironment(str(env_raw))
        except ValueError:
            raise AltinnConfigError(
                f"connection {conn_id!r}: unknown environment {env_raw!r}; allowed: {_allowed_environments()}",
                field="environment",
            ) from None

        auth_raw = extra.get("auth") or AltinnAuthMode.MASKINPORTEN.value
        try:
            auth = AltinnAuthMode(str(auth_raw).strip().lower())
        except ValueError:
            raise AltinnConfigError(
                f"connection {conn_id!r}: unknown auth {auth_raw!r}; allowed: maskinporten, altinn_token",
                field="auth",
            ) from None

        platform_url, issuer = _base_urls(conn_id, conn, environment)
        issuer = _url(conn_id, extra, "maskinporten_issuer", issuer, environment)
        token_url = _url(conn_id, extra, "maskinporten_token_url", issuer.rstrip("/") + "/token", environment)
        exchange_url = _url(
            conn_id,
            extra,
            "exchange_url",
            f"{platform_url}/authentication/api/v1/exchange/maskinporten",
            environment,
        )
        events_url = _url(conn_id, extra, "events_url", f"{platform_url}/events/api/v1", environment).rstrip(
            "/"
        )

        login = _text(conn.login)
        password = _text(conn.password)
        if auth is AltinnAuthMode.MASKINPORTEN:
            if login is None:
                raise AltinnConfigError(
                    f"connection {conn_id!r}: login must hold the Maskinporten client id", field="login"
                )
            if password is None:
                raise AltinnConfigError(
                    f"connection {conn_id!r}: password must hold the private key (PEM, JWK JSON or base64 "
                    "PKCS#12) registered for the Maskinporten client",
                    field="password",
                )
        elif password is None:
            raise AltinnConfigError(
                f"connection {conn_id!r}: with auth 'altinn_token' the password must hold the Altinn token",
                field="password",
            )

        return cls(
            conn_id=conn_id,
            environment=environment,
            auth=auth,
            platform_url=platform_url,
            maskinporten_issuer=issuer,
            maskinporten_token_url=token_url,
            exchange_url=exchange_url,
            events_url=events_url,
            client_id=login,
            scopes=_scopes(conn_id, extra.get("scopes")),
            key_id=_text(extra.get("key_id")),
            consumer_org=_orgnumber(conn_id, extra, "consumer_org"),
            system_user_org=_orgnumber(conn_id, extra, "system_user_org"),
            timeout_seconds=_timeout(conn_id, extra.get("timeout")),
            private_key=password if auth is AltinnAuthMode.MASKINPORTEN else None,
            private_key_passphrase=_text(extra.get("private_key_passphrase")),
            certificate=_text(extra.get("certificate")),
            altinn_token=password if auth is AltinnAuthMode.ALTINN_TOKEN else None,
            platform_access_token=_text(extra.get("platform_access_token")),
        )


def _text(value: Any) -> str | None:
    """A non-empty stripped string, or ``None`` (UI forms store unset fields as ``""`` or ``null``)."""
    if value is None:
        return None
    text = str(value).strip()
    return text or None


def _normalise_extra(conn_id: str, raw: Mapping[str, Any]) -> dict[str, Any]:
    if not isinstance(raw, Mapping):
        raise AltinnConfigError(f"connection {conn_id!r}: extra must be a JSON object", field="extra")
    extra: dict[str, Any] = {}
    for key, value in raw.items():
        name = key[len(_LEGACY_PREFIX) :] if key.startswith(_LEGACY_PREFIX) else key
        if name not in EXTRA_KEYS:
            close = difflib.get_close_matches(name, EXTRA_KEYS, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            logger.warning("Connection %r: ignoring unknown extra key %r%s", conn_id, name, hint)
            continue
        if value is None or (isinstance(value, str) and not value.strip()):
            continue
        extra[name] = value
    return extra


def _base_urls(conn_id: str, conn: ConnectionLike, environment: AltinnEnvironment) -> tuple[str, str]:
    host = _text(conn.host)
    if environment is not AltinnEnvironment.CUSTOM:
        platform = environment.platform_url()
        issuer = environment.maskinporten_issuer()
        assert platform is not None and issuer is not None
        if host is not None and _with_scheme(host, conn).rstrip("/") != platform:
            raise AltinnConfigError(
                f"connection {conn_id!r}: host is only used with environment 'custom' (environment "
                f"{environment.value!r} talks to {platform}); clear host or set extra environment to 'custom'",
                field="host",
            )
        return platform, issuer
    if host is None:
        raise AltinnConfigError(
            f"connection {conn_id!r}: environment 'custom' needs host, the platform base URL "
            "(for the emulator: http://127.0.0.1:PORT)",
            field="host",
        )
    platform = _with_scheme(host, conn).rstrip("/")
    _check_url(conn_id, "host", platform, environment)
    return platform, f"{platform}/maskinporten/"


def _with_scheme(host: str, conn: ConnectionLike) -> str:
    """Accept the URI form of a connection, where host and port arrive split and without a scheme."""
    if "://" in host:
        return host
    port = getattr(conn, "port", None)
    netloc = f"{host}:{port}" if port else host
    loopback = host in ("localhost", "127.0.0.1", "::1", "[::1]")
    return f"{'http' if loopback else 'https'}://{netloc}"


def _url(conn_id: str, extra: Mapping[str, Any], key: str, default: str, env: AltinnEnvironment) -> str:
    value = _text(extra.get(key))
    if value is None:
        return default
    _check_url(conn_id, key, value, env)
    return value


#: Which host each URL override may name on a real environment: the grant goes to Maskinporten only, the
#: Maskinporten token (exchange) and the Altinn token (Events) to the Altinn platform only (docs/connection.rst).
_OWN_HOST = {
    "maskinporten_issuer": ("Maskinporten", AltinnEnvironment.maskinporten_host),
    "maskinporten_token_url": ("Maskinporten", AltinnEnvironment.maskinporten_host),
    "exchange_url": ("Altinn platform", AltinnEnvironment.platform_host),
    "events_url": ("Altinn platform", AltinnEnvironment.platform_host),
}


def _check_url(conn_id: str, key: str, value: str, environment: AltinnEnvironment) -> None:
    """Refuse a URL the client must not send secrets to; warn about plain http off loopback (``custom``).

    Never quotes a value that may hold credentials (``user:password@``).
    """
    has_userinfo = "@" in value
    shown = "a value with '@' (not shown)" if has_userinfo else repr(value)
    if _AMBIGUOUS_URL.search(value):
        raise AltinnConfigError(
            f"connection {conn_id!r}: {key} must not contain spaces, backslashes or control characters, got "
            f"{shown}",
            field=key,
        )
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise AltinnConfigError(
            f"connection {conn_id!r}: {key} must be an absolute http(s) URL, got {shown}", field=key
        )
    if "@" in parts.netloc:
        raise AltinnConfigError(
            f"connection {conn_id!r}: {key} must not carry a user name or password (user:password@...): they "
            "would end up in logs, messages and the grant; remove them from the URL (the credentials are not "
            "repeated here)",
            field=key,
        )
    if parts.query or parts.fragment:
        raise AltinnConfigError(
            f"connection {conn_id!r}: {key} must not carry a query string or fragment", field=key
        )
    try:
        port = parts.port
    except ValueError:
        raise AltinnConfigError(
            f"connection {conn_id!r}: {key} has an invalid port, got {shown}", field=key
        ) from None
    hostname = parts.hostname or ""
    if environment.is_real:
        if parts.scheme != "https":
            raise AltinnConfigError(
                f"connection {conn_id!r}: {key} uses plain http, which environment {environment.value!r} "
                "refuses (tokens would travel unencrypted); use https, or environment 'custom' for a local "
                "emulator",
                field=key,
            )
        own = _OWN_HOST.get(key)
        if own is not None:
            service, host_of = own
            allowed = host_of(environment)
            if hostname != allowed or port not in (None, 443):
                raise AltinnConfigError(
                    f"connection {conn_id!r}: {key} must point at {allowed}, the {service} host of environment "
                    f"{environment.value!r} (got host {hostname!r}{f' port {port}' if port else ''}): on a real "
                    "environment an override may change the path only, so the signed grant and the tokens "
                    "never leave that environment; remove the override, or use environment 'custom' for a "
                    "gateway of your own",
                    field=key,
                )
    elif parts.scheme == "http" and not _is_loopback(hostname):
        logger.warning(
            "Connection %r: %s uses plain http to %s, which is not a loopback address: the signed grant and "
            "the tokens travel unencrypted over the network; use https unless this is a local test network",
            conn_id,
            key,
            hostname,
        )


def _is_loopback(hostname: str) -> bool:
    """``localhost`` (and ``*.localhost``), 127.0.0.0/8 and ::1."""
    name = hostname.lower().rstrip(".")
    if name == "localhost" or name.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def _scopes(conn_id: str, raw: Any) -> tuple[str, ...]:
    if raw is None:
        return DEFAULT_SCOPES
    items: list[str]
    if isinstance(raw, str):
        text = raw.strip()
        if text.startswith("["):  # a JSON list that arrived as a string (URI form)
            try:
                parsed = json.loads(text)
            except ValueError:
                parsed = None
            items = [str(s) for s in parsed] if isinstance(parsed, list) else text.split()
        else:
            items = text.replace(",", " ").split()
    elif isinstance(raw, (list, tuple)):
        items = [str(s).strip() for s in raw]
    else:
        raise AltinnConfigError(
            f"connection {conn_id!r}: scopes must be a space-separated string such as "
            "'altinn:events.subscribe altinn:events.publish'",
            field="scopes",
        )
    scopes = tuple(dict.fromkeys(s for s in items if s))
    if not scopes:
        raise AltinnConfigError(f"connection {conn_id!r}: scopes is empty", field="scopes")
    for scope in scopes:
        if any(ch.isspace() for ch in scope):
            raise AltinnConfigError(f"connection {conn_id!r}: invalid scope {scope!r}", field="scopes")
    return scopes


def _orgnumber(conn_id: str, extra: Mapping[str, Any], key: str) -> str | None:
    value = _text(extra.get(key))
    if value is None:
        return None
    number = value.split(":", 1)[1] if value.startswith("0192:") else value
    if not _ORGNUMBER.match(number):
        raise AltinnConfigError(
            f"connection {conn_id!r}: {key} must be a 9-digit Norwegian organisation number, got {value!r}",
            field=key,
        )
    return number


def _timeout(conn_id: str, raw: Any) -> float:
    if raw is None:
        return DEFAULT_TIMEOUT_SECONDS
    try:
        if isinstance(raw, bool):
            raise ValueError
        seconds = float(raw)
    except (TypeError, ValueError):
        raise AltinnConfigError(
            f"connection {conn_id!r}: timeout must be a number of seconds, got {raw!r}", field="timeout"
        ) from None
    if not 0 < seconds <= 3600:
        raise AltinnConfigError(
            f"connection {conn_id!r}: timeout must be between 0 and 3600 seconds, got {raw!r}",
            field="timeout",
        )
    return seconds

"""Settings of one emulator instance (what the CLI flags and the Python API set)."""

from __future__ import annotations

from dataclasses import dataclass, field

#: The real outbound retry schedule (Service Bus path; docs/contract.rst, "contract-subscriptions"):
#: immediate retry after a 10 s
#: cooldown, then scheduled 30 s, 1 m, 5 m, 10 m, 30 m, 1 h, 3 h, 6 h, 12 h, 12 h; then dead-letter.
REAL_DELIVERY_SCHEDULE: tuple[float, ...] = (10, 30, 60, 300, 600, 1800, 3600, 10800, 21600, 43200, 43200)
#: The real validation retry schedule (cooldown 1 s, 5 s, 10 s, then 30 s, 60 s, 120 s x3).
REAL_VALIDATION_SCHEDULE: tuple[float, ...] = (1, 5, 10, 30, 60, 120, 120, 120)
#: Compressed schedules for tests: the same number of attempts, each wait a few tens of milliseconds.
FAST_DELIVERY_SCHEDULE: tuple[float, ...] = tuple(0.05 for _ in REAL_DELIVERY_SCHEDULE)
FAST_VALIDATION_SCHEDULE: tuple[float, ...] = tuple(0.05 for _ in REAL_VALIDATION_SCHEDULE)

#: Kestrel's default maximum request body size (nothing custom in Program.cs;
#: docs/contract.rst, "contract-limits").
DEFAULT_MAX_BODY_BYTES = 30_000_000


@dataclass
class EmulatorConfig:
    """Behaviour switches of the emulator.

    :param public_url: base URL the emulator is reached at; the ``next`` header, the Maskinporten
        issuer and validation event sources are built on it. ``None`` means "the URL the server
        listens on" (filled in by the server once the port is known).
    :param token_lifetime: lifetime of exchanged Altinn tokens in seconds (real: 30 minutes).
    :param maskinporten_lifetime: lifetime of Maskinporten access tokens in seconds (real: 120 s).
    :param visibility_delay: seconds after registration before an event shows in GET /events
        (real: 30 s; default 0 so tests need not wait).
    :param allow_http_webhooks: also allow ``http://127.0.0.1`` / ``http://localhost`` webhook
        endpoints, so local tests need no certificate.
    :param fast_retries: compress push and validation retry schedules to tens of milliseconds.
    :param max_body_bytes: request bodies larger than this get 413, like Kestrel.
    :param webhook_timeout: seconds before a push request is abandoned (real: 45 s).
    :param subscription_cache_seconds: how long the push path keeps the subscriptions it looked up for an
        event's (resource, subject, type), as Altinn's ``SubscriptionRepositoryCachingDecorator`` does
        (``SubscriptionCachingLifetimeInSeconds``, 3600 in production). A new subscription gets nothing for
        a key looked up before it existed, a deleted one keeps receiving, until the entry expires.
        0 (the default, for fast tests) looks up every time.
    """

    public_url: str | None = None
    token_lifetime: int = 1800
    maskinporten_lifetime: int = 120
    visibility_delay: float = 0.0
    allow_http_webhooks: bool = False
    fast_retries: bool = False
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    webhook_timeout: float = 45.0
    apps_domain: str = "apps.altinn.no"
    subscription_cache_seconds: float = 0.0
    delivery_schedule: tuple[float, ...] = field(default=())
    validation_schedule: tuple[float, ...] = field(default=())

    def __post_init__(self) -> None:
        if not self.delivery_schedule:
            self.delivery_schedule = FAST_DELIVERY_SCHEDULE if self.fast_retries else REAL_DELIVERY_SCHEDULE
        if not self.validation_schedule:
            self.validation_schedule = (
                FAST_VALIDATION_SCHEDULE if self.fast_retries else REAL_VALIDATION_SCHEDULE
            )

    @property
    def base(self) -> str:
        """Public base URL without a trailing slash."""
        return (self.public_url or "http://127.0.0.1").rstrip("/")

    @property
    def maskinporten_issuer(self) -> str:
        """The emulated Maskinporten issuer, which is also the ``aud`` a grant must carry."""
        return f"{self.base}/maskinporten/"

    @property
    def altinn_issuer(self) -> str:
        """Issuer of exchanged Altinn tokens (real: ``…/authentication/api/v1/openid/``)."""
        return f"{self.base}/authentication/api/v1/openid/"

    @property
    def events_base(self) -> str:
        """Base of the Events API, ending in a slash like Altinn's ``ApiEventsEndpoint``."""
        return f"{self.base}/events/api/v1/"

"""Does the connection ask Maskinporten for the scope an operation needs? Checked before any request.

Without the scope, Maskinporten grants a token, Altinn exchanges it, and only the Events API call answers 403
(three requests and a message that says "Forbidden"). The connection's ``scopes`` already show it, so the
sensor, the triggers and the operators check them here first and name the scope to add.

Which operation needs which scope (docs/contract.rst, "contract-scopes"):

* reading events (``GET /events``) and generic subscriptions (``POST /subscriptions`` on a non-app resource):
  :data:`SUBSCRIBE`;
* publishing generic events (``POST /events``): :data:`PUBLISH` or :data:`PUBLISH_ADMIN`, or a platform
  access token (policy ``PublishScopeOrAccessToken``): see :func:`require_publish_scope`;
* app events and app subscriptions: no scope.

With ``auth="altinn_token"`` the token was made elsewhere and its scopes are unknown here, so nothing is
checked. Nothing here imports Airflow or does I/O.
"""

from __future__ import annotations

from collections.abc import Sequence

from airflow_provider_altinn_events.client.settings import AltinnAuthMode, AltinnSettings
from airflow_provider_altinn_events.exceptions import AltinnConfigError

__all__ = ["PUBLISH", "PUBLISH_ADMIN", "SUBSCRIBE", "require_publish_scope", "require_scope"]

SUBSCRIBE = "altinn:events.subscribe"
"""Reading events and generic (non-app) subscriptions."""

PUBLISH = "altinn:events.publish"
"""Publishing generic events."""

PUBLISH_ADMIN = "altinn:events.publish.admin"
"""Publishing generic events to any resource (skips the resource's ``publish`` right)."""


def require_scope(
    settings: AltinnSettings, needed: str, *, alternatives: Sequence[str] = (), operation: str
) -> None:
    """Refuse an operation whose scope the connection does not ask for, before the token grant.

    :param settings: the parsed connection.
    :param needed: the scope the operation needs.
    :param alternatives: other scopes that would do as well (any one of them is enough).
    :param operation: what the scope is for, for the message, e.g. ``"reading events"``.
    :raises AltinnConfigError: ``field="scopes"``; none of the scopes is configured. The message names the
        connection, its scopes and the scope to add.
    """
    if settings.auth is AltinnAuthMode.ALTINN_TOKEN:
        return  # the token's scopes are not known here; the service decides
    accepted = (needed, *alternatives)
    if any(scope in settings.scopes for scope in accepted):
        return
    either = needed if not alternatives else f"{needed} (or {' or '.join(alternatives)})"
    raise AltinnConfigError(
        f"connection {settings.conn_id!r}: scopes {settings.scope!r} lack {either}, which {operation} needs; "
        f"add it to the connection's extra 'scopes' (space-separated) and make sure the Maskinporten client "
        "has been granted it",
        field="scopes",
    )


def require_publish_scope(settings: AltinnSettings) -> None:
    """The check for ``POST /events``: a publish scope, or a platform access token, which Altinn accepts
    instead (policy ``PublishScopeOrAccessToken``).

    :raises AltinnConfigError: ``field="scopes"``; neither is configured.
    """
    if settings.platform_access_token:
        return
    require_scope(
        settings,
        PUBLISH,
        alternatives=(PUBLISH_ADMIN,),
        operation="publishing events (POST /events, unless a platform_access_token is set)",
    )

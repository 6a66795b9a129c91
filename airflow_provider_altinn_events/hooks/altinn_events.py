"""``AltinnEventsHook``: connection id → :class:`AltinnSettings` → sync or async client; ``test_connection``.

The hook holds no request logic: it reads the Airflow connection once, turns it into a frozen
:class:`~airflow_provider_altinn_events.client.settings.AltinnSettings`, and hands that to the Airflow-free
client core. DAG files import this module on every parse, so it imports nothing heavy at module level:
httpx, PyJWT and cryptography are loaded by the first method that needs a client.

The connection form (labels, the environment dropdown, masked secrets) is declared as data in
``hooks/_connection_form.py`` and published through ``get_provider_info``; the hook defines no widget methods.
"""

from __future__ import annotations

import datetime
from typing import TYPE_CHECKING, Any

from airflow_provider_altinn_events._compat import BaseHook, aget_connection
from airflow_provider_altinn_events.client._constants import DEFAULT_CONN_ID

if TYPE_CHECKING:
    from airflow_provider_altinn_events.client.clients import AltinnEventsClient, AsyncAltinnEventsClient
    from airflow_provider_altinn_events.client.retry import RetryPolicy
    from airflow_provider_altinn_events.client.settings import AltinnSettings

__all__ = ["AltinnEventsHook"]


class AltinnEventsHook(BaseHook):
    """Talk to Altinn Events through one Airflow connection of type ``altinn_events``.

    :param altinn_events_conn_id: the connection id (default ``altinn_events_default``). Creating the hook
        does no I/O; the connection is read on the first :meth:`get_settings`, :meth:`get_conn` or
        :meth:`get_async_conn`.

    ``get_conn()`` returns one sync client cached on the hook (its token is reused by every call);
    ``get_async_conn()`` returns a new async client each time, because an async client belongs to the event
    loop that uses it: close it with ``async with`` or ``await client.aclose()``.
    """

    conn_name_attr = "altinn_events_conn_id"
    default_conn_name = DEFAULT_CONN_ID
    conn_type = "altinn_events"
    hook_name = "Altinn Events"

    def __init__(self, altinn_events_conn_id: str = default_conn_name, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.altinn_events_conn_id = altinn_events_conn_id
        self._settings: AltinnSettings | None = None
        self._client: AltinnEventsClient | None = None

    def get_settings(self) -> AltinnSettings:
        """The connection, parsed and validated once (cached on the hook).

        :raises AltinnConfigError: a connection field is missing or invalid (``field`` names it).
        :raises AirflowNotFoundException: no connection with this id.
        """
        if self._settings is None:
            from airflow_provider_altinn_events.client.settings import AltinnSettings

            conn = self.get_connection(self.altinn_events_conn_id)
            self._settings = AltinnSettings.from_connection(conn)
        return self._settings

    def get_conn(self, *, retry: RetryPolicy | None = None) -> AltinnEventsClient:
        """The sync client for this connection, created once and cached on the hook.

        :param retry: a retry policy for a client created by this call (ignored once the client is cached).
        :raises AltinnConfigError: a connection field is missing or invalid.
        """
        if self._client is None:
            from airflow_provider_altinn_events.client.clients import AltinnEventsClient

            self._client = AltinnEventsClient(self.get_settings(), retry=retry)
        return self._client

    async def get_async_conn(self, *, retry: RetryPolicy | None = None) -> AsyncAltinnEventsClient:
        """A new async client; the connection is fetched with ``BaseHook.aget_connection`` (non-blocking).

        :raises AltinnConfigError: a connection field is missing or invalid.
        """
        from airflow_provider_altinn_events.client.clients import AsyncAltinnEventsClient
        from airflow_provider_altinn_events.client.settings import AltinnSettings

        if self._settings is None:
            conn = await aget_connection(self.altinn_events_conn_id)
            self._settings = AltinnSettings.from_connection(conn)
        return AsyncAltinnEventsClient(self._settings, retry=retry)

    def close(self) -> None:
        """Close the cached sync client, if any."""
        if self._client is not None:
            self._client.close()
            self._client = None

    def test_connection(self) -> tuple[bool, str]:
        """Check the connection end to end: token grant, token exchange, one authorized Events call.

        Returns ``(True, summary)`` or ``(False, message)`` where the message names the step that failed
        (connection settings, key, grant, exchange or Events call) and why. Nothing is retried, so the first
        failure is reported as it is; no secret appears in either message.
        """
        from airflow_provider_altinn_events.client.clients import AltinnEventsClient
        from airflow_provider_altinn_events.client.retry import RetryPolicy
        from airflow_provider_altinn_events.client.settings import AltinnAuthMode
        from airflow_provider_altinn_events.exceptions import (
            AltinnAuthError,
            AltinnConfigError,
            AltinnError,
            TokenExchangeError,
            TokenGrantError,
        )

        try:
            settings = self.get_settings()
        except AltinnConfigError as error:
            return False, f"Connection settings are invalid ({error.field or 'connection'}): {error}"
        except Exception as error:  # e.g. the connection does not exist
            return False, f"Could not read connection {self.altinn_events_conn_id!r}: {error}"

        try:
            with AltinnEventsClient(settings, retry=RetryPolicy.disabled()) as client:
                if settings.auth is AltinnAuthMode.MASKINPORTEN:
                    client.auth.signing_key()
                subscriptions = client.list_subscriptions()
                expires_at = client.auth.token_expires_at
        except AltinnConfigError as error:
            return False, f"Key step failed ({error.field or 'key'}): {error}"
        except TokenGrantError as error:
            return False, f"Grant step failed (Maskinporten, {settings.maskinporten_token_url}): {error}"
        except TokenExchangeError as error:
            return False, f"Exchange step failed (Altinn token exchange, {settings.exchange_url}): {error}"
        except AltinnAuthError as error:
            return False, f"Token step failed: {error}"
        except AltinnError as error:  # an API error status, a transport error or a bad response
            return False, f"Events call failed (Events API, {settings.events_url}): {error}"

        valid = ""
        if expires_at is not None and expires_at != float("inf"):
            until = datetime.datetime.fromtimestamp(expires_at, tz=datetime.timezone.utc)
            valid = f" (valid until {until:%Y-%m-%d %H:%M:%S} UTC)"
        if settings.auth is AltinnAuthMode.MASKINPORTEN:
            tokens = (
                f"Maskinporten granted scopes {settings.scope!r} to client {settings.client_id}, Altinn exchanged "
                f"the token{valid}"
            )
        else:
            tokens = f"the static Altinn token was accepted{valid}"
        return True, (
            f"Connection works ({settings.environment.value}): {tokens}, and the Events API at "
            f"{settings.events_url} listed {subscriptions.count} subscription(s)."
        )

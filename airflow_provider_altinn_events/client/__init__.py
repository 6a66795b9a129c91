"""The Airflow-free client core for Altinn Events: settings, tokens, protocol, retries and two clients.

Public API (exactly ``__all__``)::

    from airflow_provider_altinn_events.client import (
        AltinnSettings, AltinnEnvironment, AltinnAuthMode, AltinnEventsClient, AsyncAltinnEventsClient,
        RetryPolicy, CloudEvent, EventPage, UndecodedEventPage, Subscription, SubscriptionList,
        EventFilter, PollState, PollStep, initial_state, poll_step,
    )

Names are imported lazily (PEP 562): DAG files import operators, operators import the hook, and the hook
needs ``AltinnSettings`` but not httpx, PyJWT or cryptography until a task actually runs. Importing this
package therefore costs next to nothing; the first access to a client class loads the HTTP stack.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__all__ = [
    "AltinnAuthMode",
    "AltinnEnvironment",
    "AltinnEventsClient",
    "AltinnSettings",
    "AsyncAltinnEventsClient",
    "CloudEvent",
    "EventFilter",
    "EventPage",
    "PollState",
    "PollStep",
    "RetryPolicy",
    "Subscription",
    "SubscriptionList",
    "UndecodedEventPage",
    "initial_state",
    "poll_step",
]

_EXPORTS = {
    "AltinnAuthMode": "settings",
    "AltinnEnvironment": "settings",
    "AltinnSettings": "settings",
    "AltinnEventsClient": "clients",
    "AsyncAltinnEventsClient": "clients",
    "RetryPolicy": "retry",
    "CloudEvent": "models",
    "EventPage": "models",
    "Subscription": "models",
    "SubscriptionList": "models",
    "UndecodedEventPage": "protocol",
    "EventFilter": "matching",
    "PollState": "matching",
    "PollStep": "matching",
    "initial_state": "matching",
    "poll_step": "matching",
}

if TYPE_CHECKING:
    from airflow_provider_altinn_events.client.clients import AltinnEventsClient, AsyncAltinnEventsClient
    from airflow_provider_altinn_events.client.matching import (
        EventFilter,
        PollState,
        PollStep,
        initial_state,
        poll_step,
    )
    from airflow_provider_altinn_events.client.models import (
        CloudEvent,
        EventPage,
        Subscription,
        SubscriptionList,
    )
    from airflow_provider_altinn_events.client.protocol import UndecodedEventPage
    from airflow_provider_altinn_events.client.retry import RetryPolicy
    from airflow_provider_altinn_events.client.settings import (
        AltinnAuthMode,
        AltinnEnvironment,
        AltinnSettings,
    )


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))

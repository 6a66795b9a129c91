"""The payloads our triggers put into ``TriggerEvent``: one typed shape, written and read by this module only.

The sensor trigger's payload is read back by ``AltinnEventsSensor.execute_complete``; the watcher trigger's
payload ends up in ``AssetEvent.extra["payload"]``, where DAG authors read it
(``triggering_asset_events[asset][i].extra["payload"]["events"]``). Both are plain JSON dicts:

.. code-block:: json

    {"status": "success", "resource": "urn:altinn:resource:x", "after": "<last id>",
     "events": [{"specversion": "1.0", "id": "...", "type": "...", "...": "..."}]}

    {"status": "error", "resource": "urn:altinn:resource:x", "after": "<cursor reached>", "events": [],
     "error": {"type": "AltinnServerError", "message": "...", "retryable": true, "status_code": 503}}

An error that no retry can fix adds ``"permanent": true`` to ``error`` (the key is left out otherwise, so
payloads of other errors look as they always did); ``execute_complete`` then fails the task without Airflow's
retries. A payload without the key reads as not permanent.

The subscription trigger (``AltinnEventsSubscriptionValidatedTrigger``) yields one
:class:`SubscriptionPayload`, read back by ``AltinnEventsCreateSubscriptionOperator.execute_complete``:

.. code-block:: json

    {"status": "validated", "subscription_id": 7, "subscription": {"id": 7, "...": "..."}, "message": null}

    {"status": "error", "subscription_id": 7, "subscription": null, "message": "...", "permanent": true}

``"permanent": true`` appears only when the trigger stopped on an error no retry can fix (so payloads of
older triggers, without the key, still parse, as not permanent).

Treat any change to these keys as a breaking change (CHANGELOG). Nothing here imports Airflow or a hook.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import Enum
from typing import Any

from airflow_provider_altinn_events.client.models import CloudEvent
from airflow_provider_altinn_events.exceptions import AltinnPayloadError

__all__ = [
    "SubscriptionPayload",
    "SubscriptionValidationStatus",
    "TriggerError",
    "TriggerPayload",
    "TriggerStatus",
]


class TriggerStatus(str, Enum):
    """What a trigger is reporting."""

    SUCCESS = "success"
    """Sensor trigger: ``min_events`` matching events were found; they are in ``events``."""
    EVENTS = "events"
    """Watcher trigger: one poll's new matching events (at most ``max_events_per_trigger_event``)."""
    ERROR = "error"
    """Sensor trigger: a permanent error, or the consecutive-failure budget is spent; see ``error``."""

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True)
class TriggerError:
    """Why a wait failed, as data (never parsed back out of a message).

    :param type: the exception class name, e.g. ``AltinnForbiddenError``.
    :param message: ``str()`` of the exception; our exceptions never carry secrets in their messages.
    :param retryable: whether the client considered the error transient.
    :param status_code: the HTTP status, when there was a response.
    :param permanent: no later try can succeed (the exception's ``permanent`` flag): fail the task at once.
    """

    type: str
    message: str
    retryable: bool = False
    status_code: int | None = None
    permanent: bool = False

    @classmethod
    def from_exception(cls, error: BaseException) -> TriggerError:
        """Describe an exception without keeping the object (payloads must be JSON)."""
        status = getattr(error, "status_code", None)
        return cls(
            type=type(error).__name__,
            message=str(error) or type(error).__name__,
            retryable=bool(getattr(error, "retryable", False)),
            status_code=status if isinstance(status, int) else None,
            permanent=bool(getattr(error, "permanent", False)),
        )

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "type": self.type,
            "message": self.message,
            "retryable": self.retryable,
            "status_code": self.status_code,
        }
        if self.permanent:  # only when set: every other payload keeps its old shape
            data["permanent"] = True
        return data


@dataclass(frozen=True)
class TriggerPayload:
    """The payload of every ``TriggerEvent`` this provider's event triggers yield.

    :param status: what happened.
    :param resource: the Altinn resource waited on (so one DAG watching several resources can tell them apart).
    :param after: the cursor after the reported events: continue from here to see what came next.
    :param events: the matching events, whole and as Altinn sent them, in the service's order.
    :param error: set when ``status`` is :attr:`TriggerStatus.ERROR`.
    """

    status: TriggerStatus
    resource: str
    after: str
    events: tuple[dict[str, Any], ...] = ()
    error: TriggerError | None = None

    @classmethod
    def success(cls, resource: str, after: str, events: Iterable[Mapping[str, Any]]) -> TriggerPayload:
        return cls(TriggerStatus.SUCCESS, resource, after, tuple(_as_dict(e) for e in events))

    @classmethod
    def batch(cls, resource: str, after: str, events: Iterable[Mapping[str, Any]]) -> TriggerPayload:
        return cls(TriggerStatus.EVENTS, resource, after, tuple(_as_dict(e) for e in events))

    @classmethod
    def failure(cls, resource: str, after: str, error: BaseException | TriggerError) -> TriggerPayload:
        info = error if isinstance(error, TriggerError) else TriggerError.from_exception(error)
        return cls(TriggerStatus.ERROR, resource, after, (), info)

    @property
    def event_ids(self) -> list[str]:
        """The ids of the events, in order: what idempotent consumers key on."""
        return [str(e.get("id")) for e in self.events]

    def cloud_events(self) -> list[CloudEvent]:
        """The events as :class:`CloudEvent` views.

        :raises AltinnPayloadError: an event lacks ``id``, ``source`` or ``type``.
        """
        return [CloudEvent.from_dict(e) for e in self.events]

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON for ``TriggerEvent(payload)``; the status is a plain string, not the enum."""
        payload: dict[str, Any] = {
            "status": self.status.value,
            "resource": self.resource,
            "after": self.after,
            "events": [dict(e) for e in self.events],
        }
        if self.error is not None:
            payload["error"] = self.error.to_dict()
        return payload

    @classmethod
    def from_dict(cls, raw: Any) -> TriggerPayload:
        """Parse a payload built by :meth:`to_dict` (as ``execute_complete`` or a consuming DAG gets it).

        :raises AltinnPayloadError: ``raw`` is not a payload of this provider.
        """
        if not isinstance(raw, Mapping):
            raise AltinnPayloadError(f"trigger payload must be a mapping, got {type(raw).__name__}")
        try:
            status = TriggerStatus(raw.get("status"))
        except ValueError:
            raise AltinnPayloadError(f"unknown trigger payload status {raw.get('status')!r}") from None
        resource, after, events = raw.get("resource"), raw.get("after"), raw.get("events", [])
        if not isinstance(resource, str) or not isinstance(after, str):
            raise AltinnPayloadError("trigger payload needs string 'resource' and 'after'")
        if not isinstance(events, (list, tuple)) or not all(isinstance(e, Mapping) for e in events):
            raise AltinnPayloadError("trigger payload 'events' must be a list of objects")
        error: TriggerError | None = None
        raw_error = raw.get("error")
        if raw_error is not None:
            if not isinstance(raw_error, Mapping) or not isinstance(raw_error.get("type"), str):
                raise AltinnPayloadError("trigger payload 'error' must be an object with a 'type'")
            status_code = raw_error.get("status_code")
            error = TriggerError(
                type=raw_error["type"],
                message=str(raw_error.get("message", "")),
                retryable=bool(raw_error.get("retryable", False)),
                status_code=status_code if isinstance(status_code, int) else None,
                permanent=raw_error.get("permanent") is True,
            )
        if status is TriggerStatus.ERROR and error is None:
            raise AltinnPayloadError("an error payload must say what the error was")
        return cls(status, resource, after, tuple(dict(e) for e in events), error)


class SubscriptionValidationStatus(str, Enum):
    """The ``status`` of the subscription trigger's one event."""

    VALIDATED = "validated"
    TIMEOUT = "timeout"
    ERROR = "error"


@dataclass(frozen=True)
class SubscriptionPayload:
    """The payload of the subscription trigger's one ``TriggerEvent``.

    :param status: validated, timed out, or refused.
    :param subscription_id: the subscription waited on.
    :param subscription: the subscription as Altinn last returned it, if it was read at all.
    :param message: why the wait did not end validated (``None`` when it did).
    :param permanent: the trigger stopped on an error no retry can fix (the exception's ``permanent`` flag,
        e.g. 403 or a connection that cannot be used): the operator fails the task without retries.
    """

    status: SubscriptionValidationStatus
    subscription_id: int | None
    subscription: dict[str, Any] | None = None
    message: str | None = None
    permanent: bool = False

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON for ``TriggerEvent(payload)``: the keys as they always were, plus ``permanent`` if set."""
        payload: dict[str, Any] = {
            "status": self.status.value,
            "subscription_id": self.subscription_id,
            "subscription": self.subscription,
            "message": self.message,
        }
        if self.permanent:  # only when set: every other payload keeps its old shape
            payload["permanent"] = True
        return payload

    @classmethod
    def from_dict(cls, raw: Any) -> SubscriptionPayload:
        """Parse a payload built by :meth:`to_dict`, or by an older trigger (no ``permanent`` key).

        :raises AltinnPayloadError: ``raw`` is not a subscription payload of this provider.
        """
        if not isinstance(raw, Mapping):
            raise AltinnPayloadError(f"subscription payload must be a mapping, got {type(raw).__name__}")
        try:
            status = SubscriptionValidationStatus(raw.get("status"))
        except ValueError:
            raise AltinnPayloadError(f"unknown subscription payload status {raw.get('status')!r}") from None
        subscription, message = raw.get("subscription"), raw.get("message")
        if subscription is not None and not isinstance(subscription, Mapping):
            raise AltinnPayloadError("subscription payload 'subscription' must be an object or null")
        if status is SubscriptionValidationStatus.VALIDATED and subscription is None:
            raise AltinnPayloadError("a validated subscription payload must carry the subscription")
        subscription_id = raw.get("subscription_id")
        return cls(
            status=status,
            subscription_id=subscription_id if isinstance(subscription_id, int) else None,
            subscription=dict(subscription) if subscription is not None else None,
            message=str(message) if message is not None else None,
            permanent=raw.get("permanent") is True,
        )


def _as_dict(event: Mapping[str, Any]) -> dict[str, Any]:
    return event.to_dict() if isinstance(event, CloudEvent) else dict(event)

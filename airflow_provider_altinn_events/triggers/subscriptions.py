"""A trigger that waits until Altinn has validated a push subscription.

After ``POST /subscriptions`` Altinn POSTs a validation event to the endpoint and marks the subscription
``validated`` once the endpoint answers 2xx; only validated subscriptions receive events
(docs/contract.rst, "contract-subscriptions").
:class:`AltinnEventsSubscriptionValidatedTrigger` polls ``GET /subscriptions/{id}`` from the triggerer, so
the waiting task holds no worker slot. It only reads: a trigger may run again after a triggerer restart, so
it never creates anything. Its kwargs are plain JSON (the connection id, never a token), and the deadline is
absolute, so a restarted trigger does not wait longer than the first one would have.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from datetime import datetime, timezone
from typing import Any

from airflow.triggers.base import BaseTrigger, TriggerEvent

from airflow_provider_altinn_events._payloads import SubscriptionPayload, SubscriptionValidationStatus
from airflow_provider_altinn_events.client._constants import DEFAULT_CONN_ID
from airflow_provider_altinn_events.exceptions import AltinnError

__all__ = ["AltinnEventsSubscriptionValidatedTrigger", "SubscriptionValidationStatus"]


class AltinnEventsSubscriptionValidatedTrigger(BaseTrigger):
    """Poll a subscription until Altinn has validated it, or until the deadline passes.

    Yields exactly one event, ``{"status": "validated", "subscription": {...}}`` (the subscription as the
    service returns it), ``{"status": "timeout", "subscription": {...}, "message": ...}`` when the deadline
    passed, or ``{"status": "error", "message": ...}`` when the service refused to show the subscription (it
    was deleted, or belongs to another consumer), with ``"permanent": true`` when no retry can fix it (403, a
    connection that cannot be used). The payload is ``_payloads.SubscriptionPayload.to_dict()``. Transient
    errors (5xx, 429, network) are retried inside the client and then by the next poll, until the deadline.

    :param subscription_id: the subscription to watch.
    :param altinn_events_conn_id: the Altinn Events connection.
    :param poll_interval_seconds: seconds between polls.
    :param timeout_seconds: how long to wait when no ``deadline`` is given (from the first run).
    :param deadline: when to give up, as an ISO 8601 UTC timestamp; the operator passes one so that a
        restarted trigger keeps the original deadline.
    """

    def __init__(
        self,
        subscription_id: int,
        altinn_events_conn_id: str = DEFAULT_CONN_ID,
        poll_interval_seconds: float = 5.0,
        timeout_seconds: float = 600.0,
        deadline: str | None = None,
    ) -> None:
        super().__init__()  # type: ignore[no-untyped-call]  # BaseTrigger.__init__ is unannotated (pyproject)
        from airflow_provider_altinn_events._arguments import check_int, check_seconds

        self.subscription_id = check_int(subscription_id, "subscription_id", minimum=1, lenient=True)
        self.altinn_events_conn_id = altinn_events_conn_id
        self.poll_interval_seconds = check_seconds(
            poll_interval_seconds, "poll_interval_seconds", example="5"
        )
        self.timeout_seconds = check_seconds(timeout_seconds, "timeout_seconds", example="600")
        self.deadline = deadline
        if deadline is not None:
            _parse_deadline(deadline)  # fail at defer time, not in the triggerer

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {
                "subscription_id": self.subscription_id,
                "altinn_events_conn_id": self.altinn_events_conn_id,
                "poll_interval_seconds": self.poll_interval_seconds,
                "timeout_seconds": self.timeout_seconds,
                "deadline": self.deadline,
            },
        )

    async def run(self) -> AsyncIterator[TriggerEvent]:
        payload = await self._wait()
        yield TriggerEvent(payload)

    async def _wait(self) -> dict[str, Any]:
        """Poll until validated, past the deadline, or refused; return the event payload."""
        from airflow_provider_altinn_events.client.retry import RetryPolicy
        from airflow_provider_altinn_events.hooks.altinn_events import AltinnEventsHook

        deadline = (
            _parse_deadline(self.deadline)
            if self.deadline is not None
            else time.time() + self.timeout_seconds
        )
        last_seen: dict[str, Any] | None = None
        try:
            hook = AltinnEventsHook(altinn_events_conn_id=self.altinn_events_conn_id)
            # the poll loop is the retry: a few quick attempts per poll keep each poll within its interval
            client = await hook.get_async_conn(retry=RetryPolicy(max_attempts=3, budget_seconds=30))
        except AltinnError as error:
            return self._payload(
                SubscriptionValidationStatus.ERROR,
                None,
                f"connection {self.altinn_events_conn_id!r} cannot be used: {error}",
                permanent=error.permanent,
            )
        last_error: AltinnError | None = None
        try:
            while True:
                try:
                    subscription = await client.get_subscription(self.subscription_id)
                except AltinnError as error:
                    if not error.retryable:
                        return self._payload(
                            SubscriptionValidationStatus.ERROR,
                            last_seen,
                            f"subscription {self.subscription_id} cannot be read: {error}",
                            permanent=error.permanent,
                        )
                    last_error = error
                    self.log.warning(
                        "Reading subscription %s failed (%s); polling again", self.subscription_id, error
                    )
                else:
                    last_error = None
                    last_seen = subscription.to_dict()
                    if subscription.validated:
                        self.log.info("Subscription %s is validated", self.subscription_id)
                        return self._payload(SubscriptionValidationStatus.VALIDATED, last_seen, None)
                remaining = deadline - time.time()
                if remaining <= 0:
                    return self._payload(
                        SubscriptionValidationStatus.TIMEOUT,
                        last_seen,
                        self._timeout_message(deadline, last_seen, last_error),
                    )
                await asyncio.sleep(min(self.poll_interval_seconds, remaining))
        finally:
            await client.aclose()

    def _timeout_message(
        self, deadline: float, last_seen: dict[str, Any] | None, last_error: AltinnError | None
    ) -> str:
        head = f"subscription {self.subscription_id} was not validated by {_format(deadline)}"
        if last_error is not None:
            return f"{head}; the last attempt to read it from Altinn failed: {last_error}"
        endpoint = last_seen.get("endPoint") if last_seen else None
        return (
            f"{head}: the endpoint {endpoint or '(unknown)'} did not answer Altinn's validation event with a "
            "2xx status. Check that it is reachable from Altinn over https with a publicly trusted certificate "
            "and answers POST requests with 2xx; creating the same subscription again (a rerun of the task) "
            "makes Altinn send the validation event again"
        )

    def _payload(
        self,
        status: SubscriptionValidationStatus,
        subscription: dict[str, Any] | None,
        message: str | None,
        *,
        permanent: bool = False,
    ) -> dict[str, Any]:
        return SubscriptionPayload(
            status, self.subscription_id, subscription, message, permanent=permanent
        ).to_dict()


def _parse_deadline(value: str) -> float:
    from airflow_provider_altinn_events.exceptions import AltinnConfigError

    try:
        moment = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        moment = None
    if moment is None or moment.tzinfo is None:
        raise AltinnConfigError(
            f"deadline must be an ISO 8601 time with a time zone, e.g. 2026-01-01T12:00:00Z; got {value!r}",
            field="deadline",
        )
    return moment.timestamp()


def _format(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")


def deadline_after(seconds: float) -> str:
    """The ISO 8601 UTC deadline ``seconds`` from now, as the trigger's ``deadline`` kwarg."""
    moment = datetime.fromtimestamp(time.time() + seconds, timezone.utc)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")

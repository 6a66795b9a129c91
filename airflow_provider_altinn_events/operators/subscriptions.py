"""Operators that create and delete Altinn push subscriptions (``/subscriptions``).

Creating is idempotent because the service is: ``POST /subscriptions`` with the same endpoint, filters and
consumer returns the existing subscription instead of a second one (and sends the validation event again),
so a rerun of the task never duplicates it. Deleting a subscription that is already gone is not an error
unless asked for, as in the Pub/Sub operators (``fail_if_not_exists``).

The client, hook and trigger are imported inside ``execute``: DAG files import this module on every parse.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseOperator

from airflow_provider_altinn_events._arguments import check_seconds
from airflow_provider_altinn_events._boundary import permanent_errors_fail_task
from airflow_provider_altinn_events._compat import AirflowException, AirflowFailException
from airflow_provider_altinn_events.client._constants import APP_RESOURCE_PREFIX, DEFAULT_CONN_ID
from airflow_provider_altinn_events.exceptions import (
    AltinnConfigError,
    AltinnError,
    AltinnForbiddenError,
    AltinnNotFoundError,
)

if TYPE_CHECKING:
    from airflow.sdk import Context

    from airflow_provider_altinn_events.hooks.altinn_events import AltinnEventsHook

__all__ = ["AltinnEventsCreateSubscriptionOperator", "AltinnEventsDeleteSubscriptionOperator"]

#: How much longer than the trigger's own deadline Airflow waits before it times the deferral out itself.
_DEFERRAL_GRACE_SECONDS = 60.0


class AltinnEventsCreateSubscriptionOperator(BaseOperator):
    """Create a push subscription, or get the identical one that already exists.

    Altinn pushes each matching event to ``endpoint`` once the endpoint has answered the validation event
    Altinn sends it after creation. With ``wait_for_validation=True`` the task defers to
    :class:`~airflow_provider_altinn_events.triggers.subscriptions.AltinnEventsSubscriptionValidatedTrigger`
    (no worker slot while waiting) and fails with an explanation if the subscription is not validated within
    ``validation_timeout_seconds``.

    Generic resources need the scope ``altinn:events.subscribe`` and a ``resource_filter``; app subscriptions
    (``urn:altinn:resource:app_{org}_{app}``) may give a ``source_filter`` instead and may use
    ``alternative_subject_filter``. Every argument is checked with the service's rules before the request.
    A blank filter counts as no filter (Altinn would store ``""`` as a filter that never matches).

    :param endpoint: the absolute https URL Altinn pushes events to; templated.
    :param resource_filter: the resource, ``urn:altinn:resource:...``; templated.
    :param source_filter: an https URL the event source must start with (app subscriptions); templated.
    :param subject_filter: only events with this subject, e.g. ``/party/1337``; templated.
    :param alternative_subject_filter: only events with this alternative subject, e.g. ``/person/...``
        (app subscriptions; Altinn turns it into a subject filter); templated.
    :param type_filter: only events of this exact type; templated.
    :param include_subunits: also events of the subject's subunits (needs a subject filter); templated.
    :param wait_for_validation: defer until Altinn has validated the subscription.
    :param validation_timeout_seconds: how long to wait for the validation.
    :param poll_interval_seconds: seconds between polls while waiting.
    :param altinn_events_conn_id: the Altinn Events connection.
    :return: (XCom) the subscription as the service returns it (camelCase keys, including ``id`` and
        ``validated``). The id is also pushed under the XCom key ``subscription_id``, so a downstream task
        can take ``create.output["subscription_id"]``.
    :raises AirflowFailException: an argument or the connection is invalid, or Altinn refused the request for
        good (400, 403, refused credentials).
    :raises AirflowException: the subscription was not validated in time (a retry sends the validation
        event again).
    """

    template_fields: Sequence[str] = (
        "endpoint",
        "resource_filter",
        "source_filter",
        "subject_filter",
        "alternative_subject_filter",
        "type_filter",
        "include_subunits",
        "altinn_events_conn_id",
    )
    ui_color = "#e4ecf0"

    def __init__(
        self,
        *,
        endpoint: str,
        resource_filter: str | None = None,
        source_filter: str | None = None,
        subject_filter: str | None = None,
        alternative_subject_filter: str | None = None,
        type_filter: str | None = None,
        include_subunits: bool | str = False,
        wait_for_validation: bool = False,
        validation_timeout_seconds: float = 600.0,
        poll_interval_seconds: float = 5.0,
        altinn_events_conn_id: str = DEFAULT_CONN_ID,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.validation_timeout_seconds = check_seconds(
            validation_timeout_seconds, "validation_timeout_seconds", example="600"
        )
        self.poll_interval_seconds = check_seconds(
            poll_interval_seconds, "poll_interval_seconds", example="5"
        )
        self.endpoint = endpoint
        self.resource_filter = resource_filter
        self.source_filter = source_filter
        self.subject_filter = subject_filter
        self.alternative_subject_filter = alternative_subject_filter
        self.type_filter = type_filter
        self.include_subunits = include_subunits
        self.wait_for_validation = wait_for_validation
        self.altinn_events_conn_id = altinn_events_conn_id

    def execute(self, context: Context) -> dict[str, Any]:
        from airflow_provider_altinn_events.client.validation import validate_subscription_request
        from airflow_provider_altinn_events.hooks.altinn_events import AltinnEventsHook

        with permanent_errors_fail_task("No subscription was created: "):
            request = validate_subscription_request(
                endpoint=self.endpoint,
                resource_filter=self.resource_filter,
                source_filter=self.source_filter,
                subject_filter=self.subject_filter,
                alternative_subject_filter=self.alternative_subject_filter,
                type_filter=self.type_filter,
                include_subunits=_as_bool(self.include_subunits),
            )
        hook = AltinnEventsHook(altinn_events_conn_id=self.altinn_events_conn_id)
        try:
            with permanent_errors_fail_task(self._refused):
                _check_scopes(hook, request.get("resource_filter"))
                subscription = hook.get_conn().create_subscription(**request)
        finally:
            hook.close()
        self.log.info(
            "Subscription %s pushes to %s (resource %s); validated: %s",
            subscription.id,
            subscription.endpoint,
            subscription.resource_filter,
            subscription.validated,
        )
        context["ti"].xcom_push(key="subscription_id", value=subscription.id)
        if self.wait_for_validation and not subscription.validated:
            self._defer_until_validated(subscription.id)
        return dict(subscription.to_dict())

    def _refused(self, error: AltinnError) -> str:
        if isinstance(error, AltinnConfigError):
            return (
                f"No subscription was created: connection {self.altinn_events_conn_id!r} is invalid: {error}"
            )
        return f"Altinn refused the subscription: {error}{_hint(error)}"

    def _defer_until_validated(self, subscription_id: int) -> None:
        from airflow_provider_altinn_events.triggers.subscriptions import (
            AltinnEventsSubscriptionValidatedTrigger,
            deadline_after,
        )

        self.log.info(
            "Waiting up to %.0f s for Altinn to validate subscription %s",
            self.validation_timeout_seconds,
            subscription_id,
        )
        self.defer(
            trigger=AltinnEventsSubscriptionValidatedTrigger(
                subscription_id=subscription_id,
                altinn_events_conn_id=self.altinn_events_conn_id,
                poll_interval_seconds=self.poll_interval_seconds,
                timeout_seconds=self.validation_timeout_seconds,
                deadline=deadline_after(self.validation_timeout_seconds),
            ),
            method_name="execute_complete",
            timeout=timedelta(seconds=self.validation_timeout_seconds + _DEFERRAL_GRACE_SECONDS),
        )

    def execute_complete(self, context: Context, event: dict[str, Any]) -> dict[str, Any]:
        """Resume after the trigger: return the validated subscription or fail with the trigger's reason.

        :raises AirflowFailException: the trigger stopped on a permanent error (403, an unusable connection):
            a retry would get the same answer.
        :raises AirflowException: the validation timed out, or another error stopped the wait.
        """
        from airflow_provider_altinn_events._boundary import task_failure
        from airflow_provider_altinn_events._payloads import SubscriptionPayload, SubscriptionValidationStatus
        from airflow_provider_altinn_events.exceptions import AltinnPayloadError

        try:
            payload = SubscriptionPayload.from_dict(event)
        except AltinnPayloadError as error:
            raise AirflowException(
                f"Subscription not validated: unexpected trigger event {event!r} ({error})"
            ) from None
        if payload.status is SubscriptionValidationStatus.VALIDATED and payload.subscription is not None:
            self.log.info("Subscription %s is validated", payload.subscription_id)
            return dict(payload.subscription)
        message = payload.message or f"unexpected trigger event {event!r}"
        raise task_failure(f"Subscription not validated: {message}", permanent=payload.permanent)


def _check_scopes(hook: AltinnEventsHook, resource_filter: str | None) -> None:
    """Refuse a generic (non-app) subscription before any request when the connection lacks the scope
    Altinn demands for it; app subscriptions need no scope (docs/contract.rst, "contract-scopes").

    :raises AltinnConfigError: ``field="scopes"``.
    """
    from airflow_provider_altinn_events.client.scopes import SUBSCRIBE, require_scope

    if resource_filter is not None and not resource_filter.startswith(APP_RESOURCE_PREFIX):
        require_scope(
            hook.get_settings(),
            SUBSCRIBE,
            operation=f"a subscription on a generic resource ({resource_filter})",
        )


class AltinnEventsDeleteSubscriptionOperator(BaseOperator):
    """Delete a push subscription.

    A subscription that does not exist (already deleted) is not an error unless ``fail_if_not_exists`` is
    set, so the task can be rerun. Altinn answers 403 for a subscription another consumer created; that
    fails the task without retries.

    :param subscription_id: the subscription's ``id``, e.g. from the create operator's XCom
        (``create.output["subscription_id"]``); an int or a string of digits; templated.
    :param fail_if_not_exists: fail when the subscription does not exist.
    :param altinn_events_conn_id: the Altinn Events connection.
    :raises AirflowFailException: invalid id, the subscription belongs to another consumer, or it does not
        exist and ``fail_if_not_exists`` is set.
    """

    template_fields: Sequence[str] = ("subscription_id", "altinn_events_conn_id")
    ui_color = "#f0e4e4"

    def __init__(
        self,
        *,
        subscription_id: int | str,
        fail_if_not_exists: bool = False,
        altinn_events_conn_id: str = DEFAULT_CONN_ID,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.subscription_id = subscription_id
        self.fail_if_not_exists = fail_if_not_exists
        self.altinn_events_conn_id = altinn_events_conn_id

    def execute(self, context: Context) -> None:
        from airflow_provider_altinn_events.client.validation import validate_subscription_id
        from airflow_provider_altinn_events.hooks.altinn_events import AltinnEventsHook

        with permanent_errors_fail_task():
            subscription_id = validate_subscription_id(self.subscription_id)

        def refused(error: AltinnError) -> str:
            if isinstance(error, AltinnConfigError):
                return f"Nothing was deleted: connection {self.altinn_events_conn_id!r} is invalid: {error}"
            if isinstance(error, AltinnForbiddenError):
                return (
                    f"Subscription {subscription_id} was created by another consumer; only its creator may "
                    f"delete it: {error}"
                )
            return f"Altinn refused to delete subscription {subscription_id}: {error}"

        hook = AltinnEventsHook(altinn_events_conn_id=self.altinn_events_conn_id)
        try:
            with permanent_errors_fail_task(refused):
                hook.get_conn().delete_subscription(subscription_id)
        except AltinnNotFoundError as error:
            if self.fail_if_not_exists:
                raise AirflowFailException(
                    f"Subscription {subscription_id} does not exist: {error}"
                ) from error
            self.log.info("Subscription %s does not exist (already deleted); nothing to do", subscription_id)
            return
        finally:
            hook.close()
        self.log.info("Deleted subscription %s", subscription_id)


def _as_bool(value: Any) -> Any:
    """A rendered template gives ``"True"``/``"false"``; anything else is left for validation to judge."""
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    return value


def _hint(error: Exception) -> str:
    if isinstance(error, AltinnForbiddenError):
        return (
            " (generic resources need the scope altinn:events.subscribe in the connection's 'scopes' and the "
            "'subscribe' right on the resource)"
        )
    return ""

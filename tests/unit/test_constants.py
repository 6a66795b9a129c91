"""Each shared value is written once (``client/_constants.py``); the old homes re-export the same object."""

from __future__ import annotations

import inspect

from airflow_provider_altinn_events.client import _constants as constants


def test_old_homes_re_export_the_one_constant() -> None:
    from airflow_provider_altinn_events import _ingest
    from airflow_provider_altinn_events._ingest import spec
    from airflow_provider_altinn_events.client import matching, protocol, urn
    from airflow_provider_altinn_events.operators import subscriptions
    from airflow_provider_altinn_events.triggers import altinn_events as triggers

    assert urn.RESOURCE_PREFIX is constants.RESOURCE_PREFIX
    assert matching.DEFAULT_PAGE_SIZE is constants.DEFAULT_PAGE_SIZE
    assert matching.SEEK_PAGE_SIZE is constants.SEEK_PAGE_SIZE
    assert protocol.MAX_PAGE_SIZE is constants.MAX_PAGE_SIZE
    assert spec.MAX_PAGE_SIZE is _ingest.MAX_PAGE_SIZE is constants.MAX_PAGE_SIZE
    assert subscriptions.APP_RESOURCE_PREFIX is constants.APP_RESOURCE_PREFIX
    assert triggers.DEFAULT_CONN_ID is constants.DEFAULT_CONN_ID


def test_every_constructor_defaults_to_the_one_connection_id_and_poll_interval() -> None:
    from airflow_provider_altinn_events.hooks.altinn_events import AltinnEventsHook
    from airflow_provider_altinn_events.operators.ingest import AltinnEventsIngestOperator
    from airflow_provider_altinn_events.operators.publish import _PublishBase
    from airflow_provider_altinn_events.operators.subscriptions import (
        AltinnEventsCreateSubscriptionOperator,
        AltinnEventsDeleteSubscriptionOperator,
    )
    from airflow_provider_altinn_events.sensors.altinn_events import AltinnEventsSensor
    from airflow_provider_altinn_events.triggers.altinn_events import (
        AltinnEventsSensorTrigger,
        AltinnEventsWatcherTrigger,
    )
    from airflow_provider_altinn_events.triggers.subscriptions import AltinnEventsSubscriptionValidatedTrigger

    assert AltinnEventsHook.default_conn_name == constants.DEFAULT_CONN_ID
    classes = [
        AltinnEventsIngestOperator,
        _PublishBase,
        AltinnEventsCreateSubscriptionOperator,
        AltinnEventsDeleteSubscriptionOperator,
        AltinnEventsSensor,
        AltinnEventsSensorTrigger,
        AltinnEventsWatcherTrigger,
        AltinnEventsSubscriptionValidatedTrigger,
    ]
    for cls in classes:
        params = inspect.signature(cls.__init__).parameters
        assert params["altinn_events_conn_id"].default == constants.DEFAULT_CONN_ID, cls
        if "poll_interval" in params:
            assert params["poll_interval"].default == constants.DEFAULT_POLL_INTERVAL, cls

"""The provider's pre-flight checks against the shared case table (tests/contract_cases.py).

Every case cites the Altinn / CloudEvents SDK source of its rule; ``tests/emulator/test_contract_cases.py``
runs the same table against the emulator over HTTP, so both implementations agree with Altinn.
"""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from airflow_provider_altinn_events.client.validation import prepare_app_event, prepare_cloud_event
from airflow_provider_altinn_events.exceptions import AltinnConfigError
from tests.contract_cases import APP_CASES, CASES, AppCase, Case

NOW = datetime(2026, 11, 26, 10, 0, tzinfo=timezone.utc)


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_preflight_agrees_with_altinn(case: Case) -> None:
    event = case.event("contract-case")
    if case.outcome == "accepted":
        prepare_cloud_event(event, default_id="x", now=NOW)
        return
    # refused (Altinn answers 400) or lost (Altinn answers 200 and cannot store it): refused before any request
    with pytest.raises(AltinnConfigError) as info:
        prepare_cloud_event(event, default_id="x", now=NOW)
    assert info.value.field is not None
    assert info.value.field.startswith(f"event.{case.field}"), (info.value.field, str(info.value))


@pytest.mark.parametrize("case", APP_CASES, ids=[case.name for case in APP_CASES])
def test_app_event_preflight_agrees_with_altinn(case: AppCase) -> None:
    if case.outcome == "accepted":
        prepare_app_event(case.event())
        return
    with pytest.raises(AltinnConfigError) as info:
        prepare_app_event(case.event())
    assert info.value.field == f"event.{case.field}", (info.value.field, str(info.value))

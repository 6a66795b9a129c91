"""The emulator against the shared case table (tests/contract_cases.py), over real HTTP.

Each case cites its rule's source (Altinn/altinn-events at d7232ac8 or the CloudEvents C# SDK 2.9.0 that
Altinn pins); ``tests/unit/client/test_contract_cases.py`` runs the same table through the provider's
pre-flight checks. docs/contract.rst lists the rules.
"""

from __future__ import annotations

import json
import uuid

import httpx
import pytest

from airflow_provider_altinn_events.emulator.handle import EmulatorHandle
from tests.contract_cases import APP_CASES, CASES, RESOURCE, AppCase, Case

from .conftest import bearer, get_events, publish


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_emulator_agrees_with_altinn(api: httpx.Client, token: str, case: Case) -> None:
    event_id = f"case-{uuid.uuid4()}" if case.name != "id blank is fine" else " "
    event = case.event(event_id)
    if case.name in ("id empty", "id control character", "id number"):
        event_id = str(event["id"])
    response = publish(api, token, event)
    if case.outcome == "refused":
        assert response.status_code == 400, response.text
        assert case.message in response.text, response.text
        return
    assert response.status_code == 200, response.text
    page = get_events(api, token, {"resource": RESOURCE, "after": "0", "size": 1000})
    assert page.status_code == 200
    served = [e for e in json.loads(page.text) if e["id"] == event_id]
    if case.outcome == "lost":
        assert served == []  # PostgreSQL's jsonb refuses U+0000 after Altinn answered 200
    else:
        assert len(served) == 1


@pytest.mark.parametrize("case", APP_CASES, ids=[case.name for case in APP_CASES])
def test_emulator_app_events_agree_with_altinn(
    altinn_emulator: EmulatorHandle, api: httpx.Client, token: str, case: AppCase
) -> None:
    pat = altinn_emulator.platform_access_token("ttd", "apps-test")
    response = api.post(
        "/events/api/v1/app", json=case.event(), headers={**bearer(token), "PlatformAccessToken": pat}
    )
    assert response.status_code == (201 if case.outcome == "accepted" else 400), response.text

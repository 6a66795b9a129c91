"""One normaliser for the hook's client and the publish operators: dicts and ``cloudevents`` SDK events,
aware ``datetime`` times and ``bytes`` data (docs/contract.rst). The client core and the emulator share no
code (two independent implementations of Altinn's rules, checked against tests/contract_cases.py)."""

from __future__ import annotations

import ast
import base64
import json
from datetime import datetime, timedelta, timezone
from pathlib import Path

import httpx
import pytest

from airflow_provider_altinn_events.client import protocol as p
from airflow_provider_altinn_events.client.validation import (
    coerce_event_list,
    normalize_event,
    prepare_cloud_event,
)
from airflow_provider_altinn_events.exceptions import AltinnConfigError, AltinnPayloadError

from .helpers import settings

RESOURCE = "urn:altinn:resource:ttd-altinn-events-automated-tests"
PACKAGE = Path(__file__).resolve().parents[3] / "airflow_provider_altinn_events"
S = settings()

core = pytest.importorskip("cloudevents.core.v1.event")
v1 = pytest.importorskip("cloudevents.v1.http")


def _attrs(**extra: object) -> dict[str, object]:
    return {"id": "1", "type": "t", "source": "https://example.org/x", "resource": RESOURCE, **extra}


def test_sdk_events_become_dicts() -> None:
    when = datetime(2026, 11, 26, 11, 0, tzinfo=timezone(timedelta(hours=1)))
    event = normalize_event(core.CloudEvent(_attrs(time=when), data={"a": 1}))
    assert (
        event["time"] == "2026-11-26T10:00:00Z"
        and event["data"] == {"a": 1}
        and event["specversion"] == "1.0"
    )
    legacy = normalize_event(v1.CloudEvent(_attrs(), data=b"\x00bin"))
    assert legacy["data_base64"] == base64.b64encode(b"\x00bin").decode() and "data" not in legacy


def test_client_accepts_every_form_the_operator_accepts() -> None:
    forms = [
        _attrs(time=datetime(2026, 1, 1, tzinfo=timezone.utc), data=b"raw"),
        core.CloudEvent(_attrs(), data={"a": 1}),
        v1.CloudEvent(_attrs(), data="text"),
    ]
    for form in forms:
        prepare_cloud_event(form, default_id="x")  # the operator's path
        request = p.build_publish_request(S, form)  # the client's path
        body = json.loads(request.content)
        assert body["id"] == "1" and body["resource"] == RESOURCE
    assert coerce_event_list(forms[1]) == [forms[1]]
    assert coerce_event_list(forms) == forms


def test_client_refuses_what_altinn_refuses_with_the_attribute_named() -> None:
    with pytest.raises(AltinnPayloadError, match=r"event\.time .*upper-case 'T'"):
        p.build_publish_request(S, _attrs(time=str(datetime(2026, 1, 1, tzinfo=timezone.utc))))
    with pytest.raises(AltinnConfigError, match="naive"):
        normalize_event(_attrs(time=datetime(2026, 1, 1)))
    with pytest.raises(AltinnPayloadError, match="cloudevents SDK event"):
        p.build_publish_request(S, 42)
    assert isinstance(p.build_publish_request(S, _attrs()), httpx.Request)


@pytest.mark.parametrize(("package", "forbidden"), [("client", "emulator"), ("emulator", "client")])
def test_client_and_emulator_share_no_code(package: str, forbidden: str) -> None:
    """Two independent implementations of Altinn's rules: neither imports the other."""
    for path in (PACKAGE / package).glob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
            elif isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            for name in names:
                assert f"airflow_provider_altinn_events.{forbidden}" not in name, (path.name, name)
                relative_up = isinstance(node, ast.ImportFrom) and node.level >= 2
                assert not (relative_up and name.split(".")[0] == forbidden), (path.name, name)

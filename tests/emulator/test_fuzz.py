"""Bounded, deterministic fuzzing of the live emulator over real HTTP (loopback): never a 5xx, never a
dropped connection, every answer matches ``/openapi.json``, and nothing stored that cannot be served back.

``schemathesis`` drives every operation of the OpenAPI document; ``hypothesis`` throws arbitrary JSON
values and strings (non-finite and huge numbers, lone surrogates, control characters, deep nesting) at
``POST /events``. Both are derandomized with a fixed example budget, so a run is repeatable and short.
Rules: docs/contract.rst (Altinn/altinn-events src/Events/Controllers/*.cs and the CloudEvents SDK).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import checks

from airflow_provider_altinn_events.emulator.handle import EmulatorHandle
from airflow_provider_altinn_events.emulator.openapi import document
from airflow_provider_altinn_events.emulator.server import EmulatorServer

from .conftest import CE_JSON, RESOURCE, bearer, get_events

SCHEMA = schemathesis.openapi.from_dict(document("http://127.0.0.1"))
FUZZ = settings(
    max_examples=25,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=list(HealthCheck),
)


@pytest.fixture(scope="module")
def live(_altinn_emulator_key_pem: str) -> Iterator[tuple[EmulatorHandle, str]]:
    """One emulator for the module (hypothesis runs many examples per test; a server each would be slow)."""
    server = EmulatorServer().start()
    try:
        handle = EmulatorHandle.create(server.base_url, private_key_pem=_altinn_emulator_key_pem)
        try:
            yield handle, handle.altinn_token()
        finally:
            handle.close()
    finally:
        server.stop()


@pytest.fixture
def live_emulator(live: tuple[EmulatorHandle, str]) -> tuple[EmulatorHandle, str]:
    return live


@SCHEMA.parametrize()
@FUZZ
def test_openapi_operations_never_fail_and_match_the_schema(
    case: schemathesis.Case, live_emulator: tuple[EmulatorHandle, str]
) -> None:
    handle, token = live_emulator
    headers = dict(case.headers or {})
    headers.setdefault("Authorization", f"Bearer {token}")
    # The schema cannot express every Altinn rule (resource must be a urn, time RFC 3339, ...), so "valid by
    # the schema" need not be accepted; what must hold: no 5xx, documented status, content type, body.
    case.call_and_validate(
        base_url=handle.base_url,
        headers=headers,
        timeout=10,
        checks=[
            checks.not_a_server_error,
            checks.status_code_conformance,
            checks.content_type_conformance,
            checks.response_schema_conformance,
            checks.allow_header_conformance,
        ],
    )


JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**30), max_value=10**30)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=8),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=5), children, max_size=3)
    ),
    max_leaves=10,
)
#: Raw JSON number texts Python's float would turn into inf/nan or lose (sent verbatim).
NUMBER_TEXTS = st.sampled_from(
    ["1e400", "-1e400", "1E+999", "123456789012345678901234567890", "-0", "1.50", "0e-999"]
)
ATTRIBUTE_NAMES = st.sampled_from(
    [
        "id",
        "source",
        "type",
        "subject",
        "time",
        "datacontenttype",
        "dataschema",
        "resource",
        "alternativesubject",
        "priority",
        "Bad-Name",
        "",
    ]
)


def _not_json(name: str) -> Any:
    raise AssertionError(f"{name} is not JSON")


def _encoded(value: Any) -> str:
    return json.dumps(value)


@given(
    overrides=st.dictionaries(ATTRIBUTE_NAMES, JSON_VALUES | st.text(max_size=12), max_size=3),
    data=JSON_VALUES,
    number=NUMBER_TEXTS,
    depth=st.integers(min_value=0, max_value=200),
)
@FUZZ
def test_publish_never_breaks_and_stores_only_servable_events(
    live: tuple[EmulatorHandle, str], overrides: dict[str, Any], data: Any, number: str, depth: int
) -> None:
    handle, token = live
    event: dict[str, Any] = {
        "specversion": "1.0",
        "id": "fuzz",
        "source": "https://example.org/fuzz",
        "type": "fuzz.t",
        "resource": RESOURCE,
        "data": {"value": data, "nested": "@"},
    }
    event.update(overrides)
    text = _encoded(event).replace('"@"', "[" * depth + number + "]" * depth)
    with httpx.Client(base_url=handle.base_url, timeout=10) as client:
        response = client.post(
            "/events/api/v1/events", content=text.encode(), headers={**bearer(token), "Content-Type": CE_JSON}
        )
        assert response.status_code in (200, 400), response.text
        page = get_events(client, token, {"resource": RESOURCE, "after": "0", "size": 1000})
        assert page.status_code == 200, page.text
        json.loads(page.text, parse_constant=_not_json)  # everything stored is served back as valid JSON


@given(text=st.text(max_size=40), key=st.sampled_from(["resource", "after", "subject", "type", "size"]))
@FUZZ
def test_queries_with_any_characters_never_break(
    live: tuple[EmulatorHandle, str], text: str, key: str
) -> None:
    handle, token = live
    params = {"resource": RESOURCE, "after": "0", key: text}
    with httpx.Client(base_url=handle.base_url, timeout=10) as client:
        response = get_events(client, token, params)
        assert response.status_code in (200, 400), response.text
        if text:
            path = "/events/api/v1/subscriptions/" + quote(text, safe="")
            assert client.get(path, headers=bearer(token)).status_code in (400, 404)

"""The one redaction every server-controlled string goes through (``client/errors.py``), in isolation.

The end-to-end proof, over real HTTP with a stand-in that echoes credentials, is
``tests/integration/test_client_security.py``; these pin the shapes it recognises and each field it covers.
"""

from __future__ import annotations

import logging

import httpx
import pytest

from airflow_provider_altinn_events.client.clients import AltinnEventsClient
from airflow_provider_altinn_events.client.errors import error_from_response, redact
from airflow_provider_altinn_events.client.retry import RetryPolicy
from airflow_provider_altinn_events.client.tokens import parse_token_grant_response
from airflow_provider_altinn_events.exceptions import AltinnForbiddenError, TokenGrantError
from tests.unit.client.helpers import BASE, settings

JWT = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJlLXBhcnQ"
OPAQUE = "opaque-token-91c7"


@pytest.mark.parametrize(
    ("text", "kept"),
    [
        (f"token {JWT} here", "token [redacted] here"),
        (f"cut short {JWT[:30]}", "cut short [redacted]"),  # a proxy that truncates the echo
        (f"Authorization: Bearer {OPAQUE}, next", "Authorization: Bearer [redacted], next"),
        (f"grant_type=jwt-bearer&assertion={OPAQUE}", "grant_type=jwt-bearer&assertion=[redacted]"),
        (f'{{"access_token": "{OPAQUE}"}}', '{"access_token": "[redacted]"}'),
        ("The token is expired", "The token is expired"),  # ordinary words survive
    ],
)
def test_shapes_that_are_redacted(text: str, kept: str) -> None:
    assert redact(text) == kept


def _response(status: int, *, reason: bytes, headers: dict[str, str], json: object = None) -> httpx.Response:
    request = httpx.Request("GET", f"{BASE}/events/api/v1/subscriptions")
    return httpx.Response(
        status, json=json, headers=headers, request=request, extensions={"reason_phrase": reason}
    )


def test_reason_phrase_request_id_and_problem_field_names_are_redacted() -> None:
    secret = f"Bearer {OPAQUE}"
    response = _response(418, reason=f"Teapot {secret}".encode(), headers={"x-request-id": secret}, json=None)
    error = error_from_response(response)
    assert OPAQUE not in str(error) and OPAQUE not in repr(error) and OPAQUE not in str(error.request_id)
    problem = _response(400, reason=b"Bad", headers={}, json={"errors": {secret: ["x"]}})
    assert OPAQUE not in str(error_from_response(problem))


def test_oauth_error_field_is_redacted() -> None:
    response = httpx.Response(400, json={"error": f"invalid_grant {JWT}", "error_description": "d"})
    with pytest.raises(TokenGrantError) as info:
        parse_token_grant_response(settings(), response)
    assert JWT not in str(info.value) and JWT not in str(info.value.error)


def test_httpx_log_line_with_an_echoed_reason_phrase_is_redacted(caplog: pytest.LogCaptureFixture) -> None:
    def forbidden(request: httpx.Request) -> httpx.Response:
        echoed = request.headers["Authorization"].encode()
        return httpx.Response(403, extensions={"reason_phrase": b"Forbidden " + echoed})

    caplog.set_level(logging.INFO, logger="httpx")
    s = settings(auth="altinn_token", password=OPAQUE)
    with (
        AltinnEventsClient(
            s, transport=httpx.MockTransport(forbidden), retry=RetryPolicy.disabled()
        ) as client,
        pytest.raises(AltinnForbiddenError) as info,
    ):
        client.list_subscriptions()
    assert any("HTTP Request" in r.getMessage() for r in caplog.records)  # the line we scrub is there
    assert OPAQUE not in caplog.text and OPAQUE not in str(info.value)

"""Bad input to the emulator itself: real statuses, clear messages, never a crash.

Source (docs/contract.rst): Kestrel's 30 MB body limit (src/Events/Program.cs sets none), ASP.NET routing
(404/405), model binding (ValidationProblemDetails) and the SDK JsonEventFormatter messages.
"""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from .conftest import CE_JSON, RESOURCE, bearer, make_event


def test_oversized_bodies_get_413(altinn_emulator_factory: Any) -> None:
    handle = altinn_emulator_factory(max_body_bytes=2000)
    token = handle.altinn_token()
    big = make_event(data={"blob": "x" * 5000})
    with httpx.Client(base_url=handle.base_url) as client:
        response = client.post(
            "/events/api/v1/events",
            content=json.dumps(big),
            headers={**bearer(token), "Content-Type": CE_JSON},
        )
        assert response.status_code == 413
        assert "max request body size is 2000 bytes" in response.json()["detail"]

        def chunks() -> Any:
            for _ in range(10):
                yield b"x" * 500

        streamed = client.post(
            "/events/api/v1/events", content=chunks(), headers={**bearer(token), "Content-Type": CE_JSON}
        )
        assert streamed.status_code == 413
        assert client.post("/_emulator/clients", content=b"{" + b" " * 3000 + b"}").status_code == 413
        assert client.get("/_emulator/health").status_code == 200


def test_unknown_paths_and_methods(api: httpx.Client, token: str) -> None:
    missing = api.get("/events/api/v1/nothing", headers=bearer(token))
    assert missing.status_code == 404 and missing.content == b""
    wrong_method = api.patch("/events/api/v1/events", headers=bearer(token))
    assert wrong_method.status_code == 405


@pytest.mark.parametrize(
    ("method", "path", "content", "content_type"),
    [
        ("POST", "/events/api/v1/events", b"\xff\xfe\x00garbage", CE_JSON),
        ("POST", "/events/api/v1/events", b"null", CE_JSON),
        ("POST", "/events/api/v1/events", b'"just a string"', CE_JSON),
        (
            "POST",
            "/events/api/v1/events",
            b'{"specversion": "1.0", "id": "x", "source": "s", "type": "t", "resource": 5}',
            CE_JSON,
        ),
        ("POST", "/events/api/v1/subscriptions", b"[[[[", "application/json"),
        (
            "POST",
            "/events/api/v1/subscriptions",
            b'{"endPoint": "https://x.no", "includeSubunits": "yes"}',
            "application/json",
        ),
        ("POST", "/events/api/v1/app", b"{}", "application/json"),
        ("POST", "/maskinporten/token", b"\x00\x01\x02", "application/x-www-form-urlencoded"),
        ("POST", "/_emulator/events/generate", b"[]", "application/json"),
        ("POST", "/_emulator/faults", b'{"status": "500"}', "application/json"),
    ],
)
def test_garbage_never_crashes(
    api: httpx.Client, token: str, method: str, path: str, content: bytes, content_type: str
) -> None:
    response = api.request(
        method, path, content=content, headers={**bearer(token), "Content-Type": content_type}
    )
    assert 400 <= response.status_code < 500, response.text
    assert api.get("/_emulator/health").status_code == 200


def test_odd_queries_are_handled(api: httpx.Client, token: str) -> None:
    for query in (
        "resource=%ZZ&after=0",
        "resource=" + RESOURCE + "&after=0&size=99999999999",
        "resource=" + RESOURCE + "&after=0&type=%5B&type=*",
        "resource=" + RESOURCE + "&after=%00",
    ):
        response = api.get("/events/api/v1/events?" + query, headers=bearer(token))
        assert response.status_code in (200, 400), (query, response.status_code)


def test_internal_error_is_a_500_problem_and_the_server_lives_on(
    altinn_emulator: Any,
    api: httpx.Client,
    token: str,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    store = altinn_emulator.server.app.state.emulator.store

    def broken(event_id: str) -> int:
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(store, "resolve_after", broken)
    with caplog.at_level("ERROR", logger="airflow_provider_altinn_events.emulator.guard"):
        response = api.get(
            "/events/api/v1/events", params={"resource": RESOURCE, "after": "x"}, headers=bearer(token)
        )
    assert response.status_code == 500
    assert response.json()["status"] == 500 and "disk on fire" not in response.text
    monkeypatch.undo()
    assert (
        api.get(
            "/events/api/v1/events", params={"resource": RESOURCE, "after": "0"}, headers=bearer(token)
        ).status_code
        == 200
    )

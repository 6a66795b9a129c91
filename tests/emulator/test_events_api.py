"""``POST /events`` and ``GET /events``: auth, every validation message, paging and the ``next`` header.

Source (docs/contract.rst): Altinn/altinn-events src/Events/Controllers/EventsController.cs (Post, Get,
ValidateCloudEvent, ValidateQueryParams, SetNextLink), src/Events/Authorization/*, and the SDK's
JsonEventFormatter for parse messages.
"""

from __future__ import annotations

import json
import time
from typing import Any

import httpx
import jwt
import pytest

from airflow_provider_altinn_events.emulator.handle import EmulatorHandle

from .conftest import CE_JSON, RESOURCE, bearer, get_events, make_event, problem_detail, publish

OTHER = "urn:altinn:resource:systemx"


def _ids(response: httpx.Response) -> list[str]:
    assert response.status_code == 200, response.text
    return [e["id"] for e in response.json()]


# -- POST /events ----------------------------------------------------------------------------------
def test_publish_then_read_back_normalized(api: httpx.Client, token: str) -> None:
    event = make_event(
        "e1", time="2022-05-12T02:02:07.5414820+02:00", data={"x": [1, 2]}, resourceinstance="i-1"
    )
    response = publish(api, token, event)
    assert response.status_code == 200 and response.content == b""
    page = get_events(api, token, {"resource": RESOURCE, "after": "0"})
    assert page.headers["content-type"].startswith("application/cloudevents+json")
    (stored,) = page.json()
    assert stored["time"] == "2022-05-12T00:02:07.541482Z"
    assert stored["data"] == {"x": [1, 2]} and stored["resourceinstance"] == "i-1"
    assert stored["specversion"] == "1.0" and stored["resource"] == RESOURCE


def test_duplicate_id_and_source_is_a_silent_no_op(api: httpx.Client, token: str) -> None:
    assert publish(api, token, make_event("same")).status_code == 200
    assert publish(api, token, make_event("same", type="changed")).status_code == 200
    assert publish(api, token, make_event("same", source="urn:other:source")).status_code == 200
    events = get_events(api, token, {"resource": RESOURCE, "after": "0"}).json()
    assert [(e["id"], e["type"], e["source"]) for e in events] == [
        ("same", "automatedtest.triggered", make_event()["source"]),
        ("same", "automatedtest.triggered", "urn:other:source"),
    ]


def test_publish_auth(altinn_emulator: EmulatorHandle, api: httpx.Client, token: str) -> None:
    assert publish(api, "garbage", make_event()).status_code == 401
    assert (
        api.post(
            "/events/api/v1/events", content=json.dumps(make_event()), headers={"Content-Type": CE_JSON}
        ).status_code
        == 401
    )
    subscribe_only = altinn_emulator.altinn_token(["altinn:events.subscribe"])
    forbidden = publish(api, subscribe_only, make_event())
    assert forbidden.status_code == 403 and forbidden.content == b""
    pat = altinn_emulator.platform_access_token("ttd", "apps-test")
    assert publish(api, subscribe_only, make_event(), PlatformAccessToken=pat).status_code == 200
    # a Maskinporten token is not accepted by the Events API
    assert publish(api, altinn_emulator.maskinporten_token(), make_event()).status_code == 401
    # the cookie works like the header
    cookie = api.post(
        "/events/api/v1/events",
        content=json.dumps(make_event()),
        headers={"Content-Type": CE_JSON, "Cookie": f"AltinnStudioRuntime={token}"},
    )
    assert cookie.status_code == 200


def test_publish_wrong_content_type_is_415(api: httpx.Client, token: str) -> None:
    response = api.post("/events/api/v1/events", json=make_event(), headers=bearer(token))
    assert response.status_code == 415
    assert response.json()["status"] == 415


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (make_event(id=None), "CloudEvent is missing required attributes: id (Parameter 'data')"),
        (
            make_event(id=None, type=None),
            "CloudEvent is missing required attributes: id, type (Parameter 'data')",
        ),
        (
            {k: v for k, v in make_event().items() if k != "specversion"},
            "Structured mode content does not represent a CloudEvent",
        ),
        (make_event(specversion="0.3"), "Unsupported CloudEvents spec version '0.3'"),
        (make_event(time="yesterday"), "Text for attribute 'time' is invalid"),
        (make_event(id=5), "Invalid token type 'Number' for CloudEvent attribute 'id' with type 'String'"),
        ([make_event()], "Cannot decode JSON element of kind 'Array' as CloudEvent"),
        (make_event(Resource="urn:x:y"), "Invalid character 'R' in attribute name 'Resource'"),
    ],
)
def test_unparseable_cloud_events(api: httpx.Client, token: str, body: Any, message: str) -> None:
    response = api.post(
        "/events/api/v1/events", content=json.dumps(body), headers={**bearer(token), "Content-Type": CE_JSON}
    )
    assert response.status_code == 400
    problem = response.json()
    assert problem["title"] == "One or more validation errors occurred."
    assert problem["errors"]["RequestBody"][0].startswith(message)


def test_malformed_json_and_empty_body(api: httpx.Client, token: str) -> None:
    headers = {**bearer(token), "Content-Type": CE_JSON}
    response = api.post("/events/api/v1/events", content=b"{nope", headers=headers)
    assert response.status_code == 400
    assert "RequestBody" in response.json()["errors"]
    empty = api.post("/events/api/v1/events", content=b"", headers=headers)
    assert empty.status_code == 400
    assert empty.json()["errors"][""] == ["A non-empty request body is required."]


@pytest.mark.parametrize(
    ("resource", "detail"),
    [
        (None, "A 'resource' property must be defined."),
        ("", "A 'resource' property must be defined."),
        ("urn:altinn:resource:App_TTD", "'Resource' must be a valid urn."),
        ("https://example.com/x", "'Resource' must be a valid urn."),
        ("urn:altinn:resource:with space", "'Resource' must be a valid urn."),
    ],
)
def test_resource_validation(api: httpx.Client, token: str, resource: str | None, detail: str) -> None:
    event = make_event(resource=resource)
    if resource == "":
        event["resource"] = ""
    response = publish(api, token, event)
    assert response.status_code == 400
    assert problem_detail(response) == detail


def test_non_altinn_urn_accepted_as_resource(api: httpx.Client, token: str) -> None:
    assert publish(api, token, make_event(resource="urn:nbib:bokoversikt.api")).status_code == 200


def test_publish_policy_and_admin_scope(
    altinn_emulator: EmulatorHandle, api: httpx.Client, token: str
) -> None:
    altinn_emulator.add_access(RESOURCE, "/org/someone-else", ["publish"])
    assert publish(api, token, make_event()).status_code == 403
    admin = altinn_emulator.altinn_token(["altinn:events.publish", "altinn:events.publish.admin"])
    assert publish(api, admin, make_event()).status_code == 200
    altinn_emulator.add_access(RESOURCE, "/organisation/991825827", ["publish"])
    assert publish(api, token, make_event()).status_code == 200


# -- GET /events -----------------------------------------------------------------------------------
def test_get_auth(altinn_emulator: EmulatorHandle, api: httpx.Client) -> None:
    params = {"resource": RESOURCE, "after": "0"}
    assert api.get("/events/api/v1/events", params=params).status_code == 401
    publish_only = altinn_emulator.altinn_token(["altinn:events.publish"])
    response = get_events(api, publish_only, params)
    assert response.status_code == 403 and response.content == b""


def test_altinn_token_expiry_has_zero_skew(altinn_emulator_factory: Any) -> None:
    handle = altinn_emulator_factory(token_lifetime=1)
    token = handle.altinn_token()
    exp = jwt.decode(token, options={"verify_signature": False})["exp"]
    with httpx.Client(base_url=handle.base_url) as client:
        params = {"resource": RESOURCE, "after": "0"}
        if time.time() < exp - 0.2:
            assert get_events(client, token, params).status_code == 200
        time.sleep(max(0.0, exp - time.time()) + 0.05)
        assert get_events(client, token, params).status_code == 401


def test_missing_resource_and_bad_size_are_model_errors(api: httpx.Client, token: str) -> None:
    response = get_events(api, token, {"after": "0"})
    assert response.status_code == 400
    assert response.json()["errors"] == {"resource": ["The resource field is required."]}
    response = get_events(api, token, {"resource": RESOURCE, "after": "0", "size": "ten"})
    assert response.json()["errors"] == {"size": ["The value 'ten' is not valid for size."]}


@pytest.mark.parametrize(
    ("params", "headers", "detail"),
    [
        (
            {"resource": "urn:altinn:other:x", "after": "0"},
            {},
            "The 'resource' parameter must begin with `urn:altinn:resource:`",
        ),
        ({"resource": RESOURCE}, {}, "The 'after' parameter must be defined."),
        ({"resource": RESOURCE, "after": ""}, {}, "The 'after' parameter must be defined."),
        (
            {"resource": RESOURCE, "after": "0", "subject": "/party/1"},
            {"Altinn-AlternativeSubject": "/person/1"},
            "Only one of 'subject' or 'alternativeSubject' can be defined.",
        ),
    ],
)
def test_get_validation(
    api: httpx.Client, token: str, params: dict[str, str], headers: dict[str, str], detail: str
) -> None:
    response = get_events(api, token, params, **headers)
    assert response.status_code == 400
    assert problem_detail(response) == detail


def test_get_with_non_json_content_type_is_415(api: httpx.Client, token: str) -> None:
    response = get_events(api, token, {"resource": RESOURCE, "after": "0"}, **{"Content-Type": "text/plain"})
    assert response.status_code == 415
    assert (
        get_events(
            api, token, {"resource": RESOURCE, "after": "0"}, **{"Content-Type": "application/json"}
        ).status_code
        == 200
    )


def test_size_clamping(altinn_emulator: EmulatorHandle, api: httpx.Client, token: str) -> None:
    altinn_emulator.generate(RESOURCE, 1200)
    for size, expected in (("0", 50), ("-3", 50), (None, 50), ("7", 7), ("2000", 1000)):
        params = {"resource": RESOURCE, "after": "0"}
        if size is not None:
            params["size"] = size
        assert len(_ids(get_events(api, token, params))) == expected


def test_type_filters_use_like_semantics(api: httpx.Client, token: str) -> None:
    for i, kind in enumerate(["app.instance.created", "app.instance.Created", "app_x", "appYx", "other"]):
        publish(api, token, make_event(f"t{i}", type=kind))

    def ids(*types: str) -> list[str]:
        return _ids(
            get_events(api, token, [("resource", RESOURCE), ("after", "0"), *(("type", t) for t in types)])
        )

    assert ids("app.instance.created") == ["t0"]
    assert ids("app.instance.%") == ["t0", "t1"]
    assert ids("app_x") == ["t2", "t3"]
    assert ids("app\\_x") == ["t2"]
    assert ids("other", "app.instance.created") == ["t0", "t4"]
    assert ids("APP.%") == []


def test_subject_and_alternative_subject(api: httpx.Client, token: str) -> None:
    publish(api, token, make_event("s1", subject="/party/1", alternativesubject="/person/01038712345"))
    publish(api, token, make_event("s2", subject="/party/2"))
    assert _ids(get_events(api, token, {"resource": RESOURCE, "after": "0", "subject": "/party/2"})) == ["s2"]
    response = get_events(
        api,
        token,
        {"resource": RESOURCE, "after": "0"},
        **{"Altinn-AlternativeSubject": "/person/01038712345"},
    )
    assert _ids(response) == ["s1"]
    assert response.headers["next"].endswith(
        "&resource=urn:altinn:resource:ttd-altinn-events-automated-tests&subject=/party/1"
    )


def test_next_header_format(altinn_emulator: EmulatorHandle, api: httpx.Client, token: str) -> None:
    publish(api, token, make_event("n1", subject="/party/1337", type="a.b"))
    publish(api, token, make_event("n2", subject="/party/1337", type="c.d"))
    response = api.get(
        "/events/api/v1/events?resource=" + RESOURCE + "&after=0&type=a.b&subject=%2Fparty%2F1337&type=c.%25",
        headers=bearer(token),
    )
    assert _ids(response) == ["n1", "n2"]
    assert response.headers["next"] == (
        f"{altinn_emulator.base_url}/events/api/v1/events?after=n2&resource={RESOURCE}&type=a.b&type=c.%&subject=/party/1337"
    )
    empty = api.get(response.headers["next"].replace("c.%", "c.%25"), headers=bearer(token))
    assert empty.json() == [] and "next" not in empty.headers


def test_after_semantics(api: httpx.Client, token: str) -> None:
    for i in range(4):
        publish(api, token, make_event(f"a{i}"))
    assert _ids(get_events(api, token, {"resource": RESOURCE, "after": "a1"})) == ["a2", "a3"]
    assert _ids(get_events(api, token, {"resource": RESOURCE, "after": "unknown-id"})) == [
        "a0",
        "a1",
        "a2",
        "a3",
    ]
    assert _ids(get_events(api, token, {"resource": RESOURCE, "after": "a3"})) == []


def test_unauthorized_events_silently_dropped_after_limit(
    altinn_emulator: EmulatorHandle, api: httpx.Client, token: str
) -> None:
    publish(api, token, make_event("mine"))
    publish(api, token, make_event("hidden", resource=OTHER))
    altinn_emulator.add_access(OTHER, "/org/someone-else", ["subscribe"])
    response = get_events(api, token, {"resource": OTHER, "after": "0"})
    assert response.status_code == 200 and response.json() == [] and "next" not in response.headers
    assert _ids(get_events(api, token, {"resource": RESOURCE, "after": "0"})) == ["mine"]
    altinn_emulator.add_access(OTHER, "/organisation/991825827", ["subscribe"])
    assert _ids(get_events(api, token, {"resource": OTHER, "after": "0"})) == ["hidden"]


def test_next_header_across_pages_of_a_large_resource(
    altinn_emulator: EmulatorHandle, api: httpx.Client, token: str
) -> None:
    generated = altinn_emulator.generate(RESOURCE, 2500, type="bulk.created", subject="/party/7")
    url: str | None = f"/events/api/v1/events?resource={RESOURCE}&after=0&size=1000"
    seen: list[str] = []
    pages = 0
    while url:
        response = api.get(url, headers=bearer(token))
        batch = _ids(response)
        if not batch:
            assert "next" not in response.headers
            break
        pages += 1
        seen.extend(batch)
        url = response.headers["next"]
        assert (
            url.startswith(altinn_emulator.base_url) and f"after={batch[-1]}&" in url and "size=1000" in url
        )
    assert pages == 3 and len(seen) == len(set(seen)) == 2500
    assert seen[0] == generated["first_id"] and seen[-1] == generated["last_id"]


def test_visibility_delay(altinn_emulator_factory: Any) -> None:
    handle = altinn_emulator_factory(visibility_delay=0.6)
    token = handle.altinn_token()
    with httpx.Client(base_url=handle.base_url) as client:
        assert publish(client, token, make_event("late")).status_code == 200
        params = {"resource": RESOURCE, "after": "0"}
        assert get_events(client, token, params).json() == []
        time.sleep(0.7)
        assert _ids(get_events(client, token, params)) == ["late"]


def test_public_url_is_used_for_links_and_issuer() -> None:
    from airflow_provider_altinn_events.emulator import EmulatorServer

    with EmulatorServer(public_url="https://altinn.example.test/") as server:
        assert server.base_url == "https://altinn.example.test"
        with httpx.Client(base_url=server.listen_url) as client:
            meta = client.get("/maskinporten/.well-known/oauth-authorization-server").json()
            assert meta["issuer"] == "https://altinn.example.test/maskinporten/"

"""Pre-flight validation: the service's rules, checked without any network or Airflow."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from airflow_provider_altinn_events.client.validation import (
    coerce_event_list,
    is_valid_urn,
    prepare_app_event,
    prepare_cloud_event,
    validate_cloud_event,
    validate_subscription_id,
    validate_subscription_request,
)
from airflow_provider_altinn_events.exceptions import AltinnConfigError

RESOURCE = "urn:altinn:resource:ttd-altinn-events-automated-tests"
NOW = datetime(2026, 5, 12, 8, 30, tzinfo=timezone.utc)


def event(**overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "type": "case.closed",
        "source": "https://example.org/cases/42",
        "resource": RESOURCE,
        "subject": "/party/1337",
    }
    base.update(overrides)
    return {key: value for key, value in base.items() if value is not ...}


def config_error(call: Any, *args: Any, **kwargs: Any) -> AltinnConfigError:
    with pytest.raises(AltinnConfigError) as info:
        call(*args, **kwargs)
    return info.value


# -- resource URNs (Altinn's UriExtensions.IsValidUrn) ---------------------------------------------------------


@pytest.mark.parametrize(
    "value",
    [
        RESOURCE,
        "urn:altinn:resource:app_ttd_endring-av-navn-v2",
        "urn:nbib:bokoversikt.api",
        "urn:altinn:resource:dodsbo.domstoladmin.api",
        "urn:a:b(c)+,.-;$_!/",
    ],
)
def test_valid_urns(value: str) -> None:
    assert is_valid_urn(value)


@pytest.mark.parametrize(
    "value",
    [
        "urn:altinn:resource:App_TTD",  # uppercase: the service's regex is case-sensitive
        "URN:altinn:resource:x",
        "urn:altinn",  # no part after the namespace id
        "urn:altinn:resource:a%20b",
        "urn:altinn:resource:a=b",
        "urn:altinn:resource:a@b",
        "urn:altinn:resource:a?b",
        "urn:altinn:resource:a#b",
        "urn:altinn:resource:a*b",
        "urn:altinn:resource:a'b",
        "https://example.org/resource",
        "urn:" + "a" * 31 + ":x",  # namespace id longer than 30
        "urn:a:" + "b" * 101,  # part longer than 100
        "urn:a" + ":b" * 11,  # more than 10 parts
        "",
        None,
        42,
    ],
)
def test_invalid_urns(value: Any) -> None:
    assert not is_valid_urn(value)


# -- prepare_cloud_event: defaults ---------------------------------------------------------------------------


def test_defaults_are_filled_in_and_input_is_not_modified() -> None:
    original = event()
    prepared = prepare_cloud_event(original, default_id="id-1", now=NOW)
    assert prepared["specversion"] == "1.0"
    assert prepared["id"] == "id-1"
    assert prepared["time"] == "2026-05-12T08:30:00Z"
    assert "id" not in original and "time" not in original and "specversion" not in original


def test_given_id_time_and_specversion_are_kept() -> None:
    prepared = prepare_cloud_event(
        event(id="mine", time="2020-10-13T11:50:29+02:00", specversion="1.0"), default_id="x", now=NOW
    )
    assert (prepared["id"], prepared["time"]) == ("mine", "2020-10-13T11:50:29+02:00")


def test_time_defaults_to_now_in_utc() -> None:
    before = datetime.now(timezone.utc)
    prepared = prepare_cloud_event(event(), default_id="x")
    stamp = datetime.fromisoformat(prepared["time"].replace("Z", "+00:00"))
    assert prepared["time"].endswith("Z")
    assert before - timedelta(seconds=1) <= stamp <= datetime.now(timezone.utc)


def test_aware_datetime_is_converted_and_naive_refused() -> None:
    oslo = timezone(timedelta(hours=2))
    prepared = prepare_cloud_event(event(time=datetime(2026, 5, 12, 10, 30, tzinfo=oslo)), default_id="x")
    assert prepared["time"] == "2026-05-12T08:30:00Z"
    error = config_error(prepare_cloud_event, event(time=datetime(2026, 5, 12)), default_id="x")
    assert error.field == "event.time" and "naive" in str(error)


def test_none_values_count_as_absent() -> None:
    prepared = prepare_cloud_event(event(subject=None, id=None, data=None), default_id="d", now=NOW)
    assert "subject" not in prepared and "data" not in prepared and prepared["id"] == "d"


# -- validate_cloud_event: each rule names its field ---------------------------------------------------------


@pytest.mark.parametrize(
    ("overrides", "field", "fragment"),
    [
        ({"type": ...}, "event.type", "missing"),
        ({"type": ""}, "event.type", "non-empty string"),
        ({"source": ...}, "event.source", "missing"),
        ({"source": "https://exa mple.org"}, "event.source", "host"),
        ({"source": "https:///no-host"}, "event.source", "host"),
        ({"resource": ...}, "event.resource", "A 'resource' property must be defined."),
        ({"resource": "urn:altinn:resource:App_TTD"}, "event.resource", "not a valid urn"),
        ({"resource": "not-a-urn"}, "event.resource", "lowercase URN"),
        ({"specversion": "0.3"}, "event.specversion", "'1.0'"),
        ({"time": "yesterday"}, "event.time", "RFC 3339"),
        ({"time": "2026-05-12T08:30:00"}, "event.time", "time zone"),
        ({"time": "2026-02-30T08:30:00Z"}, "event.time", "RFC 3339"),
        ({"subject": 1337}, "event.subject", "non-empty string"),
        ({"alternativesubject": "a\x01b"}, "event.alternativesubject", "control character"),
        ({"dataschema": "schema.json"}, "event.dataschema", "absolute URI"),
        ({"datacontenttype": "json"}, "event.datacontenttype", "media type"),
        ({"data": {1, 2}}, "event.data", "not JSON-serializable"),
        ({"data": {"when": datetime(2026, 1, 1)}}, "event.data", "ISO strings"),
        ({"data": float("nan")}, "event.data", "not JSON-serializable"),
        ({"datacontenttype": "application/xml", "data": {"a": 1}}, "event.data", "must be a string"),
        ({"data": {}, "data_base64": "AA=="}, "event.data", "both"),
        ({"data_base64": "not base64!"}, "event.data_base64", "base64"),
        (
            {"alternativeSubject": "/person/1"},
            "event.alternativeSubject",
            "did you mean 'alternativesubject'",
        ),
        ({"my_ext": "x"}, "event.my_ext", "lowercase letters and digits"),
        ({"priority": {"level": 1}}, "event.priority", "extension attribute"),
        ({"priority": 2**40}, "event.priority", "32-bit"),
        ({"priority": 1.5}, "event.priority", "extension attribute"),
    ],
)
def test_rule_violations_name_the_field(overrides: dict[str, Any], field: str, fragment: str) -> None:
    error = config_error(prepare_cloud_event, event(**overrides), default_id="x", now=NOW)
    assert error.field == field
    assert fragment in str(error)
    assert isinstance(error, ValueError)  # AltinnConfigError is also a ValueError


@pytest.mark.parametrize(
    "overrides",
    [
        {"source": "urn:isbn:1234567890"},  # the service's own test data
        {"resource": "urn:nbib:bokoversikt.api"},
        {"data": {"nested": [1, "two", None, True]}},
        {"data": "plain", "datacontenttype": "text/plain"},
        {"data": {"a": 1}, "datacontenttype": "application/vnd.case+json; charset=utf-8"},
        {"data_base64": "aGVsbG8="},
        {"dataschema": "https://example.org/schemas/case.json"},
        {"resourceinstance": "50002108/6fb3f738-6800-4f29-9f3e-1c66862656cd"},
        {"priority": 3, "urgent": True, "region": "north"},
        {"time": "2022-05-12T00:02:07.541482Z"},
        # docs/contract.rst: source is a URI-reference (CloudEventsSpecVersion: UriReference), extension strings
        # may be empty (only id, type, subject must be non-empty)
        {"source": "/relative/path"},
        {"alternativesubject": ""},
    ],
)
def test_valid_events_pass(overrides: dict[str, Any]) -> None:
    prepared = prepare_cloud_event(event(**overrides), default_id="x", now=NOW)
    json.dumps(prepared)  # ready to send


def test_field_prefix_names_the_position_in_a_list() -> None:
    error = config_error(prepare_cloud_event, event(resource="bad"), default_id="x", field="event[3]")
    assert error.field == "event[3].resource"
    assert str(error).startswith("event[3].resource")


def test_validate_refuses_non_mapping() -> None:
    assert config_error(validate_cloud_event, ["not", "a", "dict"]).field == "event"  # type: ignore[arg-type]


# -- coerce_event_list -----------------------------------------------------------------------------------


def test_coerce_accepts_dict_list_and_json_strings() -> None:
    assert coerce_event_list({"a": 1}) == [{"a": 1}]
    assert coerce_event_list([{"a": 1}, {"b": 2}]) == [{"a": 1}, {"b": 2}]
    assert coerce_event_list('{"a": 1}') == [{"a": 1}]
    assert coerce_event_list('[{"a": 1}]') == [{"a": 1}]
    assert coerce_event_list(({"a": 1},)) == [{"a": 1}]


@pytest.mark.parametrize(
    ("value", "field", "fragment"),
    [
        ([], "event", "empty"),
        ("[{'a': 1}]", "event", "not JSON"),
        ([{"a": 1}, "x"], "event[1]", "must be a dict"),
        (42, "event", "dict or a list"),
        (None, "event", "dict or a list"),
    ],
)
def test_coerce_refuses(value: Any, field: str, fragment: str) -> None:
    error = config_error(coerce_event_list, value)
    assert error.field == field and fragment in str(error)


# -- app events (POST /app) ------------------------------------------------------------------------------

APP_SOURCE = "https://ttd.apps.altinn.no/ttd/apps-test/instances/1337/6fb3f738-6800-4f29-9f3e-1c66862656cd"


def test_app_event_gets_specversion_and_keeps_its_fields() -> None:
    raw = {"source": APP_SOURCE, "type": "app.instance.created", "subject": "/party/1337", "data": {"x": 1}}
    assert prepare_app_event(raw) == {**raw, "specversion": "1.0"}


@pytest.mark.parametrize(
    ("overrides", "field", "fragment"),
    [
        ({"subject": None}, "event.subject", "POST /app requires source, subject and type"),
        ({"type": ""}, "event.type", "non-empty string"),
        ({"source": "urn:x:y"}, "event.source", "https or http URL"),
        ({"id": "mine"}, "event.id", "assigns id"),
        ({"datacontenttype": "application/json"}, "event.datacontenttype", "'contenttype'"),
        ({"resource": RESOURCE}, "event.resource", "allowed:"),
        ({"data": object()}, "event.data", "not JSON-serializable"),
        ({"specversion": "2.0"}, "event.specversion", "'1.0'"),
    ],
)
def test_app_event_rules(overrides: dict[str, Any], field: str, fragment: str) -> None:
    raw = {"source": APP_SOURCE, "type": "app.instance.created", "subject": "/party/1337", **overrides}
    error = config_error(prepare_app_event, raw)
    assert error.field == field and fragment in str(error)


# -- subscriptions ---------------------------------------------------------------------------------------


def test_subscription_request_is_normalised() -> None:
    request = validate_subscription_request(
        endpoint=" https://hooks.example.org/altinn ",
        resource_filter=RESOURCE,
        subject_filter="",
        type_filter="  ",
    )
    assert request == {
        "endpoint": "https://hooks.example.org/altinn",
        "resource_filter": RESOURCE,
        "source_filter": None,
        "subject_filter": None,
        "alternative_subject_filter": None,
        "type_filter": None,
        "include_subunits": False,
    }


def test_app_subscription_may_use_source_and_alternative_subject() -> None:
    request = validate_subscription_request(
        endpoint="https://hooks.example.org/altinn",
        resource_filter="urn:altinn:resource:app_ttd_apps-test",
        source_filter="https://ttd.apps.altinn.no/ttd/apps-test",
        alternative_subject_filter="/person/01038712345",
        include_subunits=True,
    )
    assert request["alternative_subject_filter"] == "/person/01038712345"
    assert (
        validate_subscription_request(
            endpoint="https://h.example.org/", source_filter="https://ttd.apps.altinn.no/ttd/apps-test"
        )["resource_filter"]
        is None
    )


@pytest.mark.parametrize("endpoint", ["http://127.0.0.1:8080/hook", "http://localhost/x", "http://[::1]:9/x"])
def test_plain_http_only_for_loopback(endpoint: str) -> None:
    assert validate_subscription_request(endpoint=endpoint, resource_filter=RESOURCE)["endpoint"] == endpoint


@pytest.mark.parametrize(
    ("kwargs", "field", "fragment"),
    [
        ({"endpoint": None}, "endpoint", "missing"),
        ({"endpoint": "  "}, "endpoint", "missing"),
        ({"endpoint": "http://hooks.example.org/x"}, "endpoint", "https"),
        ({"endpoint": "/relative"}, "endpoint", "https"),
        ({"endpoint": "ftp://hooks.example.org/x"}, "endpoint", "https"),
        ({"resource_filter": None}, "resource_filter", "required"),
        ({"resource_filter": "urn:altinn:resource:UPPER"}, "resource_filter", "not a valid urn"),
        ({"resource_filter": 42}, "resource_filter", "must be a string"),
        ({"source_filter": "http://ttd.apps.altinn.no/ttd/x"}, "source_filter", "https scheme"),
        ({"source_filter": "https://ttd.apps.altinn.no/ttd/x"}, "source_filter", "not supported"),
        ({"alternative_subject_filter": "/person/1"}, "alternative_subject_filter", "not supported"),
        ({"include_subunits": True}, "include_subunits", "requires a subject filter"),
        ({"include_subunits": "yes"}, "include_subunits", "True or False"),
    ],
)
def test_subscription_rules(kwargs: dict[str, Any], field: str, fragment: str) -> None:
    arguments: dict[str, Any] = {"endpoint": "https://hooks.example.org/altinn", "resource_filter": RESOURCE}
    arguments.update(kwargs)
    error = config_error(validate_subscription_request, **arguments)
    assert error.field == field and fragment in str(error)


@pytest.mark.parametrize(("value", "expected"), [(7, 7), ("12", 12), (" 3 ", 3)])
def test_subscription_id_accepted(value: Any, expected: int) -> None:
    assert validate_subscription_id(value) == expected


@pytest.mark.parametrize("value", [0, -1, True, "abc", "1.5", None, 2.0, ""])
def test_subscription_id_refused(value: Any) -> None:
    assert config_error(validate_subscription_id, value).field == "subscription_id"

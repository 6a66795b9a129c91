"""One table of publish cases, checked against two independent implementations of Altinn's rules.

``tests/unit/client/test_contract_cases.py`` runs every case through the provider's pre-flight checks
(``client/validation.py``); ``tests/emulator/test_contract_cases.py`` sends every case to the emulator over
HTTP. Neither implementation imports the other; both must agree with the outcome here, which comes from the
cited Altinn source (docs/contract.rst lists the rules):

* ``accepted``: Altinn answers 200 and serves the event back;
* ``refused``: Altinn answers 400 (``message`` is what the emulator's body must contain); the provider
  refuses before any request, naming ``field``;
* ``lost``: Altinn answers 200 and then cannot store the event (PostgreSQL's ``jsonb`` refuses U+0000), so it
  is never served; the provider refuses it (nothing lost), the emulator answers 200 and drops it.

Sources: ``SDK`` = cloudevents/sdk-csharp v2.9.0 (the version ``src/Events/Altinn.Platform.Events.csproj``
pins), ``src/...`` = Altinn/altinn-events at d7232ac8.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

RESOURCE = "urn:altinn:resource:ttd-altinn-events-automated-tests"
TIMESTAMPS = "SDK src/CloudNative.CloudEvents/Timestamps.cs (TryParse)"
STRING_TYPE = "SDK src/CloudNative.CloudEvents/CloudEventAttributeType.cs (StringType.ValidateImpl)"
FORMATTER = "SDK src/CloudNative.CloudEvents.SystemTextJson/JsonEventFormatter.cs"
SPEC = "SDK src/CloudNative.CloudEvents/CloudEventsSpecVersion.cs"
ATTRIBUTE = "SDK src/CloudNative.CloudEvents/CloudEventAttribute.cs"
CONTROLLER = "src/Events/Controllers/EventsController.cs (ValidateCloudEvent)"
SERIALIZE = (
    "src/Events/Wolverine/Publishers/RegistrationEventPublisher.cs (cloudEvent.Serialize in the request)"
)
JSONB = "src/Events/Repository/CloudEventRepository.cs (jsonb insert after the 200)"


def nested(depth: int) -> Any:
    """A JSON value with ``depth`` levels of arrays."""
    value: Any = 1
    for _ in range(depth):
        value = [value]
    return value


@dataclass(frozen=True)
class Case:
    name: str
    overrides: dict[str, Any]
    outcome: str  # accepted | refused | lost
    source: str
    message: str = ""  # refused: fragment of the emulator's 400 body
    field: str = ""  # refused: the attribute the provider names (event.<field>)
    remove: tuple[str, ...] = ()

    def event(self, event_id: str) -> dict[str, Any]:
        event: dict[str, Any] = {
            "specversion": "1.0",
            "id": event_id,
            "source": "https://github.com/Altinn/altinn-events/tree/main/test/k6",
            "type": "automatedtest.triggered",
            "subject": "/autotest/k6",
            "resource": RESOURCE,
            "time": "2022-05-12T00:02:07.541482Z",
        }
        event.update(self.overrides)
        for name in self.remove:
            event.pop(name, None)
        return event


INVALID_TIMESTAMP = "Text for attribute 'time' is invalid: Invalid timestamp"

CASES: list[Case] = [
    # -- time -------------------------------------------------------------------------------------------
    Case("time utc", {"time": "2026-11-26T10:00:00Z"}, "accepted", TIMESTAMPS),
    Case("time offset 14:00", {"time": "2026-11-26T10:00:00+14:00"}, "accepted", TIMESTAMPS),
    Case("time offset -14:00", {"time": "2026-11-26T10:00:00-14:00"}, "accepted", TIMESTAMPS),
    Case("time 9 fraction digits", {"time": "2026-11-26T10:00:00.123456789Z"}, "accepted", TIMESTAMPS),
    Case("time absent", {}, "accepted", SPEC, remove=("time",)),
    Case(
        "time str(datetime) space",
        {"time": "2026-11-26 10:00:00+00:00"},
        "refused",
        TIMESTAMPS,
        INVALID_TIMESTAMP,
        "time",
    ),
    Case("time space Z", {"time": "2026-11-26 10:00:00Z"}, "refused", TIMESTAMPS, INVALID_TIMESTAMP, "time"),
    Case(
        "time lower-case t",
        {"time": "2026-11-26t10:00:00Z"},
        "refused",
        TIMESTAMPS,
        INVALID_TIMESTAMP,
        "time",
    ),
    Case(
        "time lower-case z",
        {"time": "2026-11-26T10:00:00z"},
        "refused",
        TIMESTAMPS,
        INVALID_TIMESTAMP,
        "time",
    ),
    Case(
        "time leap second", {"time": "2016-12-31T23:59:60Z"}, "refused", TIMESTAMPS, INVALID_TIMESTAMP, "time"
    ),
    Case(
        "time offset 14:01",
        {"time": "2026-11-26T10:00:00+14:01"},
        "refused",
        TIMESTAMPS,
        INVALID_TIMESTAMP,
        "time",
    ),
    Case(
        "time offset -15:00",
        {"time": "2026-11-26T10:00:00-15:00"},
        "refused",
        TIMESTAMPS,
        INVALID_TIMESTAMP,
        "time",
    ),
    Case(
        "time offset minutes 60",
        {"time": "2026-11-26T10:00:00+01:60"},
        "refused",
        TIMESTAMPS,
        INVALID_TIMESTAMP,
        "time",
    ),
    Case(
        "time offset no colon",
        {"time": "2026-11-26T10:00:00+0100"},
        "refused",
        TIMESTAMPS,
        INVALID_TIMESTAMP,
        "time",
    ),
    Case("time no zone", {"time": "2026-11-26T10:00:00"}, "refused", TIMESTAMPS, INVALID_TIMESTAMP, "time"),
    Case(
        "time 30 February", {"time": "2026-02-30T10:00:00Z"}, "refused", TIMESTAMPS, INVALID_TIMESTAMP, "time"
    ),
    Case("time date only", {"time": "2026-11-26"}, "refused", TIMESTAMPS, INVALID_TIMESTAMP, "time"),
    Case(
        "time not a string", {"time": 1764151200}, "refused", FORMATTER, "Invalid token type 'Number'", "time"
    ),
    # The SDK's own test vectors (test/CloudNative.CloudEvents.UnitTests/TimestampsTest.cs).
    *(
        Case(f"sdk time {text}", {"time": text}, "accepted", TIMESTAMPS)
        for text in (
            "2000-02-29T01:23:45.678+01:30",
            "2021-01-18T14:52:01-00:00",
            "2021-01-18T14:52:01.12345678912345+05:00",
            "2000-02-29T01:23:45.6781000000+01:30",
        )
    ),
    *(
        Case(f"sdk time {text}", {"time": text}, "refused", TIMESTAMPS, INVALID_TIMESTAMP, "time")
        for text in (
            "2021-01-18T14:52:01.1234567XYZ",
            "2021-01-18T14:52:01Z01",
            "2021-01-18T14:52:01+01",
            "2021-01-18T14:52:01+01:30:30",
            "2021-01-18T14:52:01-00:60",
            "2100-02-29T14:52:01Z",
            "10000-01-01T00:00:00Z",
            "2021-01-18T24:00:00Z",
            "100-01-01T00:00:00Z",
            "2021-1-01T00:00:00Z",
            "2021-01-01T1:00:00Z",
            "2021-01-01T00:01Z",
        )
    ),
    # -- core string attributes ---------------------------------------------------------------------------
    Case("id empty", {"id": ""}, "refused", SPEC, "Value must be non-empty", "id"),
    Case("type empty", {"type": ""}, "refused", SPEC, "Value must be non-empty", "type"),
    Case("subject empty", {"subject": ""}, "refused", SPEC, "Value must be non-empty", "subject"),
    Case("id blank is fine", {"id": " "}, "accepted", SPEC),
    Case("id control character", {"id": "a\x01b"}, "refused", STRING_TYPE, "Control character U+0001", "id"),
    Case("subject DEL", {"subject": "/a\x7f"}, "refused", STRING_TYPE, "Control character U+007f", "subject"),
    Case("type C1 control", {"type": "t\x85"}, "refused", STRING_TYPE, "Control character U+0085", "type"),
    Case(
        "subject noncharacter",
        {"subject": "/\ufffe"},
        "refused",
        STRING_TYPE,
        "Noncharacter U+fffe",
        "subject",
    ),
    Case("subject astral character", {"subject": "/party/\U0001f600"}, "accepted", STRING_TYPE),
    Case("id number", {"id": 5}, "refused", FORMATTER, "Invalid token type 'Number'", "id"),
    Case(
        "specversion 0.3",
        {"specversion": "0.3"},
        "refused",
        FORMATTER,
        "Unsupported CloudEvents spec version",
        "specversion",
    ),
    Case(
        "type missing",
        {},
        "refused",
        "SDK src/CloudNative.CloudEvents/Core/Validation.cs",
        "missing required attributes: type",
        "type",
        remove=("type",),
    ),
    # -- source (URI-reference) and dataschema (URI) -------------------------------------------------------
    Case("source relative", {"source": "/autotest/k6"}, "accepted", SPEC),
    Case("source urn", {"source": "urn:isbn:1234567890"}, "accepted", SPEC),
    Case(
        "source host with space",
        {"source": "https://exa mple.org/x"},
        "refused",
        SPEC,
        "Invalid URI",
        "source",
    ),
    Case("source empty host", {"source": "https:///x"}, "refused", SPEC, "Invalid URI", "source"),
    Case(
        "dataschema relative", {"dataschema": "schemas/x.json"}, "refused", SPEC, "Invalid URI", "dataschema"
    ),
    Case("dataschema absolute", {"dataschema": "https://example.org/x.json"}, "accepted", SPEC),
    # -- resource ------------------------------------------------------------------------------------------
    Case(
        "resource missing",
        {},
        "refused",
        CONTROLLER,
        "A 'resource' property must be defined.",
        "resource",
        remove=("resource",),
    ),
    Case(
        "resource upper case",
        {"resource": "urn:altinn:resource:App_TTD"},
        "refused",
        CONTROLLER,
        "'Resource' must be a valid urn.",
        "resource",
    ),
    Case(
        "resource number",
        {"resource": 5},
        "refused",
        CONTROLLER,
        "'Resource' must be a valid urn.",
        "resource",
    ),
    # -- extension attributes ------------------------------------------------------------------------------
    Case("extension int32 max", {"priority": 2147483647}, "accepted", FORMATTER),
    Case("extension int32 min", {"priority": -2147483648}, "accepted", FORMATTER),
    Case("extension boolean", {"urgent": True}, "accepted", FORMATTER),
    Case("extension empty string", {"alternativesubject": ""}, "accepted", STRING_TYPE),
    Case(
        "extension beyond int32", {"priority": 2147483648}, "refused", FORMATTER, "invalid format", "priority"
    ),
    Case("extension fraction", {"priority": 1.5}, "refused", FORMATTER, "invalid format", "priority"),
    Case("extension object", {"meta": {"a": 1}}, "refused", FORMATTER, "Invalid token type 'Object'", "meta"),
    Case("extension array", {"tags": ["a"]}, "refused", FORMATTER, "Invalid token type 'Array'", "tags"),
    Case(
        "extension control character",
        {"region": "a\nb"},
        "refused",
        STRING_TYPE,
        "Control character U+000a",
        "region",
    ),
    Case(
        "attribute name upper case", {"Region": "x"}, "refused", ATTRIBUTE, "Invalid character 'R'", "Region"
    ),
    Case("attribute name dash", {"my-ext": "x"}, "refused", ATTRIBUTE, "Invalid character '-'", "my-ext"),
    # -- data ------------------------------------------------------------------------------------------------
    Case("data object", {"data": {"case": 1, "tags": ["a", None, True]}}, "accepted", FORMATTER),
    Case("data text", {"data": "hello", "datacontenttype": "text/plain"}, "accepted", FORMATTER),
    Case(
        "data json subtype",
        {"data": {"a": 1}, "datacontenttype": "application/vnd.x+json; charset=utf-8"},
        "accepted",
        FORMATTER,
    ),
    Case("data_base64", {"data_base64": "aGVsbG8="}, "accepted", FORMATTER),
    Case(
        "data 63 levels",
        {"data": nested(63)},
        "accepted",
        "System.Text.Json JsonDocumentOptions.MaxDepth = 64",
    ),
    Case(
        "data 64 levels",
        {"data": nested(64)},
        "refused",
        "System.Text.Json JsonDocumentOptions.MaxDepth = 64",
        "maximum configured depth of 64",
        "data",
    ),
    Case(
        "datacontenttype not RFC 2046",
        {"datacontenttype": "json"},
        "refused",
        SPEC,
        "compliant with RFC2046",
        "datacontenttype",
    ),
    Case(
        "non-JSON content type with object",
        {"datacontenttype": "text/plain", "data": {"a": 1}},
        "refused",
        FORMATTER,
        "can only have string data values",
        "data",
    ),
    Case(
        "data and data_base64",
        {"data": "a", "data_base64": "YQ=="},
        "refused",
        FORMATTER,
        "cannot contain both",
        "data",
    ),
    Case("data_base64 not base64", {"data_base64": "@@@"}, "refused", FORMATTER, "Base64", "data_base64"),
    # Deliberate deviations: Altinn answers 500 (Serialize throws inside the request); emulator and provider 400.
    Case(
        "string data with application/xml",
        {"datacontenttype": "application/xml", "data": "<a/>"},
        "refused",
        SERIALIZE,
        "cannot serialize data",
        "data",
    ),
    Case(
        "data with a lone surrogate",
        {"data": {"text": "\ud800"}},
        "refused",
        SERIALIZE,
        "Invalid surrogate value",
        "data",
    ),
    # Accepted by Altinn, then lost: the emulator drops it too; the provider refuses.
    Case("data with U+0000", {"data": {"text": "a\x00b"}}, "lost", JSONB, "", "data"),
]


# -- POST /app (app events) ------------------------------------------------------------------------------------
APP_CONTROLLER = "src/Events/Controllers/AppController.cs (Post, ValidateRequiredProperties)"
APP_EXTENSIONS = "src/Events/Extensions/AppCloudEventExtensions.cs (CreateEvent: CloudEvent setters)"
APP_SOURCE = "https://ttd.apps.altinn.no/ttd/apps-test/instances/1337/6fb3f738-6800-4f29-9f3e-1c66862656cd"


@dataclass(frozen=True)
class AppCase:
    name: str
    overrides: dict[str, Any]
    outcome: str  # accepted | refused
    source: str
    field: str = ""
    remove: tuple[str, ...] = ()

    def event(self) -> dict[str, Any]:
        event: dict[str, Any] = {
            "specversion": "1.0",
            "source": APP_SOURCE,
            "type": "app.instance.created",
            "subject": "/party/1337",
        }
        event.update(self.overrides)
        for name in self.remove:
            event.pop(name, None)
        return event


APP_CASES: list[AppCase] = [
    AppCase("app event", {}, "accepted", APP_CONTROLLER),
    AppCase(
        "app event with alternativesubject",
        {"alternativesubject": "/person/01038712345"},
        "accepted",
        APP_CONTROLLER,
    ),
    AppCase("app event with data (dropped)", {"data": {"a": 1}}, "accepted", APP_EXTENSIONS),
    AppCase("subject missing", {}, "refused", APP_CONTROLLER, "subject", remove=("subject",)),
    AppCase("type empty", {"type": ""}, "refused", APP_CONTROLLER, "type"),
    AppCase("source missing", {}, "refused", APP_CONTROLLER, "source", remove=("source",)),
    # Deliberate deviations (docs/contract.rst): Altinn answers 500; the emulator 400; the provider refuses.
    AppCase(
        "source relative", {"source": "/ttd/apps-test/instances/1/x"}, "refused", APP_CONTROLLER, "source"
    ),
    AppCase("subject control character", {"subject": "/party/\x01"}, "refused", APP_EXTENSIONS, "subject"),
    AppCase("type control character", {"type": "a\nb"}, "refused", APP_EXTENSIONS, "type"),
]

"""Pre-flight checks of the events we are about to publish, with the service's own rules.

Altinn rejects a bad CloudEvent with a 400, but only after a token grant, a token exchange and a round trip,
and for a batch only after some events already went out. Everything here runs before the first request, so
a batch is either checked whole or not sent at all, and the error names the field and says what is allowed.
The rules are the real service's, listed with their Altinn source files in docs/contract.rst: the
CloudEvents C# SDK's (2.9.0) attribute rules and Altinn's URN regex for ``resource`` (POST /events), and the
app event model (POST /app). They refuse what Altinn refuses, no more and no less, except where Altinn would
accept an event and then lose it or answer 500 (named in docs/contract.rst); ``tests/contract_cases.py``
runs one table of cases against these checks and against the emulator. The subscription
checks (docs/contract.rst, "contract-subscriptions") are in :mod:`.subscription_validation` and
re-exported here. Nothing here imports Airflow or
does I/O; every error is an :class:`AltinnConfigError` whose ``field`` names the argument at fault, e.g.
``event[2].resource``.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta, timezone
from typing import Any
from urllib.parse import urlsplit

from airflow_provider_altinn_events.client.subscription_validation import (
    validate_subscription_id,
    validate_subscription_request,
)
from airflow_provider_altinn_events.client.urn import RESOURCE_URN_PATTERN, URN_HELP, is_valid_urn
from airflow_provider_altinn_events.exceptions import AltinnConfigError

__all__ = [
    "APP_EVENT_ATTRIBUTES",
    "RESOURCE_URN_PATTERN",
    "coerce_event_list",
    "format_time",
    "is_valid_urn",
    "prepare_app_event",
    "prepare_cloud_event",
    "validate_cloud_event",
    "validate_subscription_id",
    "validate_subscription_request",
]

_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.\-]*$")
_ATTRIBUTE_NAME = re.compile(r"^[a-z0-9]+$")
#: The SDK's ``Timestamps.TryParse``: date, upper-case ``T``, time, up to 7 fraction digits (more are
#: dropped but must be digits), then ``Z`` or ``+HH:MM`` / ``-HH:MM`` of at most 14:00.
_TIMESTAMP = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,7})\d*)?(Z|([+-])(\d{2}):(\d{2}))"
)
_INT32 = (-(2**31), 2**31 - 1)
#: ``CloudEventAttributeType.String`` refuses C0/C1 controls, U+FDD0-U+FDEF, U+xFFFE/U+xFFFF of every plane and
#: unpaired surrogates.
_FORBIDDEN_IN_STRINGS = re.compile(
    "[\x00-\x1f\x7f-\x9f\ufdd0-\ufdef\ud800-\udfff"
    + "".join(chr(plane * 0x10000 + 0xFFFE) + chr(plane * 0x10000 + 0xFFFF) for plane in range(17))
    + "]"
)
#: ``System.Net.Mime.ContentType``, which the SDK uses to check ``datacontenttype`` (RFC 2046).
_MEDIA_TOKEN = r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+"
_MEDIA_TYPE = re.compile(
    rf"\s*{_MEDIA_TOKEN}/{_MEDIA_TOKEN}\s*(;\s*{_MEDIA_TOKEN}\s*=\s*({_MEDIA_TOKEN}|\"([^\"\\]|\\.)*\")\s*)*;?\s*"
)
#: ``System.Uri`` refuses longer strings.
_URI_MAX = 65519
_HOST = re.compile(r"[A-Za-z0-9\-._~%!$&'()*+,;=]+(:[0-9]*)?|\[[0-9A-Fa-f:.]+\](:[0-9]*)?")
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")
#: ``JsonDocumentOptions.MaxDepth``: the event object is level 1, so ``data`` may nest 63 levels.
_MAX_JSON_DEPTH = 64

#: CloudEvents core attributes that must be JSON strings and non-empty.
_NON_EMPTY_STRINGS = ("id", "type", "subject")
#: The body of POST /app (``AppCloudEventRequestModel``); the service assigns id, time and resource itself.
APP_EVENT_ATTRIBUTES = frozenset(
    {"specversion", "source", "type", "subject", "alternativesubject", "data", "dataschema", "contenttype"}
)


def coerce_event_list(value: Any, *, field: str = "event") -> list[Any]:
    """Turn the operator's ``event`` argument into a list of events (mappings or CloudEvents SDK events).

    A template renders to a string unless the DAG renders native objects, so a JSON object or array in a
    string is accepted as well as a dict or a list of dicts (e.g. an upstream task's ``.output``).

    :param value: a mapping, a sequence of mappings, or a string holding a JSON object or array.
    :param field: the argument name used in error messages.
    :raises AltinnConfigError: ``value`` is none of these, or is empty.
    """
    if isinstance(value, (str, bytes)):
        try:
            value = json.loads(value)
        except ValueError:
            raise AltinnConfigError(
                f"{field} is a string that is not JSON; pass a dict or a list of dicts (for an upstream task's "
                "result use its .output, or render templates as native objects)",
                field=field,
            ) from None
    if isinstance(value, Mapping) or is_sdk_event(value):
        return [value]
    if isinstance(value, Sequence):
        events = list(value)
        if not events:
            raise AltinnConfigError(f"{field} is an empty list: there is nothing to publish", field=field)
        for index, item in enumerate(events):
            if not isinstance(item, Mapping) and not is_sdk_event(item):
                raise AltinnConfigError(
                    f"{field}[{index}] must be a dict (a CloudEvent), got {type(item).__name__}",
                    field=f"{field}[{index}]",
                )
        return events
    raise AltinnConfigError(
        f"{field} must be a dict or a list of dicts, got {type(value).__name__}", field=field
    )


def prepare_cloud_event(
    event: Mapping[str, Any] | object,
    *,
    default_id: str,
    now: datetime | None = None,
    field: str = "event",
) -> dict[str, Any]:
    """Fill in what the caller may leave out, then check the event as POST /events would.

    Missing ``specversion`` becomes ``"1.0"``; missing ``time`` becomes ``now`` in UTC; missing ``id``
    becomes ``default_id`` (the operator passes an id that stays the same across retries of one task
    instance, so Altinn drops a re-sent duplicate by its (id, source) pair). An attribute whose value is
    ``None`` counts as absent (a template that rendered nothing). An aware ``datetime`` as ``time`` is
    converted to RFC 3339.

    :param event: the caller's event; not modified.
    :param default_id: the id to use when the event has none.
    :param now: the time to use when the event has none (default: the current UTC time).
    :param field: how to name the event in error messages, e.g. ``event[3]``.
    :return: a new dict, ready to send.
    :raises AltinnConfigError: the event breaks a rule; ``field`` names the attribute.
    """
    prepared = normalize_event(event, field=field)
    prepared.setdefault("specversion", "1.0")
    prepared.setdefault("id", default_id)
    if prepared.get("time") is None:
        prepared["time"] = format_time(now or datetime.now(timezone.utc))
    validate_cloud_event(prepared, field=field)
    return prepared


def is_sdk_event(value: Any) -> bool:
    """Whether ``value`` is an event of the ``cloudevents`` Python SDK (``cloudevents.core`` or
    ``cloudevents.v1`` / ``cloudevents.http`` of 2.x). Duck-typed, so the SDK stays an optional extra."""
    return (
        not isinstance(value, Mapping)
        and callable(getattr(value, "get_attributes", None))
        and callable(getattr(value, "get_data", None))
    )


def normalize_event(event: Any, *, field: str = "event") -> dict[str, Any]:
    """The one place that turns what a caller may hand over into a plain CloudEvent dict.

    Accepts a mapping or a ``cloudevents`` SDK event (its attributes plus ``data``). Attributes whose value is
    ``None`` count as absent; an aware ``datetime`` as ``time`` becomes RFC 3339 text; ``bytes`` as ``data``
    become ``data_base64`` (as the CloudEvents JSON format writes binary data). The hook's client and the
    publish operators both call this, so they accept the same forms.

    :raises AltinnConfigError: not an event, or ``time`` is a naive datetime.
    """
    if is_sdk_event(event):
        source: Mapping[str, Any] = dict(event.get_attributes())
        data = event.get_data()
        if data is not None:
            source = {**source, "data": data}
    elif isinstance(event, Mapping):
        source = event
    else:
        raise AltinnConfigError(
            f"{field} must be a dict or a cloudevents SDK event, got {type(event).__name__}", field=field
        )
    prepared: dict[str, Any] = {key: value for key, value in source.items() if value is not None}
    time_value = prepared.get("time")
    if isinstance(time_value, datetime):
        if time_value.tzinfo is None or time_value.utcoffset() is None:
            raise AltinnConfigError(
                f"{field}.time is a naive datetime; give it a time zone (e.g. UTC) so the event time is exact",
                field=f"{field}.time",
            )
        prepared["time"] = format_time(time_value)
    data = prepared.get("data")
    if isinstance(data, (bytes, bytearray, memoryview)):
        if "data_base64" in prepared:
            raise AltinnConfigError(
                f"{field} has both data and data_base64; a CloudEvent carries one of them",
                field=f"{field}.data",
            )
        del prepared["data"]
        prepared["data_base64"] = base64.b64encode(bytes(data)).decode("ascii")
    return prepared


def format_time(moment: datetime) -> str:
    """RFC 3339 in UTC with a ``Z``, as Altinn returns times."""
    return moment.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")


def validate_cloud_event(event: Mapping[str, Any], *, field: str = "event") -> None:
    """Check a complete CloudEvent against the CloudEvents SDK's rules and Altinn's POST /events rules.

    Required: ``specversion`` ``"1.0"``, non-empty ``id``, ``type`` and ``source`` (an absolute URI),
    ``resource`` (a lowercase URN). Optional attributes have their types checked; ``data`` must be
    JSON-serializable (or a string when ``datacontenttype`` is not JSON); extension attribute names must be
    lowercase letters and digits with string, integer or boolean values.

    :raises AltinnConfigError: the first rule broken; ``field`` names the attribute.
    """
    if not isinstance(event, Mapping):
        raise AltinnConfigError(f"{field} must be a dict, got {type(event).__name__}", field=field)
    for name in event:
        _check_attribute_name(name, field)
    if event.get("specversion") != "1.0":
        raise AltinnConfigError(
            f"{field}.specversion must be '1.0' (the only CloudEvents version Altinn accepts), "
            f"got {event.get('specversion')!r}",
            field=f"{field}.specversion",
        )
    for name in ("id", "type", "source"):
        _require_event_string(event, name, field)
    _check_source(event["source"], f"{field}.source")
    resource = event.get("resource")
    if resource is None or resource == "":
        raise AltinnConfigError(
            f"{field}.resource is missing: Altinn requires it ('A 'resource' property must be defined.'); "
            f"use {URN_HELP}",
            field=f"{field}.resource",
        )
    if not is_valid_urn(resource):
        raise AltinnConfigError(
            f"{field}.resource {resource!r} is not a valid urn: Altinn accepts only {URN_HELP}",
            field=f"{field}.resource",
        )
    if "subject" in event:
        _require_event_string(event, "subject", field)
    if "time" in event:
        _check_time(event["time"], f"{field}.time")
    if "dataschema" in event:
        _require_event_string(event, "dataschema", field)
        _check_dataschema(event["dataschema"], f"{field}.dataschema")
    content_type: str | None = None
    if "datacontenttype" in event:
        _require_event_string(event, "datacontenttype", field)
        content_type = str(event["datacontenttype"])
        if not _MEDIA_TYPE.fullmatch(content_type):
            raise AltinnConfigError(
                f"{field}.datacontenttype {content_type!r} is not a media type such as 'application/json' "
                "(Altinn refuses it: the 'datacontenttype' attribute value must be a content-type expression "
                "compliant with RFC2046)",
                field=f"{field}.datacontenttype",
            )
    _check_data(event, field, content_type)
    for name, value in event.items():
        if name not in _KNOWN_ATTRIBUTES:
            _check_extension_value(name, value, field)
    for name, value in event.items():
        if isinstance(value, str) and "\x00" in value:
            raise AltinnConfigError(
                f"{field}.{name} holds U+0000, which Altinn accepts and then cannot store (the event would be "
                "lost without an error); remove it",
                field=f"{field}.{name}",
            )


_KNOWN_ATTRIBUTES = frozenset(
    ("id", "source", "type", "subject")
    + ("specversion", "time", "resource", "dataschema", "datacontenttype", "data", "data_base64")
)


def prepare_app_event(event: Mapping[str, Any] | object, *, field: str = "event") -> dict[str, Any]:
    """Check an app event for POST /app and fill in ``specversion``.

    The service requires ``source``, ``type`` and ``subject``, builds id, time and resource itself and
    ignores anything else, so fields outside :data:`APP_EVENT_ATTRIBUTES` are refused here rather than
    silently dropped. ``source`` must be the app instance URL,
    ``https://{org}.apps.../{org}/{app}/instances/{partyId}/{instanceGuid}``; the app in the platform access
    token must own it (the service answers 401 otherwise).

    :raises AltinnConfigError: the event breaks a rule; ``field`` names the attribute.
    """
    prepared = normalize_event(event, field=field)
    unknown = sorted(set(prepared) - APP_EVENT_ATTRIBUTES)
    if unknown:
        hint = ""
        if "datacontenttype" in unknown:
            hint = "; POST /app calls the content type 'contenttype'"
        elif set(unknown) & {"id", "time", "resource", "resourceinstance"}:
            hint = "; Altinn assigns id, time, resource and resourceinstance of app events itself"
        raise AltinnConfigError(
            f"{field} has attributes POST /app does not take: {', '.join(unknown)} (allowed: "
            f"{', '.join(sorted(APP_EVENT_ATTRIBUTES))}){hint}",
            field=f"{field}.{unknown[0]}",
        )
    prepared.setdefault("specversion", "1.0")
    if prepared["specversion"] != "1.0":
        raise AltinnConfigError(
            f"{field}.specversion must be '1.0', got {prepared['specversion']!r}",
            field=f"{field}.specversion",
        )
    for name in ("source", "type", "subject"):
        _require_string(prepared, name, field, why="POST /app requires source, subject and type")
    for name in ("type", "subject", "alternativesubject"):
        # Altinn's CreateEvent sets these on a CloudEvent, whose string rules then throw (a 500 there).
        if isinstance(prepared.get(name), str):
            _check_string_characters(prepared[name], f"{field}.{name}")
    _check_uri(prepared["source"], f"{field}.source", what="source", schemes=("https", "http"))
    for name in ("alternativesubject", "contenttype", "dataschema"):
        if name in prepared:
            _require_string(prepared, name, field)
    if "data" in prepared:
        _check_json(prepared["data"], f"{field}.data")
    return prepared


# -- helpers ---------------------------------------------------------------------------------------------


def _check_attribute_name(name: object, field: str) -> None:
    if not isinstance(name, str):
        raise AltinnConfigError(f"{field} has a non-string attribute name {name!r}", field=field)
    if name == "data_base64" or _ATTRIBUTE_NAME.fullmatch(name):
        return
    suggestion = re.sub(r"[^a-z0-9]", "", name.lower())
    raise AltinnConfigError(
        f"{field} attribute name {name!r} is not allowed: CloudEvents attribute names are lowercase letters "
        f"and digits only" + (f" (did you mean {suggestion!r}?)" if suggestion else ""),
        field=f"{field}.{name}",
    )


def _require_string(event: Mapping[str, Any], name: str, field: str, *, why: str = "") -> None:
    value = event.get(name)
    if not isinstance(value, str) or not value.strip():
        state = "is missing" if value is None else f"must be a non-empty string, got {value!r}"
        raise AltinnConfigError(
            f"{field}.{name} {state}" + (f" ({why})" if why else ""), field=f"{field}.{name}"
        )


def _check_uri(value: str, field: str, *, what: str, schemes: Sequence[str] | None = None) -> None:
    scheme, sep, rest = value.partition(":")
    if (
        not sep
        or not _SCHEME.fullmatch(scheme)
        or not rest
        or any(ch.isspace() or ord(ch) < 0x20 for ch in value)
    ):
        raise AltinnConfigError(
            f"{field} {value!r} is not an absolute URI: the {what} needs a scheme and no spaces, e.g. "
            "'https://example.org/cases/42' or 'urn:example:case:42'",
            field=field,
        )
    lowered = scheme.lower()
    if schemes is not None and lowered not in schemes:
        raise AltinnConfigError(f"{field} {value!r} must be an {' or '.join(schemes)} URL", field=field)
    if lowered in ("http", "https") and not urlsplit(value).netloc:
        raise AltinnConfigError(f"{field} {value!r} is an {lowered} URL without a host", field=field)


def _check_time(value: Any, field: str) -> None:
    """The SDK's ``Timestamps.TryParse`` (docs/contract.rst): ``str(datetime)`` (a space instead of ``T``),
    lower-case ``t``/``z``, a leap second, year 0 and offsets beyond 14:00 are refused there, so here."""
    if _is_timestamp(value):
        return
    hint = ""
    if isinstance(value, str) and len(value) > 10 and value[10:11] in (" ", "t"):
        hint = " (the date and the time must be separated by an upper-case 'T': str(datetime) gives a space)"
    raise AltinnConfigError(
        f"{field} {value!r} is not an RFC 3339 timestamp as Altinn reads it: 'YYYY-MM-DDTHH:MM:SS' with an "
        f"upper-case 'T', optional fraction, then a time zone ('Z' or an offset up to +-14:00), e.g. "
        "'2026-05-12T08:30:00Z'"
        f"{hint}; Altinn answers 400 \"Text for attribute 'time' is invalid: Invalid timestamp\"",
        field=field,
    )


def _is_timestamp(value: Any) -> bool:
    match = _TIMESTAMP.fullmatch(value) if isinstance(value, str) else None
    if match is None:
        return False
    offset = 0
    if match.group(9):
        hours, minutes = int(match.group(10)), int(match.group(11))
        if minutes >= 60 or hours * 60 + minutes > 14 * 60:
            return False
        offset = (hours * 60 + minutes) * (-1 if match.group(9) == "-" else 1)
    try:
        year, month, day, hour, minute, second = (int(match.group(i)) for i in range(1, 7))
        local = datetime(year, month, day, hour, minute, second)  # no leap second, no year 0
        _ = local - timedelta(minutes=offset)  # the UTC time must exist too (OverflowError before year 1)
    except (ValueError, OverflowError):
        return False
    return True


def _require_event_string(event: Mapping[str, Any], name: str, field: str) -> None:
    """A core attribute that must be a JSON string (``id``, ``type``, ``subject`` also non-empty)."""
    value = event.get(name)
    if not isinstance(value, str) or (value == "" and (name in _NON_EMPTY_STRINGS or name == "source")):
        state = "is missing" if value is None else f"must be a non-empty string, got {value!r}"
        raise AltinnConfigError(f"{field}.{name} {state}", field=f"{field}.{name}")
    if name not in ("source", "dataschema"):
        _check_string_characters(value, f"{field}.{name}")


def _check_string_characters(value: str, field: str) -> None:
    found = _FORBIDDEN_IN_STRINGS.search(value)
    if found is not None:
        code = ord(found.group())
        what = (
            "an unpaired surrogate"
            if 0xD800 <= code <= 0xDFFF
            else "a control character"
            if code <= 0x9F
            else "a Unicode noncharacter"
        )
        raise AltinnConfigError(
            f"{field} holds {what} (U+{code:04X}), which CloudEvents string attributes may not contain "
            "(Altinn answers 400)",
            field=field,
        )


def _check_source(value: str, field: str) -> None:
    """``source`` is a URI-reference (``new Uri(value, UriKind.RelativeOrAbsolute)``): relative is fine."""
    _check_uri_text(value, field, absolute=False)


def _check_dataschema(value: str, field: str) -> None:
    """``dataschema`` is an absolute URI (``new Uri(value, UriKind.Absolute)``)."""
    _check_uri_text(value, field, absolute=True)


def _check_uri_text(value: str, field: str, *, absolute: bool) -> None:
    problem = None
    scheme, sep, rest = value.partition(":")
    has_scheme = bool(sep) and _SCHEME.fullmatch(scheme) is not None
    if len(value) > _URI_MAX:
        problem = f"is longer than {_URI_MAX} characters, which System.Uri refuses"
    elif absolute and (value.startswith("/") or not has_scheme):
        problem = "is not an absolute URI (it needs a scheme, e.g. 'https://example.org/schema.json')"
    elif has_scheme and rest.startswith("//"):
        authority = re.split(r"[/?#]", rest[2:], maxsplit=1)[0].rpartition("@")[2]
        if not authority or _HOST.fullmatch(authority) is None:
            problem = "has a host that is not valid"
    if problem is not None:
        raise AltinnConfigError(f"{field} {_short(value)} {problem} (Altinn answers 400)", field=field)


def _short(value: str) -> str:
    return repr(value if len(value) <= 80 else value[:77] + "...")


def _is_json_media_type(content_type: str | None) -> bool:
    if content_type is None:
        return True
    media = content_type.split(";", 1)[0].strip().lower()
    return media.endswith(("/json", "+json"))


def _check_data(event: Mapping[str, Any], field: str, content_type: str | None) -> None:
    if "data" in event and "data_base64" in event:
        raise AltinnConfigError(
            f"{field} has both data and data_base64; a CloudEvent carries one of them", field=f"{field}.data"
        )
    if "data_base64" in event:
        encoded = event["data_base64"]
        try:
            if not isinstance(encoded, str):
                raise TypeError
            base64.b64decode(encoded, validate=True)
        except (TypeError, binascii.Error):
            raise AltinnConfigError(
                f"{field}.data_base64 must be a base64 string", field=f"{field}.data_base64"
            ) from None
    if "data" not in event:
        return
    data = event["data"]
    if not _is_json_media_type(content_type):
        if not isinstance(data, str):
            raise AltinnConfigError(
                f"{field}.data must be a string because datacontenttype {content_type!r} is not JSON "
                "(or use data_base64 for binary data)",
                field=f"{field}.data",
            )
        if not str(content_type).split(";", 1)[0].strip().lower().startswith("text/"):
            raise AltinnConfigError(
                f"{field}.data is a string with datacontenttype {content_type!r}: Altinn can write string data "
                "back only for JSON and text/* types (it answers 500 for others); send bytes as data_base64",
                field=f"{field}.data",
            )
    _check_json(data, f"{field}.data")


def _check_json(data: Any, field: str) -> None:
    try:
        json.dumps(data, allow_nan=False)
    except (TypeError, ValueError, RecursionError) as error:
        raise AltinnConfigError(
            f"{field} is not JSON-serializable ({error}); convert it to plain dicts, lists, strings, "
            "numbers, booleans and None first (e.g. datetimes to ISO strings)",
            field=field,
        ) from None
    # What Altinn's JSON reader refuses (depth) or cannot write back (lone surrogates), and what its store
    # cannot keep (U+0000: the event would be accepted and lost).
    stack: list[tuple[Any, int]] = [(data, 2)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, (dict, list, tuple)):
            if depth > _MAX_JSON_DEPTH:
                raise AltinnConfigError(
                    f"{field} nests deeper than Altinn reads ({_MAX_JSON_DEPTH} levels including the event)",
                    field=field,
                )
            children = [*item.keys(), *item.values()] if isinstance(item, dict) else list(item)
            stack.extend((child, depth + 1) for child in children)
        elif isinstance(item, str):
            if _LONE_SURROGATE.search(item):
                raise AltinnConfigError(
                    f"{field} holds a string with an unpaired surrogate, which has no UTF-8 form", field=field
                )
            if "\x00" in item:
                raise AltinnConfigError(
                    f"{field} holds U+0000, which Altinn accepts and then cannot store (the event would be "
                    "lost without an error); remove it",
                    field=field,
                )


def _check_extension_value(name: str, value: Any, field: str) -> None:
    """Extension values are CloudEvents-typed: a string (checked like every string attribute), a boolean or
    a 32-bit integer (Altinn stores both as their text); nothing else."""
    if isinstance(value, str):
        _check_string_characters(value, f"{field}.{name}")
        return
    if isinstance(value, bool):
        return
    if isinstance(value, int) and _INT32[0] <= value <= _INT32[1]:
        return
    raise AltinnConfigError(
        f"{field}.{name} is an extension attribute, so its value must be a string, a boolean or a "
        f"32-bit integer, got {_short(repr(value))}; put structured content in 'data'",
        field=f"{field}.{name}",
    )

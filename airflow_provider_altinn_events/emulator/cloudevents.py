"""CloudEvent parsing, validation and serialization as Altinn Events does it (CONTRACT.md A.3).

Messages of parse failures follow the CloudNative.CloudEvents SDK, which Altinn puts into
``errors.RequestBody`` of a ValidationProblemDetails.
"""

from __future__ import annotations

import json
import re
from datetime import datetime, timezone
from typing import Any

_URN = re.compile(r"^urn:[a-z0-9-]{1,30}(:[a-z0-9()+,.\-;$_!/]{1,100}){1,10}\Z")
_ATTR_NAME = re.compile(r"^[a-z0-9]+\Z")
_RFC3339 = re.compile(r"^(\d{4}-\d{2}-\d{2})[Tt ](\d{2}:\d{2}:\d{2})(\.\d+)?([Zz]|[+-]\d{2}:\d{2})\Z")
_STRING_ATTRS = ("id", "source", "type", "datacontenttype", "dataschema", "subject", "time")
_REQUIRED = ("id", "source", "type")
#: Attribute order in the serialized form (the SDK writes specversion first, then attributes as set).
_ORDER = ("specversion", "id", "source", "type", "subject", "time", "datacontenttype", "dataschema")


class CloudEventError(ValueError):
    """The body is not a CloudEvent; the message is the SDK's wording."""


def is_valid_urn(value: str) -> bool:
    """``UriExtensions.IsValidUrn``: lowercase URN pattern (case-sensitive)."""
    return bool(_URN.match(value))


def normalize_time(value: str) -> str:
    """Parse RFC 3339 and render in UTC with ``Z``, fractional seconds trimmed of trailing zeros.

    :raises ValueError: when ``value`` is not RFC 3339.
    """
    match = _RFC3339.match(value)
    if not match:
        raise ValueError(f"String '{value}' was not recognized as a valid DateTimeOffset.")
    date, clock, fraction, offset = match.groups()
    frac = (fraction or ".0")[1:]
    micro = int((frac + "000000")[:6])
    tz = "+00:00" if offset in ("Z", "z") else offset
    parsed = datetime.fromisoformat(f"{date}T{clock}{tz}").replace(microsecond=micro)
    utc = parsed.astimezone(timezone.utc)
    text = utc.strftime("%Y-%m-%dT%H:%M:%S")
    digits = (frac[:7] if len(frac) > 6 else f"{utc.microsecond:06d}").rstrip("0")
    return f"{text}.{digits}Z" if digits else f"{text}Z"


def utc_now_text() -> str:
    """The current time as Altinn renders it."""
    return normalize_time(datetime.now(timezone.utc).isoformat())


def parse_cloud_event(data: Any) -> dict[str, Any]:
    """Validate a structured-mode CloudEvent (JSON already decoded) and return its normalized form.

    :raises CloudEventError: with the SDK's message for anything the SDK refuses.
    """
    if not isinstance(data, dict):
        kind = {list: "Array", str: "String", bool: "True", type(None): "Null"}.get(type(data), "Number")
        if data is False:
            kind = "False"
        raise CloudEventError(f"Cannot decode JSON element of kind '{kind}' as CloudEvent")
    spec = data.get("specversion")
    if not isinstance(spec, str):
        raise CloudEventError("Structured mode content does not represent a CloudEvent")
    if spec != "1.0":
        raise CloudEventError(f"Unsupported CloudEvents spec version '{spec}'")
    if "data" in data and "data_base64" in data:
        raise CloudEventError(
            "Structured mode content cannot contain both 'data' and 'data_base64' properties."
        )
    event: dict[str, Any] = {"specversion": "1.0"}
    for name, value in data.items():
        if name in ("specversion", "data", "data_base64"):
            continue
        if not _ATTR_NAME.match(name):
            bad = next((c for c in name if not ("a" <= c <= "z" or "0" <= c <= "9")), "")
            raise CloudEventError(f"Invalid character '{bad}' in attribute name '{name}' (Parameter 'name')")
        if value is None:
            continue
        if name in _STRING_ATTRS and not isinstance(value, str):
            kind = _json_kind(value)
            attr_type = {"source": "URI-reference", "dataschema": "URI", "time": "Timestamp"}.get(
                name, "String"
            )
            raise CloudEventError(
                f"Invalid token type '{kind}' for CloudEvent attribute '{name}' with type '{attr_type}'"
            )
        if isinstance(value, dict | list):
            raise CloudEventError(f"Invalid token type '{_json_kind(value)}' for CloudEvent attribute")
        if isinstance(value, bool):
            value = "true" if value else "false"
        elif isinstance(value, int | float):
            value = str(int(value))
        if name in ("id", "type", "subject") and value == "":
            raise CloudEventError(
                f"Value for attribute '{name}' is invalid: Value must be non-empty (Parameter 'value')"
            )
        if name == "source" and value == "":
            raise CloudEventError(
                "Value for attribute 'source' is invalid: URI reference must be non-empty (Parameter 'value')"
            )
        if name == "time":
            try:
                value = normalize_time(value)
            except ValueError as exc:
                raise CloudEventError(
                    f"Text for attribute 'time' is invalid: {exc} (Parameter 'text')"
                ) from exc
        event[name] = value
    missing = [name for name in _REQUIRED if name not in event]
    if missing:
        raise CloudEventError(
            f"CloudEvent is missing required attributes: {', '.join(missing)} (Parameter 'data')"
        )
    if "data" in data and data["data"] is not None:
        event["data"] = data["data"]
    elif isinstance(data.get("data_base64"), str):
        event["data_base64"] = data["data_base64"]
    elif "data_base64" in data and data["data_base64"] is not None:
        raise CloudEventError("Structured mode property 'data_base64' must be a string, when present.")
    return order_event(event)


def order_event(event: dict[str, Any]) -> dict[str, Any]:
    """Core attributes first in spec order, then extensions, then data (stable wire form)."""
    ordered = {k: event[k] for k in _ORDER if k in event}
    for key, value in event.items():
        if key not in ordered and key not in ("data", "data_base64"):
            ordered[key] = value
    for key in ("data", "data_base64"):
        if key in event:
            ordered[key] = event[key]
    return ordered


def serialize(event: dict[str, Any]) -> str:
    return json.dumps(event, ensure_ascii=False, separators=(",", ":"))


def serialize_list(bodies: list[str]) -> str:
    """The output formatter's hand-rolled list: ``[`` + events joined by ``", "`` + ``]``."""
    return "[" + ", ".join(bodies) + "]"


def _json_kind(value: Any) -> str:
    if isinstance(value, bool):
        return "True" if value else "False"
    if isinstance(value, dict):
        return "Object"
    if isinstance(value, list):
        return "Array"
    if isinstance(value, int | float):
        return "Number"
    return "String"


def sortable_time(text: str | None) -> str | None:
    """Fixed-width UTC form (``…SS.ffffffZ``) so string order is time order in the store."""
    if not text:
        return None
    match = _RFC3339.match(text)
    if not match:
        return text
    date, clock, fraction, _ = match.groups()
    return f"{date}T{clock}.{((fraction or '.')[1:] + '000000')[:6]}Z"


def event_row(event: dict[str, Any], registered: float) -> tuple[Any, ...]:
    """The store's row for a normalized event (see :meth:`Store.insert_events`)."""
    return (
        str(event["id"]),
        str(event["source"]),
        str(event.get("resource") or ""),
        event.get("subject"),
        event.get("alternativesubject"),
        str(event["type"]),
        sortable_time(event.get("time")),
        registered,
        serialize(event),
    )

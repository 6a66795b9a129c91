"""CloudEvent parsing, validation and serialization as Altinn Events does it (docs/contract.rst).

Altinn reads a published event with the CloudNative.CloudEvents SDK 2.9.0 (``JsonEventFormatter`` of
``CloudNative.CloudEvents.SystemTextJson``, wired in ``src/Events/Program.cs`` and
``Formatters/CloudEventJsonInputFormatter.cs``), so the rules here are the SDK's:

* attribute names ``[a-z0-9]+``; core string attributes must be JSON strings; extension values may be
  strings, ``true``/``false`` (stored as the strings ``"true"``/``"false"``) or 32-bit integers
  (stored as their decimal string); objects, arrays and other numbers are refused;
* string attributes refuse control characters, non-characters and unpaired surrogates
  (``CloudEventAttributeType.StringType``); ``id``, ``type``, ``subject`` must be non-empty;
* ``time`` is parsed by ``Timestamps.TryParse``: ``yyyy-MM-ddTHH:mm:ss[.fffffff…]`` with an upper-case
  ``T``, then ``Z`` or ``±HH:MM`` with at most 14:00; it is written back by ``Timestamps.Format``
  (no fraction, 3, 6 or 7 digits as the value needs); ``GET`` answers convert it to UTC
  (``CloudEventRepository.DeserializeAndConvertTime``), pushed deliveries keep the offset;
* ``data`` without ``datacontenttype`` gets ``datacontenttype: application/json``; ``data`` with a
  non-JSON content type must be a string; ``data_base64`` must be base64 and is written back in
  canonical base64.

Messages of parse failures are the SDK's; Altinn puts them into ``errors.RequestBody`` of a
ValidationProblemDetails.
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

from .jsonvalue import RawNumber, dumps

_URN = re.compile(r"^urn:[a-z0-9-]{1,30}(:[a-z0-9()+,.\-;$_!/]{1,100}){1,10}\n?\Z")
_ATTR_NAME = re.compile(r"^[a-z0-9]+\Z")
_LOCAL = re.compile(
    r"^([0-9]{4})-([0-9]{2})-([0-9]{2})T([0-9]{2}):([0-9]{2}):([0-9]{2})(?:\.([0-9]{1,7}))?\Z"
)
_MAX_OFFSET_MINUTES = 14 * 60
#: Core attributes and their CloudEvents types (``CloudEventsSpecVersion.V1_0``).
_CORE_TYPES = {
    "id": "String",
    "source": "URI-Reference",
    "type": "String",
    "datacontenttype": "String",
    "dataschema": "URI",
    "subject": "String",
    "time": "Timestamp",
}
_REQUIRED = ("id", "source", "type")
_NON_EMPTY = ("id", "type", "subject")
#: ``System.Net.Mime.ContentType``: ``type/subtype`` tokens and ``; name=value`` parameters.
_TOKEN = r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+"
_CONTENT_TYPE = re.compile(
    rf"^\s*{_TOKEN}/{_TOKEN}\s*(;\s*{_TOKEN}\s*=\s*({_TOKEN}|\"([^\"\\]|\\.)*\")\s*)*;?\s*\Z"
)
#: ``System.Uri`` refuses strings longer than this (``Invalid URI: The Uri string is too long.``).
_MAX_URI = 65519
_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.\-]*:")
_HOST = re.compile(r"^[A-Za-z0-9\-._~%!$&'()*+,;=]+(:[0-9]*)?\Z|^\[[0-9A-Fa-f:.]+\](:[0-9]*)?\Z")
#: What ``StringType.ValidateImpl`` refuses: C0/C1 controls, U+FDD0-U+FDEF, U+xFFFE/U+xFFFF in every
#: plane, and unpaired surrogates (a Python str holds a pair as one code point).
_BAD_STRING_CHAR = re.compile(
    "[\x00-\x1f\x7f-\x9f\ufdd0-\ufdef\ufffe\uffff\ud800-\udfff"
    + "".join(chr(plane * 0x10000 + 0xFFFE) + chr(plane * 0x10000 + 0xFFFF) for plane in range(1, 17))
    + "]"
)
_BASE64 = re.compile(r"^[A-Za-z0-9+/\s]*={0,2}\s*\Z")
JSON_MEDIA_TYPE = "application/json"


class CloudEventError(ValueError):
    """The body is not a CloudEvent; the message is the SDK's wording."""


@dataclass(frozen=True)
class Timestamp:
    """A parsed CloudEvents ``time``: local ticks (100 ns since 0001-01-01) and the offset in minutes."""

    local: datetime
    ticks7: int  # the 7th fractional digit (100 ns), which datetime cannot hold
    offset_minutes: int

    def utc(self) -> Timestamp:
        return Timestamp(self.local - timedelta(minutes=self.offset_minutes), self.ticks7, 0)

    def format(self) -> str:
        """``Timestamps.Format``: fraction as needed (none, 3, 6 or 7 digits), ``Z`` for a zero offset."""
        text = _seconds_text(self.local)
        micro = self.local.microsecond
        if self.ticks7:
            text += f".{micro:06d}{self.ticks7}"
        elif micro % 1000:
            text += f".{micro:06d}"
        elif micro:
            text += f".{micro // 1000:03d}"
        if self.offset_minutes == 0:
            return text + "Z"
        sign = "+" if self.offset_minutes > 0 else "-"
        hours, minutes = divmod(abs(self.offset_minutes), 60)
        return f"{text}{sign}{hours:02d}:{minutes:02d}"

    def sortable(self) -> str:
        """Fixed-width UTC text, so string order is time order in the store."""
        # Microseconds, as stores written by earlier versions hold them (the 7th digit never orders
        # ``from``/``to`` filters in practice).
        local = self.utc().local
        return f"{_seconds_text(local)}.{local.microsecond:06d}Z"


def _seconds_text(moment: datetime) -> str:
    """``yyyy-MM-ddTHH:mm:ss`` with a four-digit year (``strftime("%Y")`` drops the zeros of year 5)."""
    return (
        f"{moment.year:04d}-{moment.month:02d}-{moment.day:02d}"
        f"T{moment.hour:02d}:{moment.minute:02d}:{moment.second:02d}"
    )


def parse_timestamp(value: str) -> Timestamp:
    """``Timestamps.TryParse`` of the SDK (2.9.0), then ``new DateTimeOffset(local, offset)``.

    :raises ValueError: ``Invalid timestamp`` (or the DateTimeOffset range message).
    """
    invalid = ValueError("Invalid timestamp")
    if len(value) < 20:
        raise invalid
    offset_index = next((i for i in range(19, len(value)) if value[i] in "Z+-"), -1)
    if offset_index == -1:
        raise invalid
    if offset_index <= 27:
        local_text = value[:offset_index]
    else:
        if not all("0" <= c <= "9" for c in value[27:offset_index]):
            raise invalid
        local_text = value[:27]
    match = _LOCAL.match(local_text)
    if not match:
        raise invalid
    year, month, day, hour, minute, second, fraction = match.groups()
    try:
        local = datetime(int(year), int(month), int(day), int(hour), int(minute), int(second))
    except ValueError:
        raise invalid from None
    digits = (fraction or "").ljust(7, "0")
    local = local.replace(microsecond=int(digits[:6]))
    offset = _parse_offset(value, offset_index)
    if offset is None:
        raise invalid
    stamp = Timestamp(local, int(digits[6]), offset)
    try:
        stamp.utc()
        if stamp.utc().local.year < 1:
            raise OverflowError
    except (OverflowError, ValueError):
        raise ValueError(
            "The UTC time represented when the offset is applied must be between year 0 and 10,000."
            " (Parameter 'offset')"
        ) from None
    return stamp


def _parse_offset(value: str, index: int) -> int | None:
    if value[index] == "Z":
        return 0 if len(value) == index + 1 else None
    text = value[index + 1 :]
    if len(text) != 5 or text[2] != ":" or not (text[:2] + text[3:]).isdigit() or not text.isascii():
        return None
    hours, minutes = int(text[:2]), int(text[3:])
    total = hours * 60 + minutes
    if minutes >= 60 or total > _MAX_OFFSET_MINUTES:
        return None
    return -total if value[index] == "-" else total


def is_valid_urn(value: str) -> bool:
    """``UriExtensions.IsValidUrn``: lowercase URN pattern (case-sensitive; .NET ``$`` allows a final \\n,
    which ``Uri.IsWellFormedUriString`` then refuses)."""
    return bool(_URN.match(value)) and not value.endswith("\n")


def utc_now_text() -> str:
    """The current time as Altinn renders it."""
    now = datetime.now(timezone.utc).replace(tzinfo=None)
    return Timestamp(now, 0, 0).format()


def sortable_time(text: str | None) -> str | None:
    """Fixed-width UTC form of a stored ``time`` (``…SS.ffffffZ``), or ``None``."""
    if not text:
        return None
    try:
        return parse_timestamp(text).sortable()
    except ValueError:
        return None


def check_string(name: str, value: str) -> None:
    """``CloudEventAttributeType.StringType.ValidateImpl`` plus the non-empty rule of id/type/subject."""
    problem = _string_problem(value)
    if problem is None and name in _NON_EMPTY and value == "":
        problem = "Value must be non-empty"
    if problem is not None:
        raise CloudEventError(f"Value for attribute '{name}' is invalid: {problem} (Parameter 'value')")


def _string_problem(value: str) -> str | None:
    found = _BAD_STRING_CHAR.search(value)
    if found is None:
        return None
    code = ord(found.group())
    if code <= 0x1F or 0x7F <= code <= 0x9F:
        return f"Control character U+{code:04x} is not permitted in string attributes"
    if 0xD800 <= code <= 0xDBFF:
        return f"High surrogate character U+{code:04x} must be followed by a low surrogate character"
    if 0xDC00 <= code <= 0xDFFF:
        return f"Low surrogate character U+{code:04x} must be preceded by a high surrogate character"
    shown = f"{code:04x}" if code <= 0xFFFF else f"{code:x}"
    return f"Noncharacter U+{shown} is not permitted in string attributes"


def _check_uri_reference(name: str, value: str, absolute: bool) -> None:
    """``new Uri(value, UriKind.RelativeOrAbsolute)`` (source) / ``UriKind.Absolute`` (dataschema)."""
    error = None
    if len(value) > _MAX_URI:
        error = "Invalid URI: The Uri string is too long."
    elif absolute and value.startswith("/"):
        error = "Invalid URI: expected an absolute URI"
    elif absolute and not _SCHEME.match(value):
        error = "Invalid URI: The format of the URI could not be determined."
    elif _SCHEME.match(value) and value[value.index(":") + 1 :].startswith("//"):
        authority = value[value.index(":") + 3 :]
        host = re.split(r"[/?#]", authority, maxsplit=1)[0].rpartition("@")[2]
        if not host or not _HOST.match(host):
            error = "Invalid URI: The hostname could not be parsed."
    if error is not None:
        raise CloudEventError(f"Text for attribute '{name}' is invalid: {error} (Parameter 'text')")


def is_json_media_type(content_type: str) -> bool:
    media = content_type.split(";", 1)[0].strip().lower()
    return media.endswith(("/json", "+json"))


@dataclass
class ParsedEvent:
    """A published event as Altinn holds it: the attributes in arrival order, then data."""

    attributes: dict[str, str]
    data: Any = None
    has_data: bool = False
    data_base64: str | None = None
    time: Timestamp | None = None

    def holds_nul(self) -> bool:
        """Whether any attribute or string in ``data`` holds U+0000 (which jsonb cannot store)."""
        if any("\x00" in value for value in self.attributes.values()):
            return True
        stack: list[Any] = [self.data]
        while stack:
            item = stack.pop()
            if isinstance(item, str) and "\x00" in item:
                return True
            if isinstance(item, dict):
                stack.extend(item.keys())
                stack.extend(item.values())
            elif isinstance(item, list):
                stack.extend(item)
        return False

    def body(self, utc: bool) -> str:
        """The event serialized by ``CloudEventExtensions.Serialize``; ``utc`` for GET answers."""
        event: dict[str, Any] = {"specversion": "1.0"}
        for name, value in self.attributes.items():
            if name == "time" and self.time is not None:
                event[name] = (self.time.utc() if utc else self.time).format()
            else:
                event[name] = value
        if self.data_base64 is not None:
            event["data_base64"] = self.data_base64
        elif self.has_data:
            event["data"] = self.data
        return dumps(event)


def parse_cloud_event(data: Any) -> ParsedEvent:
    """Validate a structured-mode CloudEvent (JSON decoded by :mod:`.jsonvalue`) as the SDK does.

    :raises CloudEventError: with the SDK's message for anything the SDK refuses.
    """
    if not isinstance(data, dict):
        raise CloudEventError(f"Cannot decode JSON element of kind '{_json_kind(data)}' as CloudEvent")
    spec = data.get("specversion")
    if not isinstance(spec, str):
        raise CloudEventError("Structured mode content does not represent a CloudEvent")
    if spec != "1.0":
        raise CloudEventError(f"Unsupported CloudEvents spec version '{spec}'")
    event = ParsedEvent(attributes={})
    for name, value in data.items():
        if name in ("specversion", "data", "data_base64"):
            continue
        core = _CORE_TYPES.get(name)
        if core is not None and value is not None and not isinstance(value, str):
            raise CloudEventError(
                f"Invalid token type '{_json_kind(value)}' for CloudEvent attribute '{name}' with type '{core}'"
            )
        text = _attribute_text(value)
        if text is None:
            continue
        if not _ATTR_NAME.match(name):
            if name == "":
                raise CloudEventError("Attribute names must be non-empty (Parameter 'name')")
            bad = next(c for c in name if not ("a" <= c <= "z" or "0" <= c <= "9"))
            raise CloudEventError(f"Invalid character '{bad}' in attribute name '{name}' (Parameter 'name')")
        _set_attribute(event, name, text)
    missing = [name for name in _REQUIRED if name not in event.attributes]
    if missing:
        raise CloudEventError(
            f"CloudEvent is missing required attributes: {', '.join(missing)} (Parameter 'data')"
        )
    _set_data(event, data.get("data"), data.get("data_base64"))
    return event


def _attribute_text(value: Any) -> str | None:
    """``PopulateAttributesFromStructuredEvent``: the string form of one attribute's JSON value."""
    if value is None:
        return None
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, str):
        return value
    if isinstance(value, RawNumber | int | float):
        number = value.as_int32() if isinstance(value, RawNumber) else _int32(value)
        if number is None:
            # JsonElement.GetInt32 on a fraction, an exponent or a value outside Int32.
            raise CloudEventError("One of the identified items was in an invalid format.")
        return str(number)
    raise CloudEventError(f"Invalid token type '{_json_kind(value)}' for CloudEvent attribute")


def _int32(value: int | float) -> int | None:
    """``JsonElement.TryGetInt32`` of a number Python parsed: integers within Int32 only (not ``1.0``)."""
    if isinstance(value, int) and -(2**31) <= value < 2**31:
        return value
    return None


def _set_attribute(event: ParsedEvent, name: str, text: str) -> None:
    """``CloudEvent.SetAttributeFromString``: parse by the attribute's type, then validate."""
    if name == "time":
        try:
            event.time = parse_timestamp(text)
        except ValueError as exc:
            raise CloudEventError(f"Text for attribute 'time' is invalid: {exc} (Parameter 'text')") from exc
    elif name == "source":
        _check_uri_reference(name, text, absolute=False)
        if text == "":
            raise CloudEventError(
                "Value for attribute 'source' is invalid: URI reference must be non-empty (Parameter 'value')"
            )
    elif name == "dataschema":
        _check_uri_reference(name, text, absolute=True)
    else:
        check_string(name, text)
        if name == "datacontenttype" and not _CONTENT_TYPE.match(text):
            raise CloudEventError(
                "Value for attribute 'datacontenttype' is invalid: The 'datacontenttype' attribute value must"
                " be a content-type expression compliant with RFC2046 (Parameter 'value')"
            )
    # A repeated name keeps its first position (a .NET Dictionary update), with the last value.
    event.attributes[name] = text


def _set_data(event: ParsedEvent, data: Any, data_base64: Any) -> None:
    """``PopulateDataFromStructuredEvent`` plus what ``Serialize`` (in the request) can write back."""
    if data is None and data_base64 is None:
        return
    if data is not None and data_base64 is not None:
        raise CloudEventError(
            "Structured mode content cannot contain both 'data' and 'data_base64' properties."
        )
    if data_base64 is not None:
        if not isinstance(data_base64, str):
            raise CloudEventError("Structured mode property 'data_base64' must be a string, when present.")
        try:
            if not _BASE64.match(data_base64):
                raise binascii.Error
            decoded = base64.b64decode("".join(data_base64.split()), validate=True)
        except (binascii.Error, ValueError):
            raise CloudEventError("The JSON value is not in a supported Base64 format.") from None
        event.data_base64 = base64.b64encode(decoded).decode("ascii")
        return
    content_type = event.attributes.get("datacontenttype")
    if content_type is None:
        event.attributes["datacontenttype"] = JSON_MEDIA_TYPE
        content_type = JSON_MEDIA_TYPE
    if not is_json_media_type(content_type):
        if not isinstance(data, str):
            raise CloudEventError(
                "CloudEvents with a non-JSON datacontenttype can only have string data values."
            )
        if not content_type.split(";", 1)[0].strip().lower().startswith("text/"):
            # Deviation (docs/contract.rst): Altinn's Serialize throws here and the request gets 500.
            raise CloudEventError(
                "JsonEventFormatter cannot serialize data of type System.String with content type"
                f" '{content_type}'"
            )
    event.data = data
    event.has_data = True


def _json_kind(value: Any) -> str:
    if value is True:
        return "True"
    if value is False:
        return "False"
    if value is None:
        return "Null"
    if isinstance(value, dict):
        return "Object"
    if isinstance(value, list):
        return "Array"
    if isinstance(value, RawNumber | int | float):
        return "Number"
    return "String"


def serialize_list(bodies: list[str]) -> str:
    """The output formatter's hand-rolled list: ``[`` + events joined by ``", "`` + ``]``."""
    return "[" + ", ".join(bodies) + "]"


def event_row(event: ParsedEvent, registered: float) -> tuple[Any, ...]:
    """The store's row for a parsed event (see :meth:`Store.insert_events`).

    ``body`` is the GET form (UTC time); ``push_body`` the pushed form when it differs (an offset kept).
    """
    attrs = event.attributes
    push_body = event.body(utc=False)
    get_body = push_body
    if event.time is not None and event.time.offset_minutes != 0:
        # Only the time differs; attributes precede data and names are [a-z0-9]+, so the first '"time":"'
        # is the attribute.
        local, utc = event.time.format(), event.time.utc().format()
        get_body = push_body.replace(f'"time":"{local}"', f'"time":"{utc}"', 1)
    return (
        attrs["id"],
        attrs["source"],
        attrs.get("resource") or "",
        attrs.get("subject"),
        attrs.get("alternativesubject"),
        attrs["type"],
        event.time.sortable() if event.time else None,
        registered,
        get_body,
        None if push_body == get_body else push_body,
    )


def dict_event_row(event: dict[str, Any], registered: float) -> tuple[Any, ...]:
    """The store's row for an event the emulator builds itself (app events): already valid."""
    body = dumps(event)
    return (
        str(event["id"]),
        str(event["source"]),
        str(event.get("resource") or ""),
        event.get("subject"),
        event.get("alternativesubject"),
        str(event["type"]),
        sortable_time(event.get("time")),
        registered,
        body,
        None,
    )

"""Pre-flight checks of the events we are about to publish, with the service's own rules.

Altinn rejects a bad CloudEvent with a 400, but only after a token grant, a token exchange and a round trip,
and for a batch only after some events already went out. Everything here runs before the first request, so
a batch is either checked whole or not sent at all, and the error names the field and says what is allowed.
The rules are the real service's (CONTRACT.md A.3, A.4, A.6): the CloudEvents SDK's attribute rules and
Altinn's URN regex for ``resource`` (POST /events), and the app event model (POST /app). The subscription
checks (A.7) are in :mod:`.subscription_validation` and re-exported here. Nothing here imports Airflow or
does I/O; every error is an :class:`AltinnConfigError` whose ``field`` names the argument at fault, e.g.
``event[2].resource``.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Mapping, Sequence
from datetime import datetime, timezone
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
_RFC3339 = re.compile(r"^(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$")
_INT32 = (-(2**31), 2**31 - 1)

#: Attributes POST /events gives a meaning to; anything else must be a valid extension attribute.
_STRING_ATTRIBUTES = ("id", "source", "type", "subject", "alternativesubject", "resourceinstance")
#: The body of POST /app (``AppCloudEventRequestModel``); the service assigns id, time and resource itself.
APP_EVENT_ATTRIBUTES = frozenset(
    {"specversion", "source", "type", "subject", "alternativesubject", "data", "dataschema", "contenttype"}
)


def coerce_event_list(value: Any, *, field: str = "event") -> list[Mapping[str, Any]]:
    """Turn the operator's ``event`` argument into a list of mappings.

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
    if isinstance(value, Mapping):
        return [value]
    if isinstance(value, Sequence):
        events = list(value)
        if not events:
            raise AltinnConfigError(f"{field} is an empty list: there is nothing to publish", field=field)
        for index, item in enumerate(events):
            if not isinstance(item, Mapping):
                raise AltinnConfigError(
                    f"{field}[{index}] must be a dict (a CloudEvent), got {type(item).__name__}",
                    field=f"{field}[{index}]",
                )
        return events
    raise AltinnConfigError(
        f"{field} must be a dict or a list of dicts, got {type(value).__name__}", field=field
    )


def prepare_cloud_event(
    event: Mapping[str, Any],
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
    prepared: dict[str, Any] = {key: value for key, value in event.items() if value is not None}
    prepared.setdefault("specversion", "1.0")
    prepared.setdefault("id", default_id)
    time_value = prepared.get("time")
    if time_value is None:
        prepared["time"] = format_time(now or datetime.now(timezone.utc))
    elif isinstance(time_value, datetime):
        if time_value.tzinfo is None or time_value.utcoffset() is None:
            raise AltinnConfigError(
                f"{field}.time is a naive datetime; give it a time zone (e.g. UTC) so the event time is exact",
                field=f"{field}.time",
            )
        prepared["time"] = format_time(time_value)
    validate_cloud_event(prepared, field=field)
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
        _require_string(event, name, field)
    _check_uri(event["source"], f"{field}.source", what="source")
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
    for name in _STRING_ATTRIBUTES[3:]:
        if name in event:
            _require_string(event, name, field)
    if "time" in event:
        _check_time(event["time"], f"{field}.time")
    if "dataschema" in event:
        _require_string(event, "dataschema", field)
        _check_uri(event["dataschema"], f"{field}.dataschema", what="dataschema")
    content_type: str | None = None
    if "datacontenttype" in event:
        _require_string(event, "datacontenttype", field)
        content_type = str(event["datacontenttype"])
        if "/" not in content_type:
            raise AltinnConfigError(
                f"{field}.datacontenttype {content_type!r} is not a media type such as 'application/json'",
                field=f"{field}.datacontenttype",
            )
    _check_data(event, field, content_type)
    for name, value in event.items():
        if name not in _KNOWN_ATTRIBUTES:
            _check_extension_value(name, value, field)


_KNOWN_ATTRIBUTES = frozenset(
    _STRING_ATTRIBUTES
    + ("specversion", "time", "resource", "dataschema", "datacontenttype", "data", "data_base64")
)


def prepare_app_event(event: Mapping[str, Any], *, field: str = "event") -> dict[str, Any]:
    """Check an app event for POST /app and fill in ``specversion``.

    The service requires ``source``, ``type`` and ``subject``, builds id, time and resource itself and
    ignores anything else, so fields outside :data:`APP_EVENT_ATTRIBUTES` are refused here rather than
    silently dropped. ``source`` must be the app instance URL,
    ``https://{org}.apps.../{org}/{app}/instances/{partyId}/{instanceGuid}``; the app in the platform access
    token must own it (the service answers 401 otherwise).

    :raises AltinnConfigError: the event breaks a rule; ``field`` names the attribute.
    """
    if not isinstance(event, Mapping):
        raise AltinnConfigError(f"{field} must be a dict, got {type(event).__name__}", field=field)
    prepared: dict[str, Any] = {key: value for key, value in event.items() if value is not None}
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
    match = _RFC3339.fullmatch(value) if isinstance(value, str) else None
    if match is not None:
        year, month, day, hour, minute, second = (int(match.group(i)) for i in range(1, 7))
        try:  # second 60 is a leap second, which RFC 3339 allows
            datetime(year, month, day, hour, minute, min(second, 59))
        except ValueError:
            pass
        else:
            if second <= 60:
                return
    raise AltinnConfigError(
        f"{field} {value!r} is not an RFC 3339 timestamp with a time zone, e.g. '2026-05-12T08:30:00Z'",
        field=field,
    )


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
    if not _is_json_media_type(content_type) and not isinstance(data, str):
        raise AltinnConfigError(
            f"{field}.data must be a string because datacontenttype {content_type!r} is not JSON "
            "(or use data_base64 for binary data)",
            field=f"{field}.data",
        )
    _check_json(data, f"{field}.data")


def _check_json(data: Any, field: str) -> None:
    try:
        json.dumps(data, allow_nan=False)
    except (TypeError, ValueError) as error:
        raise AltinnConfigError(
            f"{field} is not JSON-serializable ({error}); convert it to plain dicts, lists, strings, "
            "numbers, booleans and None first (e.g. datetimes to ISO strings)",
            field=field,
        ) from None


def _check_extension_value(name: str, value: Any, field: str) -> None:
    if isinstance(value, bool) or (isinstance(value, str) and value):
        return
    if isinstance(value, int) and _INT32[0] <= value <= _INT32[1]:
        return
    raise AltinnConfigError(
        f"{field}.{name} is an extension attribute, so its value must be a non-empty string, a boolean or a "
        f"32-bit integer, got {value!r}; put structured content in 'data'",
        field=f"{field}.{name}",
    )

"""App events: ``POST /app``, ``GET /app/{org}/{app}``, ``GET /app/party`` (``AppController``).

The facts: docs/contract.rst, "contract-app-events".

The emulator has no party register: ``person`` / ``unit`` lookups answer 404 as Register's 404 does.
"""

from __future__ import annotations

import re
import time
import uuid
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from . import auth
from .bodies import JsonBodyError, media_type, parse_json, read_body
from .cloudevents import CloudEventError, check_string, dict_event_row, serialize_list, utc_now_text
from .querystring import QueryParams, bind_int, sendable_header
from .responses import empty, json_string, problem, validation_problem
from .state import EmulatorState, get_state
from .store import EventQuery

_APP_RESOURCE = "urn:altinn:resource:app_{org}_{app}"
_ABSOLUTE = re.compile(r"^[A-Za-z][A-Za-z0-9+.\-]*://[^/?#\s]+")
_DATE_TIME = re.compile(
    r"^(?P<date>\d{4}-\d{2}-\d{2})"
    r"(?:[Tt ](?P<clock>\d{2}:\d{2}(?::\d{2})?)(?:\.(?P<fraction>\d{1,7}))?)?"
    r"(?P<zone>[Zz]|[+-]\d{2}(?::?\d{2})?)?\Z"
)


async def publish_app_event(request: Request) -> Response:
    state = get_state(request)
    principal = auth.authenticate(request, state.keys)
    if principal is None:
        return empty(401)
    app_id = auth.platform_access(request, state.keys)
    if app_id is None:
        return empty(403)
    if media_type(request) != "application/json":
        return problem(415, "The request Content-Type must be application/json.")
    raw = await read_body(request, state.config.max_body_bytes)
    try:
        data = parse_json(raw) if raw.strip() else None
    except JsonBodyError as exc:
        return validation_problem(
            {"$": [str(exc)], "cloudEventRequest": ["The cloudEventRequest field is required."]}
        )
    if not isinstance(data, dict):
        return validation_problem(
            {
                "": ["A non-empty request body is required."],
                "cloudEventRequest": ["The cloudEventRequest field is required."],
            }
        )
    for key in ("source", "specversion", "type", "subject", "alternativesubject", "dataschema"):
        if data.get(key) is not None and not isinstance(data[key], str):
            return validation_problem(
                {
                    f"$.{key}": [f"The JSON value could not be converted to System.String. Path: $.{key}."],
                    "cloudEventRequest": ["The cloudEventRequest field is required."],
                }
            )
    source, subject, kind, spec = (
        data.get("source"),
        data.get("subject"),
        data.get("type"),
        data.get("specversion"),
    )
    if not source or not subject or not kind or not spec:
        return problem(400, "Missing parameter values: source, subject and type cannot be null")
    if not _ABSOLUTE.match(source):
        # Deviation (docs/contract.rst): Altinn reads Source.AbsolutePath of a relative Uri, which throws,
        # and answers 500; the emulator answers 400 naming the field.
        return problem(400, "source must be an absolute URI: https://{org}.apps.../{org}/{app}/instances/...")
    for name in ("type", "subject", "alternativesubject"):
        value = data.get(name)
        if value:
            try:
                check_string(name, value)
            except CloudEventError as exc:
                # Deviation (docs/contract.rst): the CloudEvent setter throws inside CreateEvent and Altinn
                # answers 500 "Unable to register cloud event."; the emulator answers 400 with the reason.
                return problem(400, f"Unable to register cloud event: {exc}")
    org, app = app_id
    item = f"{org}/{app}"
    path = urlsplit(source).path
    if not path.startswith("/" + item):
        return json_string(401, f"{item} is not authorized to create events for {source}")
    segments = path.split("/")
    s_org, s_app, party, instance = (
        (segments[1], segments[2], segments[4], segments[5]) if len(segments) > 5 else ("", "", "", "")
    )
    event: dict[str, Any] = {
        "specversion": "1.0",
        "id": str(uuid.uuid4()),
        "source": source,
        "type": kind,
        "subject": subject,
        "time": utc_now_text(),
        "resource": _APP_RESOURCE.format(org=s_org, app=s_app),
        "resourceinstance": f"{party}/{instance}",
    }
    if data.get("alternativesubject"):
        event["alternativesubject"] = data["alternativesubject"]
    state.store.insert_events([dict_event_row(event, time.time())])
    state.delivery.notify()
    return json_string(201, event["id"], headers={"Location": sendable_header(subject)})


def _bind_time(params: QueryParams, name: str, errors: dict[str, list[str]]) -> tuple[str | None, bool]:
    """Bind a ``DateTime?`` as ASP.NET's ``DateTimeModelBinder`` does (``DateTime.Parse``, invariant
    culture, ``AdjustToUniversal``): a date, optionally a time, optionally ``Z`` or an offset.

    Returns (sortable UTC text or None, has_timezone); ``2020-01-01Z`` is a UTC midnight, as Altinn's
    own tests send it (``AppControllerTests``, ``from=2020-01-01Z``).
    """
    raw = params.first(name)
    if raw is None or raw == "":
        return None, True
    # A '+' of an offset arrives as a space when the client did not percent-encode it.
    text = re.sub(r"(?<=\d) (?=\d{2}(:?\d{2})?$)", "+", raw.strip())
    match = _DATE_TIME.match(text)
    parsed = None
    if match:
        date, clock, fraction, zone = match.group("date", "clock", "fraction", "zone")
        try:
            parsed = datetime.fromisoformat(f"{date}T{clock or '00:00:00'}")
            if clock and len(clock) == 5:
                parsed = parsed.replace(second=0)
            if fraction:
                parsed = parsed.replace(microsecond=int(fraction[:6].ljust(6, "0")))
            if zone and zone not in ("Z", "z"):
                sign = -1 if zone[0] == "-" else 1
                digits = zone[1:].replace(":", "").ljust(4, "0")
                offset = timedelta(hours=int(digits[:2]), minutes=int(digits[2:]))
                if offset > timedelta(hours=14) or int(digits[2:]) >= 60:
                    raise ValueError(zone)
                parsed -= sign * offset
        except (ValueError, OverflowError):
            parsed = None
    if parsed is None:
        errors.setdefault(name, []).append(f"The value '{raw}' is not valid for {name}.")
        return None, True
    if not match or not match.group("zone"):
        return None, False
    return f"{parsed.year:04d}{parsed.strftime('-%m-%dT%H:%M:%S.%f')}Z", True


def _validate(params: QueryParams, request: Request) -> tuple[dict[str, Any] | None, Response | None]:
    errors: dict[str, list[str]] = {}
    after = params.first("after") or ""
    time_from, from_tz = _bind_time(params, "from", errors)
    time_to, to_tz = _bind_time(params, "to", errors)
    party = bind_int(params, "party", 0, errors)
    size = bind_int(params, "size", 50, errors)
    if errors:
        return None, validation_problem(errors)
    unit = params.first("unit") or ""
    person = request.headers.get("person") or ""
    has_from = params.first("from") not in (None, "")
    message = None
    if not after and not has_from:
        message = "The 'From' or 'After' parameter must be defined."
    elif not from_tz:
        message = "The 'From' parameter must specify timezone. E.g. 2022-07-07T11:00:53.3917Z for UTC"
    elif not to_tz:
        message = "The 'To' parameter must specify timezone. E.g. 2022-07-07T11:00:53.3917Z for UTC"
    elif size < 1:
        message = "The 'Size' parameter must be a number larger that 0."
    elif person and party > 0:
        message = "Only one of 'Party' or 'Person' can be defined."
    elif unit and party > 0:
        message = "Only one of 'Party' or 'Unit' can be defined."
    elif unit and (len(unit) != 9 or not unit.isdigit()):
        message = "Value of 'Unit' needs to be exactly 9 digits."
    if message:
        return None, problem(400, message)
    return {
        "after": after,
        "from": time_from,
        "to": time_to,
        "party": party,
        "size": size,
        "unit": unit,
        "person": person,
    }, None


def _query_app_events(
    state: EmulatorState,
    params: QueryParams,
    request: Request,
    args: dict[str, Any],
    resource: str | None,
    principal: auth.Principal,
) -> Response:
    if (args["person"] or args["unit"]) and args["party"] <= 0:
        return empty(404)  # no party register in the emulator: Register answers 404
    subject = f"/party/{args['party']}" if args["party"] else None
    rows = state.store.query_events(
        EventQuery(
            resource=resource,
            after_seq=state.store.resolve_after(args["after"]) if args["after"] else 0,
            subject=subject,
            type_likes=[t for t in params.all("type") if t],
            source_likes=[s for s in params.all("source") if s],
            time_from=args["from"],
            time_to=args["to"],
            registered_before=time.time() - state.config.visibility_delay,
            limit=args["size"],
        )
    )
    visible = [r for r in rows if state.policy.allows(principal.identities, r.resource, "read")]
    headers = {}
    if visible:
        headers["next"] = params.next_link(state.config.base, request.url.path, visible[-1].id)
    return Response(
        serialize_list([r.body for r in visible]),
        200,
        headers=headers,
        media_type="application/json; charset=utf-8",
    )


async def list_for_org(request: Request) -> Response:
    state = get_state(request)
    principal = auth.authenticate(request, state.keys)
    if principal is None:
        return empty(401)
    if not principal.org:
        return json_string(401, "Only orgs can call this api")
    params = QueryParams(request.url.query)
    args, error = _validate(params, request)
    if error is not None or args is None:
        return error or empty(400)
    resource = _APP_RESOURCE.format(org=request.path_params["org"], app=request.path_params["app"])
    return _query_app_events(state, params, request, args, resource, principal)


async def list_for_party(request: Request) -> Response:
    state = get_state(request)
    principal = auth.authenticate(request, state.keys)
    if principal is None:
        return empty(401)
    params = QueryParams(request.url.query)
    args, error = _validate(params, request)
    if error is not None or args is None:
        return error or empty(400)
    if not args["person"] and not args["unit"] and args["party"] <= 0:
        return problem(
            400, "Subject must be specified using either query params party or unit or header value person."
        )
    return _query_app_events(state, params, request, args, None, principal)


routes = [
    Route("/events/api/v1/app", publish_app_event, methods=["POST"]),
    Route("/events/api/v1/app/party", list_for_party, methods=["GET"]),
    Route("/events/api/v1/app/{org}/{app}", list_for_org, methods=["GET"]),
]

"""``/events/api/v1/subscriptions`` (``SubscriptionController`` and its services).

The facts: docs/contract.rst, "contract-subscriptions".

Service errors are bare JSON strings; 403/404 without a message have empty bodies.
"""

from __future__ import annotations

import re
from datetime import datetime, timezone
from typing import Any
from urllib.parse import urlsplit

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from . import auth
from .bodies import JsonBodyError, media_type, parse_json, read_body
from .cloudevents import is_valid_urn
from .querystring import parse_int32
from .responses import empty, json_response, json_string, problem, validation_problem
from .state import EmulatorState, get_state

APP_PREFIX = "urn:altinn:resource:app_"
_FIELDS = {
    "endpoint": "endPoint",
    "sourcefilter": "sourceFilter",
    "subjectfilter": "subjectFilter",
    "resourcefilter": "resourceFilter",
    "alternativesubjectfilter": "alternativeSubjectFilter",
    "typefilter": "typeFilter",
    "includesubunits": "includeSubunits",
}
_LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1")
_APPS_HOST = re.compile(r"\.apps\.(tt02\.altinn\.no|at\d+\.altinn\.cloud|yt\d+\.altinn\.cloud)$")


def to_json(row: dict[str, Any]) -> dict[str, Any]:
    """A stored subscription in the API's camelCase JSON, nulls omitted."""
    body = {
        "id": row["id"],
        "endPoint": row["endpoint"],
        "sourceFilter": row["source_filter"],
        "resourceFilter": row["resource_filter"],
        "subjectFilter": row["subject_filter"],
        "typeFilter": row["type_filter"],
        "consumer": row["consumer"],
        "createdBy": row["created_by"],
        "created": row["created"],
        "validated": bool(row["validated"]),
        "includeSubunits": bool(row["include_subunits"]),
    }
    return {k: v for k, v in body.items() if v is not None}


def _model_error(path: str, kind: str) -> Response:
    return validation_problem(
        {
            f"$.{path}": [
                f"The JSON value could not be converted to {kind}. Path: $.{path} | LineNumber: 0 |"
                " BytePositionInLine: 0."
            ],
            "subscriptionRequest": ["The subscriptionRequest field is required."],
        }
    )


def _bind_request(data: Any) -> dict[str, Any] | Response:
    """Bind the JSON body like System.Text.Json with case-insensitive property names."""
    if not isinstance(data, dict):
        return validation_problem(
            {
                "$": [
                    "The JSON value could not be converted to Altinn.Platform.Events.Models.SubscriptionRequestModel."
                    " Path: $ | LineNumber: 0 | BytePositionInLine: 1."
                ],
                "subscriptionRequest": ["The subscriptionRequest field is required."],
            }
        )
    bound: dict[str, Any] = {}
    for key, value in data.items():
        name = _FIELDS.get(key.lower())
        if name is None or value is None:
            continue
        if name == "includeSubunits":
            if not isinstance(value, bool):
                return _model_error(key, "System.Boolean")
        elif not isinstance(value, str):
            kind = "System.Uri" if name in ("endPoint", "sourceFilter") else "System.String"
            return _model_error(key, kind)
        bound[name] = value
    return bound


def _valid_https(url: str | None, allow_local_http: bool = False) -> bool:
    if not url:
        return False
    parts = urlsplit(url)
    if parts.scheme == "https" and parts.netloc:
        return True
    return allow_local_http and parts.scheme == "http" and (parts.hostname or "") in _LOCAL_HOSTS


def _is_app(state: EmulatorState, req: dict[str, Any]) -> bool:
    resource = req.get("resourceFilter")
    if resource is not None and resource.lower().startswith(APP_PREFIX):
        return True
    source = req.get("sourceFilter")
    if not source:
        return False
    host = urlsplit(str(source)).hostname or ""
    # One emulator stands in for every environment: production's apps domain and TT02's/AT's count.
    return host.endswith(state.config.apps_domain) or bool(_APPS_HOST.search(host))


def _app_resource_from_source(source: str) -> str:
    segments = urlsplit(source).path.split("/")
    return f"{APP_PREFIX}{segments[1]}_{segments[2]}"


async def create(request: Request) -> Response:
    state = get_state(request)
    principal = auth.authenticate(request, state.keys)
    if principal is None:
        return empty(401)
    kind = media_type(request)
    if kind != "application/json" and not kind.endswith("+json"):
        return problem(415, "The request Content-Type must be application/json.")
    raw = await read_body(request, state.config.max_body_bytes)
    if not raw.strip():
        return validation_problem(
            {
                "": ["A non-empty request body is required."],
                "subscriptionRequest": ["The subscriptionRequest field is required."],
            }
        )
    try:
        data = parse_json(raw)
    except JsonBodyError as exc:
        return validation_problem(
            {"$": [str(exc)], "subscriptionRequest": ["The subscriptionRequest field is required."]}
        )
    bound = _bind_request(data)
    if isinstance(bound, Response):
        return bound
    req = bound
    if not _valid_https(req.get("endPoint"), state.config.allow_http_webhooks):
        return json_string(400, "Missing or invalid endpoint to push events towards")
    if req.get("sourceFilter") is not None and not _valid_https(req["sourceFilter"]):
        return json_string(400, "SourceFilter must be an absolute URL with the https scheme.")
    is_app = _is_app(state, req)
    if not is_app and not principal.has_scope(auth.SCOPE_SUBSCRIBE):
        return empty(403)
    resource = req.get("resourceFilter")
    if resource is not None and not is_valid_urn(resource):
        return json_string(400, "Resource filter must be a valid urn")
    identity = principal.identity
    message = _validate_app(req, principal, identity) if is_app else _validate_generic(req)
    if message:
        return json_string(400, message)
    if is_app and not req.get("resourceFilter"):
        req["resourceFilter"] = _app_resource_from_source(req["sourceFilter"])
    resource = req["resourceFilter"]
    action = "read" if is_app else "subscribe"
    if not state.policy.allows(principal.identities, resource, action):
        return json_string(403, f"Not authorized to create a subscription for resource {resource}.")
    fields = {
        "endpoint": req["endPoint"],
        "source_filter": req.get("sourceFilter"),
        "resource_filter": resource,
        "subject_filter": req.get("subjectFilter"),
        "type_filter": req.get("typeFilter"),
        "consumer": identity,
        "created_by": identity,
        "include_subunits": int(bool(req.get("includeSubunits"))),
    }
    row = state.store.find_subscription(fields)
    if row is None:
        fields["created"] = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        fields["validated"] = 0
        row = state.store.insert_subscription(fields)
    state.delivery.validate(row)
    return json_response(201, to_json(row), headers={"Location": f"/events/api/v1/subscription/{row['id']}"})


def _validate_generic(req: dict[str, Any]) -> str | None:
    if not req.get("resourceFilter"):
        return "Resource filter is required."
    if req.get("sourceFilter") is not None:
        return "Source filter is not supported for subscriptions on this resource."
    if req.get("alternativeSubjectFilter"):
        return "AlternativeSubject filter is not supported for subscriptions on this resource."
    if req.get("includeSubunits") and not req.get("subjectFilter"):
        return "IncludeSubunits requires a subject filter."
    return None


def _validate_app(req: dict[str, Any], principal: auth.Principal, identity: str | None) -> str | None:
    # The emulator has no party register: an alternativeSubjectFilter never resolves to /party/{id}.
    if not req.get("subjectFilter") and not principal.org:
        return "A valid subject to the authenticated identity is required"
    if req.get("alternativeSubjectFilter") and not req.get("subjectFilter"):
        return "A valid subject to the authenticated identity is required"
    if req.get("includeSubunits") and not req.get("subjectFilter"):
        return "IncludeSubunits requires a subject filter."
    if not identity:
        return "Missing event consumer"
    source = req.get("sourceFilter")
    if source is not None and len(urlsplit(source).path.split("/")) != 3:
        return "A valid app id is required in source filter {environment}/{org}/{app}"
    if req.get("resourceFilter") and source and _app_resource_from_source(source) != req["resourceFilter"]:
        return "Provided resource filter and source filter are not compatible"
    return None


def _bind_id(request: Request) -> int | Response:
    raw = request.path_params["id"]
    value = parse_int32(raw)
    if value is None:  # not an Int32: model binding fails (also for ids beyond 2147483647)
        return validation_problem({"id": [f"The value '{raw}' is not valid."]})
    return value


def _owned_subscription(request: Request) -> dict[str, Any] | Response:
    """The subscription in the path if the caller created it, else the real service's refusal (401/400/404/403)."""
    state = get_state(request)
    principal = auth.authenticate(request, state.keys)
    if principal is None:
        return empty(401)
    sub_id = _bind_id(request)
    if isinstance(sub_id, Response):
        return sub_id
    row = state.store.get_subscription(sub_id)
    if row is None:
        return empty(404)
    if row["created_by"] != principal.identity:
        return empty(403)
    return row


async def get_one(request: Request) -> Response:
    row = _owned_subscription(request)
    if isinstance(row, Response):
        return row
    return json_response(200, to_json(row))


async def list_all(request: Request) -> Response:
    state = get_state(request)
    principal = auth.authenticate(request, state.keys)
    if principal is None:
        return empty(401)
    rows = state.store.list_subscriptions(principal.identity or "")
    return json_response(200, {"count": len(rows), "subscriptions": [to_json(r) for r in rows]})


async def delete(request: Request) -> Response:
    row = _owned_subscription(request)
    if isinstance(row, Response):
        return row
    get_state(request).store.delete_subscription(row["id"])
    return empty(200)


async def validate(request: Request) -> Response:
    """``PUT validate/{id}``: policy ``PlatformAccess`` only; answers the subscription as read before."""
    state = get_state(request)
    if auth.platform_access(request, state.keys) is None:
        return empty(403 if auth.authenticate(request, state.keys) else 401)
    sub_id = _bind_id(request)
    if isinstance(sub_id, Response):
        return sub_id
    row = state.store.get_subscription(sub_id)
    if row is None:
        return empty(404)
    state.store.set_validated(sub_id)
    return json_response(200, to_json(row))


routes = [
    Route("/events/api/v1/subscriptions", create, methods=["POST"]),
    Route("/events/api/v1/subscriptions", list_all, methods=["GET"]),
    Route("/events/api/v1/subscriptions/validate/{id}", validate, methods=["PUT"]),
    Route("/events/api/v1/subscriptions/{id}", get_one, methods=["GET"]),
    Route("/events/api/v1/subscriptions/{id}", delete, methods=["DELETE"]),
]

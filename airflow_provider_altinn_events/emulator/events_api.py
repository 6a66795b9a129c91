"""``POST /events`` and ``GET /events`` of ``EventsController``.

The facts: docs/contract.rst, "contract-publish", "contract-paging".
"""

from __future__ import annotations

import logging
import time

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from . import auth
from .bodies import JsonBodyError, charset, media_type, parse_json, read_body
from .cloudevents import CloudEventError, event_row, is_valid_urn, parse_cloud_event, serialize_list
from .querystring import QueryParams, bind_int, like_to_glob, sendable_header
from .responses import empty, problem, validation_problem
from .state import get_state
from .store import EventQuery

log = logging.getLogger(__name__)
CLOUDEVENTS_JSON = "application/cloudevents+json"
RESOURCE_PREFIX = "urn:altinn:resource:"


def unsupported_media(expected: str) -> Response:
    """415 as ASP.NET's ``[Consumes]`` answers it (plus a detail saying what is expected)."""
    return problem(415, f"The request Content-Type must be {expected}.")


async def publish(request: Request) -> Response:
    state = get_state(request)
    principal = auth.authenticate(request, state.keys)
    if principal is None:
        return empty(401)
    has_pat = auth.platform_access(request, state.keys) is not None
    if not (principal.has_scope(auth.SCOPE_PUBLISH) or has_pat):
        return empty(403)
    if media_type(request) != CLOUDEVENTS_JSON:
        return unsupported_media(CLOUDEVENTS_JSON)
    raw = await read_body(request, state.config.max_body_bytes)
    if not raw.strip():
        return validation_problem(
            {
                "": ["A non-empty request body is required."],
                "cloudEvent": ["The cloudEvent field is required."],
            }
        )
    encoding = charset(request)
    if encoding not in ("utf-8", "utf8", "utf-16", "utf-16le", "utf-16be", "unicode"):
        return unsupported_media(f"{CLOUDEVENTS_JSON} with a UTF-8 or UTF-16 charset")
    try:
        event = parse_cloud_event(parse_json(raw, "utf-16" if encoding == "unicode" else encoding))
    except (JsonBodyError, CloudEventError) as exc:
        return validation_problem({"RequestBody": [str(exc)]})
    resource = event.attributes.get("resource")
    if not isinstance(resource, str) or not resource:
        return problem(400, "A 'resource' property must be defined.")
    if not is_valid_urn(resource):
        return problem(400, "'Resource' must be a valid urn.")
    if not principal.has_scope(auth.SCOPE_PUBLISH_ADMIN) and not state.policy.allows(
        principal.identities, resource, "publish"
    ):
        return empty(403)
    row = event_row(event, time.time())
    if event.holds_nul():
        # PostgreSQL's jsonb refuses U+0000: Altinn answers 200 (registration is asynchronous), then its
        # save fails and the event is never readable nor pushed (docs/contract.rst). So here too.
        log.warning("Event %r holds U+0000: accepted and dropped, as Altinn's jsonb store drops it", row[0])
        return empty(200)
    state.store.insert_events([row])
    state.delivery.notify()
    return empty(200)


async def list_events(request: Request) -> Response:
    state = get_state(request)
    principal = auth.authenticate(request, state.keys)
    if principal is None:
        return empty(401)
    if not principal.has_scope(auth.SCOPE_SUBSCRIBE):
        return empty(403)
    content_type = media_type(request)
    if content_type and content_type != "application/json":
        return unsupported_media("application/json (or absent)")
    params = QueryParams(request.url.query)
    errors: dict[str, list[str]] = {}
    resource = params.first("resource")
    if not resource:
        errors["resource"] = ["The resource field is required."]
    size = bind_int(params, "size", 0, errors)
    if errors or resource is None:
        return validation_problem(errors)
    size = 50 if size < 1 else min(size, 1000)
    after = params.first("after")
    subject = params.first("subject") or None
    alternative = request.headers.get("altinn-alternativesubject") or None
    if not resource.startswith(RESOURCE_PREFIX):
        return problem(400, "The 'resource' parameter must begin with `urn:altinn:resource:`")
    if not after:
        return problem(400, "The 'after' parameter must be defined.")
    if subject and alternative:
        return problem(400, "Only one of 'subject' or 'alternativeSubject' can be defined.")
    types = [t for t in params.all("type") if t]
    delay = state.config.visibility_delay
    rows = state.store.query_events(
        EventQuery(
            resource=resource,
            after_seq=state.store.resolve_after(after),
            subject=subject,
            alternativesubject=alternative,
            type_globs=[like_to_glob(t) for t in types],
            registered_before=time.time() - delay,
            limit=size,
        )
    )
    identities = principal.identities
    visible = [r for r in rows if state.policy.allows(identities, r.resource, "subscribe")]
    headers: dict[str, str] = {}
    if visible:
        link = params.next_link(state.config.base, request.url.path, visible[-1].id)
        if alternative and not subject:
            link += sendable_header(f"&subject={visible[0].subject or ''}")
        headers["next"] = link
    return Response(
        serialize_list([r.body for r in visible]),
        200,
        headers=headers,
        media_type="application/cloudevents+json; charset=utf-8",
    )


routes = [
    Route("/events/api/v1/events", publish, methods=["POST"]),
    Route("/events/api/v1/events", list_events, methods=["GET"]),
]

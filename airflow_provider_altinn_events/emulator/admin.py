"""Admin endpoints under ``/_emulator/`` (never under the Altinn paths): JSON in, JSON out.

Names and bodies are public (issue #2): clients, access, platform-access-token, faults, stats,
events/generate, reset, health.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from . import jsonvalue
from .auth import issue_platform_access_token
from .bodies import JsonBodyError, media_type, parse_json, read_body
from .clients import ClientRegistrationError, register_client
from .cloudevents import CloudEventError, check_string, is_valid_urn, sortable_time, utc_now_text
from .faults import FaultSpecError
from .policy import ACTIONS
from .responses import json_response
from .state import get_state

#: Most events one ``generate`` call creates (docs/guides/emulator.rst). One call holds the store's
#: lock while it inserts; 250,000 small events take about 2 s and ~200 MB of memory at peak.
MAX_GENERATE = 250_000
#: Most bytes of serialized events one call may create (count x event size), so a large ``data``
#: cannot multiply into gigabytes.
MAX_GENERATE_BYTES = 256 * 1024 * 1024


class AdminError(ValueError):
    """A bad admin request; answered 400 (or ``status``) with ``{"error": message}``."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


def _error(exc: Exception, status: int = 400) -> Response:
    return json_response(status, {"error": str(exc)})


async def _json_body(request: Request, keep_numbers: bool = False) -> Any:
    kind = media_type(request)
    if kind not in ("", "application/json") and not kind.endswith("+json"):
        raise AdminError(f"Content-Type must be application/json, not {kind!r}", 415)
    raw = await read_body(request, get_state(request).config.max_body_bytes)
    if not raw.strip():
        return {}
    try:
        value = parse_json(raw)
    except JsonBodyError as exc:
        raise AdminError(f"malformed JSON: {exc}") from exc
    return value if keep_numbers else jsonvalue.plain(value)


def _require_object(body: Any) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise AdminError("body must be a JSON object")
    return body


async def clients(request: Request) -> Response:
    try:
        result = register_client(get_state(request).store, await _json_body(request))
    except AdminError as exc:
        return _error(exc, exc.status)
    except ClientRegistrationError as exc:
        return _error(exc)
    return json_response(201, result)


async def access(request: Request) -> Response:
    state = get_state(request)
    try:
        body = _require_object(await _json_body(request))
        resource, consumer, actions = body.get("resource"), body.get("consumer"), body.get("actions")
        if not isinstance(resource, str) or not resource:
            raise AdminError("resource is required")
        if not isinstance(consumer, str) or not consumer.startswith("/"):
            raise AdminError("consumer must be an identity such as /org/ttd or /organisation/991825827")
        if actions is None:
            actions = list(ACTIONS)
        if not isinstance(actions, list) or not all(a in ACTIONS for a in actions):
            raise AdminError(f"actions must be a list drawn from {list(ACTIONS)}")
    except AdminError as exc:
        return _error(exc, exc.status)
    rule_id = state.policy.add(resource, consumer, actions)
    return json_response(201, {"id": rule_id, "resource": resource, "consumer": consumer, "actions": actions})


async def platform_access_token(request: Request) -> Response:
    state = get_state(request)
    try:
        body = _require_object(await _json_body(request))
        org, app = body.get("org"), body.get("app")
        if not isinstance(org, str) or not org or not isinstance(app, str) or not app:
            raise AdminError("org and app are required strings")
        lifetime = body.get("lifetime", state.config.token_lifetime)
        if not isinstance(lifetime, int) or lifetime < 1:
            raise AdminError("lifetime must be a positive number of seconds")
    except AdminError as exc:
        return _error(exc, exc.status)
    return json_response(200, {"token": issue_platform_access_token(state.keys, org, app, lifetime)})


async def add_fault(request: Request) -> Response:
    state = get_state(request)
    try:
        fault = state.faults.add(await _json_body(request))
    except AdminError as exc:
        return _error(exc, exc.status)
    except FaultSpecError as exc:
        return _error(exc)
    return json_response(201, fault.to_dict())


async def clear_faults(request: Request) -> Response:
    return json_response(200, {"cleared": get_state(request).faults.clear()})


async def list_faults(request: Request) -> Response:
    return json_response(200, {"faults": get_state(request).faults.list()})


async def stats(request: Request) -> Response:
    state = get_state(request)
    body = state.stats.snapshot()
    body["events"] = state.store.count_events()
    body["subscriptions"] = len(state.store.all_subscriptions())
    return json_response(200, body)


async def generate(request: Request) -> Response:
    state = get_state(request)
    try:
        body = _require_object(await _json_body(request, keep_numbers=True))
        resource = body.get("resource")
        if not isinstance(resource, str) or not is_valid_urn(resource):
            raise AdminError("resource must be a valid urn such as urn:altinn:resource:my-resource")
        raw_count = body.get("count", 1)
        count = raw_count if type(raw_count) is int else None
        if count is None or not 1 <= count <= MAX_GENERATE:
            raise AdminError(
                f"count must be an integer between 1 and {MAX_GENERATE:,} (per call; call again for more)"
            )
        template = _template(body)
        rest = jsonvalue.dumps({k: v for k, v in template.items() if k != "specversion"})[1:]
        if count * (len(rest.encode()) + 100) > MAX_GENERATE_BYTES:
            raise AdminError(
                f"count x event size exceeds {MAX_GENERATE_BYTES // 2**20} MiB per call: send fewer events"
                " per call or a smaller data"
            )
    except AdminError as exc:
        return _error(exc, exc.status)
    now = time.time()
    when = utc_now_text()
    sortable = sortable_time(when)
    rows = []
    # UUID-shaped ids sharing a random prefix with a counter in the last group: unique, and they arrive
    # in index order, which keeps the (id, source) index append-only (2-3x faster inserts at 1M events).
    base = uuid.uuid4().hex
    prefix_id = f"{base[:8]}-{base[8:12]}-{base[12:16]}-{base[16:20]}-{base[20:24]}"
    for number in range(count):
        event_id = f"{prefix_id}{number:08x}"
        text = f'{{"specversion":"1.0","id":"{event_id}","time":"{when}",{rest}'
        rows.append(
            (
                event_id,
                template["source"],
                resource,
                template.get("subject"),
                template.get("alternativesubject"),
                template["type"],
                sortable,
                now,
                text,
                None,
            )
        )
    first_seq, last_seq = state.store.insert_events(rows)
    state.delivery.notify()
    first_id, last_id = state.store.event_ids(first_seq, last_seq)
    return json_response(201, {"first_id": first_id, "last_id": last_id, "count": count})


def _template(body: dict[str, Any]) -> dict[str, Any]:
    template: dict[str, Any] = {
        "specversion": "1.0",
        "source": body.get("source") or "urn:altinn:emulator:generated",
        "type": body.get("type") or "emulator.generated",
    }
    for key in ("subject", "alternativesubject"):
        if body.get(key) is not None:
            template[key] = body[key]
    template["resource"] = body["resource"]
    if body.get("data") is not None:
        # As a published event is written back: data without a content type is JSON (docs/contract.rst).
        template["datacontenttype"] = "application/json"
        template["data"] = body["data"]
    for key in ("source", "type", "subject", "alternativesubject"):
        if key in template and (not isinstance(template[key], str) or not template[key]):
            raise AdminError(f"{key} must be a non-empty string")
        if key in template:
            try:
                check_string(key, template[key])
            except CloudEventError as exc:
                raise AdminError(f"{key}: {exc}") from exc
    return template


async def reset(request: Request) -> Response:
    state = get_state(request)
    state.store.reset()
    state.policy.reload()
    state.faults.clear()
    state.stats.clear()
    state.delivery.reset()
    return json_response(200, {"status": "reset"})


async def health(request: Request) -> Response:
    state = get_state(request)
    return json_response(200, {"status": "ok", "base_url": state.config.base})


async def altinn_health(request: Request) -> Response:
    """The real service's ``GET /health`` (ASP.NET health checks answer ``Healthy``)."""
    return Response("Healthy", 200, media_type="text/plain")


routes = [
    Route("/health", altinn_health, methods=["GET"]),
    Route("/_emulator/clients", clients, methods=["POST"]),
    Route("/_emulator/access", access, methods=["POST"]),
    Route("/_emulator/platform-access-token", platform_access_token, methods=["POST"]),
    Route("/_emulator/faults", add_fault, methods=["POST"]),
    Route("/_emulator/faults", clear_faults, methods=["DELETE"]),
    Route("/_emulator/faults", list_faults, methods=["GET"]),
    Route("/_emulator/stats", stats, methods=["GET"]),
    Route("/_emulator/events/generate", generate, methods=["POST"]),
    Route("/_emulator/reset", reset, methods=["POST"]),
    Route("/_emulator/health", health, methods=["GET"]),
]

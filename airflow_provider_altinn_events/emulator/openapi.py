"""``GET /openapi.json``: the emulated Altinn API as an OpenAPI 3.0 document (docs/contract.rst).

Every status the emulator can answer on these paths is listed with its body shape, so a schema-driven
fuzzer (the test suite runs ``schemathesis`` against it) can check both "never a 5xx" and "every answer
matches". Shapes follow Altinn's (``src/Events/Controllers/*.cs``): ProblemDetails and
ValidationProblemDetails as ``application/problem+json``, bare JSON strings from ``StatusCode(code, msg)``,
and empty bodies for 401 challenges, ``Forbid()`` and ``Ok()``.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from .responses import json_response
from .state import get_state

_REF = "#/components/schemas/"


def _ref(name: str) -> dict[str, Any]:
    return {"$ref": _REF + name}


_EMPTY: dict[str, Any] = {"description": "no body"}
_PROBLEMS = {
    "application/problem+json": {
        "schema": {"anyOf": [_ref("ProblemDetails"), _ref("ValidationProblemDetails")]}
    }
}
_STRING_OR_PROBLEM = {
    "application/json": {"schema": {"type": "string"}},
    **_PROBLEMS,
}


def _problem(description: str) -> dict[str, Any]:
    return {"description": description, "content": _PROBLEMS}


def _query(name: str, schema: dict[str, Any], required: bool = False) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": required, "schema": schema}


_STRING = {"type": "string"}
_INT32 = {"type": "integer", "format": "int32"}
_TYPES = {"name": "type", "in": "query", "schema": {"type": "array", "items": _STRING}, "explode": True}
_COMMON = {
    "401": _EMPTY | {"description": "no or invalid Altinn token"},
    "413": _problem("body larger than the configured maximum (Kestrel: 30 MB)"),
    "415": _problem("wrong Content-Type"),
}


def _app_query(extra: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        _query("after", _STRING),
        _query("from", _STRING),
        _query("to", _STRING),
        _query("party", _INT32),
        _query("unit", _STRING),
        {"name": "person", "in": "header", "schema": _STRING},
        _TYPES,
        _query("size", _INT32),
        *extra,
    ]


def _app_list_responses() -> dict[str, Any]:
    return {
        "200": {
            "description": "app events (may be fewer than size: unauthorized ones are dropped)",
            "content": {"application/json": {"schema": _ref("CloudEventList")}},
        },
        "400": _problem("invalid query"),
        "401": {
            "description": "no token, or not an org (a JSON string)",
            "content": {"application/json": {"schema": _STRING}},
        },
        "404": _EMPTY | {"description": "person or unit not found in the register"},
    }


def document(base_url: str) -> dict[str, Any]:
    """The OpenAPI document; ``base_url`` goes into ``servers``."""
    events = "/events/api/v1"
    return {
        "openapi": "3.0.3",
        "info": {
            "title": "Altinn Events (as emulated by altinn-events-emulator)",
            "version": "1.0",
            "description": "Rules and sources: docs/contract.rst of airflow-provider-altinn-events.",
        },
        "servers": [{"url": base_url}],
        "paths": {
            f"{events}/events": {
                "post": {
                    "operationId": "publishEvent",
                    "requestBody": {
                        "required": True,
                        "content": {"application/cloudevents+json": {"schema": _ref("CloudEvent")}},
                    },
                    "responses": {
                        "200": _EMPTY | {"description": "accepted (registration is asynchronous)"},
                        "400": _problem("not a CloudEvent, or resource missing / not a urn"),
                        "403": _EMPTY | {"description": "no publish scope or right"},
                        **_COMMON,
                    },
                },
                "get": {
                    "operationId": "getEvents",
                    "parameters": [
                        _query("resource", _STRING, required=True),
                        _query("after", _STRING, required=True),
                        _query("subject", _STRING),
                        {"name": "Altinn-AlternativeSubject", "in": "header", "schema": _STRING},
                        _TYPES,
                        _query("size", _INT32),
                    ],
                    "responses": {
                        "200": {
                            "description": "events after the cursor; a next header when not empty",
                            "content": {"application/cloudevents+json": {"schema": _ref("CloudEventList")}},
                        },
                        "400": _problem("invalid query"),
                        "403": _EMPTY | {"description": "no subscribe scope"},
                        **_COMMON,
                    },
                },
            },
            f"{events}/app": {
                "post": {
                    "operationId": "publishAppEvent",
                    "requestBody": {
                        "required": True,
                        "content": {"application/json": {"schema": _ref("AppCloudEventRequest")}},
                    },
                    "responses": {
                        "201": {
                            "description": "the new event id",
                            "content": {"application/json": {"schema": _STRING}},
                        },
                        "400": _problem("required fields missing or invalid"),
                        "401": {
                            "description": "no token, or the app may not publish for this source",
                            "content": {"application/json": {"schema": _STRING}},
                        },
                        "403": _EMPTY | {"description": "no platform access token"},
                        "413": _COMMON["413"],
                        "415": _COMMON["415"],
                    },
                }
            },
            f"{events}/app/party": {
                "get": {
                    "operationId": "getAppEventsForParty",
                    "parameters": _app_query(
                        [{"name": "source", "in": "query", "schema": {"type": "array", "items": _STRING}}]
                    ),
                    "responses": _app_list_responses(),
                }
            },
            f"{events}/app/{{org}}/{{app}}": {
                "get": {
                    "operationId": "getAppEventsForOrg",
                    "parameters": [
                        {"name": "org", "in": "path", "required": True, "schema": _STRING},
                        {"name": "app", "in": "path", "required": True, "schema": _STRING},
                        *_app_query([]),
                    ],
                    "responses": _app_list_responses(),
                }
            },
            f"{events}/subscriptions": {
                "post": {
                    "operationId": "createSubscription",
                    "requestBody": {
                        "required": True,
                        "content": {"application/json": {"schema": _ref("SubscriptionRequest")}},
                    },
                    "responses": {
                        "201": {
                            "description": "created (or the identical existing one)",
                            "content": {"application/json": {"schema": _ref("Subscription")}},
                        },
                        "400": {"description": "invalid request", "content": _STRING_OR_PROBLEM},
                        "403": {
                            "description": "no scope (empty) or no right (a JSON string)",
                            "content": {"application/json": {"schema": _STRING}},
                        },
                        **_COMMON,
                    },
                },
                "get": {
                    "operationId": "listSubscriptions",
                    "responses": {
                        "200": {
                            "description": "the caller's subscriptions",
                            "content": {"application/json": {"schema": _ref("SubscriptionList")}},
                        },
                        "401": _COMMON["401"],
                    },
                },
            },
            f"{events}/subscriptions/{{id}}": {
                "parameters": [{"name": "id", "in": "path", "required": True, "schema": _INT32}],
                "get": {
                    "operationId": "getSubscription",
                    "responses": {
                        "200": {
                            "description": "the subscription",
                            "content": {"application/json": {"schema": _ref("Subscription")}},
                        },
                        "400": _problem("id is not an Int32"),
                        "401": _COMMON["401"],
                        "403": _EMPTY | {"description": "created by someone else"},
                        "404": _EMPTY | {"description": "no such subscription"},
                    },
                },
                "delete": {
                    "operationId": "deleteSubscription",
                    "responses": {
                        "200": _EMPTY | {"description": "deleted"},
                        "400": _problem("id is not an Int32"),
                        "401": _COMMON["401"],
                        "403": _EMPTY | {"description": "created by someone else"},
                        "404": _EMPTY | {"description": "no such subscription"},
                    },
                },
            },
            "/authentication/api/v1/exchange/{tokenProvider}": {
                "get": {
                    "operationId": "exchangeToken",
                    "parameters": [
                        {"name": "tokenProvider", "in": "path", "required": True, "schema": _STRING},
                        _query("test", _STRING),
                    ],
                    "responses": {
                        "200": {
                            "description": "the Altinn token (raw, or a JSON string for Accept: application/json)",
                            "content": {
                                "text/plain": {"schema": _STRING},
                                "application/json": {"schema": _STRING},
                            },
                        },
                        "400": {
                            "description": "unknown provider",
                            "content": {"text/plain": {"schema": _STRING}},
                        },
                        "401": _COMMON["401"],
                        "403": _EMPTY | {"description": "ID-porten token without an Altinn scope"},
                        "410": _problem("enterprise user authentication is discontinued"),
                    },
                }
            },
        },
        "components": {"schemas": _schemas()},
    }


def _schemas() -> dict[str, Any]:
    problem_properties: dict[str, Any] = {
        "type": _STRING,
        "title": _STRING,
        "status": {"type": "integer"},
        "detail": _STRING,
        "traceId": _STRING,
    }
    problem: dict[str, Any] = {"type": "object", "required": ["status"], "properties": problem_properties}
    return {
        "CloudEvent": {
            "type": "object",
            "required": ["specversion", "id", "source", "type"],
            "properties": {
                "specversion": {"type": "string", "enum": ["1.0"]},
                "id": {"type": "string", "minLength": 1},
                "source": {"type": "string", "minLength": 1},
                "type": {"type": "string", "minLength": 1},
                "subject": {"type": "string", "minLength": 1},
                "time": {"type": "string"},
                "datacontenttype": _STRING,
                "dataschema": _STRING,
                "resource": _STRING,
                "resourceinstance": _STRING,
                "alternativesubject": _STRING,
                "data": {},
                "data_base64": _STRING,
            },
            "additionalProperties": True,
        },
        "CloudEventList": {"type": "array", "items": _ref("CloudEvent")},
        "AppCloudEventRequest": {
            "type": "object",
            "properties": {
                "source": _STRING,
                "specversion": _STRING,
                "type": _STRING,
                "subject": _STRING,
                "alternativesubject": _STRING,
                "data": {},
                "dataschema": _STRING,
                "contenttype": _STRING,
            },
        },
        "ProblemDetails": problem,
        "ValidationProblemDetails": {
            **problem,
            "required": ["status", "errors"],
            "properties": {
                **problem_properties,
                "errors": {"type": "object", "additionalProperties": {"type": "array", "items": _STRING}},
            },
        },
        "SubscriptionRequest": {
            "type": "object",
            "properties": {
                "endPoint": _STRING,
                "sourceFilter": _STRING,
                "resourceFilter": _STRING,
                "subjectFilter": _STRING,
                "alternativeSubjectFilter": _STRING,
                "typeFilter": _STRING,
                "includeSubunits": {"type": "boolean"},
            },
        },
        "Subscription": {
            "type": "object",
            "required": [
                "id",
                "endPoint",
                "consumer",
                "createdBy",
                "created",
                "validated",
                "includeSubunits",
            ],
            "properties": {
                "id": {"type": "integer"},
                "endPoint": _STRING,
                "sourceFilter": _STRING,
                "resourceFilter": _STRING,
                "subjectFilter": _STRING,
                "typeFilter": _STRING,
                "consumer": _STRING,
                "createdBy": _STRING,
                "created": _STRING,
                "validated": {"type": "boolean"},
                "includeSubunits": {"type": "boolean"},
            },
        },
        "SubscriptionList": {
            "type": "object",
            "required": ["count", "subscriptions"],
            "properties": {
                "count": {"type": "integer"},
                "subscriptions": {"type": "array", "items": _ref("Subscription")},
            },
        },
    }


async def openapi_json(request: Request) -> Response:
    return json_response(200, document(get_state(request).config.base))


routes = [Route("/openapi.json", openapi_json, methods=["GET"])]

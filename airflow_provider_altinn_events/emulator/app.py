"""The ASGI application: routes of every emulated service, error handling, lifespan."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Match

from . import admin, app_events_api, events_api, exchange, maskinporten, openapi, subscriptions_api
from .bodies import BodyTooLargeError
from .config import EmulatorConfig
from .delivery import Delivery
from .faults import FaultList, FaultMiddleware
from .guard import CrashGuardMiddleware
from .keys import load_keys
from .policy import Policy
from .responses import empty, json_response, problem
from .state import EmulatorState, Stats
from .store import Store

log = logging.getLogger(__name__)


def build_state(config: EmulatorConfig, store: Store) -> EmulatorState:
    """Assemble one emulator's parts around a store."""
    stats = Stats()
    policy = Policy(store)
    return EmulatorState(
        config=config,
        store=store,
        keys=load_keys(store),
        policy=policy,
        faults=FaultList(),
        stats=stats,
        delivery=Delivery(config, store, policy, stats),
    )


async def _too_large(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, BodyTooLargeError)
    return problem(413, str(exc))


async def _http_error(request: Request, exc: Exception) -> Response:
    """Unknown routes and wrong methods answer as ASP.NET does: status only, no body."""
    assert isinstance(exc, HTTPException)
    headers = dict(exc.headers or {})
    if exc.status_code == 405:
        # One Starlette route per method: list every method the path has, as ASP.NET's Allow does.
        methods: set[str] = set()
        for route in request.app.routes:
            match, _ = route.matches({**request.scope, "method": "GET"})
            if match != Match.NONE and getattr(route, "methods", None):
                methods.update(route.methods)
            match, _ = route.matches(request.scope)
            if match == Match.PARTIAL and getattr(route, "methods", None):
                methods.update(route.methods)
        if methods:
            headers["Allow"] = ", ".join(sorted(methods - {"HEAD"}))
    if request.url.path.startswith("/_emulator"):
        return json_response(exc.status_code, {"error": exc.detail}, headers=headers)
    return empty(exc.status_code, headers=headers)


def create_app(config: EmulatorConfig, store: Store | None = None) -> Starlette:
    """Build the emulator application.

    :param config: behaviour switches; ``config.public_url`` should be set to the served base URL.
    :param store: state to serve; defaults to a fresh in-memory store.
    """
    state = build_state(config, store or Store(None))

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await state.delivery.start()
        try:
            yield
        finally:
            await state.delivery.stop()

    app = Starlette(
        routes=[
            *maskinporten.routes,
            *exchange.routes,
            *events_api.routes,
            *app_events_api.routes,
            *subscriptions_api.routes,
            *admin.routes,
            *openapi.routes,
        ],
        middleware=[
            Middleware(FaultMiddleware, faults=state.faults, stats=state.stats),
            Middleware(CrashGuardMiddleware),
        ],
        exception_handlers={
            BodyTooLargeError: _too_large,
            HTTPException: _http_error,
        },
        lifespan=lifespan,
    )
    app.state.emulator = state
    return app

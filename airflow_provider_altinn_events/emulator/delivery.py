"""Push delivery: subscription validation, then every matching event POSTed to the endpoint.

As the real outbound path does it (docs/contract.rst, "contract-subscriptions"): a validation event
first; only validated
subscriptions get events; the body is the CloudEvent as stored, ``Content-Type: application/json;
charset=utf-8``; any 2xx is success; failures are retried on the real schedule (or a compressed one
with ``fast_retries``). Runs as asyncio tasks in the server's event loop. Delivery is at least once;
the cursor of dispatched events is kept in the store so a restart does not push old events again.
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import ssl
import time
import uuid
from collections.abc import Coroutine, Sequence
from typing import Any

import httpx

from .config import EmulatorConfig
from .policy import Policy
from .state import Stats
from .store import EventRow, Store

log = logging.getLogger(__name__)
_CURSOR_KEY = "delivery_cursor"
#: Webhook POSTs in flight at once (a bulk ``generate`` with a live subscription queues the rest).
MAX_CONCURRENT_POSTS = 64
_JSON = {"Content-Type": "application/json; charset=utf-8"}


@functools.lru_cache(maxsize=1)
def _ssl_context() -> ssl.SSLContext:
    """One verifying SSL context per process (building one costs ~0.1 s; tests start many servers)."""
    return ssl.create_default_context()


def source_is_base_of(source_filter: str, source: str) -> bool:
    """``Uri.IsBaseOf``: the filter's path up to its last ``/`` prefixes the event source.

    A filter that ends in ``/`` matches nothing in the real service (Altinn/altinn-studio#6182: the stored
    filter never equals the base it is compared with); so here too (docs/contract.rst).
    """
    if source_filter.endswith("/"):
        return False
    cut = source_filter.rfind("/")
    head = source_filter if cut < len("https://") else source_filter[: cut + 1]
    return source.lower().startswith(head.lower()) or source.lower() == source_filter.lower()


def subscription_matches(sub: dict[str, Any], row: EventRow) -> bool:
    """``getsubscriptions_v2`` plus the source base check (exact subject/type; no wildcards)."""
    return _sql_matches(sub, row) and _source_matches(sub, row)


def _sql_matches(sub: dict[str, Any], row: EventRow) -> bool:
    """What ``events.getsubscriptions_v2`` selects for an event's (resource, subject, type)."""
    if sub["subject_filter"] is not None and sub["subject_filter"] != row.subject:
        return False
    return sub["type_filter"] is None or sub["type_filter"] == row.type


def _source_matches(sub: dict[str, Any], row: EventRow) -> bool:
    """``OutboundService.PostOutbound``: drop subscriptions whose sourceFilter is not a base of the source."""
    return not (sub["source_filter"] is not None and not source_is_base_of(sub["source_filter"], row.source))


class Delivery:
    """Background push machinery of one emulator."""

    def __init__(self, config: EmulatorConfig, store: Store, policy: Policy, stats: Stats) -> None:
        self.config = config
        self.store = store
        self.policy = policy
        self.stats = stats
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wake: asyncio.Event | None = None
        self._client: httpx.AsyncClient | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._generation = 0
        self._slots: asyncio.Semaphore | None = None
        self._dispatcher_task: asyncio.Future[None] | None = None
        #: ``SubscriptionRepositoryCachingDecorator``: (resource, subject, type) -> (expires, subscriptions)
        self._cache: dict[tuple[str, str | None, str], tuple[float, list[dict[str, Any]]]] = {}

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._wake = asyncio.Event()
        self._slots = asyncio.Semaphore(MAX_CONCURRENT_POSTS)
        self._client = httpx.AsyncClient(
            timeout=self.config.webhook_timeout, follow_redirects=False, verify=_ssl_context()
        )
        if self.store.get_meta(_CURSOR_KEY) is None:
            self.store.set_meta(_CURSOR_KEY, str(self.store.max_sequenceno()))
        self._dispatcher_task = asyncio.ensure_future(self._dispatcher())

    async def stop(self) -> None:
        tasks = [*self._tasks, *([self._dispatcher_task] if self._dispatcher_task else [])]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._tasks.clear()
        if self._client is not None:
            await self._client.aclose()

    def notify(self) -> None:
        """New events were stored: wake the dispatcher (safe from any thread)."""
        if self._loop is None or self._wake is None:
            return
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is self._loop:
            self._wake.set()
        else:
            self._loop.call_soon_threadsafe(self._wake.set)

    def reset(self) -> None:
        """Forget pending pushes and the subscription cache (after ``POST /_emulator/reset``)."""
        self._generation += 1
        self._cache.clear()
        for task in list(self._tasks):
            task.cancel()
        self.store.set_meta(_CURSOR_KEY, "0")

    def validate(self, subscription: dict[str, Any]) -> None:
        """Queue the validation handshake for a (new or re-posted) subscription."""
        self._spawn(self._validate(subscription))

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        """Run a push or validation in the background (cancelled by reset and stop)."""
        task: asyncio.Task[None] = asyncio.ensure_future(coro, loop=self._loop)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _dispatcher(self) -> None:
        assert self._wake is not None
        while True:
            await self._wake.wait()
            self._wake.clear()
            try:
                self._dispatch_new()
            except Exception:
                log.exception("Push dispatcher failed; continuing")

    def _dispatch_new(self) -> None:
        """Push every event stored since the cursor to the validated subscriptions it matches."""
        cursor = int(self.store.get_meta(_CURSOR_KEY) or 0)
        upto = self.store.max_sequenceno()
        if upto <= cursor:
            return
        if self.config.subscription_cache_seconds > 0:
            self._dispatch_cached(cursor, upto)
            self.store.set_meta(_CURSOR_KEY, str(upto))
            return
        for resource in self.store.subscribed_resources():
            subs = self.store.validated_subscriptions_for(resource)
            after = cursor
            while True:
                rows = self.store.events_between(resource, after, upto)
                if not rows:
                    break
                for row in rows:
                    for sub in subs:
                        if subscription_matches(sub, row) and self._authorized(sub, resource):
                            self._spawn(self._push(sub, row.delivery_body))
                after = rows[-1].sequenceno
        self.store.set_meta(_CURSOR_KEY, str(upto))

    def _dispatch_cached(self, cursor: int, upto: int) -> None:
        """As :meth:`_dispatch_new`, with the subscriptions of each (resource, subject, type) looked up once
        per ``subscription_cache_seconds`` (Altinn's ``SubscriptionRepositoryCachingDecorator``, absolute
        expiry): every event looks its key up, also when nobody subscribes, so a subscription created after
        the lookup gets nothing for that key until it expires, and a deleted one keeps receiving."""
        lifetime = self.config.subscription_cache_seconds
        after = cursor
        while True:
            rows = self.store.all_events_between(after, upto)
            if not rows:
                break
            now = time.monotonic()
            if len(self._cache) > 10_000:
                self._cache = {k: v for k, v in self._cache.items() if v[0] > now}
            for row in rows:
                key = (row.resource, row.subject, row.type)
                entry = self._cache.get(key)
                if entry is None or entry[0] <= now:
                    subs = [
                        s
                        for s in self.store.validated_subscriptions_for(row.resource)
                        if _sql_matches(s, row)
                    ]
                    entry = (now + lifetime, subs)
                    self._cache[key] = entry
                for sub in entry[1]:
                    if _source_matches(sub, row) and self._authorized(sub, row.resource):
                        self._spawn(self._push(sub, row.delivery_body, cached=True))
            after = rows[-1].sequenceno

    def _authorized(self, sub: dict[str, Any], resource: str) -> bool:
        action = "read" if resource.startswith("urn:altinn:resource:app_") else "subscribe"
        return self.policy.allows([sub["consumer"]], resource, action)

    async def _push(self, sub: dict[str, Any], body: str, cached: bool = False) -> None:
        generation = self._generation
        ok = await self._post_with_retries(
            sub["id"], sub["endpoint"], body.encode(), self.config.delivery_schedule, generation, cached
        )
        self.stats.bump("deliveries" if ok else "delivery_failures")

    async def _validate(self, sub: dict[str, Any]) -> None:
        generation = self._generation
        event = {
            "specversion": "1.0",
            "id": str(uuid.uuid4()),
            "source": f"{self.config.events_base}subscriptions/{sub['id']}",
            "type": "platform.events.validatesubscription",
        }
        body = json.dumps(event, separators=(",", ":")).encode()
        ok = await self._post_with_retries(
            sub["id"], sub["endpoint"], body, self.config.validation_schedule, generation
        )
        if ok and generation == self._generation and self.store.get_subscription(sub["id"]) is not None:
            self.store.set_validated(sub["id"])
            self.stats.bump("validations")

    async def _post_with_retries(
        self,
        sub_id: int,
        endpoint: str,
        body: bytes,
        schedule: Sequence[float],
        generation: int,
        cached: bool = False,
    ) -> bool:
        """POST until a 2xx or the schedule is spent. A push from the cached lookup goes on after the
        subscription is deleted (the real outbound command carries the endpoint); without the cache a
        deleted subscription stops its retries."""
        assert self._client is not None
        for attempt in range(len(schedule) + 1):
            if generation != self._generation:
                return False
            if not cached and self.store.get_subscription(sub_id) is None:
                return False
            self.stats.bump("delivery_attempts")
            assert self._slots is not None
            try:
                async with self._slots:
                    response = await self._client.post(endpoint, content=body, headers=_JSON)
                if 200 <= response.status_code < 300:
                    return True
                log.info("Push to subscription %s got HTTP %s", sub_id, response.status_code)
            except httpx.HTTPError as exc:
                log.info("Push to subscription %s failed: %s", sub_id, type(exc).__name__)
            if attempt < len(schedule):
                await asyncio.sleep(schedule[attempt])
        return False

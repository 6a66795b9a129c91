"""Everything one running emulator holds, shared by the route modules through ``app.state``."""

from __future__ import annotations

import threading
from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from starlette.requests import Request

from .config import EmulatorConfig
from .keys import KeySet
from .store import Store

if TYPE_CHECKING:
    from .delivery import Delivery
    from .faults import FaultList
    from .policy import Policy


@dataclass
class Stats:
    """Counters reported by ``GET /_emulator/stats``; reset by ``POST /_emulator/reset``."""

    requests: Counter[str] = field(default_factory=Counter)
    token_grants: int = 0
    token_grant_failures: int = 0
    token_exchanges: int = 0
    token_exchange_failures: int = 0
    deliveries: int = 0
    delivery_attempts: int = 0
    delivery_failures: int = 0
    validations: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def count_request(self, key: str) -> None:
        with self.lock:
            self.requests[key] += 1

    def bump(self, name: str, amount: int = 1) -> None:
        with self.lock:
            setattr(self, name, getattr(self, name) + amount)

    def snapshot(self) -> dict[str, Any]:
        with self.lock:
            return {
                "requests": dict(self.requests),
                "token_grants": self.token_grants,
                "token_grant_failures": self.token_grant_failures,
                "token_exchanges": self.token_exchanges,
                "token_exchange_failures": self.token_exchange_failures,
                "deliveries": self.deliveries,
                "delivery_attempts": self.delivery_attempts,
                "delivery_failures": self.delivery_failures,
                "validations": self.validations,
            }

    def clear(self) -> None:
        with self.lock:
            self.requests.clear()
            self.token_grants = self.token_grant_failures = 0
            self.token_exchanges = self.token_exchange_failures = 0
            self.deliveries = self.delivery_attempts = self.delivery_failures = self.validations = 0


@dataclass
class EmulatorState:
    """The parts of one emulator instance."""

    config: EmulatorConfig
    store: Store
    keys: KeySet
    policy: Policy
    faults: FaultList
    stats: Stats
    delivery: Delivery


def get_state(request: Request) -> EmulatorState:
    """The emulator state behind a request."""
    state = request.app.state.emulator
    assert isinstance(state, EmulatorState)
    return state

"""The local stand-in for Altinn's resource registry policies (XACML decisions).

Default: every authenticated consumer may ``publish``, ``subscribe`` and ``read`` every resource.
Once a rule names a resource, only the consumers it lists get the actions it lists on that resource.
Rules live in the store (they survive restarts with a data file); a copy is cached in memory because
``GET /events`` asks once per returned event.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable

from .store import Store

ACTIONS = ("publish", "subscribe", "read")


class Policy:
    """Answers "may consumer X do action A on resource R?"."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self._lock = threading.Lock()
        self._rules: dict[str, list[tuple[str, frozenset[str]]]] = {}
        self.reload()

    def reload(self) -> None:
        """Re-read the rules from the store (after a reset or at start)."""
        rules: dict[str, list[tuple[str, frozenset[str]]]] = {}
        for resource, consumer, actions in self._store.rules():
            rules.setdefault(resource, []).append((consumer, frozenset(actions)))
        with self._lock:
            self._rules = rules

    def add(self, resource: str, consumer: str, actions: Iterable[str]) -> int:
        acts = list(actions)
        rule_id = self._store.add_rule(resource, consumer, acts)
        with self._lock:
            self._rules.setdefault(resource, []).append((consumer, frozenset(acts)))
        return rule_id

    def allows(self, consumers: Iterable[str], resource: str, action: str) -> bool:
        """Whether any of the caller's consumer names has ``action`` on ``resource``."""
        with self._lock:
            rules = self._rules.get(resource)
        if rules is None:
            return True
        names = set(consumers)
        return any(consumer in names and action in acts for consumer, acts in rules)

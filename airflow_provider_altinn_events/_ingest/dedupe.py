"""Drop events this run has already written, in memory that does not grow with the run.

An event is its ``(id, source)`` pair: Altinn keys events by both, so two sources may publish the same id and
both events must be written. Altinn delivers at least once, and its duplicates arrive close together (a page
fetched twice, an event registered twice). Remembering every event of a run of millions would make memory
grow with the run, so the window keeps the most recent ``capacity`` keys (100,000 cost about 20 MB). A
duplicate further back than that is written again; the manifest's count of dropped duplicates is exact for
what the window saw.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Hashable, Sequence

__all__ = ["RecentIds"]


class RecentIds:
    """A set of the last ``capacity`` distinct keys seen (``(id, source)`` pairs), oldest forgotten first.

    :param capacity: how many ids to remember; ``0`` turns deduplication off.
    """

    __slots__ = ("_capacity", "_ids", "_order")

    def __init__(self, capacity: int) -> None:
        if capacity < 0:
            raise ValueError("capacity must be >= 0")
        self._capacity = capacity
        self._ids: set[Hashable] = set()
        self._order: deque[Hashable] = deque()

    def __len__(self) -> int:
        return len(self._ids)

    def __contains__(self, event_id: object) -> bool:
        return event_id in self._ids

    def add_many(self, ids: Sequence[Hashable]) -> list[int] | None:
        """Remember ``ids`` (one page); returns the positions of those not seen before, or ``None`` if all
        of them are new (the common case, checked in bulk at C speed)."""
        if not self._capacity:
            return None
        known = self._ids
        if known.isdisjoint(ids) and len(set(ids)) == len(ids):
            known.update(ids)
            self._order.extend(ids)
            self._evict()
            return None
        return [position for position, event_id in enumerate(ids) if self.add(event_id)]

    def _evict(self) -> None:
        order, known = self._order, self._ids
        for _ in range(len(order) - self._capacity):
            known.discard(order.popleft())

    def add(self, event_id: Hashable) -> bool:
        """Remember ``event_id``; returns ``False`` if it was already there (a duplicate)."""
        if event_id in self._ids:
            return False
        if self._capacity:
            if len(self._order) >= self._capacity:
                self._ids.discard(self._order.popleft())
            self._ids.add(event_id)
            self._order.append(event_id)
        return True

"""The fakes of Airflow's runtime objects that the tests share: one task instance, one asset state store.

Only what Airflow hands our code is faked here (a task instance in the context, the triggerer's state-store
accessor); Altinn itself is never faked outside the client core's unit tests (the emulator is used).
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from typing import Any

__all__ = ["FakeStore", "FakeTI"]


@dataclass
class FakeTI:
    """What the operators and the sensor use of a task instance: its identity (event ids are derived from
    it) and ``xcom_push``, which records every push in :attr:`pushed`."""

    run_id: str = "manual__1"
    dag_id: str = "dag"
    task_id: str = "task"
    map_index: int = -1
    try_number: int = 1
    pushed: dict[str, Any] = field(default_factory=dict)

    def xcom_push(self, key: str, value: Any) -> None:
        self.pushed[key] = value


class FakeStore:
    """A single-asset ``asset_state_store``: async ``aget``/``aset`` of JSON values, as the triggerer injects;
    a value that is not JSON is refused (as the real store would), and every write is recorded."""

    def __init__(self) -> None:
        self.values: dict[str, Any] = {}
        self.writes: list[tuple[str, Any]] = []

    async def aget(self, key: str, default: Any = None) -> Any:
        return self.values.get(key, default)

    async def aset(self, key: str, value: Any) -> None:
        self.values[key] = json.loads(json.dumps(value))
        self.writes.append((key, value))


def api_error(cls: type[Any], status: int, **kwargs: object) -> Any:
    """An ``AltinnAPIError`` subclass instance as the error factory would build it for ``status`` (tables of
    decisions on errors: retry, poll-failure policy, the permanent-error boundary)."""
    return cls("x", status_code=status, method="GET", url="https://h/p", **kwargs)


@dataclass
class TriggerRun:
    """One trigger driven as the triggerer drives it, in a task of its own: what it yielded (payloads) and
    the exception it ended with, if any. For tests that run many triggers at once (shared polls)."""

    trigger: Any
    payloads: list[Any] = field(default_factory=list)
    error: BaseException | None = None
    task: asyncio.Task[None] | None = None

    def start(self) -> TriggerRun:
        self.task = asyncio.ensure_future(self._drive())
        return self

    async def _drive(self) -> None:
        from airflow_provider_altinn_events._payloads import TriggerPayload

        try:
            async for event in self.trigger.run():
                self.payloads.append(TriggerPayload.from_dict(event.payload))
        except asyncio.CancelledError:
            raise
        except Exception as error:
            self.error = error

    def delivered(self) -> list[tuple[str, str]]:
        """(id, source) of every event delivered, in order."""
        return [(e["id"], e["source"]) for p in self.payloads for e in p.events]

    async def stop(self) -> None:
        assert self.task is not None
        self.task.cancel()
        await asyncio.gather(self.task, return_exceptions=True)

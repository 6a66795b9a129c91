"""What ingestion needs of a logger: ``info`` and ``warning`` with %-style arguments.

The operator passes its task logger, which on Airflow 3 is the task SDK's structlog logger
(``airflow.sdk._shared.logging.types.Logger``), not a ``logging.Logger``; outside a task a
``logging.Logger`` is used. Both fit this protocol, so mypy checks the call against Airflow's own type
(docs/performance.rst, "seams", and pyproject's mypy settings).
"""

from __future__ import annotations

from typing import Any, Protocol

__all__ = ["TaskLog"]


class TaskLog(Protocol):
    def info(self, msg: Any, /, *args: Any, **kwargs: Any) -> Any: ...

    def warning(self, msg: Any, /, *args: Any, **kwargs: Any) -> Any: ...

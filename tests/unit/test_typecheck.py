"""mypy checks the provider's Airflow-facing classes against Airflow's own annotations (issue 16 item 7).

Airflow's core and task SDK ship ``py.typed``; pyproject's mypy settings let mypy read them (``follow_imports =
"silent"`` for ``airflow.*``), so an override of the wrong shape in a hook, operator, sensor or trigger fails
``make typecheck``. This runs mypy with the project's settings on overrides of the wrong shape and expects each
to be reported; with Airflow skipped (its classes ``Any``), none would be.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

mypy_api = pytest.importorskip("mypy.api")

REPO = Path(__file__).resolve().parents[2]

BAD_OVERRIDES = """
from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from airflow.sdk import BaseOperator, BaseSensorOperator, Context
from airflow.triggers.base import BaseTrigger, TriggerEvent


class WrongSerialize(BaseTrigger):
    def serialize(self) -> list[str]:  # line 12
        return []

    async def run(self) -> AsyncIterator[TriggerEvent]:
        yield TriggerEvent({})


class WrongRun(BaseTrigger):
    def serialize(self) -> tuple[str, dict[str, Any]]:
        return "", {}

    async def run(self) -> str:  # line 23
        return ""


class WrongExecute(BaseOperator):
    def execute(self, context: int) -> Any:  # line 28
        return None


class WrongPoke(BaseSensorOperator):
    def poke(self, context: Context) -> str:  # line 33
        return ""
"""


def test_overrides_of_the_wrong_shape_fail_the_type_check(tmp_path: Path) -> None:
    source = tmp_path / "bad_overrides.py"
    source.write_text(BAD_OVERRIDES)
    stdout, stderr, status = mypy_api.run(
        ["--config-file", str(REPO / "pyproject.toml"), "--no-error-summary", str(source)]
    )
    assert status == 1, stdout + stderr
    overrides = {
        int(m.group(1)): m.group(2)
        for m in re.finditer(r"bad_overrides\.py:(\d+): error: (.*)\[override\]", stdout)
    }
    assert sorted(overrides) == [12, 23, 28, 33], stdout
    assert '"serialize"' in overrides[12] and '"run"' in overrides[23]
    assert '"execute"' in overrides[28] and '"poke"' in overrides[33]

from __future__ import annotations

from collections.abc import Iterator

import pytest

from airflow_provider_altinn_events.triggers._runtime import _CLIENTS
from airflow_provider_altinn_events.triggers._shared import _READERS


@pytest.fixture(autouse=True)
def _fresh_shared_clients() -> Iterator[None]:
    """Each test runs in its own event loop: start without shared clients or readers left from another test's
    loop."""
    _CLIENTS.entries.clear()
    _READERS.clear()
    yield
    _CLIENTS.entries.clear()
    _READERS.clear()

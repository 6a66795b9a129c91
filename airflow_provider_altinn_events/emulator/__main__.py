"""``python -m airflow_provider_altinn_events.emulator`` = the ``altinn-events-emulator`` CLI."""

from __future__ import annotations

from .cli import main

main()

"""Provider metadata for Airflow's ``apache_airflow_provider`` entry point.

Airflow reads this without importing the hook: the connection form (``conn-fields`` and
``ui-field-behaviour``) is declared here as data, which is what the Airflow 3 UI renders
(the old ``get_connection_form_widgets`` hook methods are deprecated since Airflow 3.2).
"""

from __future__ import annotations

from typing import Any

from airflow_provider_altinn_events import __version__

INTEGRATION = "Altinn Events"
_PKG = "airflow_provider_altinn_events"


def get_provider_info() -> dict[str, Any]:
    """Return the provider's metadata in the shape of Airflow's ``provider_info.schema.json``."""
    from airflow_provider_altinn_events.hooks._connection_form import CONNECTION_FORM

    return {
        "package-name": "airflow-provider-altinn-events",
        "name": "Altinn Events",
        "description": "Publish, wait for, react to and ingest Altinn 3 events, with Maskinporten auth.",
        "versions": [__version__],
        "integrations": [
            {
                "integration-name": INTEGRATION,
                "external-doc-url": "https://docs.altinn.studio/events/",
                "tags": ["service"],
            }
        ],
        "hooks": [{"integration-name": INTEGRATION, "python-modules": [f"{_PKG}.hooks.altinn_events"]}],
        "operators": [
            {
                "integration-name": INTEGRATION,
                "python-modules": [
                    f"{_PKG}.operators.publish",
                    f"{_PKG}.operators.subscriptions",
                    f"{_PKG}.operators.ingest",
                ],
            }
        ],
        "sensors": [{"integration-name": INTEGRATION, "python-modules": [f"{_PKG}.sensors.altinn_events"]}],
        "triggers": [
            {
                "integration-name": INTEGRATION,
                "python-modules": [f"{_PKG}.triggers.altinn_events", f"{_PKG}.triggers.subscriptions"],
            }
        ],
        "queues": [f"{_PKG}.queues.altinn_events.AltinnEventsMessageQueueProvider"],
        # Shown by `airflow config list` and the UI's configuration page; read where the trigger runs.
        "config": {
            "altinn_events": {
                "description": "Settings of the Altinn Events provider.",
                "options": {
                    "sensor_resume_grace": {
                        "description": (
                            "Seconds after a deferrable AltinnEventsSensor's trigger starts during which "
                            "events it finds are held back, so Airflow's scheduler does not fail the task on "
                            "the stale report of the deferred try's exit (docs/guides/sensor.rst, "
                            '"Troubleshooting"). 0 turns it off; a sensor\'s resume_grace argument wins.'
                        ),
                        "version_added": "0.1.0",
                        "type": "float",
                        "example": "15",
                        "default": "10",
                    }
                },
            }
        },
        "connection-types": [
            {
                "connection-type": "altinn_events",
                "hook-class-name": f"{_PKG}.hooks.altinn_events.AltinnEventsHook",
                "hook-name": "Altinn Events",
                **CONNECTION_FORM,
            }
        ],
    }

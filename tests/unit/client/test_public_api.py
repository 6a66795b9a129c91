"""The client package's public names are exact, and importing it stays cheap (lazy re-exports)."""

from __future__ import annotations

import subprocess
import sys

import airflow_provider_altinn_events.client as client_pkg

EXPECTED = {
    "AltinnAuthMode",
    "AltinnEnvironment",
    "AltinnEventsClient",
    "AltinnSettings",
    "AsyncAltinnEventsClient",
    "CloudEvent",
    "EventFilter",
    "EventPage",
    "PollState",
    "PollStep",
    "RetryPolicy",
    "Subscription",
    "SubscriptionList",
    "UndecodedEventPage",
    "initial_state",
    "poll_step",
}


def test_all_is_exact_and_every_name_resolves() -> None:
    assert set(client_pkg.__all__) == EXPECTED
    assert len(client_pkg.__all__) == len(EXPECTED)
    for name in client_pkg.__all__:
        assert getattr(client_pkg, name) is not None
    assert set(EXPECTED) <= set(dir(client_pkg))


def test_unknown_name_is_an_attribute_error() -> None:
    try:
        client_pkg.DoesNotExist  # noqa: B018
    except AttributeError as error:
        assert "DoesNotExist" in str(error)
    else:  # pragma: no cover
        raise AssertionError("expected AttributeError")


def test_importing_settings_does_not_load_the_http_stack() -> None:
    code = (
        "import sys\n"
        "from airflow_provider_altinn_events.client import AltinnSettings\n"
        "heavy = [m for m in ('httpx', 'jwt', 'cryptography', 'airflow') if m in sys.modules]\n"
        "assert not heavy, heavy\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_client_core_does_not_import_airflow() -> None:
    code = (
        "import sys\n"
        "import airflow_provider_altinn_events.client.clients, airflow_provider_altinn_events.client.keys\n"
        "assert 'airflow' not in sys.modules\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)

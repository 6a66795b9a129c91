"""AltinnEventsHook without a network: env-var connections, caching, test_connection failure steps, form data."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import urllib.parse

import pytest

from airflow_provider_altinn_events.client.clients import AltinnEventsClient, AsyncAltinnEventsClient
from airflow_provider_altinn_events.client.settings import EXTRA_KEYS, AltinnEnvironment
from airflow_provider_altinn_events.hooks._connection_form import CONNECTION_FORM, ENVIRONMENT_CHOICES
from airflow_provider_altinn_events.hooks.altinn_events import AltinnEventsHook
from tests.unit.client.helpers import pem, rsa_key

ENV = "AIRFLOW_CONN_ALTINN_EVENTS_DEFAULT"
KEY = pem(rsa_key())


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def set_conn(monkeypatch: pytest.MonkeyPatch, name: str = ENV, **overrides: object) -> dict[str, object]:
    extra = {"environment": "custom", "key_id": "kid-1", "timeout": 2}
    extra.update(overrides.pop("extra", {}))  # type: ignore[call-overload]
    conn: dict[str, object] = {
        "conn_type": "altinn_events",
        "host": f"http://127.0.0.1:{free_port()}",
        "login": "client-1",
        "password": KEY,
        "extra": extra,
    }
    conn.update(overrides)
    monkeypatch.setenv(name, json.dumps(conn))
    return conn


def test_class_attributes_follow_the_naming_guide() -> None:
    assert AltinnEventsHook.conn_name_attr == "altinn_events_conn_id"
    assert AltinnEventsHook.default_conn_name == "altinn_events_default"
    assert AltinnEventsHook.conn_type == "altinn_events"
    assert AltinnEventsHook.hook_name == "Altinn Events"


def test_init_does_no_io(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(ENV, raising=False)
    hook = AltinnEventsHook(altinn_events_conn_id="does_not_exist")
    assert hook.altinn_events_conn_id == "does_not_exist"


def test_settings_from_env_var_connection(monkeypatch: pytest.MonkeyPatch) -> None:
    conn = set_conn(monkeypatch)
    settings = AltinnEventsHook().get_settings()
    assert settings.conn_id == "altinn_events_default"
    assert settings.platform_url == conn["host"]
    assert settings.client_id == "client-1"
    assert settings.timeout_seconds == 2.0
    assert settings.environment is AltinnEnvironment.CUSTOM


def test_settings_from_uri_form_connection(monkeypatch: pytest.MonkeyPatch) -> None:
    query = urllib.parse.urlencode(
        {"environment": "custom", "key_id": "k", "timeout": "30", "scopes": "a:b c:d"}
    )
    password = urllib.parse.quote(KEY, safe="")
    monkeypatch.setenv(ENV, f"altinn-events://client-1:{password}@127.0.0.1:8765/?{query}")
    settings = AltinnEventsHook().get_settings()
    assert settings.platform_url == "http://127.0.0.1:8765"
    assert settings.timeout_seconds == 30.0
    assert settings.scopes == ("a:b", "c:d")
    assert settings.private_key == KEY.strip()


def test_get_conn_is_cached_and_close_resets(monkeypatch: pytest.MonkeyPatch) -> None:
    set_conn(monkeypatch)
    hook = AltinnEventsHook()
    client = hook.get_conn()
    assert isinstance(client, AltinnEventsClient)
    assert hook.get_conn() is client
    hook.close()
    assert hook.get_conn() is not client
    hook.close()


async def test_get_async_conn_uses_aget_connection(monkeypatch: pytest.MonkeyPatch) -> None:
    set_conn(monkeypatch, name="AIRFLOW_CONN_OTHER")
    from airflow_provider_altinn_events._compat import aget_connection as real
    from airflow_provider_altinn_events.hooks import altinn_events as module

    seen: list[str] = []

    async def spy(conn_id: str) -> object:
        seen.append(conn_id)
        return await real(conn_id)

    monkeypatch.setattr(module, "aget_connection", spy)
    hook = AltinnEventsHook(altinn_events_conn_id="other")
    async with await hook.get_async_conn() as client:
        assert isinstance(client, AsyncAltinnEventsClient)
        assert client.settings.conn_id == "other"
    assert seen == ["other"]


def test_test_connection_reports_invalid_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    set_conn(monkeypatch, extra={"environment": "tt02"})
    ok, message = AltinnEventsHook().test_connection()
    assert not ok
    assert message.startswith("Connection settings are invalid (host)")


def test_test_connection_reports_missing_connection(monkeypatch: pytest.MonkeyPatch) -> None:
    ok, message = AltinnEventsHook(altinn_events_conn_id="nope_not_here").test_connection()
    assert not ok
    assert "nope_not_here" in message


def test_test_connection_reports_bad_key(monkeypatch: pytest.MonkeyPatch) -> None:
    set_conn(
        monkeypatch, password="-----BEGIN " + "PRIVATE KEY-----\nnot a key\n-----END " + "PRIVATE KEY-----"
    )
    ok, message = AltinnEventsHook().test_connection()
    assert not ok
    assert message.startswith("Key step failed (password)")


def test_test_connection_reports_unreachable_maskinporten_as_grant_step(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    set_conn(monkeypatch)
    ok, message = AltinnEventsHook().test_connection()
    assert not ok
    assert message.startswith("Grant step failed")
    assert "could not reach Maskinporten" in message
    assert KEY.splitlines()[1] not in message


def test_hook_module_import_is_cheap() -> None:
    code = (
        "import sys\n"
        "import airflow_provider_altinn_events.hooks.altinn_events\n"
        "loaded = [m for m in ('jwt', 'httpx_aiohttp', 'aiohttp', 'airflow_provider_altinn_events.client.clients',"
        " 'airflow_provider_altinn_events.client.auth', 'airflow_provider_altinn_events.client.keys') if m in sys.modules]\n"
        "assert not loaded, loaded\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


# -- the connection form (declared as data for get_provider_info) -------------------------------------------------


def test_form_declares_every_extra_key_and_nothing_else() -> None:
    assert set(CONNECTION_FORM["conn-fields"]) == set(EXTRA_KEYS)


def test_form_fields_are_well_formed() -> None:
    behaviour = CONNECTION_FORM["ui-field-behaviour"]
    assert set(behaviour) == {"hidden-fields", "relabeling", "placeholders"}
    allowed_fields = {"description", "host", "port", "login", "password", "schema", "extra"}
    assert set(behaviour["hidden-fields"]) <= allowed_fields
    assert set(behaviour["relabeling"]) <= allowed_fields
    allowed_formats = {"password", "multiline", "email", "url", "json", "date", "date-time", "time"}
    for name, spec in CONNECTION_FORM["conn-fields"].items():
        assert spec["label"] and "type" in spec["schema"], name
        assert spec["schema"].get("format", "password") in allowed_formats, name
    secrets = {
        n for n, s in CONNECTION_FORM["conn-fields"].items() if s["schema"].get("format") == "password"
    }
    assert secrets == {"private_key_passphrase", "platform_access_token"}
    assert CONNECTION_FORM["conn-fields"]["environment"]["schema"]["enum"] == ENVIRONMENT_CHOICES
    for choice in ENVIRONMENT_CHOICES:
        AltinnEnvironment(choice)
    json.dumps(CONNECTION_FORM)  # pure data


def test_form_module_imports_no_airflow() -> None:
    code = (
        "import sys\n"
        "import airflow_provider_altinn_events.hooks._connection_form\n"
        "assert 'airflow' not in sys.modules\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def _airflow_reads_conn_fields() -> bool:
    """Airflow 3.2+ builds the connection form from the provider info's ``conn-fields``; 3.0 and 3.1 only from
    hook methods that need Flask-AppBuilder (docs/compatibility.rst)."""
    from airflow import __version__
    from packaging.version import Version

    return Version(__version__).release[:2] >= (3, 2)


@pytest.mark.skipif("not _airflow_reads_conn_fields()", reason="conn-fields arrived in Airflow 3.2")
@pytest.mark.filterwarnings(
    "ignore:ProvidersManager.hooks is deprecated"
)  # Airflow 3.2's own HookMetaService
def test_hook_meta_endpoint_data_lists_our_fields() -> None:
    """What ``GET /ui/connections/hook_meta`` serves (the endpoint returns ``HookMetaService.hook_meta_data()``)."""
    from airflow.api_fastapi.core_api.services.ui.connections import HookMetaService

    (meta,) = [m for m in HookMetaService.hook_meta_data() if m.connection_type == "altinn_events"]
    data = meta.model_dump(mode="json")
    assert data["hook_name"] == "Altinn Events"
    assert data["standard_fields"]["login"]["title"] == "Maskinporten client id"
    assert data["standard_fields"]["port"]["hidden"] is True
    assert set(data["extra_fields"]) == set(EXTRA_KEYS)
    environment = data["extra_fields"]["environment"]
    assert environment["value"] == "tt02" and environment["schema"]["enum"] == ENVIRONMENT_CHOICES
    assert data["extra_fields"]["platform_access_token"]["schema"]["format"] == "password"

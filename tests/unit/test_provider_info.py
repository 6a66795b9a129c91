"""The provider metadata Airflow reads must name only things that exist, in the shape Airflow validates."""

from __future__ import annotations

import importlib
import json
from pathlib import Path

import pytest

from airflow_provider_altinn_events.get_provider_info import get_provider_info


def _import_object(dotted: str) -> object:
    module, _, name = dotted.rpartition(".")
    return getattr(importlib.import_module(module), name)


def test_every_module_named_in_provider_info_imports() -> None:
    info = get_provider_info()
    modules = [
        m
        for section in ("hooks", "operators", "sensors", "triggers")
        for e in info[section]
        for m in e["python-modules"]
    ]
    assert modules
    for module in modules:
        importlib.import_module(module)


def test_connection_type_names_the_real_hook() -> None:
    (conn_type,) = get_provider_info()["connection-types"]
    hook = _import_object(conn_type["hook-class-name"])
    assert conn_type["connection-type"] == "altinn_events" == hook.conn_type  # type: ignore[attr-defined]
    assert hook.default_conn_name == "altinn_events_default"  # type: ignore[attr-defined]
    assert hook.conn_name_attr == "altinn_events_conn_id"  # type: ignore[attr-defined]


def test_queue_providers_import_and_use_scheme_altinn() -> None:
    for dotted in get_provider_info()["queues"]:
        provider = _import_object(dotted)
        assert provider.scheme == "altinn"  # type: ignore[attr-defined]


def test_provider_info_matches_airflow_runtime_schema() -> None:
    jsonschema = pytest.importorskip("jsonschema")
    import airflow

    schema = json.loads((Path(airflow.__file__).parent / "provider_info.schema.json").read_text())
    jsonschema.validate(get_provider_info(), schema)


def test_connection_form_fields_follow_the_declarative_schema() -> None:
    (conn_type,) = get_provider_info()["connection-types"]
    fields = conn_type["conn-fields"]
    for required in ("environment", "scopes", "key_id", "auth", "platform_access_token"):
        assert required in fields, required
    for name, spec in fields.items():
        assert spec["label"], name
        assert "type" in spec["schema"], name
    for secret in ("private_key_passphrase", "platform_access_token"):
        assert fields[secret]["schema"].get("format") == "password", secret
    hidden = conn_type["ui-field-behaviour"]["hidden-fields"]
    assert set(hidden) <= {"description", "host", "port", "login", "password", "schema", "extra"}


def test_config_declares_the_resume_grace_with_the_code_default() -> None:
    """``[altinn_events] sensor_resume_grace`` is listed for ``airflow config list`` with the default the
    trigger uses when the option is absent, so the two cannot drift apart."""
    from airflow_provider_altinn_events.triggers._grace import DEFAULT_RESUME_GRACE

    option = get_provider_info()["config"]["altinn_events"]["options"]["sensor_resume_grace"]
    assert float(option["default"]) == DEFAULT_RESUME_GRACE
    assert option["type"] == "float"

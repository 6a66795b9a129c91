"""The deployment files of docs/guides/distributed.rst, checked for syntax and structure (Docker and Helm are
not available here): the compose file starts the same components as ``make distributed``'s topology table
(scripts/stack.py ``DISTRIBUTED``), and every Airflow container gets the settings that must be shared."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from scripts.stack import DISTRIBUTED

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
SHARED = ("AIRFLOW__API_AUTH__JWT_SECRET", "AIRFLOW__API__SECRET_KEY", "AIRFLOW__CORE__FERNET_KEY")
SERVICES_BESIDES_AIRFLOW = {"postgres", "redis", "emulator", "airflow-init"}


def load(name: str) -> dict[str, Any]:
    data = yaml.safe_load((DEPLOY / name).read_text())
    assert isinstance(data, dict)
    return data


def airflow_services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {name: s for name, s in compose["services"].items() if name not in SERVICES_BESIDES_AIRFLOW}


def test_compose_runs_the_topology_of_make_distributed() -> None:
    compose = load("docker-compose.yml")
    services = airflow_services(compose)
    assert set(services) == {component.name for component in DISTRIBUTED}
    for component in DISTRIBUTED:
        command = services[component.name]["command"]
        expected = [arg for arg in component.command if arg != "--skip-serve-logs"]
        assert command == expected, component.name
    assert set(compose["services"]) >= SERVICES_BESIDES_AIRFLOW


def test_every_airflow_container_shares_the_secrets_and_the_connection() -> None:
    compose = load("docker-compose.yml")
    values: dict[str, set[str]] = {}
    for name, service in {
        **airflow_services(compose),
        "airflow-init": compose["services"]["airflow-init"],
    }.items():
        env = service["environment"]
        for key in (*SHARED, "AIRFLOW_CONN_ALTINN_EVENTS_DEFAULT", "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"):
            assert key in env, f"{name} lacks {key}"
            values.setdefault(key, set()).add(env[key])
        assert env["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor"
        assert "airflow-provider-altinn-events" in env["_PIP_ADDITIONAL_REQUIREMENTS"]
    # one value each (the same variable for all), and compose refuses to start without it (``:?``)
    for key in SHARED:
        (value,) = values[key]
        assert value.startswith("${") and ":?" in value, key


def test_compose_waits_for_its_services_and_exposes_only_the_ui_on_loopback() -> None:
    compose = load("docker-compose.yml")
    for name, service in airflow_services(compose).items():
        depends = service["depends_on"]
        assert depends["postgres"]["condition"] == "service_healthy", name
        assert depends["redis"]["condition"] == "service_healthy", name
        assert depends["airflow-init"]["condition"] == "service_completed_successfully", name
        assert service.get("ports", []) == (["127.0.0.1:8080:8080"] if name == "api-server" else []), name
    dags = {name for name, s in airflow_services(compose).items() if s.get("volumes")}
    assert dags == {"dag-processor", "worker-1", "worker-2"}  # who reads DAG files


def test_helm_values_give_the_same_topology_and_shared_secrets() -> None:
    values = load("helm/values.yaml")
    assert values["executor"] == "CeleryExecutor"
    assert values["workers"]["replicas"] == 2
    assert values["triggerer"]["replicas"] == 2
    assert values["dagProcessor"]["enabled"] is True
    for key in ("jwtSecretName", "apiSecretKeySecretName", "fernetKeySecretName"):
        assert values[key]
    (connection,) = values["secret"]
    assert connection["envName"] == "AIRFLOW_CONN_ALTINN_EVENTS_DEFAULT"

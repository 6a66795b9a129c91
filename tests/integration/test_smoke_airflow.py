from __future__ import annotations

import pendulum
import pytest

from tests.airflow_support import run_dag, xcom_value


@pytest.mark.integration
def test_in_test_dag_runs_on_real_airflow(airflow_db: str) -> None:
    from airflow.sdk import DAG, task

    with DAG("smoke_support", schedule=None, start_date=pendulum.datetime(2026, 1, 1, tz="UTC")) as dag:

        @task
        def hello() -> int:
            return 41 + 1

        hello()

    run = run_dag(dag)
    assert run.state == "success"
    assert xcom_value(run, "hello") == 42

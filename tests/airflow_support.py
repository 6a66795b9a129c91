"""Run DAGs on real Airflow 3 inside pytest.

``dag.test()`` only re-syncs DAGs found in the DAGs folder; a DAG built inside a test must be serialized
into the metadata database first, with the same internal functions ``dag.test()`` uses
(measured on Airflow 3.3.2: docs/architecture.rst, "airflow-dag-test"). Both helpers need the
``airflow_db`` fixture.

Airflow moved the DAG bag between 3.0 and 3.3 (``airflow.models.dagbag`` on 3.0/3.1,
``airflow.dag_processing.dagbag`` from 3.2) and turned ``DagBag.sync_to_db`` into ``sync_bag_to_db`` (3.1):
tests import ``DagBag`` from here (``from tests.airflow_support import DagBag``) and never name either home.
The provider's own version differences live in ``airflow_provider_altinn_events/_compat.py``.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from airflow.sdk import DAG

REPO = Path(__file__).resolve().parents[1]
EXAMPLE_DAGS = REPO / "example_dags"


def __getattr__(name: str) -> Any:
    """``DagBag`` from wherever this Airflow keeps it (imported lazily: AIRFLOW_HOME is set first)."""
    if name == "DagBag":
        return _dagbag_module().DagBag
    raise AttributeError(name)


def _dagbag_module() -> Any:
    try:
        import airflow.dag_processing.dagbag as module  # Airflow 3.2+
    except ImportError:
        import airflow.models.dagbag as module  # type: ignore[no-redef]  # Airflow 3.0 and 3.1
    return module


def sync_dag(dag: DAG) -> None:
    """Serialize an in-test DAG into the metadata DB so that ``dag.test()`` can create a run for it."""
    from airflow.dag_processing.bundles.manager import DagBundlesManager

    module = _dagbag_module()
    DagBundlesManager().sync_bundles_to_db()
    bag = module.DagBag(dag_folder="/nonexistent", collect_dags=False)
    bag.bag_dag(dag)
    sync_bag_to_db = getattr(module, "sync_bag_to_db", None)
    if sync_bag_to_db is not None:  # Airflow 3.1+
        sync_bag_to_db(bag, "dags-folder", None)
    else:  # Airflow 3.0: its serializer drops an unset relative_fileloc, which the DB sync then needs
        if getattr(dag, "relative_fileloc", None) is None:
            dag.relative_fileloc = Path(dag.fileloc).name
        bag.sync_to_db("dags-folder", None)


def run_dag(dag: DAG, **test_kwargs: Any) -> Any:
    """Sync ``dag`` and run it with ``dag.test()``; returns the DagRun (check ``.state``)."""
    sync_dag(dag)
    return dag.test(**test_kwargs)


def load_example_dag(dag_id: str) -> DAG:
    """Parse ``example_dags/`` with a real DagBag and return one DAG; fails on any import error."""
    bag = _dagbag_module().DagBag(dag_folder=str(EXAMPLE_DAGS))
    assert not bag.import_errors, bag.import_errors
    dag = bag.get_dag(dag_id)
    assert dag is not None, f"{dag_id} not in {sorted(bag.dag_ids)}"
    return dag


def task_states(dag_run: Any) -> dict[str, str]:
    """``{task_id: state}`` of a finished DagRun (mapped tasks: the last map index wins)."""
    from airflow.utils.session import create_session

    with create_session() as session:
        return {ti.task_id: str(ti.state) for ti in dag_run.get_task_instances(session=session)}


def xcom_value(dag_run: Any, task_id: str, key: str = "return_value", map_index: int = -1) -> Any:
    """Read one XCom value of a finished DagRun from the metadata DB."""
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    with create_session() as session:
        row = (
            session.query(XComModel)
            .filter_by(
                dag_id=dag_run.dag_id, run_id=dag_run.run_id, task_id=task_id, key=key, map_index=map_index
            )
            .one_or_none()
        )
        if row is None:
            raise KeyError(f"no XCom {key!r} for {task_id!r} in run {dag_run.run_id!r}")
        return XComModel.deserialize_value(row)

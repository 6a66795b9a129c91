"""The demo's scenario as reusable steps on a running :class:`~scripts.stack.Stack`.

``scripts/demo.py`` (``make demo``) runs them and prints what they saw; the end-to-end suite
(``tests/e2e``) runs the same steps and asserts on what they return. Everything goes through Airflow's REST
API (run and task states, XCom) and the emulator's admin API, as a user or an operator would look.
"""

from __future__ import annotations

import gzip
import json
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from scripts.stack import Stack, StackError
from scripts.webhook_receiver import WebhookReceiver

RESOURCE = "urn:altinn:resource:ttd-altinn-events-automated-tests"
APP = ("ttd", "apps-test")
CASE_TYPE = "no.example.case.changed.v1"
POLL_INTERVAL = "1"

PUBLISH = "example_altinn_events_publish"
PUBLISH_APP = "example_altinn_events_publish_app_event"
SENSOR = "example_altinn_events_sensor"
SENSOR_POKE = "example_altinn_events_sensor_poke"
WATCHER = "example_altinn_events_watcher"
WATCHER_ASSET = "altinn_case_changes"
SUBSCRIPTIONS = "example_altinn_events_subscriptions"
INGEST = "example_altinn_events_ingest"
DAG_IDS = (PUBLISH, PUBLISH_APP, SENSOR, SENSOR_POKE, WATCHER, SUBSCRIPTIONS, INGEST)


def parse_time(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def demo_env(home: Path, poll_interval: str = POLL_INTERVAL) -> dict[str, str]:
    """Variables every component sees: fast polling for the examples, and where ingestion writes."""
    return {
        "AIRFLOW_VAR_ALTINN_EVENTS_EXAMPLE_POLL_INTERVAL": poll_interval,
        "AIRFLOW_VAR_ALTINN_EVENTS_INGEST_DESTINATION": (home / "lake").as_uri(),
    }


def new_stack(home: Path, log: Callable[[str], None] = print, **kwargs: Any) -> Stack:
    """The demo's stack: the default connection also carries a platform access token for ``ttd/apps-test``."""
    return Stack(home=home, extra_env=demo_env(home), platform_app=APP, log=log, **kwargs)


def read_ndjson(uri: str) -> list[dict[str, Any]]:
    """The events of one NDJSON(.gz) file given by its ``file://`` URI."""
    path = Path(unquote(urlsplit(uri).path))
    raw = path.read_bytes()
    if path.name.endswith(".gz"):
        raw = gzip.decompress(raw)
    return [json.loads(line) for line in raw.splitlines() if line.strip()]


class Scenario:
    """The demo's steps on a running :class:`Stack`; each returns what it saw (the e2e suite asserts on it)."""

    def __init__(self, stack: Stack, receiver: WebhookReceiver | None = None) -> None:
        self.stack = stack
        self.receiver = receiver
        self.published_case_ids: list[str] = []
        self.published_batch_ids: list[str] = []
        self.other_events: list[str] = []
        self.flushes = 0

    # ----------------------------------------------------------------- set-up
    def wait_parsed(self, dag_ids: tuple[str, ...] = DAG_IDS) -> None:
        for dag_id in dag_ids:
            self.stack.wait_for_dag(dag_id)
        errors = self.stack.import_errors()
        if errors:
            raise StackError(f"DAG import errors: {json.dumps(errors)[:2000]}")

    def watcher_cursor(self) -> Any:
        state = self.stack.asset_state(self.stack.asset_id(WATCHER_ASSET))
        return state.get(f"altinn_events.after:{RESOURCE}")

    def start_watcher(self, timeout: float = 150) -> Any:
        """Unpause the watcher DAG and wait until its trigger has stored its starting cursor."""
        self.stack.unpause(WATCHER)
        self.stack.wait_until(
            lambda: self.watcher_cursor() is not None,
            timeout,
            f"the watcher to start polling (triggerer log: {self.stack.logs / 'triggerer.log'})",
        )
        return self.watcher_cursor()

    def start_sensor(self) -> str:
        return self.stack.trigger(SENSOR)

    def wait_deferred(self, run_id: str, timeout: float = 150) -> None:
        self.stack.wait_task_state(SENSOR, run_id, "wait_for_batch_finished", ("deferred",), timeout)

    # ----------------------------------------------------------------- publishing
    def publish(self, logical_date: str | None = None, timeout: float = 180) -> tuple[str, str]:
        """Run the publish DAG; returns (run id, state) and records the ids it published."""
        run_id = self.stack.trigger(PUBLISH, logical_date=logical_date)
        state = self.stack.wait_run(PUBLISH, run_id, timeout)
        if state == "success":
            self.published_batch_ids += self.stack.xcom(PUBLISH, run_id, "publish_batch_finished")
            self.published_case_ids += self.stack.xcom(PUBLISH, run_id, "publish_changed_cases")
        return run_id, state

    def publish_outside_event(self, number: int) -> str:
        """A "case changed" event published by someone else (the emulator's admin API), e.g. during a push."""
        response = self.stack.emulator(
            "POST",
            "/_emulator/events/generate",
            json={
                "resource": RESOURCE,
                "count": 1,
                "type": CASE_TYPE,
                "source": f"https://cases.example.org/cases/{number}",
                "subject": "/organisation/991825827",
                "data": {"case": number, "status": "closed"},
            },
        )
        if response.status_code != 201:
            raise StackError(
                f"publishing an event on the emulator failed: {response.status_code} {response.text}"
            )
        event_id = str(response.json()["first_id"])
        self.published_case_ids.append(event_id)
        return event_id

    # ----------------------------------------------------------------- consuming
    def sensor_result(self, run_id: str) -> dict[str, Any]:
        """What the released sensor returned, and how fast its trigger fired after the event was published."""
        events = self.stack.xcom(SENSOR, run_id, "wait_for_batch_finished")
        tis = {ti["task_id"]: ti for ti in self.stack.task_instances(SENSOR, run_id)}
        sensor_ti = tis["wait_for_batch_finished"]
        published = max(parse_time(event["time"]) for event in events) if events else None
        fired = parse_time(sensor_ti["scheduled_when"]) if sensor_ti.get("scheduled_when") else None
        finished = parse_time(sensor_ti["end_date"]) if sensor_ti.get("end_date") else None
        return {
            "events": events,
            "after": self.stack.xcom(SENSOR, run_id, "wait_for_batch_finished", key="after"),
            "handled": self.stack.xcom(SENSOR, run_id, "handle_batches"),
            "fire_latency": None if published is None or fired is None else fired - published,
            "resume_seconds": None if fired is None or finished is None else finished - fired,
        }

    def watcher_runs(self) -> list[dict[str, Any]]:
        """Every watcher DAG run with the event ids its task handled (``None`` until it has finished)."""
        runs = []
        for run in self.stack.dag_runs(WATCHER):
            ids = None
            if run["state"] == "success":
                ids = self.stack.xcom(WATCHER, run["dag_run_id"], "process_case_changes")
            runs.append({"run_id": run["dag_run_id"], "state": run["state"], "ids": ids})
        return runs

    def watcher_ids(self) -> list[str]:
        return [event_id for run in self.watcher_runs() for event_id in run["ids"] or []]

    def unconsumed_ids(self) -> set[str]:
        """Altinn event ids in asset events that no DAG run has consumed (yet)."""
        events = self.stack.asset_events(self.stack.asset_id(WATCHER_ASSET))
        return {
            e["id"]
            for event in events
            if not event["created_dagruns"]
            for e in event["extra"]["payload"]["events"]
        }

    def wait_watcher(self, timeout: float = 180, flush_after: float = 45) -> list[dict[str, Any]]:
        """Wait until every case event published so far was handled by a finished watcher DAG run.

        Airflow 3.3 leaves an asset event that arrives while the scheduler is creating a run for the previous
        one unconsumed until the *next* asset event of the asset (docs/architecture.rst,
        "airflow-asset-events"). If, after ``flush_after``
        seconds, every missing event sits in such an unconsumed asset event, one more event is published so
        that a run picks them up (``self.flushes`` counts how often). Events the watcher never emitted are
        never "flushed": the wait then fails and says so.
        """
        deadline = time.monotonic() + timeout
        flush_at = time.monotonic() + flush_after

        def all_seen() -> bool:
            runs = self.watcher_runs()
            if any(run["state"] == "failed" for run in runs):
                raise StackError(f"a watcher DAG run failed (logs: {self.stack.logs / 'airflow'})")
            missing = set(self.published_case_ids) - {i for run in runs for i in run["ids"] or []}
            if missing and time.monotonic() > flush_at and missing <= self.unconsumed_ids():
                self.flushes += 1
                self.stack.log(
                    f"   {len(missing)} event(s) wait in an unconsumed asset event; publishing one more"
                )
                self.publish_outside_event(90000 + self.flushes)
                return False
            return not missing

        try:
            self.stack.wait_until(
                all_seen,
                deadline - time.monotonic(),
                "every case event to reach a watcher DAG run",
                interval=2,
            )
        except StackError as error:
            missing = set(self.published_case_ids) - set(self.watcher_ids())
            unconsumed = missing & self.unconsumed_ids()
            raise StackError(
                f"{error}: {len(missing)} event(s) never reached a run, {len(unconsumed)} of them in asset events "
                f"no run consumed, {len(missing) - len(unconsumed)} never emitted by the watcher "
                f"(triggerer log: {self.stack.logs / 'triggerer.log'})"
            ) from None
        return self.watcher_runs()

    def run_poke(self, timeout: float = 180) -> tuple[str, str, Any]:
        run_id = self.stack.trigger(SENSOR_POKE)
        state = self.stack.wait_run(SENSOR_POKE, run_id, timeout)
        return (
            run_id,
            state,
            self.stack.xcom(SENSOR_POKE, run_id, "count_cases") if state == "success" else None,
        )

    def run_subscriptions(self, push_number: int = 1000, timeout: float = 180) -> dict[str, Any]:
        """Subscribe the local receiver; once validated, publish one matching event and see it pushed."""
        assert self.receiver is not None, "the subscription step needs a webhook receiver"
        run_id = self.stack.trigger(SUBSCRIPTIONS, conf={"endpoint": self.receiver.url, "resource": RESOURCE})
        validated = self.receiver.wait_for(lambda r: bool(r.validations()), timeout)
        pushed_id = None
        if validated:
            time.sleep(1)  # the emulator marks the subscription validated right after our 200
            pushed_id = self.publish_outside_event(push_number)
        state = self.stack.wait_run(SUBSCRIPTIONS, run_id, timeout)
        if pushed_id is not None:
            self.receiver.wait_for(lambda r: any(e.get("id") == pushed_id for e in r.pushed()), 15)
        created = (
            self.stack.xcom(SUBSCRIPTIONS, run_id, "create_subscription") if state == "success" else None
        )
        return {
            "run_id": run_id,
            "state": state,
            "subscription": created,
            "validations": len(self.receiver.validations()),
            "pushed_id": pushed_id,
            "pushed": [e.get("id") for e in self.receiver.pushed()],
        }

    def run_ingest(self, scheduled: bool, timeout: float = 240) -> dict[str, Any]:
        """The scheduled run that unpausing the hourly DAG creates, or a manual run after it."""
        if scheduled:
            self.stack.unpause(INGEST)
            self.stack.wait_until(
                lambda: bool(self.stack.dag_runs(INGEST)), 60, "the scheduled ingestion run"
            )
            run_id = self.stack.dag_runs(INGEST)[0]["dag_run_id"]
        else:
            run_id = self.stack.trigger(INGEST)
        state = self.stack.wait_run(INGEST, run_id, timeout)
        summaries = []
        if state == "success":
            mapped = self.stack.api("GET", f"/dags/{INGEST}/dagRuns/{run_id}/taskInstances/ingest/listMapped")
            for ti in sorted(mapped["task_instances"], key=lambda ti: ti["map_index"]):
                summaries.append(self.stack.xcom(INGEST, run_id, "ingest", map_index=ti["map_index"]))
        files = {uri: read_ndjson(uri) for summary in summaries for uri in summary["files"]}
        return {"run_id": run_id, "state": state, "summaries": summaries, "files": files}

    def dag_run_table(self) -> list[tuple[str, str, str, str]]:
        rows = []
        for dag_id in DAG_IDS:
            for run in self.stack.dag_runs(dag_id):
                rows.append((dag_id, run["run_type"], run["state"], run["dag_run_id"]))
        return rows

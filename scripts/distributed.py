"""``make distributed``: the provider on a distributed Airflow, with a triggerer killed and one frozen.

Starts (all on 127.0.0.1, under ``.distributed/``, wiped first) the topology ``DISTRIBUTED`` of
scripts/stack.py: PostgreSQL (``pg_ctl``, as ``postgres``), Redis, the emulator, and Airflow's api-server,
scheduler, dag-processor, two triggerers and two Celery workers, each with its own ``AIRFLOW_HOME`` and
configured only through environment variables, as if on its own host. Then:

1. ``--runs`` deferrable sensor runs (scripts/distributed_dags/), each waiting for its own event;
2. a burst of ``--events`` events for an ``AssetWatcher``, in three parts, with the sensors' events;
3. after the first part, the triggerer that holds the watcher is killed with SIGKILL (both triggerers hold
   triggers then); after the second part, once it is back, the one that holds the watcher now is frozen
   with SIGSTOP past the triggerer health threshold, then resumed with SIGCONT;
4. waits until every sensor run finished and every event reached an asset event, and prints: runs
   succeeded, events published / delivered / lost / duplicated (with the reason of each duplicate),
   failover times, event-to-DAG-run latency p50/p99, token grants and exchanges per component, peak memory.

Exits 1 on any lost event or failed sensor run (duplicates are reported: delivery is at least once,
docs/guides/distributed.rst). Every process it started is stopped, also on Ctrl-C or a failure.
On a fresh Debian as root it installs ``postgresql`` and ``redis-server`` with apt when they are missing.
"""

from __future__ import annotations

import argparse
import atexit
import glob
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import threading
import time
from collections import Counter
from contextlib import suppress
from datetime import datetime
from pathlib import Path
from typing import Any, NoReturn

if __package__ in (None, ""):  # run as a script: make ``scripts`` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from scripts.distributed_dags.altinn_distributed import (
    RELEASE_TYPE,
    SENSOR_RESOURCE,
    WATCH_RESOURCE,
    WATCH_TYPE,
)
from scripts.stack import DISTRIBUTED, REPO, Component, Postgres, Redis, Stack, StackError, shared_secrets

SENSOR = "altinn_distributed_sensor"
WATCHER = "altinn_distributed_watcher"
ASSET = "altinn_distributed_changes"
SENSOR_TASK = "wait_for_release"
TRIGGERERS = ("triggerer-1", "triggerer-2")
TOKEN_LINE = "Got an Altinn token"
HEALTH_THRESHOLD = 30  # Airflow's default [triggerer] triggerer_health_check_threshold, seconds
FREEZE_PAST_THRESHOLD = 13

T0 = time.monotonic()


def say(message: str) -> None:
    print(f"[{time.monotonic() - T0:6.1f}s] {message}", flush=True)


def parse_time(text: Any) -> float:
    if isinstance(text, datetime):
        return text.timestamp()
    return datetime.fromisoformat(str(text).replace("Z", "+00:00")).timestamp()


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


def ensure_services() -> None:
    """Install Debian's ``postgresql`` and ``redis-server`` if absent (needs root and apt)."""
    have_pg = bool(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl")) or shutil.which("pg_ctl") is not None
    have_redis = shutil.which("redis-server") is not None
    missing = [name for name, have in (("postgresql", have_pg), ("redis-server", have_redis)) if not have]
    if not missing:
        return
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        raise SystemExit(f"make distributed needs {' and '.join(missing)}: install them (Debian: apt-get)")
    say(f"installing {' '.join(missing)} with apt-get")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run(["apt-get", "update", "-qq"], check=True, env=env)
    subprocess.run(
        ["apt-get", "install", "-y", "-qq", *missing], check=True, env=env, stdout=subprocess.DEVNULL
    )


class MemorySampler(threading.Thread):
    """Peak total resident memory of every process the stack started (those carrying its marker)."""

    def __init__(self, stack: Stack) -> None:
        super().__init__(daemon=True)
        self.stack = stack
        self.peak = 0
        self.done = threading.Event()

    def run(self) -> None:
        while not self.done.wait(2):
            total = 0
            for pid in self.stack.leftover_processes():
                try:
                    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                        if line.startswith("VmRSS:"):
                            total += int(line.split()[1]) * 1024
                except OSError:
                    continue
            self.peak = max(self.peak, total)


class Publisher(threading.Thread):
    """Publishes in the background; :meth:`finish` joins it and raises what went wrong there."""

    def __init__(self, work: Any) -> None:
        super().__init__(name="publisher", daemon=True)
        self.work = work
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            self.work()
        except BaseException as error:  # raised again by finish()
            self.error = error

    def finish(self) -> None:
        self.join()
        if self.error is not None:
            raise StackError(f"publishing the watcher's events failed: {self.error}")


class Distributed:
    """The scenario's steps on a running distributed :class:`Stack`."""

    def __init__(self, stack: Stack, runs: int, events: int, freeze_seconds: float) -> None:
        self.stack = stack
        self.runs = runs
        self.events = events
        self.freeze_seconds = freeze_seconds
        self.run_ids: dict[str, str] = {}  # subject -> run id
        self.published: list[str] = []  # watcher event ids
        self.released: dict[str, str] = {}  # subject -> event id
        self.windows: dict[str, tuple[float, float]] = {}  # fault name -> (start, end) wall clock
        self.figures: dict[str, Any] = {}
        self.steady_subjects: list[str] = []

    # ----------------------------------------------------------------- the metadata DB
    def trigger_hosts(self) -> dict[str, list[str]]:
        """Which triggerer (its host name) holds which trigger (``classpath``)."""
        rows = self.stack.db_rows(
            "SELECT t.classpath, j.hostname FROM trigger t LEFT JOIN job j ON j.id = t.triggerer_id"
        )
        hosts: dict[str, list[str]] = {}
        for classpath, host in rows:
            hosts.setdefault(host or "unassigned", []).append(classpath.rsplit(".", 1)[-1])
        return hosts

    def watcher_host(self) -> str | None:
        rows = self.stack.db_rows(
            "SELECT j.hostname FROM trigger t LEFT JOIN job j ON j.id = t.triggerer_id"
            " WHERE t.classpath LIKE ?",
            ("%AltinnEventsWatcherTrigger",),
        )
        return rows[0][0] if rows else None

    def sensors_on(self, host: str) -> int:
        rows = self.stack.db_rows(
            "SELECT count(*) FROM trigger t JOIN job j ON j.id = t.triggerer_id"
            " WHERE j.hostname = ? AND t.classpath LIKE ?",
            (host, "%AltinnEventsSensorTrigger"),
        )
        return int(rows[0][0])

    def triggerer_job(self, host: str) -> int:
        """The newest triggerer job of ``host`` (0 if none): a restarted triggerer is a new job."""
        rows = self.stack.db_rows(
            "SELECT max(id) FROM job WHERE job_type = 'TriggererJob' AND hostname = ?", (host,)
        )
        return int(rows[0][0] or 0)

    def heartbeat_age(self, job_id: int) -> float:
        """Seconds since the job's last heartbeat: the failover clock starts there, not at the fault."""
        rows = self.stack.db_rows("SELECT latest_heartbeat FROM job WHERE id = ?", (job_id,))
        return round(time.time() - parse_time(rows[0][0]), 1) if rows and rows[0][0] else float("nan")

    # ----------------------------------------------------------------- publishing
    def publish_watched(self, count: int, seconds: float = 0.0) -> None:
        """``count`` events for the watcher, one call each, spread evenly over ``seconds``."""
        started = time.monotonic()
        for number in range(count):
            time.sleep(max(0.0, started + seconds * number / max(count, 1) - time.monotonic()))
            response = self.stack.emulator(
                "POST",
                "/_emulator/events/generate",
                json={"resource": WATCH_RESOURCE, "count": 1, "type": WATCH_TYPE, "subject": "/burst"},
            )
            if response.status_code != 201:
                raise StackError(f"publishing failed: {response.status_code} {response.text}")
            self.published.append(str(response.json()["first_id"]))

    def publish_in_background(self, count: int, seconds: float) -> Publisher:
        """:meth:`publish_watched` in a thread (events keep coming while a triggerer dies)."""
        publisher = Publisher(lambda: self.publish_watched(count, seconds))
        publisher.start()
        return publisher

    def wait_delivered(self, timeout: float) -> None:
        asset_id = self.stack.asset_id(ASSET)

        def delivered() -> bool:
            return set(self.published) <= set(self.delivered_ids(self.stack.asset_events(asset_id)))

        self.stack.wait_until(delivered, timeout, "the events published so far to reach asset events", 1)

    def release(self, subjects: list[str]) -> None:
        for subject in subjects:
            response = self.stack.emulator(
                "POST",
                "/_emulator/events/generate",
                json={"resource": SENSOR_RESOURCE, "count": 1, "type": RELEASE_TYPE, "subject": subject},
            )
            if response.status_code != 201:
                raise StackError(f"publishing failed: {response.status_code} {response.text}")
            self.released[subject] = str(response.json()["first_id"])

    # ----------------------------------------------------------------- steps
    def prepare(self) -> None:
        for dag_id in (SENSOR, WATCHER):
            self.stack.wait_for_dag(dag_id, timeout=240)
        errors = self.stack.import_errors()
        if errors:
            raise StackError(f"DAG import errors: {json.dumps(errors)[:2000]}")
        self.stack.unpause(WATCHER)
        asset_id = self.stack.asset_id(ASSET)
        self.stack.wait_until(
            lambda: bool(self.stack.asset_state(asset_id)), 240, "the watcher to store its first cursor"
        )

    def start_sensors(self) -> None:
        self.stack.unpause(SENSOR)
        for number in range(self.runs):
            subject = f"/distributed/run/{number}"
            run = self.stack.api(
                "POST", f"/dags/{SENSOR}/dagRuns", json={"logical_date": None, "conf": {"subject": subject}}
            )
            self.run_ids[subject] = str(run["dag_run_id"])

        def all_deferred() -> bool:
            states = Counter(self.sensor_states().values())
            if states.get("failed") or states.get("upstream_failed"):
                raise StackError(f"sensor tasks failed before deferring: {dict(states)}")
            return states.get("deferred", 0) == self.runs

        self.stack.wait_until(all_deferred, 300, "every sensor to defer", interval=2)

    def sensor_states(self) -> dict[str, str | None]:
        rows = self.stack.db_rows(
            "SELECT run_id, state FROM task_instance WHERE dag_id = ? AND task_id = ?", (SENSOR, SENSOR_TASK)
        )
        return {run_id: state for run_id, state in rows}

    def wait_both_busy(self) -> dict[str, int]:
        """Wait (briefly) until both triggerers hold triggers; returns triggers per triggerer."""
        counts: dict[str, int] = {}

        def both() -> bool:
            counts.clear()
            counts.update({host: len(v) for host, v in self.trigger_hosts().items()})
            return all(counts.get(name, 0) > 0 for name in TRIGGERERS)

        try:
            self.stack.wait_until(both, 60, "both triggerers to hold triggers", interval=1)
        except StackError:
            say(f"   not both triggerers hold triggers: {counts} (the kill goes ahead)")
        return counts

    def wait_reassigned(self, away_from: str, timeout: float) -> float:
        """Seconds until the watcher's trigger runs on another (healthy) triggerer than ``away_from``."""
        started = time.time()
        self.stack.wait_until(
            lambda: (self.watcher_host() or away_from) != away_from,
            timeout,
            f"the watcher's trigger to leave {away_from}",
            interval=0.5,
        )
        return time.time() - started

    def steady(self, subjects: list[str], part: int) -> None:
        """Events while every component is up: the latency a user sees on a good day."""
        start = time.time()
        self.release(subjects)
        self.publish_watched(part, seconds=10)
        self.wait_delivered(120)
        self.windows["steady"] = (start, time.time())

    def kill(self, subjects: list[str], part: int) -> None:
        """SIGKILL the triggerer holding the watcher while events keep coming; restart it once failed over."""
        start = time.time()
        publisher = self.publish_in_background(part, seconds=30)
        time.sleep(3)
        victim = self.watcher_host() or TRIGGERERS[0]
        sensors = self.sensors_on(victim)
        self.figures["kill"] = {"triggerer": victim, "sensor_triggers_on_it": sensors}
        say(f"-> SIGKILL {victim} (holds the watcher and {sensors} sensor triggers); events keep coming")
        killed_job = self.triggerer_job(victim)
        self.figures["kill"]["heartbeat_age_seconds"] = self.heartbeat_age(killed_job)
        killed = time.time()
        self.stack.signal_component(victim, signal.SIGKILL)
        self.release(subjects)
        self.wait_reassigned(victim, 180)
        failover = time.time() - killed
        self.figures["kill"]["failover_seconds"] = failover
        say(
            f"   the watcher runs on {self.watcher_host()} {failover:.1f} s after the kill; restarting {victim}"
        )
        self.stack.start_component(victim)
        self.stack.wait_until(lambda: self.triggerer_job(victim) > killed_job, 180, f"{victim} to come back")
        publisher.finish()
        self.windows["kill"] = (start, time.time() + 10)
        say(f"   {victim} is back")

    def freeze(self, subjects: list[str], part: int) -> None:
        """SIGSTOP the triggerer holding the watcher past the health threshold, then SIGCONT it."""
        start = time.time()
        publisher = self.publish_in_background(part, seconds=self.freeze_seconds + 15)
        time.sleep(3)
        victim = self.watcher_host() or TRIGGERERS[1]
        sensors = self.sensors_on(victim)
        self.figures["freeze"] = {"triggerer": victim, "sensor_triggers_on_it": sensors}
        say(
            f"-> SIGSTOP {victim} for {self.freeze_seconds:.0f} s (holds the watcher and {sensors} sensor triggers)"
        )
        self.figures["freeze"]["heartbeat_age_seconds"] = self.heartbeat_age(self.triggerer_job(victim))
        stopped = time.time()
        self.stack.signal_component(victim, signal.SIGSTOP)
        try:
            self.release(subjects)
            self.wait_reassigned(victim, self.freeze_seconds + 120)
            self.figures["freeze"]["failover_seconds"] = time.time() - stopped
            say(
                f"   the watcher runs on {self.watcher_host()} {time.time() - stopped:.1f} s after the freeze"
            )
            time.sleep(max(0.0, stopped + self.freeze_seconds - time.time()))
        finally:
            self.stack.signal_component(victim, signal.SIGCONT)
        resumed = time.time()
        self.figures["freeze"]["resumed_at"] = resumed
        self.figures["freeze"]["frozen_seconds"] = resumed - stopped
        say(f"-> SIGCONT {victim} after {resumed - stopped:.0f} s; events keep coming")
        publisher.finish()
        time.sleep(5)
        self.windows["freeze"] = (start, time.time())

    def wait_done(self) -> None:
        def finished() -> bool:
            states = self.sensor_states()
            return all(
                state in ("success", "failed", "upstream_failed", "skipped") for state in states.values()
            )

        self.stack.wait_until(finished, 300, "every sensor run to finish", interval=2)
        asset_id = self.stack.asset_id(ASSET)
        try:
            self.wait_delivered(180)
        except StackError as error:
            say(f"   {error}")
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:  # let the scheduler create runs for the last asset events
            runs = self.stack.db_rows("SELECT state FROM dag_run WHERE dag_id = ?", (WATCHER,))
            if runs and all(state in ("success", "failed") for (state,) in runs):
                events = self.stack.asset_events(asset_id)
                if all(event["created_dagruns"] for event in events[:-1]):
                    break
            time.sleep(3)

    @staticmethod
    def delivered_ids(asset_events: list[dict[str, Any]]) -> list[str]:
        return [str(e["id"]) for event in asset_events for e in event["extra"]["payload"]["events"]]

    # ----------------------------------------------------------------- figures
    def reason(self, when: float) -> str:
        kill = self.windows.get("kill")
        freeze = self.windows.get("freeze")
        if kill and kill[0] <= when <= kill[1]:
            victim = self.figures["kill"]["triggerer"]
            return (
                f"SIGKILL of {victim}: the batch emitted just before the kill, its cursor not yet stored, "
                "came again from the stored cursor on the other triggerer"
            )
        resumed = self.figures.get("freeze", {}).get("resumed_at", 0.0)
        if freeze and freeze[0] <= when < resumed:
            victim = self.figures["freeze"]["triggerer"]
            return (
                f"SIGSTOP of {victim}: the other triggerer took the trigger over from the cursor {victim} "
                "had last stored, and emitted again what came after it"
            )
        if freeze and resumed <= when <= freeze[1]:
            victim = self.figures["freeze"]["triggerer"]
            return (
                f"SIGCONT of {victim}: resumed, it still ran the trigger it no longer owned until it noticed, "
                "and Airflow accepted its events"
            )
        return "outside the fault windows"

    def collect(self) -> dict[str, Any]:
        stack = self.stack
        figures = self.figures
        states = self.sensor_states()
        figures["sensor_runs"] = {
            "started": self.runs,
            "succeeded": sum(1 for s in states.values() if s == "success"),
            "failed": sum(1 for s in states.values() if s != "success"),
        }
        sensor_latency, sensor_steady = [], []
        steady_subjects = set(self.steady_subjects)
        for subject, run_id in self.run_ids.items():
            if states.get(run_id) != "success":
                continue
            with_events = stack.xcom(SENSOR, run_id, SENSOR_TASK)
            ti = next(t for t in stack.task_instances(SENSOR, run_id) if t["task_id"] == SENSOR_TASK)
            if with_events and ti.get("end_date"):
                sensor_latency.append(parse_time(ti["end_date"]) - parse_time(with_events[0]["time"]))
                if subject in steady_subjects:
                    sensor_steady.append(sensor_latency[-1])
            if not with_events or with_events[0]["subject"] != subject:
                figures["sensor_runs"]["failed"] += 1
                figures["sensor_runs"]["succeeded"] -= 1
                say(f"   run {run_id} was released by the wrong event: {with_events}")
        asset_events = stack.asset_events(stack.asset_id(ASSET))
        seen: dict[str, list[dict[str, Any]]] = {}
        for event in asset_events:
            for altinn_event in event["extra"]["payload"]["events"]:
                seen.setdefault(str(altinn_event["id"]), []).append({**event, "altinn": altinn_event})
        published = set(self.published)
        lost = sorted(published - set(seen))
        duplicates = {event_id: copies for event_id, copies in seen.items() if len(copies) > 1}
        reasons = Counter(self.reason(parse_time(copies[-1]["timestamp"])) for copies in duplicates.values())
        run_times = {
            run_id: {"state": state, "queued_at": queued_at}
            for run_id, state, queued_at in stack.db_rows(
                "SELECT run_id, state, queued_at FROM dag_run WHERE dag_id = ?", (WATCHER,)
            )
        }
        latency, steady = [], []
        window = self.windows.get("steady", (0.0, 0.0))
        for copies in seen.values():
            first = copies[0]
            runs = [run_times[r] for r in first["created_dagruns"] if r in run_times]
            if runs and runs[0].get("queued_at"):
                published_at = parse_time(first["altinn"]["time"])
                latency.append(parse_time(runs[0]["queued_at"]) - published_at)
                if window[0] <= published_at <= window[1]:
                    steady.append(latency[-1])
        figures["watcher"] = {
            "published": len(published),
            "delivered": len(published & set(seen)),
            "lost": len(lost),
            "lost_ids": lost[:20],
            "duplicated": len(duplicates),
            "duplicate_reasons": dict(reasons),
            "asset_events": len(asset_events),
            "dag_runs": len(run_times),
            "dag_runs_succeeded": sum(1 for run in run_times.values() if run["state"] == "success"),
        }
        figures["latency"] = {
            "watcher_event_to_dag_run": _spread(latency),
            "watcher_event_to_dag_run_steady": _spread(steady),
            "sensor_event_to_task_done": _spread(sensor_latency),
            "sensor_event_to_task_done_steady": _spread(sensor_steady),
        }
        figures["tokens"] = self.token_use()
        return figures

    def token_use(self) -> dict[str, Any]:
        """Token fetches (one grant + one exchange each) per component, from the provider's log line,
        checked against the emulator's own counters."""
        per_component: dict[str, int] = {}
        for component in DISTRIBUTED:
            count = 0
            files = [self.stack.logs / f"{component.name}.log"]
            files += [
                Path(p)
                for p in glob.glob(
                    str(self.stack.home / component.name / "logs" / "**" / "*"), recursive=True
                )
            ]
            for path in files:
                if path.is_file():
                    count += path.read_text(errors="replace").count(TOKEN_LINE)
            per_component[component.name] = count
        stats = self.stack.emulator_stats()
        return {
            "per_component": per_component,
            "emulator_grants": stats["token_grants"],
            "emulator_exchanges": stats["token_exchanges"],
            "sum_of_components": sum(per_component.values()),
        }


def _spread(values: list[float]) -> dict[str, Any]:
    if not values:
        return {"n": 0}
    return {
        "n": len(values),
        "p50": round(statistics.median(values), 2),
        "p99": round(percentile(values, 0.99), 2),
        "max": round(max(values), 2),
    }


def print_summary(figures: dict[str, Any], took: float, peak: int) -> None:
    sensor = figures["sensor_runs"]
    watcher = figures["watcher"]
    tokens = figures["tokens"]
    kill = figures.get("kill", {})
    freeze = figures.get("freeze", {})
    lat = figures["latency"]
    lines = [
        "",
        "=== make distributed: summary ===",
        "topology: PostgreSQL, Redis, CeleryExecutor (worker-1, worker-2), triggerer-1, triggerer-2, scheduler,"
        " dag-processor, api-server, emulator; one AIRFLOW_HOME each, environment only",
        f"sensor runs: {sensor['succeeded']}/{sensor['started']} succeeded, {sensor['failed']} failed"
        f" ({kill.get('sensor_triggers_on_it', '?')} had their trigger on the killed triggerer,"
        f" {freeze.get('sensor_triggers_on_it', '?')} on the frozen one)",
        f"watcher events: published {watcher['published']}, delivered {watcher['delivered']},"
        f" lost {watcher['lost']}, duplicated {watcher['duplicated']}"
        f" ({watcher['asset_events']} asset events, {watcher['dag_runs_succeeded']}/{watcher['dag_runs']} DAG runs succeeded)",
    ]
    for reason, count in watcher["duplicate_reasons"].items():
        lines.append(f"  duplicate x{count}: {reason}")
    if watcher["lost"]:
        lines.append(f"  lost ids (first 20): {watcher['lost_ids']}")
    lines += [
        f"failover after SIGKILL of {kill.get('triggerer')}: {kill.get('failover_seconds', float('nan')):.1f} s;"
        f" after SIGSTOP of {freeze.get('triggerer')}: {freeze.get('failover_seconds', float('nan')):.1f} s"
        f" (frozen {freeze.get('frozen_seconds', float('nan')):.0f} s); their last heartbeats were"
        f" {kill.get('heartbeat_age_seconds', float('nan')):.1f} s and"
        f" {freeze.get('heartbeat_age_seconds', float('nan')):.1f} s old at the fault",
        "latency event -> watcher DAG run queued, all components up: "
        + _fmt(lat["watcher_event_to_dag_run_steady"]),
        f"  all events, the fault windows included: {_fmt(lat['watcher_event_to_dag_run'])}",
        "latency event -> sensor task done, all components up: "
        + _fmt(lat["sensor_event_to_task_done_steady"]),
        f"  all runs, the fault windows included: {_fmt(lat['sensor_event_to_task_done'])}",
        "token fetches (grant + exchange) per component: "
        + ", ".join(f"{name} {count}" for name, count in tokens["per_component"].items()),
        f"  emulator counted {tokens['emulator_grants']} grants and {tokens['emulator_exchanges']} exchanges"
        f" (components' logs: {tokens['sum_of_components']})",
        f"took {took / 60:.1f} min; peak memory of all processes {peak / 2**30:.1f} GiB",
    ]
    print("\n".join(lines), flush=True)


def _fmt(spread: dict[str, Any]) -> str:
    if not spread.get("n"):
        return "no samples"
    return (
        f"p50 {spread['p50']:.2f} s, p99 {spread['p99']:.2f} s, max {spread['max']:.2f} s (n={spread['n']})"
    )


#: ``--mismatch``: one setting that every component must share, given a different value on some of them, and
#: what to look for in the logs then (docs/guides/distributed.rst quotes what this prints)
MISMATCH = {
    "jwt": (
        ("api-server",),
        "AIRFLOW__API_AUTH__JWT_SECRET",
        ("Invalid auth token", "Signature verification", "status_code=403"),
    ),
    "fernet": (("triggerer-1", "triggerer-2"), "AIRFLOW__CORE__FERNET_KEY", ("InvalidToken", "Fernet")),
}


def reproduce_mismatch(stack: Stack, name: str) -> int:
    """Start one sensor run (and the watcher) on a stack with a mismatched setting; print the errors logged."""
    scenario = Distributed(stack, 1, 0, 0)
    for dag_id in (SENSOR, WATCHER):
        stack.wait_for_dag(dag_id, timeout=240)
    stack.unpause(WATCHER)
    stack.unpause(SENSOR)
    run = stack.api("POST", f"/dags/{SENSOR}/dagRuns", json={"logical_date": None, "conf": {"subject": "/x"}})
    say(f"   started sensor run {run['dag_run_id']}; waiting 120 s for errors")
    needles = MISMATCH[name][2]
    found: list[str] = []

    def errors() -> bool:
        found.clear()
        for path in sorted(stack.home.rglob("*.log")):
            for line in path.read_text(errors="replace").splitlines():
                if any(needle in line for needle in needles):
                    found.append(f"{path.relative_to(stack.home)}: {line.strip()[:400]}")
        return len(found) >= 3

    with suppress(StackError):
        stack.wait_until(errors, 120, "errors", interval=5)
    say(f"   sensor task state: {scenario.sensor_states()}")
    for line in found[:8]:
        print(line)
    return 0 if found else 1


def reproduce_secret_key_mismatch() -> int:
    """``[api] secret_key`` differs between the api-server and a worker's log server (in one process).

    A worker's log server binds every interface, so it is not started here; its app is called in-process
    with the token the api-server's log reader signs (airflow/utils/log/file_task_handler.py).
    """
    from airflow.api_fastapi.auth.tokens import JWTGenerator, get_signing_key
    from airflow.configuration import conf
    from airflow.utils.serve_logs.log_server import create_app
    from fastapi.testclient import TestClient

    conf.set("api", "secret_key", "the-secret-key-of-the-worker")
    app = create_app()
    conf.set("api", "secret_key", "the-secret-key-of-the-api-server")
    token = JWTGenerator(
        secret_key=get_signing_key("api", "secret_key"),
        algorithm="HS512",
        private_key=None,  # as the api-server's log reader does: the secret key signs
        issuer=None,
        valid_for=30,
        audience="task-instance-logs",
    ).generate({"filename": "dag_id=x/run_id=y/task_id=z/attempt=1.log"})
    response = TestClient(app).get(
        "/log/dag_id=x/run_id=y/task_id=z/attempt=1.log", headers={"Authorization": token}
    )
    print(f"the worker's log server answered {response.status_code} {response.text}")
    return 0 if response.status_code == 403 else 1


def _terminate(signum: int, frame: Any) -> NoReturn:
    raise KeyboardInterrupt(f"signal {signum}")


def new_stack(home: Path, poll_interval: str = "1") -> Stack:
    """The distributed topology with the shared settings every component gets from its environment."""
    worker_env = {"AIRFLOW__CELERY__WORKER_CONCURRENCY": "4"}
    topology = tuple(
        Component(c.name, c.command, {**c.env, **worker_env}) if c.name.startswith("worker") else c
        for c in DISTRIBUTED
    )
    env = {
        **shared_secrets(),
        "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor",
        "AIRFLOW__CORE__HOSTNAME_CALLABLE": "scripts.distributed_host.hostname",
        "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "True",
        "AIRFLOW__SCHEDULER__MAX_DAGRUNS_PER_LOOP_TO_SCHEDULE": "50",
        "AIRFLOW_VAR_ALTINN_DISTRIBUTED_POLL_INTERVAL": poll_interval,
        "PYTHONPATH": os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH", "")) if p),
    }
    return Stack(
        home=home,
        dags_folder=REPO / "scripts" / "distributed_dags",
        extra_env=env,
        topology=topology,
        services=(Postgres(), Redis()),
        own_homes=True,
        log=say,
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=35, help="deferrable sensor runs (default 35)")
    parser.add_argument("--events", type=int, default=300, help="events for the watcher (default 300)")
    parser.add_argument("--home", type=Path, default=REPO / ".distributed", help="where everything lives")
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    parser.add_argument(
        "--mismatch",
        choices=(*MISMATCH, "secret_key"),
        help="instead of the scenario: give one shared setting a different value and print the errors",
    )
    args = parser.parse_args(argv)
    if args.mismatch == "secret_key":
        return reproduce_secret_key_mismatch()
    ensure_services()
    shutil.rmtree(args.home, ignore_errors=True)
    args.home.mkdir(parents=True)
    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, _terminate)
    stack = new_stack(args.home)
    if args.mismatch:
        components, variable, _ = MISMATCH[args.mismatch]
        other = shared_secrets()[variable]
        stack.topology = tuple(
            Component(c.name, c.command, {**c.env, variable: other}) if c.name in components else c
            for c in stack.topology
        )
        say(f"-> {variable} differs on {', '.join(components)}")
    atexit.register(stack.stop)
    scenario = Distributed(stack, args.runs, args.events, HEALTH_THRESHOLD + FREEZE_PAST_THRESHOLD)
    sampler = MemorySampler(stack)
    code = 1
    try:
        say("-> start PostgreSQL, Redis, the emulator and Airflow (7 components, one AIRFLOW_HOME each)")
        stack.start()
        sampler.start()
        say(f"   api-server {stack.api_url}, emulator {stack.emulator_url}, homes under {args.home}")
        if args.mismatch:
            code = reproduce_mismatch(stack, args.mismatch)
            return code
        scenario.prepare()
        say("   the watcher polls")
        scenario.start_sensors()
        counts = scenario.wait_both_busy()
        say(f"   {args.runs} sensors deferred; triggers per triggerer: {counts}")
        subjects = list(scenario.run_ids)
        thirds = [subjects[i::3] for i in range(3)]
        scenario.steady_subjects = thirds[0]
        part = args.events // 5
        say(f"-> all up: {part} watcher events over 10 s, {len(thirds[0])} sensor releases")
        scenario.steady(thirds[0], part)
        scenario.kill(thirds[1], 2 * part)
        scenario.freeze(thirds[2], args.events - 3 * part)
        say("-> wait for every sensor run and every event")
        scenario.wait_done()
        figures = scenario.collect()
        sampler.done.set()
        figures["took_seconds"] = time.monotonic() - T0
        figures["peak_memory_bytes"] = sampler.peak
        print_summary(figures, time.monotonic() - T0, sampler.peak)
        if args.json:
            args.json.write_text(json.dumps(figures, indent=2, default=str))
        failed = figures["sensor_runs"]["failed"] > 0 or figures["watcher"]["lost"] > 0
        code = 1 if failed else 0
        if failed:
            print(f"FAILED: lost events or failed sensor runs (logs: {stack.logs}, homes: {args.home})")
    except (Exception, KeyboardInterrupt) as error:
        print(f"FAILED: {type(error).__name__}: {error} (logs: {stack.logs})", flush=True)
        if not isinstance(error, (StackError, KeyboardInterrupt)):
            import traceback

            traceback.print_exc()
    finally:
        sampler.done.set()
        say("-> stop everything")
        stack.stop()
        left = stack.leftover_processes()
        if left:
            print(f"processes left behind: {left}")
            code = 1
    return code


if __name__ == "__main__":
    sys.exit(main())

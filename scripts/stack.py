"""Start the emulator and real Airflow 3 components on 127.0.0.1, drive them over REST, stop them all.

Used by ``make demo`` (scripts/demo.py) and by the end-to-end suite (tests/e2e). Everything lives under one
throwaway ``AIRFLOW_HOME``; every process is started in its own session (``setsid``) so that stopping it
also stops its children, and ``Stack.stop()`` leaves nothing behind even after a failure.

The settings are the ones measured to work on Airflow 3.3.2 (SQLite, LocalExecutor, simple auth manager
with every user an admin so the REST API needs no token).
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import closing, contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
COMPONENTS = ("api-server", "scheduler", "dag-processor", "triggerer")
SCOPES = "altinn:events.subscribe altinn:events.publish"
MARKER = "ALTINN_STACK_HOME"


class StackError(RuntimeError):
    """A step of the stack failed; the message names the step and where its log is."""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _generate_key() -> tuple[str, str]:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    public = (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    return private, public


@dataclass
class Stack:
    """The emulator plus Airflow's api-server, scheduler, dag-processor and triggerer.

    :param home: the throwaway ``AIRFLOW_HOME``; logs go to ``home/logs/<component>.log``.
    :param dags_folder: the DAG folder the dag-processor parses (the example DAGs by default).
    :param extra_env: more environment for every Airflow component (e.g. ``AIRFLOW_VAR_...``).
    :param emulator_args: more CLI flags for ``altinn-events-emulator``.
    """

    home: Path
    dags_folder: Path = REPO / "example_dags"
    extra_env: dict[str, str] = field(default_factory=dict)
    emulator_args: list[str] = field(default_factory=list)
    connection_extra: dict[str, Any] = field(default_factory=dict)
    platform_app: tuple[str, str] | None = None
    log: Callable[[str], None] = print

    api_port: int = 0
    emulator_url: str = ""
    client_id: str = ""
    key_id: str = ""
    private_key_pem: str = field(default="", repr=False)
    platform_access_token: str = field(default="", repr=False)
    _procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict, repr=False)

    # ----------------------------------------------------------------- lifecycle

    @property
    def logs(self) -> Path:
        return self.home / "logs"

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.api_port}"

    def start(self) -> None:
        self.home.mkdir(parents=True, exist_ok=True)
        self.logs.mkdir(exist_ok=True)
        self.start_emulator()
        self.register_client()
        if self.platform_app is not None:
            self.platform_access_token = self.issue_platform_access_token(*self.platform_app)
        self.migrate()
        for component in COMPONENTS:
            self.start_component(component)
        self.wait_api_healthy()

    def stop(self) -> None:
        """Stop every component (Airflow first, the emulator last), then anything left under this home."""
        for name in sorted(self._procs, key=lambda n: n == "emulator"):
            try:
                self.stop_process(name)
            except Exception as error:  # keep stopping the others
                self.log(f"could not stop {name}: {error}")
        for pid in self.leftover_processes():
            with suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)

    def leftover_processes(self) -> list[int]:
        """Pids of processes still running that this stack started (e.g. task runners that left the group).

        Every process the stack spawns, and everything they spawn, inherits ``ALTINN_STACK_HOME=<home>`` in
        its environment, so this never touches anything else on the machine.
        """
        marker = f"{MARKER}={self.home}".encode()
        found = []
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit() or int(entry.name) == os.getpid():
                continue
            try:
                environ = (entry / "environ").read_bytes()
                state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
            except OSError:
                continue
            if state != "Z" and marker in environ.split(b"\0"):
                found.append(int(entry.name))
        return found

    def __enter__(self) -> Stack:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ----------------------------------------------------------------- emulator

    def start_emulator(self) -> None:
        log_path = self.logs / "emulator.log"
        cmd = [
            str(BIN / "altinn-events-emulator"),
            "--host",
            "127.0.0.1",
            "--port",
            "0",
            "--data",
            str(self.home / "emulator.sqlite3"),
            "--allow-http-webhooks",
            *self.emulator_args,
        ]
        proc = self._spawn("emulator", cmd, os.environ.copy(), log_path)
        deadline = time.monotonic() + 30
        pattern = re.compile(r"Altinn emulator listening on (http://\S+)")
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise StackError(f"the emulator exited with {proc.returncode}; log: {log_path}")
            match = pattern.search(log_path.read_text(errors="replace"))
            if match:
                self.emulator_url = match.group(1).rstrip("/")
                return
            time.sleep(0.1)
        raise StackError(f"the emulator did not report its URL within 30 s; log: {log_path}")

    def restart_emulator(self) -> None:
        """Stop and start the emulator on the same data file (its state survives) and port."""
        port = self.emulator_url.rsplit(":", 1)[1]
        self.stop_process("emulator")
        self.emulator_args = [a for a in self.emulator_args if a != "--port"]
        log_path = self.logs / "emulator.log"
        cmd = [
            str(BIN / "altinn-events-emulator"),
            "--host",
            "127.0.0.1",
            "--port",
            port,
            "--data",
            str(self.home / "emulator.sqlite3"),
            "--allow-http-webhooks",
            *self.emulator_args,
        ]
        self._spawn("emulator", cmd, os.environ.copy(), log_path)
        self.wait_until(lambda: self._emulator_healthy(), 30, "the emulator to come back")

    def _emulator_healthy(self) -> bool:
        try:
            return httpx.get(f"{self.emulator_url}/_emulator/health", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    def register_client(self) -> None:
        self.private_key_pem, public_pem = _generate_key()
        self.client_id = str(uuid.uuid4())
        self.key_id = "demo-key-1"
        response = httpx.post(
            f"{self.emulator_url}/_emulator/clients",
            json={
                "client_id": self.client_id,
                "public_key_pem": public_pem,
                "kid": self.key_id,
                "scopes": SCOPES.split(),
                "orgnumber": "991825827",
            },
            timeout=10,
        )
        if response.status_code != 201:
            raise StackError(
                f"registering the Maskinporten client failed: {response.status_code} {response.text}"
            )

    def issue_platform_access_token(self, org: str, app: str) -> str:
        """A ``PlatformAccessToken`` for the Altinn app ``org/app`` (what the app-event publisher needs)."""
        response = self.emulator("POST", "/_emulator/platform-access-token", json={"org": org, "app": app})
        if response.status_code != 200:
            raise StackError(
                f"getting a platform access token failed: {response.status_code} {response.text}"
            )
        return str(response.json()["token"])

    def emulator(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        return httpx.request(method, f"{self.emulator_url}{path}", timeout=30, **kwargs)

    def emulator_stats(self) -> dict[str, Any]:
        result: dict[str, Any] = self.emulator("GET", "/_emulator/stats").json()
        return result

    # ----------------------------------------------------------------- airflow

    def connection_dict(self) -> dict[str, Any]:
        extra: dict[str, Any] = {"environment": "custom", "key_id": self.key_id, "scopes": SCOPES}
        if self.platform_access_token:
            extra["platform_access_token"] = self.platform_access_token
        extra.update(self.connection_extra)
        return {
            "conn_type": "altinn_events",
            "host": self.emulator_url,
            "login": self.client_id,
            "password": self.private_key_pem,
            "extra": extra,
        }

    def connection_json(self) -> str:
        return json.dumps(self.connection_dict())

    def airflow_env(self) -> dict[str, str]:
        if not self.api_port:
            self.api_port = free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")}
        env.update(
            {
                "AIRFLOW_HOME": str(self.home),
                "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
                "AIRFLOW__CORE__DAGS_FOLDER": str(self.dags_folder),
                "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
                "AIRFLOW__CORE__AUTH_MANAGER": (
                    "airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager"
                ),
                "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "True",
                "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{self.api_url}/execution/",
                "AIRFLOW__API__BASE_URL": self.api_url,
                "AIRFLOW__API__HOST": "127.0.0.1",
                "AIRFLOW__API__PORT": str(self.api_port),
                "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
                "AIRFLOW__SCHEDULER__DAG_DIR_LIST_INTERVAL": "5",
                "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "True",
                "AIRFLOW__LOGGING__BASE_LOG_FOLDER": str(self.logs / "airflow"),
                "AIRFLOW__LOGGING__COLORED_CONSOLE_LOG": "False",
                "AIRFLOW_CONN_ALTINN_EVENTS_DEFAULT": self.connection_json(),
                "PYTHONUNBUFFERED": "1",
            }
        )
        env.update(self.extra_env)
        return env

    def migrate(self) -> None:
        log_path = self.logs / "db-migrate.log"
        with log_path.open("wb") as out:
            result = subprocess.run(
                [str(BIN / "airflow"), "db", "migrate"],
                env=self.airflow_env(),
                stdout=out,
                stderr=subprocess.STDOUT,
                timeout=300,
            )
        if result.returncode != 0:
            raise StackError(f"`airflow db migrate` failed; log: {log_path}")

    def start_component(self, component: str) -> None:
        self._spawn(
            component, [str(BIN / "airflow"), component], self.airflow_env(), self.logs / f"{component}.log"
        )

    def restart_component(self, component: str) -> None:
        self.stop_process(component)
        self.start_component(component)

    def wait_api_healthy(self, timeout: float = 120) -> None:
        def healthy() -> bool:
            for name, proc in self._procs.items():
                if proc.poll() is not None:
                    raise StackError(
                        f"{name} exited with {proc.returncode}; log: {self.logs / (name + '.log')}"
                    )
            try:
                return httpx.get(f"{self.api_url}/api/v2/monitor/health", timeout=2).status_code == 200
            except httpx.HTTPError:
                return False

        self.wait_until(healthy, timeout, f"the API server at {self.api_url}")

    # ----------------------------------------------------------------- REST helpers

    def api(self, method: str, path: str, **kwargs: Any) -> Any:
        """Call the REST API (no token needed: every user is an admin); transport errors are retried briefly."""
        for attempt in range(5):
            try:
                response = httpx.request(method, f"{self.api_url}/api/v2{path}", timeout=60, **kwargs)
                break
            except httpx.TransportError as error:
                if attempt == 4:
                    raise StackError(
                        f"{method} {path} failed: {error!r} (log: {self.logs / 'api-server.log'})"
                    ) from error
                time.sleep(1 + attempt)
        if response.status_code >= 400:
            raise StackError(f"{method} {path} -> {response.status_code}: {response.text[:500]}")
        return response.json() if response.content else None

    def wait_for_dag(self, dag_id: str, timeout: float = 120) -> None:
        def visible() -> bool:
            try:
                self.api("GET", f"/dags/{dag_id}")
                return True
            except StackError:
                return False

        self.wait_until(
            visible, timeout, f"DAG {dag_id} to be parsed (see {self.logs / 'dag-processor.log'})"
        )

    def unpause(self, dag_id: str) -> None:
        self.wait_for_dag(dag_id)
        self.api("PATCH", f"/dags/{dag_id}", json={"is_paused": False})

    def trigger(
        self, dag_id: str, conf: dict[str, Any] | None = None, logical_date: str | None = None
    ) -> str:
        """Unpause and trigger a DAG; returns the run id. ``logical_date=None`` as the UI's Trigger does."""
        self.unpause(dag_id)
        body = {"logical_date": logical_date, "conf": conf or {}}
        run = self.api("POST", f"/dags/{dag_id}/dagRuns", json=body)
        return str(run["dag_run_id"])

    def dag_runs(self, dag_id: str) -> list[dict[str, Any]]:
        result = self.api("GET", f"/dags/{dag_id}/dagRuns", params={"limit": 100, "order_by": "start_date"})
        runs: list[dict[str, Any]] = result["dag_runs"]
        return runs

    def run_state(self, dag_id: str, run_id: str) -> str:
        return str(self.api("GET", f"/dags/{dag_id}/dagRuns/{run_id}")["state"])

    def task_instances(self, dag_id: str, run_id: str) -> list[dict[str, Any]]:
        tis: list[dict[str, Any]] = self.api("GET", f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances")[
            "task_instances"
        ]
        return tis

    def task_state(self, dag_id: str, run_id: str, task_id: str) -> str | None:
        for ti in self.task_instances(dag_id, run_id):
            if ti["task_id"] == task_id:
                return None if ti["state"] is None else str(ti["state"])
        return None

    def xcom(
        self, dag_id: str, run_id: str, task_id: str, key: str = "return_value", map_index: int = -1
    ) -> Any:
        path = f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}/xcomEntries/{quote(key, safe='')}"
        return self.api("GET", path, params={"map_index": map_index, "deserialize": True})["value"]

    def xcom_entries(self, dag_id: str, run_id: str, task_id: str = "~") -> list[dict[str, Any]]:
        """Every XCom entry of a run (``task_id="~"``: of all its tasks), values not included."""
        path = f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}/xcomEntries"
        entries: list[dict[str, Any]] = self.api("GET", path, params={"limit": 1000})["xcom_entries"]
        return entries

    def wait_task_state(
        self, dag_id: str, run_id: str, task_id: str, states: tuple[str, ...], timeout: float = 180
    ) -> str:
        """Wait until a task instance is in one of ``states``; fails early if the run itself finished."""
        seen: dict[str, str | None] = {}

        def reached() -> bool:
            seen["state"] = self.task_state(dag_id, run_id, task_id)
            if seen["state"] in states:
                return True
            if (
                seen["state"] in ("failed", "upstream_failed", "success", "skipped")
                and seen["state"] not in states
            ):
                raise StackError(
                    f"task {task_id} of {dag_id} run {run_id} ended {seen['state']} while waiting for "
                    f"{'/'.join(states)} (logs: {self.task_log_dir(dag_id, run_id, task_id)})"
                )
            return False

        self.wait_until(reached, timeout, f"task {task_id} of {dag_id} to be {'/'.join(states)} (now {seen})")
        return str(seen["state"])

    def task_log_dir(self, dag_id: str, run_id: str, task_id: str) -> Path:
        return self.logs / "airflow" / f"dag_id={dag_id}" / f"run_id={run_id}" / f"task_id={task_id}"

    def import_errors(self) -> list[dict[str, Any]]:
        errors: list[dict[str, Any]] = self.api("GET", "/importErrors")["import_errors"]
        return errors

    def asset_id(self, name: str) -> int:
        for asset in self.api("GET", "/assets", params={"name_pattern": name, "limit": 100})["assets"]:
            if asset["name"] == name:
                return int(asset["id"])
        raise StackError(f"no asset named {name!r} (see {self.logs / 'dag-processor.log'})")

    def asset_state(self, asset_id: int) -> dict[str, Any]:
        """The asset's state store as ``{key: value}`` (where a watcher keeps its cursor)."""
        result = self.api("GET", f"/assets/{asset_id}/state-store")
        return {item["key"]: item["value"] for item in result["asset_state_store"]}

    def asset_events(self, asset_id: int) -> list[dict[str, Any]]:
        """The asset's events, oldest first: ``{"id", "timestamp", "extra", "created_dagruns": [run ids]}``.

        Read from the metadata DB (read-only): ``GET /api/v2/assets/events`` answers 500 on Airflow 3.3.2 while
        a run it created is still queued (``created_dagruns.0.start_date`` is ``None`` and fails validation).
        """
        with closing(sqlite3.connect(f"file:{self.home / 'airflow.db'}?mode=ro", uri=True, timeout=30)) as db:
            rows = db.execute(
                "SELECT e.id, e.timestamp, e.extra, r.run_id FROM asset_event e"
                " LEFT JOIN dagrun_asset_event x ON x.event_id = e.id LEFT JOIN dag_run r ON r.id = x.dag_run_id"
                " WHERE e.asset_id = ? ORDER BY e.id",
                (asset_id,),
            ).fetchall()
        events: dict[int, dict[str, Any]] = {}
        for event_id, timestamp, extra, run_id in rows:
            event = events.setdefault(
                event_id,
                {"id": event_id, "timestamp": timestamp, "extra": json.loads(extra), "created_dagruns": []},
            )
            if run_id is not None:
                event["created_dagruns"].append(run_id)
        return list(events.values())

    def wait_run(self, dag_id: str, run_id: str, timeout: float = 180) -> str:
        states: dict[str, str] = {}

        def finished() -> bool:
            states["state"] = self.run_state(dag_id, run_id)
            return states["state"] in ("success", "failed")

        self.wait_until(finished, timeout, f"run {run_id} of {dag_id} to finish (logs: {self.logs})")
        return states["state"]

    def wait_until(
        self, predicate: Callable[[], bool], timeout: float, what: str, interval: float = 0.5
    ) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate():
                return
            time.sleep(interval)
        raise StackError(f"timed out after {timeout:.0f} s waiting for {what}")

    # ----------------------------------------------------------------- processes

    def _spawn(
        self, name: str, cmd: list[str], env: dict[str, str], log_path: Path
    ) -> subprocess.Popen[bytes]:
        env = {**env, MARKER: str(self.home)}
        out = log_path.open("ab")
        proc = subprocess.Popen(
            cmd,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        out.close()
        self._procs[name] = proc
        return proc

    def stop_process(self, name: str, timeout: float = 20) -> None:
        proc = self._procs.pop(name, None)
        if proc is None or proc.poll() is not None:
            return
        with suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            with suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
        # Children that left the group (task runners) are gone with the session; reap stragglers too.
        with suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)


@contextmanager
def running_stack(home: Path, **kwargs: Any) -> Iterator[Stack]:
    stack = Stack(home=home, **kwargs)
    with stack:
        yield stack

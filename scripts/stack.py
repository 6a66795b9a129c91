"""Start the emulator and real Airflow 3 components on 127.0.0.1, drive them over REST, stop them all.

Used by ``make demo`` (scripts/demo.py), the end-to-end suite (tests/e2e) and ``make distributed``
(scripts/distributed.py). What runs is a *topology*: a table of :class:`Component` rows (an Airflow command
and its own environment), plus the services it needs (:class:`Postgres`, :class:`Redis`):

* :data:`SINGLE_HOST` (the demo and e2e): api-server, scheduler, dag-processor and triggerer sharing one
  ``AIRFLOW_HOME``, SQLite, LocalExecutor;
* :data:`DISTRIBUTED` (``make distributed``): PostgreSQL, Redis, CeleryExecutor with two workers, two
  triggerers, scheduler, dag-processor and api-server, each with its own ``AIRFLOW_HOME`` and configured
  only through environment variables, as if on its own host (docs/guides/distributed.rst).

The emulator runs as its own process (``altinn-events-emulator``, so it can be restarted on its data file);
it is driven through the package's :class:`~airflow_provider_altinn_events.emulator.handle.EmulatorHandle`.
Every process is started in its own session (``setsid``) so that stopping it also stops its children, and
``Stack.stop()`` leaves nothing behind even after a failure: everything started carries a marker in its
environment, and whatever still has it at the end is killed.

The settings are the ones measured to work on Airflow 3.3.2 (simple auth manager with every user an admin,
so the REST API needs no token).
"""

from __future__ import annotations

import base64
import glob
import json
import os
import re
import secrets
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import closing, contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx

from airflow_provider_altinn_events.emulator.handle import EmulatorHandle

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
SCOPES = "altinn:events.subscribe altinn:events.publish"
MARKER = "ALTINN_STACK_HOME"


@dataclass(frozen=True)
class Component:
    """One row of a topology: an Airflow process (``airflow <command>``) and the environment only it gets."""

    name: str
    command: tuple[str, ...]
    env: Mapping[str, str] = field(default_factory=dict)


#: ``make demo`` and the e2e suite: one host, one ``AIRFLOW_HOME``, SQLite and the LocalExecutor.
SINGLE_HOST = (
    Component("api-server", ("api-server",)),
    Component("scheduler", ("scheduler",)),
    Component("dag-processor", ("dag-processor",)),
    Component("triggerer", ("triggerer",)),
)
COMPONENTS = tuple(component.name for component in SINGLE_HOST)

#: ``make distributed``: each component as if on its own host (own ``AIRFLOW_HOME``, configured by the
#: environment only), CeleryExecutor on Redis, PostgreSQL. Workers and triggerers serve no logs (no port).
DISTRIBUTED = (
    Component("api-server", ("api-server",)),
    Component("scheduler", ("scheduler",)),
    Component("dag-processor", ("dag-processor",)),
    Component("triggerer-1", ("triggerer", "--skip-serve-logs")),
    Component("triggerer-2", ("triggerer", "--skip-serve-logs")),
    Component("worker-1", ("celery", "worker", "--skip-serve-logs", "--celery-hostname", "worker-1@%h")),
    Component("worker-2", ("celery", "worker", "--skip-serve-logs", "--celery-hostname", "worker-2@%h")),
)


class StackError(RuntimeError):
    """A step of the stack failed; the message names the step and where its log is."""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def shared_secrets() -> dict[str, str]:
    """The settings every component of a distributed Airflow must share (docs/guides/distributed.rst).

    Without them each component makes up its own: the JWT secret signs the tokens the scheduler gives
    tasks and the api-server checks (at least 64 bytes for HS512), ``[api] secret_key`` signs the UI's
    sessions and log requests, and the Fernet key encrypts what is stored (trigger kwargs, connections).
    """
    from cryptography.fernet import Fernet

    return {
        "AIRFLOW__API_AUTH__JWT_SECRET": base64.urlsafe_b64encode(secrets.token_bytes(64)).decode(),
        "AIRFLOW__API__SECRET_KEY": secrets.token_urlsafe(64),
        "AIRFLOW__CORE__FERNET_KEY": Fernet.generate_key().decode(),
    }


def _run_as_postgres() -> list[str]:
    """PostgreSQL refuses to run as root: as root, run its tools as the ``postgres`` user."""
    return ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []


def postgres_bindir() -> Path:
    """Where Debian's ``postgresql`` package put ``pg_ctl`` (the newest version installed)."""
    found = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"), key=lambda p: int(p.split("/")[4].split(".")[0])
    )
    if found:
        return Path(found[-1]).parent
    on_path = shutil.which("pg_ctl")
    if on_path:
        return Path(on_path).resolve().parent
    raise StackError("pg_ctl not found: install Debian's postgresql package (make distributed does)")


@dataclass
class Postgres:
    """A throwaway PostgreSQL cluster on 127.0.0.1, run with ``pg_ctl`` (as ``postgres`` when root).

    Its data directory is a fresh temporary directory owned by the user that runs it, removed by :meth:`stop`.
    """

    port: int = 0
    password: str = field(default_factory=lambda: secrets.token_urlsafe(16), repr=False)
    data: Path | None = None
    name = "postgres"

    @property
    def url(self) -> str:
        return f"postgresql+psycopg2://airflow:{self.password}@127.0.0.1:{self.port}/airflow"

    @property
    def dsn(self) -> str:
        return f"host=127.0.0.1 port={self.port} dbname=airflow user=airflow password={self.password}"

    def env(self) -> dict[str, str]:
        return {
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": self.url,
            "AIRFLOW__CELERY__RESULT_BACKEND": "db+" + self.url.replace("+psycopg2", ""),
        }

    def start(self, stack: Stack) -> None:
        bindir = postgres_bindir()
        as_pg = _run_as_postgres()
        self.port = self.port or free_port()
        self.data = Path(tempfile.mkdtemp(prefix="altinn-stack-pg-"))
        pwfile = self.data / "pw"
        pwfile.write_text(self.password)
        if as_pg:
            shutil.chown(self.data, "postgres", "postgres")
            shutil.chown(pwfile, "postgres", "postgres")
        env = {**os.environ, MARKER: str(stack.home), "LC_ALL": "C.UTF-8"}
        log_path = stack.logs / "postgres.log"

        def run(*cmd: str) -> None:
            with log_path.open("ab") as out:
                done = subprocess.run(
                    [*as_pg, *cmd], env=env, stdout=out, stderr=subprocess.STDOUT, timeout=120, cwd=self.data
                )
            if done.returncode != 0:
                raise StackError(f"{Path(cmd[0]).name} failed; log: {log_path}")

        cluster = str(self.data / "cluster")
        run(
            str(bindir / "initdb"),
            "-D",
            cluster,
            "-U",
            "airflow",
            "--auth=scram-sha-256",
            f"--pwfile={pwfile}",
            "-E",
            "UTF8",
        )
        options = f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.data} -c max_connections=300"
        run(
            str(bindir / "pg_ctl"),
            "-D",
            cluster,
            "-l",
            str(self.data / "server.log"),
            "-o",
            options,
            "-w",
            "-t",
            "60",
            "start",
        )
        env["PGPASSWORD"] = self.password
        run(str(bindir / "createdb"), "-h", "127.0.0.1", "-p", str(self.port), "-U", "airflow", "airflow")

    def stop(self, stack: Stack) -> None:
        if self.data is None:
            return
        cluster = self.data / "cluster"
        if (cluster / "postmaster.pid").exists():
            with (stack.logs / "postgres.log").open("ab") as out:
                subprocess.run(
                    [
                        *_run_as_postgres(),
                        str(postgres_bindir() / "pg_ctl"),
                        "-D",
                        str(cluster),
                        "-m",
                        "fast",
                        "-w",
                        "-t",
                        "30",
                        "stop",
                    ],
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    timeout=60,
                    check=False,
                    cwd=self.data,
                )
        with suppress(OSError), (stack.logs / "postgres.log").open("ab") as out:
            out.write((self.data / "server.log").read_bytes())
        shutil.rmtree(self.data, ignore_errors=True)
        self.data = None


@dataclass
class Redis:
    """A throwaway Redis (the Celery broker) on 127.0.0.1, as its own process, persisting nothing."""

    port: int = 0
    name = "redis"

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def env(self) -> dict[str, str]:
        return {"AIRFLOW__CELERY__BROKER_URL": self.url}

    def start(self, stack: Stack) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            raise StackError("redis-server not found: install Debian's redis-server (make distributed does)")
        self.port = self.port or free_port()
        cmd = [
            binary,
            "--bind",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(stack.logs),
            "--protected-mode",
            "yes",
        ]
        stack._spawn(self.name, cmd, os.environ.copy(), stack.logs / "redis.log")

        def ready() -> bool:
            with suppress(OSError), socket.create_connection(("127.0.0.1", self.port), timeout=1) as conn:
                conn.sendall(b"PING\r\n")
                return conn.recv(16).startswith(b"+PONG")
            return False

        stack.wait_until(ready, 30, f"Redis on port {self.port} (log: {stack.logs / 'redis.log'})", 0.2)

    def stop(self, stack: Stack) -> None:
        stack.stop_process(self.name)


@dataclass
class Stack:
    """The emulator plus the Airflow components of a topology (by default :data:`SINGLE_HOST`).

    :param home: the throwaway directory: the shared ``AIRFLOW_HOME``, or with ``own_homes`` one
        ``AIRFLOW_HOME`` per component under it; process logs go to ``home/logs/<component>.log``.
    :param dags_folder: the DAG folder the dag-processor parses (the example DAGs by default).
    :param extra_env: more environment for every Airflow component (e.g. ``AIRFLOW_VAR_...``).
    :param emulator_args: more CLI flags for ``altinn-events-emulator``.
    :param topology: the Airflow components to start, in this order.
    :param services: started before Airflow (e.g. :class:`Postgres`, :class:`Redis`); each adds environment.
    :param own_homes: give every component its own ``AIRFLOW_HOME`` (``home/<component>``).
    """

    home: Path
    dags_folder: Path = REPO / "example_dags"
    extra_env: dict[str, str] = field(default_factory=dict)
    emulator_args: list[str] = field(default_factory=list)
    connection_extra: dict[str, Any] = field(default_factory=dict)
    platform_app: tuple[str, str] | None = None
    log: Callable[[str], None] = print
    topology: tuple[Component, ...] = SINGLE_HOST
    services: tuple[Any, ...] = ()
    own_homes: bool = False

    api_port: int = 0
    emulator_url: str = ""
    handle: EmulatorHandle | None = field(default=None, repr=False)
    platform_access_token: str = field(default="", repr=False)
    _procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict, repr=False)
    _started_services: list[Any] = field(default_factory=list, repr=False)

    # ----------------------------------------------------------------- lifecycle

    @property
    def logs(self) -> Path:
        return self.home / "logs"

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.api_port}"

    @property
    def client_id(self) -> str:
        return self._handle().client_id

    @property
    def key_id(self) -> str:
        return self._handle().key_id

    @property
    def private_key_pem(self) -> str:
        return self._handle().private_key_pem

    def component(self, name: str) -> Component:
        for component in self.topology:
            if component.name == name:
                return component
        raise StackError(f"no component {name!r} in this topology")

    def component_home(self, name: str) -> Path:
        return self.home / name if self.own_homes else self.home

    def start(self) -> None:
        self.home.mkdir(parents=True, exist_ok=True)
        self.logs.mkdir(exist_ok=True)
        for service in self.services:
            self._started_services.append(service)
            service.start(self)
        self.start_emulator()
        self.register_client()
        if self.platform_app is not None:
            self.platform_access_token = self.issue_platform_access_token(*self.platform_app)
        self.migrate()
        for component in self.topology:
            self.start_component(component.name)
        self.wait_api_healthy()

    def stop(self) -> None:
        """Stop every component (Airflow first, then the emulator, then the services), then anything left.

        Safe to call more than once (an ``atexit`` hook and a ``finally`` may both call it).
        """
        services = {service.name for service in self._started_services}
        airflow = [name for name in self._procs if name not in services and name != "emulator"]
        for name in airflow:  # all at once: each may take seconds to shut down
            with suppress(ProcessLookupError):
                os.killpg(self._procs[name].pid, signal.SIGTERM)
        for name in sorted(self._procs, key=lambda n: (n in services, n == "emulator")):
            if name in services:
                continue
            try:
                self.stop_process(name)
            except Exception as error:  # keep stopping the others
                self.log(f"could not stop {name}: {error}")
        if self.handle is not None:
            self.handle.close()
        while self._started_services:
            service = self._started_services.pop()
            try:
                service.stop(self)
            except Exception as error:
                self.log(f"could not stop {service.name}: {error}")
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

    def _handle(self) -> EmulatorHandle:
        if self.handle is None:
            raise StackError("the emulator has no registered client yet (start the stack first)")
        return self.handle

    def register_client(self) -> None:
        """Register the connection's Maskinporten client (a fresh key) through the package's handle."""
        try:
            self.handle = EmulatorHandle.create(self.emulator_url, scopes=SCOPES.split())
        except (RuntimeError, httpx.HTTPError) as error:
            raise StackError(f"registering the Maskinporten client failed: {error}") from error

    def issue_platform_access_token(self, org: str, app: str) -> str:
        """A ``PlatformAccessToken`` for the Altinn app ``org/app`` (what the app-event publisher needs)."""
        try:
            return self._handle().platform_access_token(org, app)
        except (RuntimeError, httpx.HTTPError) as error:
            raise StackError(f"getting a platform access token failed: {error}") from error

    def emulator(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """A raw call to the emulator (its admin API or Altinn's), answered as it is."""
        return self._handle().admin.request(method, path, **kwargs)

    def emulator_stats(self) -> dict[str, Any]:
        return self._handle().stats()

    # ----------------------------------------------------------------- airflow

    def connection_dict(self) -> dict[str, Any]:
        extra: dict[str, Any] = {}
        if self.platform_access_token:
            extra["platform_access_token"] = self.platform_access_token
        extra.update(self.connection_extra)
        return self._handle().connection_dict(**extra)

    def connection_json(self) -> str:
        return json.dumps(self.connection_dict())

    def airflow_env(self, component: str | None = None) -> dict[str, str]:
        """The environment of one component (``None``: of ``airflow db migrate`` and other one-off commands).

        With ``own_homes`` this is all a component knows: nothing is shared through files.
        """
        if not self.api_port:
            self.api_port = free_port()
        home = self.component_home(component or "migrate")
        env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")}
        env.update(
            {
                "AIRFLOW_HOME": str(home),
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
                "AIRFLOW__LOGGING__BASE_LOG_FOLDER": str(
                    home / "logs" if self.own_homes else self.logs / "airflow"
                ),
                "AIRFLOW__LOGGING__COLORED_CONSOLE_LOG": "False",
                "AIRFLOW_CONN_ALTINN_EVENTS_DEFAULT": self.connection_json(),
                "PYTHONUNBUFFERED": "1",
            }
        )
        for service in self.services:
            env.update(service.env())
        env.update(self.extra_env)
        if component is not None and any(c.name == component for c in self.topology):
            if self.own_homes:  # its "host name" (scripts/distributed_host.py reads it)
                env["ALTINN_STACK_HOST"] = component
            env.update(self.component(component).env)
        return env

    def migrate(self) -> None:
        log_path = self.logs / "db-migrate.log"
        self.component_home("migrate").mkdir(parents=True, exist_ok=True)
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

    def start_component(self, name: str) -> subprocess.Popen[bytes]:
        """Start ``airflow <command>`` of the topology's row ``name`` (again, after a stop or a kill)."""
        self.component_home(name).mkdir(parents=True, exist_ok=True)
        command = self.component(name).command
        return self._spawn(
            name, [str(BIN / "airflow"), *command], self.airflow_env(name), self.logs / f"{name}.log"
        )

    def pid(self, name: str) -> int:
        """The pid of a running component (its process group has the same id)."""
        proc = self._procs.get(name)
        if proc is None or proc.poll() is not None:
            raise StackError(f"{name} is not running")
        return proc.pid

    def signal_component(self, name: str, signum: signal.Signals) -> None:
        """Send a signal to a component's whole process group (``SIGKILL``: as a host that dies)."""
        os.killpg(self.pid(name), signum)
        if signum == signal.SIGKILL:
            self._procs[name].wait(timeout=30)
            del self._procs[name]

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
        rows = self.db_rows(
            "SELECT e.id, e.timestamp, e.extra, r.run_id FROM asset_event e"
            " LEFT JOIN dagrun_asset_event x ON x.event_id = e.id LEFT JOIN dag_run r ON r.id = x.dag_run_id"
            " WHERE e.asset_id = ? ORDER BY e.id",
            (asset_id,),
        )
        events: dict[int, dict[str, Any]] = {}
        for event_id, timestamp, extra, run_id in rows:
            event = events.setdefault(
                event_id,
                {
                    "id": event_id,
                    "timestamp": timestamp,
                    "extra": json.loads(extra) if isinstance(extra, str) else extra,
                    "created_dagruns": [],
                },
            )
            if run_id is not None:
                event["created_dagruns"].append(run_id)
        return list(events.values())

    def db_rows(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        """Read the metadata DB (SQLite or PostgreSQL, whichever the stack runs); ``?`` placeholders."""
        postgres = next((s for s in self.services if isinstance(s, Postgres)), None)
        if postgres is None:
            path = f"file:{self.home / 'airflow.db'}?mode=ro"
            with closing(sqlite3.connect(path, uri=True, timeout=30)) as db:
                return list(db.execute(sql, params).fetchall())
        import psycopg2  # the `distributed` extra

        with closing(psycopg2.connect(postgres.dsn)) as db, db.cursor() as cursor:
            cursor.execute(sql.replace("?", "%s"), params)
            return list(cursor.fetchall())

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

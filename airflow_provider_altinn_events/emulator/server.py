"""Serving the emulator over real HTTP: uvicorn on a socket we bind ourselves (port 0 = a free port).

``EmulatorServer`` runs uvicorn in a background thread (for tests and scripts); ``serve_forever`` runs
it in the calling thread (for the CLI). Both bind the socket before uvicorn starts, so the real port is
known and becomes the public base URL.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable
from types import TracebackType
from typing import Any

import uvicorn

from .app import create_app
from .config import DEFAULT_MAX_BODY_BYTES, EmulatorConfig
from .store import Store


class _Server(uvicorn.Server):  # type: ignore[misc]  # uvicorn is untyped here (mypy config)
    """uvicorn's server with a callback once it accepts connections."""

    def __init__(self, config: uvicorn.Config, on_ready: Callable[[], None] | None = None) -> None:
        super().__init__(config)
        self.on_ready = on_ready

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        if self.started and self.on_ready is not None:
            self.on_ready()


def bind_socket(host: str, port: int) -> socket.socket:
    """A listening TCP socket (``port=0`` lets the OS pick a free one)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(2048)
    sock.setblocking(False)
    return sock


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host


class EmulatorServer:
    """A local Altinn (Maskinporten, Authentication exchange, Events) on ``http://host:port``.

    Use as a context manager or call :meth:`start` / :meth:`stop`::

        with EmulatorServer() as server:
            print(server.base_url)

    :param host: interface to bind; keep ``127.0.0.1``.
    :param port: TCP port; ``0`` picks a free one.
    :param data_path: SQLite file for persistent state; ``None`` keeps state in memory.
    :param token_lifetime: lifetime of exchanged Altinn tokens in seconds.
    :param visibility_delay: seconds before a new event shows in reads.
    :param allow_http_webhooks: allow ``http://127.0.0.1`` webhook endpoints (tests need no TLS).
    :param fast_retries: compress push/validation retry schedules to tens of milliseconds.
    :param public_url: base URL to advertise instead of ``http://host:port`` (behind a proxy).
    :param maskinporten_lifetime: ``expires_in`` of Maskinporten tokens in seconds.
    :param max_body_bytes: larger request bodies get 413.
    :param subscription_cache_seconds: model Altinn's subscription cache on the push path (see
        :class:`.config.EmulatorConfig`; production: 3600; default 0).
    :param log_level: uvicorn log level.
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        data_path: str | None = None,
        token_lifetime: int = 1800,
        visibility_delay: float = 0,
        allow_http_webhooks: bool = True,
        fast_retries: bool = True,
        public_url: str | None = None,
        maskinporten_lifetime: int = 120,
        max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
        log_level: str = "warning",
        subscription_cache_seconds: float = 0.0,
    ) -> None:
        self.host = host
        self.port = port
        self.data_path = data_path
        self.log_level = log_level
        self.config = EmulatorConfig(
            public_url=public_url,
            token_lifetime=token_lifetime,
            maskinporten_lifetime=maskinporten_lifetime,
            visibility_delay=visibility_delay,
            allow_http_webhooks=allow_http_webhooks,
            fast_retries=fast_retries,
            max_body_bytes=max_body_bytes,
            subscription_cache_seconds=subscription_cache_seconds,
        )
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._store: Store | None = None
        self._error: BaseException | None = None
        #: the ASGI application once built (its ``state.emulator`` holds the emulator's parts)
        self.app: Any = None

    @property
    def base_url(self) -> str:
        """Public base URL, e.g. ``http://127.0.0.1:54321`` (valid once started)."""
        return self.config.base

    @property
    def listen_url(self) -> str:
        return f"http://{_url_host(self.host)}:{self.port}"

    def build(
        self, sock: socket.socket, on_ready: Callable[[], None] | None = None, **uvicorn_options: Any
    ) -> _Server:
        """Create the app and uvicorn server for an already bound socket."""
        self.port = int(sock.getsockname()[1])
        if self.config.public_url is None:
            self.config.public_url = self.listen_url
        self._store = Store(self.data_path)
        app = create_app(self.config, self._store)
        self.app = app
        options: dict[str, Any] = {
            "log_level": self.log_level,
            "lifespan": "on",
            "access_log": False,
            "ws": "none",
        }
        options.update(uvicorn_options)
        self._server = _Server(uvicorn.Config(app, **options), on_ready=on_ready)
        return self._server

    def start(self, timeout: float = 15.0) -> EmulatorServer:
        """Start serving in a daemon thread; returns once connections are accepted.

        :raises RuntimeError: when the server does not come up within ``timeout`` seconds.
        """
        sock = bind_socket(self.host, self.port)
        ready = threading.Event()
        server = self.build(sock, on_ready=ready.set, log_config=None)

        def run() -> None:
            try:
                server.run(sockets=[sock])
            except BaseException as exc:  # pragma: no cover - reported to start()
                self._error = exc
            finally:
                ready.set()
                sock.close()

        self._thread = threading.Thread(target=run, name=f"altinn-emulator-{self.port}", daemon=True)
        self._thread.start()
        if not ready.wait(timeout) or not server.started:
            self.stop()
            raise RuntimeError(f"Altinn emulator did not start on {self.listen_url}: {self._error!r}")
        return self

    def stop(self, timeout: float = 10.0) -> None:
        """Stop serving and close the store (a data file keeps everything)."""
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None
        if self._store is not None:
            self._store.close()
            self._store = None

    def __enter__(self) -> EmulatorServer:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

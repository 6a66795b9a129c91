"""pytest fixtures for testing DAGs and clients against the local Altinn emulator.

Registered through the ``pytest11`` entry point, so it loads in every pytest run of everyone who
installs the provider: it imports nothing heavy at import time; the server machinery is imported
inside the fixtures.

Fixtures:

* ``altinn_emulator_server`` (session): one emulator over real HTTP on 127.0.0.1.
* ``altinn_emulator``: a clean emulator for this test (the session server, reset) with a registered
  Maskinporten client; returns an :class:`~airflow_provider_altinn_events.emulator.handle.EmulatorHandle`.
* ``altinn_conn``: ``altinn_emulator`` plus ``AIRFLOW_CONN_ALTINN_EVENTS_DEFAULT`` pointing at it.
* ``altinn_emulator_factory``: ``factory(**EmulatorServer options)`` starts a dedicated emulator
  (e.g. ``token_lifetime=2`` or ``visibility_delay=1``) and returns its handle.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from .handle import EmulatorHandle
    from .server import EmulatorServer

_CLIENT_ID = "altinn-emulator-test-client"
_KEY_ID = "altinn-emulator-test-key"


@pytest.fixture(scope="session")
def _altinn_emulator_key_pem() -> str:
    """One generated private key per session (RSA generation is the slow part of a client)."""
    from .handle import generate_private_key_pem

    return generate_private_key_pem()


@pytest.fixture(scope="session")
def altinn_emulator_server() -> Iterator[EmulatorServer]:
    """A session-wide emulator (in-memory, http webhooks allowed, fast retries)."""
    from .server import EmulatorServer

    server = EmulatorServer().start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def altinn_emulator(
    altinn_emulator_server: EmulatorServer, _altinn_emulator_key_pem: str
) -> Iterator[EmulatorHandle]:
    """A clean emulator for this test with a registered client (see module docs)."""
    from .handle import DEFAULT_ORG, DEFAULT_ORGNUMBER, DEFAULT_SCOPES, ClientCredentials, EmulatorHandle

    credentials = ClientCredentials(
        client_id=_CLIENT_ID,
        key_id=_KEY_ID,
        private_key_pem=_altinn_emulator_key_pem,
        scopes=DEFAULT_SCOPES,
        orgnumber=DEFAULT_ORGNUMBER,
        org=DEFAULT_ORG,
    )
    handle = EmulatorHandle(altinn_emulator_server.base_url, credentials)
    handle.server = altinn_emulator_server
    try:
        handle.reset()  # forgets the previous test's state and registers this client again
        yield handle
    finally:
        handle.close()


@pytest.fixture
def altinn_conn(altinn_emulator: EmulatorHandle, monkeypatch: pytest.MonkeyPatch) -> EmulatorHandle:
    """``altinn_emulator`` with ``AIRFLOW_CONN_ALTINN_EVENTS_DEFAULT`` set to its connection JSON."""
    monkeypatch.setenv("AIRFLOW_CONN_ALTINN_EVENTS_DEFAULT", altinn_emulator.connection_json())
    return altinn_emulator


@pytest.fixture
def altinn_emulator_factory(_altinn_emulator_key_pem: str) -> Iterator[Callable[..., EmulatorHandle]]:
    """Start dedicated emulators with their own options; all are stopped after the test."""
    from .handle import EmulatorHandle
    from .server import EmulatorServer

    started: list[tuple[EmulatorServer, EmulatorHandle]] = []

    def factory(**options: Any) -> EmulatorHandle:
        server = EmulatorServer(**options).start()
        try:
            handle = EmulatorHandle.create(
                server.base_url, private_key_pem=_altinn_emulator_key_pem, client_id=_CLIENT_ID
            )
        except BaseException:
            server.stop()
            raise
        handle.server = server
        started.append((server, handle))
        return handle

    try:
        yield factory
    finally:
        for server, handle in reversed(started):
            handle.close()
            server.stop()

"""The private import from httpx-aiohttp is a guarded seam (issue 16): without it the transport still imports
and maps aiohttp's errors as before. The aiohttp fast path is switched by ``fast_path=`` or the environment."""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from types import ModuleType

import aiohttp
import httpx
import httpx_aiohttp.transport
import pytest

from airflow_provider_altinn_events.client import transport
from airflow_provider_altinn_events.exceptions import AltinnConfigError

ERRORS: list[tuple[BaseException, type[httpx.TransportError]]] = [
    (aiohttp.ServerDisconnectedError(), httpx.RemoteProtocolError),
    (aiohttp.ClientPayloadError("truncated"), httpx.ReadError),
    (aiohttp.ClientConnectionError("reset"), httpx.ReadError),
    (aiohttp.SocketTimeoutError("slow"), httpx.ReadTimeout),
]


@pytest.fixture
def without_the_private_name(monkeypatch: pytest.MonkeyPatch) -> Iterator[ModuleType]:
    """A fresh copy of ``client/transport.py`` imported while httpx-aiohttp lacks ``map_aiohttp_exceptions``."""
    monkeypatch.delattr(httpx_aiohttp.transport, "map_aiohttp_exceptions")
    name = "_altinn_transport_without_private_name"
    spec = importlib.util.spec_from_file_location(name, transport.__file__)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
        yield module
    finally:
        del sys.modules[name]


def _raised(map_errors: Callable[[], AbstractContextManager[None]], error: BaseException) -> BaseException:
    with pytest.raises(httpx.TransportError) as info, map_errors():
        raise error
    return info.value


def test_the_transport_imports_without_the_private_name(without_the_private_name: ModuleType) -> None:
    assert without_the_private_name._adapter_map_errors is None
    assert issubclass(without_the_private_name.AltinnAiohttpTransport, httpx_aiohttp.AiohttpTransport)


@pytest.mark.parametrize(("error", "expected"), ERRORS)
def test_the_fallback_maps_errors_as_the_adapter_path_does(
    without_the_private_name: ModuleType, error: BaseException, expected: type[httpx.TransportError]
) -> None:
    with_adapter = _raised(transport._map_errors, error)
    with_fallback = _raised(without_the_private_name._map_errors, error)
    assert type(with_adapter) is type(with_fallback) is expected
    assert with_fallback.__cause__ is error


def test_the_fallback_lets_other_errors_through(without_the_private_name: ModuleType) -> None:
    with pytest.raises(KeyError), without_the_private_name._map_errors():
        raise KeyError("not a transport error")


# -- the fast-path switch (client/_aiohttp_fast.py) ------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, True),
        ("", True),
        ("1", True),
        ("on", True),
        ("TRUE", True),
        ("0", False),
        ("off", False),
        ("no", False),
    ],
)
def test_the_environment_switches_the_fast_path(
    monkeypatch: pytest.MonkeyPatch, value: str | None, expected: bool
) -> None:
    if value is None:
        monkeypatch.delenv(transport.FAST_PATH_ENV, raising=False)
    else:
        monkeypatch.setenv(transport.FAST_PATH_ENV, value)
    assert transport.AltinnAiohttpTransport().fast_path is expected


@pytest.mark.parametrize("explicit", [True, False])
def test_an_explicit_fast_path_wins_over_the_environment(
    monkeypatch: pytest.MonkeyPatch, explicit: bool
) -> None:
    monkeypatch.setenv(transport.FAST_PATH_ENV, "0" if explicit else "1")
    assert transport.AltinnAiohttpTransport(fast_path=explicit).fast_path is explicit


def test_an_unknown_switch_value_is_refused_naming_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(transport.FAST_PATH_ENV, "maybe")
    with pytest.raises(AltinnConfigError) as info:
        transport.AltinnAiohttpTransport()
    assert info.value.field == transport.FAST_PATH_ENV
    assert "'maybe'" in str(info.value) and "0, false" in str(info.value)


async def test_the_fixture_switches_the_default_client_transport(aiohttp_path: str) -> None:
    from airflow_provider_altinn_events.client.clients import AsyncAltinnEventsClient

    from .helpers import settings

    client = AsyncAltinnEventsClient(settings())
    try:
        assert isinstance(client._transport, transport.AltinnAiohttpTransport)
        assert client._transport.fast_path is (aiohttp_path == "fast")
    finally:
        await client.aclose()

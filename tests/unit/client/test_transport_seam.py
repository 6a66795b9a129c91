"""The private import from httpx-aiohttp is a guarded seam (issue 16): without it the transport still imports
and maps aiohttp's errors as before."""

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

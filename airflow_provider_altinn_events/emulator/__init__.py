"""A local Altinn (Maskinporten, token exchange, Events API) for tests, demos and benchmarks.

Importing this package is cheap: the server machinery is imported on first use of
:class:`EmulatorServer` (the pytest plugin lives here and loads in every pytest run).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .config import EmulatorConfig
    from .server import EmulatorServer

__all__ = ["EmulatorConfig", "EmulatorServer"]


def __getattr__(name: str) -> Any:
    if name == "EmulatorServer":
        from .server import EmulatorServer

        return EmulatorServer
    if name == "EmulatorConfig":
        from .config import EmulatorConfig

        return EmulatorConfig
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

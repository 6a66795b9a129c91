"""Apache Airflow provider for Altinn Events.

Importing the package does nothing but define ``__version__``: DAG files import our operators on every
parse, so this module must stay cheap and free of side effects.
"""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__"]

"""Sphinx configuration: sphinx-autoapi renders the reference from the docstrings (reST ``:param:``)."""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from airflow_provider_altinn_events import __version__  # noqa: E402

project = "airflow-provider-altinn-events"
author = "airflow-provider-altinn-events contributors"
copyright = "2026, " + author
release = __version__
version = __version__

# No intersphinx: CI has no internet, and a failed inventory fetch is a warning (an error with -W).
extensions = ["autoapi.extension", "sphinx.ext.viewcode", "matplotlib.sphinxext.plot_directive"]

# Plots are drawn at build time from committed benchmark output (docs/_data/*.json), never by running a
# benchmark: docs/_data/plot_trigger_fleet.py.
plot_working_directory = str(ROOT / "docs")
plot_formats = [("png", 110)]
plot_html_show_formats = False
plot_html_show_source_link = False
plot_include_source = False

autoapi_type = "python"
autoapi_dirs = [str(ROOT / "airflow_provider_altinn_events")]
autoapi_root = "reference/api"
autoapi_add_toctree_entry = False
autoapi_keep_files = False
autoapi_options = ["members", "undoc-members", "show-inheritance", "show-module-summary", "imported-members"]
autoapi_ignore = ["*/emulator/pytest_plugin.py", "*/ruff.toml"]
autodoc_typehints = "description"
suppress_warnings = ["autoapi.python_import_resolution", "ref.python", "autoapi.not_readable"]


html_theme = "furo"
html_title = f"Altinn Events provider {version}"
html_static_path = ["_static"]
exclude_patterns = ["_build"]
nitpicky = False

"""Placeholder: the client-core helper replaces this with the real connection form."""

from __future__ import annotations

from typing import Any

CONNECTION_FORM: dict[str, Any] = {"ui-field-behaviour": {"hidden-fields": [], "relabeling": {}, "placeholders": {}}, "conn-fields": {}}

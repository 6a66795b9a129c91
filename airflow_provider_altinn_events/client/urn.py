"""Altinn's rule for resource URNs, which both the event checks and the subscription checks apply.

Nothing here imports Airflow or does I/O.
"""

from __future__ import annotations

import re

from airflow_provider_altinn_events.client._constants import RESOURCE_PREFIX

__all__ = ["RESOURCE_PREFIX", "RESOURCE_URN_PATTERN", "URN_HELP", "is_valid_urn"]


#: Altinn's URN rule (``UriExtensions.IsValidUrn``): lowercase only, case-sensitive.
RESOURCE_URN_PATTERN = re.compile(r"^urn:[a-z0-9-]{1,30}(:[a-z0-9()+,.\-;$_!/]{1,100}){1,10}$")
URN_HELP = (
    "a lowercase URN matching urn:<nid>:<part>[:<part>...] (letters a-z, digits and ()+,.-;$_!/ only), "
    "e.g. 'urn:altinn:resource:my-resource'"
)
"""How an error message describes a valid URN."""


def is_valid_urn(value: object) -> bool:
    """Whether Altinn would accept ``value`` as a resource URN (event ``resource``, subscription filter)."""
    return isinstance(value, str) and RESOURCE_URN_PATTERN.fullmatch(value) is not None

"""Pre-flight checks of subscription requests, with the checks ``POST /subscriptions`` makes.

Altinn rejects a bad subscription request with a 400 only after a token grant, a token exchange and a round
trip; these checks run before the request and name the argument at fault. The rules are the real service's
(docs/contract.rst, "contract-subscriptions"): the endpoint must be https, the resource filter a valid
URN, and ``source_filter`` and
``alternative_subject_filter`` are for app resources only. Nothing here imports Airflow or does I/O; every
error is an :class:`AltinnConfigError` whose ``field`` names the argument. The event checks are in
:mod:`.validation`, which re-exports these functions.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlsplit

from airflow_provider_altinn_events.client._constants import APP_RESOURCE_PREFIX
from airflow_provider_altinn_events.client.urn import URN_HELP, is_valid_urn
from airflow_provider_altinn_events.exceptions import AltinnConfigError

__all__ = ["validate_subscription_id", "validate_subscription_request"]


def validate_subscription_request(
    *,
    endpoint: Any,
    resource_filter: Any = None,
    source_filter: Any = None,
    subject_filter: Any = None,
    alternative_subject_filter: Any = None,
    type_filter: Any = None,
    include_subunits: Any = False,
) -> dict[str, Any]:
    """Check a subscription request with the checks POST /subscriptions makes, before sending it.

    Empty or blank filters become ``None``: the service stores ``""`` as a filter that never matches, which
    is never what a template that rendered nothing meant. ``endpoint`` must be an absolute https URL; plain
    http is let through only for a loopback host, which only the emulator started with
    ``--allow-http-webhooks`` accepts (the real service answers 400).

    :return: the keyword arguments for ``create_subscription`` (snake_case, ``None`` for absent filters).
    :raises AltinnConfigError: a rule is broken; ``field`` names the argument.
    """
    filters: dict[str, str | None] = {}
    for name, value in (
        ("resource_filter", resource_filter),
        ("source_filter", source_filter),
        ("subject_filter", subject_filter),
        ("alternative_subject_filter", alternative_subject_filter),
        ("type_filter", type_filter),
    ):
        if value is not None and not isinstance(value, str):
            raise AltinnConfigError(f"{name} must be a string, got {type(value).__name__}", field=name)
        filters[name] = value if isinstance(value, str) and value.strip() else None
    if not isinstance(include_subunits, bool):
        raise AltinnConfigError(
            f"include_subunits must be True or False, got {include_subunits!r}", field="include_subunits"
        )
    if not isinstance(endpoint, str) or not endpoint.strip():
        raise AltinnConfigError(
            "endpoint is missing: give the absolute https URL Altinn should push events to", field="endpoint"
        )
    endpoint = endpoint.strip()
    _check_endpoint(endpoint)
    source = filters["source_filter"]
    if source is not None:
        parts = urlsplit(source)
        if parts.scheme != "https" or not parts.netloc:
            raise AltinnConfigError(
                f"source_filter {source!r} must be an absolute URL with the https scheme (Altinn's rule), "
                "e.g. 'https://ttd.apps.altinn.no/ttd/my-app'",
                field="source_filter",
            )
    resource = filters["resource_filter"]
    if resource is not None and not is_valid_urn(resource):
        raise AltinnConfigError(
            f"resource_filter {resource!r} is not a valid urn: Altinn accepts only {URN_HELP}",
            field="resource_filter",
        )
    if resource is None and source is None:
        raise AltinnConfigError(
            "resource_filter is required (e.g. 'urn:altinn:resource:my-resource'); only app subscriptions "
            "may give a source_filter instead",
            field="resource_filter",
        )
    if resource is not None and not resource.startswith(APP_RESOURCE_PREFIX):
        if source is not None:
            raise AltinnConfigError(
                f"source_filter is not supported for subscriptions on {resource!r} (only app resources, "
                "urn:altinn:resource:app_{org}_{app}, take one)",
                field="source_filter",
            )
        if filters["alternative_subject_filter"] is not None:
            raise AltinnConfigError(
                f"alternative_subject_filter is not supported for subscriptions on {resource!r} (only app "
                "resources take one); use subject_filter",
                field="alternative_subject_filter",
            )
    if (
        include_subunits
        and filters["subject_filter"] is None
        and filters["alternative_subject_filter"] is None
    ):
        raise AltinnConfigError(
            "include_subunits requires a subject filter (subject_filter, or alternative_subject_filter on an "
            "app resource)",
            field="include_subunits",
        )
    return {"endpoint": endpoint, **filters, "include_subunits": include_subunits}


def validate_subscription_id(value: Any, *, field: str = "subscription_id") -> int:
    """Accept a subscription id as an int or a string of digits (what a template renders to).

    :raises AltinnConfigError: anything else, or a number below 1.
    """
    number: int | None = None
    if isinstance(value, int) and not isinstance(value, bool):
        number = value
    elif isinstance(value, str) and value.strip().isdigit():
        number = int(value.strip())
    if number is None or number < 1:
        raise AltinnConfigError(
            f"{field} must be a positive integer (the 'id' of a subscription), got {value!r}", field=field
        )
    return number


# -- helpers ---------------------------------------------------------------------------------------------


def _check_endpoint(endpoint: str) -> None:
    parts = urlsplit(endpoint)
    if parts.scheme == "https" and parts.netloc:
        return
    if parts.scheme == "http" and parts.hostname is not None and _is_loopback(parts.hostname):
        return
    raise AltinnConfigError(
        f"endpoint {endpoint!r} must be an absolute https URL (Altinn pushes only to https; plain http is "
        "let through only for a loopback address, for the emulator)",
        field="endpoint",
    )


def _is_loopback(host: str) -> bool:
    return host in ("localhost", "::1") or re.fullmatch(r"127(\.\d{1,3}){3}", host) is not None

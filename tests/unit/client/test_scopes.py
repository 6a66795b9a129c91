"""The scope pre-check: an operation whose scope the connection does not ask for is refused before any request."""

from __future__ import annotations

import pytest

from airflow_provider_altinn_events.client.scopes import (
    PUBLISH,
    PUBLISH_ADMIN,
    SUBSCRIBE,
    require_publish_scope,
    require_scope,
)
from airflow_provider_altinn_events.exceptions import AltinnConfigError
from tests.unit.client.helpers import settings


def test_configured_scope_passes() -> None:
    require_scope(settings(scopes=f"{SUBSCRIBE} {PUBLISH}"), SUBSCRIBE, operation="reading events")


def test_missing_scope_names_the_connection_the_scopes_and_the_one_to_add() -> None:
    with pytest.raises(AltinnConfigError) as info:
        require_scope(settings(scopes=PUBLISH), SUBSCRIBE, operation="reading events")
    assert info.value.field == "scopes"
    message = str(info.value)
    assert "'altinn_test'" in message and repr(PUBLISH) in message
    assert f"lack {SUBSCRIBE}, which reading events needs" in message


def test_any_alternative_is_enough() -> None:
    require_scope(settings(scopes=PUBLISH_ADMIN), PUBLISH, alternatives=(PUBLISH_ADMIN,), operation="x")
    with pytest.raises(AltinnConfigError, match=f"{PUBLISH} \\(or {PUBLISH_ADMIN}\\)"):
        require_scope(settings(scopes=SUBSCRIBE), PUBLISH, alternatives=(PUBLISH_ADMIN,), operation="x")


def test_altinn_token_is_not_checked() -> None:
    static = settings(auth="altinn_token", password="token", login=None, scopes=PUBLISH)
    require_scope(static, SUBSCRIBE, operation="reading events")


@pytest.mark.parametrize("scopes", [PUBLISH, PUBLISH_ADMIN, f"{SUBSCRIBE} {PUBLISH}"])
def test_publish_scope_accepts_either_publish_scope(scopes: str) -> None:
    require_publish_scope(settings(scopes=scopes))


def test_publish_scope_accepts_a_platform_access_token_instead() -> None:
    require_publish_scope(settings(scopes=SUBSCRIBE, platform_access_token="pat"))
    with pytest.raises(AltinnConfigError, match="platform_access_token") as info:
        require_publish_scope(settings(scopes=SUBSCRIBE))
    assert info.value.field == "scopes"

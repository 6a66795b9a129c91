"""``--subscription-cache-seconds``: Altinn's subscription cache on the push path, and the trailing-slash
sourceFilter (docs/guides/emulator.rst, docs/contract.rst).

Sources: Altinn/altinn-events src/Events/Repository/SubscriptionRepositoryCachingDecorator.cs (the
subscriptions of an event's (resource, subject, type) are cached with an absolute expiry of
``SubscriptionCachingLifetimeInSeconds``, 3600 in src/Events/appsettings.json; Altinn/altinn-studio-docs#2517),
src/Events/Services/OutboundService.cs (``SourceFilter.IsBaseOf``) and Altinn/altinn-studio#6182.
"""

from __future__ import annotations

import time
from typing import Any

import httpx

from airflow_provider_altinn_events.emulator.delivery import source_is_base_of

from .conftest import RESOURCE, Receiver, bearer, make_event, publish, wait_for

SUBS = "/events/api/v1/subscriptions"
CACHE = 0.6


def _subscribe(api: httpx.Client, token: str, receiver: Receiver) -> int:
    sub = api.post(
        SUBS, json={"endPoint": receiver.url, "resourceFilter": RESOURCE}, headers=bearer(token)
    ).json()
    wait_for(lambda: api.get(f"{SUBS}/{sub['id']}", headers=bearer(token)).json()["validated"])
    receiver.requests.clear()
    return int(sub["id"])


def _pushed(receiver: Receiver) -> set[str]:
    return {r["json"]["id"] for r in list(receiver.requests)}


def test_new_subscription_waits_for_the_cache_and_deleted_one_keeps_receiving(
    altinn_emulator_factory: Any, receiver: Receiver
) -> None:
    handle = altinn_emulator_factory(subscription_cache_seconds=CACHE)
    token = handle.altinn_token()
    with httpx.Client(base_url=handle.base_url, timeout=10) as api:
        assert publish(api, token, make_event("before")).status_code == 200  # caches "no subscriptions"
        wait_for(lambda: handle.stats()["events"] == 1)
        time.sleep(0.1)
        sub_id = _subscribe(api, token, receiver)
        publish(api, token, make_event("too-early"))
        time.sleep(CACHE + 0.2)  # the cached lookup expires
        publish(api, token, make_event("after-expiry"))
        wait_for(lambda: "after-expiry" in _pushed(receiver))
        assert "too-early" not in _pushed(receiver)

        assert api.delete(f"{SUBS}/{sub_id}", headers=bearer(token)).status_code == 200
        publish(api, token, make_event("deleted-but-cached"))
        wait_for(lambda: "deleted-but-cached" in _pushed(receiver))
        time.sleep(CACHE + 0.2)
        publish(api, token, make_event("deleted-and-expired"))
        publish(api, token, make_event("marker", resource="urn:altinn:resource:other"))
        wait_for(lambda: handle.stats()["events"] == 6)
        time.sleep(0.3)
        assert "deleted-and-expired" not in _pushed(receiver)


def test_without_the_cache_a_new_subscription_gets_the_next_event(
    altinn_emulator: Any, api: httpx.Client, token: str, receiver: Receiver
) -> None:
    publish(api, token, make_event("before"))
    _subscribe(api, token, receiver)
    publish(api, token, make_event("next"))
    wait_for(lambda: "next" in _pushed(receiver))


def test_source_filter_ending_in_a_slash_matches_nothing(api: httpx.Client, token: str) -> None:
    """Altinn/altinn-studio#6182; creating one through the API is refused by AppSubscriptionService
    (``AbsolutePath.Split("/").Length != 3``), so only the push-side rule is reachable here."""
    source = "https://ttd.apps.altinn.no/ttd/apps-test/instances/1337/6fb3f738"
    assert source_is_base_of("https://ttd.apps.altinn.no/ttd/apps-test", source)
    assert not source_is_base_of("https://ttd.apps.altinn.no/ttd/apps-test/", source)
    response = api.post(
        SUBS,
        json={
            "endPoint": "https://example.org/hook",
            "sourceFilter": "https://ttd.apps.altinn.no/ttd/apps-test/",
            "subjectFilter": "/party/1337",
        },
        headers=bearer(token),
    )
    assert response.status_code == 400
    assert response.json() == "A valid app id is required in source filter {environment}/{org}/{app}"

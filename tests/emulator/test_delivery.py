"""Push delivery of matching events to validated subscriptions, with retries.

Source (docs/contract.rst): Altinn/altinn-events src/Events/Services/OutboundService.cs (matching, sourceFilter
IsBaseOf), src/Events/Services/SubscriptionService.CreateValidateEvent (validation event), and the retry
schedules of src/Events/appsettings.json (WolverineSettings).
"""

from __future__ import annotations

import time

import httpx

from airflow_provider_altinn_events.emulator.handle import EmulatorHandle

from .conftest import RESOURCE, Receiver, bearer, make_event, publish, wait_for

SUBS = "/events/api/v1/subscriptions"


def _validated_subscription(api: httpx.Client, token: str, receiver: Receiver, **filters: object) -> int:
    sub = api.post(
        SUBS, json={"endPoint": receiver.url, "resourceFilter": RESOURCE, **filters}, headers=bearer(token)
    ).json()
    wait_for(lambda: api.get(f"{SUBS}/{sub['id']}", headers=bearer(token)).json()["validated"])
    receiver.requests.clear()
    return int(sub["id"])


def _pushed_ids(receiver: Receiver) -> list[str]:
    return sorted(b["id"] for b in receiver.bodies())


def test_matching_events_are_pushed(
    altinn_emulator: EmulatorHandle, api: httpx.Client, token: str, receiver: Receiver
) -> None:
    _validated_subscription(api, token, receiver, subjectFilter="/party/1", typeFilter="a.b")
    publish(api, token, make_event("hit", subject="/party/1", type="a.b", data={"k": "v"}))
    publish(api, token, make_event("wrong-subject", subject="/party/2", type="a.b"))
    publish(api, token, make_event("wrong-type", subject="/party/1", type="a.%"))
    publish(
        api,
        token,
        make_event("other-resource", subject="/party/1", type="a.b", resource="urn:altinn:resource:x"),
    )
    wait_for(lambda: receiver.requests)
    time.sleep(0.2)
    (request,) = receiver.requests
    assert request["headers"]["Content-Type"] == "application/json; charset=utf-8"
    assert request["json"]["id"] == "hit" and request["json"]["data"] == {"k": "v"}
    assert "Authorization" not in request["headers"]
    assert altinn_emulator.stats()["deliveries"] == 1


def test_generated_events_are_pushed_too(
    altinn_emulator: EmulatorHandle, api: httpx.Client, token: str, receiver: Receiver
) -> None:
    _validated_subscription(api, token, receiver)
    generated = altinn_emulator.generate(RESOURCE, 5, type="bulk")
    wait_for(lambda: len(receiver.requests) == 5)
    assert generated["first_id"] in _pushed_ids(receiver)


def test_unvalidated_subscriptions_get_nothing(api: httpx.Client, token: str, receiver: Receiver) -> None:
    receiver.default_status = 500  # validation never succeeds
    api.post(SUBS, json={"endPoint": receiver.url, "resourceFilter": RESOURCE}, headers=bearer(token))
    wait_for(lambda: len(receiver.requests) == 9)
    publish(api, token, make_event("ignored"))
    time.sleep(0.3)
    assert all(b["type"] == "platform.events.validatesubscription" for b in receiver.bodies())


def test_push_is_retried_until_success(
    altinn_emulator: EmulatorHandle, api: httpx.Client, token: str, receiver: Receiver
) -> None:
    _validated_subscription(api, token, receiver)
    for status in (500, 502, 429):
        receiver.statuses.put(status)
    publish(api, token, make_event("retried"))
    wait_for(lambda: any(r["status"] == 200 for r in receiver.requests))
    assert [r["status"] for r in receiver.requests] == [500, 502, 429, 200]
    assert all(r["json"]["id"] == "retried" for r in receiver.requests)
    # the emulator counts a delivery after the receiver's 200 reaches it, a moment after the receiver logs it
    wait_for(lambda: altinn_emulator.stats()["deliveries"] == 1)
    assert altinn_emulator.stats()["delivery_attempts"] >= 4


def test_push_gives_up_after_the_schedule(
    altinn_emulator: EmulatorHandle, api: httpx.Client, token: str, receiver: Receiver
) -> None:
    _validated_subscription(api, token, receiver)
    receiver.default_status = 503
    publish(api, token, make_event("doomed"))
    wait_for(lambda: altinn_emulator.stats()["delivery_failures"] == 1, timeout=8)
    assert len(receiver.requests) == 12  # first try + 11 retries of the real schedule's length


def test_deleted_subscription_stops_retries(api: httpx.Client, token: str, receiver: Receiver) -> None:
    sub_id = _validated_subscription(api, token, receiver)
    receiver.default_status = 500
    publish(api, token, make_event("stop"))
    wait_for(lambda: receiver.requests)
    api.delete(f"{SUBS}/{sub_id}", headers=bearer(token))
    count = len(receiver.requests)
    time.sleep(0.3)
    assert len(receiver.requests) <= count + 1


def test_policy_checked_at_push_time(
    altinn_emulator: EmulatorHandle, api: httpx.Client, token: str, receiver: Receiver
) -> None:
    _validated_subscription(api, token, receiver)
    altinn_emulator.add_access(RESOURCE, "/org/someone-else", ["subscribe", "publish"])
    admin = altinn_emulator.altinn_token(["altinn:events.publish", "altinn:events.publish.admin"])
    publish(api, admin, make_event("not-for-you"))
    time.sleep(0.3)
    assert receiver.requests == []

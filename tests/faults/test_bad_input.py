"""Wrong inputs, as users make them: each must fail with an error that names the field and says what is
allowed, before any network call (the input alone shows it is wrong).

Every case runs what the user runs (the sensor's ``execute``, an operator's ``execute``, a trigger or
operator constructor at DAG parse, the hook's client) against the emulator with nothing else going on, and
then checks: the error message names the field and the allowed values; an ``AltinnConfigError`` in the
error's chain carries that field; the emulator counted no request; no name outside 127.0.0.1 was looked up
(real environments are never contacted, even if validation is missing).

Cases the code does not validate yet are marked ``xfail(strict=True)``, the reason in the case's ``xfail``;
they turn into failures (XPASS) once fixed, so the mark must then go.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from airflow_provider_altinn_events.emulator.handle import EmulatorHandle, load_private_key
from airflow_provider_altinn_events.exceptions import AltinnConfigError
from airflow_provider_altinn_events.hooks.altinn_events import AltinnEventsHook
from airflow_provider_altinn_events.operators.ingest import AltinnEventsIngestOperator
from airflow_provider_altinn_events.operators.publish import (
    AltinnEventsPublishAppEventOperator,
    AltinnEventsPublishOperator,
)
from airflow_provider_altinn_events.operators.subscriptions import (
    AltinnEventsCreateSubscriptionOperator,
    AltinnEventsDeleteSubscriptionOperator,
)
from airflow_provider_altinn_events.sensors.altinn_events import AltinnEventsSensor
from airflow_provider_altinn_events.triggers.altinn_events import (
    AltinnEventsSensorTrigger,
    AltinnEventsWatcherTrigger,
)
from tests.faults.support import CONN_ID, FakeTI

RES = "urn:altinn:resource:faults-bad-input"
GOOD_EVENT: dict[str, Any] = {
    "type": "no.example.case.created.v1",
    "source": "https://example.org/cases/42",
    "resource": RES,
    "subject": "/party/1337",
    "data": {"case": 42},
}


@dataclass
class Ctx:
    """What a case needs: the emulator (for a connection that could reach it) and a way to set one."""

    handle: EmulatorHandle
    monkeypatch: pytest.MonkeyPatch
    tmp_path: Path

    def connection(
        self, *, drop: tuple[str, ...] = (), extra: dict[str, Any] | None = None, **fields: Any
    ) -> None:
        """Define :data:`CONN_ID` as the emulator's working connection with some fields changed."""
        conn = self.handle.connection_dict()
        conn.update(fields)
        conn["extra"] = {**conn["extra"], **(extra or {})}
        for name in drop:
            conn.pop(name, None)
        conn["extra"] = {k: v for k, v in conn["extra"].items() if v is not None}
        self.monkeypatch.setenv(f"AIRFLOW_CONN_{CONN_ID.upper()}", json.dumps(conn))

    def good_connection(self) -> None:
        self.connection()


@dataclass(frozen=True)
class Case:
    id: str
    run: Callable[[Ctx], Any]
    field: str
    allowed: tuple[str, ...]
    xfail: str | None = None
    label: str | None = None
    """How the connection form labels the field, when the message names it that way (password: "private key")."""


# -- what users run ---------------------------------------------------------------------------------------


def poke(ctx: Ctx, **kwargs: Any) -> Any:
    """The sensor in poke mode, as a worker runs it."""
    kwargs.setdefault("resource", RES)
    kwargs.setdefault("timeout", 5)
    kwargs.setdefault("poll_interval", 0.1)
    sensor = AltinnEventsSensor(task_id="wait", deferrable=False, altinn_events_conn_id=CONN_ID, **kwargs)
    return sensor.execute({"ti": FakeTI()})


def publish(ctx: Ctx, event: Any) -> Any:
    operator = AltinnEventsPublishOperator(task_id="task", event=event, altinn_events_conn_id=CONN_ID)
    return operator.execute({"ti": FakeTI()})


def with_connection(run: Callable[[Ctx], Any], **changes: Any) -> Callable[[Ctx], Any]:
    def case(ctx: Ctx) -> Any:
        ctx.connection(**changes)
        return run(ctx)

    return case


def with_good_connection(run: Callable[[Ctx], Any]) -> Callable[[Ctx], Any]:
    def case(ctx: Ctx) -> Any:
        ctx.good_connection()
        return run(ctx)

    return case


def sensor_poke(**kwargs: Any) -> Callable[[Ctx], Any]:
    return with_good_connection(lambda ctx: poke(ctx, **kwargs))


def publish_event(event: Any) -> Callable[[Ctx], Any]:
    return with_good_connection(lambda ctx: publish(ctx, event))


def event_with(**changes: Any) -> dict[str, Any]:
    event = {**GOOD_EVENT, **changes}
    return {k: v for k, v in event.items() if v is not None}


def poke_with_connection(**changes: Any) -> Callable[[Ctx], Any]:
    return with_connection(lambda ctx: poke(ctx), **changes)


# -- key material --------------------------------------------------------------------------------------------


def jwk_with_kid(ctx: Ctx, kid: str) -> str:
    from jwt.algorithms import RSAAlgorithm

    jwk = RSAAlgorithm.to_jwk(load_private_key(ctx.handle.private_key_pem), as_dict=True)
    return json.dumps({**jwk, "kid": kid})


def public_jwk(ctx: Ctx) -> str:
    from jwt.algorithms import RSAAlgorithm

    return RSAAlgorithm.to_jwk(load_private_key(ctx.handle.private_key_pem).public_key())


def encrypted_pem(ctx: Ctx) -> str:
    key = load_private_key(ctx.handle.private_key_pem)
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"secret-passphrase"),
    ).decode()


def ec_pem() -> str:
    key = ec.generate_private_key(ec.SECP256R1())
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()


def key_case(make_password: Callable[[Ctx], str], **extra: Any) -> Callable[[Ctx], Any]:
    def case(ctx: Ctx) -> Any:
        ctx.connection(password=make_password(ctx), extra=extra)
        return poke(ctx)

    return case


def truncated_pem(ctx: Ctx) -> str:
    lines = ctx.handle.private_key_pem.strip().splitlines()
    return "\n".join(lines[:5] + lines[-1:])


def hook_list_events(**kwargs: Any) -> Callable[[Ctx], Any]:
    def case(ctx: Ctx) -> Any:
        ctx.good_connection()
        with AltinnEventsHook(CONN_ID).get_conn() as client:
            return client.list_events(**{"resource": RES, **kwargs})

    return case


def ingest(ctx: Ctx, **kwargs: Any) -> Any:
    kwargs.setdefault("resource", RES)
    kwargs.setdefault("destination", str(ctx.tmp_path / "lake"))
    operator = AltinnEventsIngestOperator(task_id="ingest", altinn_events_conn_id=CONN_ID, **kwargs)
    ctx.good_connection()
    return operator.execute({"ti": FakeTI(), "run_id": "manual__faults"})


def create_subscription(**kwargs: Any) -> Callable[[Ctx], Any]:
    def case(ctx: Ctx) -> Any:
        ctx.good_connection()
        kwargs.setdefault("resource_filter", RES)
        operator = AltinnEventsCreateSubscriptionOperator(
            task_id="subscribe", altinn_events_conn_id=CONN_ID, **kwargs
        )
        return operator.execute({"ti": FakeTI()})

    return case


def delete_subscription(subscription_id: Any) -> Callable[[Ctx], Any]:
    def case(ctx: Ctx) -> Any:
        ctx.good_connection()
        operator = AltinnEventsDeleteSubscriptionOperator(
            task_id="unsubscribe", subscription_id=subscription_id, altinn_events_conn_id=CONN_ID
        )
        return operator.execute({"ti": FakeTI()})

    return case


def publish_app_event(event: Any) -> Callable[[Ctx], Any]:
    def case(ctx: Ctx) -> Any:
        ctx.good_connection()
        operator = AltinnEventsPublishAppEventOperator(
            task_id="task", event=event, altinn_events_conn_id=CONN_ID
        )
        return operator.execute({"ti": FakeTI()})

    return case


def publish_as(scopes: str) -> Callable[[Ctx], Any]:
    def case(ctx: Ctx) -> Any:
        ctx.connection(extra={"scopes": scopes})
        return publish(ctx, GOOD_EVENT)

    return case


def at_parse(build: Callable[[], Any]) -> Callable[[Ctx], Any]:
    return lambda ctx: build()


ENVIRONMENTS = ("tt02", "production", "at22", "custom")

CASES: list[Case] = [
    # -- connection fields ----------------------------------------------------------------------------------
    Case(
        "conn: unknown environment",
        poke_with_connection(extra={"environment": "staging"}),
        "environment",
        ENVIRONMENTS,
    ),
    Case(
        "conn: unknown auth mode",
        poke_with_connection(extra={"auth": "oauth2"}),
        "auth",
        ("maskinporten", "altinn_token"),
    ),
    Case(
        "conn: host with a real environment",
        poke_with_connection(
            host="https://platform.tt02.altinn.no.example.org", extra={"environment": "tt02"}
        ),
        "host",
        ("custom",),
    ),
    Case(
        "conn: custom without host", poke_with_connection(drop=("host",)), "host", ("http://127.0.0.1:PORT",)
    ),
    Case(
        "conn: http events_url for production",
        poke_with_connection(
            drop=("host",),
            extra={"environment": "production", "events_url": "http://platform.altinn.no/events/api/v1"},
        ),
        "events_url",
        ("https",),
    ),
    Case(
        "conn: http exchange_url for tt02",
        poke_with_connection(
            drop=("host",),
            extra={
                "environment": "tt02",
                "exchange_url": "http://platform.tt02.altinn.no/authentication/api/v1/exchange/maskinporten",
            },
        ),
        "exchange_url",
        ("https",),
    ),
    Case(
        "conn: token url with a query string",
        poke_with_connection(extra={"maskinporten_token_url": "https://test.maskinporten.no/token?x=1"}),
        "maskinporten_token_url",
        ("query string",),
    ),
    Case(
        "conn: exchange_url not absolute",
        poke_with_connection(extra={"exchange_url": "/exchange"}),
        "exchange_url",
        ("absolute http(s) URL",),
    ),
    Case("conn: no client id", poke_with_connection(login=None), "login", ("client id",)),
    Case("conn: no private key", poke_with_connection(password=None), "password", ("PEM", "JWK")),
    Case(
        "conn: malformed key",
        poke_with_connection(password="not-a-key"),
        "password",
        ("PEM, JWK JSON",),
        label="private key",
    ),
    Case("conn: truncated PEM key", key_case(truncated_pem), "password", ("BEGIN/END",), label="private key"),
    Case(
        "conn: EC key instead of RSA",
        key_case(lambda ctx: ec_pem()),
        "password",
        ("RSA",),
        label="private key",
    ),
    Case(
        "conn: public JWK instead of private",
        key_case(public_jwk, key_id=None),
        "password",
        ("private JWK",),
        label="JWK",
    ),
    Case(
        "conn: key/kid mismatch",
        key_case(lambda ctx: jwk_with_kid(ctx, "kid-of-the-jwk"), key_id="another-kid"),
        "key_id",
        ("kid-of-the-jwk", "another-kid"),
    ),
    Case(
        "conn: encrypted key, no passphrase",
        key_case(encrypted_pem),
        "private_key_passphrase",
        ("private_key_passphrase",),
    ),
    Case(
        "conn: no kid and no certificate",
        key_case(lambda ctx: ctx.handle.private_key_pem, key_id=None),
        "key_id",
        ("key_id", "certificate"),
    ),
    Case(
        "conn: scopes not a string",
        poke_with_connection(extra={"scopes": 42}),
        "scopes",
        ("space-separated",),
    ),
    Case(
        "conn: missing scope to read events",
        poke_with_connection(extra={"scopes": "altinn:events.publish"}),
        "scopes",
        ("altinn:events.subscribe",),
    ),
    Case(
        "conn: missing scope to publish",
        publish_as("altinn:events.subscribe"),
        "scopes",
        ("altinn:events.publish",),
    ),
    Case(
        "conn: timeout not a number",
        poke_with_connection(extra={"timeout": "soon"}),
        "timeout",
        ("number of seconds",),
    ),
    Case(
        "conn: timeout out of range",
        poke_with_connection(extra={"timeout": 0}),
        "timeout",
        ("between 0 and 3600",),
    ),
    Case(
        "conn: consumer_org not an org number",
        poke_with_connection(extra={"consumer_org": "12345"}),
        "consumer_org",
        ("9-digit",),
    ),
    # -- sensor and trigger arguments -------------------------------------------------------------------------
    Case(
        "sensor: resource not a URN",
        sensor_poke(resource="my-resource"),
        "resource",
        ("urn:altinn:resource:",),
    ),
    Case(
        "watcher: resource not a URN",
        at_parse(lambda: AltinnEventsWatcherTrigger(resource="altinn:resource:x")),
        "resource",
        ("urn:altinn:resource:",),
    ),
    Case(
        "watcher: resource in upper case",
        at_parse(lambda: AltinnEventsWatcherTrigger(resource="urn:altinn:resource:UPPER CASE")),
        "resource",
        ("lowercase", "urn:altinn:resource:my-resource"),
    ),
    Case(
        "sensor: resource in upper case",
        at_parse(lambda: AltinnEventsSensor(task_id="w", resource="urn:altinn:resource:Cases")),
        "resource",
        ("lowercase",),
    ),
    Case(
        "sensor: negative poll interval",
        at_parse(lambda: AltinnEventsSensor(task_id="w", resource=RES, poll_interval=-1)),
        "poll_interval",
        ("> 0",),
    ),
    Case(
        "watcher: max_consecutive_failures 0",
        at_parse(lambda: AltinnEventsWatcherTrigger(resource=RES, max_consecutive_failures=0)),
        "max_consecutive_failures",
        ("at least 1",),
    ),
    Case(
        "sensor: empty event type",
        sensor_poke(event_types=["a.created", ""]),
        "event_types",
        ("non-empty strings",),
    ),
    Case(
        "sensor: event types not strings",
        sensor_poke(event_types=[1, 2]),
        "event_types",
        ("non-empty strings",),
    ),
    Case(
        "sensor: event types not a list",
        sensor_poke(event_types=42),
        "event_types",
        ("non-empty strings",),
    ),
    Case(
        "sensor: subject and alternative subject",
        sensor_poke(subject="/party/1", alternative_subject="/person/1"),
        "alternative_subject",
        ("not both",),
    ),
    Case("sensor: empty cursor", sensor_poke(after=""), "after", ('"0"', '"latest"')),
    Case(
        "sensor: cursor None",
        sensor_poke(after=None, timeout=1),
        "after",
        ('"0"', '"latest"'),
    ),
    Case(
        "sensor: latest in reschedule mode",
        sensor_poke(after="latest", mode="reschedule"),
        "after",
        ('mode="poke"', "deferrable=True"),
    ),
    Case(
        "sensor: min_events 0",
        at_parse(lambda: AltinnEventsSensor(task_id="w", resource=RES, min_events=0)),
        "min_events",
        ("at least 1",),
    ),
    Case(
        "sensor: max_events below min_events",
        at_parse(lambda: AltinnEventsSensor(task_id="w", resource=RES, min_events=5, max_events=2)),
        "max_events",
        ("at least min_events",),
    ),
    Case(
        "sensor: unknown where operator",
        sensor_poke(where={"data.status": {"regex": "x"}}),
        "where",
        ("prefix", "exists"),
    ),
    Case(
        "sensor: where 'in' without a list",
        sensor_poke(where={"data.status": {"in": "done"}}),
        "where",
        ("needs a list",),
    ),
    Case(
        "sensor trigger: min_events 0",
        at_parse(lambda: AltinnEventsSensorTrigger(resource=RES, min_events=0)),
        "min_events",
        ("at least 1",),
    ),
    Case(
        "watcher: negative poll interval",
        at_parse(lambda: AltinnEventsWatcherTrigger(resource=RES, poll_interval=-5)),
        "poll_interval",
        ("0",),
    ),
    Case(
        "watcher: batch size 0",
        at_parse(lambda: AltinnEventsWatcherTrigger(resource=RES, max_events_per_trigger_event=0)),
        "max_events_per_trigger_event",
        ("at least 1",),
    ),
    Case(
        "watcher: empty cursor",
        at_parse(lambda: AltinnEventsWatcherTrigger(resource=RES, after="")),
        "after",
        ('"latest"',),
    ),
    # -- operator arguments ----------------------------------------------------------------------------------
    Case("client: page size 0", hook_list_events(size=0), "size", ("1 to 1000",)),
    Case("client: page size 5000", hook_list_events(size=5000), "size", ("1 to 1000",)),
    Case(
        "ingest: page_size 0",
        at_parse(
            lambda: AltinnEventsIngestOperator(task_id="i", resource=RES, destination="/tmp/x", page_size=0)
        ),
        "page_size",
        ("at least 1",),
    ),
    Case(
        "ingest: page_size 5000",
        at_parse(
            lambda: AltinnEventsIngestOperator(
                task_id="i", resource=RES, destination="/tmp/x", page_size=5000
            )
        ),
        "page_size",
        ("at most 1000",),
    ),
    Case(
        "ingest: compression zip",
        at_parse(
            lambda: AltinnEventsIngestOperator(
                task_id="i", resource=RES, destination="/tmp/x", compression="zip"
            )
        ),
        "compression",
        ("gzip",),
    ),
    Case(
        "ingest: resource not a URN",
        lambda ctx: ingest(ctx, resource="my-resource"),
        "resource",
        ("urn:altinn:resource:",),
    ),
    Case(
        "ingest: blank start_after",
        lambda ctx: ingest(ctx, start_after=" "),
        "start_after",
        ('"0"',),
    ),
    Case(
        "subscription: http endpoint",
        create_subscription(endpoint="http://hooks.example.org/altinn"),
        "endpoint",
        ("https",),
    ),
    Case(
        "subscription: resource filter not a URN",
        create_subscription(
            endpoint="https://hooks.example.org/altinn", resource_filter="Urn:Altinn:Resource:X"
        ),
        "resource_filter",
        ("lowercase URN",),
    ),
    Case(
        "unsubscribe: id not a number", delete_subscription("abc"), "subscription_id", ("positive integer",)
    ),
    Case(
        "publish: max_concurrency 0",
        at_parse(lambda: AltinnEventsPublishOperator(task_id="p", event=GOOD_EVENT, max_concurrency=0)),
        "max_concurrency",
        ("positive integer",),
    ),
    # -- event bodies ------------------------------------------------------------------------------------------
    Case("event: no type", publish_event(event_with(type=None)), "event.type", ("missing",)),
    Case(
        "event: no resource",
        publish_event(event_with(resource=None)),
        "event.resource",
        ("urn:altinn:resource:",),
    ),
    Case(
        "event: resource not lowercase",
        publish_event(event_with(resource="urn:altinn:resource:MyCase")),
        "event.resource",
        ("lowercase URN",),
    ),
    Case(
        "event: source with an unparsable host",  # a relative source is fine (docs/contract.rst)
        publish_event(event_with(source="https://my source/x")),
        "event.source",
        ("host",),
    ),
    Case(
        "event: specversion 0.3",
        publish_event(event_with(specversion="0.3")),
        "event.specversion",
        ("'1.0'",),
    ),
    Case(
        "event: time not RFC 3339", publish_event(event_with(time="yesterday")), "event.time", ("RFC 3339",)
    ),
    Case(
        "event: naive datetime",
        publish_event(event_with(time=datetime(2026, 1, 1, 12, 0))),
        "event.time",
        ("time zone",),
    ),
    Case(
        "event: data not JSON",
        publish_event(event_with(data={"ids": {1, 2}})),
        "event.data",
        ("JSON-serializable",),
    ),
    Case(
        "event: extension name with capitals",
        publish_event(event_with(caseId="42")),
        "event.caseId",
        ("lowercase", "caseid"),
        label="'caseId'",
    ),
    Case(
        "event: extension value an object",
        publish_event(event_with(caseref={"id": 42})),
        "event.caseref",
        ("boolean", "32-bit integer"),
    ),
    Case(
        "event: datacontenttype not a media type",
        publish_event(event_with(datacontenttype="json")),
        "event.datacontenttype",
        ("application/json",),
    ),
    Case(
        "event: data_base64 not base64",
        publish_event(event_with(data=None, data_base64="%%%")),
        "event.data_base64",
        ("base64",),
    ),
    Case("event: list holds a string", publish_event([GOOD_EVENT, "second"]), "event[1]", ("dict",)),
    Case("event: empty list", publish_event([]), "event", ("nothing to publish",)),
    Case("event: string that is not JSON", publish_event("{type: x}"), "event", ("dict or a list of dicts",)),
    Case(
        "app event: id given",
        publish_app_event(
            {
                "source": "https://ttd.apps.example.org/ttd/app/instances/1/2",
                "type": "t",
                "subject": "/party/1",
                "id": "x",
            }
        ),
        "event.id",
        ("allowed:", "assigns id"),
        label="does not take: id",
    ),
]


@pytest.fixture
def no_outside_lookups(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """Refuse (and record) any name lookup other than loopback: real Altinn is never contacted."""
    real = socket.getaddrinfo
    attempts: list[str] = []

    def guarded(host: Any, *args: Any, **kwargs: Any) -> Any:
        name = host.decode() if isinstance(host, bytes) else str(host)
        if name not in ("127.0.0.1", "localhost", "::1"):
            attempts.append(name)
            raise OSError(f"test guard: no lookups outside loopback ({name})")
        return real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", guarded)
    yield attempts


def chain(error: BaseException) -> list[BaseException]:
    seen: list[BaseException] = []
    current: BaseException | None = error
    while current is not None and current not in seen:
        seen.append(current)
        current = current.__cause__ or current.__context__
    return seen


def _params() -> list[Any]:
    params = []
    for case in CASES:
        marks = [pytest.mark.xfail(strict=True, reason=case.xfail)] if case.xfail else []
        params.append(pytest.param(case, id=case.id, marks=marks))
    return params


def test_at_least_thirty_cases() -> None:
    assert len(CASES) >= 30
    assert len({case.id for case in CASES}) == len(CASES)


@pytest.mark.parametrize("case", _params())
def test_bad_input_is_refused_before_any_request(
    case: Case,
    altinn_emulator: EmulatorHandle,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    no_outside_lookups: list[str],
) -> None:
    ctx = Ctx(altinn_emulator, monkeypatch, tmp_path)
    before = altinn_emulator.stats()["requests"]
    with pytest.raises(Exception) as info:
        case.run(ctx)
    errors = chain(info.value)
    message = " | ".join(str(e) for e in errors)
    names = [case.field] + ([case.label] if case.label else [])
    assert any(name in message for name in names), f"the error does not name {case.field!r}: {message}"
    for allowed in case.allowed:
        assert allowed in message, f"the error does not say what is allowed ({allowed!r}): {message}"
    config_errors = [e for e in errors if isinstance(e, AltinnConfigError)]
    if config_errors:
        assert config_errors[0].field == case.field, f"field {config_errors[0].field!r}: {message}"
    assert altinn_emulator.stats()["requests"] == before, "a request was sent for input that is wrong"
    assert no_outside_lookups == [], f"tried to reach {no_outside_lookups}"

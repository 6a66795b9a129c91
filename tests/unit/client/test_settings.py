from __future__ import annotations

import dataclasses
import logging
from types import SimpleNamespace
from typing import Any

import pytest

from airflow_provider_altinn_events.client.settings import (
    EXTRA_KEYS,
    AltinnAuthMode,
    AltinnEnvironment,
    AltinnSettings,
)
from airflow_provider_altinn_events.exceptions import AltinnConfigError
from tests.unit.client.helpers import conn, pem, rsa_key

KEY = pem(rsa_key())


def parse(**kwargs: Any) -> AltinnSettings:
    return AltinnSettings.from_connection(conn(**kwargs))


@pytest.mark.parametrize(
    ("environment", "platform", "issuer"),
    [
        ("tt02", "https://platform.tt02.altinn.no", "https://test.maskinporten.no/"),
        ("TT02", "https://platform.tt02.altinn.no", "https://test.maskinporten.no/"),
        ("production", "https://platform.altinn.no", "https://maskinporten.no/"),
        ("prod", "https://platform.altinn.no", "https://maskinporten.no/"),
        ("at22", "https://platform.at22.altinn.cloud", "https://test.maskinporten.no/"),
        ("at25", "https://platform.at25.altinn.cloud", "https://test.maskinporten.no/"),
        ("at29", "https://platform.at29.altinn.cloud", "https://test.maskinporten.no/"),
        ("yt01", "https://platform.yt01.altinn.cloud", "https://test.maskinporten.no/"),
    ],
)
def test_real_environment_urls(environment: str, platform: str, issuer: str) -> None:
    s = parse(host=None, environment=environment)
    assert s.environment.value == {"TT02": "tt02", "prod": "production"}.get(environment, environment)
    assert s.platform_url == platform
    assert s.maskinporten_issuer == issuer
    assert s.maskinporten_token_url == issuer + "token"
    assert s.exchange_url == f"{platform}/authentication/api/v1/exchange/maskinporten"
    assert s.events_url == f"{platform}/events/api/v1"
    assert s.environment.is_real


def test_default_environment_is_tt02_and_default_scope() -> None:
    s = AltinnSettings.from_connection(
        SimpleNamespace(conn_id="c", host=None, login="id", password=KEY, extra_dejson={"key_id": "k"})
    )
    assert s.environment is AltinnEnvironment.TT02
    assert s.scopes == ("altinn:events.subscribe",)
    assert s.scope == "altinn:events.subscribe"
    assert s.auth is AltinnAuthMode.MASKINPORTEN
    assert s.timeout_seconds == 30.0


def test_custom_derives_urls_from_host_like_the_emulator() -> None:
    s = parse(host="http://127.0.0.1:8765/")
    assert s.platform_url == "http://127.0.0.1:8765"
    assert s.maskinporten_issuer == "http://127.0.0.1:8765/maskinporten/"
    assert s.maskinporten_token_url == "http://127.0.0.1:8765/maskinporten/token"
    assert s.exchange_url == "http://127.0.0.1:8765/authentication/api/v1/exchange/maskinporten"
    assert s.events_url == "http://127.0.0.1:8765/events/api/v1"
    assert not s.environment.is_real


def test_custom_host_in_uri_form_without_scheme_uses_port() -> None:
    c = conn(host="127.0.0.1")
    c.port = 8765
    s = AltinnSettings.from_connection(c)
    assert s.platform_url == "http://127.0.0.1:8765"
    c = conn(host="altinn.example.org")
    assert AltinnSettings.from_connection(c).platform_url == "https://altinn.example.org"


def test_custom_needs_host() -> None:
    with pytest.raises(AltinnConfigError) as info:
        parse(host=None)
    assert info.value.field == "host"
    assert "custom" in str(info.value)


def test_unknown_environment_names_field_and_allowed_values() -> None:
    with pytest.raises(AltinnConfigError) as info:
        parse(environment="staging")
    assert info.value.field == "environment"
    message = str(info.value)
    for allowed in ("tt02", "production", "at22", "custom"):
        assert allowed in message
    assert "staging" in message


def test_host_with_real_environment_is_refused() -> None:
    with pytest.raises(AltinnConfigError) as info:
        parse(environment="tt02", host="http://127.0.0.1:8765")
    assert info.value.field == "host"
    # the environment's own URL is harmless
    assert parse(environment="tt02", host="https://platform.tt02.altinn.no/").platform_url.endswith(
        "tt02.altinn.no"
    )


@pytest.mark.parametrize(
    "key", ["maskinporten_issuer", "maskinporten_token_url", "exchange_url", "events_url"]
)
def test_plain_http_override_refused_for_real_environments(key: str) -> None:
    with pytest.raises(AltinnConfigError) as info:
        parse(host=None, environment="production", **{key: "http://proxy.local/x/"})
    assert info.value.field == key
    assert "http" in str(info.value)


def test_overrides_win_and_token_url_follows_issuer() -> None:
    s = parse(maskinporten_issuer="https://mp.example/")
    assert s.maskinporten_issuer == "https://mp.example/"
    assert s.maskinporten_token_url == "https://mp.example/token"
    s = parse(
        maskinporten_token_url="https://mp.example/oauth/token",
        exchange_url="https://gw.example/exchange",
        events_url="https://gw.example/events/",
    )
    assert s.maskinporten_issuer == "http://altinn.test/maskinporten/"
    assert s.maskinporten_token_url == "https://mp.example/oauth/token"
    assert s.exchange_url == "https://gw.example/exchange"
    assert s.events_url == "https://gw.example/events"


def test_real_environment_overrides_may_change_the_path_on_the_own_host() -> None:
    s = parse(
        host=None,
        environment="tt02",
        maskinporten_token_url="https://test.maskinporten.no/token",
        exchange_url="https://platform.tt02.altinn.no:443/authentication/api/v1/exchange/maskinporten",
        events_url="https://PLATFORM.tt02.altinn.no/events/api/v2/",
    )
    assert s.events_url == "https://PLATFORM.tt02.altinn.no/events/api/v2"
    s = parse(host=None, environment="at23", events_url="https://platform.at23.altinn.cloud/events/api/v1")
    assert s.events_url == "https://platform.at23.altinn.cloud/events/api/v1"
    s = parse(host=None, environment="production", maskinporten_issuer="https://maskinporten.no/")
    assert s.maskinporten_token_url == "https://maskinporten.no/token"


@pytest.mark.parametrize(
    ("environment", "key", "value", "allowed"),
    [
        # the grant (signed with the organisation's key) may go to the environment's Maskinporten only
        ("production", "maskinporten_token_url", "https://attacker.example/token", "maskinporten.no"),
        ("production", "maskinporten_token_url", "https://test.maskinporten.no/token", "maskinporten.no"),
        ("tt02", "maskinporten_token_url", "https://maskinporten.no/token", "test.maskinporten.no"),
        ("tt02", "maskinporten_token_url", "https://test.maskinporten.no.attacker.example/token", "test."),
        ("at22", "maskinporten_token_url", "https://test.maskinporten.no:8443/token", "test.maskinporten.no"),
        # an issuer elsewhere would move the derived token URL there too
        ("tt02", "maskinporten_issuer", "https://attacker.example/", "test.maskinporten.no"),
        # the Maskinporten token and the Altinn token go to the environment's platform only
        ("production", "exchange_url", "https://attacker.example/exchange", "platform.altinn.no"),
        ("production", "exchange_url", "https://platform.tt02.altinn.no/exchange", "platform.altinn.no"),
        ("tt02", "events_url", "https://attacker.example/events/api/v1", "platform.tt02.altinn.no"),
        ("at24", "events_url", "https://platform.at25.altinn.cloud/events/api/v1", "platform.at24.altinn"),
        ("tt02", "events_url", "https://test.maskinporten.no/events/api/v1", "platform.tt02.altinn.no"),
    ],
)
def test_real_environment_overrides_to_another_host_are_refused(
    environment: str, key: str, value: str, allowed: str
) -> None:
    with pytest.raises(AltinnConfigError) as info:
        parse(host=None, environment=environment, **{key: value})
    assert info.value.field == key
    message = str(info.value)
    assert key in message and allowed in message and "custom" in message


def test_custom_overrides_stay_free() -> None:
    s = parse(
        maskinporten_token_url="https://anything.example:8443/t",
        exchange_url="https://gw.example/x",
        events_url="https://other.example/e",
    )
    assert (s.maskinporten_token_url, s.exchange_url) == (
        "https://anything.example:8443/t",
        "https://gw.example/x",
    )


@pytest.mark.parametrize(
    "key", ["host", "maskinporten_issuer", "maskinporten_token_url", "exchange_url", "events_url"]
)
@pytest.mark.parametrize("environment", ["custom", "tt02"])
@pytest.mark.parametrize(
    "url",
    [
        "https://alice:s3cr3t-pw@gw.example/x",
        "http://alice:s3cr3t-pw@127.0.0.1:8765",
        "https://s3cr3t-pw@gw.example/",
    ],
)
def test_credentials_in_a_url_are_refused_without_repeating_them(
    key: str, environment: str, url: str
) -> None:
    if key == "host" and environment != "custom":
        kwargs: dict[str, Any] = {"host": url.replace("gw.example/x", "platform.tt02.altinn.no")}
    elif key == "host":
        kwargs = {"host": url}
    else:
        kwargs = {"host": None if environment != "custom" else "http://127.0.0.1:1", key: url}
    with pytest.raises(AltinnConfigError) as info:
        parse(environment=environment, **kwargs)
    assert info.value.field == key
    for text in (str(info.value), repr(info.value)):
        assert "s3cr3t-pw" not in text and "alice" not in text


def test_credentials_are_not_repeated_when_the_url_is_malformed_too() -> None:
    with pytest.raises(AltinnConfigError) as info:
        parse(exchange_url="ftp://alice:s3cr3t-pw@gw.example/x")
    assert info.value.field == "exchange_url"
    assert "s3cr3t-pw" not in str(info.value)


@pytest.mark.parametrize(
    "url", ["https://platform.tt02.altinn.no\\@attacker.example/", "https://platform.tt02.altinn.no /x"]
)
def test_urls_that_parsers_read_differently_are_refused(url: str) -> None:
    with pytest.raises(AltinnConfigError) as info:
        parse(host=None, environment="tt02", events_url=url)
    assert info.value.field == "events_url"


@pytest.mark.parametrize(
    ("host", "warned"),
    [
        ("http://127.0.0.1:8765", False),
        ("http://localhost:8765", False),
        ("http://[::1]:8765", False),
        ("http://127.0.0.2:8765", False),
        ("https://altinn-gw.example", False),
        ("http://emulator:8765", True),
        ("http://10.0.0.5:8765", True),
    ],
)
def test_custom_plain_http_off_loopback_warns_at_parse(
    host: str, warned: bool, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="airflow_provider_altinn_events.client.settings"):
        parse(host=host)
    warnings = [r.getMessage() for r in caplog.records if "plain http" in r.getMessage()]
    assert bool(warnings) is warned
    if warned:
        assert "host" in warnings[0] and "not a loopback" in warnings[0]


def test_plain_http_override_off_loopback_warns_and_names_the_field(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="airflow_provider_altinn_events.client.settings"):
        parse(host="http://127.0.0.1:8765", events_url="http://gw.internal/events/api/v1")
    assert any("events_url" in r.getMessage() and "gw.internal" in r.getMessage() for r in caplog.records)


def test_override_must_be_absolute_and_without_query() -> None:
    with pytest.raises(AltinnConfigError) as info:
        parse(events_url="not a url")
    assert info.value.field == "events_url"
    with pytest.raises(AltinnConfigError) as info:
        parse(exchange_url="http://x/exchange?test=true")
    assert info.value.field == "exchange_url"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("30", 30.0), (12, 12.0), ("2.5", 2.5), (None, 30.0), ("", 30.0)],
)
def test_timeout_from_json_or_uri_strings(raw: object, expected: float) -> None:
    assert parse(timeout=raw).timeout_seconds == expected


@pytest.mark.parametrize("raw", ["abc", 0, -1, "99999", True])
def test_invalid_timeout(raw: object) -> None:
    with pytest.raises(AltinnConfigError) as info:
        parse(timeout=raw)
    assert info.value.field == "timeout"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (
            "altinn:events.subscribe altinn:events.publish",
            ("altinn:events.subscribe", "altinn:events.publish"),
        ),
        (
            "altinn:events.subscribe,altinn:events.publish",
            ("altinn:events.subscribe", "altinn:events.publish"),
        ),
        (["altinn:events.publish"], ("altinn:events.publish",)),
        ('["a:b", "c:d"]', ("a:b", "c:d")),
        ("  a:b   a:b ", ("a:b",)),
    ],
)
def test_scopes_forms(raw: object, expected: tuple[str, ...]) -> None:
    s = parse(scopes=raw)
    assert s.scopes == expected
    assert s.scope == " ".join(expected)


def test_invalid_scopes() -> None:
    with pytest.raises(AltinnConfigError) as info:
        parse(scopes=42)
    assert info.value.field == "scopes"
    with pytest.raises(AltinnConfigError):
        parse(scopes="[]")


def test_missing_login_and_password_name_the_field() -> None:
    with pytest.raises(AltinnConfigError) as info:
        parse(login=None)
    assert info.value.field == "login"
    with pytest.raises(AltinnConfigError) as info:
        AltinnSettings.from_connection(
            SimpleNamespace(conn_id="c", host=None, login="x", password="", extra_dejson={})
        )
    assert info.value.field == "password"


def test_unknown_auth_mode() -> None:
    with pytest.raises(AltinnConfigError) as info:
        parse(auth="oauth")
    assert info.value.field == "auth"
    assert "altinn_token" in str(info.value)


def test_altinn_token_mode_needs_no_login() -> None:
    s = parse(auth="altinn_token", login=None, password="eyJ.static.token")
    assert s.auth is AltinnAuthMode.ALTINN_TOKEN
    assert s.altinn_token == "eyJ.static.token"
    assert s.private_key is None


@pytest.mark.parametrize(("raw", "expected"), [("991825827", "991825827"), ("0192:991825827", "991825827")])
def test_org_numbers(raw: str, expected: str) -> None:
    s = parse(consumer_org=raw, system_user_org=raw)
    assert s.consumer_org == expected
    assert s.system_user_org == expected


@pytest.mark.parametrize("key", ["consumer_org", "system_user_org"])
def test_bad_org_number(key: str) -> None:
    with pytest.raises(AltinnConfigError) as info:
        parse(**{key: "12345"})
    assert info.value.field == key


def test_legacy_prefixed_extras_are_accepted() -> None:
    s = parse(extra__altinn_events__scopes="altinn:events.publish")
    assert s.scopes == ("altinn:events.publish",)


def test_unknown_extra_key_warns_with_suggestion(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING):
        s = parse(scope="altinn:events.publish")
    assert s.scopes == ("altinn:events.subscribe",)
    assert "'scope'" in caplog.text and "did you mean 'scopes'" in caplog.text


def test_extra_must_be_a_mapping() -> None:
    with pytest.raises(AltinnConfigError) as info:
        AltinnSettings.from_connection(
            SimpleNamespace(conn_id="c", host=None, login="x", password=KEY, extra_dejson=["x"])
        )
    assert info.value.field == "extra"


def test_secrets_are_not_in_repr_and_settings_are_frozen_and_hashable() -> None:
    s = parse(
        private_key_passphrase="pass-secret-123",
        platform_access_token="pat-secret-456",
    )
    text = repr(s)
    for secret in (KEY[40:80], "pass-secret-123", "pat-secret-456"):
        assert secret not in text
    assert "client-1" in text
    with pytest.raises(dataclasses.FrozenInstanceError):
        s.client_id = "other"  # type: ignore[misc]
    assert hash(s) == hash(
        parse(private_key_passphrase="pass-secret-123", platform_access_token="pat-secret-456")
    )


def test_every_extra_key_is_understood() -> None:
    values = {
        "environment": "custom",
        "scopes": "a:b",
        "key_id": "k",
        "private_key_passphrase": "p",
        "certificate": "c",
        "consumer_org": "991825827",
        "system_user_org": "991825827",
        "auth": "maskinporten",
        "platform_access_token": "t",
        "timeout": "5",
        "maskinporten_issuer": "http://h/mp/",
        "maskinporten_token_url": "http://h/mp/token",
        "exchange_url": "http://h/ex",
        "events_url": "http://h/ev",
    }
    assert set(values) == set(EXTRA_KEYS)
    s = parse(**values)
    assert (s.key_id, s.certificate, s.platform_access_token, s.timeout_seconds) == ("k", "c", "t", 5.0)
    assert s.maskinporten_token_url == "http://h/mp/token"


def test_environment_enum_pattern_members() -> None:
    assert AltinnEnvironment("at24") is AltinnEnvironment.AT24
    at30 = AltinnEnvironment("AT30")
    assert at30 == "at30"
    assert at30.platform_url() == "https://platform.at30.altinn.cloud"
    with pytest.raises(ValueError):
        AltinnEnvironment("at1")
    assert AltinnEnvironment.CUSTOM.platform_url() is None
    assert AltinnEnvironment.CUSTOM.maskinporten_issuer() is None

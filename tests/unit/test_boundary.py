"""One permanent-error rule: the ``permanent`` flag of the error tree, the payload flag, and the one helper
that turns permanent errors into ``AirflowFailException`` (``_boundary.py``)."""

from __future__ import annotations

import pickle

import pytest

from airflow_provider_altinn_events._boundary import is_permanent, permanent_errors_fail_task, task_failure
from airflow_provider_altinn_events._compat import AirflowException, AirflowFailException
from airflow_provider_altinn_events._ingest import IngestConflictError, IngestStateError
from airflow_provider_altinn_events._payloads import TriggerError, TriggerPayload
from airflow_provider_altinn_events.exceptions import (
    AltinnBadRequestError,
    AltinnConfigError,
    AltinnError,
    AltinnForbiddenError,
    AltinnNotFoundError,
    AltinnPayloadError,
    AltinnRateLimitError,
    AltinnServerError,
    AltinnTransportError,
    AltinnUnauthorizedError,
    TokenExchangeError,
    TokenGrantError,
)
from airflow_provider_altinn_events.sensors.altinn_events import AltinnEventsSensor
from tests.fakes import FakeTI
from tests.fakes import api_error as api

RES = "urn:altinn:resource:ttd-test"


@pytest.mark.parametrize(
    ("error", "permanent"),
    [
        (AltinnConfigError("c", field="scopes"), True),
        (api(AltinnBadRequestError, 400), True),
        (api(AltinnForbiddenError, 403), True),
        (TokenGrantError("g", status_code=400, error="invalid_client"), True),  # bad credentials
        (TokenGrantError("g", status_code=401), True),
        (TokenExchangeError("e", status_code=403), True),
        (IngestStateError("cursor of other filters"), True),
        (TokenGrantError("g", status_code=429), False),
        (TokenGrantError("g", status_code=503), False),
        (TokenGrantError("g", error="transport", retryable=True), False),
        (TokenExchangeError("e", status_code=400, retryable=True), False),  # the caller said retry may help
        (api(AltinnUnauthorizedError, 401), False),
        (api(AltinnNotFoundError, 404), False),
        (api(AltinnRateLimitError, 429), False),
        (api(AltinnServerError, 503), False),
        (AltinnTransportError("t"), False),
        (AltinnPayloadError("p"), False),
        (IngestConflictError("someone else moved the cursor"), False),
    ],
)
def test_which_errors_are_permanent(error: AltinnError, permanent: bool) -> None:
    assert error.permanent is permanent and is_permanent(error) is permanent
    assert pickle.loads(pickle.dumps(error)).permanent is permanent  # survives the trip to the triggerer


@pytest.mark.parametrize(
    ("error", "raised"),
    [
        (api(AltinnForbiddenError, 403), AirflowFailException),
        (AltinnConfigError("c"), AirflowFailException),
        (api(AltinnServerError, 503), AltinnServerError),
        (IngestConflictError("c"), IngestConflictError),
        (RuntimeError("not ours"), RuntimeError),
    ],
)
def test_the_helper_fails_the_task_only_on_permanent_errors(error: Exception, raised: type) -> None:
    with pytest.raises(raised) as info, permanent_errors_fail_task("Doing it failed: "):
        raise error
    if raised is AirflowFailException:
        assert str(info.value) == f"Doing it failed: {error}" and info.value.__cause__ is error
    else:
        assert info.value is error


def test_the_helper_takes_a_message_function() -> None:
    failing = permanent_errors_fail_task(lambda e: f"{type(e).__name__}: {e}")
    with pytest.raises(AirflowFailException, match="^AltinnConfigError: bad$"), failing:
        raise AltinnConfigError("bad")


def test_task_failure() -> None:
    assert type(task_failure("m", permanent=True)) is AirflowFailException
    assert type(task_failure("m", permanent=False)) is AirflowException


# ---------------------------------------------------------------------------------------------------------
# the trigger payload carries the flag, and execute_complete obeys it
# ---------------------------------------------------------------------------------------------------------


def test_payload_adds_the_key_only_when_permanent() -> None:
    forbidden = TriggerPayload.failure(RES, "e1", api(AltinnForbiddenError, 403)).to_dict()
    assert forbidden["error"]["permanent"] is True
    server = TriggerPayload.failure(RES, "e1", api(AltinnServerError, 503)).to_dict()
    assert "permanent" not in server["error"]  # the shape every earlier release wrote
    assert TriggerPayload.from_dict(forbidden).error == TriggerError(
        "AltinnForbiddenError", str(api(AltinnForbiddenError, 403)), False, 403, permanent=True
    )


@pytest.mark.parametrize(
    ("error", "raised"),
    [
        (api(AltinnForbiddenError, 403), AirflowFailException),
        (TokenGrantError("g", status_code=400, error="invalid_grant"), AirflowFailException),
        (
            AltinnConfigError("the connection lacks altinn:events.subscribe", field="scopes"),
            AirflowFailException,
        ),
        (api(AltinnServerError, 503), AirflowException),  # the budget was spent: Airflow's retries apply
    ],
)
def test_execute_complete_fails_at_once_on_a_permanent_error(error: AltinnError, raised: type) -> None:
    sensor = AltinnEventsSensor(task_id="wait", resource=RES, deferrable=True)
    event = TriggerPayload.failure(RES, "e7", error).to_dict()
    ti = FakeTI()
    with pytest.raises(AirflowException) as info:
        sensor.execute_complete({"ti": ti}, event)  # type: ignore[arg-type]
    assert type(info.value) is raised
    assert ti.pushed == {}  # nothing is pushed on failure
    assert type(error).__name__ in str(info.value) and "'e7'" in str(info.value)


def test_execute_complete_reads_an_error_payload_of_an_earlier_release() -> None:
    # a trigger deferred before an upgrade wrote no "permanent" key: Airflow's retries apply, as before
    old = {
        "status": "error",
        "resource": RES,
        "after": "e7",
        "events": [],
        "error": {"type": "AltinnForbiddenError", "message": "403", "retryable": False, "status_code": 403},
    }
    sensor = AltinnEventsSensor(task_id="wait", resource=RES, deferrable=True)
    with pytest.raises(AirflowException) as info:
        sensor.execute_complete({"ti": FakeTI()}, old)  # type: ignore[arg-type]
    assert type(info.value) is AirflowException

"""``EventFilter`` is the only declaration of the filter (issue 16, item 4; docs/architecture.rst,
"architecture-filter"): the public constructors spell the same keywords, the plumbing is derived."""

from __future__ import annotations

import inspect
from dataclasses import dataclass, fields
from typing import Any

import pytest

from airflow_provider_altinn_events.client.matching import FILTER_FIELDS, EventFilter
from airflow_provider_altinn_events.exceptions import AltinnConfigError
from airflow_provider_altinn_events.sensors.altinn_events import AltinnEventsSensor
from airflow_provider_altinn_events.triggers.altinn_events import (
    AltinnEventsSensorTrigger,
    AltinnEventsWatcherTrigger,
)

RES = "urn:altinn:resource:x"
PUBLIC = [AltinnEventsSensor, AltinnEventsSensorTrigger, AltinnEventsWatcherTrigger]


def test_filter_fields_are_the_dataclass_fields() -> None:
    assert tuple(f.name for f in fields(EventFilter)) == FILTER_FIELDS
    assert FILTER_FIELDS == ("resource", "event_types", "subject", "alternative_subject", "source", "where")


@pytest.mark.parametrize("cls", PUBLIC, ids=lambda c: c.__name__)
def test_public_constructors_spell_every_filter_field_first_and_in_order(cls: type) -> None:
    params = list(inspect.signature(cls.__init__).parameters.values())[1:]
    assert tuple(p.name for p in params[: len(FILTER_FIELDS)]) == FILTER_FIELDS
    for p in params[: len(FILTER_FIELDS)]:
        assert p.kind is inspect.Parameter.KEYWORD_ONLY, p.name
        # an optional field defaults to None in the constructors (None is the field's default in from_dict)
        assert (p.default is inspect.Parameter.empty) == (p.name == "resource"), p.name
    doc = inspect.getdoc(cls) or ""
    for name in FILTER_FIELDS:
        assert f":param {name}:" in doc or "filter arguments" in doc, (cls, name)


def test_sensor_templates_every_filter_field() -> None:
    assert tuple(AltinnEventsSensor.template_fields[: len(FILTER_FIELDS)]) == FILTER_FIELDS


def test_to_dict_and_from_dict_round_trip_every_field() -> None:
    event_filter = EventFilter(
        RES, ("a", "b"), subject=None, alternative_subject="/p/1", source="s%", where={"data.x": 1}
    )
    raw = event_filter.to_dict()
    assert list(raw) == list(FILTER_FIELDS)
    assert EventFilter.from_dict(raw) == event_filter
    assert EventFilter.from_arguments(**raw) == event_filter
    with pytest.raises(AltinnConfigError) as raised:
        EventFilter.from_arguments(resource=RES, colour="red")
    assert raised.value.field == "colour"
    with pytest.raises(AltinnConfigError) as raised:
        EventFilter.from_dict({})
    assert raised.value.field == "resource"


@dataclass(frozen=True, slots=True)
class _WithTag(EventFilter):
    """A filter field added after 0.1.0, as the worked example in docs/architecture.rst adds one."""

    tag: str | None = None


def test_a_field_added_later_is_serialized_only_when_set() -> None:
    plain = _WithTag(RES)
    assert plain.to_dict() == EventFilter(RES).to_dict()  # the identity of existing watchers is unchanged
    tagged = _WithTag(RES, tag="t")
    assert tagged.to_dict() == {**EventFilter(RES).to_dict(), "tag": "t"}
    assert _WithTag.from_dict(tagged.to_dict()) == tagged


@pytest.mark.parametrize(
    "kwargs",
    [{}, {"event_types": "a.b", "subject": "/party/1", "source": "https://x%", "where": {"data.s": "c"}}],
)
def test_triggers_pass_every_filter_argument_on(kwargs: dict[str, Any]) -> None:
    expected = EventFilter.from_arguments(resource=RES, **kwargs).to_dict()
    for cls in (AltinnEventsSensorTrigger, AltinnEventsWatcherTrigger):
        _, data = cls(resource=RES, **kwargs).serialize()
        assert {k: data[k] for k in FILTER_FIELDS} == expected

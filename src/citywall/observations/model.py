"""The observation model, aligned with OGC SensorThings API v1.1.

A Thing (station, S-DoT sensor, road link, hotspot) has a Location and Datastreams; a
Datastream observes one ObservedProperty (a `Quantity`) in one unit; an Observation is a
(datastream, phenomenonTime, result) triple. These are the shapes integrators send.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

import msgspec

# SensorThings requires a time zone on phenomenonTime; a naive time is ambiguous.
AwareDatetime = Annotated[datetime, msgspec.Meta(tz=True)]


class DatastreamIn(msgspec.Struct, forbid_unknown_fields=True):
    """A Datastream of a Thing being registered."""

    quantity: str
    key: str | None = None  # default: "<thing key>:<quantity>"
    name: str | None = None
    # Values the sensor sends when broken (S-DoT: -40 and 100); rejected as `sentinel`.
    sentinels: list[float] = []
    # The expected reporting interval; data older than 3 intervals counts as stale.
    interval_s: Annotated[float, msgspec.Meta(gt=0)] = 3600.0


class ThingIn(msgspec.Struct, forbid_unknown_fields=True):
    """A Thing with its Location (WGS84) and Datastreams."""

    key: Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
    name: str
    kind: Annotated[str, msgspec.Meta(pattern=r"^[a-z][a-z0-9_]*$")]
    lon: Annotated[float, msgspec.Meta(ge=-180, le=180)]
    lat: Annotated[float, msgspec.Meta(ge=-90, le=90)]
    datastreams: list[DatastreamIn]
    simulated: bool = False
    properties: dict[str, Any] = {}


class ObservationIn(msgspec.Struct, forbid_unknown_fields=True):
    """One observation as sent over HTTP: the datastream by id or key."""

    datastream: int | str
    phenomenonTime: AwareDatetime
    result: float
    unit: str | None = None


class Thing(msgspec.Struct, frozen=True):
    id: int
    key: str
    name: str
    kind: str
    lon: float
    lat: float
    gu: str | None
    dong: str | None
    simulated: bool
    properties: dict[str, Any]


class Datastream(msgspec.Struct, frozen=True):
    id: int
    key: str
    thing_id: int
    quantity: str
    unit: str
    name: str
    sentinels: list[float]
    interval_s: float

"""SensorThings Observation entities in, one `ObservationBatch` out.

HTTP (`POST /sta/v1.1/Observations`) and MQTT (`v1.1/Datastreams(id)/Observations`) both create
Observations from the same JSON; one reader keeps their errors identical. A body may hold one
entity (as the standard sends it) or an array of them; an entity that cannot be read is refused
alone, with the reason, and kept in the quarantine like any other refused row.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import msgspec
import numpy as np

from citywall.ingest.batch import NO_TIME, ObservationBatch, PayloadError
from citywall.observations.registry import Registry

_any = msgspec.json.Decoder()


def _time_us(value: Any) -> int:
    """phenomenonTime as an instant or an interval ("start/end": the end, when the value holds)."""
    if not isinstance(value, str):
        raise ValueError("phenomenonTime must be an ISO 8601 string")
    text = value.split("/")[-1].strip()
    t = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if t.tzinfo is None:
        raise ValueError(f"phenomenonTime {value!r} has no time zone")
    return int(t.timestamp()) * 1_000_000 + t.microsecond


def _result(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise ValueError("result must be a number")
    try:
        return float(value)
    except ValueError:  # a string that is no number: say so, not Python's "could not convert"
        raise ValueError(f"result must be a number, not {value!r}") from None


def _datastream(entity: dict[str, Any], path_ds: int | None) -> int | str:
    if path_ds is not None:
        return path_ds
    ds = entity.get("Datastream")
    if not isinstance(ds, dict) or "@iot.id" not in ds:
        raise ValueError('the Observation names no Datastream (give "Datastream": {"@iot.id": ...} or post to Datastreams(id)/Observations)')
    ref = ds["@iot.id"]
    if isinstance(ref, bool) or not isinstance(ref, (int, str)):
        raise ValueError("Datastream @iot.id must be an integer or a key")
    return ref


def decode_observations(body: bytes, registry: Registry, source: str, *, datastream: int | None = None, now_us: int) -> ObservationBatch:
    """Read one Observation entity or an array of them. `datastream` is the id from the path
    (Datastreams(id)/Observations); without phenomenonTime the server's time is used, as the
    standard says."""
    try:
        doc = _any.decode(body)
    except msgspec.DecodeError as exc:
        raise PayloadError(f"expected a SensorThings Observation as JSON: {exc}") from None
    entities = doc if isinstance(doc, list) else [doc]
    n = len(entities)
    refs: list[int | str] = []
    t_us = np.full(n, NO_TIME, dtype=np.int64)
    value = np.full(n, np.nan)
    reason = np.full(n, None, dtype=object)
    detail = np.full(n, None, dtype=object)
    for i, e in enumerate(entities):
        try:
            if not isinstance(e, dict):
                raise ValueError("an Observation must be a JSON object")
            if "result" not in e:
                raise ValueError("the Observation has no result")
            ref = _datastream(e, datastream)
            refs.append(ref)
            value[i] = _result(e["result"])
            t_us[i] = _time_us(e["phenomenonTime"]) if e.get("phenomenonTime") is not None else now_us
        except (ValueError, TypeError, OverflowError) as exc:
            if len(refs) <= i:
                refs.append(-1)
            reason[i], detail[i] = "malformed", str(exc)
    ds = registry.resolve(refs)
    bad = any(r is not None for r in reason)
    raws = [msgspec.json.encode(e).decode() for e in entities]
    return ObservationBatch(ds, t_us, value, None, reason if bad else None, detail if bad else None, raws.__getitem__, refs, source)

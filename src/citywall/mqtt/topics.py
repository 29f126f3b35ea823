"""Which MQTT topics citywall reads, and how a burst of messages becomes one ObservationBatch.

Topics (after an optional prefix, e.g. ``seoul/``, for a broker shared with other systems):

- ``v1.1/Datastreams(<id>)/Observations`` — the OGC SensorThings MQTT extension: the payload is
  one Observation entity (or an array), read by the same decoder as ``POST /sta/v1.1/Observations``.
- ``citywall/observations`` — the payload is the JSON array ``POST /api/observations`` takes.
- ``citywall/things/<thing key>/<quantity>`` — for small devices: ``{"t": "<ISO 8601>", "v": <number>}``
  or a bare number; without ``t`` the server's time is used. The Datastream is
  ``<thing key>:<quantity>``; the quantity is the last level, so a Thing key may contain ``/``
  (``citywall/things/gw-3/s17/pm10`` is ``gw-3/s17:pm10``). A key with ``+`` or ``#`` cannot be
  published to (MQTT wildcards): use the other two topics for such Things.

Messages that arrive together are decoded into ONE batch (source ``mqtt``) so that a burst costs
one commit; each row remembers its message, and a refused row is shown in the quarantine as
``<topic> <payload>``, the way ``mosquitto_sub -v`` prints a message. A payload that cannot be
read at all (not JSON, unknown topic) cannot become rows: it is returned as `Unreadable` and kept
whole with ``platform.pipeline.quarantine_payload`` (source ``mqtt:<topic>``), as is a payload
over `MAX_PAYLOAD` bytes (reason ``too_large``, never decoded). No payload can stop the listener:
anything unexpected while decoding one message makes that message `Unreadable` (``malformed``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import msgspec
import numpy as np

from citywall.ingest.batch import NO_TIME, ObservationBatch, PayloadError, decode_json
from citywall.observations.registry import Registry
from citywall.sensorthings.observations import decode_observations

SOURCE = "mqtt"
# What the listener subscribes to (below the prefix). Whole subtrees, so that a message on a topic
# citywall does not know is seen and quarantined instead of silently never arriving.
SUBSCRIPTIONS = ("v1.1/#", "citywall/#")
OBSERVATIONS_TOPIC = "citywall/observations"
MAX_PAYLOAD = 4 << 20  # bytes; bigger payloads are quarantined undecoded (decoding runs on the event loop)

_ST = re.compile(r"v1\.1/Datastreams\(([^)]*)\)/Observations")
_any = msgspec.json.Decoder()


@dataclass
class Unreadable:
    """A message with nothing in it that could become an observation row."""

    index: int  # position of the message in the burst
    topic: str
    body: bytes
    reason: str
    detail: str


@dataclass
class Decoded:
    batch: ObservationBatch | None  # every row of every readable message (None if there are none)
    unreadable: list[Unreadable] = field(default_factory=list)
    rows_of: list[int] = field(default_factory=list)  # message index of each row of `batch`


def subscriptions(prefix: str = "") -> list[str]:
    return [prefix + s for s in SUBSCRIPTIONS]


class _Rows:
    """Rows gathered from many messages, joined into one batch at the end."""

    def __init__(self) -> None:
        self.ds: list[np.ndarray] = []
        self.t: list[np.ndarray] = []
        self.v: list[np.ndarray] = []
        self.unit: list[np.ndarray | None] = []
        self.reason: list[np.ndarray | None] = []
        self.detail: list[np.ndarray | None] = []
        self.refs: list[int | str] = []
        self.sizes: list[int] = []
        self.shown: list[tuple[str, bytes, ObservationBatch | None, int]] = []  # per row: topic, body, sub-batch, row in it
        self.rows_of: list[int] = []

    def add(self, index: int, topic: str, body: bytes, sub: ObservationBatch) -> None:
        n = len(sub)
        self.ds.append(sub.ds)
        self.t.append(sub.t_us)
        self.v.append(sub.value)
        self.unit.append(sub.unit)
        self.reason.append(sub.pre_reason)
        self.detail.append(sub.pre_detail)
        self.refs.extend(sub.refs if sub.refs is not None else sub.ds.tolist())
        self.sizes.append(n)
        one = n == 1
        self.shown.extend((topic, body, None if one else sub, j) for j in range(n))
        self.rows_of.extend([index] * n)

    def batch(self) -> ObservationBatch | None:
        if not self.sizes:
            return None

        def objects(parts: list[np.ndarray | None]) -> np.ndarray | None:
            if all(p is None for p in parts):
                return None
            return np.concatenate([p if p is not None else np.full(n, None, dtype=object) for p, n in zip(parts, self.sizes)])

        shown = self.shown

        def raw(i: int) -> str:
            topic, body, sub, j = shown[i]
            text = body.decode("utf-8", "replace") if sub is None else sub.payload(j)
            return f"{topic} {text}"

        return ObservationBatch(
            ds=np.concatenate(self.ds), t_us=np.concatenate(self.t), value=np.concatenate(self.v), unit=objects(self.unit),
            pre_reason=objects(self.reason), pre_detail=objects(self.detail), raw=raw, refs=self.refs, source=SOURCE,
        )


def _time_us(value: Any) -> int:
    if not isinstance(value, str):
        raise ValueError('"t" must be an ISO 8601 string')
    t = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    if t.tzinfo is None:
        raise ValueError(f'"t" {value!r} has no time zone (add Z or +09:00)')
    return int(t.timestamp()) * 1_000_000 + t.microsecond


def decode_device(body: bytes, ref: str, registry: Registry, now_us: int) -> ObservationBatch:
    """``{"t": ISO 8601, "v": number}`` or a bare number for the datastream `ref`, as one row.
    A payload that is JSON but not this shape is one refused row (the datastream is known from the
    topic, so the quarantine can say which sensor sent it)."""
    try:
        doc = _any.decode(body)
    except msgspec.DecodeError as exc:
        raise PayloadError(f'expected {{"t": "<ISO 8601>", "v": <number>}} or a number: {exc}') from None
    t, v, why = now_us, np.nan, None
    try:
        if isinstance(doc, dict):
            if "v" not in doc:
                raise ValueError('the payload has no "v" (the value)')
            raw_v = doc["v"]
            if doc.get("t") is not None:
                t = _time_us(doc["t"])
        else:
            raw_v = doc
        if isinstance(raw_v, bool) or not isinstance(raw_v, (int, float)):
            raise ValueError('"v" must be a number')
        v = float(raw_v)
    except (ValueError, TypeError, OverflowError) as exc:
        t, why = NO_TIME, str(exc)
    ds = registry.resolve([ref])
    reason = detail = None
    if why is not None:
        reason, detail = np.array(["malformed"], dtype=object), np.array([why], dtype=object)
    return ObservationBatch(ds, np.array([t], dtype=np.int64), np.array([v]), None, reason, detail, None, [ref], SOURCE)


def _decode_one(name: str, topic: str, body: bytes, registry: Registry, now_us: int, prefix: str) -> ObservationBatch:
    """The rows of one message; PayloadError (payload not readable) or _Refused (reason, detail) if it has none."""
    if name == OBSERVATIONS_TOPIC:
        return decode_json(_nonempty(body), registry, SOURCE)
    if m := _ST.fullmatch(name):
        ds_id = m.group(1)
        if not (ds_id.isascii() and ds_id.isdigit()):  # not str.isdigit alone: '²' is a digit int() refuses
            raise _Refused("unknown_datastream", f"Datastreams({ds_id}): citywall Datastream ids are integers (see GET /sta/v1.1/Datastreams)")
        return decode_observations(_nonempty(body), registry, SOURCE, datastream=int(ds_id), now_us=now_us)
    parts = name.split("/")
    if len(parts) >= 4 and parts[:2] == ["citywall", "things"] and all(parts[2:]):
        return decode_device(_nonempty(body), f"{'/'.join(parts[2:-1])}:{parts[-1]}", registry, now_us)
    raise _Refused("unknown_topic", f"citywall reads no topic {topic!r}; topics: {prefix}v1.1/Datastreams(<id>)/Observations, "
                      f"{prefix}citywall/observations, {prefix}citywall/things/<thing key>/<quantity>")


def _nonempty(body: bytes) -> bytes:
    if not body:
        raise PayloadError("an empty payload (nothing to store; an empty retained message only clears the broker's copy)")
    return body


class _Refused(Exception):
    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason


def decode_messages(messages: list[tuple[str, bytes]], registry: Registry, now_us: int, prefix: str = "",
                    max_payload: int = MAX_PAYLOAD) -> Decoded:
    """Decode a burst of (topic, payload) messages into one batch plus the unreadable ones."""
    rows = _Rows()
    unreadable: list[Unreadable] = []
    for index, (topic, body) in enumerate(messages):
        try:
            if not topic.startswith(prefix):
                raise _Refused("unknown_topic", f"topic {topic!r} is outside the prefix {prefix!r}")
            if len(body) > max_payload:
                raise _Refused("too_large", f"a payload of {len(body):,} bytes; citywall reads at most {max_payload:,} a message "
                                            "(send big batches over HTTP, or split them)")
            sub = _decode_one(topic[len(prefix):], topic, body, registry, now_us, prefix)
        except PayloadError as exc:
            unreadable.append(Unreadable(index, topic, body, "malformed", str(exc)))
            continue
        except _Refused as exc:
            unreadable.append(Unreadable(index, topic, body, exc.reason, str(exc)))
            continue
        except Exception as exc:  # noqa: BLE001 - one odd payload must not stop the listener (it would come again after every reconnect)
            unreadable.append(Unreadable(index, topic, body, "malformed", f"could not read the payload: {type(exc).__name__}: {exc}"))
            continue
        if len(sub) == 0:
            unreadable.append(Unreadable(index, topic, body, "malformed", "the payload holds no observations (an empty array)"))
            continue
        rows.add(index, topic, body, sub)
    return Decoded(rows.batch(), unreadable, rows.rows_of)

"""A batch of observations in columns: the one shape every feed hands the pipeline.

HTTP, the simulator and (later) MQTT and replay all turn their input into an
`ObservationBatch`; rows they could not even parse arrive pre-rejected with the reason, so
the quarantine sees them too.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import msgspec
import numpy as np
import pyarrow as pa

from citywall.observations.model import ObservationIn
from citywall.observations.registry import Registry

NO_TIME = np.iinfo(np.int64).min


def order_by_stream_time(ds: np.ndarray, t_us: np.ndarray) -> np.ndarray:
    """The stable order of rows by (datastream, time): what duplicate checks and "newest value
    per datastream" need. Both keys usually fit one int64 (datastream id in the high bits, time
    since the batch's first in the low ones), whose stable sort is some 30 times faster here than
    `np.lexsort` over the pair; otherwise (ids or time spans too large) the pair is sorted."""
    if len(ds) < 2:
        return np.arange(len(ds))
    lo, span, top = int(t_us.min()), int(t_us.max()) - int(t_us.min()), int(ds.max())
    if int(ds.min()) >= 0 and span.bit_length() + top.bit_length() <= 62:
        key = (ds.astype(np.int64) << span.bit_length()) | (t_us - lo)
        return np.argsort(key, kind="stable")
    return np.lexsort((t_us, ds))


@dataclass
class ObservationBatch:
    ds: np.ndarray  # int64 datastream ids, -1 when the reference is unknown
    t_us: np.ndarray  # int64 microseconds since the epoch, UTC
    value: np.ndarray  # float64 results as sent
    unit: np.ndarray | None = None  # object array of unit strings (None = canonical)
    # Per-row reason and detail for rows rejected before validation (e.g. unparseable).
    pre_reason: np.ndarray | None = None
    pre_detail: np.ndarray | None = None
    # How to show row i in the quarantine: the original payload as text.
    raw: Callable[[int], str] | None = None
    refs: Sequence[int | str] | None = None  # the datastream references as sent
    source: str = "api"
    extra: dict = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.ds)

    def payload(self, i: int) -> str:
        if self.raw is not None:
            return self.raw(i)
        unit = None if self.unit is None else self.unit[i]
        ref = self.refs[i] if self.refs is not None else int(self.ds[i])
        return msgspec.json.encode({"datastream": ref, "phenomenon_time_us": int(self.t_us[i]), "result": float(self.value[i]), "unit": unit}).decode()

    @classmethod
    def from_arrow(cls, table: pa.Table, registry: Registry, source: str) -> ObservationBatch:
        """From an Arrow table with columns datastream (id or key), phenomenon_time, result[, unit]."""
        col = table.column("datastream")
        if pa.types.is_integer(col.type):
            ds = col.to_numpy(zero_copy_only=False).astype(np.int64)
            ok = (ds > 0) & (ds < registry.capacity)
            ds = np.where(ok, ds, -1)
            ds[ok] = np.where(registry.ds_known[ds[ok]], ds[ok], -1)
            refs = None
        else:
            refs = col.to_pylist()
            ds = registry.resolve(refs)
        t = table.column("phenomenon_time").cast(pa.timestamp("us", tz="UTC")).cast(pa.int64())
        unit = table.column("unit").to_numpy(zero_copy_only=False) if "unit" in table.column_names else None
        return cls(
            ds=ds,
            t_us=t.to_numpy(zero_copy_only=False),
            value=table.column("result").cast(pa.float64()).to_numpy(zero_copy_only=False),
            unit=unit,
            refs=refs,
            source=source,
        )


_strict = msgspec.json.Decoder(list[ObservationIn])
_lenient = msgspec.json.Decoder(list[msgspec.Raw])


class PayloadError(ValueError):
    """The body is not a JSON array of observations at all."""


def decode_json(body: bytes, registry: Registry, source: str) -> ObservationBatch:
    """Parse a JSON array of observations. A bad row is rejected alone, with msgspec's message."""
    try:
        rows: list[ObservationIn | None] = list(_strict.decode(body))
        errors: list[str | None] = [None] * len(rows)
        raws = None
    except msgspec.DecodeError:
        try:
            raws = _lenient.decode(body)
        except msgspec.DecodeError as exc:
            raise PayloadError(f"expected a JSON array of observations: {exc}") from None
        rows, errors = [], []
        for raw in raws:
            try:
                rows.append(msgspec.json.decode(raw, type=ObservationIn))
                errors.append(None)
            except msgspec.DecodeError as exc:
                rows.append(None)
                errors.append(str(exc))
    n = len(rows)
    refs: list[int | str] = [r.datastream if r is not None else -1 for r in rows]
    ds = registry.resolve(refs)
    t_us = np.fromiter(((int(r.phenomenonTime.timestamp()) * 1_000_000 + r.phenomenonTime.microsecond) if r else NO_TIME for r in rows), np.int64, n)
    value = np.fromiter((r.result if r else np.nan for r in rows), np.float64, n)
    units = [r.unit if r else None for r in rows]
    unit = np.array(units, dtype=object) if any(u is not None for u in units) else None
    pre_reason = pre_detail = None
    if any(e is not None for e in errors):
        pre_reason = np.array([None if e is None else "malformed" for e in errors], dtype=object)
        pre_detail = np.array(errors, dtype=object)
    raw_fn = (lambda i: bytes(raws[i]).decode("utf-8", "replace")) if raws is not None else (lambda i: msgspec.json.encode(rows[i]).decode())
    return ObservationBatch(ds, t_us, value, unit, pre_reason, pre_detail, raw_fn, refs, source)

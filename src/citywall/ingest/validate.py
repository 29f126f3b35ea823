"""The checks every observation passes before it is stored, done on whole columns at once.

Each refused row gets one reason code (the first check it fails) and a sentence a person
can act on. Reasons, in the order they are checked:
  malformed, unknown_datastream, unknown_unit, sentinel, out_of_range, not_integer,
  future_time, too_old, duplicate, conflicting_duplicate.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone

import numpy as np

from citywall.ingest.batch import NO_TIME, ObservationBatch, order_by_stream_time
from citywall.observations.registry import Registry

REASONS = (
    "malformed",
    "unknown_datastream",
    "unknown_unit",
    "sentinel",
    "out_of_range",
    "not_integer",
    "future_time",
    "too_old",
    "duplicate",
    "conflicting_duplicate",
)


@dataclass
class Limits:
    """How far from the server clock a phenomenonTime may be."""

    max_future_s: float = 300.0  # clocks drift; minutes ahead is a broken device
    max_age_s: float = 30 * 86400.0  # older than raw retention would be deleted at once


@dataclass
class Verdict:
    accepted: np.ndarray  # bool per row
    value: np.ndarray  # float64 in the canonical unit
    reason: np.ndarray  # object: reason code or None
    detail: np.ndarray  # object: sentence or None


def validate(
    batch: ObservationBatch,
    registry: Registry,
    last_t: np.ndarray,
    now_us: int,
    limits: Limits,
    existing: Callable[[np.ndarray, np.ndarray], np.ndarray],
    raw_from_us: int = 0,
) -> Verdict:
    """Judge every row. `last_t[ds]` is the newest stored time per datastream (from live state):
    rows newer than it cannot be duplicates; only older ones are looked up with `existing`."""
    n = len(batch)
    reason = np.full(n, None, dtype=object) if batch.pre_reason is None else batch.pre_reason.copy()
    detail = np.full(n, None, dtype=object) if batch.pre_detail is None else batch.pre_detail.copy()
    ok = np.array([r is None for r in reason], dtype=bool) if batch.pre_reason is not None else np.ones(n, dtype=bool)

    def reject(mask: np.ndarray, code: str, say: Callable[[int], str]) -> None:
        idx = np.flatnonzero(mask & ok)
        for i in idx.tolist():
            reason[i], detail[i] = code, say(i)
        ok[idx] = False

    ds, t, raw = batch.ds, batch.t_us, batch.value
    reject(t == NO_TIME, "malformed", lambda i: "phenomenonTime must be a time with a time zone")
    reject(~np.isfinite(raw), "malformed", lambda i: f"result must be a finite number, not {raw[i]!r}")
    reject(ds < 0, "unknown_datastream", lambda i: f"no datastream {_ref(batch, i)!r}; register its Thing first (POST /api/things)")
    dsi = np.where(ok, ds, 0)
    q = registry.ds_quantity[dsi]

    # Units: convert the (few) distinct unit strings, not every row.
    value = raw.copy()
    if batch.unit is not None:
        factor = np.ones(n)
        offset = np.zeros(n)
        bad = np.zeros(n, dtype=bool)
        pairs = {}
        for i in np.flatnonzero(ok & (batch.unit != None)).tolist():  # noqa: E711
            key = (int(q[i]), batch.unit[i])
            if key not in pairs:
                quantity = registry.quantities[registry.quantity_codes[key[0]]]
                pairs[key] = quantity.conversion(key[1] if isinstance(key[1], str) else repr(key[1]))
            conv = pairs[key]
            if conv is None:
                bad[i] = True
            else:
                factor[i], offset[i] = conv
        reject(bad, "unknown_unit", lambda i: f"unit {batch.unit[i]!r} is not a unit of {_quantity(registry, dsi[i]).code} (expected {_quantity(registry, dsi[i]).unit.symbol})")
        with np.errstate(over="ignore"):  # a huge value converts to inf, refused below as out of range
            value = raw * factor + offset

    sentinels = registry.ds_sentinels[dsi]
    reject((sentinels == raw[:, None]).any(axis=1), "sentinel", lambda i: f"{raw[i]:g} is a value this sensor sends when it is broken")
    low, high = registry.ds_low[dsi], registry.ds_high[dsi]
    reject((value < low) | (value > high), "out_of_range",
           lambda i: f"{_quantity(registry, dsi[i]).code} = {value[i]:g} {_quantity(registry, dsi[i]).unit.symbol} is outside the plausible range {low[i]:g}..{high[i]:g}")
    reject(registry.ds_integer[dsi] & (value != np.round(value)), "not_integer", lambda i: f"{_quantity(registry, dsi[i]).code} takes whole numbers, not {value[i]:g}")
    reject(t > now_us + int(limits.max_future_s * 1e6), "future_time", lambda i: f"phenomenonTime is {(t[i] - now_us) / 1e6:.0f} s ahead of the server clock")
    oldest = max(now_us - int(limits.max_age_s * 1e6), raw_from_us)
    reject(t < oldest, "too_old", lambda i: f"phenomenonTime is before {_iso(oldest)}, the start of the raw retention window")

    # Duplicates inside the batch: the first of each (datastream, time) wins.
    idx = np.flatnonzero(ok)
    if len(idx) > 1:
        order = idx[order_by_stream_time(ds[idx], t[idx])]  # stable: the first of equal keys stays first
        same = (ds[order][1:] == ds[order][:-1]) & (t[order][1:] == t[order][:-1])
        if same.any():
            first = order.copy()
            for k in np.flatnonzero(same).tolist():  # runs of equal keys point at their first row
                first[k + 1] = first[k]
            dup_rows, first_rows = order[1:][same], first[1:][same]
            equal = value[dup_rows] == value[first_rows]
            d_mask = np.zeros(n, dtype=bool)
            c_mask = np.zeros(n, dtype=bool)
            d_mask[dup_rows[equal]] = True
            c_mask[dup_rows[~equal]] = True
            firsts = dict(zip(dup_rows.tolist(), first_rows.tolist()))
            reject(d_mask, "duplicate", lambda i: f"same datastream and phenomenonTime as {_row(batch, firsts[i], i)}; already taken")
            reject(c_mask, "conflicting_duplicate", lambda i: f"{_row(batch, firsts[i], i)} has the same datastream and phenomenonTime with result {value[firsts[i]]:g}")

    # Duplicates of stored rows: only rows not newer than their datastream's newest can be.
    late = ok & (t <= last_t[dsi])
    if late.any():
        li = np.flatnonzero(late)
        stored = existing(ds[li], t[li])
        hit = ~np.isnan(stored)
        same = np.zeros(n, dtype=bool)
        diff = np.zeros(n, dtype=bool)
        same[li[hit & (stored == value[li])]] = True
        diff[li[hit & (stored != value[li])]] = True
        prior = dict(zip(li.tolist(), stored.tolist()))
        reject(same, "duplicate", lambda i: "already stored with the same result; nothing changed")
        reject(diff, "conflicting_duplicate", lambda i: f"already stored with result {prior[i]:g}; observations are not overwritten")
    return Verdict(ok, value, reason, detail)


def _row(batch: ObservationBatch, j: int, i: int) -> str:
    """Row j as the sender of row i knows it: batches committed together are validated as one."""
    starts = batch.extra.get("starts")
    if starts is None:
        return f"row {j} of this batch"
    bi, bj = int(np.searchsorted(starts, i, "right")) - 1, int(np.searchsorted(starts, j, "right")) - 1
    return f"row {j - starts[bj]} of this batch" if bi == bj else f"row {j - starts[bj]} of a batch committed just before"


def _iso(t_us: int) -> str:
    return datetime.fromtimestamp(t_us / 1e6, timezone.utc).isoformat(timespec="seconds")


def _ref(batch: ObservationBatch, i: int) -> int | str:
    return batch.refs[i] if batch.refs is not None else int(batch.ds[i])


def _quantity(registry: Registry, ds: int):  # noqa: ANN202
    return registry.quantities[registry.quantity_codes[registry.ds_quantity[ds]]]

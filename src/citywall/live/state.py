"""The live picture: the newest value of every datastream, and aggregates over places.

Held as numpy arrays indexed by datastream id, so a commit of 10,000 rows updates it in a
few array operations and a snapshot of every gu is one grouped reduction.
"""

from __future__ import annotations

import threading
from typing import Any

import numpy as np

from citywall.ingest.batch import NO_TIME, order_by_stream_time
from citywall.observations.registry import Registry

# A datastream is stale when its newest value is older than this many reporting intervals.
STALE_INTERVALS = 3.0


class LiveState:
    def __init__(self, registry: Registry) -> None:
        self.registry = registry
        self.lock = threading.Lock()
        self.last_t = np.full(registry.capacity, NO_TIME, dtype=np.int64)
        self.last_v = np.full(registry.capacity, np.nan)
        self.version = 0

    def _fit(self) -> int:
        """Grow to the registry; return how many ids every array read from now on covers."""
        n = self.registry.size  # first: see Registry.size
        cap = max(self.registry.capacity, n)
        if len(self.last_t) < cap:
            self.last_t = np.concatenate([self.last_t, np.full(cap - len(self.last_t), NO_TIME, dtype=np.int64)])
            self.last_v = np.concatenate([self.last_v, np.full(cap - len(self.last_v), np.nan)])
        return n

    def newest_times(self) -> np.ndarray:
        with self.lock:
            self._fit()
            return self.last_t

    def apply(self, ds: np.ndarray, t: np.ndarray, v: np.ndarray) -> np.ndarray:
        """Take accepted rows; return the datastream ids whose newest value changed."""
        if len(ds) == 0:
            return np.empty(0, dtype=np.int64)
        order = order_by_stream_time(ds, t)
        ds_s, t_s, v_s = ds[order], t[order], v[order]
        last = np.flatnonzero(np.append(ds_s[1:] != ds_s[:-1], True))
        ids, times, values = ds_s[last], t_s[last], v_s[last]
        with self.lock:
            self._fit()
            newer = times > self.last_t[ids]
            ids = ids[newer]
            self.last_t[ids] = times[newer]
            self.last_v[ids] = values[newer]
            if len(ids):
                self.version += 1
        return ids

    def values(self, ids: np.ndarray | None = None) -> dict[str, list]:
        """Newest (time in ms, value) of the given or all reporting datastreams, as columns."""
        with self.lock:
            self._fit()
            if ids is None:
                ids = np.flatnonzero(self.last_t != NO_TIME)
            return {"ids": ids.tolist(), "t": (self.last_t[ids] // 1000).tolist(), "v": self.last_v[ids].tolist()}

    def _fresh(self, now_us: int, n: int) -> tuple[np.ndarray, np.ndarray]:
        """Known and fresh masks over ids below `n`; the caller holds the lock and has fitted."""
        reg = self.registry
        known = reg.ds_known[:n]
        reporting = known & (self.last_t[:n] != NO_TIME)
        age_s = (now_us - self.last_t[:n]) / 1e6
        fresh = reporting & (age_s <= STALE_INTERVALS * reg.ds_interval[:n])
        return known, fresh

    def aggregates(self, now_us: int) -> dict[str, Any]:
        """Mean, min, max and count of fresh values per place, thing kind and quantity.

        Kinds are kept apart on purpose: an official air station and a low-cost S-DoT sensor
        in the same gu are different evidence.
        """
        reg = self.registry
        with self.lock:
            n = self._fit()
            _, fresh = self._fresh(now_us, n)
            ids = np.flatnonzero(fresh)
            values = self.last_v[ids]
        nq, nk = len(reg.quantity_codes), max(len(reg.kinds), 1)
        kq = reg.ds_kind[ids].astype(np.int64) * nq + reg.ds_quantity[ids]
        out: dict[str, Any] = {"city": _grouped(kq, values, 1, np.zeros(len(ids), np.int64), reg, nq, nk, ["city"]).get("city", {})}
        for level, codes, place in (("gu", reg.gu_codes, reg.ds_gu[ids]), ("region", reg.region_codes, reg.ds_region[ids])):
            inside = place >= 0
            out[level] = _grouped(kq[inside], values[inside], len(codes), place[inside].astype(np.int64), reg, nq, nk, codes)
        return out

    def freshness(self, now_us: int) -> dict[str, Any]:
        """Per kind of thing: how many datastreams exist, report, and are fresh; the newest time."""
        reg = self.registry
        with self.lock:
            n = self._fit()
            known, fresh = self._fresh(now_us, n)
            last_t = self.last_t[:n]
        kinds = reg.ds_kind[:n]
        out = {}
        for k, kind in enumerate(reg.kinds):
            mine = known & (kinds == k)
            reporting = mine & (last_t != NO_TIME)
            newest = int(last_t[reporting].max() // 1000) if reporting.any() else None
            out[kind] = {
                "datastreams": int(mine.sum()),
                "reporting": int(reporting.sum()),
                "fresh": int((mine & fresh).sum()),
                "stale": int((mine & ~fresh).sum()),
                "newest_ms": newest,
                "age_s": None if newest is None else round(now_us / 1e6 - newest / 1e3, 1),
            }
        return out


def _grouped(kq: np.ndarray, values: np.ndarray, n_places: int, place: np.ndarray, reg: Registry, nq: int, nk: int, codes: list[str]) -> dict[str, Any]:
    size = n_places * nk * nq
    key = place * (nk * nq) + kq
    count = np.bincount(key, minlength=size)
    total = np.bincount(key, weights=values, minlength=size)
    low = np.full(size, np.inf)
    high = np.full(size, -np.inf)
    np.minimum.at(low, key, values)
    np.maximum.at(high, key, values)
    out: dict[str, Any] = {}
    for g in np.flatnonzero(count).tolist():
        p, rest = divmod(g, nk * nq)
        k, q = divmod(rest, nq)
        out.setdefault(codes[p], {}).setdefault(reg.kinds[k], {})[reg.quantity_codes[q]] = {
            "mean": round(float(total[g] / count[g]), 4),
            "min": float(low[g]),
            "max": float(high[g]),
            "n": int(count[g]),
        }
    return out

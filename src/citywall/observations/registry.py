"""The registry of Things and Datastreams, indexed by dense integer ids.

Besides the objects it keeps one numpy array per attribute the pipeline checks (range,
sentinels, place), so validating a batch is a handful of array lookups, not a Python loop.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Sequence

import numpy as np

from citywall.city.model import City
from citywall.observations.model import Datastream, Thing, ThingIn
from citywall.observations.quantities import Quantity, quantities

MAX_SENTINELS = 4


class RegistryError(ValueError):
    """A registration refers to an unknown quantity or reuses a key for something else."""


class Registry:
    def __init__(self, city: City) -> None:
        self.city = city
        self.quantities: dict[str, Quantity] = quantities()
        self.quantity_codes = list(self.quantities)
        self.gu_codes = list(city.districts)
        self.region_codes = list(city.regions)
        self.kinds: list[str] = []
        self.things: dict[int, Thing] = {}
        self.datastreams: dict[int, Datastream] = {}
        self.thing_by_key: dict[str, int] = {}
        self.ds_by_key: dict[str, int] = {}
        self._lock = threading.Lock()
        # One past the largest datastream id (ids start at 1). Registration runs on the writer
        # thread while the live picture reads these arrays on the event loop: `size` is raised
        # only after the arrays hold the new rows, and arrays only grow, so a reader that takes
        # `size` first can slice any array it reads afterwards by it.
        self.size = 1
        self._alloc(1024)

    # -- arrays -------------------------------------------------------------------------
    def _alloc(self, capacity: int) -> None:
        def grow(name: str, fill: float | int, dtype: type, shape: tuple[int, ...] = ()) -> None:
            new = np.full((capacity, *shape), fill, dtype=dtype)
            old = getattr(self, name, None)
            if old is not None:
                new[: len(old)] = old
            setattr(self, name, new)

        grow("ds_known", False, np.bool_)
        grow("ds_quantity", -1, np.int16)
        grow("ds_low", np.nan, np.float64)
        grow("ds_high", np.nan, np.float64)
        grow("ds_integer", False, np.bool_)
        grow("ds_sentinels", np.nan, np.float64, (MAX_SENTINELS,))
        grow("ds_gu", -1, np.int16)
        grow("ds_region", -1, np.int16)
        grow("ds_kind", -1, np.int16)
        grow("ds_interval", np.inf, np.float64)
        self.capacity = capacity

    # -- registration -------------------------------------------------------------------
    def plan(self, things: Sequence[ThingIn]) -> tuple[list[Thing], list[Datastream]]:
        """New Things and Datastreams for `things`, with ids; known keys are reused, not duplicated."""
        with self._lock:
            next_thing = max(self.things, default=0) + 1
            next_ds = max(self.datastreams, default=0) + 1
            places = self.city.locate_many(np.array([t.lon for t in things]), np.array([t.lat for t in things]))
            new_things: list[Thing] = []
            new_ds: list[Datastream] = []
            seen_ds: set[str] = set()
            for spec, (gu, dong) in zip(things, places):
                thing_id = self.thing_by_key.get(spec.key)
                if thing_id is None:
                    thing_id, next_thing = next_thing, next_thing + 1
                    new_things.append(
                        Thing(thing_id, spec.key, spec.name, spec.kind, spec.lon, spec.lat, gu, dong, spec.simulated, spec.properties)
                    )
                for d in spec.datastreams:
                    q = self.quantities.get(d.quantity)
                    if q is None:
                        raise RegistryError(f"unknown quantity {d.quantity!r}; known: {', '.join(self.quantities)}")
                    if len(d.sentinels) > MAX_SENTINELS:
                        raise RegistryError(f"at most {MAX_SENTINELS} sentinel values per datastream")
                    key = d.key or f"{spec.key}:{d.quantity}"
                    if key in seen_ds:
                        raise RegistryError(f"datastream key {key!r} appears twice")
                    seen_ds.add(key)
                    existing = self.ds_by_key.get(key)
                    if existing is not None:
                        if self.datastreams[existing].quantity != d.quantity:
                            raise RegistryError(f"datastream {key!r} already observes {self.datastreams[existing].quantity}")
                        continue
                    new_ds.append(
                        Datastream(next_ds, key, thing_id, d.quantity, q.unit.symbol, d.name or f"{spec.name} {q.name_en}", list(d.sentinels), d.interval_s)
                    )
                    next_ds += 1
            return new_things, new_ds

    def add(self, things: Iterable[Thing], datastreams: Iterable[Datastream]) -> None:
        """Make planned (and stored) Things and Datastreams known to the pipeline."""
        with self._lock:
            for t in things:
                self.things[t.id] = t
                self.thing_by_key[t.key] = t.id
                if t.kind not in self.kinds:
                    self.kinds.append(t.kind)
            for d in datastreams:
                if d.id >= self.capacity:
                    self._alloc(max(self.capacity * 2, d.id + 1))
                thing = self.things[d.thing_id]
                q = self.quantities[d.quantity]
                self.datastreams[d.id] = d
                self.ds_by_key[d.key] = d.id
                self.ds_known[d.id] = True
                self.ds_quantity[d.id] = self.quantity_codes.index(d.quantity)
                self.ds_low[d.id], self.ds_high[d.id] = q.low, q.high
                self.ds_integer[d.id] = q.integer
                self.ds_sentinels[d.id] = np.nan
                self.ds_sentinels[d.id, : len(d.sentinels)] = d.sentinels
                self.ds_gu[d.id] = self.gu_codes.index(thing.gu) if thing.gu in self.gu_codes else -1
                region = self.city.region_of(thing.gu) if thing.gu else None
                self.ds_region[d.id] = self.region_codes.index(region) if region else -1
                self.ds_kind[d.id] = self.kinds.index(thing.kind)
                self.ds_interval[d.id] = d.interval_s
                self.size = max(self.size, d.id + 1)

    # -- lookups ------------------------------------------------------------------------
    def resolve(self, refs: Sequence[int | str]) -> np.ndarray:
        """Datastream ids for ids or keys; -1 where unknown."""
        out = np.empty(len(refs), dtype=np.int64)
        known, by_key = self.ds_known, self.ds_by_key
        cap = len(known)  # the array read, not self.capacity: registration may grow both meanwhile
        for i, ref in enumerate(refs):
            if isinstance(ref, str):
                out[i] = by_key.get(ref, -1)
            else:
                out[i] = ref if 0 < ref < cap and known[ref] else -1
        return out

    def select(self, *, quantity: str | None = None, gu: str | None = None, dong: str | None = None,
               region: str | None = None, kind: str | None = None) -> list[int]:
        """Datastream ids matching every filter given (the sets history queries aggregate)."""
        region_gus = set(self.city.regions[region].districts) if region else None
        out = []
        for d in list(self.datastreams.values()):  # a copy: the writer thread may be registering
            t = self.things[d.thing_id]
            if quantity and d.quantity != quantity:
                continue
            if gu and t.gu != gu or dong and t.dong != dong or kind and t.kind != kind:
                continue
            if region_gus is not None and t.gu not in region_gus:
                continue
            out.append(d.id)
        return out

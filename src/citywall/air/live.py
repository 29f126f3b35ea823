"""The live CAI of every air station, district, region and the city, recomputed as hours pass.

AirKorea's real-time index uses hourly values: the newest hour for the gases and the predicted
24 h moving average of the last 12 hours for PM. Those come from the store (hourly means of raw
rows), so the index is right after a restart and does not depend on what a client has seen.
"""

from __future__ import annotations

import math
import time
from collections import defaultdict
from typing import TYPE_CHECKING, Any

from citywall.air.cai import POLLUTANTS, cai, pm_predicted_24h

if TYPE_CHECKING:
    from citywall.platform import Platform

STATION_KIND = "air_station"
HOUR_US = 3_600_000_000
# The newest hour must be at most this old for a station's gases to count (an hourly feed lands late).
MAX_LAG_HOURS = 3


def station_inputs(series: dict[str, list[tuple[int, float]]], now_us: int) -> dict[str, float]:
    """The CAI inputs of one station from its hourly means per pollutant (hour start ms, mean)."""
    newest_hour = now_us // HOUR_US
    out: dict[str, float] = {}
    for pollutant, points in series.items():
        by_hour = {t * 1000 // HOUR_US: v for t, v in points}
        if not by_hour or newest_hour - max(by_hour) > MAX_LAG_HOURS:
            continue
        last = max(by_hour)
        if pollutant in ("pm10", "pm25"):
            hourly = [by_hour.get(h, math.nan) for h in range(last - 11, last + 1)]
            value = pm_predicted_24h(hourly, pollutant)
            if value is not None:
                out[pollutant] = value
        else:
            out[pollutant] = by_hour[last]
    return out


def combine(inputs: list[dict[str, float]]) -> dict[str, float]:
    """Mean concentration per pollutant over stations: a place's index is that of its average air."""
    acc: dict[str, list[float]] = defaultdict(list)
    for one in inputs:
        for k, v in one.items():
            acc[k].append(v)
    return {k: sum(v) / len(v) for k, v in acc.items()}


def index_of(inputs: dict[str, float]) -> dict[str, Any] | None:
    result = cai(**inputs)
    if result is None:
        return None
    return {**result.as_dict(), "inputs": {k: round(v, 4) for k, v in inputs.items()}}


class AirIndex:
    """Holds the newest computation; `refresh` runs off the event loop (it reads the store)."""

    def __init__(self, platform: Platform) -> None:
        self.platform = platform
        self.latest: dict[str, Any] = {"time_ms": None, "stations": {}, "gu": {}, "region": {}, "city": None}

    def refresh(self) -> dict[str, Any]:
        self.latest = self.compute(self.platform.clock.now_us())
        return self.latest

    def compute(self, now_us: int) -> dict[str, Any]:
        """The index as it stood at `now_us` (the present, or a past moment for replay)."""
        p = self.platform
        reg = p.registry
        streams = {}
        for ds_id in reg.select(kind=STATION_KIND):
            d = reg.datastreams[int(ds_id)]
            if d.quantity in POLLUTANTS:
                streams[d.id] = d
        # Twelve hours back from the newest hour a station may have (it may lag MAX_LAG_HOURS).
        rows = p.store.hourly_means(list(streams), now_us - now_us % HOUR_US - (11 + MAX_LAG_HOURS) * HOUR_US, now_us + 1)
        per_station: dict[int, dict[str, list[tuple[int, float]]]] = defaultdict(lambda: defaultdict(list))
        for ds, t, v in zip(rows["ds"], rows["t"], rows["v"]):
            d = streams[ds]
            per_station[d.thing_id][d.quantity].append((t, v))
        stations: dict[str, Any] = {}
        by_gu: dict[str, list[dict[str, float]]] = defaultdict(list)
        for thing_id, series in per_station.items():
            thing = reg.things[thing_id]
            inputs = station_inputs(series, now_us)
            stations[thing.key] = {"thing": thing_id, "gu": thing.gu, "cai": index_of(inputs)}
            if thing.gu:
                by_gu[thing.gu].append(inputs)
        city = p.city
        gu = {code: index_of(combine(v)) for code, v in by_gu.items()}
        region = {code: index_of(combine([i for g in r.districts for i in by_gu.get(g, [])])) for code, r in city.regions.items()}
        return {
            "time_ms": now_us // 1000,
            "computed_at_ms": int(time.time() * 1000),
            "method": "AirKorea CAI: newest hourly mean for gases, predicted 24 h average (C24E) for PM; places use the mean of their stations",
            "stations": stations,
            "gu": {k: v for k, v in gu.items() if v is not None},
            "region": {k: v for k, v in region.items() if v is not None},
            "city": index_of(combine([i for v in by_gu.values() for i in v])),
        }

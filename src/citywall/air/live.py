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

from citywall.air.aqi import AVERAGING as AQI_AVERAGING
from citywall.air.aqi import BeyondTable, aqi
from citywall.air.cai import POLLUTANTS, cai, pm_predicted_24h

if TYPE_CHECKING:
    from citywall.platform import Platform

STATION_KIND = "air_station"
METHODS = {
    "cai": "AirKorea CAI: newest hourly mean for gases, predicted 24 h average (C24E) for PM; places use the mean of their stations",
    "aqi": "US EPA AQI (PM2.5 table of 2024): 24 h mean for PM, 8 h mean for O3 and CO, newest hour for NO2 and SO2, "
           "each with three quarters of its hours; places use the mean of their stations",
}
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


def station_inputs_aqi(series: dict[str, list[tuple[int, float]]], now_us: int) -> dict[str, float]:
    """The AQI inputs of one station: the mean of the last 24 hours for PM, of the last 8 for O3 and
    CO, the newest hour for NO2 and SO2, each needing three quarters of its hours (EPA's rule)."""
    newest_hour = now_us // HOUR_US
    out: dict[str, float] = {}
    for pollutant, points in series.items():
        if pollutant not in AQI_AVERAGING:
            continue
        by_hour = {t * 1000 // HOUR_US: v for t, v in points}
        if not by_hour or newest_hour - max(by_hour) > MAX_LAG_HOURS:
            continue
        last = max(by_hour)
        hours = {"24h": 24, "8h": 8, "1h": 1}[AQI_AVERAGING[pollutant]]
        window = [by_hour[h] for h in range(last - hours + 1, last + 1) if h in by_hour and math.isfinite(by_hour[h])]
        if len(window) >= math.ceil(0.75 * hours):
            out[pollutant] = sum(window) / len(window)
    return out


def combine(inputs: list[dict[str, float]]) -> dict[str, float]:
    """Mean concentration per pollutant over stations: a place's index is that of its average air."""
    acc: dict[str, list[float]] = defaultdict(list)
    for one in inputs:
        for k, v in one.items():
            acc[k].append(v)
    return {k: sum(v) / len(v) for k, v in acc.items()}


def index_of(inputs: dict[str, float], scale: str = "cai") -> dict[str, Any] | None:
    try:
        result = cai(**inputs) if scale == "cai" else aqi(**inputs)
    except BeyondTable:  # 8-hour ozone or 1-hour SO2 beyond the AQI table: no index rather than a wrong one
        return None
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

    def compute(self, now_us: int, scale: str = "cai") -> dict[str, Any]:
        """The index as it stood at `now_us` (the present, or a past moment for replay): Korea's CAI,
        or with scale="aqi" the US EPA AQI (2024) from the averages that index asks for."""
        if scale not in ("cai", "aqi"):
            raise ValueError(f"unknown air index {scale!r}: cai or aqi")
        hours_back = 11 if scale == "cai" else 23
        p = self.platform
        reg = p.registry
        streams = {}
        for ds_id in reg.select(kind=STATION_KIND):
            d = reg.datastreams[int(ds_id)]
            if d.quantity in POLLUTANTS:
                streams[d.id] = d
        # Twelve hours back from the newest hour a station may have (it may lag MAX_LAG_HOURS).
        rows = p.store.hourly_means(list(streams), now_us - now_us % HOUR_US - (hours_back + MAX_LAG_HOURS) * HOUR_US, now_us + 1)
        per_station: dict[int, dict[str, list[tuple[int, float]]]] = defaultdict(lambda: defaultdict(list))
        for ds, t, v in zip(rows["ds"], rows["t"], rows["v"]):
            d = streams[ds]
            per_station[d.thing_id][d.quantity].append((t, v))
        stations: dict[str, Any] = {}
        by_gu: dict[str, list[dict[str, float]]] = defaultdict(list)
        for thing_id, series in per_station.items():
            thing = reg.things[thing_id]
            inputs = station_inputs(series, now_us) if scale == "cai" else station_inputs_aqi(series, now_us)
            stations[thing.key] = {"thing": thing_id, "gu": thing.gu, scale: index_of(inputs, scale)}
            if thing.gu:
                by_gu[thing.gu].append(inputs)
        city = p.city
        gu = {code: index_of(combine(v), scale) for code, v in by_gu.items()}
        region = {code: index_of(combine([i for g in r.districts for i in by_gu.get(g, [])]), scale) for code, r in city.regions.items()}
        return {
            "time_ms": now_us // 1000,
            "computed_at_ms": int(time.time() * 1000),
            "scale": scale,
            "method": METHODS[scale],
            "stations": stations,
            "gu": {k: v for k, v in gu.items() if v is not None},
            "region": {k: v for k, v in region.items() if v is not None},
            "city": index_of(combine([i for v in by_gu.values() for i in v]), scale),
        }

"""The 116 hotspots of Seoul's real-time city data: congestion level (1-4) and the population
range, every 5 minutes.

population = peak x daily profile of the place's kind (profiles.PEOPLE) x season x day of week
x weather x slow noise (+ baseball crowds at the two stadiums in season). The level follows
the population relative to the place's usual peak: 1 여유 (relaxed), 2 보통 (normal),
3 약간 붐빔 (slightly busy), 4 붐빔 (busy). citydata publishes the population as a range
(AREA_PPLTN_MIN / MAX), rounded to 500, 1,000 or 2,000 people; so does the simulator.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib.resources import files

import numpy as np
import yaml

from citywall.feeds.simulator import noise, profiles
from citywall.feeds.simulator.timebase import local, monthly
from citywall.feeds.simulator.weather import WeatherModel
from citywall.observations.model import DatastreamIn, ThingIn

LEVELS = {1: "여유", 2: "보통", 3: "약간 붐빔", 4: "붐빔"}
# Share of the usual peak at which a place turns 보통, 약간 붐빔, 붐빔.
THRESHOLDS = (0.5, 0.72, 0.9)
QUANTITIES = ("congestion_level", "population_min", "population_max")
SEASON = {
    "park": [0.55, 0.6, 0.85, 1.1, 1.15, 1.0, 0.92, 0.9, 1.05, 1.15, 0.9, 0.6],
    "hanriver": [0.25, 0.3, 0.55, 0.9, 1.1, 1.2, 1.25, 1.25, 1.1, 0.95, 0.55, 0.3],
    "mountain": [0.6, 0.6, 0.85, 1.1, 1.1, 0.9, 0.8, 0.8, 1.0, 1.25, 1.0, 0.7],
    "palace": [0.7, 0.75, 0.9, 1.1, 1.15, 1.0, 0.95, 0.95, 1.05, 1.15, 1.0, 0.8],
    "tourism": [0.85, 0.9, 0.95, 1.05, 1.05, 0.95, 1.0, 1.0, 1.0, 1.08, 1.0, 1.08],
}
OUTDOOR = {"park", "hanriver", "mountain", "palace"}


@dataclass
class Hotspot:
    code: str
    name: str
    category: str
    profile: str
    peak: float
    lat: float
    lon: float
    closed: int | None
    capacity: float
    home_share: float


def load_hotspots() -> list[Hotspot]:
    raw = yaml.safe_load((files("citywall.feeds.simulator") / "data" / "hotspots.yaml").read_text(encoding="utf-8"))
    return [Hotspot(h["code"], h["name"], h["category"], h["profile"], float(h["peak"]), float(h["lat"]), float(h["lon"]),
                    h.get("closed"), float(h.get("capacity", 0)), float(h.get("home_share", 0))) for h in raw]


def _band(pop: np.ndarray) -> np.ndarray:
    return np.where(pop < 5000, 500, np.where(pop < 15000, 1000, 2000))


class Hotspots:
    kind = "hotspot"
    interval_s = 300.0

    def __init__(self, seed: int, weather: WeatherModel) -> None:
        self.seed, self.weather = seed, weather
        self.places = load_hotspots()
        self.keys = [f"hotspot:{p.code}:{q}" for p in self.places for q in QUANTITIES]
        self.peak = np.array([p.peak for p in self.places])
        self._s = noise.stream_ids("hotspot", [p.code for p in self.places])

    def things(self) -> list[ThingIn]:
        return [ThingIn(
            key=f"hotspot:{p.code}", name=p.name, kind=self.kind, lon=p.lon, lat=p.lat,
            datastreams=[DatastreamIn(quantity=q, interval_s=self.interval_s) for q in QUANTITIES],
            simulated=True,
            properties={"source": "citywall simulator", "area_cd": p.code, "area_nm": p.name, "category": p.category,
                        "profile": p.profile, "levels": LEVELS},
        ) for p in self.places]

    def population(self, ticks: np.ndarray) -> np.ndarray:
        """(ticks, places) people present (unrounded)."""
        ticks = np.asarray(ticks, dtype=np.int64)
        lt = local(ticks)
        w = self.weather.at(ticks)
        seed, t = self.seed, lt.t_s[:, None]
        raining = (w.precipitation > 0)[:, None]
        out = np.empty((len(ticks), len(self.places)))
        for j, p in enumerate(self.places):
            shape = profiles.people(p.profile, lt)
            if p.profile in SEASON:
                shape = shape * monthly(SEASON[p.profile], lt.doy)
            if p.profile == "nightlife":  # Friday and Saturday nights
                late = (lt.hour >= 18) | (lt.hour < 3)
                shape = shape * np.where(late & ((lt.weekday == 4) | (lt.weekday == 5)), 1.15, 1.0)
            if p.profile == "hanriver":  # summer nights on the river
                shape = shape * np.where((lt.month >= 6) & (lt.month <= 8) & (lt.hour >= 18), 1.15, 1.0)
            if p.closed is not None:
                shape = shape * np.where((lt.weekday == p.closed) & ~lt.holiday, 0.25, 1.0)
            out[:, j] = shape
        out *= self.peak
        # Rain keeps people out of parks and off the river; everywhere a little.
        outdoor = np.array([p.profile in OUTDOOR for p in self.places])
        out *= np.where(raining, np.where(outdoor, 0.35, 0.88), 1.0)
        # Baseball: the two domed/open stadiums in season (April-October), Tuesday to Sunday.
        for j, p in enumerate(self.places):
            if p.capacity:
                out[:, j] += self._games(lt, p, j)
        out *= np.exp(0.12 * noise.red(seed, self._s[None, :], t, (1800.0, 6 * 3600.0)) - 0.007)
        return np.maximum(out, 0.01 * self.peak)

    def _games(self, lt, p: Hotspot, j: int) -> np.ndarray:  # noqa: ANN001
        day = lt.day
        season = (lt.month >= 4) & (lt.month <= 10) & (lt.weekday != 0)
        home = noise.uniform(self.seed, self._s[j] ^ np.uint64(17), day) < p.home_share
        fill = 0.4 + 0.6 * noise.uniform(self.seed, self._s[j] ^ np.uint64(19), day) ** 0.7
        start = np.where(lt.weekday == 6, 14.0, np.where(lt.weekday == 5, 17.0, 18.5))
        h = lt.hour - start
        crowd = np.clip((h + 1.5) / 1.5, 0, 1) * np.clip((4.0 - h), 0, 1)  # arrive 1.5 h before, ~3.5 h game, leave
        return np.where(season & home, p.capacity * fill * crowd, 0.0)

    def generate(self, ticks: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        ticks = np.asarray(ticks, dtype=np.int64)
        pop = self.population(ticks)
        ratio = pop / self.peak
        level = 1 + (ratio >= THRESHOLDS[0]).astype(np.int64) + (ratio >= THRESHOLDS[1]) + (ratio >= THRESHOLDS[2])
        band = _band(pop)
        low = np.floor(pop / band) * band
        high = low + band
        values = np.stack([level.astype(np.float64), low, high], axis=2).reshape(len(ticks), -1)
        n, m = values.shape
        return np.tile(np.arange(m), n), np.repeat(ticks, m), values.ravel()

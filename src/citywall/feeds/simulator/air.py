"""The 25 district air stations (도시대기측정소): PM10, PM2.5, O3, NO2, CO, SO2, hourly.

Every pollutant is a seasonal and daily cycle times shared "meteorology" factors, each a
seeded AR(1) process in hourly steps:
  city    (one for Seoul: synoptic stagnation, transboundary inflow; phi 0.97, ~1.5 days)
  gx, gy  (east-west and north-south gradients across the city; phi 0.93)
  region  (one per air-quality region 권역; phi 0.92)
  local   (one per gu; phi 0.8) and a fast local term (phi 0.5)
so neighbouring districts move together and distant ones less. Episodes (episodes.py) add
yellow dust and winter smog on top; rain washes particles out and wind disperses them.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib.resources import files

import numpy as np
import yaml

from citywall.city.model import City
from citywall.feeds.simulator import noise
from citywall.feeds.simulator.episodes import EpisodeCalendar
from citywall.feeds.simulator.timebase import daily, local, monthly
from citywall.feeds.simulator.weather import WIND, WeatherModel
from citywall.observations.model import DatastreamIn, ThingIn

POLLUTANTS = ("pm10", "pm25", "o3", "no2", "co", "so2")

# Monthly means, January..December, for a Seoul urban station in recent years (2019-2023),
# without the episodes (which add on top); see docs/simulator.md.
PM25_MEAN = [27, 26, 25, 21, 19, 17, 14, 11, 10, 13, 19, 23]  # ug/m3
PM10_RATIO = [1.55, 1.6, 1.75, 2.05, 2.1, 1.8, 1.6, 1.65, 1.8, 1.9, 1.85, 1.6]  # PM10 / PM2.5
NO2_MEAN = [0.031, 0.030, 0.028, 0.024, 0.021, 0.018, 0.016, 0.015, 0.017, 0.022, 0.027, 0.030]  # ppm
O3_BACKGROUND = [0.021, 0.027, 0.036, 0.045, 0.048, 0.043, 0.033, 0.029, 0.029, 0.026, 0.020, 0.018]  # ppm
CO_MEAN = [0.55, 0.5, 0.45, 0.4, 0.38, 0.35, 0.32, 0.3, 0.32, 0.38, 0.45, 0.52]  # ppm
SO2_MEAN = [0.0038, 0.0036, 0.0034, 0.0031, 0.003, 0.0028, 0.0025, 0.0024, 0.0025, 0.0028, 0.0032, 0.0036]  # ppm
# Daily shapes, hour 0..23 (multipliers). PM: the boundary layer is shallow at night and in the
# morning rush, deep and well-mixed in the afternoon. NO2/CO: the two rush hours.
PM_SHAPE = [1.06, 1.05, 1.03, 1.0, 0.98, 0.98, 1.0, 1.05, 1.1, 1.1, 1.05, 0.98, 0.92, 0.88, 0.86, 0.87,
            0.9, 0.95, 1.0, 1.03, 1.06, 1.08, 1.08, 1.07]
TRAFFIC_SHAPE = [0.95, 0.9, 0.85, 0.82, 0.82, 0.88, 1.0, 1.15, 1.2, 1.1, 0.98, 0.9, 0.85, 0.83, 0.83, 0.86,
                 0.93, 1.05, 1.15, 1.2, 1.2, 1.15, 1.08, 1.0]
# Ozone builds with sunlight through the day and peaks mid-afternoon.
O3_SHAPE = [0.55, 0.5, 0.47, 0.45, 0.43, 0.42, 0.42, 0.45, 0.55, 0.68, 0.82, 0.93, 1.0, 1.05, 1.08, 1.06,
            1.0, 0.9, 0.78, 0.7, 0.65, 0.62, 0.6, 0.57]
ROUND = {"pm10": 0, "pm25": 0, "o3": 3, "no2": 3, "co": 1, "so2": 3}


@dataclass
class Station:
    gu: str
    name: str
    site: str
    lon: float
    lat: float
    traffic: float
    region: str
    region_ko: str


def load_stations(city: City) -> list[Station]:
    raw = yaml.safe_load((files("citywall.feeds.simulator") / "data" / "air_stations.yaml").read_text(encoding="utf-8"))
    by_gu = {s["gu"]: s for s in raw}
    out = []
    for gu, area in city.districts.items():
        region = city.region_of(gu) or ""
        region_ko = city.regions[region].name_ko if region else ""
        s = by_gu.get(gu)
        if s is None:  # another city: a point inside the district
            lon, lat = area.centroid
            s = {"name": area.name_ko, "site": f"{area.name_ko} (inside the district)", "lon": lon, "lat": lat, "traffic": 1.0}
        out.append(Station(gu, s["name"], s["site"], float(s["lon"]), float(s["lat"]), float(s.get("traffic", 1.0)), region, region_ko))
    return out


class AirModel:
    """Continuous pollutant fields at the stations; the S-DoT sensors read them too."""

    def __init__(self, seed: int, city: City, weather: WeatherModel, episodes: EpisodeCalendar) -> None:
        self.seed, self.weather, self.episodes = seed, weather, episodes
        self.stations = load_stations(city)
        st = self.stations
        self.lon = np.array([s.lon for s in st])
        self.lat = np.array([s.lat for s in st])
        self.x = (self.lon - 126.98) / 0.17  # about -1 (Gangseo) .. +1 (Gangdong)
        self.y = (self.lat - 37.56) / 0.09
        regions = sorted({s.region for s in st})
        self.region_index = np.array([regions.index(s.region) for s in st])
        self.traffic = np.array([s.traffic for s in st])
        n = len(st)
        self.offset = 0.08 * noise.normal(seed, noise.stream_id("air:offset"), np.arange(n))
        self._city = noise.stream_ids("air:city", ["pm", "gx", "gy"])
        self._region = noise.stream_ids("air:region", regions)
        self._local = noise.stream_ids("air:local", [s.gu for s in st])
        self._fast = noise.stream_ids("air:fast", [s.gu for s in st])
        self._gas = noise.stream_ids("air:gas", [s.gu for s in st])
        self._coarse = noise.stream_ids("air:coarse", [s.gu for s in st])
        # Yellow dust comes with north-westerlies: the west of the city first (up to ~2 h earlier).
        self.dust_delay_h = 2.0 * (self.lon - self.lon.min()) / max(np.ptp(self.lon), 1e-9)
        self.episode_gain = np.exp(0.12 * noise.normal(seed, noise.stream_id("air:episode_gain"), np.arange(n)))

    def fields(self, t_us: np.ndarray) -> dict[str, np.ndarray]:
        """Unrounded concentrations, shape (len(t_us), stations)."""
        t_us = np.atleast_1d(np.asarray(t_us, dtype=np.int64))
        lt = local(t_us)
        w = self.weather.at(t_us)
        seed, t_s, doy, hour = self.seed, lt.t_s, lt.doy, lt.hour
        c = noise.ar1_at(seed, self._city, t_s, 0.97)
        city, gx, gy = c[:, :1], c[:, 1:2], c[:, 2:3]
        region = noise.ar1_at(seed, self._region, t_s, 0.92)[:, self.region_index]
        loc = noise.ar1_at(seed, self._local, t_s, 0.8)
        fast = noise.ar1_at(seed, self._fast, t_s, 0.5)
        gas = noise.ar1_at(seed, self._gas, t_s, 0.85)
        col = lambda a: np.asarray(a)[:, None]  # noqa: E731

        spread = 0.36 * city + 0.11 * (self.x * gx + self.y * gy) + 0.17 * region + 0.11 * loc + 0.06 * fast + self.offset
        var = 0.36**2 + 0.11**2 * (self.x**2 + self.y**2) + 0.17**2 + 0.11**2 + 0.06**2
        wind_rel = np.clip(w.wind_speed / monthly(WIND, doy), 0.2, 5)
        washout = 0.3 * np.minimum(w.precipitation, 6) / 6
        offday = np.where(lt.offday, 0.97, 1.0)
        log_pm = (np.log(col(monthly(PM25_MEAN, doy))) - var / 2 + spread + col(np.log(daily(PM_SHAPE, hour)))
                  - col(0.22 * np.log(wind_rel)) - col(washout) + col(np.log(offday)))
        pm25_base = np.exp(log_pm)

        dust = self.episodes.intensity("yellow_dust", t_us, self.dust_delay_h) * self.episode_gain
        smog = self.episodes.intensity("winter_smog", t_us, np.zeros(len(self.x))) * self.episode_gain
        smog_rel = np.clip(smog / 60.0, 0, 2)
        coarse = np.exp(0.12 * noise.ar1_at(seed, self._coarse, t_s, 0.7) - 0.0072)
        pm25 = pm25_base + smog + 0.16 * dust
        # In haze the fine fraction grows: PM10/PM2.5 falls as PM2.5 rises.
        haze = np.clip(pm25_base / col(monthly(PM25_MEAN, doy)), 0.2, 6) ** -0.3
        pm10 = pm25_base * col(monthly(PM10_RATIO, doy)) * haze * coarse + 1.25 * smog + dust

        traffic = col(daily(TRAFFIC_SHAPE, hour)) * col(np.where(lt.weekday == 6, 0.8, np.where(lt.offday, 0.87, 1.0)))
        stagnation = np.exp(0.25 * city + 0.1 * (self.x * gx + self.y * gy) + 0.15 * region + 0.18 * gas - 0.06)
        no2 = col(monthly(NO2_MEAN, doy)) * self.traffic * traffic * stagnation * (1 + 0.35 * smog_rel) / col(wind_rel**0.25)
        co = col(monthly(CO_MEAN, doy)) * self.traffic**0.5 * traffic**0.6 * np.exp(0.2 * city + 0.12 * gas - 0.03) * (1 + 0.25 * smog_rel)
        so2 = col(monthly(SO2_MEAN, doy)) * np.exp(0.15 * city + 0.2 * fast - 0.03)

        # Ozone: background x daily cycle, plus photochemistry on warm sunny days (and the
        # summer episodes), minus titration by fresh NO where NO2 is high.
        daylight = col(w.daylight)
        warm = col(np.clip((w.temperature - 12) / 18, 0, 1.3))
        shape = col(daily(O3_SHAPE, hour))
        ozone_ep = self.episodes.intensity("ozone", t_us, np.zeros(len(self.x))) * (1 + 0.1 * self.x)
        o3 = (col(monthly(O3_BACKGROUND, doy)) * shape * np.exp(0.15 * region - 0.1 * city)
              + 0.035 * daylight * warm * shape + ozone_ep * daylight * shape)
        o3 = o3 * np.exp(-0.3 * (no2 / col(monthly(NO2_MEAN, doy)) - 1)) * np.exp(0.06 * fast)
        return {"pm10": pm10, "pm25": pm25, "o3": o3, "no2": no2, "co": co, "so2": so2}


class AirStations:
    """The feed component: 25 Things, 6 hourly datastreams each."""

    kind = "air_station"
    interval_s = 3600.0

    def __init__(self, model: AirModel, missing_rate: float = 0.003) -> None:
        self.model = model
        self.missing_rate = missing_rate
        self.keys = [f"air:{s.gu}:{q}" for s in model.stations for q in POLLUTANTS]
        self._missing = noise.stream_id("air:missing")

    def things(self) -> list[ThingIn]:
        out = []
        for s in self.model.stations:
            out.append(ThingIn(
                key=f"air:{s.gu}", name=f"{s.name} 도시대기측정소", kind=self.kind, lon=s.lon, lat=s.lat,
                datastreams=[DatastreamIn(quantity=q, interval_s=self.interval_s) for q in POLLUTANTS],
                simulated=True,
                properties={"source": "citywall simulator", "station": s.name, "gu": s.gu, "site": s.site,
                            "region": s.region_ko, "region_code": s.region, "network": "도시대기측정망 (urban background)"},
            ))
        return out

    def generate(self, ticks: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        f = self.model.fields(ticks)
        cols = []
        for q in POLLUTANTS:
            v = np.round(f[q], ROUND[q])
            if q in ("pm10", "pm25"):
                v = np.maximum(v, 1.0)
            elif q in ("o3", "no2", "so2"):
                v = np.maximum(v, 0.001)
            else:
                v = np.maximum(v, 0.1)
            cols.append(v)
        cols[0] = np.maximum(cols[0], cols[1])  # PM10 holds PM2.5
        values = np.stack(cols, axis=2).reshape(len(ticks), -1)  # (ticks, stations * pollutants)
        n, m = values.shape
        idx = np.tile(np.arange(m), n)
        t = np.repeat(ticks, m)
        v = values.ravel()
        # Stations miss an hour now and then (calibration, maintenance): blanks in the real data.
        keep = noise.uniform(self.model.seed, self._missing + idx.astype(np.uint64), t // 3_600_000_000) >= self.missing_rate
        return idx[keep], t[keep], v[keep]

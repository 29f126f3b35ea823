"""Seoul's weather as a deterministic function of time: the KMA Seoul station (108) and the
city-wide state every other part of the simulator reads (temperature for ozone and S-DoT,
rain for wash-out, road speeds and park visits, cloud for light and UV).

Calibration (KMA climate normals 1991-2020 for Seoul, station 108): monthly mean temperature,
humidity, wind speed and precipitation; see docs/simulator.md.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from citywall.feeds.simulator import noise
from citywall.feeds.simulator.timebase import LocalTime, daily, local, monthly, sun_cos_zenith
from citywall.observations.model import DatastreamIn, ThingIn

# KMA 1991-2020 normals, Seoul (108), January..December.
TEMP_MEAN = [-1.9, 0.7, 6.1, 12.6, 18.2, 22.7, 25.3, 26.1, 21.6, 15.0, 7.5, 0.2]  # degC
TEMP_RANGE = [8.0, 8.6, 9.4, 10.2, 9.8, 8.3, 6.3, 6.8, 7.9, 9.5, 8.9, 8.1]  # daily max - min, degC (approx.)
HUMIDITY = [56, 55, 57, 57, 62, 68, 78, 75, 70, 65, 62, 58]  # % (approx.)
WIND = [2.4, 2.6, 2.8, 2.8, 2.5, 2.2, 2.2, 2.0, 1.9, 2.0, 2.2, 2.4]  # m/s
PRECIP_MM = [16.8, 28.2, 36.9, 72.9, 103.6, 129.5, 414.4, 348.2, 141.5, 52.2, 51.1, 22.6]  # monthly totals
RAIN_HOUR_FRACTION = [0.035, 0.045, 0.06, 0.07, 0.08, 0.09, 0.20, 0.15, 0.09, 0.06, 0.07, 0.05]
PREVAILING_WIND_DEG = [295, 295, 285, 260, 235, 225, 215, 220, 250, 280, 295, 300]  # NW in winter, SW in summer
CLOUD_BIAS = [-0.4, -0.3, -0.1, 0.0, 0.0, 0.4, 0.9, 0.6, 0.2, -0.3, -0.2, -0.4]
_HOURS_IN_MONTH = [744, 678, 744, 720, 744, 720, 744, 744, 720, 744, 720, 744]

# Shape of the daily temperature cycle (-1 at the dawn minimum, +1 mid-afternoon), hour 0..23.
TEMP_SHAPE = [-0.55, -0.66, -0.76, -0.85, -0.93, -0.99, -1.0, -0.85, -0.6, -0.3, 0.0, 0.3, 0.58, 0.8,
              0.95, 1.0, 0.95, 0.8, 0.58, 0.35, 0.15, -0.05, -0.22, -0.4]
WIND_SHAPE = [0.8, 0.78, 0.76, 0.75, 0.75, 0.77, 0.82, 0.9, 1.0, 1.1, 1.2, 1.28, 1.33, 1.36, 1.36, 1.33,
              1.26, 1.16, 1.05, 0.96, 0.9, 0.86, 0.84, 0.82]

KMA_SEOUL = {"id": "108", "name": "서울 (108) 종관기상관측소", "lon": 126.9658, "lat": 37.5714,
             "address": "서울특별시 종로구 송월길 52 (송월동)"}


def _ppf(p: float) -> float:
    """Inverse standard normal CDF (bisection; called for 12 monthly values)."""
    lo, hi = -8.0, 8.0
    for _ in range(80):
        mid = (lo + hi) / 2
        if 0.5 * (1 + math.erf(mid / math.sqrt(2))) < p:
            lo = mid
        else:
            hi = mid
    return (lo + hi) / 2


# Rain when a unit-variance "wetness" process exceeds the monthly quantile; the intensity is
# scaled so the expected monthly total matches the normal.
# The excess is raised to RAIN_POWER so that downpours (tens of mm/h) happen in summer.
RAIN_POWER = 1.8
_Q = [_ppf(1 - f) for f in RAIN_HOUR_FRACTION]


def _mean_excess(q: float) -> float:
    """E[(Z - q)^RAIN_POWER | Z > q] for a standard normal Z, by quadrature."""
    z = np.linspace(q, q + 12, 4001)
    pdf = np.exp(-z * z / 2)
    return float(np.sum((z - q) ** RAIN_POWER * pdf) / np.sum(pdf))


_EXCESS = [_mean_excess(q) for q in _Q]
_MEAN_INTENSITY = [tot / (f * h) for tot, f, h in zip(PRECIP_MM, RAIN_HOUR_FRACTION, _HOURS_IN_MONTH)]


@dataclass
class Weather:
    temperature: np.ndarray
    humidity: np.ndarray
    wind_speed: np.ndarray
    wind_direction: np.ndarray
    precipitation: np.ndarray  # mm/h
    cloud: np.ndarray  # 0 clear .. 1 overcast
    cos_zenith: np.ndarray
    lt: LocalTime

    @property
    def sun(self) -> np.ndarray:
        """Relative clear-sky irradiance, 0 at night, ~1 at a high summer sun."""
        return np.clip(self.cos_zenith, 0, None) ** 1.15

    @property
    def daylight(self) -> np.ndarray:
        """Relative irradiance reaching the ground after clouds."""
        return self.sun * (1 - 0.72 * self.cloud**1.5)


class WeatherModel:
    def __init__(self, seed: int) -> None:
        self.seed = seed
        self._s = {n: noise.stream_id(f"weather:{n}") for n in
                   ("synoptic", "tfast", "humid", "wind", "winddir", "wet", "spell", "cloud", "gust")}

    def at(self, t_us: np.ndarray) -> Weather:
        t_us = np.atleast_1d(np.asarray(t_us, dtype=np.int64))
        lt = local(t_us)
        t_s, doy, hour = lt.t_s, lt.doy, lt.hour
        s, seed = self._s, self.seed
        ar = lambda name, phi: noise.ar1_at(seed, np.array([s[name]], dtype=np.uint64), t_s, phi)[:, 0]  # noqa: E731

        # Wetness: fast showers on top of slow rainy spells (the monsoon's weeks of rain).
        wet = 0.75 * ar("wet", 0.9) + 0.66 * ar("spell", 0.99)
        q = monthly(_Q, doy)
        excess = np.clip(wet - q, 0, None)
        precip = excess**RAIN_POWER / monthly(_EXCESS, doy) * monthly(_MEAN_INTENSITY, doy)
        precip = np.where(precip < 0.1, 0.0, np.round(precip, 1))
        raining = precip > 0
        cloud_latent = 1.5 * (0.7 * wet + 0.7 * ar("cloud", 0.9)) + monthly(CLOUD_BIAS, doy)
        cloud = 1 / (1 + np.exp(-cloud_latent))
        cloud = np.where(raining, np.maximum(cloud, 0.9), cloud)

        cz = sun_cos_zenith(t_s)
        dtr = monthly(TEMP_RANGE, doy)
        shape = daily(TEMP_SHAPE, hour)
        day_part = np.where(shape > 0, shape * (1 - 0.5 * cloud), shape * (1 - 0.3 * cloud))
        anomaly_sd = monthly([3.4, 3.2, 2.8, 2.4, 2.0, 1.7, 1.4, 1.5, 1.8, 2.3, 2.8, 3.2], doy)
        temp = (monthly(TEMP_MEAN, doy) + dtr / 2 * day_part + anomaly_sd * ar("synoptic", 0.985)
                + 0.5 * noise.smooth(seed, s["tfast"], t_s, 3 * 3600.0) - 1.2 * raining)

        rh = (monthly(HUMIDITY, doy) - 13 * shape * dtr / 9 + 9 * ar("humid", 0.95) + 10 * (cloud - 0.5))
        rh = np.where(raining, np.maximum(rh, 88 + 2 * np.minimum(precip, 5)), rh)
        rh = np.clip(rh, 12, 99)

        ws = monthly(WIND, doy) * daily(WIND_SHAPE, hour) * np.exp(0.35 * ar("wind", 0.9) - 0.06)
        ws = ws * (1 + 0.15 * noise.smooth(seed, s["gust"], t_s, 600.0))
        wd = (monthly(PREVAILING_WIND_DEG, doy) + 55 * ar("winddir", 0.93)) % 360
        return Weather(temp, rh, np.clip(ws, 0, None), wd, precip, cloud, cz, lt)


class WeatherStation:
    """KMA's Seoul station (108), hourly."""

    kind = "weather"
    interval_s = 3600.0
    quantities = ("temperature", "humidity", "wind_speed", "wind_direction", "precipitation")

    def __init__(self, model: WeatherModel) -> None:
        self.model = model
        self.key = f"weather:{KMA_SEOUL['id']}"
        self.keys = [f"{self.key}:{q}" for q in self.quantities]

    def things(self) -> list[ThingIn]:
        return [ThingIn(
            key=self.key, name=KMA_SEOUL["name"], kind=self.kind, lon=KMA_SEOUL["lon"], lat=KMA_SEOUL["lat"],
            datastreams=[DatastreamIn(quantity=q, interval_s=self.interval_s) for q in self.quantities],
            simulated=True,
            properties={"source": "citywall simulator", "imitates": "KMA ASOS station 108 (Seoul)", "address": KMA_SEOUL["address"]},
        )]

    def generate(self, ticks: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        w = self.model.at(ticks)
        cols = [np.round(w.temperature, 1), np.round(w.humidity, 0), np.round(w.wind_speed, 1),
                np.round(w.wind_direction, 0) % 360, w.precipitation]
        values = np.stack(cols, axis=1)  # (ticks, streams)
        n, m = values.shape
        return np.tile(np.arange(m), n), np.repeat(ticks, m), values.ravel()

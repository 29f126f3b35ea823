"""S-DoT (Smart Seoul Data of Things) street sensors: ~1,100 poles reporting every 2 minutes.

Placement: at least one sensor in every legal dong, the rest in proportion to the square root of
the dong's area (poles follow streets and people more than land area), at a seeded random point
inside the dong's real boundary. Values: PM follows the nearest district air station with a
low-cost sensor's bias (over-reading in humid air); temperature and humidity the city's weather
with street-level offsets; light and UV the sun and clouds; noise and vibration the traffic hours;
visitor counts the people around.

A few sensors fail the way real ones do (docs/simulator.md): `sentinel` sensors send -40 (°C) and
100 (%) when broken, `freeze` sensors repeat one reading for hours, `dropout` sensors go silent,
`drift` sensors read more and more off until their next recalibration.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import shapely

from citywall.city.model import City
from citywall.feeds.simulator import noise, profiles
from citywall.feeds.simulator.air import AirModel
from citywall.feeds.simulator.timebase import local
from citywall.feeds.simulator.weather import WeatherModel
from citywall.observations.model import DatastreamIn, ThingIn

# (datastream suffix, quantity); the key is sdot:<serial>:<suffix>.
CHANNELS = (
    ("pm25", "pm25"), ("pm10", "pm10"), ("temperature", "temperature"), ("humidity", "humidity"),
    ("wind_speed", "wind_speed"), ("wind_direction", "wind_direction"), ("illuminance", "illuminance"),
    ("uv_index", "uv_index"), ("noise", "noise"), ("vibration_x", "vibration"), ("vibration_y", "vibration"),
    ("vibration_z", "vibration"), ("visitors", "visitors"), ("globe_temperature", "globe_temperature"),
)
SENTINELS = [-40.0, 100.0]
SENTINEL_CHANNELS = {"temperature", "humidity", "globe_temperature"}
FAULTS = ("sentinel", "freeze", "dropout", "drift")
FAULT_SHARE = {"sentinel": 0.025, "freeze": 0.015, "dropout": 0.03, "drift": 0.02}
_C = {name: i for i, (name, _) in enumerate(CHANNELS)}
HOUR_S = 3600.0


@dataclass
class Sensors:
    serial: list[str]
    lon: np.ndarray
    lat: np.ndarray
    dong: list[str]
    gu: list[str]
    fault: np.ndarray  # object: None or one of FAULTS


def place(city: City, seed: int, count: int) -> Sensors:
    """Seeded sensor positions inside real dongs (at least one per dong while count allows)."""
    r = noise.rng(seed, "sdot-placement")
    codes = list(city.dongs)
    area = np.array([city.dongs[c].area_km2 for c in codes])
    weight = np.sqrt(area) / np.sqrt(area).sum()
    if count >= len(codes):
        per = np.ones(len(codes), dtype=np.int64)
        extra = count - len(codes)
        per += r.multinomial(extra, weight) if extra else 0
    else:  # fewer sensors than dongs: one per gu first, then by weight
        per = np.zeros(len(codes), dtype=np.int64)
        for gu in city.districts:
            mine = [i for i, c in enumerate(codes) if city.dongs[c].parent == gu]
            if mine and per.sum() < count:
                per[mine[int(np.argmax(area[mine]))]] += 1
        left = count - int(per.sum())
        if left > 0:
            per += r.multinomial(left, weight)
    lon, lat, dong, gu = [], [], [], []
    for code, k in zip(codes, per.tolist()):
        if k == 0:
            continue
        geom = city.dongs[code].geometry
        x0, y0, x1, y1 = geom.bounds
        got_x: list[float] = []
        got_y: list[float] = []
        while len(got_x) < k:
            xs = r.uniform(x0, x1, 64)
            ys = r.uniform(y0, y1, 64)
            inside = shapely.contains_xy(geom, xs, ys)
            got_x.extend(xs[inside].tolist())
            got_y.extend(ys[inside].tolist())
        lon.extend(got_x[:k])
        lat.extend(got_y[:k])
        dong.extend([code] * k)
        gu.extend([city.dongs[code].parent or ""] * k)
    n = len(lon)
    numbers = r.choice(100_000, size=n, replace=False)
    serial = [f"V02Q19{int(x):05d}" for x in numbers]
    fault = np.full(n, None, dtype=object)
    order = r.permutation(n)
    start = 0
    for name in FAULTS:
        k = int(round(FAULT_SHARE[name] * n))
        fault[order[start:start + k]] = name
        start += k
    return Sensors(serial, np.round(np.array(lon), 6), np.round(np.array(lat), 6), dong, gu, fault)


class SDoT:
    """The feed component: `count` sensors, 14 datastreams each, every 120 s."""

    kind = "sdot"
    interval_s = 120.0

    def __init__(self, seed: int, city: City, weather: WeatherModel, air: AirModel, count: int = 1100) -> None:
        self.seed, self.city, self.weather, self.air = seed, city, weather, air
        self.sensors = s = place(city, seed, count)
        n = self.n = len(s.serial)
        self.keys = [f"sdot:{serial}:{name}" for serial in s.serial for name, _ in CHANNELS]
        # The nearest district station (the PM a sensor follows).
        d2 = (s.lon[:, None] - air.lon[None, :]) ** 2 * np.cos(np.radians(37.55)) ** 2 + (s.lat[:, None] - air.lat[None, :]) ** 2
        self.station = np.argmin(d2, axis=1)
        r = noise.rng(seed, "sdot-params", n)
        self.p = {
            "pm_bias": r.lognormal(0.05, 0.15, n), "pm10_bias": r.lognormal(-0.05, 0.18, n),
            "pm_humid": r.uniform(0.1, 0.45, n), "t_off": r.normal(0.3, 0.5, n), "heat": r.uniform(0.3, 1.4, n),
            "rh_off": r.normal(-1.0, 4.0, n), "shelter": r.uniform(0.25, 0.8, n), "deflect": r.normal(0, 30, n),
            "shade": r.uniform(0.15, 1.0, n), "night_lux": r.uniform(3, 45, n), "noise_base": r.uniform(54, 67, n),
            "vib": r.lognormal(np.log(0.05), 0.5, n), "visitors": r.lognormal(np.log(14), 0.8, n),
            "drift_pm": r.uniform(0.008, 0.03, n), "drift_t": r.uniform(0.02, 0.06, n), "drift_rh": r.uniform(-0.35, -0.1, n),
            "drift_phase": r.uniform(0, 60, n),
        }
        self.sentinel_always = (s.fault == "sentinel") & (r.uniform(0, 1, n) < 0.3)
        self._stream = {name: noise.stream_ids(f"sdot:{name}", s.serial) for name in
                        ("pm", "pm10", "t", "rh", "ws", "wd", "lux", "noise", "vib", "vis", "fault", "loss")}

    def things(self) -> list[ThingIn]:
        s, out = self.sensors, []
        for i, serial in enumerate(s.serial):
            dong = self.city.dongs[s.dong[i]]
            gu = self.city.districts.get(s.gu[i])
            streams = [DatastreamIn(quantity=q, key=f"sdot:{serial}:{name}", interval_s=self.interval_s,
                                    name=f"S-DoT {serial} {name.replace('_', ' ')}",
                                    sentinels=SENTINELS if name in SENTINEL_CHANNELS else [])
                       for name, q in CHANNELS]
            props = {"source": "citywall simulator", "serial": serial, "model": "S-DoT (simulated)",
                     "dong": dong.name_ko, "gu": gu.name_ko if gu else None, "nearest_air_station": self.air.stations[self.station[i]].gu}
            if s.fault[i]:
                props["simulated_fault"] = s.fault[i]
            out.append(ThingIn(key=f"sdot:{serial}", name=f"S-DoT {serial} ({dong.name_ko})", kind=self.kind,
                               lon=float(s.lon[i]), lat=float(s.lat[i]), datastreams=streams, simulated=True, properties=props))
        return out

    # -- values -------------------------------------------------------------------------
    def _healthy(self, ticks: np.ndarray) -> np.ndarray:
        """(ticks, sensors, channels) readings of working sensors."""
        seed, p, st, n = self.seed, self.p, self._stream, self.n
        lt = local(ticks)
        t = lt.t_s[:, None]
        w = self.weather.at(ticks)
        f = self.air.fields(ticks)
        col = lambda a: np.asarray(a)[:, None]  # noqa: E731
        red = lambda name, periods: noise.red(seed, st[name][None, :], t, periods)  # noqa: E731
        white = lambda name, salt: noise.normal(seed, st[name][None, :] ^ np.uint64(salt), np.round(t / 120).astype(np.int64))  # noqa: E731

        out = np.empty((len(ticks), n, len(CHANNELS)))
        rh_city = col(w.humidity)
        humid = 1 + p["pm_humid"] * np.clip(rh_city - 70, 0, None) / 30
        pm_noise = np.exp(0.13 * red("pm", (900.0, 3 * HOUR_S)) + 0.06 * white("pm", 1) - 0.01)
        pm25 = f["pm25"][:, self.station] * p["pm_bias"] * humid * pm_noise
        pm10 = f["pm10"][:, self.station] * p["pm10_bias"] * humid * np.exp(0.15 * red("pm10", (900.0, 3 * HOUR_S)) - 0.011)
        out[..., _C["pm25"]] = np.maximum(np.round(pm25), 0)
        out[..., _C["pm10"]] = np.maximum(np.round(pm10), out[..., _C["pm25"]])

        daylight = col(w.daylight)
        temp = col(w.temperature) + p["t_off"] + 0.9 * p["heat"] * daylight + 0.35 * red("t", (1800.0, 4 * HOUR_S))
        out[..., _C["temperature"]] = np.round(temp, 1)
        rh = rh_city + p["rh_off"] - 2.5 * p["heat"] * daylight + 2.0 * red("rh", (1800.0, 4 * HOUR_S))
        out[..., _C["humidity"]] = np.round(np.clip(rh, 5, 99), 1)
        ws = col(w.wind_speed) * p["shelter"] * np.exp(0.3 * red("ws", (300.0, 1200.0)) - 0.045)
        out[..., _C["wind_speed"]] = np.round(np.clip(ws, 0, None), 1)
        out[..., _C["wind_direction"]] = np.round((col(w.wind_direction) + p["deflect"] + 25 * red("wd", (600.0, 3600.0))) % 360) % 360
        lux = 105_000 * daylight * p["shade"] * np.exp(0.1 * red("lux", (300.0, 1800.0)))
        out[..., _C["illuminance"]] = np.round(np.maximum(lux, p["night_lux"] * (col(w.cos_zenith) < 0.05)))
        uv = 11.0 * col(np.clip(w.cos_zenith, 0, None) ** 2.42 * (1 - 0.6 * w.cloud**1.5)) * np.sqrt(p["shade"])
        out[..., _C["uv_index"]] = np.round(np.clip(uv, 0, None), 1)

        traffic = col(profiles.traffic(lt))
        db = p["noise_base"] + 10 * np.log10(0.08 + traffic) + 1.2 * red("noise", (600.0, 3600.0)) + 0.8 * white("noise", 2)
        out[..., _C["noise"]] = np.round(np.clip(db, 30, 110), 1)
        for axis, gain in (("x", 1.0), ("y", 0.9), ("z", 1.6)):
            v = p["vib"] * gain * (0.25 + traffic) * np.exp(0.35 * white("vib", ord(axis)))
            out[..., _C[f"vibration_{axis}"]] = np.round(v, 3)
        rain = col(np.where(w.precipitation > 0, 0.55, 1.0))
        lam = p["visitors"] * profiles.people("residential", lt)[:, None] * rain * np.exp(0.25 * red("vis", (1800.0, 6 * HOUR_S)))
        out[..., _C["visitors"]] = np.maximum(np.round(lam + np.sqrt(lam) * white("vis", 3)), 0)
        globe = temp + 10.0 * daylight * np.sqrt(p["shade"]) / (1 + 0.25 * ws) - 0.4 * (col(w.cos_zenith) < 0)
        out[..., _C["globe_temperature"]] = np.round(globe, 1)
        return out

    def generate(self, ticks: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        ticks = np.asarray(ticks, dtype=np.int64)
        seed, s, p = self.seed, self.sensors, self.p
        values = self._healthy(ticks)
        t = ticks / 1e6
        fs = self._stream["fault"][None, :]
        T, n, m = values.shape
        keep = np.ones((T, n), dtype=bool)

        # freeze: in a frozen 12-hour block the sensor repeats the reading from the moment it froze.
        frz = np.flatnonzero(s.fault == "freeze")
        if len(frz):
            block = np.floor(t / (12 * HOUR_S)).astype(np.int64)[:, None]
            on = noise.uniform(seed, fs[:, frz], block) < 0.5
            since = (noise.uniform(seed, fs[:, frz] ^ np.uint64(7), block) * 6 * HOUR_S // 120 * 120)
            t_freeze = (block * 12 * HOUR_S + since) * 1_000_000
            frozen = on & (t[:, None] * 1e6 >= t_freeze)
            if frozen.any():
                rows, cols = np.nonzero(frozen)
                when = t_freeze[rows, cols].astype(np.int64)
                uniq, inv = np.unique(when, return_inverse=True)
                then = self._healthy(uniq)
                values[rows, frz[cols]] = then[inv, frz[cols]]

        # drift: PM, temperature and humidity wander off, reset by recalibration every 60 days.
        dr = np.flatnonzero(s.fault == "drift")
        if len(dr):
            days = ((t[:, None] / 86400 + p["drift_phase"][dr]) % 60)
            values[:, dr, _C["pm25"]] = np.round(values[:, dr, _C["pm25"]] * (1 + p["drift_pm"][dr] * days))
            values[:, dr, _C["pm10"]] = np.round(values[:, dr, _C["pm10"]] * (1 + p["drift_pm"][dr] * days))
            values[:, dr, _C["temperature"]] = np.round(values[:, dr, _C["temperature"]] + p["drift_t"][dr] * days, 1)
            values[:, dr, _C["humidity"]] = np.round(np.clip(values[:, dr, _C["humidity"]] + p["drift_rh"][dr] * days, 0, 99), 1)

        # sentinel: broken sensors send -40 (°C) and 100 (%) in 6-hour spells (some all the time).
        sen = np.flatnonzero(s.fault == "sentinel")
        if len(sen):
            block = np.floor(t / (6 * HOUR_S)).astype(np.int64)[:, None]
            broken = (noise.uniform(seed, fs[:, sen] ^ np.uint64(11), block) < 0.6) | self.sentinel_always[sen][None, :]
            rows, cols = np.nonzero(broken)
            values[rows, sen[cols], _C["temperature"]] = -40.0
            values[rows, sen[cols], _C["humidity"]] = 100.0
            values[rows, sen[cols], _C["globe_temperature"]] = -40.0

        # dropout: silent for whole hours; every sensor also loses the odd message (0.3%).
        drop = np.flatnonzero(s.fault == "dropout")
        if len(drop):
            hour = np.floor(t / HOUR_S).astype(np.int64)[:, None]
            keep[:, drop] &= noise.uniform(seed, fs[:, drop] ^ np.uint64(13), hour) >= 0.35
        tick_no = np.round(t / 120).astype(np.int64)[:, None]
        keep &= noise.uniform(seed, self._stream["loss"][None, :], tick_no) >= 0.003

        idx = (np.arange(n) * m)[None, :, None] + np.arange(m)[None, None, :]
        mask = np.broadcast_to(keep[:, :, None], values.shape)
        return (np.broadcast_to(idx, values.shape)[mask], np.broadcast_to(ticks[:, None, None], values.shape)[mask], values[mask])

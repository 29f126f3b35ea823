"""Road links on Seoul's arterials and urban expressways: speed in km/h every 5 minutes.

speed = free-flow speed / (1 + a * (demand * stress)^b), the shape of the BPR volume-delay
curve, where demand follows the weekday/weekend traffic profile (profiles.traffic), leans
inbound in the morning and outbound in the evening, and wanders a little; rain slows traffic;
now and then an incident (a crash, a broken-down car, road works) cuts one link's speed for
20-120 minutes. Calibration (docs/simulator.md): TOPIS's yearly reports put Seoul's average
daytime speed around 23 km/h, the city centre below 20, urban expressways around 50 outside
the peaks, and the evening peak as the slowest hour of the week.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from importlib.resources import files

import numpy as np
import yaml

from citywall.feeds.simulator import noise, profiles
from citywall.feeds.simulator.timebase import local
from citywall.feeds.simulator.weather import WeatherModel
from citywall.observations.model import DatastreamIn, ThingIn

# Free-flow speed (km/h) as a fraction of the limit, and the volume-delay curve (a, b), by road type.
ROAD_TYPES = {
    "expressway": {"free_flow": 0.95, "a": 1.6, "b": 4.0, "ko": "도시고속도로"},
    "arterial": {"free_flow": 0.9, "a": 1.3, "b": 2.5, "ko": "간선도로"},
    "urban": {"free_flow": 0.72, "a": 1.25, "b": 2.3, "ko": "도심 간선도로"},
}
# Business districts traffic heads for in the morning: City Hall, Gangnam, Yeouido.
CENTRES = np.array([[126.9779, 37.5663], [127.0276, 37.4979], [126.9243, 37.5216]])
INCIDENT_RATE = 0.04  # incidents per link per day


@dataclass
class Link:
    key: str
    road: str
    road_id: str
    type: str
    limit: float
    stress: float
    start: tuple[str, float, float]  # name, lat, lon
    end: tuple[str, float, float]
    length_m: float
    inbound: bool


def _haversine_m(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * 6_371_008.8 * math.asin(math.sqrt(a))


def _centre_distance(lat: float, lon: float) -> float:
    return float(np.min(np.hypot((CENTRES[:, 0] - lon) * 0.79, CENTRES[:, 1] - lat)))


def load_links() -> list[Link]:
    roads = yaml.safe_load((files("citywall.feeds.simulator") / "data" / "roads.yaml").read_text(encoding="utf-8"))
    out = []
    for r in roads:
        nodes = [(str(n), float(la), float(lo)) for n, la, lo in r["nodes"]]
        for i, (a, b) in enumerate(zip(nodes, nodes[1:])):
            for direction, (s, e) in (("f", (a, b)), ("r", (b, a))):
                inbound = _centre_distance(e[1], e[2]) < _centre_distance(s[1], s[2])
                out.append(Link(f"road:{r['id']}:{i + 1:02d}{direction}", r["name"], r["id"], r["type"], float(r["limit"]),
                                float(r.get("stress", 1.0)), s, e, _haversine_m(s[1], s[2], e[1], e[2]), inbound))
    return out


class Roads:
    """The feed component: one Thing and one road_speed datastream per directed link."""

    kind = "road_link"
    interval_s = 300.0

    def __init__(self, seed: int, weather: WeatherModel) -> None:
        self.seed, self.weather = seed, weather
        self.links = load_links()
        links = self.links
        n = len(links)
        self.keys = [f"{lk.key}:road_speed" for lk in links]
        types = [ROAD_TYPES[lk.type] for lk in links]
        r = noise.rng(seed, "roads", n)
        self.free_flow = np.array([lk.limit * t["free_flow"] for lk, t in zip(links, types)]) * r.uniform(0.94, 1.06, n)
        self.a = np.array([t["a"] for t in types])
        self.b = np.array([t["b"] for t in types])
        self.stress = np.array([lk.stress for lk in links]) * r.lognormal(0, 0.08, n)
        self.inbound = np.array([lk.inbound for lk in links])
        self._s = noise.stream_ids("road:noise", [lk.key for lk in links])
        self._inc = noise.stream_ids("road:incident", [lk.key for lk in links])

    def things(self) -> list[ThingIn]:
        out = []
        for lk, ff in zip(self.links, self.free_flow):
            lon = (lk.start[2] + lk.end[2]) / 2
            lat = (lk.start[1] + lk.end[1]) / 2
            out.append(ThingIn(
                key=lk.key, name=f"{lk.road} {lk.start[0]}→{lk.end[0]}", kind=self.kind, lon=round(lon, 6), lat=round(lat, 6),
                datastreams=[DatastreamIn(quantity="road_speed", interval_s=self.interval_s)],
                simulated=True,
                properties={"source": "citywall simulator", "road": lk.road, "road_type": ROAD_TYPES[lk.type]["ko"],
                            "from": lk.start[0], "to": lk.end[0], "length_m": round(lk.length_m),
                            "speed_limit_kmh": lk.limit, "free_flow_kmh": round(float(ff), 1),
                            "line": [[lk.start[2], lk.start[1]], [lk.end[2], lk.end[1]]]},
            ))
        return out

    def incidents(self, ticks: np.ndarray) -> np.ndarray:
        """(ticks, links) speed factor < 1 where an incident is under way."""
        lt = local(ticks)
        seed = self.seed
        factor = np.ones((len(ticks), len(self.links)))
        for back in (0, 1):  # an incident that began late yesterday may still be going on
            day = (lt.day - back)[:, None]
            happens = noise.uniform(seed, self._inc[None, :], day) < INCIDENT_RATE
            start_h = 6 + 17 * noise.uniform(seed, self._inc[None, :] ^ np.uint64(1), day)
            dur_h = (20 + 100 * noise.uniform(seed, self._inc[None, :] ^ np.uint64(2), day)) / 60
            severity = 0.25 + 0.3 * noise.uniform(seed, self._inc[None, :] ^ np.uint64(3), day)
            h = lt.hour[:, None] + 24 * back
            on = happens & (h >= start_h) & (h < start_h + dur_h)
            factor = np.where(on, np.minimum(factor, severity), factor)
        return factor

    def speeds(self, ticks: np.ndarray) -> np.ndarray:
        ticks = np.asarray(ticks, dtype=np.int64)
        lt = local(ticks)
        w = self.weather.at(ticks)
        demand = profiles.traffic(lt)[:, None]
        weekday = ~lt.offday[:, None]
        morning = weekday & (lt.hour[:, None] >= 6) & (lt.hour[:, None] < 10.5)
        evening = weekday & (lt.hour[:, None] >= 16) & (lt.hour[:, None] < 20.5)
        tilt = np.where(morning, np.where(self.inbound, 1.1, 0.86), np.where(evening, np.where(self.inbound, 0.9, 1.08), 1.0))
        wander = np.exp(0.08 * noise.red(self.seed, self._s[None, :], lt.t_s[:, None], (900.0, 3600.0)))
        load = demand * tilt * self.stress * wander
        speed = self.free_flow / (1 + self.a * load**self.b)
        rain = np.minimum(w.precipitation, 10)[:, None]
        speed = speed * (1 - 0.04 * (rain > 0) - 0.012 * rain) * self.incidents(ticks)
        speed = speed * (1 + 0.03 * noise.normal(self.seed, self._s[None, :] ^ np.uint64(5), (ticks // 300_000_000)[:, None]))
        return np.round(np.clip(speed, 3, self.free_flow * 1.08), 1)

    def generate(self, ticks: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        values = self.speeds(ticks)
        n, m = values.shape
        return np.tile(np.arange(m), n), np.repeat(np.asarray(ticks, dtype=np.int64), m), values.ravel()

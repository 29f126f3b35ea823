"""SIMULATED late-night demand for Seoul: the offline default of the Owl-bus planner.

Seoul designed its Owl buses from a month of late-night calls (~3 billion records), each linking
the cell a call was made in to the caller's home cell. Those records are not public, so citywall
simulates records of the same shape, calibrated on what was published (the hot spots, the 00-05 h
window, most riders between 01:00 and 03:00, the record count) plus modelling choices written
down in `data/seoul_owl_demand.yaml` and docs/owlbus-data.md. The result is OD records that go
through the same aggregation as real data (`demand.aggregate`), marked simulated throughout.

The model:
  call cell  ~ (1 - s) x home weight + s x (Gaussian kernels around the five hot spots), s = 0.5
  home cell  ~ home weight x exp(-distance / 8 km), trips under 1 km left out (walked)
  hour       ~ fixed shares of 00-05 h peaking 01-03 h
Home weights are the cell's AREA (every city cell the same), because the city model carries no
population; pass `dong_population` (dong code -> residents) to weight homes by population.
Counts, not rows: `samples` draws are spread over the (call cell, home cell, hour) triples and
each draw stands for total / samples records, so 3 billion records take a few hundred thousand
rows and the same seed always gives the same records.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from importlib.resources import files
from typing import Any

import numpy as np
import shapely
import yaml

from citywall.analytics.owlbus import hexgrid
from citywall.analytics.owlbus.demand import CellDemand, ODRecords, aggregate
from citywall.city import City, load_city

DEFAULT_SAMPLES = 400_000


class SimulationError(ValueError):
    """The simulator's calibration does not fit the city (e.g. a hot-spot dong is missing)."""


@dataclass(frozen=True)
class HotspotPoint:
    hotspot: str
    dong_code: str
    dong_name: str
    lon: float
    lat: float
    weight: float  # the point's share of all hot-spot records (hot spot weight x dong share, normalised)


@lru_cache(maxsize=1)
def calibration() -> dict[str, Any]:
    """The calibration YAML shipped with the package (numbers and where they come from)."""
    text = (files("citywall.analytics.owlbus") / "data" / "seoul_owl_demand.yaml").read_text(encoding="utf-8")
    return yaml.safe_load(text)


def hotspot_points(city: City, cal: dict[str, Any] | None = None) -> list[HotspotPoint]:
    """Place the calibration's hot spots by (gu, dong) name in the city model.

    A dong's point is its centroid from the city model; an explicit `point` in the calibration
    is accepted only if it falls inside that dong (so a typo cannot move a hot spot across town).
    """
    cal = cal or calibration()
    gu_by_name = {a.name_ko: code for code, a in city.districts.items()}
    raw: list[tuple[str, Any, tuple[float, float], float]] = []
    for hs in cal["hotspots"]:
        shares = sum(float(d.get("share", 1.0)) for d in hs["dongs"])
        for d in hs["dongs"]:
            gu = gu_by_name.get(d["gu"])
            match = [a for a in city.dongs.values() if a.name_ko == d["dong"] and a.parent == gu]
            if gu is None or not match:
                raise SimulationError(f"hot spot {hs['name']}: dong {d['gu']} {d['dong']} is not in the city model of {city.name_en}")
            dong = match[0]
            if "point" in d:
                lon, lat = (float(v) for v in d["point"])
                if not dong.geometry.contains(shapely.Point(lon, lat)):
                    raise SimulationError(f"hot spot {hs['name']}: point {lon}, {lat} is not inside {d['gu']} {d['dong']}")
                pt = (lon, lat)
            else:
                pt = dong.centroid
            raw.append((hs["name"], dong, pt, float(hs.get("weight", 1.0)) * float(d.get("share", 1.0)) / shares))
    total = sum(w for *_, w in raw)
    return [HotspotPoint(name, dong.code, f"{city.districts[dong.parent].name_ko} {dong.name_ko}", pt[0], pt[1], w / total)
            for name, dong, pt, w in raw]


def home_weights(city: City, cells: list[str], dong_population: dict[str, float] | None = None) -> tuple[np.ndarray, str]:
    """Where people live, per cell: by dong population when given (split evenly over the dong's
    cells), else by area (equal per cell). Returns the weights and which basis was used."""
    if not dong_population:
        return np.ones(len(cells)), "area (the city model has no population; every cell weighs the same)"
    xy = hexgrid.cell_centres(cells)
    located = city.locate_many(xy[:, 0], xy[:, 1])
    dong_of = [d for _, d in located]
    per_dong: dict[str | None, int] = {}
    for d in dong_of:
        per_dong[d] = per_dong.get(d, 0) + 1
    unknown = sorted(set(dong_population) - set(city.dongs))
    if unknown:
        raise SimulationError(f"dong_population: unknown dong code(s) {', '.join(unknown[:5])}")
    w = np.array([float(dong_population.get(d, 0.0)) / per_dong[d] if d else 0.0 for d in dong_of])
    if (w < 0).any() or w.sum() <= 0:
        raise SimulationError("dong_population must be non-negative with a positive total")
    return w, "dong population (given), split evenly over each dong's cells"


def simulate_seoul_od(seed: int = 0, *, city: City | None = None, resolution: int = hexgrid.DEFAULT_RESOLUTION,
                      total: float | None = None, samples: int = DEFAULT_SAMPLES,
                      dong_population: dict[str, float] | None = None) -> ODRecords:
    """SIMULATED OD records (call cell -> home cell, hour, count) for Seoul's late night.

    `total` is the number of trips the counts add up to. The default is riders a night (6,079, the
    Owl buses' published first-50-day average): a planner's ridership and bus counts are then in
    riders, not in call records. `total=calibration()["total_records"]` gives Seoul's month of
    calls (3 billion) instead; the shape, and so the routes and ATT, are the same. `samples` is the
    number of random draws (the noise level and row count).
    """
    city = city or load_city("seoul")
    cal = calibration()
    unit = "riders a night" if total is None else "trips"
    total = float(cal["riders_per_night"] if total is None else total)
    if total <= 0 or samples < 1:
        raise SimulationError(f"total ({total}) and samples ({samples}) must be positive")
    rng = np.random.default_rng(seed)
    cells = hexgrid.city_cells(city, resolution)
    xy = hexgrid.cell_centres(cells)
    home, home_basis = home_weights(city, cells, dong_population)

    sigma = float(cal["kernel_sigma_km"])
    hot = np.zeros(len(cells))
    for p in hotspot_points(city, cal):
        d = hexgrid.haversine_km(xy[:, 0], xy[:, 1], p.lon, p.lat)
        k = np.where(d <= 3 * sigma, np.exp(-0.5 * (d / sigma) ** 2), 0.0)
        if k.sum() == 0:  # a point farther than 3 sigma from every cell centre: its nearest cell
            k[np.argmin(d)] = 1.0
        hot += p.weight * k / k.sum()
    s = float(cal["hotspot_share"])
    origin_p = (1 - s) * home / home.sum() + s * hot
    origin_p /= origin_p.sum()

    hours = np.array(sorted(int(h) for h in cal["hour_shares"]))
    hour_p = np.array([float(cal["hour_shares"][h]) for h in hours])
    hour_p /= hour_p.sum()
    decay, min_km = float(cal["decay_km"]), float(cal["min_trip_km"])

    n_o = rng.multinomial(samples, origin_p)
    o_idx, d_idx, h_idx, k_all = [], [], [], []
    for i in np.flatnonzero(n_o):
        dist = hexgrid.haversine_km(xy[i, 0], xy[i, 1], xy[:, 0], xy[:, 1])
        p = home * np.exp(-dist / decay) * (dist >= min_km)
        if p.sum() <= 0:
            continue  # no home cell far enough (not in Seoul at sane resolutions)
        joint = np.outer(p / p.sum(), hour_p).ravel()
        k = rng.multinomial(int(n_o[i]), joint)
        nz = np.flatnonzero(k)
        o_idx.append(np.full(len(nz), i))
        d_idx.append(nz // len(hours))
        h_idx.append(nz % len(hours))
        k_all.append(k[nz])
    o = np.concatenate(o_idx)
    d = np.concatenate(d_idx)
    h = np.concatenate(h_idx)
    k = np.concatenate(k_all).astype(float)
    cell_arr = np.array(cells, dtype=object)
    scale = total / k.sum()
    rec = ODRecords(count=k * scale, origin_cells=cell_arr[o], dest_cells=cell_arr[d],
                    minute=hours[h] * 60.0 + 30.0,  # each row stands at the middle of its hour
                    source=f"Seoul simulated late-night demand (seed {seed})", simulated=True, unit=unit, rows_read=len(k))
    rec.meta = {
        "simulated": True, "seed": seed, "resolution": resolution, "total_trips": total, "samples": samples,
        "rows": int(len(k)), "home_weights": home_basis, "hotspot_share": s, "kernel_sigma_km": sigma,
        "decay_km": decay, "min_trip_km": min_km,
        "hour_shares": {f"{int(hh):02d}:00": float(v) for hh, v in zip(hours, hour_p)},
        "hotspots": sorted({p.hotspot for p in hotspot_points(city, cal)}),
    }
    return rec


def simulate_seoul_demand(seed: int = 0, *, city: City | None = None, resolution: int = hexgrid.DEFAULT_RESOLUTION,
                          window: str | None = "00:00-05:00", total: float | None = None,
                          samples: int = DEFAULT_SAMPLES, dong_population: dict[str, float] | None = None) -> CellDemand:
    """SIMULATED Seoul cell demand: `simulate_seoul_od` aggregated like real records would be."""
    city = city or load_city("seoul")
    rec = simulate_seoul_od(seed, city=city, resolution=resolution, total=total, samples=samples,
                            dong_population=dong_population)
    return aggregate(rec, city, resolution=resolution, window=window)

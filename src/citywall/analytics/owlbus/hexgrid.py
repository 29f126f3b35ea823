"""The H3 hexagon grid over a city: which cells belong to it, and the resolution to use.

Seoul's Owl-bus study split the city into 1,252 hexagons of about 0.5 km² (see
docs/owlbus-data.md). H3 resolution 8 covers Seoul (605 km²) with 1,188 cells whose centre lies
inside the city boundary: 0.51 km² a cell at Seoul's latitude (H3's global average at
resolution 8 is 0.737 km²; cells shrink away from the icosahedron face centres). That is the
closest H3 grid to Seoul's own, so it is the default. Other cities can ask for a target cell
count instead and get the resolution whose count is nearest on a log scale.

A cell belongs to the city when its centre is inside the city boundary (H3's own polygon
rule): every point of the city is then in exactly one cell of the grid, give or take the
boundary slivers, and a cell is never counted twice.
"""

from __future__ import annotations

import math
from functools import lru_cache

import h3
import numpy as np
import shapely

from citywall.city import City

DEFAULT_RESOLUTION = 8
# H3 resolutions worth considering for city-scale demand: 6 (~36 km² cells) to 10 (~0.015 km²).
RESOLUTIONS = range(6, 11)
_EARTH_RADIUS_KM = 6371.0088  # mean Earth radius (IUGG), as in citywall.city.model


class GridError(ValueError):
    """A grid request that cannot be met (bad resolution, no cells)."""


def check_resolution(resolution: int) -> int:
    if not isinstance(resolution, (int, np.integer)) or not 0 <= int(resolution) <= 15:
        raise GridError(f"H3 resolution must be an integer 0-15, got {resolution!r}")
    return int(resolution)


@lru_cache(maxsize=32)
def _city_cells(city: City, resolution: int) -> tuple[str, ...]:
    boundary = shapely.union_all([a.geometry for a in city.districts.values()])
    return tuple(sorted(h3.geo_to_cells(boundary, resolution)))


def city_cells(city: City, resolution: int = DEFAULT_RESOLUTION) -> list[str]:
    """The city's cells at `resolution` (centre inside the boundary), sorted by id."""
    cells = _city_cells(city, check_resolution(resolution))
    if not cells:
        raise GridError(f"no H3 cells of resolution {resolution} have their centre inside {city.name_en}; use a finer resolution")
    return list(cells)


def resolution_for(city: City, target_cells: int) -> int:
    """The resolution (6-10) whose cell count over the city is nearest `target_cells` (log scale)."""
    if target_cells < 1:
        raise GridError(f"target cell count must be positive, got {target_cells}")
    best = min(RESOLUTIONS, key=lambda r: abs(math.log(max(len(_city_cells(city, r)), 1) / target_cells)))
    return int(best)


def cell_centres(cells: list[str]) -> np.ndarray:
    """(n, 2) lon, lat of each cell's centre."""
    out = np.empty((len(cells), 2))
    for i, c in enumerate(cells):
        lat, lon = h3.cell_to_latlng(c)
        out[i] = (lon, lat)
    return out


def cells_of_points(lon: np.ndarray, lat: np.ndarray, resolution: int) -> np.ndarray:
    """The cell of each point as H3's 64-bit integer id (uint64 array): integers sort and compare
    far faster than the hex strings when millions of call or taxi records are counted."""
    from h3.api import basic_int

    lon = np.asarray(lon, dtype=float)
    lat = np.asarray(lat, dtype=float)
    return np.fromiter((basic_int.latlng_to_cell(la, lo, resolution) for lo, la in zip(lon.tolist(), lat.tolist())),
                       dtype=np.uint64, count=len(lon))


def cell_ints(cells: list[str] | np.ndarray) -> np.ndarray:
    return np.fromiter((h3.str_to_int(c) for c in cells), dtype=np.uint64, count=len(cells))


def haversine_km(lon1: np.ndarray, lat1: np.ndarray, lon2: np.ndarray, lat2: np.ndarray) -> np.ndarray:
    """Great-circle distance in km (broadcasting)."""
    p1, p2 = np.radians(lat1), np.radians(lat2)
    dphi = p2 - p1
    dlmb = np.radians(np.asarray(lon2) - np.asarray(lon1))
    a = np.sin(dphi / 2) ** 2 + np.cos(p1) * np.cos(p2) * np.sin(dlmb / 2) ** 2
    return 2 * _EARTH_RADIUS_KM * np.arcsin(np.sqrt(np.clip(a, 0.0, 1.0)))

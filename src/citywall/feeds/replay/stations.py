"""Which Thing a station name in a file means, and registering the ones that are missing.

Seoul's files name a district (urban background) station by its gu, e.g. 강남구: that is the
platform's air station Thing `air:{gu code}` (the key the simulator and the Seoul feed use too, so
replayed and live data land on the same datastreams). If that Thing is not registered yet, it is
registered at the station's site from the station list citywall ships (the simulator's, sites
geocoded to about 100-300 m). Roadside and background stations (강남대로, 종로, 남산, 관악산,
행주, ...) are not placed by citywall: their locations must come from the administrator, as a
`--stations` CSV (name, lon, lat) or as Things registered beforehand with the key
`air:station:{name}`. Otherwise their rows are refused with that explanation; a location is
never guessed.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path

import yaml

from citywall.city.model import City
from citywall.observations.model import DatastreamIn, ThingIn
from citywall.observations.registry import Registry

POLLUTANTS = ("pm10", "pm25", "o3", "no2", "co", "so2")
DISTRICT_KIND = "air_station"  # the kind the air index (CAI per gu) reads
OTHER_KIND = "air_station_other"  # roadside/background: shown, but not averaged into a gu's index
HOURLY_S = 3600.0


class StationsFileError(ValueError):
    """The --stations CSV cannot be read; the message names the line."""


@dataclass(frozen=True)
class Place:
    name: str
    lon: float
    lat: float
    kind: str = OTHER_KIND
    network: str = ""


def load_places(path: Path) -> dict[str, Place]:
    """An administrator's station locations: CSV with columns name, lon, lat [, kind, network] (UTF-8 or CP949)."""
    raw = path.read_bytes()
    for enc in ("utf-8-sig", "cp949"):
        try:
            text = raw.decode(enc)
            break
        except UnicodeDecodeError:
            continue
    else:
        raise StationsFileError(f"{path}: neither UTF-8 nor CP949")
    rows = list(csv.DictReader(text.splitlines()))
    out: dict[str, Place] = {}
    for line, r in enumerate(rows, start=2):
        r = {(k or "").strip().lower(): (v or "").strip() for k, v in r.items()}
        try:
            name, lon, lat = r["name"], float(r["lon"]), float(r["lat"])
        except KeyError:
            raise StationsFileError(f"{path}: columns name, lon, lat are required (has {', '.join(r)})") from None
        except ValueError:
            raise StationsFileError(f"{path} line {line}: lon and lat must be numbers, not {r.get('lon')!r}, {r.get('lat')!r}") from None
        if not name or not (-180 <= lon <= 180 and -90 <= lat <= 90):
            raise StationsFileError(f"{path} line {line}: a name and a WGS84 lon/lat are required")
        kind = r.get("kind") or OTHER_KIND
        out[name] = Place(name, lon, lat, kind, r.get("network", ""))
    return out


def _district_sites() -> dict[str, dict]:
    raw = yaml.safe_load((files("citywall.feeds.simulator") / "data" / "air_stations.yaml").read_text(encoding="utf-8"))
    return {str(s["gu"]): s for s in raw}


class StationBook:
    """Station names -> Thing keys, and the Things to register so that they exist."""

    def __init__(self, city: City, registry: Registry, places: dict[str, Place] | None = None) -> None:
        self.city, self.registry = city, registry
        self.places = places or {}
        self._gu_by_name: dict[str, str] = {}
        for code, gu in city.districts.items():
            for name in (gu.name_ko, gu.name_en, gu.name_en.lower(), code):
                self._gu_by_name[name] = code
        self._sites = _district_sites()

    def thing_key(self, name: str) -> tuple[str | None, ThingIn | None, str | None]:
        """(Thing key, a ThingIn to register if it is not registered yet, why it cannot be placed)."""
        name = name.strip()
        if not name:
            return None, None, "the station is empty"
        reg = self.registry
        if name in reg.thing_by_key:
            return name, None, None
        gu = self._gu_by_name.get(name) or self._gu_by_name.get(name.lower())
        if gu is None and name.startswith("air:") and name[4:] in self.city.districts:  # the Thing key of a district station
            gu = name[4:]
        if gu is not None:
            key = f"air:{gu}"
            if key in reg.thing_by_key:
                return key, None, None
            site = self._sites.get(gu)
            if site is None:
                return None, None, (f"station {name!r} is district {gu}, but no Thing {key!r} is registered and citywall has no site for it; "
                                    f"register it first (POST /api/things) or give its location with --stations")
            area = self.city.districts[gu]
            return key, ThingIn(
                key=key, name=f"{area.name_ko} 도시대기측정소", kind=DISTRICT_KIND, lon=float(site["lon"]), lat=float(site["lat"]),
                datastreams=[DatastreamIn(quantity=q, interval_s=HOURLY_S) for q in POLLUTANTS],
                properties={"source": "replay", "station": area.name_ko, "gu": gu, "site": site.get("site", ""),
                            "network": "도시대기측정망 (urban background)", "location": "approximate (citywall's station list, ~100-300 m)"},
            ), None
        key = f"air:station:{name}"
        if key in reg.thing_by_key:
            return key, None, None
        place = self.places.get(name)
        if place is not None:
            return key, ThingIn(
                key=key, name=f"{name} 대기측정소", kind=place.kind, lon=place.lon, lat=place.lat,
                datastreams=[DatastreamIn(quantity=q, interval_s=HOURLY_S) for q in POLLUTANTS],
                properties={"source": "replay", "station": name, "network": place.network, "location": "given with --stations"},
            ), None
        return None, None, (f"station {name!r} is not one of the {len(self.city.districts)} district stations (named by their gu, e.g. "
                            f"{next(iter(self.city.districts.values())).name_ko}) and citywall does not know where it is; give its location "
                            f"with --stations FILE (columns name,lon,lat) or register a Thing with key {key!r} first, then replay again")

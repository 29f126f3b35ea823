"""Write the shipped example facilities registry, `facilities.example.csv`, for Seoul.

Run `python -m citywall.city.data.make_facilities_example` (optionally with an output path).
Deterministic: a fixed seed and the city's legal-dong polygons give the same file every time.

What is real and what is not (the file's header says the same, and every row is `example=true`):
- Fire stations: Seoul's 25 stations by their real names, one per gu (중구's is 중부소방서), but
  each is placed at a point inside its gu (the gu's centroid, or a point inside when the centroid
  falls outside), not at the station's address.
- CCTV: 1,200 cameras, the number on the real wall in 2019; at least one in every legal dong and the
  rest in proportion to the square root of the dong's area (cameras follow streets and people more
  than land), at seeded random points inside the dong. Not real camera sites; no stream URLs.
- Hospitals: 40 "예시 병원 N" (no real hospitals named), 1-3 per gu by the gu's size.
- Shelters: 4 "예시 대피소" per gu.
"""

from __future__ import annotations

import csv
import io
import sys
from pathlib import Path

import numpy as np
import shapely

from citywall.city.facilities import COLUMNS, fire_station_name
from citywall.city.loader import load_city
from citywall.city.model import Area, City

SEED = 20190620  # any fixed number; the wall opened on 20 June 2017 and had ~1,200 cameras in 2019
CCTV_COUNT = 1200
HOSPITAL_COUNT = 40
SHELTERS_PER_GU = 4
OUT = Path(__file__).with_name("facilities.example.csv")

HEADER_COMMENT = """\
# citywall example facilities registry for Seoul: EXAMPLE DATA, not an official list.
# Made by `python -m citywall.city.data.make_facilities_example` (seeded, reproducible).
# Fire stations carry the real names of Seoul's 25 gu fire stations, but their positions are
# illustrative (a point inside the gu), not the stations' addresses. Cameras, hospitals and shelters
# are invented (1,200 cameras spread over the legal dongs; "예시 병원" / "예시 대피소" names).
# Replace this file with the city's own registry (same columns) and set example=false.
"""


def _points_in(area: Area, k: int, rng: np.random.Generator, city: City) -> list[tuple[float, float]]:
    """k random points inside an area that still fall in it (and its gu) after rounding to 6 decimals."""
    geom = area.geometry
    x0, y0, x1, y1 = geom.bounds
    gu = area.parent if area.level == "dong" else area.code
    out: list[tuple[float, float]] = []
    while len(out) < k:
        xs = np.round(rng.uniform(x0, x1, 64), 6)
        ys = np.round(rng.uniform(y0, y1, 64), 6)
        for x, y in zip(xs[shapely.contains_xy(geom, xs, ys)].tolist(), ys[shapely.contains_xy(geom, xs, ys)].tolist()):
            if len(out) < k and city.locate(x, y)[0] == gu:
                out.append((x, y))
    return out


def _station_en(gu: Area) -> str:
    if gu.name_ko == "중구":
        return "Jungbu Fire Station"
    return f"{gu.name_en.removesuffix('-gu')} Fire Station"


def rows(city: City) -> list[dict[str, str]]:
    rng = np.random.default_rng(SEED)
    out: list[dict[str, str]] = []

    def add(fid: str, kind: str, name: str, name_en: str, lon: float, lat: float, gu: str) -> None:
        out.append({"id": fid, "kind": kind, "name": name, "name_en": name_en, "lon": f"{lon:.6f}", "lat": f"{lat:.6f}",
                    "gu": gu, "address": "", "url": "", "example": "true"})

    for code, gu in city.districts.items():
        lon, lat = gu.centroid
        if city.locate(lon, lat)[0] != code:
            lon, lat = _points_in(gu, 1, rng, city)[0]
        add(f"FS-{code}", "fire_station", fire_station_name(gu.name_ko), _station_en(gu), lon, lat, code)

    dongs = list(city.dongs.values())
    weight = np.sqrt([d.area_km2 for d in dongs])
    per = np.ones(len(dongs), dtype=np.int64) + rng.multinomial(CCTV_COUNT - len(dongs), weight / weight.sum())
    n = 0
    for dong, k in zip(dongs, per.tolist()):
        for j, (lon, lat) in enumerate(_points_in(dong, k, rng, city), start=1):
            n += 1
            add(f"CCTV-{n:04d}", "cctv", f"{dong.name_ko} CCTV {j}", f"{dong.name_en} CCTV {j}", lon, lat, dong.parent or "")

    gus = list(city.districts.values())
    gw = np.sqrt([g.area_km2 for g in gus])
    hospitals = np.ones(len(gus), dtype=np.int64) + rng.multinomial(HOSPITAL_COUNT - len(gus), gw / gw.sum())
    n = 0
    for gu, k in zip(gus, hospitals.tolist()):
        for lon, lat in _points_in(gu, k, rng, city):
            n += 1
            add(f"HOSP-{n:03d}", "hospital", f"예시 병원 {n}", f"Example Hospital {n}", lon, lat, gu.code)

    n = 0
    for gu in gus:
        for j, (lon, lat) in enumerate(_points_in(gu, SHELTERS_PER_GU, rng, city), start=1):
            n += 1
            add(f"SHEL-{n:03d}", "shelter", f"{gu.name_ko} 예시 대피소 {j}", f"{gu.name_en} example shelter {j}", lon, lat, gu.code)
    return out


def render(city: City) -> str:
    buf = io.StringIO()
    buf.write(HEADER_COMMENT)
    writer = csv.DictWriter(buf, fieldnames=list(COLUMNS), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows(city))
    return buf.getvalue()


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    out = Path(args[0]) if args else OUT
    out.write_text(render(load_city("seoul")), encoding="utf-8")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()

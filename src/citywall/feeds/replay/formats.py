"""The two file layouts a replay reads, and `--map` for files laid out some other way.

long           one observation per row: time, datastream (id or key) OR station + quantity,
               value, unit (optional; default the quantity's canonical unit).
seoul-station  Seoul's published per-station files: one row per station and hour (or day), one
               column per pollutant, Korean headers (측정일시, 측정소명, 미세먼지농도(ug/m3), ...),
               times in KST, hour 24 = midnight of the next day, blank = not measured.

Both are a `Layout`: which column holds each field. A layout with pollutant columns (`wide`) is
read like the Seoul files, whatever the headers; `--map FIELD=COLUMN` names the column of a
field (time, station, datastream, quantity, value, unit) or of a quantity code (pm10, no2, ...).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

FORMATS = ("long", "seoul-station")
LONG_FIELDS = ("time", "datastream", "station", "quantity", "value", "unit")

# Seoul's header stems (the part before the unit in brackets) -> citywall quantity codes.
SEOUL_TIME, SEOUL_STATION = "측정일시", "측정소명"
SEOUL_POLLUTANTS = {
    "이산화질소농도": "no2", "이산화질소": "no2",
    "오존농도": "o3", "오존": "o3",
    "일산화탄소농도": "co", "일산화탄소": "co",
    "아황산가스농도": "so2", "아황산가스": "so2",
    "미세먼지농도": "pm10", "미세먼지": "pm10",
    "초미세먼지농도": "pm25", "초미세먼지": "pm25",
}
# Long-format header spellings (compared case-insensitively) -> field.
LONG_ALIASES = {
    "time": "time", "phenomenontime": "time", "phenomenon_time": "time", "timestamp": "time",
    "datastream": "datastream", "datastream_id": "datastream", "datastream_key": "datastream",
    "station": "station", "thing": "station",
    "quantity": "quantity", "observed_property": "quantity",
    "value": "value", "result": "value",
    "unit": "unit",
}


class LayoutError(ValueError):
    """The file's columns do not make a layout citywall can read; the message says what is missing."""


@dataclass
class Layout:
    format: str  # "long" or "seoul-station"
    time: str
    station: str | None = None
    datastream: str | None = None
    quantity: str | None = None
    value: str | None = None
    unit: str | None = None
    wide: dict[str, str] = field(default_factory=dict)  # quantity code -> column

    @property
    def is_wide(self) -> bool:
        return bool(self.wide)

    def describe(self) -> str:
        parts = [f"time={self.time}"]
        parts += [f"{f}={getattr(self, f)}" for f in ("station", "datastream", "quantity", "value", "unit") if getattr(self, f)]
        parts += [f"{q}={c}" for q, c in self.wide.items()]
        return ", ".join(parts)


def parse_maps(items: list[str]) -> dict[str, str]:
    """`["time=측정일시", "pm10=미세먼지"]` -> {"time": "측정일시", "pm10": "미세먼지"}."""
    out: dict[str, str] = {}
    for item in items:
        key, sep, column = item.partition("=")
        if not sep or not key.strip() or not column.strip():
            raise LayoutError(f"--map {item!r}: expected FIELD=COLUMN, e.g. time=측정일시 or pm10=미세먼지")
        out[key.strip()] = column.strip()
    return out


def _stem(header: str) -> str:
    """"미세먼지농도(ug/m3)" -> "미세먼지농도": Seoul's files vary the unit's spelling (㎍/㎥, ug/m3)."""
    return re.sub(r"\s+", "", re.split(r"[(\[]", header, maxsplit=1)[0])


def detect_format(header: list[str]) -> str:
    stems = {_stem(h) for h in header}
    return "seoul-station" if SEOUL_TIME in stems or (SEOUL_STATION in stems and stems & set(SEOUL_POLLUTANTS)) else "long"


def resolve_layout(header: list[str], fmt: str | None, maps: dict[str, str], quantities: list[str]) -> Layout:
    """Which column holds what, from the format's defaults, then `maps` (which win)."""
    if fmt is not None and fmt not in FORMATS:
        raise LayoutError(f"unknown format {fmt!r}; formats: {', '.join(FORMATS)}")
    for key, column in maps.items():
        if key not in LONG_FIELDS and key not in quantities:
            raise LayoutError(f"--map {key}={column}: {key!r} is neither a field ({', '.join(LONG_FIELDS)}) nor a quantity ({', '.join(quantities)})")
        if column not in header:
            raise LayoutError(f"--map {key}={column}: the file has no column {column!r}; its columns: {', '.join(header)}")
    fmt = fmt or detect_format(header)
    cols: dict[str, str] = {}
    wide: dict[str, str] = {}
    if fmt == "seoul-station":
        for h in header:
            stem = _stem(h)
            if stem == SEOUL_TIME:
                cols["time"] = h
            elif stem == SEOUL_STATION:
                cols["station"] = h
            elif stem in SEOUL_POLLUTANTS and SEOUL_POLLUTANTS[stem] not in wide:
                wide[SEOUL_POLLUTANTS[stem]] = h
    else:
        for h in header:
            f = LONG_ALIASES.get(h.strip().lower())
            if f and f not in cols:
                cols[f] = h
    for key, column in maps.items():
        if key in LONG_FIELDS:
            cols[key] = column
        else:
            wide[key] = column
    layout = Layout(fmt, cols.get("time", ""), cols.get("station"), cols.get("datastream"), cols.get("quantity"),
                    cols.get("value"), cols.get("unit"), wide)
    have = ", ".join(header)
    if not layout.time:
        raise LayoutError(f"no time column ({SEOUL_TIME if fmt == 'seoul-station' else 'time'}); the file's columns: {have}; "
                          "name it with --map time=COLUMN")
    if layout.is_wide:
        if not layout.station:
            raise LayoutError(f"no station column ({SEOUL_STATION}); the file's columns: {have}; name it with --map station=COLUMN")
        return layout
    if fmt == "seoul-station":
        raise LayoutError(f"no pollutant column ({', '.join(k for k in SEOUL_POLLUTANTS if k.endswith('농도'))}); "
                          f"the file's columns: {have}; name them with --map pm10=COLUMN ...")
    if not layout.value:
        raise LayoutError(f"no value column; the file's columns: {have}; name it with --map value=COLUMN")
    if not layout.datastream and not (layout.station and layout.quantity):
        raise LayoutError(f"rows need a datastream column, or a station and a quantity column; the file's columns: {have}; "
                          "name them with --map datastream=COLUMN (or station=... and quantity=...)")
    return layout

"""Origin-destination demand on an H3 grid: read OD records, keep a night window, count per cell pair.

Seoul's Owl-bus study counted a late-night call made in cell A by someone living in cell B as one
trip A -> B (docs/owlbus-data.md). citywall takes the same shape from any source: call records,
taxi pick-ups and drop-offs, smart-card taps. Each record has an origin and a destination (points
as lon/lat, or H3 cell ids), an optional count (one record may stand for many trips: that is how
the simulator reaches Seoul's ~3 billion records without 3 billion rows) and a time.

Nothing is dropped silently: records outside the time window, outside the city, or with the same
origin and destination cell are counted in `CellDemand.summary`; bad rows either stop the read
with an error naming the file, row and column, or (on_bad="skip") are counted with examples.
"""

from __future__ import annotations

import csv
import math
import re
from dataclasses import dataclass, field
from datetime import datetime, timezone as dt_timezone
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import h3
import numpy as np

from citywall.analytics.owlbus import hexgrid
from citywall.city import City

DEFAULT_WINDOW = "00:00-05:00"
FIELDS = ("origin_lon", "origin_lat", "dest_lon", "dest_lat", "origin_cell", "dest_cell", "count", "time")
# Column names recognised without a mapping (lower-case); the first present wins.
ALIASES: dict[str, tuple[str, ...]] = {
    "origin_lon": ("origin_lon", "o_lon", "from_lon", "pickup_lon", "pickup_longitude", "call_lon"),
    "origin_lat": ("origin_lat", "o_lat", "from_lat", "pickup_lat", "pickup_latitude", "call_lat"),
    "dest_lon": ("dest_lon", "destination_lon", "d_lon", "to_lon", "dropoff_lon", "dropoff_longitude", "home_lon"),
    "dest_lat": ("dest_lat", "destination_lat", "d_lat", "to_lat", "dropoff_lat", "dropoff_latitude", "home_lat"),
    "origin_cell": ("origin_cell", "o_cell", "from_cell", "origin_h3", "call_cell"),
    "dest_cell": ("dest_cell", "destination_cell", "d_cell", "to_cell", "dest_h3", "home_cell"),
    "count": ("count", "trips", "calls", "n", "weight"),
    "time": ("time", "timestamp", "datetime", "pickup_time", "call_time", "hour"),
}
_MAX_EXAMPLES = 5
_HHMM = re.compile(r"^\s*(\d{1,2}):(\d{2})(?::(\d{2}(?:\.\d+)?))?\s*$")


class ODInputError(ValueError):
    """Demand input that cannot be used; the message names the file, row and column."""


@dataclass
class ODRecords:
    """OD records in columns. Each end is either H3 cell ids or lon/lat points.

    `minute` is the local minute of the day (0 <= m < 1440) or None when the input has no time.
    `rows` are the 1-based data-row numbers in `path` (for error messages).
    """

    count: np.ndarray
    origin_cells: np.ndarray | None = None
    dest_cells: np.ndarray | None = None
    origin_xy: np.ndarray | None = None
    dest_xy: np.ndarray | None = None
    minute: np.ndarray | None = None
    rows: np.ndarray | None = None
    path: str = ""
    source: str = ""
    simulated: bool = False
    unit: str = "trips"  # what a count is: trips in the records, or (simulated) riders a night
    rows_read: int = 0
    bad_rows: int = 0
    bad_examples: list[str] = field(default_factory=list)
    meta: dict[str, Any] = field(default_factory=dict)  # how the records were made (the simulator's parameters)

    def __len__(self) -> int:
        return int(len(self.count))


@dataclass
class CellDemand:
    """Trips between H3 cells in the planning window, as sparse (origin, dest, trips) triples.

    `cells` are the cells that send or receive any trip, sorted by id; `origin`/`dest` index it.
    `by_hour[h]` is the trips (in the city, in the window, any cells) that started in local hour h.
    """

    resolution: int
    cells: list[str]
    origin: np.ndarray
    dest: np.ndarray
    trips: np.ndarray
    by_hour: np.ndarray
    summary: dict[str, Any]
    simulated: bool = False
    source: str = ""
    unit: str = "trips"

    @property
    def total(self) -> float:
        return float(self.trips.sum())

    def matrix(self, cells: list[str] | None = None) -> np.ndarray:
        """Dense (n, n) trips over `cells` (default: self.cells); pairs outside `cells` are left out."""
        cells = self.cells if cells is None else cells
        pos = {c: i for i, c in enumerate(cells)}
        m = np.zeros((len(cells), len(cells)))
        index = np.array([pos.get(c, -1) for c in self.cells], dtype=int)
        o, d = index[self.origin], index[self.dest]
        keep = (o >= 0) & (d >= 0)
        np.add.at(m, (o[keep], d[keep]), self.trips[keep])
        return m

    def origin_totals(self) -> np.ndarray:
        return np.bincount(self.origin, weights=self.trips, minlength=len(self.cells))

    def dest_totals(self) -> np.ndarray:
        return np.bincount(self.dest, weights=self.trips, minlength=len(self.cells))

    def top_origins(self, k: int = 10) -> list[tuple[str, float]]:
        tot = self.origin_totals()
        order = np.argsort(-tot, kind="stable")[:k]
        return [(self.cells[i], float(tot[i])) for i in order]

    def cell_table(self) -> list[dict[str, Any]]:
        """One row per cell: id, centre lon/lat, trips sent and received (for maps and GeoJSON)."""
        xy = hexgrid.cell_centres(self.cells)
        o, d = self.origin_totals(), self.dest_totals()
        return [{"cell": c, "lon": round(float(xy[i, 0]), 6), "lat": round(float(xy[i, 1]), 6),
                 "origin_trips": float(o[i]), "dest_trips": float(d[i]), "simulated": self.simulated}
                for i, c in enumerate(self.cells)]


# --- the time window -------------------------------------------------------------------------

def parse_window(window: str) -> tuple[int, int]:
    """'HH:MM-HH:MM' -> (start, end) minutes of the day; end is exclusive, may be 24:00, and a
    window may cross midnight ('22:00-05:00')."""
    m = re.fullmatch(r"\s*(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})\s*", window or "")
    if not m:
        raise ODInputError(f"time window {window!r} is not HH:MM-HH:MM (e.g. 00:00-05:00)")
    h1, m1, h2, m2 = (int(g) for g in m.groups())
    if h1 > 23 or m1 > 59 or h2 > 24 or m2 > 59 or (h2 == 24 and m2):
        raise ODInputError(f"time window {window!r}: hours must be 00-24 and minutes 00-59")
    start, end = h1 * 60 + m1, h2 * 60 + m2
    if start == end:
        raise ODInputError(f"time window {window!r} is empty (start equals end)")
    return start, end


def in_window(minute: np.ndarray, window: str) -> np.ndarray:
    start, end = parse_window(window)
    if start < end:
        return (minute >= start) & (minute < end)
    return (minute >= start) | (minute < end)


# --- reading files ----------------------------------------------------------------------------

def parse_column_map(text: str) -> dict[str, str]:
    """'origin_lon=pu_x,origin_lat=pu_y' -> {'origin_lon': 'pu_x', ...} (for the CLI)."""
    out: dict[str, str] = {}
    for part in filter(None, (p.strip() for p in (text or "").split(","))):
        key, sep, value = part.partition("=")
        if not sep or not value.strip():
            raise ODInputError(f"column mapping {part!r} is not FIELD=COLUMN")
        out[key.strip()] = value.strip()
    return out


def _resolve_columns(names: list[str], mapping: dict[str, str] | None, path: str) -> dict[str, str]:
    mapping = dict(mapping or {})
    unknown = sorted(set(mapping) - set(FIELDS))
    if unknown:
        raise ODInputError(f"column mapping for {path}: unknown field(s) {', '.join(unknown)}; fields are {', '.join(FIELDS)}")
    for fld, col in mapping.items():
        if col not in names:
            raise ODInputError(f"{path}: column {col!r} (mapped to {fld}) not found; columns are {', '.join(names)}")
    lower = {n.lower().strip(): n for n in names}
    cols = dict(mapping)
    for fld in FIELDS:
        if fld not in cols:
            for alias in ALIASES[fld]:
                if alias in lower:
                    cols[fld] = lower[alias]
                    break
    for end in ("origin", "dest"):
        has_cell = f"{end}_cell" in cols
        has_xy = f"{end}_lon" in cols and f"{end}_lat" in cols
        if not has_cell and not has_xy:
            raise ODInputError(
                f"{path}: no {end} columns: need {end}_cell or {end}_lon and {end}_lat (or map them, e.g. "
                f"{end}_lon=COLUMN); columns are {', '.join(names)}")
        if has_cell and has_xy:  # both given: cells win, points are not read
            for k in (f"{end}_lon", f"{end}_lat"):
                cols.pop(k)
    return cols


def _read_table(path: Path, wanted: list[str] | None = None) -> tuple[list[str], dict[str, np.ndarray]]:
    """The header, and the `wanted` columns as Arrow columns; CSV values are read as strings so each
    one is checked here (and a bad one named), not guessed at by a type inference."""
    suffix = path.suffix.lower()
    try:
        if suffix in (".parquet", ".pq"):
            import pyarrow.parquet as pq

            table = pq.read_table(path, columns=wanted)
            names = table.column_names
        else:
            import pyarrow as pa
            import pyarrow.csv as pacsv

            with path.open(newline="", encoding="utf-8-sig") as fh:
                header = next(csv.reader(fh), None)
            if not header:
                raise ODInputError(f"{path}: empty file (no header row)")
            header = [h.strip() for h in header]
            names = header
            if wanted is None:
                return names, {}
            invalid: list[Any] = []

            def on_invalid(row: Any) -> str:  # remember the row so the error can name it
                invalid.append(row)
                return "error"

            try:
                table = pacsv.read_csv(path, read_options=pacsv.ReadOptions(column_names=header, skip_rows=1),
                                       parse_options=pacsv.ParseOptions(invalid_row_handler=on_invalid),
                                       convert_options=pacsv.ConvertOptions(
                                       column_types={n: pa.string() for n in header}, include_columns=wanted,
                                       strings_can_be_null=False))
            except pa.ArrowInvalid:
                if not invalid:
                    raise
                row = invalid[0]
                line = row.number
                if not line:  # Arrow does not always number rows: find the line (an error path, once)
                    with path.open(encoding="utf-8-sig") as fh:
                        line = next((k for k, text in enumerate(fh, start=1) if text.rstrip("\r\n") == row.text), None)
                at = f"row {line - 1} (line {line})" if line else "a row"
                raise ODInputError(f"{path}: {at} has {row.actual_columns} values, the header has "
                                   f"{row.expected_columns}: {row.text!r}") from None
    except ODInputError:
        raise
    except FileNotFoundError:
        raise ODInputError(f"demand file not found: {path}") from None
    except Exception as exc:  # pyarrow's own parse errors name the CSV row
        raise ODInputError(f"{path}: cannot read: {exc}") from None
    if wanted is None:
        return names, {}
    # Arrow columns stay as they are: numbers are cast in C (`_floats`), the rest become numpy later.
    return names, {n: table.column(n) for n in wanted}


class _Problems:
    """Bad-row bookkeeping: raise at once, or mark rows to skip and keep a few examples."""

    def __init__(self, path: str, n: int, on_bad: str) -> None:
        if on_bad not in ("error", "skip"):
            raise ODInputError(f"on_bad must be 'error' or 'skip', got {on_bad!r}")
        self.path, self.on_bad = path, on_bad
        self.bad = np.zeros(n, dtype=bool)
        self.examples: list[tuple[int, str]] = []

    def flag(self, mask: np.ndarray, column: str, values: Any, reason: str) -> None:
        idx = np.flatnonzero(mask & ~self.bad)
        if not idx.size:
            return
        if hasattr(values, "type"):  # an Arrow column: to numpy only when there is something to report
            values = values.to_numpy(zero_copy_only=False)
        first = int(idx[0])
        msg = f"{self.path}: row {first + 1}, column {column!r}: {_show(values[first])} {reason}"
        if self.on_bad == "error":
            raise ODInputError(msg + " (rows are counted from 1 after the header; on_bad='skip' drops bad rows)")
        self.bad[idx] = True
        for i in idx[: _MAX_EXAMPLES]:
            self.examples.append((int(i), f"row {int(i) + 1}, column {column!r}: {_show(values[int(i)])} {reason}"))


def _show(value: Any) -> str:
    return repr(value.item() if isinstance(value, np.generic) else value)


def _np(values: Any) -> np.ndarray:
    return values.to_numpy(zero_copy_only=False) if hasattr(values, "type") else np.asarray(values)


def _floats(values: Any, column: str, problems: _Problems) -> np.ndarray:
    import pyarrow as pa

    try:
        if hasattr(values, "type"):
            out = values.cast(pa.float64()).to_numpy(zero_copy_only=False).astype(float)  # nulls -> NaN
        else:
            out = np.asarray(values, dtype=float)
    except (TypeError, ValueError, pa.ArrowInvalid, pa.ArrowNotImplementedError):
        values = _np(values)
        out = np.empty(len(values))
        bad = np.zeros(len(values), dtype=bool)
        for i, v in enumerate(values):
            try:
                out[i] = float(v)
            except (TypeError, ValueError):
                out[i], bad[i] = np.nan, True
        problems.flag(bad, column, values, "is not a number")
    problems.flag(~np.isfinite(out), column, values, "is not a finite number")
    return out


def _cells(values: Any, column: str, problems: _Problems) -> np.ndarray:
    vals = np.asarray(_np(values), dtype=object)
    uniq, inverse = np.unique(vals.astype(str), return_inverse=True)
    ok_u = np.array([h3.is_valid_cell(u.strip()) for u in uniq], dtype=bool)
    problems.flag(~ok_u[inverse], column, vals, "is not a valid H3 cell id")
    return np.array([u.strip() for u in uniq], dtype=object)[inverse]


def _minutes(values: Any, column: str, problems: _Problems, tz: ZoneInfo) -> np.ndarray:
    """Local minute of the day from timestamps (aware ones converted to the city's zone, naive ones
    taken as local), 'HH:MM[:SS]' strings, or numbers read as the hour of the day (1.5 = 01:30)."""
    if hasattr(values, "type") and str(values.type).startswith("timestamp"):  # Parquet timestamps
        import pyarrow as pa

        aware = values.type.tz is not None
        arr = values.cast(pa.timestamp("us", tz=values.type.tz)).to_numpy(zero_copy_only=False)
        us = arr.astype("datetime64[us]").astype(np.int64)
        out = np.empty(len(us))
        hours, inverse = np.unique(us // 3_600_000_000, return_inverse=True)
        offsets = np.zeros(len(hours))
        if aware:  # offset of the city's zone at each distinct UTC hour (handles DST where a zone has it)
            for k, h in enumerate(hours):
                t = datetime.fromtimestamp(int(h) * 3600, tz=dt_timezone.utc).astimezone(tz)
                offsets[k] = t.utcoffset().total_seconds() / 60
        local_min = (us / 60_000_000.0) + offsets[inverse]
        out = np.mod(local_min, 1440.0)
        return out
    vals = _np(values)
    if vals.dtype.kind in "iuf":
        hours = vals.astype(float)
        problems.flag(~np.isfinite(hours) | (hours < 0) | (hours >= 24), column, vals, "is not an hour of the day (0 <= h < 24)")
        return np.where(np.isfinite(hours), hours, 0) * 60.0
    uniq, inverse = np.unique(vals.astype(str), return_inverse=True)
    parsed = np.full(len(uniq), np.nan)
    for k, s in enumerate(uniq):
        parsed[k] = _parse_time(s, tz)
    out = parsed[inverse]
    problems.flag(np.isnan(out), column, vals,
                  "is not a time (ISO date-time, HH:MM[:SS] or an hour 0-24)")
    return np.nan_to_num(out)


def _parse_time(s: str, tz: ZoneInfo) -> float:
    m = _HHMM.match(s)
    if m:
        h, mi = int(m.group(1)), int(m.group(2))
        sec = float(m.group(3) or 0)
        if h > 23 or mi > 59 or sec >= 60:
            return math.nan
        return h * 60 + mi + sec / 60
    try:
        t = datetime.fromisoformat(s.strip())
    except ValueError:
        try:
            h = float(s)
        except ValueError:
            return math.nan
        return h * 60 if 0 <= h < 24 else math.nan
    if t.tzinfo is not None:
        t = t.astimezone(tz)
    return t.hour * 60 + t.minute + t.second / 60 + t.microsecond / 6e7


def read_od(path: str | Path, *, columns: dict[str, str] | None = None, on_bad: str = "error",
            timezone: str = "Asia/Seoul") -> ODRecords:
    """Read OD records from CSV or Parquet (by suffix: .parquet/.pq, anything else is CSV).

    `columns` maps fields (origin_lon, origin_lat, dest_lon, dest_lat, origin_cell, dest_cell,
    count, time) to the file's column names; unmapped fields are looked up under common names
    (ALIASES). A missing count column means one trip per row. `on_bad='skip'` drops and counts
    bad rows instead of raising.
    """
    path = Path(path)
    names, _ = _read_table(path)
    cols = _resolve_columns(names, columns, str(path))
    _, data = _read_table(path, list(dict.fromkeys(cols.values())))
    n = len(next(iter(data.values()))) if data else 0
    problems = _Problems(str(path), n, on_bad)
    tz = ZoneInfo(timezone)
    rec: dict[str, Any] = {}
    for end in ("origin", "dest"):
        if f"{end}_cell" in cols:
            rec[f"{end}_cells"] = _cells(data[cols[f"{end}_cell"]], cols[f"{end}_cell"], problems)
        else:
            lon = _floats(data[cols[f"{end}_lon"]], cols[f"{end}_lon"], problems)
            lat = _floats(data[cols[f"{end}_lat"]], cols[f"{end}_lat"], problems)
            problems.flag(np.abs(np.nan_to_num(lon)) > 180, cols[f"{end}_lon"], lon, "is not a longitude (-180..180)")
            problems.flag(np.abs(np.nan_to_num(lat)) > 90, cols[f"{end}_lat"], lat, "is not a latitude (-90..90)")
            rec[f"{end}_xy"] = np.column_stack((lon, lat))
    if "count" in cols:
        count = _floats(data[cols["count"]], cols["count"], problems)
        problems.flag(np.nan_to_num(count) < 0, cols["count"], count, "is a negative count")
    else:
        count = np.ones(n)
    minute = _minutes(data[cols["time"]], cols["time"], problems, tz) if "time" in cols else None
    keep = ~problems.bad
    rows = np.arange(1, n + 1)
    out = ODRecords(count=count[keep], minute=None if minute is None else minute[keep], rows=rows[keep],
                    path=str(path), source=str(path), rows_read=n, bad_rows=int(problems.bad.sum()),
                    bad_examples=[f"{path}: {m}" for _, m in sorted(problems.examples)[:_MAX_EXAMPLES]])
    for k, v in rec.items():
        setattr(out, k, v[keep])
    return out


# --- aggregation ------------------------------------------------------------------------------

def _to_resolution(cells: np.ndarray, resolution: int, rows: np.ndarray | None, path: str, column: str) -> np.ndarray:
    """Cell id strings -> uint64 ids at `resolution` (finer cells roll up to their parent)."""
    uniq, inverse = np.unique(cells.astype(str), return_inverse=True)
    mapped = np.empty(len(uniq), dtype=np.uint64)
    for k, c in enumerate(uniq):
        r = h3.get_resolution(c)
        if r < resolution:
            first = int(np.flatnonzero(inverse == k)[0])
            where = f"{path}: row {int(rows[first]) if rows is not None else first + 1}, column {column!r}: " if path else ""
            raise ODInputError(f"{where}cell {c} has resolution {r}, coarser than the grid's {resolution}; "
                               f"use --resolution {r} or give finer cells")
        mapped[k] = h3.str_to_int(c if r == resolution else h3.cell_to_parent(c, resolution))
    return mapped[inverse.reshape(-1)]


def aggregate(records: ODRecords, city: City, *, resolution: int = hexgrid.DEFAULT_RESOLUTION,
              window: str | None = DEFAULT_WINDOW) -> CellDemand:
    """Count trips between the city's H3 cells for records in `window` (local time; None keeps all).

    Records outside the window, with an end outside the city, or starting and ending in the same
    cell (a trip a bus between cells cannot serve) are dropped and counted in the summary.
    """
    resolution = hexgrid.check_resolution(resolution)
    count = np.asarray(records.count, dtype=float)
    n = len(count)
    where = records.path or records.source or "records"
    if window is not None:
        if records.minute is None:
            raise ODInputError(f"{where}: no time column, so the window {window} cannot be applied; "
                               "map a time column (time=COLUMN) or pass no window (window=None) to keep every record")
        win = in_window(np.asarray(records.minute), window)
    else:
        win = np.ones(n, dtype=bool)
    w_idx = np.flatnonzero(win)  # only records in the window are placed on the grid
    ends = []
    for end in ("origin", "dest"):
        cells = getattr(records, f"{end}_cells")
        if cells is not None:
            ends.append(_to_resolution(np.asarray(cells, dtype=object)[w_idx], resolution,
                                       None if records.rows is None else records.rows[w_idx], records.path, f"{end}_cell"))
        else:
            xy = getattr(records, f"{end}_xy")
            if xy is None:
                raise ODInputError(f"{where}: no {end} given (cells or lon/lat)")
            ends.append(hexgrid.cells_of_points(xy[w_idx, 0], xy[w_idx, 1], resolution))
    o_ids, d_ids = ends
    grid = hexgrid.city_cells(city, resolution)
    grid_ints = hexgrid.cell_ints(grid)
    inside = np.zeros(n, dtype=bool)
    inside[w_idx] = np.isin(o_ids, grid_ints) & np.isin(d_ids, grid_ints)
    same = np.zeros(n, dtype=bool)
    same[w_idx] = o_ids == d_ids
    keep = win & inside & ~same
    keep_w = keep[w_idx]

    by_hour = np.zeros(24)
    if records.minute is not None:
        sel = win & inside
        hours = np.clip((np.asarray(records.minute)[sel] // 60).astype(int), 0, 23)
        by_hour = np.bincount(hours, weights=count[sel], minlength=24)

    used, inv = np.unique(np.concatenate([o_ids[keep_w], d_ids[keep_w]]), return_inverse=True)
    inv = inv.reshape(-1)
    names = [h3.int_to_str(int(c)) for c in used]
    order = np.argsort(np.array(names, dtype=object)) if names else np.zeros(0, dtype=int)
    cells = [names[k] for k in order]  # sorted by id string, as everywhere else
    rank = np.empty(len(used), dtype=np.int64)
    rank[order] = np.arange(len(used))
    m = len(used)
    k_o, k_d = rank[inv[: keep_w.sum()]], rank[inv[keep_w.sum():]]
    pair = k_o * max(m, 1) + k_d
    pairs, pinv = np.unique(pair, return_inverse=True)
    trips = np.bincount(pinv.reshape(-1), weights=count[keep], minlength=len(pairs))
    origin, dest = pairs // max(m, 1), pairs % max(m, 1)

    def part(mask: np.ndarray) -> dict[str, float]:
        return {"records": int(mask.sum()), "trips": float(count[mask].sum())}

    tz = city.timezone
    summary: dict[str, Any] = {
        "source": records.source or records.path,
        "simulated": bool(records.simulated),
        "unit": records.unit,
        "city": city.id,
        "resolution": resolution,
        "city_cells": len(grid),
        "cell_area_km2": round(sum(a.area_km2 for a in city.districts.values()) / len(grid), 3),
        "cells_with_demand": len(cells),
        "window": window or "all day",
        "timezone": tz,
        "rows_read": int(records.rows_read or n),
        "bad_rows_skipped": int(records.bad_rows),
        "bad_row_examples": list(records.bad_examples),
        "records": n,
        "outside_window": part(~win),
        "outside_city": part(win & ~inside),
        "same_cell": part(win & inside & same),
        "od_pairs": int(len(pairs)),
        "trips": float(trips.sum()),
        "by_hour": [float(x) for x in by_hour],
    }
    if records.meta:
        summary["simulation" if records.simulated else "meta"] = dict(records.meta)
    return CellDemand(resolution=resolution, cells=cells, origin=origin.astype(int), dest=dest.astype(int),
                      trips=trips, by_hour=by_hour, summary=summary, simulated=bool(records.simulated),
                      source=records.source or records.path, unit=records.unit)


def load_demand(path: str | Path, city: City, *, resolution: int = hexgrid.DEFAULT_RESOLUTION,
                target_cells: int | None = None, window: str | None = DEFAULT_WINDOW,
                columns: dict[str, str] | None = None, on_bad: str = "error") -> CellDemand:
    """read_od + aggregate in the city's time zone; `target_cells` picks the resolution instead."""
    if target_cells is not None:
        resolution = hexgrid.resolution_for(city, target_cells)
    records = read_od(path, columns=columns, on_bad=on_bad, timezone=city.timezone)
    return aggregate(records, city, resolution=resolution, window=window)


def format_summary(summary: dict[str, Any]) -> str:
    """A few lines for the CLI: what was read, kept and dropped (and that it is simulated, if so)."""
    s = summary
    lines = [
        f"demand: {s['source']}{'  [SIMULATED]' if s['simulated'] else ''}",
        f"  grid: H3 resolution {s['resolution']}, {s['city_cells']} cells over {s['city']} (~{s['cell_area_km2']} km² each), "
        f"{s['cells_with_demand']} with demand",
        f"  window {s['window']} ({s['timezone']}): {s['trips']:,.0f} {s.get('unit', 'trips')}{' (SIMULATED)' if s['simulated'] else ''} "
        f"in {s['od_pairs']:,} cell pairs from {s['records']:,} records",
        f"  dropped: outside window {s['outside_window']['records']:,} records ({s['outside_window']['trips']:,.0f} trips), "
        f"outside city {s['outside_city']['records']:,} ({s['outside_city']['trips']:,.0f}), "
        f"same cell {s['same_cell']['records']:,} ({s['same_cell']['trips']:,.0f}), bad rows skipped {s['bad_rows_skipped']:,}",
    ]
    lines += [f"  bad: {e}" for e in s.get("bad_row_examples", [])]
    return "\n".join(lines)

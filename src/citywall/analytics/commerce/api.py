"""The commerce REST API (`/api/commerce/...`): the golmok indicators on the wall.

It only reads. `citywall commerce build` writes the indicator tables as Parquet into a directory
(`indicators`, `district_indicators`, `trends`); `citywall up --commerce DIR` points the server at
it, and every request is a DuckDB query over those files, so a rebuild shows on the next request
without a restart. District boundaries and business-type names come from the data directory the
tables were built from (`districts.parquet`, `business_types.parquet`): found in DIR itself, or in the
data directory DIR's `manifest.json` names (`"data"`, as indicators.build writes it). No guessing
beyond that: boundaries from an unrelated directory would put the indicators on the wrong places.

Without `--commerce`, `GET /api/commerce` answers `{"configured": false}` and every other route 404s
saying how to connect a source: the wall then shows "no source connected" for commerce, as before.

All column names live in `Columns` and `FIELDS` (the indicators shown, with how to show them): the
tables are `citywall.analytics.commerce.indicators`' output (docs/commerce.md), and a renamed column is
one edit here. Where the names differ between that output and Seoul's published columns (the change
index is `change_index` there, `trdar_chnge_ix` in Seoul's file), the first name present is used.
"""

from __future__ import annotations

import json
import math
import os
import threading
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import msgspec
import pyarrow.parquet as pq
from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import Response

from citywall.analytics.commerce import indicators
from citywall.city.romanize import romanize_name

router = APIRouter()
JSON = "application/json"
GEOJSON = "application/geo+json"
CACHE_SIZE = 64  # cached answers: lists + recent map views (each ~1,650 districts' properties)
MAX_COMPARE = 4  # Seoul's service compares up to four districts
NOT_CONFIGURED = "no commerce source connected: start the server with `citywall up --commerce DIR`, DIR being the output of `citywall commerce build`"


@dataclass(frozen=True)
class Columns:
    """The names of the columns this API reads (Seoul's API field names in lower case)."""

    quarter: str = "stdr_yyqu_cd"
    district: str = "trdar_cd"
    business_type: str = "svc_induty_cd"
    risk: str = "risk_signal"
    change: tuple[str, ...] = ("change_index", "trdar_chnge_ix")
    simulated: str = "simulated"
    district_name: str = "trdar_cd_nm"
    district_kind: str = "trdar_se_cd"
    gu: str = "signgu_cd"
    geometry: str = "geometry"
    lon: str = "lon"
    lat: str = "lat"
    bt_name_ko: str = "svc_induty_cd_nm"
    bt_name_en: str = "name_en"
    bt_category: str = "category"
    sales: str = "thsmon_selng_amt"
    stores: tuple[str, ...] = ("similr_induty_stor_co", "stor_co")


C = Columns()

# The indicators shown, in this order: (names, the first present is used; how to show it): count,
# krw, pct (a percentage already: indicators.py's rates are x100), ratio (0..1, shown x100), months,
# number. Every other column still comes in the API's rows.
FIELDS: list[tuple[tuple[str, ...], str]] = [
    (("similr_induty_stor_co",), "count"), (("stor_co",), "count"),
    (("opening_rate", "opbiz_rt"), "pct"), (("closing_rate", "clsbiz_rt"), "pct"),
    (("franchise_share",), "pct"), (("frc_share",), "ratio"),
    (("thsmon_selng_amt",), "krw"), (("sales_per_store",), "krw"), (("thsmon_selng_co",), "count"),
    (("survival_rate_1y",), "pct"), (("survival_rate_3y",), "pct"), (("closure_rate_3y",), "pct"),
    (("store_change_qoq_pct",), "pct"), (("overcrowding_index",), "number"),
]
DISTRICT_FIELDS: list[tuple[tuple[str, ...], str]] = [
    (("tot_flpop_co",), "count"), (("tot_repop_co",), "count"), (("tot_wrc_popltn_co",), "count"),
    (("opr_sale_mt_avrg",), "months"), (("su_opr_sale_mt_avrg",), "months"),
    (("cls_sale_mt_avrg",), "months"), (("su_cls_sale_mt_avrg",), "months"),
]
# The quarterly series of a district's detail (from `indicators`, then from `district_indicators`).
SERIES = ["thsmon_selng_amt", "similr_induty_stor_co", "stor_co", "sales_per_store", "closing_rate"]
DISTRICT_SERIES = ["tot_flpop_co"]
RISK_LEVELS = ["blue", "yellow", "orange", "red"]
# "All business types": the district's totals over every type (`district_indicators`, and the rows of
# `trends` whose svc_induty_cd is '*', as indicators.trends writes them).
ALL_TYPES = indicators.ALL_TYPES
ALL_TYPES_ENTRY = {"code": ALL_TYPES, "name_ko": "전체 업종", "name_en": "All business types", "category": None}
CHANGE_LEVELS = ["LL", "LH", "HL", "HH"]


def _first(row: dict[str, Any] | None, names: tuple[str, ...]) -> Any:
    """The value of the first of `names` the row has (None if none)."""
    for n in names:
        if row and n in row:
            return row[n]
    return None


class CommerceSourceError(ValueError):
    """The configured directory is not a usable indicator output (says which file or column)."""


def _files(path: Path) -> list[Path]:
    """`NAME.parquet`, or the Parquet files under `NAME/` (partitioned or not)."""
    if path.with_suffix(".parquet").is_file():
        return [path.with_suffix(".parquet")]
    if path.is_dir():
        return sorted(p for p in path.rglob("*.parquet") if p.is_file())
    return []


def _sql_str(s: str) -> str:
    return "'" + s.replace("'", "''") + "'"


def _quarter_shift(q: int, back: int) -> int:
    """The quarter `back` quarters before q (20241, 1 -> 20234)."""
    n = (q // 10) * 4 + (q % 10 - 1) - back
    return (n // 4) * 10 + n % 4 + 1


def _clean(v: Any) -> Any:
    """JSON-able: NaN as null, numpy/decimal scalars as Python numbers."""
    if v is None:
        return None
    if isinstance(v, float):
        return None if math.isnan(v) or math.isinf(v) else v
    if isinstance(v, (bool, int, str)):
        return v
    if hasattr(v, "item"):
        return _clean(v.item())
    try:
        return float(v)
    except (TypeError, ValueError):
        return str(v)


def _rounded(geom: dict[str, Any], digits: int = 6) -> dict[str, Any]:
    """GeoJSON with coordinates to 6 decimals (~0.1 m): WKT often carries 15, which only bloats the map's download."""
    def r(c: Any) -> Any:
        return round(c, digits) if isinstance(c, float) else [r(x) for x in c]

    return {"type": geom["type"], "coordinates": r(geom["coordinates"])} if "coordinates" in geom else geom


class CommerceSource:
    """One indicator output directory; tables are found once, queried on every request."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root).expanduser()
        if not self.root.is_dir():
            raise CommerceSourceError(f"--commerce {self.root}: no such directory (give the --out directory of `citywall commerce build`)")
        self.lock = threading.Lock()
        self._cache: OrderedDict[str, Any] = OrderedDict()
        self._discover()
        self._listed = self._listing()

    def _discover(self) -> None:
        """Find the tables: in the root, or in the data directory its manifest names. Run again when the
        root's manifest or the file listing changes (a rebuild from another --data, a new quarter)."""
        self.manifest = self._manifest(self.root)
        dirs = [self.root]
        for key in ("data", "data_dir", "source", "input"):
            ref = self.manifest.get(key)
            if isinstance(ref, str):
                p = Path(ref) if Path(ref).is_absolute() else (self.root / ref)
                if p.is_dir():
                    dirs.append(p)
        self.dirs = [d for i, d in enumerate(dirs) if d.is_dir() and d.resolve() not in [x.resolve() for x in dirs[:i]]]
        self.tables: dict[str, list[Path]] = {}
        for name in ("indicators", "district_indicators", "trends", "districts", "business_types"):
            for d in self.dirs:
                if files := _files(d / name):
                    self.tables[name] = files
                    break
        self.hive = set()
        for name, files in self.tables.items():
            try:
                names = pq.read_schema(files[0]).names
            except (OSError, ValueError) as exc:  # pyarrow's ArrowInvalid is a ValueError
                raise CommerceSourceError(f"{files[0]}: not a readable Parquet file ({exc})") from None
            if any("=" in p.parent.name for p in files) and C.quarter not in names:
                self.hive.add(name)
        if "indicators" not in self.tables:
            raise CommerceSourceError(f"--commerce {self.root}: no indicators.parquet or indicators/*.parquet "
                                      "(is this the --out directory of `citywall commerce build`?)")
        # The data directory's manifest says whether the data was generated (simulated).
        self.manifest_simulated = any(bool(self._manifest(d).get("simulated")) for d in self.dirs)
        self._columns: dict[str, list[str]] = {}
        try:
            missing = {C.quarter, C.district, C.business_type} - set(self.columns("indicators"))
        except HTTPException as exc:
            raise CommerceSourceError(str(exc.detail)) from None
        if missing:
            raise CommerceSourceError(f"{self.tables['indicators'][0]}: indicators lack column(s) {', '.join(sorted(missing))}")

    @staticmethod
    def _manifest(d: Path) -> dict[str, Any]:
        p = d / "manifest.json"
        if not p.is_file():
            return {}
        try:
            m = json.loads(p.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise CommerceSourceError(f"{p}: not readable JSON ({exc})") from None
        return m if isinstance(m, dict) else {}

    # -- queries ---------------------------------------------------------------------------
    def scan(self, name: str) -> str:
        files = self.tables.get(name)
        if not files:
            raise HTTPException(404, f"the commerce source {self.root} has no {name} table ({name}.parquet or {name}/*.parquet)")
        # The layout keeps the partition key in the files too (schema.py): read it from the file,
        # and only from the directory names when a writer left it out of the files.
        hive = "true" if name in self.hive else "false"
        return f"read_parquet([{', '.join(_sql_str(str(p)) for p in files)}], hive_partitioning={hive}, union_by_name=true)"

    def query(self, sql: str, params: list[Any] | None = None) -> list[dict[str, Any]]:
        con = duckdb.connect()
        try:
            cur = con.execute(sql, params or [])
            names = [d[0] for d in cur.description]
            return [{k: _clean(v) for k, v in zip(names, row)} for row in cur.fetchall()]
        except duckdb.Error as exc:
            raise HTTPException(500, f"commerce source {self.root}: query failed: {exc}") from None
        finally:
            con.close()

    def columns(self, name: str) -> list[str]:
        if name not in self._columns:
            if name not in self.tables:
                self._columns[name] = []
            else:
                self._columns[name] = [r["column_name"] for r in self.query(f"DESCRIBE SELECT * FROM {self.scan(name)}")]
        return self._columns[name]

    def _listing(self) -> tuple[Any, ...]:
        """What the answers depend on: the manifests and every table file (path, modification time),
        found afresh (a few dozen stat calls)."""
        out: list[Any] = []
        for d in self.dirs:
            m = d / "manifest.json"
            out.append((str(m), m.stat().st_mtime_ns if m.is_file() else -1))
        for name in ("indicators", "district_indicators", "trends", "districts", "business_types"):
            for d in self.dirs:
                for p in _files(d / name):
                    try:
                        out.append((str(p), p.stat().st_mtime_ns))
                    except OSError:
                        out.append((str(p), -1))
        return tuple(out)

    def cached(self, key: str, make: Any) -> Any:
        """`make()`, kept until a table file or a manifest changes (then the tables are found again).
        The least recently used of more than CACHE_SIZE entries are dropped (one map view per business
        type and quarter would otherwise accumulate)."""
        sig = self._listing()
        with self.lock:
            if sig != self._listed:
                try:
                    self._discover()
                except CommerceSourceError as exc:  # e.g. caught halfway through a rebuild
                    raise HTTPException(503, f"the commerce source changed and is not usable now: {exc}") from None
                self._cache.clear()
                sig = self._listed = self._listing()
            hit = self._cache.get(key)
            if hit is not None and hit[0] == sig:
                self._cache.move_to_end(key)
                return hit[1]
        value = make()
        with self.lock:
            self._cache[key] = (sig, value)
            self._cache.move_to_end(key)
            while len(self._cache) > CACHE_SIZE:
                self._cache.popitem(last=False)
        return value

    @property
    def simulated(self) -> bool:
        """Simulated when the manifest says so or any indicator row is marked simulated."""
        def make() -> bool:
            if self.manifest_simulated:
                return True
            if C.simulated in self.columns("indicators"):
                return bool(self.query(f"SELECT bool_or(CAST({C.simulated} AS BOOLEAN)) AS s FROM {self.scan('indicators')}")[0]["s"])
            return False
        return self.cached("simulated", make)

    def quarters(self) -> list[int]:
        return self.cached("quarters", lambda: [int(r["q"]) for r in self.query(
            f"SELECT DISTINCT CAST({C.quarter} AS INTEGER) AS q FROM {self.scan('indicators')} WHERE {C.quarter} IS NOT NULL ORDER BY q")])

    def business_types(self) -> list[dict[str, Any]]:
        def make() -> list[dict[str, Any]]:
            used = self.query(f"SELECT CAST({C.business_type} AS VARCHAR) AS code, count(DISTINCT {C.district}) AS districts "
                              f"FROM {self.scan('indicators')} GROUP BY 1 ORDER BY 1")
            names: dict[str, dict[str, Any]] = {}
            cols = self.columns("business_types")
            if C.business_type in cols:
                pick = [f"CAST({C.business_type} AS VARCHAR) AS code"] + [
                    f"{c} AS {alias}" for c, alias in ((C.bt_name_ko, "name_ko"), (C.bt_name_en, "name_en"), (C.bt_category, "category")) if c in cols]
                names = {r["code"]: r for r in self.query(f"SELECT {', '.join(pick)} FROM {self.scan('business_types')}")}
            listed = [{"code": u["code"], "name_ko": names.get(u["code"], {}).get("name_ko") or u["code"],
                       "name_en": names.get(u["code"], {}).get("name_en") or names.get(u["code"], {}).get("name_ko") or u["code"],
                       "category": names.get(u["code"], {}).get("category"), "districts": u["districts"]} for u in used]
            if "district_indicators" in self.tables:
                listed.insert(0, ALL_TYPES_ENTRY | {"districts": len({r[C.district] for r in self.query(
                    f"SELECT DISTINCT CAST({C.district} AS VARCHAR) AS {C.district} FROM {self.scan('district_indicators')}")})})
            return listed
        return self.cached("business_types", make)

    def districts(self) -> dict[str, dict[str, Any]]:
        """Each district's name, kind, gu and GeoJSON geometry (from WKT or WKB; a point if only lon/lat)."""
        def make() -> dict[str, dict[str, Any]]:
            import shapely
            from shapely.geometry import mapping

            cols = self.columns("districts")
            if C.district not in cols:
                raise HTTPException(404, f"the commerce source {self.root} has no district boundaries (districts.parquet with {C.district}); "
                                         f"looked in {', '.join(str(d) for d in self.dirs)}")
            want = [c for c in (C.district_name, C.district_kind, C.gu, C.geometry, C.lon, C.lat, C.simulated) if c in cols]
            rows = self.query(f"SELECT CAST({C.district} AS VARCHAR) AS {C.district}, {', '.join(want)} FROM {self.scan('districts')}")
            out: dict[str, dict[str, Any]] = {}
            for r in rows:
                g = r.get(C.geometry)
                geom = None
                if g:
                    try:
                        geom = _rounded(mapping(shapely.from_wkb(g) if isinstance(g, (bytes, bytearray)) else shapely.from_wkt(g)))
                    except shapely.errors.ShapelyError as exc:
                        raise HTTPException(500, f"{self.tables['districts'][0]}: district {r[C.district]}: column {C.geometry} is not WKT/WKB ({exc})") from None
                elif r.get(C.lon) is not None and r.get(C.lat) is not None:
                    geom = {"type": "Point", "coordinates": [r[C.lon], r[C.lat]]}
                name = r.get(C.district_name) or r[C.district]
                out[r[C.district]] = {"code": r[C.district], "name": name, "name_en": romanize_name(name), "kind": r.get(C.district_kind),
                                      "gu": r.get(C.gu), "lon": r.get(C.lon), "lat": r.get(C.lat), "geometry": geom}
            return out
        return self.cached("districts", make)

    # -- the views -------------------------------------------------------------------------
    def check(self, quarter: int | None, business_type: str | None) -> tuple[int, str]:
        """The quarter and business type asked for, or the defaults (latest quarter, first single type;
        `*` = all types, when the source has district totals); 404s name what exists."""
        quarters = self.quarters()
        if not quarters:
            raise HTTPException(404, f"{self.tables['indicators'][0]}: the indicator tables have no rows")
        q = quarters[-1] if quarter is None else quarter
        if q not in quarters:
            raise HTTPException(404, f"quarter {q} is not in the commerce data (it has {quarters[0]}..{quarters[-1]}, {len(quarters)} quarters)")
        types = [b["code"] for b in self.business_types()]
        bt = self.default_business_type() if business_type is None else business_type
        if bt not in types:
            raise HTTPException(404, f"business type {bt!r} is not in the commerce data (e.g. {', '.join(types[:5])}; see /api/commerce)")
        return q, bt

    def default_business_type(self) -> str | None:
        """The first single business type (the map opens on one type, as Seoul's service does)."""
        return next((b["code"] for b in self.business_types() if b["code"] != ALL_TYPES), None)

    @staticmethod
    def _table_for(bt: str) -> tuple[str, str | None]:
        """Which table holds a business type's rows, and the type to filter it on."""
        return ("district_indicators", None) if bt == ALL_TYPES else ("indicators", bt)

    def _rows(self, table: str, quarter: int | None, business_type: str | None, district_list: list[str] | None) -> list[dict[str, Any]]:
        cols = self.columns(table)
        where, params = [], []
        if quarter is not None and C.quarter in cols:
            # Bare columns: a prepared parameter takes the column's type, and a filter on the column
            # itself (not a CAST of it) lets DuckDB skip row groups by their statistics.
            where.append(f"{C.quarter} = ?")
            params.append(quarter)
        if business_type is not None and C.business_type in cols:
            where.append(f"{C.business_type} = ?")
            params.append(business_type)
        if district_list is not None:
            where.append(f"{C.district} IN ({', '.join('?' for _ in district_list)})")
            params += district_list
        sql = f"SELECT * FROM {self.scan(table)}{' WHERE ' + ' AND '.join(where) if where else ''}"
        if C.quarter in cols:
            sql += f" ORDER BY CAST({C.quarter} AS INTEGER)"
        rows = self.query(sql, params)
        for r in rows:
            if C.district in r and r[C.district] is not None:
                r[C.district] = str(r[C.district])
            if C.quarter in r and r[C.quarter] is not None:
                r[C.quarter] = int(r[C.quarter])
        return rows

    def map_view(self, quarter: int | None, business_type: str | None) -> dict[str, Any]:
        """The map's districts for one business type and quarter: cached, as the wall asks again on
        every change of selection and the answer only changes with a rebuild."""
        q, bt = self.check(quarter, business_type)
        return self.cached(f"map {q} {bt}", lambda: self._map_view(q, bt))

    def _map_view(self, q: int, bt: str) -> dict[str, Any]:
        districts = self.districts()
        table, typ = self._table_for(bt)
        ind = {r[C.district]: r for r in self._rows(table, q, typ, None)}
        dis = {r[C.district]: r for r in self._rows("district_indicators", q, None, None)} if "district_indicators" in self.tables else {}
        features = []
        for code, d in districts.items():
            if d["geometry"] is None:
                continue
            i, di = ind.get(code, {}), dis.get(code, {})
            features.append({"type": "Feature", "id": code, "geometry": d["geometry"], "properties": {
                "code": code, "name": d["name"], "name_en": d["name_en"], "kind": d["kind"], "gu": d["gu"],
                "risk_signal": i.get(C.risk), "change_index": _first(di, C.change) or _first(i, C.change),
                "stores": _first(i, C.stores), "sales": i.get(C.sales), "has_data": bool(i),
                "simulated": bool(i.get(C.simulated, di.get(C.simulated, self.simulated)))}})
        counts = {lvl: sum(1 for f in features if f["properties"]["risk_signal"] == lvl) for lvl in RISK_LEVELS}
        changes = {lvl: sum(1 for f in features if f["properties"]["change_index"] == lvl) for lvl in CHANGE_LEVELS}
        return {"type": "FeatureCollection", "quarter": q, "business_type": bt, "simulated": self.simulated,
                "risk_counts": counts, "change_counts": changes, "features": features}

    @staticmethod
    def fields(rows: list[dict[str, Any] | None], listed: list[tuple[tuple[str, ...], str]]) -> list[dict[str, str]]:
        """The listed fields the rows have: each as the first of its names present."""
        present = set().union(*(r.keys() for r in rows if r))
        out = []
        for names, kind in listed:
            name = next((n for n in names if n in present), None)
            if name is not None:
                out.append({"column": name, "kind": kind})
        return out

    def detail(self, code: str, quarter: int | None, business_type: str | None) -> dict[str, Any]:
        q, bt = self.check(quarter, business_type)
        d = self._district(code)
        table, typ = self._table_for(bt)
        series_rows = self._rows(table, None, typ, [code])
        district_rows = self._rows("district_indicators", None, None, [code]) if "district_indicators" in self.tables else []
        row = next((r for r in series_rows if r.get(C.quarter) == q), None)
        drow = next((r for r in district_rows if r.get(C.quarter) == q), None)
        quarters = self.quarters()
        by_q = {r[C.quarter]: r for r in series_rows}
        dby_q = {r[C.quarter]: r for r in district_rows}
        series: dict[str, Any] = {"quarters": quarters}
        for col in SERIES:
            if any(col in r for r in series_rows):
                series[col] = [by_q.get(x, {}).get(col) for x in quarters]
        for col in DISTRICT_SERIES:
            if any(col in r for r in district_rows):
                series[col] = [dby_q.get(x, {}).get(col) for x in quarters]
        return {"district": d, "quarter": q, "business_type": bt, "simulated": bool((row or {}).get(C.simulated, self.simulated)),
                "risk_signal": (row or {}).get(C.risk), "change_index": _first(drow, C.change) or _first(row, C.change),
                "indicators": row, "district_indicators": drow,
                "fields": self.fields([row], FIELDS), "district_fields": self.fields([drow], DISTRICT_FIELDS),
                "trends": self.trends(code, q, bt, by_q), "series": series}

    def _district(self, code: str) -> dict[str, Any]:
        if "districts" in self.tables:
            d = self.districts().get(code)
            if d is None:
                raise HTTPException(404, f"district {code!r} is not in {self.tables['districts'][0]}")
            return {k: v for k, v in d.items() if k != "geometry"}
        if not self.query(f"SELECT 1 FROM {self.scan('indicators')} WHERE CAST({C.district} AS VARCHAR) = ? LIMIT 1", [code]):
            raise HTTPException(404, f"district {code!r} is not in the commerce indicators")
        return {"code": code, "name": code, "name_en": code, "kind": None, "gu": None, "lon": None, "lat": None}

    def trends(self, code: str, q: int, bt: str, by_q: dict[int, dict[str, Any]]) -> dict[str, Any]:
        """QoQ and YoY per indicator, as {metric: {qoq, yoy, unit}}: unit `pct` is a % change (counts,
        amounts), `pp` a change in percentage points (rates). From the `trends` table when there is one
        (its `<metric>_qoq_pct`, `<metric>_yoy_pp`, ... columns), else worked out here from the
        quarterly rows, the same way (null without the earlier quarter or with a zero before)."""
        out: dict[str, dict[str, Any]] = {}
        if "trends" in self.tables:
            for r in self._rows("trends", q, bt, [code])[:1]:
                for c, v in r.items():
                    parts = c.rsplit("_", 2)
                    if len(parts) == 3 and parts[1] in ("qoq", "yoy") and parts[2] in ("pct", "pp"):
                        m = out.setdefault(parts[0], {"unit": parts[2]})
                        m[parts[1]] = v
            return {"source": "trends", "metrics": out}
        now = by_q.get(q, {})
        rates = {names[0] for names, kind in FIELDS if kind == "pct"}
        for col in SERIES:
            for tag, back in (("qoq", 1), ("yoy", 4)):
                before = by_q.get(_quarter_shift(q, back), {}).get(col)
                if now.get(col) is None or before is None:
                    continue
                m = out.setdefault(col, {"unit": "pp" if col in rates else "pct"})
                m[tag] = now[col] - before if col in rates else ((now[col] - before) * 100.0 / before if before else None)
        return {"source": "derived from indicators", "metrics": out}

    def compare(self, codes: list[str], quarter: int | None, business_type: str | None) -> dict[str, Any]:
        q, bt = self.check(quarter, business_type)
        items = []
        table, typ = self._table_for(bt)
        ind = {r[C.district]: r for r in self._rows(table, q, typ, codes)}
        dis = {r[C.district]: r for r in self._rows("district_indicators", q, None, codes)} if "district_indicators" in self.tables else {}
        for code in codes:
            d = self._district(code)
            i, di = ind.get(code), dis.get(code)
            items.append({"district": d, "indicators": i, "district_indicators": di,
                          "risk_signal": (i or {}).get(C.risk), "change_index": _first(di, C.change) or _first(i, C.change),
                          "simulated": bool((i or {}).get(C.simulated, self.simulated))})
        return {"quarter": q, "business_type": bt, "simulated": self.simulated, "districts": items,
                "fields": self.fields([it["indicators"] for it in items], FIELDS),
                "district_fields": self.fields([it["district_indicators"] for it in items], DISTRICT_FIELDS)}


def check_source(directory: str) -> CommerceSource:
    """Open `--commerce DIR` at start-up, so a wrong directory stops `citywall up` with the reason."""
    return CommerceSource(directory)


def _source(request: Request) -> CommerceSource | None:
    state = request.app.state
    src = getattr(state, "commerce", None)
    if src is None:
        directory = getattr(state.platform.settings, "commerce", None)
        if not directory:
            return None
        try:
            src = state.commerce = CommerceSource(directory)
        except CommerceSourceError as exc:
            raise HTTPException(503, str(exc)) from None
    return src


def _need(request: Request) -> CommerceSource:
    src = _source(request)
    if src is None:
        raise HTTPException(404, NOT_CONFIGURED)
    return src


def _json(obj: Any, media_type: str = JSON) -> Response:
    return Response(msgspec.json.encode(obj), media_type=media_type)


@router.get("/api/commerce", tags=["commerce"], summary="Whether a commerce source is connected; its quarters and business types")
def get_commerce(request: Request) -> Response:
    src = _source(request)
    if src is None:
        return _json({"configured": False, "message": NOT_CONFIGURED})
    return _json({"configured": True, "simulated": src.simulated, "quarters": src.quarters(), "business_types": src.business_types(),
                  "default_business_type": src.default_business_type(),
                  "tables": sorted(src.tables), "risk_levels": RISK_LEVELS, "change_levels": CHANGE_LEVELS, "max_compare": MAX_COMPARE})


@router.get("/api/commerce/quarters", tags=["commerce"], summary="The quarters in the commerce data (e.g. 20241), oldest first")
def get_quarters(request: Request) -> Response:
    src = _need(request)
    return _json({"quarters": src.quarters(), "simulated": src.simulated})


@router.get("/api/commerce/business-types", tags=["commerce"], summary="The business types: code, Korean and English name, category")
def get_business_types(request: Request) -> Response:
    src = _need(request)
    return _json({"business_types": src.business_types(), "simulated": src.simulated})


@router.get("/api/commerce/districts.geojson", tags=["commerce"],
            summary="The districts as GeoJSON with, for a business type and quarter, the risk signal and the change index")
def get_districts(request: Request, quarter: int | None = None, business_type: str | None = None) -> Response:
    return _json(_need(request).map_view(quarter, business_type), GEOJSON)


@router.get("/api/commerce/districts/{code}", tags=["commerce"],
            summary="A district's indicators for a business type and quarter, its QoQ/YoY trends and quarterly series")
def get_district(request: Request, code: str, quarter: int | None = None, business_type: str | None = None) -> Response:
    return _json(_need(request).detail(code, quarter, business_type))


@router.get("/api/commerce/compare", tags=["commerce"], summary="Up to four districts side by side for a business type and quarter")
def get_compare(request: Request, districts: str = Query(..., description="district codes, comma-separated (1 to 4)"),
                quarter: int | None = None, business_type: str | None = None) -> Response:
    codes = [c.strip() for c in districts.split(",") if c.strip()]
    if not codes:
        raise HTTPException(422, "districts: give 1 to 4 district codes, comma-separated")
    if len(set(codes)) != len(codes):
        raise HTTPException(422, f"districts: {districts!r} names a district twice")
    if len(codes) > MAX_COMPARE:
        raise HTTPException(422, f"districts: at most {MAX_COMPARE} districts are compared, got {len(codes)}")
    return _json(_need(request).compare(codes, quarter, business_type))

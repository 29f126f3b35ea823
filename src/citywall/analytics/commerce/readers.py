"""Seoul's published quarterly commercial-district CSVs into the typed Parquet layout (schema.py).

Seoul publishes 서울시 상권분석서비스 as CSV in CP949 with Korean headers (the open-data portal's
downloads) and through the Open API with field names (VwsmTrdarSelngQq, ...); files saved by
other tools come as UTF-8, with or without a BOM, or as UTF-16 with a BOM (Excel's "Unicode text").
So the reader detects the encoding (a UTF-8 or UTF-16 BOM, then strict UTF-8, then strict CP949) and accepts either header style, per dataset:

    sales      추정매출       VwsmTrdarSelngQq      stores    점포          VwsmTrdarStorQq
    flpop      길단위인구     VwsmTrdarFlpopQq      resident  상주인구      VwsmTrdarRepopQq
    working    직장인구       VwsmTrdarWrcPopltnQq  change    상권변화지표  VwsmTrdarIxQq
    districts  영역           TbgisTrdarRelm

Bad input is never skipped: a byte that is not in the encoding, a missing column, a row with the
wrong number of fields, an unknown code or a negative amount raises `CommerceDataError` naming the
file, the line (row numbers are CSV line numbers: the header is line 1) and the column.

District coordinates: Seoul publishes 엑스좌표_값/와이좌표_값 (XCNTS_VALUE/YDNTS_VALUE) in its
projected CRS (EPSG:5181, Korea 2000 / Central Belt), converted with pyproj; lon/lat (경도/위도) or a
WKT `geometry` column are read as they are.
"""

from __future__ import annotations

import codecs
import csv
import io
import json
import re
from pathlib import Path
from typing import Any, Iterable

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from citywall.analytics.commerce import schema as S
from citywall.analytics.commerce.catalog import BUSINESS_TYPES
from citywall.analytics.commerce.schema import CommerceDataError

API_NAMES = {
    "sales": "VwsmTrdarSelngQq", "stores": "VwsmTrdarStorQq", "flpop": "VwsmTrdarFlpopQq",
    "resident": "VwsmTrdarRepopQq", "working": "VwsmTrdarWrcPopltnQq", "change": "VwsmTrdarIxQq",
    "districts": "TbgisTrdarRelm",
}
DATASETS = tuple(API_NAMES)

_KO_PART = {
    "당월": "thsmon", "주중": "mdwk", "주말": "wkend", "월요일": "mon", "화요일": "tues", "수요일": "wed",
    "목요일": "thur", "금요일": "fri", "토요일": "sat", "일요일": "sun", "남성": "ml", "여성": "fml",
    **{f"시간대_{a}_{b}": f"tmzon_{a}_{b}" for a, b in (("00", "06"), ("06", "11"), ("11", "14"), ("14", "17"), ("17", "21"), ("21", "24"))},
    **{f"시간대_{i}": t for i, t in enumerate(S.TIME_BANDS, start=1)},  # older files number the bands 1..6
    **{f"연령대_{a}": f"agrde_{a}" for a in (10, 20, 30, 40, 50)}, "연령대_60_이상": "agrde_60_above",
}
_KO_FIXED = {
    "기준_년분기_코드": "stdr_yyqu_cd", "기준_년_코드": "stdr_yy_cd", "기준_분기_코드": "stdr_qu_cd",
    "상권_구분_코드": "trdar_se_cd", "상권_구분_코드_명": "trdar_se_cd_nm",
    "상권_코드": "trdar_cd", "상권_코드_명": "trdar_cd_nm",
    "서비스_업종_코드": "svc_induty_cd", "서비스_업종_코드_명": "svc_induty_cd_nm",
    # stores
    "점포_수": "stor_co", "유사_업종_점포_수": "similr_induty_stor_co", "개업_율": "opbiz_rt", "개업_률": "opbiz_rt",
    "개업_점포_수": "opbiz_stor_co", "폐업_률": "clsbiz_rt", "폐업_율": "clsbiz_rt", "폐업_점포_수": "clsbiz_stor_co",
    "프랜차이즈_점포_수": "frc_stor_co",
    # population
    "총_유동인구_수": "tot_flpop_co", "총_상주인구_수": "tot_repop_co", "총_가구_수": "tot_hshld_co",
    "총_직장_인구_수": "tot_wrc_popltn_co", "총_직장인구_수": "tot_wrc_popltn_co",
    # change index
    "상권_변화_지표": "trdar_chnge_ix", "상권_변화_지표_명": "trdar_chnge_ix_nm",
    "운영_영업_개월_평균": "opr_sale_mt_avrg", "폐업_영업_개월_평균": "cls_sale_mt_avrg",
    "서울_운영_영업_개월_평균": "su_opr_sale_mt_avrg", "서울_폐업_영업_개월_평균": "su_cls_sale_mt_avrg",
    # districts
    "엑스좌표_값": "xcnts_value", "와이좌표_값": "ydnts_value", "자치구_코드": "signgu_cd", "자치구_코드_명": "signgu_cd_nm",
    "행정동_코드": "adstrd_cd", "행정동_코드_명": "adstrd_cd_nm", "영역_면적": "relm_ar",
    "경도": "lon", "위도": "lat", "longitude": "lon", "latitude": "lat", "wkt": "geometry",
}
_KO_SUFFIX = {"_매출_금액": "_selng_amt", "_매출_건수": "_selng_co", "_유동인구_수": "_flpop_co",
              "_상주인구_수": "_repop_co", "_직장_인구_수": "_wrc_popltn_co", "_직장인구_수": "_wrc_popltn_co"}
_BUGGY_BAND = re.compile(r"^시간대_건수_(\d\d)_매출_건수$")  # Seoul's own header typo: 시간대_건수~06_매출_건수
_BAND_BY_END = {t.split("_")[2]: t for t in S.TIME_BANDS}
_EXTRA = {"xcnts_value", "ydnts_value", "stdr_yy_cd", "stdr_qu_cd"}


def _korean_headers() -> dict[str, str]:
    """Layout column -> Seoul's Korean header (the first spelling), for messages about missing columns."""
    out: dict[str, str] = {}
    for ko, api in _KO_FIXED.items():
        if re.match(r"^[가-힣_]+$", ko):
            out.setdefault(api, ko)
    for part_ko, part in _KO_PART.items():
        if re.match(r"^시간대_\d$", part_ko):
            continue
        for suffix_ko, suffix in _KO_SUFFIX.items():
            out.setdefault(f"{part}{suffix}", (part_ko + suffix_ko).replace("시간대_", "시간대_", 1))
    return out


def column_name(header: str) -> str | None:
    """The layout's column for a CSV header (Korean or API field name), or None if not one of ours."""
    h = header.strip().strip('"').lstrip("\ufeff").strip()
    low = h.lower()
    known = {f.name for sch in S.SCHEMAS.values() for f in sch} | _EXTRA
    if low in known:
        return low
    if low in _KO_FIXED:
        return _KO_FIXED[low]
    ko = h.replace("~", "_").replace(" ", "")
    if ko in _KO_FIXED:
        return _KO_FIXED[ko]
    m = _BUGGY_BAND.match(ko)
    if m and m.group(1) in _BAND_BY_END:
        return f"{_BAND_BY_END[m.group(1)]}_selng_co"
    for suffix, api in _KO_SUFFIX.items():
        if ko.endswith(suffix):
            part = ko[: -len(suffix)]
            if part in _KO_PART:
                return f"{_KO_PART[part]}{api}"
    return None


KOREAN = _korean_headers()


def detect_dataset(columns: Iterable[str]) -> str | None:
    """Which dataset a file holds, from its (mapped) column names."""
    cols = set(columns)
    for marker, name in (("thsmon_selng_amt", "sales"), ("stor_co", "stores"), ("tot_flpop_co", "flpop"),
                         ("tot_repop_co", "resident"), ("tot_wrc_popltn_co", "working"), ("trdar_chnge_ix", "change")):
        if marker in cols:
            return name
    if "trdar_cd" in cols and ({"xcnts_value", "lon", "geometry", "relm_ar"} & cols):
        return "districts"
    return None


# ---------------------------------------------------------------- decoding
def decode(data: bytes, file: str, encoding: str | None = None) -> tuple[str, str]:
    """(text, encoding): the given encoding, or detected (UTF-8 BOM, UTF-8, CP949). A byte sequence
    that is not valid raises CommerceDataError at its line and column."""
    if encoding:
        candidates = [encoding]
    elif data.startswith(codecs.BOM_UTF8):
        candidates = ["utf-8-sig"]
    elif data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        candidates = ["utf-16"]  # Excel's "Unicode text": its BOM says so, so read it rather than reject it
    else:
        candidates = ["utf-8", "cp949"]
    failures: list[tuple[str, UnicodeDecodeError]] = []
    for enc in candidates:
        try:
            return data.decode(enc), enc
        except UnicodeDecodeError as e:
            failures.append((enc, e))
        except LookupError:
            raise CommerceDataError(file, None, None, f"unknown encoding {enc!r}") from None
    # When detecting, report the encoding that read furthest: a UTF-8 file with one stray CP949 line
    # fails in UTF-8 at that line, but in CP949 already at the header's first Korean syllable.
    enc, err = max(failures, key=lambda f: f[1].start)
    line_start = data.rfind(b"\n", 0, err.start) + 1
    line = data.count(b"\n", 0, err.start) + 1
    header = data.split(b"\n", 1)[0].decode(enc, errors="replace")
    col_index = data[line_start:err.start].count(b",")
    names = next(csv.reader([header.lstrip("\ufeff")]), [])
    col = names[col_index].strip() if col_index < len(names) and line > 1 else f"field {col_index + 1}"
    tried = encoding or "UTF-8 and CP949"
    raise CommerceDataError(file, line, col, f"bytes {data[err.start:err.start + 2]!r} are not valid text in {tried} "
                                             f"(expected CP949, UTF-8 or UTF-8 with BOM; pass the file's encoding)")


# ---------------------------------------------------------------- reading
def read_csv(path: str | Path, dataset: str | None = None, *, encoding: str | None = None,
             known: dict[str, set[str]] | None = None, city: Any = None) -> tuple[str, pa.Table]:
    """Read one Seoul CSV into (dataset, table in the layout's schema). `dataset` is detected from
    the header when not given; `known` restricts codes (see schema.validate); `city` (a citywall
    City) places districts in the city model's dongs by their point."""
    path = Path(path)
    file = str(path)
    text, _enc = decode(path.read_bytes(), file, encoding)
    rows = csv.reader(io.StringIO(text))
    try:
        header = next(rows)
    except StopIteration:
        raise CommerceDataError(file, 1, None, "empty file: no header line") from None
    mapped = [column_name(h) for h in header]
    ds = dataset or detect_dataset(c for c in mapped if c)
    if ds is None:
        raise CommerceDataError(file, 1, None, "cannot tell which dataset this is (no 당월_매출_금액/THSMON_SELNG_AMT, 점포_수/STOR_CO, "
                                               "총_유동인구_수, 총_상주인구_수, 총_직장_인구_수, 상권_변화_지표 or district coordinates column)")
    if ds not in DATASETS:
        raise ValueError(f"unknown dataset {ds!r}; expected one of {', '.join(DATASETS)}")
    seen: dict[str, int] = {}
    for i, c in enumerate(mapped):
        if c is not None:
            if c in seen:
                raise CommerceDataError(file, 1, header[i], f"two columns mean {c}: {header[seen[c]]!r} and {header[i]!r}")
            seen[c] = i
    values: list[list[str]] = [[] for _ in header]
    width = len(header)
    lines: list[int] = []  # the CSV line each kept record starts on (blank lines and quoted newlines shift them)
    start = rows.line_num + 1
    for row in rows:
        line, start = start, rows.line_num + 1
        if not row:
            continue
        if len(row) != width:
            raise CommerceDataError(file, line, None, f"{len(row)} fields, the header has {width}")
        lines.append(line)
        for j, v in enumerate(row):
            values[j].append(v)
    cols = {c: pa.array(values[i], pa.string()) for c, i in seen.items()}
    if "stdr_yyqu_cd" not in cols and {"stdr_yy_cd", "stdr_qu_cd"} <= set(cols):
        cols["stdr_yyqu_cd"] = pc.binary_join_element_wise(cols["stdr_yy_cd"], cols["stdr_qu_cd"], "")
    table = pa.table(cols) if cols else pa.table({"_": pa.array([], pa.string())})
    try:
        if ds == "districts":
            table = _district_coordinates(table, file, city)
        return ds, S.validate(table, ds, file, first_row=2, known=known)
    except CommerceDataError as e:  # the record's CSV line; the column as the file spells it, and as the layout does
        row = lines[e.row - 2] if e.row is not None and 0 <= e.row - 2 < len(lines) else e.row
        if e.column is None:
            raise CommerceDataError(file, row, None, e.problem) from None
        spelled = [f"{header[seen[c]].strip()} ({c})" if c in seen and header[seen[c]].strip().lower() != c
                   else f"{KOREAN[c]} ({c})" if c not in seen and c in KOREAN else c
                   for c in e.column.split(", ")]
        raise CommerceDataError(file, row, ", ".join(spelled), e.problem) from None


def _district_coordinates(table: pa.Table, file: str, city: Any) -> pa.Table:
    """lon/lat from the file, or from Seoul's EPSG:5181 x/y (converted with pyproj); the dong from the city model."""
    cols = set(table.column_names)
    if not {"lon", "lat"} <= cols:
        if "geometry" in cols:
            import shapely

            try:
                geoms = shapely.from_wkt(table["geometry"].to_pylist(), on_invalid="raise")
            except Exception as e:  # noqa: BLE001 - shapely raises GEOSException
                bad = next(i for i, w in enumerate(table["geometry"].to_pylist()) if _bad_wkt(w))
                raise CommerceDataError(file, bad + 2, "geometry", f"not WKT: {e}") from None
            pts = shapely.point_on_surface(geoms)
            table = table.append_column("lon", pa.array(shapely.get_x(pts))).append_column("lat", pa.array(shapely.get_y(pts)))
        elif {"xcnts_value", "ydnts_value"} <= cols:
            from pyproj import Transformer  # imported here: only Seoul's projected coordinates need it

            x = _floats(table, "xcnts_value", file)
            y = _floats(table, "ydnts_value", file)
            lon, lat = Transformer.from_crs("EPSG:5181", "EPSG:4326", always_xy=True).transform(x, y)
            table = table.append_column("lon", pa.array(lon)).append_column("lat", pa.array(lat))
    if city is not None and {"lon", "lat"} <= set(table.column_names):
        lon = _floats(table, "lon", file)
        lat = _floats(table, "lat", file)
        located = city.locate_many(lon, lat)
        for i, (gu, dong) in enumerate(located):
            if dong is None:
                raise CommerceDataError(file, i + 2, "lon", f"point ({lon[i]:.6f}, {lat[i]:.6f}) is outside the city model")
        table = _set(table, "adstrd_cd", pa.array([d for _g, d in located]))
        table = _set(table, "adstrd_cd_nm", pa.array([city.dongs[d].name_ko for _g, d in located]))
        table = _set(table, "signgu_cd", pa.array([g for g, _d in located]))
    return table


def _bad_wkt(w: Any) -> bool:
    import shapely

    try:
        shapely.from_wkt(w, on_invalid="raise")
        return False
    except Exception:  # noqa: BLE001
        return True


def _floats(table: pa.Table, col: str, file: str) -> np.ndarray:
    vals = table[col].to_pylist()
    out = np.empty(len(vals))
    for i, v in enumerate(vals):
        try:
            out[i] = float(v) if not isinstance(v, float) else v
        except (TypeError, ValueError):
            raise CommerceDataError(file, i + 2, col, f"not a number: {v!r}") from None
    return out


def _set(table: pa.Table, name: str, arr: pa.Array) -> pa.Table:
    if name in table.column_names:
        return table.set_column(table.column_names.index(name), name, arr)
    return table.append_column(name, arr)


# ---------------------------------------------------------------- into the layout
def import_files(paths: Iterable[str | Path], out: str | Path, *, encoding: str | None = None, city: Any = None) -> dict[str, Any]:
    """Read Seoul CSV files (any mix of the datasets) and write them into the layout under `out`.

    Districts are read first, so that sales, stores, ... may only name known districts (from the
    districts file, or from an existing OUT/districts.parquet); business types come from the codes
    and names in the sales and stores files. Returns the manifest (simulated: false)."""
    out = Path(out)
    paths = [Path(p) for p in paths]
    heads = {p: _header_of(p, encoding) for p in paths}
    headers = {p: h[0] for p, h in heads.items()}
    ignored = {str(p): h[1] for p, h in heads.items() if h[1]}
    order = sorted(paths, key=lambda p: headers[p] != "districts")
    tables: dict[str, list[tuple[str, pa.Table]]] = {}
    known: dict[str, set[str]] = {}
    if (out / "districts.parquet").exists():
        known["trdar_cd"] = set(pq.read_table(out / "districts.parquet", columns=["trdar_cd"])["trdar_cd"].to_pylist())
    for p in order:
        ds, t = read_csv(p, headers[p], encoding=encoding, known=known if headers[p] != "districts" else None, city=city)
        tables.setdefault(ds, []).append((str(p), t))
        if ds == "districts":
            known.setdefault("trdar_cd", set()).update(t["trdar_cd"].to_pylist())
    out.mkdir(parents=True, exist_ok=True)
    written: dict[str, int] = {}
    quarters: set[int] = set()
    for ds, parts in tables.items():
        table = pa.concat_tables(t for _f, t in parts)
        if len(parts) > 1 and ds in S.KEYS:
            S._check_unique(table, S.KEYS[ds], " + ".join(f for f, _t in parts), 2)
        written[ds] = table.num_rows
        if ds == "districts":
            pq.write_table(table, S.table_path(out, "districts"))
            continue
        for q in sorted(set(table["stdr_yyqu_cd"].to_pylist())):
            quarters.add(q)
            S.write_quarter(table.filter(pc.equal(table["stdr_yyqu_cd"], q)), out, ds, q)
    types = _business_types([t for ds in ("sales", "stores") for _f, t in tables.get(ds, [])])
    if types is not None:
        pq.write_table(types, S.table_path(out, "business_types"))
    manifest = {"simulated": False, "source": "Seoul 상권분석서비스 CSV files", "files": [str(p) for p in paths],
                "datasets": written, "quarters": sorted(quarters)}
    if ignored:  # columns of the files that the layout has no place for (e.g. code names): not imported
        manifest["ignored_columns"] = ignored
    (out / "manifest.json").write_text(json.dumps(manifest, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    return manifest


def _dataset_of(path: Path, encoding: str | None) -> str:
    return _header_of(path, encoding)[0]


def _header_of(path: Path, encoding: str | None) -> tuple[str, list[str]]:
    """(dataset, the header columns that map to no layout column): the latter are not imported, and
    the manifest lists them so that nothing is dropped without saying so."""
    with open(path, "rb") as fh:
        head = fh.readline()
        if encoding is None and head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
            # a UTF-16 line ends in two bytes: read on to the header's end (whole code units only)
            head += fh.read(1 << 20)
            head = head[:len(head) // 2 * 2]
    text, _ = decode(head, str(path), encoding)
    text = text.split("\n", 1)[0]
    header = next(csv.reader([text]), [])
    mapped = [column_name(h) for h in header]
    ds = detect_dataset(c for c in mapped if c)
    if ds is None:
        raise CommerceDataError(str(path), 1, None, "cannot tell which dataset this is from its header")
    return ds, [h.strip().lstrip("\ufeff") for h, c in zip(header, mapped) if c is None]


def _business_types(tables: list[pa.Table]) -> pa.Table | None:
    if not tables:
        return None
    by_code: dict[str, str] = {}
    for t in tables:
        for c, n in zip(t["svc_induty_cd"].to_pylist(), t["svc_induty_cd_nm"].to_pylist()):
            by_code.setdefault(c, n or c)
    en = {b.code: b.name_en for b in BUSINESS_TYPES}
    rows = [{"svc_induty_cd": c, "svc_induty_cd_nm": n, "name_en": en.get(c), "category": S.CATEGORIES[c[2]][0],
             "category_en": S.CATEGORIES[c[2]][1]} for c, n in sorted(by_code.items())]
    return pa.Table.from_pylist(rows, schema=S.BUSINESS_TYPES)

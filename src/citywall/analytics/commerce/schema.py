"""The typed Parquet layout of a commerce data directory, and the one check every table passes.

Column names are Seoul's Open API field names in lower case (`trdar_cd`, `thsmon_selng_amt`, ...)
so that a city that already knows Seoul's 상권분석서비스 recognises them, and so that the readers
(Korean CSV headers or API names) and the generator (simulated data) write the very same tables.
Helper modules (indicators, engines, the wall) import the schemas from here and nowhere else.

Layout of a data directory DATA::

    DATA/districts.parquet                      one row per district (상권)
    DATA/business_types.parquet                 one row per service business type (서비스 업종)
    DATA/<table>/stdr_yyqu_cd=<Q>/part-0.parquet for table in QUARTERLY (sales, stores, flpop,
                                                 resident, working, change)
    DATA/manifest.json                          what made it, simulated flag, quarters

Quarterly files carry `stdr_yyqu_cd` as a column too (hive directory + column): a single file is
then self-describing. Engines read the column from the files: DuckDB
`read_parquet('DATA/sales/*/*.parquet', hive_partitioning=false)`, Spark with
`recursiveFileLookup=true` (no partition discovery), pyarrow `read_quarterly(DATA, 'sales')` below.
(Plain `pyarrow.parquet.read_table(DATA/sales)` refuses the column being in both places; Spark's
partition discovery would too.) `file_schema(name)` is the schema inside one file.

Raw records RAW/payments/part-*.parquet and RAW/flpop/part-*.parquet (schemas below).

`validate(table, name, file)` raises `CommerceDataError` naming file, row and column for missing
columns, values of the wrong type, empty keys, unknown codes and negative amounts: nothing is
dropped silently, the data either passes whole or the user is told where it is wrong.
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

# ---------------------------------------------------------------- codes
DISTRICT_KINDS: dict[str, tuple[str, str]] = {
    # trdar_se_cd: (Korean name as Seoul publishes it, English)
    "A": ("골목상권", "alley district"),
    "D": ("발달상권", "developed district"),
    "R": ("전통시장", "traditional market"),
    "U": ("관광특구", "tourist zone"),
}
CHANGE_INDEX: dict[str, tuple[str, str]] = {
    # trdar_chnge_ix: (Korean name, English). First letter: surviving businesses' average operating
    # months against Seoul's (L below, H above); second letter: closed businesses' (L/H).
    "LL": ("다이나믹", "dynamic"),
    "LH": ("상권확장", "expanding"),
    "HL": ("상권축소", "shrinking"),
    "HH": ("정체", "stagnant"),
}
CATEGORIES: dict[str, tuple[str, str]] = {
    # first digit of svc_induty_cd after "CS": (Korean, English)
    "1": ("외식업", "food service"),
    "2": ("서비스업", "services"),
    "3": ("소매업", "retail"),
}
BUSINESS_TYPE_CODE = re.compile(r"^CS[123]\d{5}$")
DISTRICT_CODE = re.compile(r"^\d{7}$")  # Seoul's trdar_cd: 7 digits (e.g. 3110001)
GU_CODE = re.compile(r"^\d{5}$")

SEX = ("M", "F")
AGE_BANDS = (10, 20, 30, 40, 50, 60)  # 60 = 60 and above

# ---------------------------------------------------------------- breakdown suffixes
# Seoul's own spellings: TUES and THUR, MDWK (Mon-Fri) / WKEND (Sat-Sun), AGRDE_60_ABOVE.
DAYS = ("mon", "tues", "wed", "thur", "fri", "sat", "sun")
WEEK = ("mdwk", "wkend")
TIME_BANDS = ("tmzon_00_06", "tmzon_06_11", "tmzon_11_14", "tmzon_14_17", "tmzon_17_21", "tmzon_21_24")
SEXES = ("ml", "fml")
AGES = ("agrde_10", "agrde_20", "agrde_30", "agrde_40", "agrde_50", "agrde_60_above")
SALES_PARTS = ("thsmon",) + WEEK + DAYS + TIME_BANDS + SEXES + AGES  # thsmon = the whole quarter

SALES_MEASURES = tuple(f"{p}_selng_amt" for p in SALES_PARTS) + tuple(f"{p}_selng_co" for p in SALES_PARTS)
FLPOP_MEASURES = ("tot_flpop_co",) + tuple(f"{p}_flpop_co" for p in SEXES + AGES + TIME_BANDS + DAYS)
RESIDENT_MEASURES = ("tot_repop_co",) + tuple(f"{p}_repop_co" for p in SEXES + AGES) + ("tot_hshld_co",)
WORKING_MEASURES = ("tot_wrc_popltn_co",) + tuple(f"{p}_wrc_popltn_co" for p in SEXES + AGES)
STORE_MEASURES = (
    "stor_co", "similr_induty_stor_co", "opbiz_rt", "opbiz_stor_co", "clsbiz_rt", "clsbiz_stor_co",
    "frc_stor_co",
    # Not in Seoul's open file; what a cohort-tracking source (or the generator) can provide for
    # survival and the 3-year closure rate (see docs/commerce-data.md):
    "clsbiz_3y_stor_co",   # closures this quarter of businesses open less than 36 months
    "srvv_1y_base_co",     # businesses opened 4 quarters earlier (the 1-year cohort)
    "srvv_1y_co",          # ... of which still open at the end of this quarter
    "srvv_3y_base_co",     # businesses opened 12 quarters earlier (the 3-year cohort)
    "srvv_3y_co",          # ... of which still open
)
RATE_COLUMNS = frozenset({"opbiz_rt", "clsbiz_rt"})
CHANGE_MEASURES = ("opr_sale_mt_avrg", "cls_sale_mt_avrg", "su_opr_sale_mt_avrg", "su_cls_sale_mt_avrg")

# ---------------------------------------------------------------- schemas
_KEY_DISTRICT = [
    pa.field("stdr_yyqu_cd", pa.int32(), nullable=False),
    pa.field("trdar_se_cd", pa.string(), nullable=False),
    pa.field("trdar_cd", pa.string(), nullable=False),
    pa.field("trdar_cd_nm", pa.string()),
]
_KEY_TYPE = [
    pa.field("svc_induty_cd", pa.string(), nullable=False),
    pa.field("svc_induty_cd_nm", pa.string()),
]
_SIM = pa.field("simulated", pa.bool_(), nullable=False)


def _counts(names: tuple[str, ...], typ: pa.DataType = pa.int64()) -> list[pa.Field]:
    return [pa.field(n, typ, nullable=False) for n in names]


DISTRICTS = pa.schema([
    pa.field("trdar_cd", pa.string(), nullable=False),
    pa.field("trdar_cd_nm", pa.string(), nullable=False),
    pa.field("trdar_se_cd", pa.string(), nullable=False),
    pa.field("trdar_se_cd_nm", pa.string()),
    pa.field("signgu_cd", pa.string(), nullable=False),      # gu code, 5 digits as the city model
    pa.field("signgu_cd_nm", pa.string()),
    pa.field("adstrd_cd", pa.string(), nullable=False),      # the city model's dong code
    pa.field("adstrd_cd_nm", pa.string()),
    pa.field("lon", pa.float64(), nullable=False),           # WGS84 point inside the district
    pa.field("lat", pa.float64(), nullable=False),
    pa.field("relm_ar", pa.float64()),                       # area, m²
    pa.field("geometry", pa.string()),                       # WKT polygon, WGS84 lon/lat
    _SIM,
])
BUSINESS_TYPES = pa.schema([
    pa.field("svc_induty_cd", pa.string(), nullable=False),
    pa.field("svc_induty_cd_nm", pa.string(), nullable=False),
    pa.field("name_en", pa.string()),
    pa.field("category", pa.string(), nullable=False),       # 외식업 | 서비스업 | 소매업
    pa.field("category_en", pa.string()),
])
SALES = pa.schema(_KEY_DISTRICT + _KEY_TYPE + _counts(SALES_MEASURES) + [_SIM])
STORES = pa.schema(
    _KEY_DISTRICT + _KEY_TYPE
    + [pa.field(n, pa.float64() if n in RATE_COLUMNS else pa.int64(), nullable=False) for n in STORE_MEASURES[:7]]
    + [pa.field(n, pa.int64()) for n in STORE_MEASURES[7:]]  # nullable: Seoul's file lacks them
    + [_SIM]
)
FLPOP = pa.schema(_KEY_DISTRICT + _counts(FLPOP_MEASURES) + [_SIM])
RESIDENT = pa.schema(_KEY_DISTRICT + _counts(RESIDENT_MEASURES) + [_SIM])
WORKING = pa.schema(_KEY_DISTRICT + _counts(WORKING_MEASURES) + [_SIM])
CHANGE = pa.schema(
    _KEY_DISTRICT
    + [pa.field("trdar_chnge_ix", pa.string(), nullable=False), pa.field("trdar_chnge_ix_nm", pa.string())]
    + [pa.field(n, pa.float64(), nullable=False) for n in CHANGE_MEASURES]
    + [_SIM]
)
PAYMENTS = pa.schema([
    pa.field("paid_at", pa.timestamp("us", tz="Asia/Seoul"), nullable=False),
    pa.field("district_code", pa.string(), nullable=False),
    pa.field("business_type_code", pa.string(), nullable=False),
    pa.field("amount_krw", pa.int64(), nullable=False),
    pa.field("customer_sex", pa.string(), nullable=False),        # M | F
    pa.field("customer_age_band", pa.int8(), nullable=False),     # 10..60, 60 = 60+
])
RAW_FLPOP = pa.schema([
    pa.field("counted_at", pa.timestamp("us", tz="Asia/Seoul"), nullable=False),
    pa.field("district_code", pa.string(), nullable=False),
    pa.field("count", pa.int32(), nullable=False),
    pa.field("sex", pa.string(), nullable=False),
    pa.field("age_band", pa.int8(), nullable=False),
])

SCHEMAS: dict[str, pa.Schema] = {
    "districts": DISTRICTS,
    "business_types": BUSINESS_TYPES,
    "sales": SALES,
    "stores": STORES,
    "flpop": FLPOP,
    "resident": RESIDENT,
    "working": WORKING,
    "change": CHANGE,
    "payments": PAYMENTS,
    "raw_flpop": RAW_FLPOP,
}
QUARTERLY = ("sales", "stores", "flpop", "resident", "working", "change")
RAW_DIRS = {"payments": "payments", "raw_flpop": "flpop"}  # table name -> RAW/<dir>
# Columns that identify one row; duplicates are an error (a file read twice, or two files overlapping).
KEYS: dict[str, tuple[str, ...]] = {
    "districts": ("trdar_cd",),
    "business_types": ("svc_induty_cd",),
    "sales": ("stdr_yyqu_cd", "trdar_cd", "svc_induty_cd"),
    "stores": ("stdr_yyqu_cd", "trdar_cd", "svc_induty_cd"),
    "flpop": ("stdr_yyqu_cd", "trdar_cd"),
    "resident": ("stdr_yyqu_cd", "trdar_cd"),
    "working": ("stdr_yyqu_cd", "trdar_cd"),
    "change": ("stdr_yyqu_cd", "trdar_cd"),
}


def table_path(data_dir: Any, name: str, quarter: int | None = None) -> Any:
    """Where table `name` lives in a data directory (a quarter's file for quarterly tables)."""
    from pathlib import Path

    base = Path(data_dir)
    if name in QUARTERLY:
        d = base / name
        return d if quarter is None else d / f"stdr_yyqu_cd={quarter}" / "part-0.parquet"
    return base / f"{name}.parquet"


def file_schema(name: str) -> pa.Schema:
    """The schema inside one Parquet file of table `name` (the same as the table's: the quarter is
    both in the file and in the directory name)."""
    return SCHEMAS[name]


def write_quarter(table: pa.Table, data_dir: Any, name: str, quarter: int) -> Any:
    """Write one quarter of a quarterly table (in SCHEMAS[name]) to its hive partition; returns the path."""
    import pyarrow.parquet as pq

    path = table_path(data_dir, name, quarter)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".parquet.tmp")
    if set(table["stdr_yyqu_cd"].to_pylist()) - {quarter}:
        raise ValueError(f"{path}: rows of other quarters than {quarter}")
    pq.write_table(table.cast(file_schema(name)), tmp)
    tmp.replace(path)
    return path


def drop_other_quarters(data_dir: Any, name: str, keep: set[int]) -> list[int]:
    """Remove the partitions of table `name` whose quarter is not in `keep`: a rerun into the same
    directory (fewer quarters, another seed) then holds exactly what it wrote, not a mix of two runs.
    Returns the quarters removed."""
    import shutil

    removed = []
    for d in sorted(table_path(data_dir, name).glob("stdr_yyqu_cd=*")):
        q = d.name.split("=", 1)[1]
        if not (q.isdigit() and int(q) in keep):
            shutil.rmtree(d)
            removed.append(int(q) if q.isdigit() else -1)
    return removed


def read_quarterly(data_dir: Any, name: str, quarters: list[int] | None = None,
                   columns: list[str] | None = None) -> pa.Table:
    """A quarterly table of a data directory as one Arrow table in SCHEMAS[name] (or `columns`),
    the quarter taken from the partition directory (also for files written without the column);
    for tests and small data (engines read the files)."""
    import pyarrow.parquet as pq

    base = table_path(data_dir, name)
    dirs = sorted(base.glob("stdr_yyqu_cd=*"))
    if not dirs:
        raise FileNotFoundError(f"{base}: no quarters (expected {base}/stdr_yyqu_cd=YYYYQ/*.parquet)")
    want = columns or SCHEMAS[name].names
    parts = []
    for d in dirs:
        q = int(d.name.split("=", 1)[1])
        if quarters is not None and q not in quarters:
            continue
        for f in sorted(d.glob("*.parquet")):
            t = pq.read_table(f, columns=[c for c in want if c != "stdr_yyqu_cd"], partitioning=None)
            if "stdr_yyqu_cd" in want:
                t = t.add_column(0, "stdr_yyqu_cd", pa.array(np.full(t.num_rows, q, np.int32)))
            parts.append(t.select(want))
    schema = pa.schema([SCHEMAS[name].field(c) for c in want])
    return pa.concat_tables(parts).cast(schema) if parts else schema.empty_table()


# ---------------------------------------------------------------- validation
class CommerceDataError(ValueError):
    """Bad commerce data: the message names the file, the row (1-based data row, or the CSV line
    when the reader passes `first_row=2`) and the column, so the user can open the file there."""

    def __init__(self, file: str, row: int | None, column: str | None, problem: str) -> None:
        self.file, self.row, self.column, self.problem = str(file), row, column, problem
        where = [str(file)]
        if row is not None:
            where.append(f"row {row}")
        if column is not None:
            where.append(f"column {column}")
        super().__init__(f"{', '.join(where)}: {problem}")


def quarter_ok(values: np.ndarray) -> np.ndarray:
    """stdr_yyqu_cd is YYYYQ: a plausible year and a quarter 1-4."""
    year, q = values // 10, values % 10
    return (year >= 1990) & (year <= 2100) & (q >= 1) & (q <= 4)


def _first_bad(mask: Any) -> int | None:
    arr = np.asarray(mask, dtype=bool)
    idx = np.flatnonzero(arr)
    return int(idx[0]) if idx.size else None


def _codes_check(table: pa.Table, name: str) -> list[tuple[str, Any, str]]:
    """(column, boolean 'bad' mask, problem) for the code columns of table `name`."""
    checks: list[tuple[str, Any, str]] = []
    cols = set(table.column_names)

    def bad_regex(col: str, pattern: re.Pattern[str], what: str) -> None:
        if col in cols:
            ok = pc.match_substring_regex(table[col].cast(pa.string()), pattern.pattern)
            checks.append((col, pc.invert(pc.fill_null(ok, True)).to_numpy(zero_copy_only=False), what))

    def bad_set(col: str, allowed: Any, what: str) -> None:
        if col in cols:
            ok = pc.is_in(table[col].cast(pa.string()), value_set=pa.array(sorted(allowed)))
            checks.append((col, pc.invert(pc.fill_null(ok, True)).to_numpy(zero_copy_only=False), what))

    bad_set("trdar_se_cd", DISTRICT_KINDS, "unknown district kind (expected A, D, R or U)")
    bad_regex("trdar_cd", DISTRICT_CODE, "unknown district code (expected 7 digits, e.g. 3110001)")
    bad_regex("svc_induty_cd", BUSINESS_TYPE_CODE, "unknown business type code (expected CS1xxxxx, CS2xxxxx or CS3xxxxx)")
    bad_regex("signgu_cd", GU_CODE, "unknown gu code (expected 5 digits)")
    bad_set("trdar_chnge_ix", CHANGE_INDEX, "unknown change index (expected LL, LH, HL or HH)")
    bad_regex("business_type_code", BUSINESS_TYPE_CODE, "unknown business type code")
    bad_regex("district_code", DISTRICT_CODE, "unknown district code")
    for col in ("customer_sex", "sex"):
        bad_set(col, SEX, "unknown sex (expected M or F)")
    for col in ("customer_age_band", "age_band"):
        if col in cols:
            ok = pc.is_in(table[col].cast(pa.int64()), value_set=pa.array(AGE_BANDS, pa.int64()))
            checks.append((col, pc.invert(pc.fill_null(ok, True)).to_numpy(zero_copy_only=False),
                           "unknown age band (expected 10, 20, 30, 40, 50 or 60)"))
    if "stdr_yyqu_cd" in cols and table.num_rows:
        v = table["stdr_yyqu_cd"].cast(pa.int64()).fill_null(20001).to_numpy()
        checks.append(("stdr_yyqu_cd", ~quarter_ok(v), "unknown quarter (expected YYYYQ, e.g. 20241)"))
    return checks


def validate(table: pa.Table, name: str, file: str, *, first_row: int = 1,
             known: dict[str, set[str]] | None = None) -> pa.Table:
    """Check `table` against the schema `name` and return it cast to that schema.

    Raises `CommerceDataError(file, row, column, problem)` on the first problem, in this order:
    missing columns, values that do not convert to the column's type, empty values in a required
    column, unknown codes, negative amounts or counts, duplicate keys. `first_row` is the row number
    of the table's first row in `file` (2 for a CSV with a header line). `known` maps a column to the
    codes allowed in it (e.g. {"trdar_cd": codes of districts.parquet}): an unknown district or
    business type is an error, not a row to drop. Extra columns are dropped: they are not part of
    the layout (e.g. Seoul's *_nm columns the layout does not keep).
    """
    if name not in SCHEMAS:
        raise ValueError(f"unknown table {name!r}; expected one of {', '.join(SCHEMAS)}")
    schema = SCHEMAS[name]
    cols = set(table.column_names)
    missing = [f.name for f in schema if f.name not in cols and (not f.nullable) and f.name != "simulated"]
    if missing:
        raise CommerceDataError(file, None, ", ".join(missing), f"missing column{'s' if len(missing) > 1 else ''} for table {name}")
    n = table.num_rows
    arrays = []
    for f in schema:
        if f.name not in cols:
            if f.name == "simulated":
                arrays.append(pa.array(np.zeros(n, dtype=bool)))  # read from a real source
            else:
                arrays.append(pa.nulls(n, f.type))
            continue
        col = table[f.name]
        if pa.types.is_dictionary(col.type):
            col = col.cast(col.type.value_type)
        if col.type != f.type:
            col = _cast(col, f, file, first_row)
        if not f.nullable and col.null_count:
            row = _first_bad(col.is_null().to_numpy(zero_copy_only=False))
            raise CommerceDataError(file, first_row + (row or 0), f.name, "empty value in a required column")
        arrays.append(col)
    out = pa.Table.from_arrays(arrays, schema=schema)

    for col, bad, problem in _codes_check(out, name):
        row = _first_bad(bad)
        if row is not None:
            raise CommerceDataError(file, first_row + row, col, f"{problem}: {out[col][row].as_py()!r}")
    for col, allowed in (known or {}).items():
        if col in out.column_names and n:
            ok = pc.is_in(out[col], value_set=pa.array(sorted(allowed), pa.string()))
            row = _first_bad(pc.invert(pc.fill_null(ok, True)).to_numpy(zero_copy_only=False))
            if row is not None:
                raise CommerceDataError(file, first_row + row, col, f"unknown code {out[col][row].as_py()!r} (not in the known {col} list)")
    for f in schema:
        if (pa.types.is_integer(f.type) or pa.types.is_floating(f.type)) and f.name not in ("stdr_yyqu_cd", "lon", "lat"):
            neg = pc.fill_null(pc.less(out[f.name], 0), False)
            row = _first_bad(neg.to_numpy(zero_copy_only=False))
            if row is not None:
                raise CommerceDataError(file, first_row + row, f.name, f"negative value {out[f.name][row].as_py()}")
    keys = KEYS.get(name)
    if keys and n:
        _check_unique(out, keys, file, first_row)
    return out


def _cast(col: pa.ChunkedArray, f: pa.Field, file: str, first_row: int) -> pa.ChunkedArray:
    """Cast with a row-level error: find the first value that does not convert."""
    try:
        if pa.types.is_string(col.type) and (pa.types.is_integer(f.type) or pa.types.is_floating(f.type)):
            stripped = pc.replace_substring(pc.utf8_trim_whitespace(col), ",", "")  # "1,234" -> 1234
            stripped = pc.if_else(pc.equal(stripped, ""), pa.scalar(None, pa.string()), stripped)
            if pa.types.is_integer(f.type):
                # Seoul writes some counts as "12.0"; accept integral floats, refuse 12.5
                as_float = stripped.cast(pa.float64())
                frac = pc.fill_null(pc.not_equal(pc.floor(as_float), as_float), False)
                row = _first_bad(frac.to_numpy(zero_copy_only=False))
                if row is not None:
                    raise CommerceDataError(file, first_row + row, f.name, f"not a whole number: {col[row].as_py()!r}")
                return as_float.cast(f.type)
            return stripped.cast(f.type)
        if pa.types.is_string(f.type) and (pa.types.is_integer(col.type)):
            return col.cast(f.type)
        if pa.types.is_boolean(f.type) and pa.types.is_string(col.type):
            low = pc.utf8_lower(col)
            ok = pc.is_in(low, value_set=pa.array(["true", "false", "1", "0"]))
            row = _first_bad(pc.invert(pc.fill_null(ok, True)).to_numpy(zero_copy_only=False))
            if row is not None:
                raise CommerceDataError(file, first_row + row, f.name, f"not true/false: {col[row].as_py()!r}")
            return pc.is_in(low, value_set=pa.array(["true", "1"]))
        return col.cast(f.type)
    except CommerceDataError:
        raise
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError):
        numeric = pa.types.is_integer(f.type) or pa.types.is_floating(f.type)
        for i, v in enumerate(col.to_pylist()):
            if v is None:
                continue
            text = v.replace(",", "").strip() if isinstance(v, str) else v
            if numeric and isinstance(text, str):  # the same rule as above: "12.0" is a whole number
                try:
                    float(text) if text else None
                    continue
                except ValueError:
                    raise CommerceDataError(file, first_row + i, f.name, f"not a {f.type}: {v!r}") from None
            try:
                pa.array([text]).cast(f.type)
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError):
                raise CommerceDataError(file, first_row + i, f.name, f"not a {f.type}: {v!r}") from None
        raise CommerceDataError(file, None, f.name, f"column of type {col.type} does not convert to {f.type}") from None


def _check_unique(table: pa.Table, keys: tuple[str, ...], file: str, first_row: int) -> None:
    sub = table.select(list(keys)).append_column("__row", pa.array(np.arange(table.num_rows)))
    grouped = sub.group_by(list(keys)).aggregate([("__row", "count"), ("__row", "min")])
    dup = pc.greater(grouped["__row_count"], 1)
    row = _first_bad(dup.to_numpy(zero_copy_only=False))
    if row is not None:
        first = grouped["__row_min"][row].as_py()
        key = {k: grouped[k][row].as_py() for k in keys}
        raise CommerceDataError(file, first_row + first, ", ".join(keys), f"duplicate key {key}: the same row appears more than once")

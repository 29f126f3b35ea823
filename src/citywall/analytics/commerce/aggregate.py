"""Raw card payments -> the quarterly estimated-sales table (Seoul's VwsmTrdarSelngQq), out of core.

One row per payment (`paid_at` in KST, `district_code`, `business_type_code`, `amount_krw`,
`customer_sex` M|F, `customer_age_band` 10..60 with 60 = 60+) becomes one row per district x business
type x quarter with `thsmon_selng_amt` / `thsmon_selng_co` and the weekday, weekend, day, time-band, sex
and age-band splits, each as `*_selng_amt` (KRW) and `*_selng_co` (payments).

Why it is one grouped scan with filtered sums: the raw data (billions of rows) never fits in memory, and
a single pass with conditional aggregates lets DuckDB stream the Parquet files with a small hash table
(districts x types x quarters) under `memory_limit`, spilling to `temp_directory` if it must; Spark does
the same across executors. The validity checks cost the scan almost nothing: they are read off the
sums it makes anyway (a payment whose sex is not M or F is in neither sex split, so the splits fall
short of the total; likewise an age band outside 10..60; a null key makes a null group) plus two
cheap aggregates of the amount (its minimum, its non-null count). Good data costs one pass; only when
a check fails does a second, targeted scan find the first bad row's file, row and column.

Why DuckDB reads the files in batches (`batch_rows`, 10^8 rows by default): when every file holds
payments of every district, type and quarter (~2 million groups), the grouped scan under a 2 GB cap
spills its partial aggregates, about 10 GB per 10^8 rows (measured); one query over 10^9 rows would
need ~100 GB of disk. Each batch is aggregated on its own and its groups appended to a temp table in
the engine, added up once at the end (sums of sums: the result is the same to the last won), so
spill stays that of one batch and progress is reported per batch. Adding each batch into a running
total instead re-reads the whole total per batch: about a fifth more time at 10 batches (measured,
on citywall's side and on the hand-written one alike). Every FOLD_BATCHES batches the table is
added up into one row per group before more are appended, which bounds it at any input size.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

KEYS = ("stdr_yyqu_cd", "trdar_cd", "svc_induty_cd")
DEFAULT_BATCH_ROWS = 100_000_000
FOLD_BATCHES = 10  # stored batches added up into one before more are appended (see _duckdb_batches)
RAW_COLUMNS = ("paid_at", "district_code", "business_type_code", "amount_krw", "customer_sex", "customer_age_band")
DAYS = ("mon", "tues", "wed", "thur", "fri", "sat", "sun")  # Seoul's field prefixes, Monday first
TIME_BANDS = ((0, 6), (6, 11), (11, 14), (14, 17), (17, 21), (21, 24))
SEXES = (("ml", "M"), ("fml", "F"))
AGE_BANDS = (("agrde_10", 10), ("agrde_20", 20), ("agrde_30", 30), ("agrde_40", 40), ("agrde_50", 50), ("agrde_60_above", 60))


class RawDataError(ValueError):
    """A bad raw row: names the file, row (1-based within the file, as schema.CommerceDataError) and column."""


def split_prefixes() -> list[str]:
    """Every split of the sales table, in Seoul's column order (thsmon first)."""
    return (["thsmon", "mdwk", "wkend", *DAYS, *(f"tmzon_{a:02d}_{b:02d}" for a, b in TIME_BANDS),
             *(p for p, _ in SEXES), *(p for p, _ in AGE_BANDS)])


def sales_columns() -> list[str]:
    """The measure columns of the sales table: `<split>_selng_amt`, `<split>_selng_co` per split."""
    return [f"{p}_selng_{m}" for p in split_prefixes() for m in ("amt", "co")]


def _conditions(t: Any) -> dict[str, Any]:
    """split prefix -> boolean Ibis expression over the projected table of `_derived` (None = every row)."""
    cond: dict[str, Any] = {"thsmon": None, "mdwk": t._dow < 5, "wkend": t._dow >= 5}
    cond.update({d: t._dow == i for i, d in enumerate(DAYS)})
    cond.update({f"tmzon_{a:02d}_{b:02d}": (t._hour >= a) & (t._hour < b) for a, b in TIME_BANDS})
    cond.update({p: t.customer_sex == code for p, code in SEXES})
    cond.update({p: t._age == band for p, band in AGE_BANDS})
    return cond


def _derived(t: Any) -> Any:
    """The raw table with weekday (0 = Monday on every Ibis backend), hour, quarter and age band
    computed once per row, so that the 50 filtered aggregates compare small integers instead of
    re-deriving them from the timestamp (most of the scan's cost otherwise)."""
    import ibis.expr.datatypes as dt

    # The Korean wall clock, converted once per row (the session time zone is Asia/Seoul on both engines):
    # year, quarter, weekday and hour of a plain timestamp are then arithmetic, not four time-zone lookups.
    local = t.paid_at.cast(dt.Timestamp(scale=6)) if t.paid_at.type().timezone else t.paid_at
    return t.select(
        "amount_krw", "customer_sex",
        stdr_yyqu_cd=local.year().cast("int64") * 10 + local.quarter().cast("int64"),
        trdar_cd=t.district_code.cast("string"), svc_induty_cd=t.business_type_code.cast("string"),
        _dow=local.day_of_week.index(), _hour=local.hour(), _age=t.customer_age_band.cast("int64"),
    )


def sales_expr(t: Any) -> Any:
    """The aggregation, as one Ibis expression over the raw payments table `t`, with `_amount_min` and
    `_amount_n` for the checks (`bad_groups`); the caller raises if any group fails them, so the sums
    are only used when all rows are good."""
    d = _derived(t)
    aggs: dict[str, Any] = {}
    for prefix, cond in _conditions(d).items():
        # Bad rows are not filtered out of the sums: any bad row fails the whole run (see aggregate), so
        # filtering them here would only cost a second predicate per aggregate on every good row.
        # (0 where no payment matches. DuckDB returns these sums as HUGEINT, which `engines.normalize`
        # turns into int64 in Arrow; casting in SQL costs two casts per group and value, and with ~10
        # payments a group at 10^7 rows a file that was ~10% of the scan.)
        aggs[f"{prefix}_selng_amt"] = d.amount_krw.sum(where=cond).coalesce(0)
        aggs[f"{prefix}_selng_co"] = d.count(where=cond)
    aggs["_amount_min"] = d.amount_krw.min()
    aggs["_amount_n"] = d.amount_krw.count()
    return d.group_by(list(KEYS)).aggregate(**aggs)


CHECKS = ("_amount_min", "_amount_n")  # columns of sales_expr that are not part of the sales table


def bad_groups(table: Any) -> int:
    """How many groups of the aggregated Arrow table hold a bad row: a null key (paid_at, district or
    type missing), a negative or missing amount, a sex other than M/F or an age band other than
    10..60 (such a payment is in no split of its kind, so the splits add up to less than the total)."""
    import pyarrow.compute as pc

    total = table["thsmon_selng_co"]
    bad = pc.or_(pc.or_(pc.is_null(table["stdr_yyqu_cd"]), pc.is_null(table["trdar_cd"])), pc.is_null(table["svc_induty_cd"]))
    bad = pc.or_(bad, pc.less(pc.fill_null(table["_amount_min"], -1), 0))
    bad = pc.or_(bad, pc.not_equal(table["_amount_n"], total))
    sexes = pc.add(table["ml_selng_co"], table["fml_selng_co"])
    bad = pc.or_(bad, pc.not_equal(sexes, total))
    ages = table[f"{AGE_BANDS[0][0]}_selng_co"]
    for p, _ in AGE_BANDS[1:]:
        ages = pc.add(ages, table[f"{p}_selng_co"])
    bad = pc.or_(bad, pc.not_equal(ages, total))
    return int(pc.sum(pc.cast(pc.fill_null(bad, True), "int64")).as_py() or 0)


def bigint_sql(columns: list[str], part_sql: str) -> str:
    """DuckDB SQL: one batch's aggregate (`part_sql`, compiled from sales_expr) with its measures as BIGINT.
    DuckDB sums BIGINTs into 16-byte HUGEINTs: stored as BIGINT, each batch takes half the memory and
    spill. Written in DuckDB's SQL rather than Ibis because it is the DuckDB-only batching, not the
    analysis (and Ibis drops a cast to the type it already infers)."""
    keys = ", ".join(f'"{k}"' for k in KEYS)
    measures = ", ".join(f'CAST("{c}" AS BIGINT) AS "{c}"' for c in columns if c not in KEYS)
    return f"SELECT {keys}, {measures} FROM ({part_sql})"


def merge_sql(columns: list[str], table: str) -> str:
    """DuckDB SQL: the stored batches of `table` added up per group. Every measure is a sum or a count,
    so the totals are the sums of the partial ones (the amount's minimum, the minimum)."""
    keys = ", ".join(f'"{k}"' for k in KEYS)
    aggs = ", ".join(f'min("{c}") AS "{c}"' if c == "_amount_min" else f'CAST(sum("{c}") AS BIGINT) AS "{c}"'
                     for c in columns if c not in KEYS)
    return f'SELECT {keys}, {aggs} FROM "{table}" GROUP BY ALL'


def file_batches(files: list[Path], batch_rows: int) -> list[list[Path]]:
    """Consecutive files of about `batch_rows` rows together (row counts from the Parquet footers)."""
    import pyarrow.parquet as pq

    batches: list[list[Path]] = [[]]
    rows = 0
    for f in files:
        n = pq.ParquetFile(f).metadata.num_rows
        if batches[-1] and rows + n > batch_rows:
            batches.append([])
            rows = 0
        batches[-1].append(f)
        rows += n
    return batches


def raw_files(raw: Path) -> list[Path]:
    """The payment Parquet files of a raw directory (RAW/payments/*.parquet, or RAW itself)."""
    raw = Path(raw)
    base = raw / "payments" if (raw / "payments").is_dir() else raw
    files = sorted(base.rglob("*.parquet")) if base.is_dir() else ([base] if base.suffix == ".parquet" else [])
    if not files:
        raise RawDataError(f"{raw}: no payment Parquet files (expected {raw}/payments/part-*.parquet)")
    return files


def check_columns(files: list[Path]) -> None:
    """Every file has the raw columns, of usable types (footers only: cheap). Types are checked here
    because the engines disagree on the wrong ones: a string age band ("60+") fails DuckDB's cast and
    becomes a null that Spark counts nowhere; a float amount is truncated by both; an INT96 timestamp
    (Hive/Impala's UTC instants) is a plain wall clock to DuckDB and an instant to Spark, 9 hours apart."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    def base(t: pa.DataType) -> pa.DataType:
        return t.value_type if pa.types.is_dictionary(t) else t

    kinds = {
        "paid_at": (pa.types.is_timestamp, "a timestamp (with the Asia/Seoul time zone, or a plain Korean wall-clock time)"),
        "district_code": (lambda t: pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_integer(t), "a string (or integer) code"),
        "business_type_code": (lambda t: pa.types.is_string(t) or pa.types.is_large_string(t), "a string code such as CS100001"),
        "amount_krw": (pa.types.is_integer, "an integer type (whole won)"),
        "customer_sex": (lambda t: pa.types.is_string(t) or pa.types.is_large_string(t), "a string, M or F"),
        "customer_age_band": (pa.types.is_integer, "an integer type (10, 20, 30, 40, 50 or 60 = 60+)"),
    }
    for f in files:
        pf = pq.ParquetFile(f)
        schema = pf.schema_arrow
        missing = [c for c in RAW_COLUMNS if c not in schema.names]
        if missing:
            raise RawDataError(f"{f}: missing column(s) {', '.join(missing)} (in the file's schema, so every row); expected {', '.join(RAW_COLUMNS)}")
        for col, (ok, want) in kinds.items():
            typ = base(schema.field(col).type)
            if not ok(typ):
                raise RawDataError(f"{f}: column {col} is {typ} (in the file's schema, so every row); expected {want}")
        physical = {pf.schema.column(i).name: pf.schema.column(i).physical_type for i in range(len(pf.schema))}
        if physical.get("paid_at") == "INT96":
            raise RawDataError(f"{f}: column paid_at is an INT96 timestamp (Hive/Impala's UTC instants, read differently by "
                               "DuckDB and Spark); rewrite it as a timestamp with time zone, e.g. in DuckDB: COPY (SELECT * "
                               "REPLACE (timezone('UTC', paid_at) AS paid_at) FROM 'in.parquet') TO 'out.parquet'")


def locate_bad_row(files: list[Path]) -> str:
    """The first bad row's file, row and column, found with DuckDB reading the same files (the error
    path only; works whichever engine aggregated)."""
    import duckdb

    checks = {
        "paid_at": "paid_at IS NULL", "district_code": "district_code IS NULL", "business_type_code": "business_type_code IS NULL",
        "amount_krw": "amount_krw IS NULL OR amount_krw < 0",
        "customer_sex": "customer_sex IS NULL OR customer_sex NOT IN ('M', 'F')",
        "customer_age_band": "customer_age_band IS NULL OR TRY_CAST(customer_age_band AS BIGINT) NOT IN (10, 20, 30, 40, 50, 60) "
                             "OR TRY_CAST(customer_age_band AS BIGINT) IS NULL",
    }
    con = duckdb.connect()
    try:
        for f in files:
            for col, cond in checks.items():
                row = con.execute(f"SELECT file_row_number, CAST({col} AS VARCHAR) FROM read_parquet(?, file_row_number = true) "
                                  f"WHERE {cond} ORDER BY file_row_number LIMIT 1", [str(f)]).fetchone()
                if row is not None:
                    return f"{f}: row {row[0] + 1}, column {col}: bad value {row[1]!r} ({_rule(col)})"
    finally:
        con.close()
    return "a bad row exists but could not be located again"


def check_codes(table: Any, files: list[Path]) -> None:
    """Unknown district or business type codes (not Seoul's 7-digit trdar_cd / CSnxxxxx svc_induty_cd,
    as schema.validate requires of every table) are an error, not a row that the indicators would show
    under a nameless code. Checked on the grouped result, whose distinct codes are few, so the per-row
    scan stays as cheap as before; only a failure goes back to the raw files for the first bad row."""
    import duckdb
    import pyarrow.compute as pc

    from citywall.analytics.commerce.schema import BUSINESS_TYPE_CODE, DISTRICT_CODE

    for out_col, raw_col, pattern, what in (("trdar_cd", "district_code", DISTRICT_CODE, "expected 7 digits, e.g. 3110001"),
                                            ("svc_induty_cd", "business_type_code", BUSINESS_TYPE_CODE,
                                             "expected CS1xxxxx, CS2xxxxx or CS3xxxxx")):
        bad = sorted(c for c in pc.unique(table[out_col]).to_pylist() if c is not None and not pattern.match(c))
        if not bad:
            continue
        con = duckdb.connect()
        try:
            for f in files:
                row = con.execute(f"SELECT file_row_number FROM read_parquet(?, file_row_number = true) "
                                  f"WHERE CAST({raw_col} AS VARCHAR) = ? ORDER BY file_row_number LIMIT 1", [str(f), bad[0]]).fetchone()
                if row is not None:
                    raise RawDataError(f"{f}: row {row[0] + 1}, column {raw_col}: unknown code {bad[0]!r} ({what})"
                                       + (f"; {len(bad) - 1} other unknown code(s)" if len(bad) > 1 else ""))
        finally:
            con.close()
        raise RawDataError(f"unknown {raw_col} value(s) {', '.join(map(repr, bad[:5]))} ({what})")


def _rule(col: str) -> str:
    return {"amount_krw": "amounts must be present and >= 0", "customer_sex": "expected M or F",
            "customer_age_band": "expected 10, 20, 30, 40, 50 or 60 (= 60+)"}.get(col, "must not be null")


@dataclass
class AggregateResult:
    rows_in: int
    groups: int
    seconds: float
    out: Path | None
    engine: str


def aggregate(con: Any, raw: Path, out: Path | None = None, progress: Callable[[str], None] | None = None,
              simulated: bool | None = None, batch_rows: int = DEFAULT_BATCH_ROWS) -> tuple[Any, AggregateResult]:
    """Aggregate the raw payments under `raw` with the Ibis backend `con`; write OUT/sales/stdr_yyqu_cd=Q/part-0.parquet
    if `out` is given. On DuckDB the files are read `batch_rows` rows at a time (module docstring).
    Returns (Arrow table, in the engine's row order, summary)."""
    import pyarrow as pa

    from citywall.analytics.commerce import engines

    say = progress or (lambda _m: None)
    t0 = time.perf_counter()
    files = raw_files(raw)
    check_columns(files)
    if con.name == "duckdb":
        expr = _duckdb_batches(con, files, batch_rows, say, t0)
    else:
        say(f"aggregating {len(files)} raw payment file(s) on {con.name}")
        base = Path(raw) / "payments" if (Path(raw) / "payments").is_dir() else Path(raw)
        expr = sales_expr(con.read_parquet(str(base), table_name="raw_payments"))
    table = engines.normalize(engines.collect(con, expr))
    if con.name == "duckdb":  # the stored batches, if any: their memory and spill go back now, not at disconnect
        for (name,) in con.con.execute("SELECT table_name FROM duckdb_tables() WHERE temporary "
                                       "AND table_name LIKE 'raw_sales_parts_%'").fetchall():
            con.raw_sql(f'DROP TABLE "{name}"')
    bad = bad_groups(table)
    if bad:
        raise RawDataError(f"bad raw payment rows in {bad:,} district x business type x quarter group(s); first: {locate_bad_row(files)}")
    table = table.drop_columns(list(CHECKS))  # row order is the engine's; write_sales sorts each quarter's file
    check_codes(table, files)
    rows_in = pa.compute.sum(table["thsmon_selng_co"]).as_py() or 0
    if simulated is None:
        simulated = raw_simulated(Path(raw), files)
    table = table.append_column("simulated", pa.array([simulated] * table.num_rows, pa.bool_()))
    say(f"{rows_in:,} payments -> {table.num_rows:,} district x business type x quarter rows "
        f"in {time.perf_counter() - t0:.1f} s")
    if out is not None:
        write_sales(table, Path(out))
    return table, AggregateResult(rows_in, table.num_rows, time.perf_counter() - t0, out, con.name)


def _duckdb_batches(con: Any, files: list[Path], batch_rows: int, say: Callable[[str], None], t0: float) -> Any:
    """The aggregation as batches appended to a DuckDB temp table and added up at the end; returns the total."""
    batches = file_batches(files, batch_rows)
    if len(batches) == 1:
        say(f"aggregating {len(files)} raw payment file(s) on duckdb")
        return sales_expr(con.read_parquet([str(f) for f in files], table_name="raw_payments"))
    say(f"aggregating {len(files)} raw payment file(s) on duckdb in {len(batches)} batches of about {batch_rows:,} rows")
    part: Any = None
    table = "raw_sales_parts_0"
    for i, batch in enumerate(batches):
        part = sales_expr(con.read_parquet([str(f) for f in batch], table_name=f"raw_payments_{i}"))
        con._run_pre_execute_hooks(part)
        columns = list(part.columns)
        sql = bigint_sql(columns, con.compile(part))
        con.raw_sql(f'INSERT INTO "{table}" {sql}' if i else f'CREATE OR REPLACE TEMP TABLE "{table}" AS {sql}')
        if (i + 1) % FOLD_BATCHES == 0 and i + 1 < len(batches):
            # Fold the stored batches into one row per group, which the next batches are appended to, so
            # that the table (and its spill) holds at most FOLD_BATCHES batches' groups at any input size.
            folded = f"raw_sales_parts_{(i + 1) // FOLD_BATCHES}"
            con.raw_sql(f'CREATE OR REPLACE TEMP TABLE "{folded}" AS {merge_sql(columns, table)}')
            con.raw_sql(f'DROP TABLE "{table}"')
            table = folded
        done = sum(1 for b in batches[: i + 1] for _ in b)
        elapsed = time.perf_counter() - t0
        say(f"batch {i + 1}/{len(batches)}: {done}/{len(files)} files in {elapsed:.0f} s, "
            f"about {elapsed / (i + 1) * (len(batches) - i - 1):.0f} s to go")
    # (the schema given: Ibis would otherwise ask DuckDB through an API that duckdb 2.0 removed)
    return con.sql(merge_sql(list(part.columns), table), schema=part.schema())


def raw_simulated(raw: Path, files: list[Path] | None = None) -> bool:
    """Whether the rows are simulated: the raw directory's manifest says so (the generator writes one),
    and so does each generated file's own metadata (`citywall.simulated`), so part files copied away
    from their manifest stay labelled. Without either the rows are taken as real (the city's export)."""
    import pyarrow.parquet as pq

    for path in (raw / "manifest.json", raw.parent / "manifest.json"):
        if path.exists() and json.loads(path.read_text()).get("simulated", False):
            return True
    for f in files or []:
        if (pq.read_schema(f).metadata or {}).get(b"citywall.simulated") == b"true":
            return True
    return False


def write_sales(table: Any, out: Path) -> None:
    """OUT/sales/stdr_yyqu_cd=Q/part-0.parquet: the layout the indicators read, in the layout's column
    types (the engines return the quarter as int64; the layout says int32, and a directory whose files
    disagree cannot be read as one dataset). The raw rows carry no names or district kinds: those
    columns stay absent and the build takes them from districts.parquet."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    from citywall.analytics.commerce.schema import SALES, drop_other_quarters

    target = pa.schema([SALES.field(c) if c in SALES.names else table.schema.field(c) for c in table.column_names])
    table = table.cast(target)
    quarters = sorted(set(table["stdr_yyqu_cd"].to_pylist()))
    drop_other_quarters(out, "sales", set(quarters))  # a rerun into the same OUT holds this run's quarters only
    for q in quarters:
        part = table.filter(pc.equal(table["stdr_yyqu_cd"], q)).sort_by([("trdar_cd", "ascending"), ("svc_induty_cd", "ascending")])
        d = out / "sales" / f"stdr_yyqu_cd={q}"
        d.mkdir(parents=True, exist_ok=True)
        tmp = d / "part-0.parquet.tmp"
        pq.write_table(part, tmp)
        tmp.replace(d / "part-0.parquet")  # a crash leaves the previous file or none, never half of one

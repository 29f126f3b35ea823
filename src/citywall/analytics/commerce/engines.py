"""Engines for the commercial-district analysis: an Ibis connection to DuckDB or Spark over a data directory.

The analysis (indicators.py, aggregate.py) is written once as Ibis expressions; this module is the only
place that knows which engine runs them. DuckDB is the embedded default (one laptop, memory capped,
spilling to a temp directory); Spark runs the same expressions in local mode (tests) or on a cluster
(`spark://host:7077`). Both sessions run in Korea time, so that hours and weekdays of KST payment
timestamps come out the same on both engines whatever the machine's time zone.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ENGINES = ("duckdb", "spark")
TIMEZONE = "Asia/Seoul"

# Quarterly tables, partitioned by stdr_yyqu_cd=Q; and the plain ones.
QUARTERLY = ("sales", "stores", "flpop", "resident", "working", "change")
PLAIN = ("districts", "business_types")


class EngineError(ValueError):
    """A bad engine setting or an unusable data directory (says which)."""


@dataclass
class EngineOptions:
    """How to run. `memory_limit` / `temp_directory` cap DuckDB (it spills beyond the cap);
    `spark_master` is `local[N]` or a cluster URL; `spark_conf` is passed to the SparkSession builder."""

    engine: str = "duckdb"
    memory_limit: str | None = None  # DuckDB, e.g. "2GB"
    temp_directory: str | None = None  # DuckDB spill directory
    threads: int | None = None  # DuckDB threads
    spark_master: str = "local[2]"
    spark_driver_memory: str = "2g"
    spark_conf: dict[str, str] = field(default_factory=dict)
    progress: bool = False  # DuckDB's progress bar for queries longer than 2 s (Spark shows its stage bars anyway)


def connect(options: EngineOptions | None = None) -> Any:
    """An Ibis backend for `options.engine` ("duckdb" or "spark")."""
    import ibis

    options = options or EngineOptions()
    if options.engine == "duckdb":
        config: dict[str, Any] = {}
        if options.memory_limit:
            config["memory_limit"] = options.memory_limit
        if options.temp_directory:
            Path(options.temp_directory).mkdir(parents=True, exist_ok=True)
            config["temp_directory"] = str(options.temp_directory)
        if options.threads:
            config["threads"] = int(options.threads)
        con = ibis.duckdb.connect(":memory:", **config)
        con.raw_sql(f"SET TimeZone = '{TIMEZONE}'")
        # DuckDB draws its bar on stdout: only on a terminal, so that `build ... > file` gets the results alone.
        if options.progress and sys.stdout.isatty():
            con.raw_sql("SET enable_progress_bar = true")
            con.raw_sql("SET enable_progress_bar_print = true")
        return con
    if options.engine == "spark":
        con = ibis.pyspark.connect(spark_session(options))
        # Ibis sets the session to UTC on connect; the analysis needs KST wall-clock hours and weekdays
        # (no timestamps are returned to Python, so Ibis's reason for UTC does not apply here).
        con._session.conf.set("spark.sql.session.timeZone", TIMEZONE)
        return con
    raise EngineError(f"unknown engine {options.engine!r}: use one of {', '.join(ENGINES)}")


def spark_session(options: EngineOptions) -> Any:
    """A SparkSession in Korea time; small shuffles by default (the quarterly tables are small)."""
    from pyspark.sql import SparkSession

    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)  # workers run this interpreter (same packages)
    builder = (SparkSession.builder.master(options.spark_master).appName("citywall-commerce")
               .config("spark.ui.enabled", "false")
               .config("spark.sql.session.timeZone", TIMEZONE)
               .config("spark.sql.shuffle.partitions", "4")
               .config("spark.driver.memory", options.spark_driver_memory)
               .config("spark.sql.ansi.enabled", "false")
               .config("spark.sql.execution.arrow.pyspark.enabled", "true"))
    for key, value in options.spark_conf.items():
        builder = builder.config(key, value)
    return builder.getOrCreate()


@contextmanager
def session(options: EngineOptions | None = None) -> Iterator[Any]:
    """`connect`, closed afterwards for DuckDB. A Spark session is left running (it is the process's one
    SparkSession, shared by later calls, e.g. in a test module)."""
    con = connect(options)
    try:
        yield con
    finally:
        if (options or EngineOptions()).engine == "duckdb":
            con.disconnect()


def collect(con: Any, expr: Any) -> Any:
    """Run an Ibis table expression and return an Arrow table. On Spark through `DataFrame.toArrow()`
    (Arrow batches from the executors) rather than Ibis's `to_pyarrow`, which goes through pandas row
    conversion and takes minutes for a city's indicator table."""
    if con.name == "pyspark":
        con._run_pre_execute_hooks(expr)
        return con._session.sql(con.compile(expr.as_table())).toArrow()
    # DuckDB: the relation's Arrow result directly (Ibis's to_pyarrow adds a conversion pass; the types
    # are made uniform by `normalize`).
    con._run_pre_execute_hooks(expr)
    return con.con.sql(con.compile(expr.as_table())).to_arrow_table()


def materialize(con: Any, expr: Any, name: str) -> Any:
    """Compute `expr` once into an engine-side table `name` (DuckDB temp table; Spark persisted temp
    view) and return it as an Ibis table. (Ibis's own `.cache()` drops its tables from a finalizer that
    fails after the connection is closed.)"""
    if con.name == "pyspark":
        df = con._session.sql(con.compile(expr.as_table())).persist()
        df.createOrReplaceTempView(name)
        return con.table(name)
    # (Ibis's create_table(temp=True, overwrite=True) emits a nameless DROP on duckdb 2.0: plain SQL here)
    # DuckDB stores sums of BIGINT as HUGEINT; cast back to the types the expression promised.
    con.raw_sql(f'CREATE OR REPLACE TEMP TABLE "{name}" AS {con.compile(expr.as_table())}')
    return con.table(name).cast(expr.as_table().schema())


def normalize(t: Any) -> Any:
    """One set of types whatever the engine: integers (and whole decimals) int64, floats and other decimals
    float64, strings string."""
    import pyarrow as pa

    cols = []
    for f in t.schema:
        c = t[f.name]
        if pa.types.is_integer(f.type):
            c = c.cast(pa.int64())
        elif pa.types.is_decimal(f.type) and f.type.scale == 0:  # DuckDB's HUGEINT sums of BIGINT
            c = c.cast(pa.int64())  # (raises on overflow rather than losing digits)
        elif pa.types.is_floating(f.type) or pa.types.is_decimal(f.type):
            c = c.cast(pa.float64())
        elif pa.types.is_large_string(f.type) or pa.types.is_string_view(f.type):
            c = c.cast(pa.string())
        cols.append(c)
    return pa.Table.from_arrays(cols, names=t.column_names)


def parquet_glob(path: Path) -> str:
    """All Parquet files under `path` (hive partitions included)."""
    return str(path / "**" / "*.parquet") if path.is_dir() else str(path)


def read_table(con: Any, path: Path, name: str) -> Any:
    """One table of a data directory as an Ibis table; `stdr_yyqu_cd` from the partition directory,
    cast to int64 so both engines agree on its type."""
    if not path.exists():
        raise EngineError(f"{path}: missing (table {name!r} of the data directory)")
    files = [path] if path.is_file() else sorted(path.rglob("*.parquet"))
    if not files:
        raise EngineError(f"{path}: no Parquet files (table {name!r})")
    # Quarterly files carry stdr_yyqu_cd as a column as well as in the directory name (schema.py): read
    # the column from the files and do not infer partitions, so both engines see the same columns.
    if con.name == "duckdb":
        t = con.read_parquet(parquet_glob(path), table_name=name, hive_partitioning=False, union_by_name=True)
    else:
        t = con.read_parquet(str(path), table_name=name, recursiveFileLookup="true")
    if "stdr_yyqu_cd" in t.columns:
        t = t.mutate(stdr_yyqu_cd=t.stdr_yyqu_cd.cast("int64"))
    return t


def register(con: Any, data: Path, names: tuple[str, ...] = PLAIN + QUARTERLY) -> dict[str, Any]:
    """The tables of a data directory (schema.py's layout) as Ibis tables, by name."""
    data = Path(data)
    if not data.is_dir():
        raise EngineError(f"{data}: not a directory (expected a commerce data directory)")
    from citywall.analytics.commerce.schema import table_path

    missing = [n for n in names if not table_path(data, n).exists()]
    if len(missing) > 1:  # say everything that is needed at once, not one table per attempt
        raise EngineError(f"{data}: missing tables {', '.join(missing)} (a data directory needs {', '.join(names)}; "
                          "`citywall commerce import` reads Seoul's files for each, `generate` makes all of them)")
    out = {}
    for name in names:
        single = data / f"{name}.parquet"
        out[name] = read_table(con, single if single.exists() else data / name, name)
    return out

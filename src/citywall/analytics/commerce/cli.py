"""`citywall commerce ...`: the commercial-district data and analysis on the command line.

Data (this part): `generate` (Seoul-like quarterly data, simulated, the offline default),
`generate-raw` (raw payment rows, up to billions, as Parquet) and `import` (Seoul's published CSVs
into the same layout). Analysis (`aggregate`, `build`, `report`) is registered by
`add_analysis_commands` below, kept in its own functions so the two halves can change apart.

Summaries go to stdout, progress and errors to stderr; exit status 0 on success, 2 for bad
arguments and bad input files (the message names file, row and column). Imports are local so
`citywall --help` stays fast.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any, Callable


def _positive_int(text: str) -> int:
    try:
        v = int(text.replace("_", ""))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if v < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {v}")
    return v


def _rows(text: str) -> int:
    """Row counts: 1000000, 1_000_000, 1e9 or 10M/2G-style suffixes."""
    t = text.strip().replace("_", "").upper()
    mult = {"K": 10**3, "M": 10**6, "G": 10**9, "B": 10**9}.get(t[-1:], 1)
    if mult > 1:
        t = t[:-1]
    try:
        v = float(t) * mult
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a row count like 1000000, 1e9 or 10M, got {text!r}") from None
    if v < 0 or v != int(v):
        raise argparse.ArgumentTypeError(f"expected a whole, non-negative row count, got {text!r}")
    return int(v)


def _quarter(text: str) -> int:
    try:
        q = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a quarter code YYYYQ such as 20254, got {text!r}") from None
    if not (1990 <= q // 10 <= 2100 and 1 <= q % 10 <= 4):
        raise argparse.ArgumentTypeError(f"expected a quarter code YYYYQ such as 20254, got {text!r}")
    return q


# generate.DEFAULT_QUARTERS / DEFAULT_END_QUARTER, repeated so that building the parser does not
# import numpy and shapely (a test checks they agree).
DEFAULT_QUARTERS = 20
DEFAULT_END_QUARTER = 20254


def _progress(quiet: bool) -> Callable[[str], None] | None:
    from citywall.analytics.commerce.rawgen import stderr_progress

    return None if quiet else stderr_progress


def add_commerce(sub: Any) -> None:
    """The `commerce` command and its subcommands, added to citywall's subparsers."""
    com = sub.add_parser("commerce", help="commercial-district (golmok) data and indicators")
    com_sub = com.add_subparsers(dest="commerce_command", required=True)
    add_data_commands(com_sub)
    add_analysis_commands(com_sub)


def add_data_commands(com_sub: Any) -> None:
    """generate, generate-raw, import: the data commands."""
    gen = com_sub.add_parser("generate", help="write Seoul-like quarterly commercial-district data (SIMULATED) as Parquet")
    gen.add_argument("--out", required=True, metavar="DIR", help="data directory to write (layout: docs/commerce-data.md)")
    gen.add_argument("--seed", type=int, default=7, help="the same seed gives the same data (default 7)")
    gen.add_argument("--quarters", type=_positive_int, default=DEFAULT_QUARTERS, metavar="Q",
                     help=f"number of quarters (default {DEFAULT_QUARTERS})")
    gen.add_argument("--end-quarter", type=_quarter, default=DEFAULT_END_QUARTER, metavar="YYYYQ",
                     help=f"last quarter (default {DEFAULT_END_QUARTER})")
    gen.add_argument("--city", default="seoul", help="built-in city name or a city YAML: districts go into its dongs")
    gen.add_argument("--quiet", action="store_true", help="no progress lines on stderr")
    gen.set_defaults(func=run_generate)

    raw = com_sub.add_parser("generate-raw", help="write raw card-payment rows (SIMULATED) as Parquet files, up to billions")
    raw.add_argument("--rows", type=_rows, required=True, metavar="N", help="payment rows (e.g. 1000000, 1e9, 10M)")
    raw.add_argument("--out", required=True, metavar="DIR", help="writes DIR/payments/part-*.parquet (and DIR/flpop/)")
    raw.add_argument("--seed", type=int, default=7, help="the same seed gives the same rows (default 7)")
    raw.add_argument("--data", default=None, metavar="DIR",
                     help="quarterly data directory whose districts, business types and sales the rows follow "
                          "(default: the simulation with the same --seed, as `generate --seed`)")
    raw.add_argument("--flpop-rows", type=_rows, default=0, metavar="N", help="floating-population count rows too (default 0)")
    raw.add_argument("--chunk-rows", type=_rows, default=None, metavar="N", help="rows per file (default 10M)")
    raw.add_argument("--processes", type=_positive_int, default=1, metavar="P", help="writer processes (default 1; same output)")
    raw.add_argument("--quiet", action="store_true", help="no progress lines on stderr")
    raw.set_defaults(func=run_generate_raw)

    imp = com_sub.add_parser("import", help="read Seoul's published quarterly CSVs (CP949/UTF-8, Korean or API headers) into the layout")
    imp.add_argument("files", nargs="+", metavar="FILE.csv", help="sales, stores, flpop, resident, working, change, district files")
    imp.add_argument("--out", required=True, metavar="DIR", help="data directory to write")
    imp.add_argument("--encoding", default=None, help="file encoding (default: detect UTF-8 BOM, UTF-8, CP949)")
    imp.add_argument("--city", default=None, help="place districts in this city model's dongs by their point (e.g. seoul)")
    imp.set_defaults(func=run_import)


def run_generate(args: argparse.Namespace) -> int:
    from citywall.analytics.commerce.generate import generate
    from citywall.city import load_city

    try:
        city = load_city(args.city)
        manifest = generate(args.out, seed=args.seed, quarters=args.quarters, end_quarter=args.end_quarter,
                            city=city, progress=_progress(args.quiet))
    except (ValueError, OSError) as exc:
        print(f"citywall commerce generate: {exc}", file=sys.stderr)
        return 2
    kinds = ", ".join(f"{k} {n}" for k, n in manifest["district_kinds"].items())
    print(f"SIMULATED commercial-district data (seed {manifest['seed']}) -> {args.out}")
    print(f"  {manifest['districts']} districts ({kinds}), {manifest['business_types']} business types, "
          f"quarters {manifest['quarters'][0]}..{manifest['quarters'][-1]} ({len(manifest['quarters'])})")
    print("  rows: " + ", ".join(f"{k} {v:,}" for k, v in manifest["rows"].items()))
    return 0


def run_generate_raw(args: argparse.Namespace) -> int:
    import time

    from citywall.analytics.commerce.rawgen import DEFAULT_CHUNK_ROWS, generate_raw

    t0 = time.perf_counter()
    try:
        manifest = generate_raw(args.out, args.rows, seed=args.seed, data_dir=args.data, flpop_rows=args.flpop_rows,
                                chunk_rows=args.chunk_rows or DEFAULT_CHUNK_ROWS, processes=args.processes,
                                progress=_progress(args.quiet))
    except (ValueError, OSError) as exc:
        print(f"citywall commerce generate-raw: {exc}", file=sys.stderr)
        return 2
    rate = (manifest["payments_rows"] + manifest["flpop_rows"]) / manifest["elapsed_s"] if manifest["elapsed_s"] else 0.0
    print(f"SIMULATED raw records (seed {manifest['seed']}, following {manifest['model']}) -> {args.out}")
    print(f"  payments {manifest['payments_rows']:,} rows in {len(manifest['files'].get('payments', []))} files, "
          f"flpop {manifest['flpop_rows']:,} rows; {time.perf_counter() - t0:.1f} s in all, of which writing the rows "
          f"{manifest['elapsed_s']:.1f} s ({rate / 1e6:.2f} M rows/s; the rest builds the quarterly model they follow)")
    return 0


def run_import(args: argparse.Namespace) -> int:
    from citywall.analytics.commerce.readers import import_files
    from citywall.analytics.commerce.schema import CommerceDataError

    try:
        city = None
        if args.city:
            from citywall.city import load_city

            city = load_city(args.city)
        manifest = import_files(args.files, args.out, encoding=args.encoding, city=city)
    except (CommerceDataError, ValueError, OSError) as exc:
        print(f"citywall commerce import: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(manifest, ensure_ascii=False, indent=2))
    return 0


# ---------------------------------------------------------------- analysis
def add_analysis_commands(com_sub: Any) -> None:
    """aggregate, build, report: the indicators (their handlers follow this function)."""
    def engine_options(p: Any) -> None:
        p.add_argument("--engine", choices=("duckdb", "spark"), default="duckdb", help="duckdb (embedded, default) or spark")
        p.add_argument("--memory-limit", default=None, metavar="SIZE", help="DuckDB memory cap, e.g. 2GB (spills beyond it)")
        p.add_argument("--temp-dir", default=None, metavar="DIR", help="DuckDB spill directory")
        p.add_argument("--threads", type=_positive_int, default=None, help="DuckDB threads (default: all cores)")
        p.add_argument("--spark-master", default="local[2]", metavar="URL", help="local[N] or spark://host:7077 (default local[2])")
        p.add_argument("--spark-driver-memory", default="2g", metavar="SIZE", help="Spark driver memory (default 2g)")
        p.add_argument("--quiet", action="store_true", help="no progress lines on stderr")

    agg = com_sub.add_parser("aggregate", help="raw payment rows -> the quarterly sales table (out of core, memory capped)")
    agg.add_argument("--raw", required=True, metavar="DIR", help="raw directory (DIR/payments/part-*.parquet)")
    agg.add_argument("--out", required=True, metavar="DIR", help="writes DIR/sales/stdr_yyqu_cd=Q/part-0.parquet")
    agg.add_argument("--batch-rows", type=_rows, default=None, metavar="N",
                     help="DuckDB reads about N rows at a time, adding the batches up at the end (default 100M; spill ~10 GB per 100M rows at 2GB)")
    engine_options(agg)
    agg.set_defaults(func=run_aggregate)

    bld = com_sub.add_parser("build", help="compute the indicators of a data directory into Parquet (docs/commerce.md)")
    bld.add_argument("--data", required=True, metavar="DIR", help="data directory (generate / import output)")
    bld.add_argument("--out", required=True, metavar="DIR", help="writes indicators, district_indicators, trends .parquet")
    engine_options(bld)
    bld.set_defaults(func=run_build)

    rep = com_sub.add_parser("report", help="print a district's indicators")
    rep.add_argument("--data", metavar="DIR", help="the quarterly data directory (generate / import output; indicators "
                                                 "computed on DuckDB), or the --out directory of `build` (read)")
    rep.add_argument("--built", metavar="DIR", help="or: the --out directory of `build` (read, not recomputed)")
    rep.add_argument("--district", required=True, action="append", metavar="CODE",
                     help="district code (trdar_cd); repeat for up to 4 districts one after another")
    rep.add_argument("--quarter", type=_quarter, default=None, metavar="YYYYQ", help="quarter (default: the latest)")
    rep.add_argument("--top", type=_positive_int, default=10, help="business types listed (default 10)")
    rep.set_defaults(func=run_report)


def _engine_options(args: argparse.Namespace) -> Any:
    from citywall.analytics.commerce.engines import EngineOptions

    return EngineOptions(args.engine, memory_limit=args.memory_limit, temp_directory=args.temp_dir, threads=args.threads,
                         spark_master=args.spark_master, spark_driver_memory=args.spark_driver_memory, progress=not args.quiet)


def run_aggregate(args: argparse.Namespace) -> int:
    from pathlib import Path

    import duckdb

    from citywall.analytics.commerce import aggregate, engines

    say = _progress(args.quiet)
    try:
        with engines.session(_engine_options(args)) as con:
            table, res = aggregate.aggregate(con, Path(args.raw), Path(args.out), progress=say,
                                             batch_rows=args.batch_rows or aggregate.DEFAULT_BATCH_ROWS)
    except (ValueError, OSError, duckdb.Error) as exc:  # an engine error is the data's, said plainly
        print(f"citywall commerce aggregate: {exc}", file=sys.stderr)
        return 2
    sim = bool(table.num_rows) and bool(table["simulated"][0].as_py())
    print(f"{'SIMULATED ' if sim else ''}payments {res.rows_in:,} -> {res.groups:,} sales rows on {res.engine} in {res.seconds:.1f} s "
          f"({res.rows_in / res.seconds if res.seconds else 0:,.0f} rows/s) -> {args.out}/sales")
    return 0


def run_build(args: argparse.Namespace) -> int:
    from pathlib import Path

    import duckdb

    from citywall.analytics.commerce import engines, indicators

    try:
        with engines.session(_engine_options(args)) as con:
            result = indicators.build(con, Path(args.data), Path(args.out), progress=_progress(args.quiet))
    except (ValueError, OSError, duckdb.Error) as exc:  # an engine error is the data's, said plainly
        print(f"citywall commerce build: {exc}", file=sys.stderr)
        return 2
    sim = any(bool(x) for x in result["district_indicators"]["simulated"].to_pylist())
    print(f"{'SIMULATED data: ' if sim else ''}" + ", ".join(f"{n} {t.num_rows:,} rows" for n, t in result.items()) + f" -> {args.out}")
    return 0


def run_report(args: argparse.Namespace) -> int:
    from pathlib import Path

    from citywall.analytics.commerce import report
    from citywall.analytics.commerce.indicators import MAX_COMPARE

    if not args.data and not args.built:
        print("citywall commerce report: give --data DIR or --built DIR", file=sys.stderr)
        return 2
    if len(args.district) > MAX_COMPARE:
        print(f"citywall commerce report: at most {MAX_COMPARE} districts, got {len(args.district)}", file=sys.stderr)
        return 2
    data, built = (Path(args.data) if args.data else None), (Path(args.built) if args.built else None)
    if data is not None and built is None and (data / "indicators.parquet").exists() and not (data / "districts.parquet").exists():
        built, data = data, None  # `--data` given the OUT of `build`: read it rather than fail on a missing districts table
    try:
        tables = report.load(data, built)
        texts = [report.district_report(None, d, args.quarter, tables=tables, top=args.top) for d in args.district]
        if len(args.district) > 1:
            texts.append(report.comparison(tables, args.district, args.quarter))
    except (ValueError, OSError) as exc:
        print(f"citywall commerce report: {exc}", file=sys.stderr)
        return 2
    print("\n\n".join(texts))
    return 0

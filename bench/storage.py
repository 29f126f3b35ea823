"""Benchmark 7c: ingest through the whole pipeline into PostgreSQL, against the same into DuckDB.

The same run as 1a (bench/ingest.py: an S-DoT-scale registry, numpy batches of `--batch` rows with
`--in-flight` outstanding, one live subscriber), once on a DuckDB file and once on a fresh database
on the local PostgreSQL, with exactly the same rows. The ratio is PostgreSQL's rate over DuckDB's.
A third line is PostgreSQL's own floor for those rows: the same binary COPY the store uses, one
transaction per batch, with nothing else (no validation, no live state, no batch rows, no ids).

    .venv/bin/python -m bench storage [--quick] [--rows N] [--postgres URL]

The PostgreSQL server is the one on the machine (its default settings: synchronous_commit on,
fsync on), reached over TCP on 127.0.0.1; the database is created for the run and dropped after.
"""

from __future__ import annotations

import argparse
import asyncio
import time
import uuid
from typing import Any

from bench import common
from bench.ingest import arrow_batches, pipeline_run

ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/test"


def create_database(admin_url: str) -> str:
    import psycopg

    name = f"citywall_bench_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(admin_url, autocommit=True) as con:
        con.execute(f"CREATE DATABASE {name}")
    return name


def drop_database(admin_url: str, name: str) -> None:
    import psycopg

    with psycopg.connect(admin_url, autocommit=True) as con:
        con.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def prepare(db: str) -> None:
    """A user, so the platform does not write a first-admin password file into the working directory."""
    from citywall.auth import Accounts
    from citywall.store import open_store

    store = open_store(db)
    try:
        Accounts(store, lambda: time.time_ns() // 1000).create_user("bench", "admin", "correct horse battery")
    finally:
        store.close()


def copy_floor(url: str, tables: list) -> dict[str, Any]:
    """The same rows as binary COPY into the store's observations table, one transaction per batch."""
    import psycopg

    from citywall.store.postgres import copy_observations

    rows = sum(t.num_rows for t in tables)
    with psycopg.connect(url, autocommit=True) as con:
        con.execute("TRUNCATE observations")
        t0 = time.perf_counter()
        for table in tables:
            with con.transaction(), con.cursor() as cur:
                with cur.copy("COPY observations (datastream_id, phenomenon_time, result, batch_id) FROM STDIN (FORMAT BINARY)") as cp:
                    cp.write(copy_observations(table))
        elapsed = time.perf_counter() - t0
        stored = con.execute("SELECT count(*) FROM observations").fetchone()[0]  # type: ignore[index]
    return {"rows": rows, "stored": int(stored), "seconds": round(elapsed, 3), "rows_per_s": round(rows / elapsed)}


def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(prog="bench storage")
    ap.add_argument("--quick", action="store_true", help="300,000 rows instead of 2 million")
    ap.add_argument("--rows", type=int, default=None)
    ap.add_argument("--batch", type=int, default=10_000)
    ap.add_argument("--in-flight", type=int, default=8)
    ap.add_argument("--time-cap", type=float, default=240.0, help="stop submitting after this many seconds (per store)")
    ap.add_argument("--postgres", default=ADMIN_URL, help="a database on the server to connect to while creating the run's own")
    args = ap.parse_args(argv)
    n_rows = args.rows or (300_000 if args.quick else 2_000_000)

    runs: dict[str, Any] = {}
    with common.tempdir("storage") as tmp:
        duck = str(tmp / "platform.duckdb")
        prepare(duck)
        with common.LoadMonitor() as load_duck:
            runs["duckdb"], rows = asyncio.run(pipeline_run(duck, n_rows, args.batch, args.in_flight, args.time_cap))  # type: ignore[arg-type]
        runs["duckdb"]["load"] = load_duck.result
        name = create_database(args.postgres)
        url = args.postgres.rsplit("/", 1)[0] + "/" + name
        try:
            prepare(url)
            with common.LoadMonitor() as load_pg:
                runs["postgresql"], pg_rows = asyncio.run(pipeline_run(url, n_rows, args.batch, args.in_flight, args.time_cap))  # type: ignore[arg-type]
            runs["postgresql"]["load"] = load_pg.result
            # The same datastreams and values; the times end "now", so they are shifted by the time between the runs.
            shift = pg_rows[1] - rows[1] if len(rows[1]) == len(pg_rows[1]) else None
            same_rows = bool(shift is not None and (rows[0] == pg_rows[0]).all() and (rows[2] == pg_rows[2]).all() and (shift == shift[0]).all())
            with common.LoadMonitor() as load_floor:
                floor = copy_floor(url, arrow_batches(*pg_rows, args.batch))
            floor["load"] = load_floor.result
        finally:
            drop_database(args.postgres, name)

    duck_r, pg_r = runs["duckdb"], runs["postgresql"]
    ratio = pg_r["rows_per_s"] / duck_r["rows_per_s"]
    result = {
        "config": {"rows": n_rows, "batch": args.batch, "in_flight": args.in_flight, "quick": args.quick, "postgres": args.postgres},
        "duckdb": duck_r, "postgresql": pg_r, "postgresql_copy_floor": floor,
        "ratio_postgresql_to_duckdb": round(ratio, 3), "ratio_postgresql_to_copy_floor": round(pg_r["rows_per_s"] / floor["rows_per_s"], 3),
        "checks": {"same_rows_shifted_in_time": same_rows,
                   "all_stored_duckdb": duck_r["stored"] == duck_r["rows_submitted"] == duck_r["accepted"],
                   "all_stored_postgresql": pg_r["stored"] == pg_r["rows_submitted"] == pg_r["accepted"]},
    }
    path = common.save("storage", result)
    print(common.table(
        f"7c. pipeline ingest by store, {pg_r['rows_submitted']:,} rows, batches of {args.batch:,}, {args.in_flight} in flight, "
        f"{pg_r['datastreams']:,} datastreams",
        ["store", "rows/s", "seconds", "group commits", "ack p99 ms", "ratio"],
        [
            ["DuckDB file (pipeline)", duck_r["rows_per_s"], duck_r["seconds"], duck_r["group_commits"], duck_r["ack_ms"]["p99"], 1.0],
            ["PostgreSQL 127.0.0.1 (pipeline)", pg_r["rows_per_s"], pg_r["seconds"], pg_r["group_commits"], pg_r["ack_ms"]["p99"], round(ratio, 3)],
            ["PostgreSQL binary COPY only, 1 txn/batch", floor["rows_per_s"], floor["seconds"], "", "", round(floor["rows_per_s"] / duck_r["rows_per_s"], 3)],
        ],
    ))
    print(f"   same rows (datastreams and values; times shifted by the gap between the runs): {same_rows}; all stored: DuckDB {result['checks']['all_stored_duckdb']}, PostgreSQL {result['checks']['all_stored_postgresql']}; "
          f"results: {path}")
    return result


if __name__ == "__main__":
    main()

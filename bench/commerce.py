"""Benchmark 9: raw card payments -> the quarterly sales table (commerce), DuckDB and Spark.

1. DuckDB through citywall (`aggregate.aggregate`: the Ibis expression, validity checks in the same scan,
   sorted Arrow result) against a hand-written DuckDB SQL query of the same aggregation, same files,
   same batches, same memory limit, same run: the two sides take turns batch by batch (the hand-written
   one in a second process), best of --repeat. Goal: ratio (baseline s / citywall s) >= 0.9.
2. The same aggregation through citywall on Spark local mode (local[2]) on a smaller row count.
3. Peak memory: VmHWM of each side's process (read from /proc/self/status; citywall's DuckDB runs in
   this process, the hand-written side in its own, Spark's JVM is a child whose VmHWM is read before
   it stops) and DuckDB's memory_limit.
4. From the measured rates: machine time for 10 billion rows a month on each engine.

The raw rows are SIMULATED: `citywall.analytics.commerce.rawgen` (`citywall commerce generate-raw`; rows follow the simulated
quarterly sales), or with --fast-gen a numpy generator (uniform; for 10^9 rows); 10^7 rows per file,
written once under --data and reused by later runs.

    .venv/bin/python -m bench commerce [--quick] [--rows 100000000] [--spark-rows 10000000] [--memory-limit 2GB]
"""

from __future__ import annotations

import argparse
import gc
import os
import shutil
import time
from pathlib import Path
from typing import Any

from bench import common

CHUNK = 10_000_000
N_DISTRICTS, N_TYPES = 1650, 60
MONTHLY_ROWS = 10_000_000_000


def generate(out: Path, rows: int, seed: int = 7, fast: bool = False) -> Path:
    """SIMULATED raw payments under out/payments/ (skipped if already complete): `citywall.analytics.commerce.rawgen`
    (rows follow the simulated sales of `generate --seed`), or with `fast` a plain numpy generator
    (uniform over a year, 1,650 districts, 60 types; ~7M rows/s, for 10^9 rows)."""
    import json

    done = out / "manifest.json"
    if done.exists():
        m = json.loads(done.read_text())
        if m.get("rows", m.get("payments_rows")) == rows and m.get("fast", False) == fast:
            return out
    shutil.rmtree(out, ignore_errors=True)
    if not fast:
        from citywall.analytics.commerce.rawgen import generate_raw

        generate_raw(out, rows, seed=seed, chunk_rows=CHUNK, processes=2, progress=lambda m: print(f"   {m}", flush=True))
        m = json.loads(done.read_text())
        m["rows"], m["fast"] = rows, False
        done.write_text(json.dumps(m))
        return out
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    (out / "payments").mkdir(parents=True)
    districts = pa.array([f"{3110000 + i}" for i in range(N_DISTRICTS)])
    types = pa.array([f"CS{100001 + i}" for i in range(N_TYPES)])
    sexes = pa.array(["M", "F"])
    start = np.datetime64("2024-01-01T00:00:00", "us").astype(np.int64) - 9 * 3600 * 1_000_000  # 00:00 KST
    year_us = 366 * 86400 * 1_000_000
    t0 = time.perf_counter()
    for k, lo in enumerate(range(0, rows, CHUNK)):
        n = min(CHUNK, rows - lo)
        rng = np.random.default_rng([seed, k])
        ts = np.sort(start + rng.integers(0, year_us, n))  # files arrive in time order, as an export would
        table = pa.table({
            "paid_at": pa.array(ts, pa.timestamp("us", tz="Asia/Seoul")),
            "district_code": pa.DictionaryArray.from_arrays(pa.array(rng.integers(0, N_DISTRICTS, n, dtype=np.int32)), districts),
            "business_type_code": pa.DictionaryArray.from_arrays(pa.array(rng.integers(0, N_TYPES, n, dtype=np.int32)), types),
            "amount_krw": rng.integers(1_000, 200_000, n, dtype=np.int64),
            "customer_sex": pa.DictionaryArray.from_arrays(pa.array(rng.integers(0, 2, n, dtype=np.int8)), sexes),
            "customer_age_band": (rng.integers(1, 7, n, dtype=np.int8) * 10).astype(np.int8),
        })
        pq.write_table(table, out / "payments" / f"part-{k:05d}.parquet", row_group_size=2_000_000)
        print(f"   generated {lo + n:,} / {rows:,} rows ({time.perf_counter() - t0:.0f} s)", flush=True)
    done.write_text(json.dumps({"generator": "bench.commerce.generate(fast)", "seed": seed, "rows": rows, "fast": True, "simulated": True}))
    return out


def baseline_sql(files: list[Path]) -> str:
    """The same aggregation, written by hand in DuckDB SQL as a competent user would: the Korean
    wall-clock time, weekday and hour derived once per row in a subquery, then filtered sums (no
    validity checks, no sort)."""
    days = ["mon", "tues", "wed", "thur", "fri", "sat", "sun"]
    parts = ["sum(amount_krw) AS thsmon_selng_amt", "count(*) AS thsmon_selng_co"]

    def split(name: str, cond: str) -> None:
        parts.append(f"coalesce(sum(amount_krw) FILTER (WHERE {cond}), 0) AS {name}_selng_amt")
        parts.append(f"count(*) FILTER (WHERE {cond}) AS {name}_selng_co")

    split("mdwk", "dow <= 5")
    split("wkend", "dow >= 6")
    for i, d in enumerate(days):
        split(d, f"dow = {i + 1}")
    for a, b in ((0, 6), (6, 11), (11, 14), (14, 17), (17, 21), (21, 24)):
        split(f"tmzon_{a:02d}_{b:02d}", f"h >= {a} AND h < {b}")
    split("ml", "customer_sex = 'M'")
    split("fml", "customer_sex = 'F'")
    for band in (10, 20, 30, 40, 50):
        split(f"agrde_{band}", f"customer_age_band = {band}")
    split("agrde_60_above", "customer_age_band = 60")
    file_list = ", ".join("'" + str(f).replace("'", "''") + "'" for f in files)  # quoted, as SQL string literals
    local = ("SELECT *, isodow(l) AS dow, hour(l) AS h, year(l) * 10 + quarter(l) AS q FROM "
             f"(SELECT *, CAST(paid_at AS TIMESTAMP) AS l FROM read_parquet([{file_list}]))")  # session time zone Asia/Seoul
    return (f"SELECT q AS stdr_yyqu_cd, district_code AS trdar_cd, business_type_code AS svc_induty_cd, "
            f"{', '.join(parts)} FROM ({local}) GROUP BY ALL")


def baseline_batches(files: list[Path], batch_rows: int, memory_limit: str, spill: Path, threads: int, conn: Any) -> None:
    """The hand-written side, in its own process (so that its peak memory is its own) and one batch
    at a time on request (so that it runs interleaved with citywall's batches and both meet the same
    machine): baseline_sql over the same batches of files as citywall's, each batch's groups appended
    to a table by hand and added up at the end by a hand-written SQL sum (one query when there is one
    batch; no folding, which citywall's side does not do either below 11 batches). Requests on `conn`:
    "batch" runs the next batch and answers the seconds it took (the first includes connecting); then
    a path: the final sum, answered with (seconds, VmHWM) and written there (untimed) for the identity
    check."""
    import duckdb
    import pyarrow.parquet as pq

    from citywall.analytics.commerce import aggregate

    batches = aggregate.file_batches(files, batch_rows)
    keys = ", ".join(aggregate.KEYS)
    measures = aggregate.sales_columns()
    casts = ", ".join(f"CAST({m} AS BIGINT) AS {m}" for m in measures)
    sums = ", ".join(f"CAST(sum({m}) AS BIGINT) AS {m}" for m in measures)
    reset_hwm()
    bcon, result = None, None
    for i, batch in enumerate(batches):
        conn.recv()
        t0 = time.perf_counter()
        if bcon is None:
            bcon = duckdb.connect(config={"memory_limit": memory_limit, "temp_directory": str(spill), "threads": threads})
            bcon.execute("SET enable_progress_bar = false")  # citywall's shows none either when stdout is not a terminal
            bcon.execute("LOAD icu")  # the bundled time-zone extension, as citywall's connection has it
            bcon.execute("SET TimeZone = 'Asia/Seoul'")
        if len(batches) == 1:
            result = bcon.sql(baseline_sql(files)).to_arrow_table()
        else:
            sql = f"SELECT {keys}, {casts} FROM ({baseline_sql(batch)})"
            bcon.execute(f"CREATE TEMP TABLE parts AS {sql}" if i == 0 else f"INSERT INTO parts {sql}")
        conn.send(time.perf_counter() - t0)
    out = conn.recv()
    t0 = time.perf_counter()
    if result is None:
        result = bcon.sql(f"SELECT {keys}, {sums} FROM parts GROUP BY ALL").to_arrow_table()
    seconds = time.perf_counter() - t0
    bcon.close()
    pq.write_table(result, out)
    conn.send((seconds, vmhwm()))


def warm(files: list[Path]) -> None:
    """Read the files once (untimed), so that whichever side reads them first is not the one to pay
    for the disk: both then read from the page cache."""
    for f in files:
        with open(f, "rb") as fh:
            while fh.read(1 << 24):
                pass


class SpillMonitor:
    """Peak size of a spill directory, polled every 0.5 s in a thread (DuckDB's temp files)."""

    def __init__(self, path: Path) -> None:
        import threading

        self.path, self.peak, self._stop = path, 0, threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(0.5):
            size = 0
            try:
                for f in self.path.rglob("*") if self.path.exists() else []:
                    size += f.stat().st_size
            except OSError:  # a file or the directory itself removed while listed (DuckDB deletes its spill)
                continue
            self.peak = max(self.peak, size)

    def __enter__(self) -> "SpillMonitor":
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def vmhwm() -> int:
    return common.proc_status(os.getpid()).get("VmHWM", 0)


def reset_hwm() -> None:
    """Reset this process's VmHWM (Linux: write 5 to /proc/self/clear_refs), so each phase's peak is its own."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        pass


def run_duckdb(raw: Path, rows: int, memory_limit: str, threads: int, repeat: int, tmp: Path, batch_rows: int) -> dict[str, Any]:
    import multiprocessing

    import pyarrow.parquet as pq

    from citywall.analytics.commerce import aggregate, engines

    files = aggregate.raw_files(raw)
    batches = aggregate.file_batches(files, batch_rows)
    ctx = multiprocessing.get_context("spawn")
    citywall_s, baseline_s, citywall_hwm, baseline_hwm, citywall_spill, baseline_spill = [], [], [], [], [], []
    checked = None
    for i in range(repeat):
        # The two sides run batch by batch in turn (citywall's in this process, the hand-written one
        # in a second process; see `turn` for the order), so that a machine that slows down or speeds up during the
        # run (measured: the same statement varies by 15-20% from one minute to the next here) weighs
        # on both alike. citywall's time is its whole `aggregate` call less the pauses for the other side.
        parent, child = ctx.Pipe()
        other = ctx.Process(target=baseline_batches, args=(files, batch_rows, memory_limit, tmp / "spill-baseline", threads, child))
        other.start()
        child.close()  # this process's copy: a failed child is then an EOFError here, not a wait forever
        their: list[float] = []
        paused, since = 0.0, time.perf_counter()

        def theirs() -> None:
            parent.send("batch")
            their.append(parent.recv())

        def turn(message: str) -> None:
            # After citywall's batch k: the hand-written batch k unless it already ran; then, for an odd
            # k + 1, the hand-written batch k + 1 before citywall's, so that each side goes first in
            # every other pair of batches (whichever comes second meets a machine that the first warmed).
            nonlocal paused, since
            if not message.startswith("batch "):  # aggregate's progress line after each batch
                print(f"     {message}", flush=True)
                return
            t = time.perf_counter()
            k = int(message.split()[1].split("/")[0])  # "batch K/N: ..."
            if len(their) < k:
                theirs()
            print(f"     batch {k}/{len(batches)}: citywall {t - since:.1f} s, hand-written {their[k - 1]:.1f} s", flush=True)
            if k < len(batches):
                warm(batches[k])
                if k % 2 == 1:
                    theirs()
            since = time.perf_counter()
            paused += since - t

        warm(batches[0])
        one_first = len(batches) == 1 and i % 2 == 1  # one query a side: the hand-written one first in every other run
        with SpillMonitor(tmp / "spill") as spill, SpillMonitor(tmp / "spill-baseline") as bspill:
            if one_first:
                theirs()
            reset_hwm()
            t0 = since = time.perf_counter()
            con = engines.connect(engines.EngineOptions("duckdb", memory_limit=memory_limit, temp_directory=str(tmp / "spill"), threads=threads))
            ours, res = aggregate.aggregate(con, raw, batch_rows=batch_rows, progress=turn)
            citywall_s.append(time.perf_counter() - t0 - paused)
            if len(batches) > 1:
                print(f"     after the batches: citywall {time.perf_counter() - since:.1f} s (sum, checks, Arrow result)", flush=True)
            con.disconnect()
            citywall_hwm.append(vmhwm())
            if len(batches) == 1 and not one_first:  # no batch lines: the one query, after citywall's
                theirs()
            parent.send(str(tmp / "baseline.parquet"))
            final_s, hwm = parent.recv()
            if len(batches) > 1:
                print(f"     after the batches: hand-written {final_s:.1f} s (sum, Arrow result)", flush=True)
            other.join()
        baseline_s.append(sum(their) + final_s)
        citywall_spill.append(spill.peak)
        baseline_spill.append(bspill.peak)
        baseline_hwm.append(hwm)
        if checked is None:  # the two agree, to the last won
            ours_sorted = ours.drop_columns(["simulated"]).sort_by([(k, "ascending") for k in aggregate.KEYS])
            b = pq.read_table(tmp / "baseline.parquet").sort_by([(k, "ascending") for k in aggregate.KEYS]).select(ours_sorted.column_names)
            checked = ours_sorted.num_rows == b.num_rows and all(
                ours_sorted[c].cast(b[c].type).equals(b[c]) if c not in ("trdar_cd", "svc_induty_cd")
                else ours_sorted[c].equals(b[c].cast(ours_sorted[c].type)) for c in ours_sorted.column_names)
            del ours_sorted, b
            assert res.rows_in == rows, (res.rows_in, rows)
        print(f"   duckdb run {i + 1}/{repeat}: citywall {citywall_s[-1]:.1f} s (VmHWM {common.mib(citywall_hwm[-1])} MiB, "
              f"spill {common.mib(citywall_spill[-1])} MiB), hand-written SQL {baseline_s[-1]:.1f} s "
              f"(VmHWM {common.mib(baseline_hwm[-1])} MiB, spill {common.mib(baseline_spill[-1])} MiB)", flush=True)
        del ours  # each run's peak is its own (results of ~10^6 groups x 50 columns are not small)
        gc.collect()
    c, b = min(citywall_s), min(baseline_s)
    return {
        "rows": rows, "memory_limit": memory_limit, "threads": threads, "files": len(files), "batch_rows": batch_rows,
        "batches": len(batches), "interleaved": True,
        "citywall": {"seconds": [round(x, 2) for x in citywall_s], "best_s": round(c, 2), "rows_per_s": int(rows / c),
                     "vmhwm_mib": common.mib(max(citywall_hwm)), "peak_spill_mib": common.mib(max(citywall_spill))},
        "baseline_sql": {"seconds": [round(x, 2) for x in baseline_s], "best_s": round(b, 2), "rows_per_s": int(rows / b),
                         "vmhwm_mib": common.mib(max(baseline_hwm)), "peak_spill_mib": common.mib(max(baseline_spill))},
        "ratio": round(b / c, 3), "results_identical": bool(checked),
    }


def run_spark(raw: Path, rows: int, master: str, repeat: int = 2) -> dict[str, Any]:
    from citywall.analytics.commerce import aggregate, engines

    opts = engines.EngineOptions("spark", spark_master=master, spark_driver_memory="3g")
    t0 = time.perf_counter()
    con = engines.connect(opts)
    startup = time.perf_counter() - t0
    spark = con._session
    jvm_pid = int(spark.sparkContext._jvm.java.lang.ProcessHandle.current().pid())
    runs = []
    for _ in range(repeat):  # the first run includes JIT warm-up; every run is reported
        t0 = time.perf_counter()
        _, res = aggregate.aggregate(con, raw)
        runs.append(time.perf_counter() - t0)
        assert res.rows_in == rows
        print(f"   spark ({master}) run: {runs[-1]:.1f} s", flush=True)
    jvm = common.proc_status(jvm_pid)
    spark.stop()
    best = min(runs)
    return {"rows": rows, "master": master, "startup_s": round(startup, 1), "seconds": [round(x, 2) for x in runs], "best_s": round(best, 2),
            "rows_per_s": int(rows / best), "jvm_vmhwm_mib": common.mib(jvm.get("VmHWM")), "python_vmhwm_mib": common.mib(vmhwm())}


def monthly_cost(rows_per_s: int, cores: int) -> dict[str, Any]:
    """Machine time for 10 billion rows a month at a measured rate, on `cores` cores."""
    s = MONTHLY_ROWS / rows_per_s
    return {"hours_wall": round(s / 3600, 2), "core_hours": round(s * cores / 3600, 1)}


def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(prog="python -m bench commerce")
    ap.add_argument("--quick", action="store_true", help="10^7 rows DuckDB, 10^6 Spark, one repeat")
    ap.add_argument("--rows", type=int, default=100_000_000)
    ap.add_argument("--spark-rows", type=int, default=10_000_000)
    ap.add_argument("--memory-limit", default="2GB", help="DuckDB memory_limit for both citywall and the hand-written query")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batch-rows", type=int, default=100_000_000, help="rows per DuckDB batch, both sides (aggregate.DEFAULT_BATCH_ROWS)")
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--spark-master", default="local[2]")
    ap.add_argument("--data", type=Path, default=Path("/tmp/citywall-bench-commerce"), help="raw data cache (reused)")
    ap.add_argument("--skip-spark", action="store_true")
    ap.add_argument("--skip-duckdb", action="store_true", help="Spark only (e.g. Spark at 10^9 rows on data already generated)")
    ap.add_argument("--spark-repeat", type=int, default=2, help="Spark runs (the first includes JIT warm-up)")
    ap.add_argument("--fast-gen", action="store_true", help="numpy generator instead of rawgen (for 10^9 rows)")
    a = ap.parse_args(argv)
    if a.quick:
        a.rows, a.spark_rows, a.repeat = 10_000_000, 1_000_000, 1
    result: dict[str, Any] = {"config": vars(a) | {"data": str(a.data)}, "monthly_10e9": {}}
    rows = []
    if not a.skip_duckdb:
        raw = generate(a.data / f"raw-{a.rows}{'-fast' if a.fast_gen else ''}", a.rows, fast=a.fast_gen)
        with common.tempdir("commerce") as tmp, common.LoadMonitor() as load_duck:
            duck = run_duckdb(raw, a.rows, a.memory_limit, a.threads, a.repeat, tmp, a.batch_rows)
        result |= {"duckdb": duck, "load_duckdb": load_duck.result}
        rows += [["DuckDB via citywall", f"{a.rows:,}", duck["citywall"]["best_s"], f"{duck['citywall']['rows_per_s']:,}", duck["citywall"]["vmhwm_mib"], a.memory_limit],
                 ["DuckDB hand-written SQL", f"{a.rows:,}", duck["baseline_sql"]["best_s"], f"{duck['baseline_sql']['rows_per_s']:,}", duck["baseline_sql"]["vmhwm_mib"], a.memory_limit]]
        result["monthly_10e9"]["duckdb"] = monthly_cost(duck["citywall"]["rows_per_s"], a.threads)
    if not a.skip_spark:
        sraw = generate(a.data / f"raw-{a.spark_rows}", a.spark_rows)
        with common.LoadMonitor() as load_spark:
            spark = run_spark(sraw, a.spark_rows, a.spark_master, a.spark_repeat)
        result["spark"], result["load_spark"] = spark, load_spark.result
        result["monthly_10e9"]["spark"] = monthly_cost(spark["rows_per_s"], 2)
        rows.append([f"Spark {a.spark_master} via citywall", f"{a.spark_rows:,}", spark["best_s"], f"{spark['rows_per_s']:,}",
                     f"JVM {spark['jvm_vmhwm_mib']}", "driver 3g"])
    print(common.table("9. commerce raw aggregation (SIMULATED payments)", ["run", "rows", "best s", "rows/s", "VmHWM MiB", "memory cap"], rows))
    if "duckdb" in result:
        print(f"   ratio hand-written / citywall on DuckDB: {duck['ratio']} (goal >= 0.9); identical results: {duck['results_identical']}")
    for eng, c in result["monthly_10e9"].items():
        print(f"   10^10 rows/month on {eng}: {c['hours_wall']} h on this 2-core machine = {c['core_hours']} core-hours")
    if "duckdb" in result:
        result["targets"] = {"ratio>=0.9": duck["ratio"] >= 0.9, "identical": duck["results_identical"]}
    common.save("commerce-spark" if a.skip_duckdb else "commerce", result)  # a Spark-only run keeps the full run's record
    return result


if __name__ == "__main__":
    main()

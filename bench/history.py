"""Benchmark 3b: the history query for one gu over 30 days at minute resolution.

The store: a DuckDB file created through the platform (so its registry is the S-DoT-scale
one), then filled with DuckDB SQL from range(): 1,100 sensors x 10 quantities x 720 values a
day (every 2 minutes, each sensor at its own offset) x --days days, in time order as a live
feed would have written it (about 55 million rows for 7 days), then rolled up by hour and
compacted by day as a server running through that week would have. Then, against that file:

  in-process  `platform.store.history(ids, start, end, "minute", "mean", "Asia/Seoul")`
  HTTP        GET /api/history?quantity=pm25&gu=<code>&resolution=minute&start=..&end=..
              on a real server opened on the file
  baseline    `SELECT count(*) FROM observations WHERE phenomenon_time >= start AND < end`
              on the same file (a plain scan of the same rows' time range); also reported:
              the same count restricted to the gu's datastreams (the query's scan and filter
              without the bucketing).

The window is the 30 days back from the newest data; queries rotate over the 25 gu.

    .venv/bin/python -m bench history [--quick] [--days N] [--queries N]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import time
from pathlib import Path
from typing import Any

import numpy as np

from bench import common

TARGET_MS = 200.0
QUANTITIES = ["pm10", "pm25", "no2", "temperature", "humidity", "wind_speed", "wind_direction", "illuminance", "noise", "globe_temperature"]
PER_DAY = 720  # every 2 minutes
MINUTE_US = 60_000_000


def build_store(db: Path, days: int) -> dict[str, Any]:
    """Registry through the platform; observations through DuckDB SQL."""
    import duckdb

    from citywall.platform import Platform, Settings

    async def register() -> None:
        p = Platform(Settings(db=str(db), feed="none", mqtt="off"))
        await p.start()
        try:
            await p.register(common.thing_structs(common.sdot_things()))
        finally:
            await p.stop()

    t0 = time.perf_counter()
    asyncio.run(register())
    reg_s = time.perf_counter() - t0

    con = duckdb.connect(str(db), config={"memory_limit": "4GB"})
    con.execute("SET TimeZone = 'UTC'")
    # The datastreams to fill: the 10 quantities of every sensor, numbered 0..n-1 in id order.
    con.execute(f"""CREATE TEMP TABLE fill AS
        SELECT (row_number() OVER (ORDER BY d.id) - 1)::BIGINT AS j, d.id, d.quantity, t.id AS thing
        FROM datastreams d JOIN things t ON t.id = d.thing_id
        WHERE d.quantity IN ({", ".join(f"'{q}'" for q in QUANTITIES)})""")
    n_ds = con.execute("SELECT count(*) FROM fill").fetchone()[0]
    lo, hi = common.value_bounds(QUANTITIES)
    qcase = " ".join(f"WHEN '{q}' THEN {i}" for i, q in enumerate(QUANTITIES))
    con.execute(f"""CREATE TEMP TABLE fillq AS SELECT j, id, thing, CASE quantity {qcase} END AS q FROM fill""")
    ids = np.array(con.execute("SELECT id FROM fillq ORDER BY j").fetchnumpy()["id"], dtype=np.int64)
    things = np.array(con.execute("SELECT thing FROM fillq ORDER BY j").fetchnumpy()["thing"], dtype=np.int64)
    qs = np.array(con.execute("SELECT q FROM fillq ORDER BY j").fetchnumpy()["q"], dtype=np.int64)
    # Plain lists the SQL can index: datastream id, sensor offset (s) and value band by j.
    id_list = "[" + ",".join(map(str, ids.tolist())) + "]"
    off_list = "[" + ",".join(str((int(t) * 7919) % 120) for t in things.tolist()) + "]"
    lo_list = "[" + ",".join(f"{lo[q]:.6g}" for q in qs.tolist()) + "]"
    span_list = "[" + ",".join(f"{(hi[q] - lo[q]) * 0.8:.6g}" for q in qs.tolist()) + "]"
    end_us = int(time.time() * 1e6) // MINUTE_US * MINUTE_US
    ticks = days * PER_DAY
    first_tick_us = end_us - ticks * 120_000_000
    rows = ticks * n_ds
    t1 = time.perf_counter()
    # One day per statement keeps memory flat; rows go in tick order (all sensors at tick k, then k+1).
    for day in range(days):
        lo_i, hi_i = day * PER_DAY * n_ds, (day + 1) * PER_DAY * n_ds
        con.execute(f"""
            INSERT INTO observations
            SELECT ({id_list})[(i % {n_ds}) + 1]::INTEGER,
                   make_timestamptz({first_tick_us} + (i // {n_ds}) * 120000000 + ({off_list})[(i % {n_ds}) + 1] * 1000000),
                   round(({lo_list})[(i % {n_ds}) + 1] + ({span_list})[(i % {n_ds}) + 1]
                         * (0.5 + 0.35 * sin((i // {n_ds}) * 2 * pi() / {PER_DAY}) + 0.15 * ((hash(i) % 1000) / 1000.0 - 0.5)), 1),
                   0
            FROM range({lo_i}, {hi_i}) r(i)""")
    fill_s = time.perf_counter() - t1
    t2 = time.perf_counter()
    con.execute("CHECKPOINT")
    checkpoint_s = time.perf_counter() - t2
    newest = con.execute("SELECT epoch_us(max(phenomenon_time)), count(*) FROM observations").fetchone()
    con.close()
    # In a process of its own, opened as the server opens its store, so its peak memory is the
    # server's while it compacts.
    out = db.with_suffix(".housekeeping.json")
    common.run_child(["bench.history", "--housekeep", str(db), str(int(newest[0]) + 1), str(out)], timeout=1800)
    housekeeping = json.loads(out.read_text())
    return {"rows": int(newest[1]), "expected_rows": rows, "datastreams_filled": int(n_ds), "days": days,
            "newest_us": int(newest[0]), "register_s": round(reg_s, 2), "fill_s": round(fill_s, 2),
            "fill_rows_per_s": round(rows / fill_s), "checkpoint_s": round(checkpoint_s, 2), **housekeeping,
            "file_mib": common.mib(db.stat().st_size)}


def run_housekeeping(db: Path, now_us: int) -> dict[str, Any]:
    """What a server running through that week would have done: hourly rollups, and the daily
    compaction that sorts each whole day (and hour of the current day) by datastream (EmbeddedStore.compact), timed."""
    from citywall.store.embedded import HOUR_US, EmbeddedStore

    store = EmbeddedStore(db)
    try:
        t0 = time.perf_counter()
        watermark = store.rollup(now_us - HOUR_US)
        rollup_s = time.perf_counter() - t0
        per_day = []
        while True:
            t1 = time.perf_counter()
            done = store.compact(watermark)
            if done is None:
                break
            per_day.append({"hours": (done["to_us"] - done["from_us"]) // HOUR_US, "rows": done["rows"], "s": round(time.perf_counter() - t1, 2)})
        store.con.execute("CHECKPOINT")
    finally:
        store.close()
    days = [d for d in per_day if d["hours"] == 24]
    hours = [d for d in per_day if d["hours"] == 1]
    full = [d["s"] for d in days if d["rows"] >= 0.9 * max(x["rows"] for x in days)] if days else []
    return {"rollup_s": round(rollup_s, 2), "compacted_days": len(days), "compacted_hours": len(hours), "compaction": per_day,
            "compaction_s_per_full_day": round(float(np.median(full)), 2) if full else None,
            "compaction_s_per_hour": round(float(np.median([d["s"] for d in hours])), 2) if hours else None}


def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(prog="bench history")
    ap.add_argument("--quick", action="store_true", help="1 day of data, 10 queries")
    ap.add_argument("--days", type=int, default=None, help="days of data in the store (default 7)")
    ap.add_argument("--queries", type=int, default=None, help="queries per path (default 50)")
    ap.add_argument("--quantity", default="pm25")
    ap.add_argument("--keep", type=Path, default=None, help="copy the built store here (to investigate or reuse)")
    ap.add_argument("--store", type=Path, default=None, help="reuse a store kept with --keep instead of building one")
    ap.add_argument("--housekeep", nargs=3, metavar=("DB", "NOW_US", "OUT"), help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.housekeep:
        db_path, now_us, out_path = args.housekeep
        done = run_housekeeping(Path(db_path), int(now_us))
        done["vmhwm_mib"] = common.mib(common.proc_status(os.getpid()).get("VmHWM"))
        Path(out_path).write_text(json.dumps(done))
        return done
    days = args.days or (1 if args.quick else 7)
    n_q = args.queries or (10 if args.quick else 50)

    with common.tempdir("history") as tmp:
        db = tmp / "citywall.duckdb"
        if args.store:
            import shutil

            shutil.copy(args.store, db)
            built = json.loads(args.store.with_suffix(".json").read_text())
        else:
            built = build_store(db, days)
            if args.keep:
                import shutil

                shutil.copy(db, args.keep)
                args.keep.with_suffix(".json").write_text(json.dumps(built))
        end_us = built["newest_us"] + 1
        end_us = (end_us // MINUTE_US + 1) * MINUTE_US
        start_us = end_us - 30 * 86400 * 1_000_000

        from citywall.city import load_city

        gus = list(load_city("seoul").districts)

        # In-process: the platform opened on the file, the store's history method.
        async def in_process() -> dict[str, Any]:
            from citywall.platform import Platform, Settings

            t0 = time.perf_counter()
            p = Platform(Settings(db=str(db), feed="none", mqtt="off"))
            await p.start()
            start_s = time.perf_counter() - t0
            try:
                tz = p.city.timezone
                lat, points, ids_n = [], [], []
                for k in range(n_q + 2):
                    ids = p.registry.select(quantity=args.quantity, gu=gus[k % len(gus)])
                    s = time.perf_counter()
                    out = p.store.history(ids, start_us, end_us, "minute", "mean", tz)
                    if k >= 2:  # two warm-up queries
                        lat.append((time.perf_counter() - s) * 1e3)
                        points.append(len(out["t"]))
                        ids_n.append(len(ids))
                cur = p.store.reader()
                base, base_ds = [], []
                for k in range(n_q + 2):
                    s = time.perf_counter()
                    cur.execute("SELECT count(*) FROM observations WHERE phenomenon_time >= make_timestamptz(?) AND phenomenon_time < make_timestamptz(?)",
                                [start_us, end_us]).fetchone()
                    if k >= 2:
                        base.append((time.perf_counter() - s) * 1e3)
                    ids = p.registry.select(quantity=args.quantity, gu=gus[k % len(gus)])
                    s = time.perf_counter()
                    cur.execute(f"SELECT count(*) FROM observations WHERE datastream_id IN ({','.join(map(str, ids))}) "
                                "AND phenomenon_time >= make_timestamptz(?) AND phenomenon_time < make_timestamptz(?)", [start_us, end_us]).fetchone()
                    if k >= 2:
                        base_ds.append((time.perf_counter() - s) * 1e3)
                scanned = cur.execute("SELECT count(*) FROM observations WHERE phenomenon_time >= make_timestamptz(?) AND phenomenon_time < make_timestamptz(?)",
                                      [start_us, end_us]).fetchone()[0]
            finally:
                await p.stop()
            return {"platform_start_s": round(start_s, 2), "history_ms": common.pct(lat), "points": int(np.median(points)),
                    "datastreams_per_gu": {"min": min(ids_n), "max": max(ids_n)},
                    "baseline_count_ms": common.pct(base), "baseline_count_gu_ms": common.pct(base_ds), "rows_in_range": int(scanned)}

        with common.LoadMonitor() as load_ip:
            ip = asyncio.run(in_process())

        # HTTP: a real server on the same file.
        server = common.Server(db, tmp / "server.log")
        server.start(timeout=300)
        try:
            with common.LoadMonitor() as load_http:
                http = asyncio.run(http_queries(server.port, gus, args.quantity, start_us, end_us, n_q))
        finally:
            mem = server.stop()

    ratio = ip["history_ms"]["p50"] / ip["baseline_count_ms"]["p50"]
    http_p = http["ms"]
    result = {
        "config": {"days": days, "queries": n_q, "quantity": args.quantity, "resolution": "minute", "window_days": 30, "quick": args.quick},
        "store": built, "in_process": ip, "http": http,
        "ratio_p50_to_count": round(ratio, 2),
        "ratio_http_p95_to_count_p95": round(http_p["p95"] / ip["baseline_count_ms"]["p95"], 2),
        "server_startup_s": round(server.started_s, 2),
        "server_vmhwm_mib": common.mib(mem.get("VmHWM")), "server_rss_end_mib": common.mib(mem.get("VmRSS")),
        "load": {"in_process": load_ip.result, "http": load_http.result},
        "targets": {"http_p95<=200ms": http_p["p95"] <= TARGET_MS, "in_process_p95<=200ms": ip["history_ms"]["p95"] <= TARGET_MS},
    }
    path = common.save("history", result)
    b, bd = ip["baseline_count_ms"], ip["baseline_count_gu_ms"]
    print(common.table(
        f"3b. history: {args.quantity}, one gu ({ip['datastreams_per_gu']['min']}-{ip['datastreams_per_gu']['max']} datastreams), 30 days, "
        f"minute resolution; store {built['rows']:,} rows ({days} days, {built['file_mib']} MiB); {n_q} queries over the 25 gu",
        ["path", "p50 ms", "p95 ms", "max ms", "points", "target", "met"],
        [
            ["GET /api/history (real server)", http_p["p50"], http_p["p95"], http_p["max"], http["points"], "<= 200 ms", result["targets"]["http_p95<=200ms"]],
            ["platform.store.history (in-process)", ip["history_ms"]["p50"], ip["history_ms"]["p95"], ip["history_ms"]["max"], ip["points"], "<= 200 ms", result["targets"]["in_process_p95<=200ms"]],
            ["baseline: SELECT count(*) of the time range", b["p50"], b["p95"], b["max"], "", "", ""],
            ["  (same count, gu's datastreams only)", bd["p50"], bd["p95"], bd["max"], "", "", ""],
        ],
    ))
    print(f"   ratio (in-process p50 / count p50) {result['ratio_p50_to_count']}; compacted by datastream: {built['compacted_days']} days "
          f"({built['compaction_s_per_full_day']} s per full day) and {built['compacted_hours']} hours ({built['compaction_s_per_hour']} s each), "
          f"VmHWM of the compacting process {built['vmhwm_mib']} MiB; "
          f"store built in {built['fill_s']} s "
          f"({built['fill_rows_per_s']:,} rows/s); server start on it {result['server_startup_s']} s, VmHWM {result['server_vmhwm_mib']} MiB; results: {path}")
    return result


async def http_queries(port: int, gus: list[str], quantity: str, start_us: int, end_us: int, n_q: int) -> dict[str, Any]:
    import msgspec

    from bench.httpclient import HttpConn

    c = await HttpConn("127.0.0.1", port).open()
    lat, points, sizes = [], [], []
    try:
        for k in range(n_q + 2):
            path = f"/api/history?quantity={quantity}&gu={gus[k % len(gus)]}&resolution=minute&start={start_us // 1000}&end={end_us // 1000}"
            s = time.perf_counter()
            status, body = await c.request("GET", path)
            ms = (time.perf_counter() - s) * 1e3
            if status != 200:
                raise RuntimeError(f"GET {path}: {status} {body[:300]!r}")
            if k >= 2:
                lat.append(ms)
                points.append(len(msgspec.json.decode(body)["t"]))
                sizes.append(len(body))
    finally:
        await c.close()
    return {"ms": common.pct(lat), "points": int(np.median(points)), "bytes": int(np.median(sizes))}


if __name__ == "__main__":
    main()

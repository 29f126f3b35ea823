"""Benchmark 7b: replaying a year of hourly data for Seoul's 25 district stations at --speed max.

8,760 hours x 25 stations x 6 pollutants = 1,314,000 values, generated (seeded, plausible values,
no blanks, so every value is stored) into two files in a temp dir:
  - a Seoul station file: CP949, Korean headers, 측정일시 as YYYYMMDDHH with hours 01..24,
    newest first as Seoul publishes them (219,000 rows of 6 pollutants);
  - a long-format Parquet file: time (timestamp), datastream (key), value (1,314,000 rows).
Each is replayed by `citywall.feeds.replay.Replay` (what `citywall replay FILE --speed max` runs:
read, parse, sort, register the stations, validate, store) into a fresh DuckDB store, timed from
opening the file to the last acknowledgement. Baseline, same process: the same 1,314,000 rows as
Arrow tables appended to the `observations` table of a fresh store of the same schema, one
transaction per 50,000 rows (the replay's batch size), nothing else.

    .venv/bin/python -m bench replay [--quick]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import numpy as np

from bench import common
from bench.ingest import arrow_batches
from bench.ingest import baseline as raw_append

HOURS = 8760
POLLUTANTS = ("no2", "o3", "co", "so2", "pm10", "pm25")  # the Seoul file's column order
SEOUL_HEADER = ["측정일시", "측정소명", "이산화질소농도(ppm)", "오존농도(ppm)", "일산화탄소농도(ppm)", "아황산가스농도(ppm)",
                "미세먼지농도(ug/m3)", "초미세먼지농도(ug/m3)"]
# Plausible hourly ranges and the decimals Seoul's files give.
RANGES = {"no2": (0.003, 0.08, 3), "o3": (0.001, 0.09, 3), "co": (0.1, 1.5, 1), "so2": (0.001, 0.008, 3), "pm10": (5, 150, 0), "pm25": (2, 90, 0)}
KST = timezone(timedelta(hours=9))
YEAR = 2023


def generate(tmp: Path, hours: int, seed: int = 2023) -> dict[str, Any]:
    """The two files, and the rows in the order a replay stores them (for the baseline)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from citywall.city import load_city

    city = load_city("seoul")
    gus = list(city.districts.values())
    rng = np.random.default_rng(seed)
    n = hours * len(gus)
    values = {}
    for q in POLLUTANTS:
        lo, hi, nd = RANGES[q]
        values[q] = np.round(lo + (hi - lo) * rng.random(n), nd)  # row r: hour r // 25, station r % 25
    # Seoul's 측정일시 for hour h (0-based from Jan 1 01:00 KST): the hour ending at h+1 of the day, 01..24.
    start = datetime(YEAR, 1, 1, 1, tzinfo=KST)
    stamps = []
    for h in range(hours):
        at = start + timedelta(hours=h)
        day, hh = (at - timedelta(days=1), 24) if at.hour == 0 else (at, at.hour)
        stamps.append(f"{day:%Y%m%d}{hh:02d}")

    # The station file, newest first (as published), in CP949.
    csv_path = tmp / f"서울시_대기질_{YEAR}.csv"
    with csv_path.open("w", encoding="cp949", newline="") as f:
        f.write(",".join(SEOUL_HEADER) + "\r\n")
        cols = [values[q] for q in POLLUTANTS]
        fmts = [f"{{:.{RANGES[q][2]}f}}" for q in POLLUTANTS]
        for h in range(hours - 1, -1, -1):
            for s, gu in enumerate(gus):
                r = h * len(gus) + s
                f.write(f"{stamps[h]},{gu.name_ko}," + ",".join(fm.format(c[r]) for fm, c in zip(fmts, cols)) + "\r\n")

    # The long Parquet file, hour by hour.
    t_hour = (int(start.timestamp()) + np.arange(hours, dtype=np.int64) * 3600) * 1_000_000
    keys = [f"air:{gu.code}:{q}" for gu in gus for q in POLLUTANTS]
    t = np.repeat(t_hour, len(keys))
    v = np.stack([values[q].reshape(hours, len(gus)) for q in POLLUTANTS], axis=2).reshape(-1)
    table = pa.table({"time": pa.array(t, pa.timestamp("us", tz="UTC")),
                      "datastream": pa.DictionaryArray.from_arrays(pa.array(np.tile(np.arange(len(keys), dtype=np.int32), hours)), pa.array(keys)).cast(pa.string()),
                      "value": pa.array(v)})
    pq_path = tmp / f"seoul_air_{YEAR}_long.parquet"
    pq.write_table(table, pq_path, row_group_size=200_000)
    return {"csv": csv_path, "parquet": pq_path, "keys": keys, "t": t, "v": v,
            "csv_mib": common.mib(csv_path.stat().st_size), "parquet_mib": common.mib(pq_path.stat().st_size)}


async def replay_run(db: Path, path: Path) -> dict[str, Any]:
    from citywall.feeds.replay import Replay, ReplayOptions
    from citywall.platform import Platform, Settings

    # As `citywall replay` opens the store: no feed, no MQTT, the writer only, any age accepted.
    platform = Platform(Settings(db=str(db), feed="none", mqtt="off", raw_retention_days=100 * 365.0))
    platform.bus.bind(asyncio.get_running_loop())
    platform.pipeline.start()
    try:
        cpu0 = os.times()
        summary = await Replay(ReplayOptions(path, speed=None)).run(platform)
        cpu1 = os.times()
        stored = platform.store.reader().execute("SELECT count(*) FROM observations").fetchone()[0]
        ids = dict(platform.store.reader().execute("SELECT key, id FROM datastreams").fetchall())
    finally:
        await asyncio.to_thread(platform.pipeline.stop)
        platform.store.close()
    cpu = (cpu1.user - cpu0.user) + (cpu1.system - cpu0.system)
    return {"values": summary.observations, "rows_read": summary.rows_read, "accepted": summary.accepted, "refused": summary.refused,
            "stored": int(stored), "seconds": round(summary.seconds, 3), "rows_per_s": round(summary.observations / summary.seconds),
            "cpu_cores_used": round(cpu / summary.seconds, 2), "encoding": summary.encoding, "format": summary.format, "ids": ids}


def main(argv: list[str] | None = None) -> dict[str, Any]:
    from citywall.feeds.replay.replay import BATCH_ROWS

    ap = argparse.ArgumentParser(prog="bench replay")
    ap.add_argument("--quick", action="store_true", help="a month (744 hours) instead of a year")
    ap.add_argument("--hours", type=int, default=None)
    args = ap.parse_args(argv)
    hours = args.hours or (744 if args.quick else HOURS)

    with common.tempdir("replay") as tmp:
        t_gen = time.perf_counter()
        files = generate(tmp, hours)
        gen_s = time.perf_counter() - t_gen
        with common.LoadMonitor() as load_csv:
            csv = asyncio.run(replay_run(tmp / "csv.duckdb", files["csv"]))
        with common.LoadMonitor() as load_pq:
            parquet = asyncio.run(replay_run(tmp / "parquet.duckdb", files["parquet"]))
        ids = parquet.pop("ids")
        csv.pop("ids")
        ds = np.array([ids[k] for k in files["keys"]], dtype=np.int64)[np.tile(np.arange(len(files["keys"])), hours)]
        with common.LoadMonitor() as load_base:
            # The ingest benchmark's baseline: the same rows as Arrow tables appended to the store's schema.
            base = raw_append(tmp / "baseline.duckdb", arrow_batches(ds, files["t"], files["v"], BATCH_ROWS))

    n = hours * 25 * 6
    result = {
        "config": {"hours": hours, "stations": 25, "pollutants": 6, "values": n, "quick": args.quick, "batch_rows": BATCH_ROWS,
                   "csv_mib": files["csv_mib"], "parquet_mib": files["parquet_mib"], "generate_s": round(gen_s, 1)},
        "seoul_station_csv": csv, "long_parquet": parquet, "baseline": base,
        "ratio_csv": round(csv["rows_per_s"] / base["rows_per_s"], 3),
        "ratio_parquet": round(parquet["rows_per_s"] / base["rows_per_s"], 3),
        "peak_rss_mib_bench_process": common.mib(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024),
        "load": {"csv": load_csv.result, "parquet": load_pq.result, "baseline": load_base.result},
        "checks": {"all_stored_csv": csv["stored"] == csv["accepted"] == n, "all_stored_parquet": parquet["stored"] == parquet["accepted"] == n},
    }
    path = common.save("replay", result)
    print(common.table(
        f"7b. replay at --speed max: {hours:,} hours x 25 stations x 6 pollutants = {n:,} values",
        ["path", "values/s", "seconds", "ratio", "all stored"],
        [
            [f"citywall replay, Seoul station CSV (CP949, {files['csv_mib']} MiB)", csv["rows_per_s"], csv["seconds"], f"{result['ratio_csv']:.3f}", result["checks"]["all_stored_csv"]],
            [f"citywall replay, long Parquet ({files['parquet_mib']} MiB)", parquet["rows_per_s"], parquet["seconds"], f"{result['ratio_parquet']:.3f}", result["checks"]["all_stored_parquet"]],
            [f"baseline: DuckDB Arrow append, 1 txn / {BATCH_ROWS:,} rows", base["rows_per_s"], base["seconds"], 1.0, ""],
        ],
    ))
    print(f"   CPU {csv['cpu_cores_used']} / {parquet['cpu_cores_used']} cores; other load {load_csv.result['other_cores']} / "
          f"{load_pq.result['other_cores']} / {load_base.result['other_cores']} cores; results: {path}")
    return result


if __name__ == "__main__":
    main()

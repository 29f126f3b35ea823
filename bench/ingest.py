"""Benchmark 1a: sustained in-process ingest through the whole pipeline.

A Platform on an on-disk DuckDB file, an S-DoT-scale registry, one live subscriber drained
by a task (so every commit is turned into a delta message), and numpy ObservationBatches of
`--batch` rows pushed through `platform.ingest` with `--in-flight` batches outstanding, so
the writer's group commit works. Baseline, same run: the same rows as Arrow tables appended
to the `observations` table of a fresh DuckDB file, one transaction per batch.

    .venv/bin/python -m bench ingest [--quick] [--rows N] [--batch N] [--in-flight N]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import time
from pathlib import Path
from typing import Any

import numpy as np

from bench import common

TARGET_ROWS_S = 100_000
TARGET_RATIO = 0.5


def arrow_batches(ds: np.ndarray, t: np.ndarray, v: np.ndarray, batch: int) -> list:
    import pyarrow as pa

    from citywall.store.embedded import OBSERVATION_SCHEMA

    out = []
    for k, s in enumerate(range(0, len(ds), batch)):
        e = s + batch
        out.append(pa.Table.from_arrays(
            [pa.array(ds[s:e].astype(np.int32)), pa.array(t[s:e], pa.timestamp("us", tz="UTC")), pa.array(v[s:e]),
             pa.array(np.full(len(ds[s:e]), k + 1, dtype=np.int64))],
            schema=OBSERVATION_SCHEMA,
        ))
    return out


def baseline(db: Path, tables: list) -> dict[str, Any]:
    """Raw DuckDB: the same rows, Arrow tables appended to the same schema, one transaction per batch."""
    import duckdb

    # Same connection settings as EmbeddedStore, same schema file.
    con = duckdb.connect(str(db), config={"memory_limit": "1GB", "checkpoint_threshold": "256MB"})
    con.execute("SET TimeZone = 'UTC'")
    from citywall.store import migrations

    migrations.migrate(con, "duckdb", where=str(db))
    rows = sum(tb.num_rows for tb in tables)
    t0 = time.perf_counter()
    for arrow_obs in tables:  # noqa: B007 - read by DuckDB's replacement scan
        con.execute("BEGIN")
        con.execute("INSERT INTO observations SELECT * FROM arrow_obs")
        con.execute("COMMIT")
    elapsed = time.perf_counter() - t0
    t1 = time.perf_counter()
    con.close()
    close_s = time.perf_counter() - t1
    return {"rows": rows, "seconds": round(elapsed, 3), "rows_per_s": round(rows / elapsed), "close_s": round(close_s, 3)}


async def pipeline_run(db: Path, n_rows: int, batch: int, in_flight: int, time_cap_s: float) -> tuple[dict[str, Any], tuple]:
    from citywall.ingest.batch import ObservationBatch
    from citywall.live.hub import RESYNC
    from citywall.platform import Platform, Settings

    platform = Platform(Settings(db=str(db), feed="none", mqtt="off"))
    await platform.start()
    try:
        t_reg = time.perf_counter()
        _, new_ds = await platform.register(common.thing_structs(common.sdot_things()))
        register_s = time.perf_counter() - t_reg
        ds_ids = np.array([d.id for d in new_ds], dtype=np.int64)
        ds, t, v = common.city_rows(ds_ids, [d.quantity for d in new_ds], n_rows)
        batches = [ObservationBatch(ds=ds[s:s + batch], t_us=t[s:s + batch], value=v[s:s + batch], source="bench")
                   for s in range(0, n_rows, batch)]

        # A live subscriber, drained as the WebSocket handler would (a resync costs a snapshot).
        sub = platform.hub.subscribe()
        pushed = {"deltas": 0, "bytes": 0, "resyncs": 0}

        async def drain() -> None:
            while True:
                msg = await sub.queue.get()
                if msg == RESYNC:
                    pushed["resyncs"] += 1
                    msg = platform.snapshots.get()
                else:
                    pushed["deltas"] += 1
                pushed["bytes"] += len(msg)

        drainer = asyncio.create_task(drain())
        next_batch = 0
        acked = accepted = rejected = 0
        ack_ms: list[float] = []
        deadline = time.monotonic() + time_cap_s

        async def worker() -> None:
            nonlocal next_batch, acked, accepted, rejected
            while next_batch < len(batches) and time.monotonic() < deadline:
                b = batches[next_batch]
                next_batch += 1
                s = time.perf_counter()
                res = await platform.ingest(b)
                ack_ms.append((time.perf_counter() - s) * 1e3)
                acked += len(b)
                accepted += res.accepted
                rejected += len(res.rejected)

        cpu0, w0 = os.times(), time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(in_flight)))
        elapsed = time.perf_counter() - w0
        cpu1 = os.times()
        await asyncio.sleep(0.2)  # let the last delta reach the subscriber
        drainer.cancel()
        platform.hub.unsubscribe(sub)

        # What a snapshot costs to build at this scale (the GET /api/snapshot cache miss).
        build_ms = []
        for _ in range(20):
            s = time.perf_counter()
            import msgspec

            body = msgspec.json.encode(platform.snapshots.document())
            build_ms.append((time.perf_counter() - s) * 1e3)
        stored = platform.store.reader().execute("SELECT count(*) FROM observations").fetchone()[0]
        from citywall import metrics

        samples = {s.name: s.value for m in metrics.COMMIT_SECONDS.collect() for s in m.samples}
        commits = samples["citywall_commit_seconds_sum"], samples["citywall_commit_seconds_count"]
    finally:
        t_stop = time.perf_counter()
        await platform.stop()
        stop_s = time.perf_counter() - t_stop
    cpu = (cpu1.user - cpu0.user) + (cpu1.system - cpu0.system)
    return ({
        "rows_submitted": acked, "accepted": accepted, "rejected": rejected, "stored": int(stored),
        "seconds": round(elapsed, 3), "rows_per_s": round(acked / elapsed),
        "batches": len(ack_ms), "batch_rows": batch, "in_flight": in_flight,
        "group_commits": int(commits[1]), "avg_rows_per_commit": round(acked / max(commits[1], 1)),
        "commit_seconds_total": round(commits[0], 3),
        "ack_ms": common.pct(ack_ms), "cpu_cores_used": round(cpu / elapsed, 2),
        "pushed": pushed, "register_s": round(register_s, 3), "datastreams": len(ds_ids),
        "snapshot_build_ms": common.pct(build_ms), "snapshot_bytes": len(body), "stop_s": round(stop_s, 3),
    }, (ds[:acked], t[:acked], v[:acked]))


def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(prog="bench ingest")
    ap.add_argument("--quick", action="store_true", help="1 million rows instead of 5 million")
    ap.add_argument("--rows", type=int, default=None)
    ap.add_argument("--batch", type=int, default=10_000)
    ap.add_argument("--in-flight", type=int, default=8)
    ap.add_argument("--time-cap", type=float, default=180.0, help="stop submitting after this many seconds")
    args = ap.parse_args(argv)
    n_rows = args.rows or (1_000_000 if args.quick else 5_000_000)

    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass

    with common.tempdir("ingest") as tmp:
        # The pipeline first, then the baseline with exactly the rows it was given.
        with common.LoadMonitor() as load_pipe:
            pipe, rows = asyncio.run(pipeline_run(tmp / "platform.duckdb", n_rows, args.batch, args.in_flight, args.time_cap))
        pipe["file_mib"] = common.mib((tmp / "platform.duckdb").stat().st_size)
        mem_pipeline = common.proc_status(os.getpid())
        tables = arrow_batches(*rows, args.batch)
        del rows
        with common.LoadMonitor() as load_base:
            base = baseline(tmp / "baseline.duckdb", tables)
        base["file_mib"] = common.mib((tmp / "baseline.duckdb").stat().st_size)

    ratio = pipe["rows_per_s"] / base["rows_per_s"]
    result = {
        "config": {"rows": n_rows, "batch": args.batch, "in_flight": args.in_flight, "quick": args.quick},
        "pipeline": pipe, "baseline": base, "ratio": round(ratio, 3),
        "peak_rss_mib_bench_process": common.mib(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024),
        "vmhwm_after_pipeline_mib": common.mib(mem_pipeline.get("VmHWM")),
        "load": {"pipeline": load_pipe.result, "baseline": load_base.result},
        "targets": {
            "rows_per_s>=100k": pipe["rows_per_s"] >= TARGET_ROWS_S,
            "ratio>=0.5": ratio >= TARGET_RATIO,
            "all_rows_stored": pipe["stored"] == pipe["rows_submitted"] == pipe["accepted"],
        },
    }
    path = common.save("ingest", result)
    print(common.table(
        f"1a. in-process ingest, {pipe['rows_submitted']:,} rows, batches of {args.batch:,}, {args.in_flight} in flight, "
        f"{pipe['datastreams']:,} datastreams, 1 live subscriber",
        ["path", "rows/s", "seconds", "ratio", "target", "met"],
        [
            ["citywall pipeline (validate, store, live, push)", pipe["rows_per_s"], pipe["seconds"], round(ratio, 3), ">=100,000/s, >=0.5", result["targets"]["rows_per_s>=100k"] and result["targets"]["ratio>=0.5"]],
            ["baseline: DuckDB Arrow append, 1 txn/batch", base["rows_per_s"], base["seconds"], 1.0, "", ""],
        ],
    ))
    print(f"   group commits {pipe['group_commits']:,} (avg {pipe['avg_rows_per_commit']:,} rows), ack p50/p99 "
          f"{pipe['ack_ms']['p50']}/{pipe['ack_ms']['p99']} ms, CPU {pipe['cpu_cores_used']} cores, deltas pushed {pipe['pushed']['deltas']:,} "
          f"(resyncs {pipe['pushed']['resyncs']}), snapshot build p50 {pipe['snapshot_build_ms']['p50']} ms, "
          f"other load {load_pipe.result['other_cores']} cores; results: {path}")
    return result


if __name__ == "__main__":
    main()

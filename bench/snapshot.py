"""Benchmark 3a: GET /api/snapshot latency with an S-DoT-scale registry while ingest runs.

A real server with the S-DoT-scale registry and a value for every datastream; a producer
process POSTs --rate observations/s (bodies of 100) for the whole run, so the snapshot keeps
changing and the cache is rebuilt as often as it allows. This process GETs /api/snapshot at
--snapshot-rate requests/s, open loop (a request is due at its time whether or not earlier
ones finished), measuring request write to last body byte; interleaved, GET /api/health (a
small API call on the same server under the same load). Baseline, same run, right after,
while the producer still ingests into citywall: GET of the same number of bytes, at the same
rate, from a bare uvicorn app (bench/floor_app.py), the floor of serving that response here.

    .venv/bin/python -m bench snapshot [--quick] [--rate N] [--snapshot-rate N] [--duration S]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from typing import Any

import numpy as np

from bench import common
from bench.httpclient import HttpConn

TARGET_P99_MS = 20.0


async def paced_gets(port: int, paths: list[str], rate: float, duration: float) -> dict[str, dict]:
    """GET each path `rate` times a second (interleaved, open loop); return latencies and sizes."""
    free: dict[str, list[HttpConn]] = {p: [] for p in paths}
    lat: dict[str, list[float]] = {p: [] for p in paths}
    size: dict[str, int] = {p: 0 for p in paths}
    errors = {p: 0 for p in paths}
    tasks: set[asyncio.Task] = set()

    async def one(path: str) -> None:
        c = free[path].pop() if free[path] else await HttpConn("127.0.0.1", port).open()
        s = time.perf_counter()
        try:
            status, body = await c.request("GET", path)
        except (ConnectionError, asyncio.IncompleteReadError):
            errors[path] += 1
            await c.close()
            return
        lat[path].append((time.perf_counter() - s) * 1e3)
        if status != 200:
            errors[path] += 1
        size[path] = len(body)
        free[path].append(c)

    step = 1.0 / (rate * len(paths))
    start = time.perf_counter()
    k = 0
    while k * step < duration:
        delay = start + k * step - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        t = asyncio.create_task(one(paths[k % len(paths)]))
        tasks.add(t)
        t.add_done_callback(tasks.discard)
        k += 1
    if tasks:
        await asyncio.wait(tasks, timeout=30)
    for conns in free.values():
        for c in conns:
            await c.close()
    return {p: {"ms": common.pct(lat[p]), "bytes": size[p], "errors": errors[p]} for p in paths}


async def prime(port: int, ids: list[int], quantities: list[str]) -> None:
    """One value for every datastream, so the snapshot is full size."""
    from datetime import datetime, timezone

    import msgspec

    lo, hi = common.value_bounds(quantities)
    rng = np.random.default_rng(3)
    v = common.plausible_values(rng, lo, hi)
    when = datetime.now(timezone.utc).replace(microsecond=0).isoformat()
    c = await HttpConn("127.0.0.1", port).open()
    for s in range(0, len(ids), 2000):
        body = msgspec.json.encode([{"datastream": i, "phenomenonTime": when, "result": round(x, 3)} for i, x in zip(ids[s:s + 2000], v[s:s + 2000].tolist())])
        status, resp = await c.request("POST", "/api/observations?source=prime", body)
        if status != 200:
            raise RuntimeError(f"priming failed: {status} {resp[:300]!r}")
    await c.close()


def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(prog="bench snapshot")
    common.add_run_options(ap, "snapshot", 10, 30)
    ap.add_argument("--rate", type=float, default=10_000, help="observations/s ingested meanwhile")
    ap.add_argument("--snapshot-rate", type=float, default=20.0, help="snapshot (and health) requests/s")
    ap.add_argument("--warmup", type=float, default=3.0)
    args = ap.parse_args(argv)
    duration = args.duration or (10.0 if args.quick else 30.0)

    with common.tempdir("snapshot") as tmp:
        server = common.Server(tmp / "citywall.duckdb", tmp / "server.log").start()
        floor = None
        try:
            streams = common.register_sdot(server, tmp)
            s = json.loads(streams.read_text())
            asyncio.run(prime(server.port, s["ids"], s["quantities"]))
            prod_out = tmp / "producer.json"
            floor_port = common.free_port()
            floor = common.start_child(["uvicorn", "bench.floor_app:app", "--port", str(floor_port), "--log-level", "warning"], tmp / "floor.log")
            common.wait_http(floor_port, "/", 60, floor)
            producer = common.start_child(["bench.producer", "paced", "--port", str(server.port), "--streams", str(streams), "--rate", str(args.rate),
                                           "--batch", "100", "--duration", str(args.warmup + 2 * duration + 3), "--out", str(prod_out)], tmp / "producer.log")
            time.sleep(args.warmup + 1.0)  # the producer process starts, then warms up
            cpu0, w0 = common.cpu_seconds(server.pid), time.monotonic()
            with common.LoadMonitor() as load, common.ServerProfile(server.pid, "snapshot", args.profile) as prof:
                gets = asyncio.run(paced_gets(server.port, ["/api/snapshot", "/api/health"], args.snapshot_rate, duration))
            server_cores = (common.cpu_seconds(server.pid) - cpu0) / (time.monotonic() - w0)
            size = gets["/api/snapshot"]["bytes"]
            with common.LoadMonitor() as load_floor:
                floor_gets = asyncio.run(paced_gets(floor_port, [f"/bytes/{size}"], args.snapshot_rate, duration))
            common.stop_proc(floor)
            common.finish_child(producer, timeout=args.warmup + duration + 120, name="producer", log=tmp / "producer.log")
            health = common.http_json("GET", f"{server.base}/api/health")
        finally:
            if floor is not None:
                common.stop_proc(floor)
            mem = server.stop()
        prod = json.loads(prod_out.read_text())
        prod.pop("send_log", None)

    snap, health_r = gets["/api/snapshot"], gets["/api/health"]
    base = next(iter(floor_gets.values()))
    p99 = snap["ms"]["p99"]
    result = {
        "config": {"ingest_rate": args.rate, "snapshot_rate": args.snapshot_rate, "duration_s": duration, "quick": args.quick},
        "snapshot": snap, "health_same_server": health_r, "baseline_floor_same_bytes": base,
        "ratio_p99": round(p99 / base["ms"]["p99"], 2) if p99 and base["ms"]["p99"] else None,
        "datastreams": health["datastreams"], "reporting": sum(f["reporting"] for f in health["freshness"].values()),
        "producer": {k: prod[k] for k in ("rows_per_s", "accepted", "rejected", "errors", "ack_ms")},
        "server_cores_used": round(server_cores, 2), "load": load.result, "load_floor": load_floor.result, **({"profile": prof.top} if prof.top else {}),
        "server_vmhwm_mib": common.mib(mem.get("VmHWM")), "server_rss_end_mib": common.mib(mem.get("VmRSS")),
        "targets": {"p99<=20ms": p99 is not None and p99 <= TARGET_P99_MS},
    }
    path = common.save("snapshot", result)
    print(common.table(
        f"3a. GET /api/snapshot ({snap['bytes'] / 1e3:,.0f} kB, {result['reporting']:,} datastreams reporting) at {args.snapshot_rate:g}/s "
        f"while ingesting {prod['rows_per_s']:,} obs/s",
        ["request", "p50 ms", "p95 ms", "p99 ms", "max ms", "n", "target", "met"],
        [
            ["GET /api/snapshot", snap["ms"]["p50"], snap["ms"]["p95"], p99, snap["ms"]["max"], snap["ms"]["n"], "p99 <= 20 ms", result["targets"]["p99<=20ms"]],
            ["GET /api/health (same server, same load)", health_r["ms"]["p50"], health_r["ms"]["p95"], health_r["ms"]["p99"], health_r["ms"]["max"], health_r["ms"]["n"], "", ""],
            [f"baseline: bare uvicorn GET of {size:,} bytes", base["ms"]["p50"], base["ms"]["p95"], base["ms"]["p99"], base["ms"]["max"], base["ms"]["n"], "", ""],
        ],
    ))
    print(f"   ratio p99 {result['ratio_p99']}, server {result['server_cores_used']} cores, VmHWM {result['server_vmhwm_mib']} MiB, "
          f"other load {load.result['other_cores']} cores; results: {path}")
    return result


if __name__ == "__main__":
    main()

"""Benchmark 1b: ingest over HTTP, JSON arrays POSTed to /api/observations of a real server.

A `citywall up --feed none` process with the S-DoT-scale registry; a producer process sends
pre-encoded bodies of --batch rows back-to-back over --conns keep-alive connections. Every
response comes after the commit, so rows/s is stored rows/s. Baseline, same run: the same
producer against a bare uvicorn ASGI app that only decodes the JSON (bench/floor_app.py),
the HTTP + JSON floor of this stack on this machine.

    .venv/bin/python -m bench http-ingest [--quick] [--rows N] [--batch N] [--conns N]
"""

from __future__ import annotations

import argparse
import json
import subprocess
from pathlib import Path
from typing import Any

from bench import common


def produce(port: int, streams: Path, args: argparse.Namespace, rows: int, duration: float, tmp: Path, name: str) -> dict[str, Any]:
    out = tmp / f"{name}.json"
    log = tmp / f"{name}.log"
    common.run_child(["bench.producer", "saturate", "--port", str(port), "--streams", str(streams), "--batch", str(args.batch),
                      "--rows", str(rows), "--conns", str(args.conns), "--duration", str(duration), "--out", str(out)],
                     timeout=duration + 180, log=log)
    return json.loads(out.read_text())


def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(prog="bench http-ingest")
    common.add_run_options(ap, "http_ingest", 15, 40)
    ap.add_argument("--rows", type=int, default=None, help="rows to send (default 2,000,000; quick 300,000)")
    ap.add_argument("--batch", type=int, default=1000)
    ap.add_argument("--conns", type=int, default=4)
    args = ap.parse_args(argv)
    rows = args.rows or (300_000 if args.quick else 2_000_000)
    duration = args.duration or (15.0 if args.quick else 40.0)

    with common.tempdir("http-ingest") as tmp:
        server = common.Server(tmp / "citywall.duckdb", tmp / "server.log").start()
        try:
            streams = common.register_sdot(server, tmp)
            cpu0 = common.cpu_seconds(server.pid)
            with common.LoadMonitor() as load_cw, common.ServerProfile(server.pid, "http_ingest", args.profile) as prof:
                cw = produce(server.port, streams, args, rows, duration, tmp, "citywall")
            cw["server_cpu_s"] = round(common.cpu_seconds(server.pid) - cpu0, 2)
            cw["server_cores_used"] = round(cw["server_cpu_s"] / cw["seconds"], 2)
            health = common.http_json("GET", f"{server.base}/api/health")
        finally:
            mem = server.stop()
        import duckdb

        con = duckdb.connect(str(server.db), read_only=True)
        stored = con.execute("SELECT count(*) FROM observations").fetchone()[0]
        con.close()

        port = common.free_port()
        log = open(tmp / "floor.log", "wb")  # noqa: SIM115
        floor_proc = subprocess.Popen([common.PY, "-m", "uvicorn", "bench.floor_app:app", "--port", str(port), "--log-level", "warning"],
                                      cwd=common.ROOT, stdout=log, stderr=subprocess.STDOUT)
        try:
            common.wait_http(port, "/", 60, floor_proc)
            cpu0 = common.cpu_seconds(floor_proc.pid)
            with common.LoadMonitor() as load_floor:
                floor = produce(port, streams, args, rows, duration, tmp, "floor")
            floor["server_cpu_s"] = round(common.cpu_seconds(floor_proc.pid) - cpu0, 2)
            floor["server_cores_used"] = round(floor["server_cpu_s"] / floor["seconds"], 2)
            floor_mem = common.proc_status(floor_proc.pid)
        finally:
            floor_proc.terminate()
            try:
                floor_proc.wait(30)
            except subprocess.TimeoutExpired:
                floor_proc.kill()
            log.close()

    ratio = cw["rows_per_s"] / floor["rows_per_s"]
    result = {
        "config": {"rows": rows, "batch": args.batch, "conns": args.conns, "duration_cap_s": duration, "quick": args.quick},
        "citywall": cw, "baseline_http_json_floor": floor, "ratio": round(ratio, 3), "stored": int(stored),
        "server_startup_s": round(server.started_s, 2),
        "server_vmhwm_mib": common.mib(mem.get("VmHWM")), "server_rss_end_mib": common.mib(mem.get("VmRSS")),
        "floor_vmhwm_mib": common.mib(floor_mem.get("VmHWM")),
        "datastreams": health["datastreams"],
        "load": {"citywall": load_cw.result, "floor": load_floor.result},
        **({"profile": prof.top} if prof.top else {}),
    }
    path = common.save("http_ingest", result)
    print(common.table(
        f"1b. HTTP ingest: JSON bodies of {args.batch:,} rows over {args.conns} connections, {health['datastreams']:,} datastreams",
        ["path", "rows/s", "rows", "req p50 ms", "req p99 ms", "server cores", "ratio"],
        [
            ["citywall POST /api/observations", cw["rows_per_s"], cw["rows"], cw["request_ms"]["p50"], cw["request_ms"]["p99"], cw["server_cores_used"], round(ratio, 3)],
            ["baseline: bare uvicorn + msgspec decode", floor["rows_per_s"], floor["rows"], floor["request_ms"]["p50"], floor["request_ms"]["p99"], floor["server_cores_used"], 1.0],
        ],
    ))
    print(f"   stored {stored:,} of {cw['accepted']:,} accepted ({cw['rejected']} rejected, {cw['errors']} errors); server VmHWM "
          f"{result['server_vmhwm_mib']} MiB, other load {load_cw.result['other_cores']} cores; results: {path}")
    return result


if __name__ == "__main__":
    main()

"""Run the citywall benchmarks.

    .venv/bin/python -m bench all [--quick]          every benchmark, then the summary
    .venv/bin/python -m bench ingest [--quick]       1a. in-process pipeline vs DuckDB Arrow append
    .venv/bin/python -m bench http-ingest [--quick]  1b. POST /api/observations vs bare uvicorn + msgspec
    .venv/bin/python -m bench latency [--quick]      2.  ingest-to-WebSocket-client latency vs WS echo
    .venv/bin/python -m bench snapshot [--quick]     3a. GET /api/snapshot under ingest vs GET /api/health
    .venv/bin/python -m bench history [--quick]      3b. 30-day minute history of one gu vs count(*)
    .venv/bin/python -m bench wall [--quick]         5.  the wall page in Chromium: first paint, lag at 1,000 obs/s, heap over 30 min
    .venv/bin/python -m bench rules [--quick]        6.  the alert rules on every reading vs the live-state update
    .venv/bin/python -m bench mqtt [--quick]         7a. MQTT ingest through Mosquitto, QoS 1, no loss, vs a bare subscriber
    .venv/bin/python -m bench replay [--quick]       7b. replay of a year of hourly data, 25 stations, at --speed max vs DuckDB append
    .venv/bin/python -m bench storage [--quick]      7c. pipeline ingest into PostgreSQL vs the same into DuckDB
    .venv/bin/python -m bench owlbus [--quick]       8.  Owl-bus route planner on Mandl vs best published; scaling to 1,250 nodes
    .venv/bin/python -m bench commerce [--quick]     9.  raw payments -> quarterly sales: DuckDB via citywall vs hand-written SQL; Spark local
    .venv/bin/python -m bench memory                 4.  server VmHWM from the results of the runs above
    .venv/bin/python -m bench summary                the targets table from bench/results/*.json

Each benchmark prints a table and writes bench/results/<name>.json. `all` runs each one in
its own process (so its memory and imports start clean), with a time limit, after waiting
(at most --wait-quiet seconds) for the rest of the machine to go quiet.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from typing import Any

from bench import common

BENCHES = {
    "ingest": "bench.ingest",
    "http-ingest": "bench.http_ingest",
    "latency": "bench.latency",
    "snapshot": "bench.snapshot",
    "history": "bench.history",
    "wall": "bench.wall",
    "rules": "bench.rules",
    "replay": "bench.replay",
    "mqtt": "bench.mqtt",
    "storage": "bench.storage",
    "owlbus": "bench.owlbus",
    "commerce": "bench.commerce",
}
RESULT_FILES = {"ingest": "ingest", "http-ingest": "http_ingest", "latency": "latency", "snapshot": "snapshot", "history": "history", "wall": "wall", "rules": "rules", "replay": "replay", "mqtt": "mqtt", "storage": "storage", "owlbus": "owlbus", "commerce": "commerce"}
TIME_LIMIT_S = {"ingest": 400, "http-ingest": 400, "latency": 300, "snapshot": 300, "history": 600, "wall": 2400, "rules": 300, "replay": 600, "mqtt": 600, "storage": 900, "owlbus": 2400, "commerce": 3600}
GIB = 1024.0


def load(name: str) -> dict[str, Any] | None:
    path = common.RESULTS / f"{RESULT_FILES.get(name, name)}.json"
    return json.loads(path.read_text()) if path.exists() else None


def memory_rows() -> list[list[Any]]:
    rows = []
    for name, key, what in (
        ("http-ingest", "server_vmhwm_mib", "server, HTTP ingest at full speed"),
        ("latency", "server_vmhwm_mib", "server, 10k obs/s + 50 WebSocket clients"),
        ("snapshot", "server_vmhwm_mib", "server, snapshots under 10k obs/s"),
        ("history", "server_vmhwm_mib", "server opened on the 55M-row store, history queries"),
        ("history", "store.vmhwm_mib", "store opened as the server does, rolling up and compacting the week"),
        ("ingest", "vmhwm_after_pipeline_mib", "in-process ingest (bench process incl. its test data)"),
    ):
        value: Any = load(name)
        for part in key.split("."):
            value = value.get(part) if isinstance(value, dict) else None
        if value is not None:
            rows.append([what, value, "< 1,024", value < GIB])
    return rows


def memory() -> dict[str, Any]:
    rows = memory_rows()
    print(common.table("4. peak memory (VmHWM from /proc/PID/status)", ["process", "VmHWM MiB", "target MiB", "met"], rows))
    return {"rows": rows}


def summary() -> list[list[Any]]:
    rows: list[list[Any]] = []
    if r := load("ingest"):
        p, b = r["pipeline"], r["baseline"]
        rows.append(["1a in-process ingest", f"{p['rows_per_s']:,} rows/s", f"{b['rows_per_s']:,} rows/s (DuckDB Arrow append)", r["ratio"],
                     ">= 100,000 rows/s and >= 0.5", r["targets"]["rows_per_s>=100k"] and r["targets"]["ratio>=0.5"]])
    if r := load("http-ingest"):
        rows.append(["1b HTTP ingest", f"{r['citywall']['rows_per_s']:,} rows/s", f"{r['baseline_http_json_floor']['rows_per_s']:,} rows/s (uvicorn+msgspec)",
                     r["ratio"], "(no target; 100k/s if read as 1)", r["citywall"]["rows_per_s"] >= 100_000])
    if r := load("latency"):
        lat = r["latency_ms"]
        rows.append(["2 ingest-to-client p99", f"{lat['p99']} ms (p50 {lat['p50']})", f"{r['baseline_echo']['rtt_ms']['p99']} ms (WS echo RTT p99)",
                     r["ratio_p99_to_echo_p99"], "p99 <= 100 ms", r["targets"]["p99<=100ms"]])
    if r := load("snapshot"):
        rows.append(["3a GET /api/snapshot p99", f"{r['snapshot']['ms']['p99']} ms", f"{r['baseline_floor_same_bytes']['ms']['p99']} ms (bare uvicorn, same bytes)",
                     r["ratio_p99"], "p99 <= 20 ms", r["targets"]["p99<=20ms"]])
    if r := load("history"):
        h, ip = r["http"]["ms"], r["in_process"]
        rows.append(["3b history, 1 gu, 30 d, minute", f"{h['p95']} ms p95 HTTP ({ip['history_ms']['p95']} in-process)",
                     f"{ip['baseline_count_ms']['p95']} ms (count(*) of range)", r["ratio_p50_to_count"], "<= 200 ms", r["targets"]["http_p95<=200ms"]])
    if r := load("wall"):
        lag, fp = r["lag_ms"], r["first_paint_ms"]["median"]
        rows.append(["5a wall first meaningful paint", f"{fp:.0f} ms", f"{r['data_floor_ms']['median']:.0f} ms (fetching the same data)", r["paint_ratio"],
                     "(no target)", None])
        rows.append([f"5b wall on-screen lag at {r['rate']:g} obs/s ({r['layout']} layout)", f"p99 {lag['p99']} ms (p50 {lag['p50']})", f"{r['bare_lag_ms']['p99']} ms (bare page p99)",
                     r["lag_ratio_p99"], "p99 < 250 ms", r["targets"]["lag_p99_under_250ms"]])
        m = r["memory"]
        rows.append([f"5c wall memory over {r['duration_s'] / 60:.0f} min", f"heap {m['first_mib']:.1f} -> {m['last_mib']:.1f} MiB, browser "
                     f"{m['browser_rss_first_mib']:.0f} -> {m['browser_rss_last_mib']:.0f} MiB", "", f"{m['growth']:+.1%} / {m['browser_rss_growth']:+.1%}",
                     "flat (within 10%)", r["targets"]["memory_flat"]])
    if r := load("mqtt"):
        cw, bare = r["citywall"], r["baseline_bare_subscriber"]
        rows.append([f"7a MQTT ingest, QoS 1, {r['config']['messages']:,} msgs", f"{cw['messages_per_s']:,} msg/s, loss {cw['loss']}",
                     f"{bare['messages_per_s']:,} msg/s (bare subscriber)", r["ratio"], ">= 20,000 msg/s, >= 0.5, no loss",
                     all(r["targets"].values())])
    if r := load("replay"):
        c, pq, b = r["seoul_station_csv"], r["long_parquet"], r["baseline"]
        rows.append([f"7b replay, {r['config']['values']:,} values (a year, 25 stations)", f"{c['rows_per_s']:,}/s CP949 CSV, {pq['rows_per_s']:,}/s Parquet",
                     f"{b['rows_per_s']:,} rows/s (DuckDB Arrow append)", f"{r['ratio_csv']} / {r['ratio_parquet']}", "(no target)",
                     r["checks"]["all_stored_csv"] and r["checks"]["all_stored_parquet"]])
    if r := load("storage"):
        pg, duck = r["postgresql"], r["duckdb"]
        rows.append([f"7c PostgreSQL ingest, {pg['rows_submitted']:,} rows", f"{pg['rows_per_s']:,} rows/s", f"{duck['rows_per_s']:,} rows/s (DuckDB, same pipeline)",
                     r["ratio_postgresql_to_duckdb"], "(no target)", r["checks"]["all_stored_postgresql"] and r["checks"]["all_stored_duckdb"]])
    if r := load("owlbus"):
        worst = max(r["mandl"], key=lambda x: x["ratio_to_best"])
        rows.append([f"8 Owl-bus plan, Mandl 4/6/7/8 routes, {r['config']['budget_s']:g} s", f"ATT/best <= {worst['ratio_to_best']} (worst run)",
                     "best published; seed set in the run", worst["ratio_to_best"], "<= 1.01, published sets exact",
                     r["targets"]["all_runs_within_1pct"] and r["targets"]["reference_exact"]])
    if r := load("commerce"):
        d = r["duckdb"]
        rows.append([f"9 commerce raw aggregation, {d['rows']:,} rows, DuckDB {d['memory_limit']}",
                     f"{d['citywall']['rows_per_s']:,} rows/s, VmHWM {d['citywall']['vmhwm_mib']} MiB"
                     + (f"; Spark {r['spark']['rows_per_s']:,} rows/s" if r.get("spark") else ""),
                     f"{d['baseline_sql']['rows_per_s']:,} rows/s (hand-written DuckDB SQL)", d["ratio"], ">= 0.9, identical",
                     r["targets"]["ratio>=0.9"] and r["targets"]["identical"]])
    mem = memory_rows()
    if mem:
        servers = [m[1] for m in mem if not m[0].startswith("in-process")] or [m[1] for m in mem]
        worst = max(servers)
        rows.append(["4 server peak memory", f"{worst} MiB (max over runs)", "", "", "< 1 GiB", worst < GIB])
    return rows


def print_summary() -> None:
    rows = summary()
    print(common.table("citywall benchmark summary (bench/results/*.json)", ["benchmark", "measured", "baseline", "ratio", "target", "met"], rows))
    memory()


def run_all(quick: bool, wait_quiet: float, only: list[str] | None) -> int:
    names = only or list(BENCHES)
    t0 = time.monotonic()
    failures = []
    for name in names:
        quiet = common.wait_quiet(wait_quiet) if wait_quiet > 0 else {}
        if quiet:
            print(f"\n[{name}] rest of the machine: {quiet['other_cores_at_start']} cores busy (waited {quiet['waited_s']} s)", flush=True)
        cmd = [sys.executable, "-m", BENCHES[name], *(["--quick"] if quick else [])]
        try:
            rc = subprocess.run(cmd, cwd=common.ROOT, timeout=TIME_LIMIT_S[name]).returncode
        except subprocess.TimeoutExpired:
            rc = "timeout"
        if rc != 0:
            failures.append((name, rc))
            print(f"[{name}] FAILED ({rc})", flush=True)
    print_summary()
    common.RESULTS.mkdir(parents=True, exist_ok=True)
    (common.RESULTS / "summary.json").write_text(json.dumps(
        {"when": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "quick": quick, "seconds": round(time.monotonic() - t0), "machine": common.machine(),
         "rows": summary(), "memory": memory_rows(), "failures": failures}, indent=2, default=str))
    print(f"\nall done in {time.monotonic() - t0:.0f} s" + (f"; failed: {failures}" if failures else ""))
    return 1 if failures else 0


def main() -> int:
    if len(sys.argv) > 1 and sys.argv[1] in BENCHES:
        import importlib

        importlib.import_module(BENCHES[sys.argv[1]]).main(sys.argv[2:])
        return 0
    ap = argparse.ArgumentParser(prog="python -m bench", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("command", choices=["all", "memory", "summary", *BENCHES])
    ap.add_argument("--quick", action="store_true", help="smaller, shorter runs (a smoke test, not the record)")
    ap.add_argument("--only", nargs="*", choices=list(BENCHES), help="with all: run only these")
    ap.add_argument("--wait-quiet", type=float, default=30.0, help="with all: wait up to this long for other load to stop before each benchmark")
    args = ap.parse_args()
    if args.command == "all":
        return run_all(args.quick, args.wait_quiet, args.only)
    if args.command == "memory":
        memory()
        return 0
    print_summary()
    return 0


if __name__ == "__main__":
    sys.exit(main())

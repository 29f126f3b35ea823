"""Benchmark 2: ingest-to-client latency over the live WebSocket.

A real server with the S-DoT-scale registry; --clients WebSocket clients in one process
(bench.wsclients); a producer in another (bench.producer paced) POSTing --rate observations/s
in bodies of --batch rows, each row's phenomenonTime being the moment its body was written.
Latency of a value = client receive time - that send time. The first --warmup seconds are
left out. Baseline, same run: WebSocket echo round trips on this machine (bench.echo).

    .venv/bin/python -m bench latency [--quick] [--rate N] [--batch N] [--clients N] [--duration S]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from typing import Any

import numpy as np

from bench import common

TARGET_P99_MS = 100.0


def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(prog="bench latency")
    common.add_run_options(ap, "latency", 15, 40)
    ap.add_argument("--rate", type=float, default=10_000)
    ap.add_argument("--batch", type=int, default=100)
    ap.add_argument("--clients", type=int, default=50)
    ap.add_argument("--warmup", type=float, default=3.0)
    args = ap.parse_args(argv)
    duration = args.duration or (15.0 if args.quick else 40.0)

    with common.tempdir("latency") as tmp:
        server = common.Server(tmp / "citywall.duckdb", tmp / "server.log").start()
        try:
            streams = common.register_sdot(server, tmp)
            ready = tmp / "clients.ready"
            clients_out = tmp / "clients.npz"
            clients = common.start_child(["bench.wsclients", "--url", f"ws://127.0.0.1:{server.port}/api/live", "--clients", str(args.clients),
                                          "--duration", str(args.warmup + duration + 3), "--ready", str(ready), "--out", str(clients_out)],
                                         tmp / "clients.log")
            deadline = time.monotonic() + 90
            while not ready.exists():
                if clients.poll() is not None or time.monotonic() > deadline:
                    common.stop_proc(clients)
                    raise RuntimeError(f"clients did not connect: {(tmp / 'clients.log').read_text()[-2000:]}")
                time.sleep(0.05)
            connected = common.http_json("GET", f"{server.base}/api/health")["live_clients"]
            cpu0, w0 = common.cpu_seconds(server.pid), time.monotonic()
            prod_out = tmp / "producer.json"
            with common.LoadMonitor() as load, common.ServerProfile(server.pid, "latency", args.profile) as prof:
                common.run_child(["bench.producer", "paced", "--port", str(server.port), "--streams", str(streams), "--rate", str(args.rate),
                                  "--batch", str(args.batch), "--duration", str(args.warmup + duration), "--out", str(prod_out)],
                                 timeout=args.warmup + duration + 120, log=tmp / "producer.log")
                server_cpu = (common.cpu_seconds(server.pid) - cpu0) / (time.monotonic() - w0)
            common.finish_child(clients, timeout=120, name="clients", log=tmp / "clients.log")
        finally:
            mem = server.stop()

        prod = json.loads(prod_out.read_text())
        send_log = np.array(prod.pop("send_log"), dtype=np.int64)
        first_ms = send_log[0, 0] / 1000
        lo_ms, hi_ms = first_ms + args.warmup * 1000, first_ms + (args.warmup + duration) * 1000
        in_window = (send_log[:, 0] // 1000 >= lo_ms) & (send_log[:, 0] // 1000 < hi_ms)
        sent = int(send_log[in_window, 1].sum())
        data = np.load(clients_out)
        meta = json.loads(clients_out.with_suffix(".json").read_text())
        lats, received, per_client_p99 = [], [], []
        for i in range(args.clients):
            t, lat = data[f"t{i}"], data[f"lat{i}"]
            m = (t >= lo_ms) & (t < hi_ms)
            lats.append(lat[m])
            received.append(int(m.sum()))
            if m.any():
                per_client_p99.append(float(np.percentile(lat[m], 99)))
        all_lat = np.concatenate(lats) if lats else np.empty(0)
        summary = common.pct(all_lat, (50, 95, 99, 99.9))

    # Baseline: echo round trips, same machine, messages the size of a typical delta.
    msgs = sum(c["messages"] for c in meta["clients"])
    delta_bytes = int(sum(c["bytes"] for c in meta["clients"]) / max(msgs, 1))
    port = common.free_port()
    with common.tempdir("echo") as tmp:
        echo = common.start_child(["bench.echo", "serve", "--port", str(port)], tmp / "echo.log")
        try:
            common.wait_tcp(port, 30, echo)
            from bench.echo import round_trips

            base = asyncio.run(round_trips(port, 300 if args.quick else 2000, max(delta_bytes, 64)))
        finally:
            common.stop_proc(echo)

    p99 = summary["p99"]
    result = {
        "config": {"rate": args.rate, "batch": args.batch, "clients": args.clients, "duration_s": duration, "warmup_s": args.warmup, "quick": args.quick},
        "latency_ms": summary, "per_client_p99_ms": {"min": round(min(per_client_p99), 2), "max": round(max(per_client_p99), 2)} if per_client_p99 else None,
        "clients_connected": connected, "sent_in_window": sent,
        "delivered_fraction": {"min": round(min(received) / sent, 4), "max": round(max(received) / sent, 4)} if sent else None,
        "resyncs": sum(c["resyncs"] for c in meta["clients"]), "client_errors": meta["errors"],
        "messages_per_client_per_s": round(msgs / args.clients / (args.warmup + duration + 3), 1), "avg_message_bytes": delta_bytes,
        "producer": prod, "server_cores_used": round(server_cpu, 2), "load": load.result, **({"profile": prof.top} if prof.top else {}),
        "server_vmhwm_mib": common.mib(mem.get("VmHWM")), "server_rss_end_mib": common.mib(mem.get("VmRSS")),
        "baseline_echo": base, "ratio_p99_to_echo_p99": round(p99 / base["rtt_ms"]["p99"], 1) if p99 and base["rtt_ms"]["p99"] else None,
        "targets": {"p99<=100ms": p99 is not None and p99 <= TARGET_P99_MS},
    }
    path = common.save("latency", result)
    b = base["rtt_ms"]
    print(common.table(
        f"2. ingest-to-client latency, {prod['rows_per_s']:,} obs/s in bodies of {args.batch}, {connected} WebSocket clients, {duration:g} s measured",
        ["path", "p50 ms", "p95 ms", "p99 ms", "max ms", "values", "target", "met"],
        [
            ["POST -> commit -> delta -> client", summary["p50"], summary["p95"], summary["p99"], summary["max"], summary["n"], "p99 <= 100 ms", result["targets"]["p99<=100ms"]],
            [f"baseline: WS echo round trip ({base['message_bytes']:,} B)", b["p50"], b["p95"], b["p99"], b["max"], b["n"], "", ""],
        ],
    ))
    print(f"   delivered per client {result['delivered_fraction']} of {sent:,} sent in the window, resyncs {result['resyncs']}, "
          f"HTTP ack p50/p99 {prod['ack_ms']['p50']}/{prod['ack_ms']['p99']} ms, server {result['server_cores_used']} cores, "
          f"VmHWM {result['server_vmhwm_mib']} MiB, other load {load.result['other_cores']} cores; results: {path}")
    return result


if __name__ == "__main__":
    main()

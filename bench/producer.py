"""Load generator process: POSTs JSON observations to /api/observations.

Two modes:
  saturate  pre-encoded bodies of --batch rows sent back-to-back over --conns keep-alive
            connections until --rows are sent or --duration passes (throughput).
  paced     --rate observations/s in bodies of --batch rows, open loop: each body is due at
            start + k * batch / rate and is sent then whatever earlier ones are doing (a new
            connection is opened when all are busy). Every row's phenomenonTime is the moment
            its body is written to the socket, so a client can compute ingest-to-client latency.

Writes a JSON summary to --out. Run by the benchmarks, e.g.:
    python -m bench.producer paced --port P --streams streams.json --rate 10000 --batch 100 --duration 30 --out p.json
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from datetime import datetime, timezone
from pathlib import Path

import msgspec
import numpy as np

from bench import common
from bench.httpclient import HttpConn


class Obs(msgspec.Struct):
    datastream: int
    phenomenonTime: datetime
    result: float


class Ack(msgspec.Struct):
    accepted: int = 0
    rejected: list = []


_ack = msgspec.json.Decoder(Ack)


def load_streams(path: Path) -> tuple[np.ndarray, list[str]]:
    s = json.loads(path.read_text())
    return np.array(s["ids"], dtype=np.int64), s["quantities"]


def encode_bodies(ids: np.ndarray, quantities: list[str], n_rows: int, batch: int, seed: int = 11) -> list[bytes]:
    """Bodies in city order (every datastream once per 1-s tick, ticks ending now)."""
    ds, t, v = common.city_rows(ids, quantities, n_rows, seed)
    v = np.round(v, 3)
    v[np.isin(v, common.SDOT_SENTINELS)] += 0.5  # rounding must not make a sentinel
    enc = msgspec.json.Encoder()
    return [
        enc.encode([Obs(i, datetime.fromtimestamp(tt / 1e6, timezone.utc), x) for i, tt, x in
                    zip(ds[s:s + batch].tolist(), t[s:s + batch].tolist(), v[s:s + batch].tolist())])
        for s in range(0, n_rows, batch)
    ]


async def saturate(args: argparse.Namespace) -> dict:
    ids, quantities = load_streams(args.streams)
    t_enc = time.perf_counter()
    bodies = encode_bodies(ids, quantities, args.rows, args.batch)
    encode_s = time.perf_counter() - t_enc
    conns = [await HttpConn("127.0.0.1", args.port).open() for _ in range(args.conns)]
    path = "/api/observations?source=bench" if args.path == "/api/observations" else args.path
    reqs = [conns[0].head("POST", path, len(b)) + b for b in bodies]
    del bodies
    nxt = 0
    sent = accepted = rejected = errors = 0
    lat: list[float] = []
    deadline = time.monotonic() + args.duration

    async def worker(c: HttpConn) -> None:
        nonlocal nxt, sent, accepted, rejected, errors
        while nxt < len(reqs) and time.monotonic() < deadline:
            req = reqs[nxt]
            nxt += 1
            s = time.perf_counter()
            status, body = await asyncio.wait_for(c.send_raw(req), 60)
            lat.append((time.perf_counter() - s) * 1e3)
            if status != 200:
                errors += 1
                continue
            a = _ack.decode(body)
            sent += a.accepted + len(a.rejected)
            accepted += a.accepted
            rejected += len(a.rejected)

    t0 = time.perf_counter()
    await asyncio.gather(*(worker(c) for c in conns))
    elapsed = time.perf_counter() - t0
    for c in conns:
        await c.close()
    return {"mode": "saturate", "rows": sent, "accepted": accepted, "rejected": rejected, "errors": errors,
            "requests": len(lat), "seconds": round(elapsed, 3), "rows_per_s": round(sent / elapsed),
            "request_ms": common.pct(lat), "batch": args.batch, "conns": args.conns, "encode_s": round(encode_s, 2)}


async def paced(args: argparse.Namespace) -> dict:
    ids, quantities = load_streams(args.streams)
    rng = np.random.default_rng(5)
    lo, hi = common.value_bounds(quantities)
    d = len(ids)
    enc = msgspec.json.Encoder()
    interval = args.batch / args.rate
    free: list[HttpConn] = [await HttpConn("127.0.0.1", args.port).open() for _ in range(args.conns)]
    opened = len(free)
    send_log: list[tuple[int, int]] = []  # (send time us, rows)
    ack_ms: list[float] = []
    status_errors = accepted = rejected = 0
    lag_ms: list[float] = []
    pending: set[asyncio.Task] = set()
    idle_since: dict[HttpConn, float] = {}
    cursor = 0
    ids_l = ids.tolist()

    async def post(c: HttpConn, cols: np.ndarray, values: list[float]) -> None:
        nonlocal status_errors, accepted, rejected
        if time.monotonic() - idle_since.get(c, 0.0) > 2.0 and c in idle_since:
            await c.reopen()  # the server closes keep-alive connections idle for 5 s
        for attempt in range(2):
            now_us = time.time_ns() // 1000
            when = datetime.fromtimestamp(now_us / 1e6, timezone.utc)
            body = enc.encode([Obs(ids_l[j], when, v) for j, v in zip(cols.tolist(), values)])
            s = time.perf_counter()
            try:
                status, resp = await asyncio.wait_for(c.request("POST", "/api/observations?source=bench", body), 60)
                break
            except (ConnectionError, asyncio.IncompleteReadError):
                if attempt:
                    raise
                await c.reopen()
        send_log.append((now_us, len(values)))
        ack_ms.append((time.perf_counter() - s) * 1e3)
        idle_since[c] = time.monotonic()
        if status != 200:
            status_errors += 1
        else:
            a = _ack.decode(resp)
            accepted += a.accepted
            rejected += len(a.rejected)
        free.append(c)

    start = time.perf_counter() + 0.05
    k = 0
    while True:
        due = start + k * interval
        if due - start >= args.duration:
            break
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        lag_ms.append(max(0.0, -delay) * 1e3)
        if not free:
            if opened >= args.max_conns:
                # All connections busy: this body goes out late (recorded as lag); a server that
                # answers nothing for 30 s ends the run.
                stuck = time.monotonic() + 30
                while not free:
                    if time.monotonic() > stuck:
                        raise TimeoutError(f"no response on any of {opened} connections for 30 s")
                    await asyncio.sleep(0.001)
            else:
                free.append(await HttpConn("127.0.0.1", args.port).open())
                opened += 1
        c = free.pop()
        cols = (cursor + np.arange(args.batch)) % d
        cursor = (cursor + args.batch) % d
        values = np.round(common.plausible_values(rng, lo[cols], hi[cols]), 3)
        values[np.isin(values, common.SDOT_SENTINELS)] += 0.5
        task = asyncio.create_task(post(c, cols, values.tolist()))
        pending.add(task)
        task.add_done_callback(pending.discard)
        k += 1
    if pending:
        await asyncio.wait(pending, timeout=30)
    send_log.sort()
    elapsed = (send_log[-1][0] - send_log[0][0]) / 1e6 if len(send_log) > 1 else 0.0
    rows = sum(n for _, n in send_log)
    return {"mode": "paced", "rows": rows, "accepted": accepted, "rejected": rejected, "errors": status_errors,
            "requests": len(send_log), "seconds": round(elapsed, 3), "rows_per_s": round(rows / elapsed) if elapsed else None,
            "target_rate": args.rate, "batch": args.batch, "connections_opened": opened,
            "ack_ms": common.pct(ack_ms), "send_lag_ms": common.pct(lag_ms), "send_log": send_log}


def main() -> None:
    ap = argparse.ArgumentParser(prog="bench.producer")
    ap.add_argument("mode", choices=["saturate", "paced"])
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--streams", type=Path, required=True, help="JSON {ids: [...], quantities: [...]}")
    ap.add_argument("--batch", type=int, default=1000)
    ap.add_argument("--rows", type=int, default=2_000_000)
    ap.add_argument("--rate", type=float, default=10_000)
    ap.add_argument("--conns", type=int, default=4)
    ap.add_argument("--max-conns", type=int, default=64)
    ap.add_argument("--duration", type=float, default=30.0)
    ap.add_argument("--path", default="/api/observations")
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args()
    result = common.run_async(saturate(args) if args.mode == "saturate" else paced(args))
    args.out.write_text(json.dumps(result))


if __name__ == "__main__":
    main()

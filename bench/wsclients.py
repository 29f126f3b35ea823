"""N live WebSocket clients in one process, recording when each value arrives.

Each client connects to /api/live, reads the snapshot, then for every `delta` message takes
its receive time (time.time(), taken before decoding) and keeps, per value, the value's
phenomenonTime (ms). The producer sets phenomenonTime to the moment it wrote the body, so
receive time - phenomenonTime is the ingest-to-client latency of that observation (rounded
up by < 1 ms, since deltas carry milliseconds).

    python -m bench.wsclients --url ws://127.0.0.1:P/api/live --clients 50 --duration 40 --ready R --out O.npz
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from pathlib import Path

import msgspec
import numpy as np

from bench import common


class Columns(msgspec.Struct):
    t: list[int] = []


class Message(msgspec.Struct):
    type: str
    datastreams: Columns | None = None


_decode = msgspec.json.Decoder(Message).decode


async def client(url: str, clock: dict, stats: dict, recv_ms: list, t_lists: list, ready: asyncio.Event, all_ready: asyncio.Event) -> None:
    import websockets

    async with websockets.connect(url, max_size=None, ping_interval=None, compression=None, open_timeout=30) as ws:
        first = await ws.recv()
        stats["snapshots"] += 1
        stats["snapshot_bytes"] = len(first)
        ready.set()
        await all_ready.wait()
        while True:
            left = clock["deadline"] - time.monotonic()
            if left <= 0:
                break
            try:
                raw = await asyncio.wait_for(ws.recv(), left)
            except asyncio.TimeoutError:
                break
            now_ms = time.time() * 1000.0
            msg = _decode(raw)
            stats["messages"] += 1
            stats["bytes"] += len(raw)
            if msg.type == "delta" and msg.datastreams is not None:
                recv_ms.append(now_ms)
                t_lists.append(msg.datastreams.t)
            elif msg.type == "snapshot":
                stats["resyncs"] += 1
            else:
                stats["other"] += 1


async def run(args: argparse.Namespace) -> None:
    per = [{"snapshots": 0, "resyncs": 0, "messages": 0, "bytes": 0, "other": 0, "snapshot_bytes": 0} for _ in range(args.clients)]
    recv = [[] for _ in range(args.clients)]
    tls = [[] for _ in range(args.clients)]
    readies = [asyncio.Event() for _ in range(args.clients)]
    all_ready = asyncio.Event()
    clock = {"deadline": time.monotonic() + args.connect_timeout + args.duration}
    tasks = [asyncio.create_task(client(args.url, clock, per[i], recv[i], tls[i], readies[i], all_ready)) for i in range(args.clients)]
    await asyncio.wait_for(asyncio.gather(*(e.wait() for e in readies)), args.connect_timeout)
    clock["deadline"] = time.monotonic() + args.duration
    all_ready.set()
    args.ready.write_text(str(time.time()))
    done, pending = await asyncio.wait(tasks, timeout=args.duration + args.connect_timeout + 5)
    for t in pending:
        t.cancel()
    errors = [repr(t.exception()) for t in done if t.exception() is not None]
    # Flatten: per client, one latency per value, with the value's time so the caller can window it.
    out: dict[str, np.ndarray] = {}
    for i in range(args.clients):
        counts = np.array([len(t) for t in tls[i]], dtype=np.int64)
        t_ms = np.fromiter((x for t in tls[i] for x in t), dtype=np.int64, count=int(counts.sum()))
        r_ms = np.repeat(np.array(recv[i], dtype=np.float64), counts)
        out[f"t{i}"] = t_ms
        out[f"lat{i}"] = (r_ms - t_ms).astype(np.float32)
    np.savez(args.out, **out)
    args.out.with_suffix(".json").write_text(json.dumps({"clients": per, "errors": errors}))


def main() -> None:
    ap = argparse.ArgumentParser(prog="bench.wsclients")
    ap.add_argument("--url", required=True)
    ap.add_argument("--clients", type=int, default=50)
    ap.add_argument("--duration", type=float, default=40.0, help="seconds to listen after all clients are connected")
    ap.add_argument("--connect-timeout", type=float, default=60.0)
    ap.add_argument("--ready", type=Path, required=True, help="written when every client has its snapshot")
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args()
    common.run_async(run(args))


if __name__ == "__main__":
    main()

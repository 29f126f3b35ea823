"""Baseline for the live latency: a WebSocket echo round trip on this machine.

A `websockets` echo server in its own process, and one client sending messages the size of
a typical delta and waiting for each to come back; round-trip time is the floor of "a
message crosses a WebSocket on loopback and is handled by Python on both ends", twice.

    python -m bench.echo serve --port P        (the server, run by bench.latency)
"""

from __future__ import annotations

import argparse
import asyncio
import time

from bench import common


async def serve(port: int) -> None:
    from websockets.asyncio.server import serve as ws_serve

    async def echo(ws) -> None:  # noqa: ANN001
        async for msg in ws:
            await ws.send(msg)

    async with ws_serve(echo, "127.0.0.1", port, max_size=None, compression=None, ping_interval=None):
        await asyncio.sleep(600)  # bounded: the caller terminates it long before


async def round_trips(port: int, n: int, size: int, time_cap_s: float = 30.0) -> dict:
    import websockets

    payload = ("x" * size)
    rtt = []
    async with websockets.connect(f"ws://127.0.0.1:{port}", max_size=None, compression=None, ping_interval=None, open_timeout=30) as ws:
        for _ in range(50):  # warm-up
            await ws.send(payload)
            await ws.recv()
        deadline = time.monotonic() + time_cap_s
        for _ in range(n):
            if time.monotonic() > deadline:
                break
            s = time.perf_counter()
            await ws.send(payload)
            await ws.recv()
            rtt.append((time.perf_counter() - s) * 1e3)
            await asyncio.sleep(0.002)  # spaced like deltas, not a tight loop
    return {"message_bytes": size, "rtt_ms": common.pct(rtt)}


def main() -> None:
    ap = argparse.ArgumentParser(prog="bench.echo")
    ap.add_argument("mode", choices=["serve"])
    ap.add_argument("--port", type=int, required=True)
    args = ap.parse_args()
    asyncio.run(serve(args.port))


if __name__ == "__main__":
    main()

"""Benchmark 7: MQTT ingest through Mosquitto, QoS 1, no loss, against a bare subscriber.

A `citywall up --feed none --mqtt mqtt://127.0.0.1:1883` process with the S-DoT-scale registry
(14,300 datastreams) reads the SensorThings topic `v1.1/Datastreams(id)/Observations`; one
observation per message, as a device sends it. A publisher process (MQTT 3.1.1 written by hand,
QoS 1, pre-encoded packets) offers N messages at --rate. citywall's rate is N over the time
from the first publish to the last PUBACK citywall sent, and citywall sends a PUBACK only after
the commit, so it is the rate of messages stored. Loss: the rows in the store, counted after the
server stopped, must be exactly N, and nothing quarantined.

Baseline, same run: the same publisher and N against a bare subscriber (QoS 1, PUBACK on
receipt) that only counts messages, on the same client stack as citywall's listener (aiomqtt
over paho, MQTT 5, buffered reads): the rate of Mosquitto + the MQTT client on this machine.

The publisher offers --rate messages/s (default 100,000: more than either subscriber takes).
Whatever a subscriber does not keep up with piles up in Mosquitto, and a default Mosquitto
(max_queued_messages 1000) DROPS QoS 1 messages for a subscriber whose backlog outgrows its
in-flight window plus that queue; on this machine that happened to both subscribers (bare
too) from some 35,000-45,000 messages behind. So N (default 30,000) times (1 - subscriber
rate / offered rate) must stay well below that; bigger runs need a broker with a larger
max_queued_messages (see docs/mqtt.md). The loss columns would show a drop.

    .venv/bin/python -m bench mqtt [--quick] [--messages N] [--rounds R] [--rate MSG_PER_S] [--broker-port 1883]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import uuid
from pathlib import Path
from typing import Any

from bench import common

TOPIC = "{prefix}v1.1/Datastreams({ds})/Observations"


# -- child processes ------------------------------------------------------------------------
def _remaining_length(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n % 128, n // 128
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _packet(first: int, body: bytes) -> bytes:
    return bytes([first]) + _remaining_length(len(body)) + body


def _string(s: bytes) -> bytes:
    return len(s).to_bytes(2, "big") + s


def publish(argv: list[str]) -> None:
    """Publish --n messages with QoS 1 and wait for every PUBACK; write timings to --out.

    A client library would make the publisher the bottleneck of this benchmark (paho publishes
    some 15,000 messages/s on this machine), so the MQTT 3.1.1 packets are written by hand:
    CONNECT, then PUBLISH packets (QoS 1, one packet id each) pre-encoded and written in chunks
    of 250 at the offered rate, while a thread counts the PUBACKs. At most 60,000 publishes are unacknowledged at
    once (packet ids are 16 bits)."""
    import socket
    import threading

    import numpy as np

    ap = argparse.ArgumentParser(prog="bench.mqtt publish")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--prefix", required=True)
    ap.add_argument("--streams", required=True)
    ap.add_argument("--n", type=int, required=True)
    ap.add_argument("--start-at", type=float, required=True, help="epoch seconds to start publishing at")
    ap.add_argument("--rate", type=float, required=True, help="messages per second offered")
    ap.add_argument("--out", required=True)
    args = ap.parse_args(argv)

    streams = json.loads(Path(args.streams).read_text())
    ids = np.array(streams["ids"])
    lo, hi = common.value_bounds(streams["quantities"])
    rng = np.random.default_rng(11)
    t0 = int(time.time()) - 3600  # an hour ago: no two messages share (datastream, time)
    from datetime import datetime, timezone

    packets = []
    for i in range(args.n):
        col = i % len(ids)
        stamp = datetime.fromtimestamp(t0 + i // len(ids), timezone.utc).isoformat().replace("+00:00", "Z")
        value = round(float(lo[col] + (hi[col] - lo[col]) * rng.random()), 2)
        topic = TOPIC.format(prefix=args.prefix, ds=int(ids[col])).encode()
        body = f'{{"phenomenonTime":"{stamp}","result":{value}}}'.encode()
        packets.append(_packet(0x32, _string(topic) + (i % 65535 + 1).to_bytes(2, "big") + body))

    sock = socket.create_connection(("127.0.0.1", args.port))
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    client_id = f"bench-pub-{uuid.uuid4().hex[:8]}".encode()
    sock.sendall(_packet(0x10, _string(b"MQTT") + bytes([4, 0x02]) + (60).to_bytes(2, "big") + _string(client_id)))
    connack = sock.recv(4)
    if connack[:1] != b"\x20" or connack[3:4] != b"\x00":
        raise RuntimeError(f"the broker refused the connection: {connack!r}")

    acked = [0]
    last_ack = [0.0]
    all_acked = threading.Event()

    def read_pubacks() -> None:
        buf = b""
        while acked[0] < args.n:
            data = sock.recv(1 << 16)
            if not data:
                break
            buf += data
            whole = len(buf) // 4  # only PUBACKs (0x40 0x02 id id) come now
            if buf[: 4 * whole].count(b"\x40\x02") < whole:
                raise RuntimeError("unexpected packet from the broker")
            acked[0] += whole
            buf = buf[4 * whole:]
            last_ack[0] = time.time()
        all_acked.set()

    reader = threading.Thread(target=read_pubacks, daemon=True)
    reader.start()
    time.sleep(max(0.0, args.start_at - time.time()))
    started = time.time()
    chunk = 250
    for k in range(0, args.n, chunk):
        while k - acked[0] > 60_000:
            time.sleep(0.001)
        ahead = started + k / args.rate - time.time()  # offer --rate messages/s, no faster
        if ahead > 0:
            time.sleep(ahead)
        sock.sendall(b"".join(packets[k:k + chunk]))
    sent_by = time.time()
    all_acked.wait(300)
    sock.sendall(b"\xe0\x00")  # DISCONNECT
    sock.close()
    Path(args.out).write_text(json.dumps({"started": started, "sent_by": sent_by, "acked_by": last_ack[0], "acked": acked[0], "n": args.n}))


def count(argv: list[str]) -> None:
    """The bare subscriber: QoS 1 with the acknowledgement sent on receipt, counts messages,
    nothing else. The same client stack as citywall's listener (aiomqtt over paho, MQTT 5,
    the same Receive Maximum, the same buffered reads), so the ratio is the cost of what
    citywall does with a message: decode, validate, commit, then acknowledge."""
    import asyncio

    import aiomqtt
    from paho.mqtt.packettypes import PacketTypes
    from paho.mqtt.properties import Properties

    from citywall.mqtt.listener import RECEIVE_MAXIMUM, buffered_reads

    ap = argparse.ArgumentParser(prog="bench.mqtt count")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--prefix", required=True)
    ap.add_argument("--n", type=int, required=True)
    ap.add_argument("--ready", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--timeout", type=float, default=120)
    args = ap.parse_args(argv)

    seen: dict[str, Any] = {"n": 0, "first": None, "last": None}

    async def run() -> None:
        done = asyncio.Event()

        def on_message(_c: Any, _u: Any, _m: Any) -> None:
            now = time.time()
            seen["n"] += 1
            seen["first"] = seen["first"] or now
            seen["last"] = now
            if seen["n"] >= args.n:
                done.set()

        props = Properties(PacketTypes.CONNECT)
        props.ReceiveMaximum = RECEIVE_MAXIMUM
        client = aiomqtt.Client("127.0.0.1", args.port, identifier=f"bench-bare-{uuid.uuid4().hex[:8]}", protocol=aiomqtt.ProtocolVersion.V5,
                                clean_start=True, properties=props)
        client._client.on_message = on_message  # noqa: SLF001 - as the listener does: no per-message aiomqtt objects
        buffered_reads(client)
        async with client:
            await client.subscribe(f"{args.prefix}v1.1/#", qos=1)
            Path(args.ready).write_text("ready")
            try:
                await asyncio.wait_for(done.wait(), args.timeout)
            except TimeoutError:
                pass

    asyncio.run(run())
    Path(args.out).write_text(json.dumps(seen))


# -- the benchmark ----------------------------------------------------------------------------
def _run_publisher(port: int, prefix: str, streams: Path, n: int, rate: float, tmp: Path, name: str) -> dict[str, Any]:
    out = tmp / f"{name}-pub.json"
    common.run_child(["bench.mqtt", "publish", "--port", str(port), "--prefix", prefix, "--streams", str(streams), "--n", str(n),
                      "--start-at", str(time.time() + 3.0), "--rate", str(rate), "--out", str(out)], timeout=600, log=tmp / f"{name}-pub.log")
    pub = json.loads(out.read_text())
    if pub["acked"] != n:
        raise RuntimeError(f"{name}: Mosquitto acknowledged {pub['acked']} of {n} publishes")
    return pub


def _wait_acknowledged(server: common.Server, n: int, stall_s: float = 15.0) -> dict[str, Any]:
    """citywall's MQTT status once it acknowledged n messages, or once nothing moved for stall_s
    (messages the broker dropped never come: the loss is then counted from the store)."""
    last, since = -1, time.monotonic()
    while True:
        status = common.http_json("GET", f"{server.base}/api/health")["feeds"]["mqtt"]
        if status["acknowledged"] >= n or time.monotonic() - since > stall_s:
            return status
        if status["acknowledged"] != last:
            last, since = status["acknowledged"], time.monotonic()
        time.sleep(0.2)


def citywall_run(port: int, n: int, rate: float, tmp: Path) -> dict[str, Any]:
    """One citywall server, a fresh store and topic prefix: N messages, then count the store."""
    prefix = f"bench-{uuid.uuid4().hex[:8]}/"
    tmp = tmp / prefix.rstrip("/")
    tmp.mkdir()
    server = common.Server(tmp / "citywall.duckdb", tmp / "server.log", extra=[
        "--mqtt", f"mqtt://127.0.0.1:{port}", "--mqtt-option", f"client_id=bench-citywall-{uuid.uuid4().hex[:8]}",
        "--mqtt-option", f"prefix={prefix}", "--mqtt-option", "session_expiry_s=60"]).start()
    try:
        streams = common.register_sdot(server, tmp)
        deadline = time.monotonic() + 60
        while common.http_json("GET", f"{server.base}/api/health")["feeds"]["mqtt"]["state"] != "ok":
            if time.monotonic() > deadline:
                raise TimeoutError("citywall did not connect to the broker")
            time.sleep(0.1)
        cpu0 = common.cpu_seconds(server.pid)
        with common.LoadMonitor() as load:
            pub = _run_publisher(port, prefix, streams, n, rate, tmp, "citywall")
            status = _wait_acknowledged(server, n)
        cpu = common.cpu_seconds(server.pid) - cpu0
    finally:
        mem = server.stop()
    import duckdb

    con = duckdb.connect(str(server.db), read_only=True)
    stored = con.execute("SELECT count(*) FROM observations").fetchone()[0]
    distinct = con.execute("SELECT count(*) FROM (SELECT DISTINCT datastream_id, phenomenon_time FROM observations)").fetchone()[0]
    quarantined = con.execute("SELECT count(*) FROM quarantine").fetchone()[0]
    con.close()
    seconds = status["last_ack_at"] - pub["started"]
    return {"messages": n, "seconds": round(seconds, 3), "messages_per_s": round(n / seconds), "stored_rows": int(stored),
            "distinct_rows": int(distinct), "quarantined": int(quarantined), "loss": n - int(distinct),
            "publisher_messages_per_s": round(n / (pub["acked_by"] - pub["started"])), "server_cpu_s": round(cpu, 2),
            "server_cores_used": round(cpu / seconds, 2), "server_vmhwm_mib": common.mib(mem.get("VmHWM")),
            "mqtt_status": {k: status[k] for k in ("received", "acknowledged", "rows_accepted", "rows_refused", "unreadable", "connects")},
            "load": load.result, "streams": str(streams)}


def bare_run(port: int, n: int, rate: float, streams: Path, tmp: Path) -> dict[str, Any]:
    prefix = f"bench-{uuid.uuid4().hex[:8]}/"
    tmp = tmp / prefix.rstrip("/")
    tmp.mkdir()
    ready, out = tmp / "bare.ready", tmp / "bare.json"
    proc = common.start_child(["bench.mqtt", "count", "--port", str(port), "--prefix", prefix, "--n", str(n), "--ready", str(ready),
                               "--out", str(out)], tmp / "bare.log")
    try:
        deadline = time.monotonic() + 60
        while not ready.exists():
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the bare subscriber did not subscribe: {(tmp / 'bare.log').read_text()[-2000:]}")
            time.sleep(0.05)
        with common.LoadMonitor() as load:
            pub = _run_publisher(port, prefix, streams, n, rate, tmp, "bare")
            common.finish_child(proc, 600, "bare subscriber", tmp / "bare.log")
    finally:
        common.stop_proc(proc)
    got = json.loads(out.read_text())
    seconds = got["last"] - pub["started"]
    return {"messages": n, "received": got["n"], "loss": n - got["n"], "seconds": round(seconds, 3), "messages_per_s": round(n / seconds),
            "publisher_messages_per_s": round(n / (pub["acked_by"] - pub["started"])), "load": load.result}


def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(prog="bench mqtt")
    ap.add_argument("--quick", action="store_true", help="1 round instead of 3")
    ap.add_argument("--messages", type=int, default=30_000, help="messages per run (default 30,000: see the module docstring)")
    ap.add_argument("--rounds", type=int, default=None, help="citywall and bare runs, alternating (default 3; quick 1); the median is reported")
    ap.add_argument("--rate", type=float, default=100_000, help="messages/s the publisher offers (default 100,000)")
    ap.add_argument("--broker-port", type=int, default=1883, help="the Mosquitto on 127.0.0.1 to go through")
    args = ap.parse_args(argv)
    n, rounds = args.messages, args.rounds or (1 if args.quick else 3)
    port = args.broker_port
    common.wait_tcp(port, 10)

    cws, bares = [], []
    with common.tempdir("mqtt") as tmp:
        for _ in range(rounds):
            cws.append(citywall_run(port, n, args.rate, tmp))
            bares.append(bare_run(port, n, args.rate, Path(cws[-1]["streams"]), tmp))
    for c in cws:
        c.pop("streams")
    cw = sorted(cws, key=lambda r: r["messages_per_s"])[len(cws) // 2]
    bare = sorted(bares, key=lambda r: r["messages_per_s"])[len(bares) // 2]
    ratio = cw["messages_per_s"] / bare["messages_per_s"]
    loss = sum(c["loss"] for c in cws)
    result = {
        "config": {"messages": n, "offered_messages_per_s": args.rate, "rounds": rounds, "qos": 1, "broker": f"mosquitto 127.0.0.1:{port}", "topic": "v1.1/Datastreams(id)/Observations",
                   "one_observation_per_message": True, "quick": args.quick},
        "citywall": cw, "baseline_bare_subscriber": bare, "ratio": round(ratio, 3),
        "rounds": {"citywall_messages_per_s": [c["messages_per_s"] for c in cws], "bare_messages_per_s": [b["messages_per_s"] for b in bares],
                   "citywall_loss": [c["loss"] for c in cws], "citywall_quarantined": [c["quarantined"] for c in cws], "bare_loss": [b["loss"] for b in bares]},
        "targets": {"messages_per_s>=20k": cw["messages_per_s"] >= 20_000, "ratio>=0.5": ratio >= 0.5,
                    "no_loss": loss == 0 and all(c["quarantined"] == 0 and c["stored_rows"] == n for c in cws)},
    }
    path = common.save("mqtt", result)
    print(common.table(
        f"7a. MQTT ingest through Mosquitto, QoS 1, {n:,} messages of one observation each (median of {rounds})",
        ["path", "messages/s", "seconds", "publisher msg/s", "loss", "ratio"],
        [
            ["citywall (PUBACK after commit)", cw["messages_per_s"], cw["seconds"], cw["publisher_messages_per_s"], cw["loss"], round(ratio, 3)],
            ["baseline: bare subscriber, counts only", bare["messages_per_s"], bare["seconds"], bare["publisher_messages_per_s"], bare["loss"], 1.0],
        ],
    ))
    print(f"   rounds: citywall {result['rounds']['citywall_messages_per_s']} msg/s (loss {result['rounds']['citywall_loss']}), "
          f"bare {result['rounds']['bare_messages_per_s']} msg/s (loss {result['rounds']['bare_loss']})")
    print(f"   median run: stored {cw['stored_rows']:,} rows ({cw['distinct_rows']:,} distinct), {cw['quarantined']} quarantined; server {cw['server_cores_used']} cores, "
          f"VmHWM {cw['server_vmhwm_mib']} MiB, other load {cw['load'].get('other_cores')} cores; results: {path}")
    return result


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] in ("publish", "count"):
        (publish if sys.argv[1] == "publish" else count)(sys.argv[2:])
    else:
        main(sys.argv[1:])

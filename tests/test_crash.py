"""Durability: kill -9 the server while clients are posting; every acknowledged observation must
be in the store after a restart."""

from __future__ import annotations

import http.client
import json
import random
import threading
import time
from datetime import datetime, timezone

import duckdb
import pytest

from servers import Server

pytestmark = [pytest.mark.slow, pytest.mark.timeout(240)]

WORKERS = 8
ROWS_PER_BATCH = 5
ROUNDS = 3


def iso(us: int) -> str:
    return datetime.fromtimestamp(us // 1_000_000, timezone.utc).replace(microsecond=us % 1_000_000).isoformat()


def load(server: Server, ds_ids: list[int], base_us: int, kill_after_s: float, acked: set, sent: set) -> int:
    """WORKERS threads post small batches until the server is killed; returns batches acknowledged."""
    stop = threading.Event()
    lock = threading.Lock()
    count = [0]
    errors: list[str] = []

    def worker(w: int) -> None:
        rng = random.Random(w)
        conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
        seq = 0
        try:
            while not stop.is_set():
                rows = []
                for j in range(ROWS_PER_BATCH):
                    t = base_us + (seq * ROWS_PER_BATCH + j) * 1000  # unique per datastream
                    rows.append((ds_ids[w], t, float(rng.randint(0, 500))))
                seq += 1
                body = json.dumps([{"datastream": d, "phenomenonTime": iso(t), "result": v} for d, t, v in rows]).encode()
                with lock:
                    sent.update(rows)
                try:
                    conn.request("POST", "/api/observations", body=body, headers={"content-type": "application/json", "X-API-Key": server.key})
                    r = conn.getresponse()
                    payload = r.read()
                except (OSError, http.client.HTTPException):
                    return  # the server is gone: this batch was not acknowledged
                if r.status != 200:
                    continue
                res = json.loads(payload)
                if res["rejected"]:
                    errors.append(f"unexpected rejections: {res['rejected'][:2]}")
                    continue
                with lock:
                    acked.update(rows)
                    count[0] += 1
        finally:
            conn.close()

    threads = [threading.Thread(target=worker, args=(w,), daemon=True) for w in range(WORKERS)]
    for t in threads:
        t.start()
    time.sleep(kill_after_s)
    server.kill9()
    stop.set()
    for t in threads:
        t.join(30)
    assert not any(t.is_alive() for t in threads)
    assert not errors, errors[:3]
    return count[0]


def stored_via_api(server: Server, ds_ids: list[int], start_us: int, end_us: int) -> set:
    out = set()
    for ds in ds_ids:
        status, body = server.request("GET", f"/api/history?datastream={ds}&resolution=raw&start={start_us // 1000}&end={end_us // 1000}")
        assert status == 200, body
        h = json.loads(body)
        out.update((ds, t * 1000, v) for t, v in zip(h["t"], h["v"]))
    return out


def test_acknowledged_observations_survive_kill_9(tmp_path):
    db = tmp_path / "crash.duckdb"
    server = Server(db, tmp_path / "server.log")
    rng = random.Random(int(time.time()))
    kill_moments = [rng.uniform(0.2, 0.6), rng.uniform(0.6, 1.2), rng.uniform(1.2, 2.0)]
    acked: set = set()
    sent: set = set()
    now_us = int(time.time()) * 1_000_000  # whole milliseconds: the history API speaks ms
    start_us = now_us - 2 * 86_400_000_000  # all data is two days old and older: valid, and never in the future
    try:
        server.start()
        things = [{"key": f"crash{w}", "name": f"Crash {w}", "kind": "air_station", "lon": 126.978 + w * 0.001, "lat": 37.5665,
                   "datastreams": [{"quantity": "pm10"}]} for w in range(WORKERS)]
        status, body = server.request("POST", "/api/things", json.dumps(things).encode())
        assert status == 200, body
        ds_ids = sorted(json.loads(body)["datastreams"].values())
        assert len(ds_ids) == WORKERS
        batches = []
        for round_no, moment in enumerate(kill_moments):
            if round_no:
                server.start()  # after the previous kill, on the same file
                assert acked <= stored_via_api(server, ds_ids, start_us, now_us), "acknowledged rows lost"
            base = start_us + round_no * 3_600_000_000
            batches.append(load(server, ds_ids, base, moment, acked, sent))
        print(f"acknowledged batches per round: {batches}, kill moments {[round(m, 2) for m in kill_moments]}")
        assert sum(batches) > 0 and all(b > 0 for b in batches[1:]), batches
        # after the last kill: restart, check through the API, then stop cleanly and read the file itself
        server.start()
        status, body = server.request("GET", "/api/things")
        assert status == 200 and {t["key"] for t in json.loads(body)} == {t["key"] for t in things}
        via_api = stored_via_api(server, ds_ids, start_us, now_us)
        assert acked <= via_api, f"{len(acked - via_api)} acknowledged rows lost"
        assert via_api <= sent, "the store holds rows nobody sent"
        server.stop()
        con = duckdb.connect(str(db), read_only=True)
        try:
            rows = con.execute("SELECT datastream_id, epoch_us(phenomenon_time), result FROM observations").fetchall()
            dup = con.execute("SELECT count(*) FROM (SELECT datastream_id, phenomenon_time FROM observations GROUP BY ALL HAVING count(*) > 1)").fetchone()[0]
        finally:
            con.close()
        in_file = {(int(d), int(t), float(v)) for d, t, v in rows}
        assert acked <= in_file
        assert in_file == via_api and dup == 0 and len(rows) == len(in_file)
    finally:
        server.kill9()


def test_an_acknowledged_incident_step_survives_kill_9(tmp_path) -> None:
    """An incident opened and moved through the API, killed at once after the answer: after the
    restart the case has every acknowledged step, and the audit log the matching rows."""
    server = Server(tmp_path / "inc.duckdb", tmp_path / "server.log")
    try:
        server.start()
        status, body = server.request("POST", "/api/incidents", json.dumps({"kind": "fire", "lon": 126.978, "lat": 37.5665, "severity": "high"}).encode())
        assert status == 201, body
        incident = json.loads(body)["id"]
        for step in ("dispatched", "arrived"):
            status, body = server.request("POST", f"/api/incidents/{incident}/transitions", json.dumps({"step": step}).encode())
            assert status == 200, body
        server.kill9()
        server.start()
        status, body = server.request("GET", f"/api/incidents/{incident}")
        assert status == 200 and [s["step"] for s in json.loads(body)["timeline"]] == ["occurred", "dispatched", "arrived"]
    finally:
        server.stop()
    con = duckdb.connect(str(tmp_path / "inc.duckdb"), read_only=True)
    try:
        actions = [r[0] for r in con.execute("SELECT action FROM audit_log WHERE target = ? ORDER BY seq", [incident]).fetchall()]
    finally:
        con.close()
    assert actions == ["incident.open", "incident.advance", "incident.advance"]

"""The real PostgreSQL stops and starts again while a server ingests into it: the server keeps running,
refuses what it cannot store (503, never acknowledged), reconnects by itself, and every acknowledged
observation is in the store afterwards. PostgreSQL is always started again, whatever happens."""

from __future__ import annotations

import json
import threading
import time
from datetime import datetime, timezone
from pathlib import Path

import pytest

from pgtools import fresh_database, pg_ctl, wait_until_up
from servers import Server

from citywall.auth import Accounts
from citywall.store import open_store

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]

T0 = time.time() - 3 * 3600  # observations an hour or more old, one second apart: each POST a new row


class Poster(threading.Thread):
    """POSTs one observation after another, recording what each answer was."""

    def __init__(self, server: Server) -> None:
        super().__init__(daemon=True)
        self.server = server
        self.answers: dict[int, int | str] = {}  # row number -> HTTP status, or the connection error
        self.stop = threading.Event()
        self.lock = threading.Lock()

    def run(self) -> None:
        i = 0
        while not self.stop.is_set():
            row = [{"datastream": "r:pm10", "phenomenonTime": datetime.fromtimestamp(T0 + i, timezone.utc).isoformat(), "result": float(i)}]
            try:
                status, _ = self.server.request("POST", "/api/observations", json.dumps(row).encode(), timeout=30)
                answer: int | str = status
            except OSError as exc:
                answer = type(exc).__name__
            with self.lock:
                self.answers[i] = answer
            i += 1
            time.sleep(0.02)

    def count(self, answer: int | str) -> int:
        with self.lock:
            return sum(1 for a in self.answers.values() if a == answer)

    def wait_for(self, answer: int | str, n: int, timeout_s: float = 60) -> None:
        deadline = time.monotonic() + timeout_s
        start = self.count(answer)
        while self.count(answer) < start + n:
            if time.monotonic() > deadline:
                raise AssertionError(f"no {n} more answers {answer!r} within {timeout_s} s; answers so far: {self.summary()}")
            time.sleep(0.05)

    def summary(self) -> dict[str, int]:
        with self.lock:
            out: dict[str, int] = {}
            for a in self.answers.values():
                out[str(a)] = out.get(str(a), 0) + 1
            return out


def test_a_database_restart_loses_no_acknowledged_observation(tmp_path: Path) -> None:
    with fresh_database() as url:
        store = open_store(url)
        accounts = Accounts(store, lambda: time.time_ns() // 1000)
        accounts.create_user("ops", "admin", "correct horse battery")
        key = accounts.create_key("tests", "feed", by="tests")["key"]
        store.close()
        # With a password (trust auth ignores it): neither the health answer nor the log may show it.
        with_password = url.replace("postgresql://postgres@", "postgresql://postgres:secret@")
        assert with_password != url
        server = Server(with_password, tmp_path / "server.log", "--feed", "none", "--mqtt", "off")  # type: ignore[arg-type]
        server.key = key
        server.start()
        poster = Poster(server)
        try:
            things = [{"key": "r", "name": "R", "kind": "air_station", "lon": 126.978, "lat": 37.5665, "datastreams": [{"quantity": "pm10"}]}]
            assert server.request("POST", "/api/things", json.dumps(things).encode())[0] == 200
            poster.start()
            poster.wait_for(200, 20)
            try:
                pg_ctl("stop")
                poster.wait_for(503, 5)  # refused while the database is away, not acknowledged
                status, body = server.request("GET", "/api/health")  # the server itself still answers, and says why
                assert status == 200, body
                health = json.loads(body)
                assert health["store_status"]["state"] == "down" and health["store_status"]["error"], health["store_status"]
                assert "secret" not in body.decode()
                # ... and so does the wall: the live picture every wall reads carries the store's state.
                deadline = time.monotonic() + 10
                while json.loads(server.request("GET", "/api/snapshot")[1])["store"]["state"] != "down":
                    assert time.monotonic() < deadline, "the snapshot never said the store is down"
                    time.sleep(0.2)
                assert server.proc is not None and server.proc.poll() is None
            finally:
                pg_ctl("start")
                wait_until_up()
            poster.wait_for(200, 20)  # the server reconnected by itself
            assert json.loads(server.request("GET", "/api/health")[1])["store_status"] == {"state": "ok", "error": None, "down_since": None}
        finally:
            poster.stop.set()
            poster.join(60)
            server.stop()
        assert "secret" not in (tmp_path / "server.log").read_text(errors="replace")
        answers = dict(poster.answers)
        acked = sorted(i for i, a in answers.items() if a == 200)
        refused = [i for i, a in answers.items() if a == 503]
        assert refused and acked, poster.summary()
        assert set(answers.values()) <= {200, 503}, poster.summary()  # nothing else (no 500, no dropped connection)
        store = open_store(url)
        try:
            rows = store.reader().execute("SELECT result FROM observations ORDER BY result").fetchall()
        finally:
            store.close()
        kept = {int(r[0]) for r in rows}
        assert set(acked) <= kept, f"acknowledged but lost: {sorted(set(acked) - kept)[:20]}"
        # A refused row may have been stored when the connection broke after its COMMIT was sent; never twice.
        assert len(rows) == len(kept)

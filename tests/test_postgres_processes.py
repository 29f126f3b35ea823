"""Two real `citywall up` processes sharing one PostgreSQL store and one Redis (live broker): what one
ingests, registers or opens reaches the walls of the other at once, without being stored twice."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path

import pytest
from websockets.sync.client import connect

from pgtools import fresh_database
from servers import Server

from citywall.auth import Accounts
from citywall.store import open_store

pytestmark = [pytest.mark.slow, pytest.mark.timeout(240)]

REDIS = "redis://127.0.0.1:6379"
CITY_HALL = (126.9780, 37.5665)


def iso(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, timezone.utc).isoformat()


@pytest.fixture
def pair(tmp_path: Path) -> Iterator[tuple[Server, Server, str]]:
    with fresh_database() as url:
        store = open_store(url)
        accounts = Accounts(store, lambda: time.time_ns() // 1000)
        accounts.create_user("ops", "admin", "correct horse battery")  # so no first-admin password file is written
        key = accounts.create_key("tests", "feed", by="tests")["key"]
        store.close()
        args = ("--feed", "none", "--mqtt", "off", "--live-broker", REDIS)
        a, b = Server(url, tmp_path / "a.log", *args), Server(url, tmp_path / "b.log", *args)  # type: ignore[arg-type]
        a.key = b.key = key
        try:
            a.start()
            b.start()
            yield a, b, url
        finally:
            a.stop()
            b.stop()


def snapshot_value(server: Server, ds: int, want: float, timeout_s: float = 20) -> float | None:
    """The datastream's value in the server's snapshot, once it is `want` (the snapshot is refreshed a
    few times a second), else the last value seen."""
    deadline, got = time.monotonic() + timeout_s, None
    while time.monotonic() < deadline:
        status, body = server.request("GET", "/api/snapshot")
        snap = json.loads(body)["datastreams"]
        got = snap["v"][snap["ids"].index(ds)] if ds in snap["ids"] else None
        if got == want:
            break
        time.sleep(0.1)
    return got


def messages_until(ws, want, timeout_s: float = 20) -> dict:  # noqa: ANN001
    """Read live messages until one satisfies `want`; that message."""
    deadline = time.monotonic() + timeout_s
    seen = []
    while time.monotonic() < deadline:
        try:
            msg = json.loads(ws.recv(timeout=max(0.1, deadline - time.monotonic())))
        except TimeoutError:
            break
        seen.append(msg.get("type"))
        if want(msg):
            return msg
    raise AssertionError(f"no such live message; got types {seen}")


def test_what_one_process_ingests_reaches_the_walls_of_the_other(pair: tuple[Server, Server, str]) -> None:
    a, b, url = pair
    with connect(f"ws://127.0.0.1:{b.port}/api/live", open_timeout=10) as ws:
        assert json.loads(ws.recv(timeout=10))["type"] == "snapshot"
        # A registers a station B has never heard of, then stores a value for it.
        things = [{"key": "x", "name": "X", "kind": "air_station", "lon": CITY_HALL[0], "lat": CITY_HALL[1], "datastreams": [{"quantity": "pm10"}]}]
        status, body = a.request("POST", "/api/things", json.dumps(things).encode())
        assert status == 200, body
        ds = json.loads(body)["datastreams"]["x:pm10"]
        t = time.time() - 60
        status, body = a.request("POST", "/api/observations", json.dumps([{"datastream": "x:pm10", "phenomenonTime": iso(t), "result": 42.5}]).encode())
        assert status == 200 and json.loads(body)["accepted"] == 1, body
        delta = messages_until(ws, lambda m: m["type"] == "delta" and ds in m["datastreams"]["ids"])
        assert delta["datastreams"]["v"][delta["datastreams"]["ids"].index(ds)] == 42.5
        # B's snapshot and registry have it too, and B can take data for it.
        assert snapshot_value(b, ds, 42.5) == 42.5
        status, body = b.request("POST", "/api/observations", json.dumps([{"datastream": "x:pm10", "phenomenonTime": iso(t + 1), "result": 43.0}]).encode())
        assert status == 200 and json.loads(body)["accepted"] == 1, body
        # An incident opened on A shows on B's wall and in B's list.
        status, body = a.request("POST", "/api/incidents", json.dumps({"kind": "fire", "lon": CITY_HALL[0], "lat": CITY_HALL[1], "severity": "high"}).encode())
        assert status == 201, body
        incident = json.loads(body)["id"]
        msg = messages_until(ws, lambda m: m["type"] == "incident" and m["incident"]["id"] == incident)
        assert msg["incident"]["kind"] == "fire"
        status, body = b.request("GET", "/api/incidents")
        assert incident in body.decode()
    # Each row was stored once, by the process that took it.
    store = open_store(url)
    try:
        rows = store.reader().execute("SELECT datastream_id, result FROM observations ORDER BY result").fetchall()
        assert rows == [(ds, 42.5), (ds, 43.0)]
    finally:
        store.close()
    # ... and A heard B's value too.
    assert snapshot_value(a, ds, 43.0) == 43.0


def test_a_process_that_lost_redis_catches_up_from_the_store(pair: tuple[Server, Server, str]) -> None:
    import redis

    a, b, _ = pair
    things = [{"key": "y", "name": "Y", "kind": "air_station", "lon": CITY_HALL[0], "lat": CITY_HALL[1], "datastreams": [{"quantity": "pm10"}]}]
    status, body = a.request("POST", "/api/things", json.dumps(things).encode())
    ds = json.loads(body)["datastreams"]["y:pm10"]
    t = time.time() - 60
    assert a.request("POST", "/api/observations", json.dumps([{"datastream": "y:pm10", "phenomenonTime": iso(t), "result": 1.0}]).encode())[0] == 200
    assert snapshot_value(b, ds, 1.0) == 1.0
    # Cut B's connections to Redis; what A stores meanwhile is published to nobody on B's side.
    r = redis.Redis.from_url(REDIS)
    assert b.proc is not None
    mine = [c for c in r.client_list() if c.get("name", "").startswith(f"citywall-live-{b.proc.pid}-")]
    assert mine, "B's broker connections are named after its pid"
    for c in mine:
        r.client_kill_filter(_id=c["id"])
    assert a.request("POST", "/api/observations", json.dumps([{"datastream": "y:pm10", "phenomenonTime": iso(t + 1), "result": 2.0}]).encode())[0] == 200
    # B reconnects by itself and reads what it missed from the store.
    assert snapshot_value(b, ds, 2.0, timeout_s=30) == 2.0
    health = json.loads(b.request("GET", "/api/health")[1])
    assert health["live_broker"]["connected"] is True

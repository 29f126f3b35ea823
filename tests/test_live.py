"""The live picture: WebSocket snapshot + deltas, aggregates per place, slow clients, health and metrics."""

from __future__ import annotations

import json
import time

import pytest

from citywall.live.hub import QUEUE_SIZE, RESYNC, Subscriber
from conftest import (CITY_HALL, COEX, FIXED_NOW_US, GANGNAM_GU, GYEONGBOKGUNG, JONGNO_GU, JUNG_GU, MINUTE_US, MYEONGDONG, US,
                      metric, obs, post, register, running)

pytestmark = pytest.mark.timeout(60)  # a WebSocket receive that never returns fails instead of hanging

NOW = FIXED_NOW_US

THINGS = [
    {"key": "a", "name": "A", "kind": "air_station", "lon": CITY_HALL[0], "lat": CITY_HALL[1], "datastreams": [{"quantity": "pm10"}, {"quantity": "o3"}]},
    {"key": "b", "name": "B", "kind": "air_station", "lon": MYEONGDONG[0], "lat": MYEONGDONG[1], "datastreams": [{"quantity": "pm10"}]},
    {"key": "c", "name": "C", "kind": "air_station", "lon": COEX[0], "lat": COEX[1], "datastreams": [{"quantity": "pm10"}]},
    {"key": "s", "name": "S", "kind": "sdot", "lon": CITY_HALL[0], "lat": CITY_HALL[1],
     "datastreams": [{"quantity": "pm10", "interval_s": 120}]},
    {"key": "g", "name": "G", "kind": "air_station", "lon": GYEONGBOKGUNG[0], "lat": GYEONGBOKGUNG[1], "datastreams": [{"quantity": "pm10"}]},
]


@pytest.fixture
def live(db):
    with running(db, now_us=NOW) as (platform, client, clock):
        ids = register(client, THINGS)
        yield platform, client, clock, ids


def next_of(ws, kind: str, limit: int = 50) -> dict:
    """The next message of a type, skipping the periodic `aggregates` messages."""
    for _ in range(limit):
        msg = ws.receive_json()
        if msg["type"] == kind:
            return msg
        assert msg["type"] == "aggregates", msg["type"]
    raise AssertionError(f"no {kind} message")


def values(msg: dict) -> dict[int, tuple[int, float]]:
    d = msg["datastreams"]
    return dict(zip(d["ids"], zip(d["t"], d["v"])))


def test_snapshot_first_then_deltas(live):
    platform, client, _, ids = live
    a, b, c = ids["a:pm10"], ids["b:pm10"], ids["c:pm10"]
    post(client, [obs(a, NOW - 5 * MINUTE_US, 30.0)])
    with client.websocket_connect("/api/live") as ws:
        snap = ws.receive_json()
        assert snap["type"] == "snapshot" and snap["city"] == "seoul"
        assert values(snap) == {a: ((NOW - 5 * MINUTE_US) // 1000, 30.0)}
        assert snap["aggregates"]["gu"][JUNG_GU]["air_station"]["pm10"]["n"] == 1
        res = post(client, [obs(b, NOW - MINUTE_US, 12.0), obs(c, NOW - MINUTE_US, 45.5), obs(ids["a:o3"], NOW - MINUTE_US, 48.0, unit="ppb")])
        assert res["accepted"] == 3
        delta = next_of(ws, "delta")
        assert set(values(delta)) == {b, c, ids["a:o3"]}
        assert values(delta)[b] == ((NOW - MINUTE_US) // 1000, 12.0)
        assert values(delta)[c] == ((NOW - MINUTE_US) // 1000, 45.5)
        assert values(delta)[ids["a:o3"]][1] == pytest.approx(0.048)  # canonical unit, like the store
        assert delta["version"] > snap["version"]
        # an older value (late data) is stored but does not replace the live one: no delta for it
        post(client, [obs(a, NOW - 50 * MINUTE_US, 99.0)])
        post(client, [obs(a, NOW - MINUTE_US, 31.0)])
        delta = next_of(ws, "delta")
        assert values(delta) == {a: ((NOW - MINUTE_US) // 1000, 31.0)}
        # rejected rows never reach the wall
        post(client, [obs(a, NOW - MINUTE_US, -5.0), obs(b, NOW, 13.0)])
        assert values(next_of(ws, "delta")) == {b: (NOW // 1000, 13.0)}


def test_snapshot_on_connect_includes_what_was_just_acknowledged(live):
    """A client must never start from a snapshot older than its subscription: the deltas before
    it are gone, so a stale snapshot would leave the wall wrong until that sensor reports again."""
    platform, client, _, ids = live
    a = ids["a:pm10"]
    for k in range(3):
        client.get("/api/snapshot")  # a recent snapshot is cached
        post(client, [obs(a, NOW - (10 - k) * MINUTE_US, 40.0 + k)])
        with client.websocket_connect("/api/live") as ws:
            snap = ws.receive_json()
            assert snap["type"] == "snapshot"
            assert values(snap)[a] == ((NOW - (10 - k) * MINUTE_US) // 1000, 40.0 + k)
            assert snap["version"] == platform.live.version


def poll_snapshot(client, version: int) -> dict:
    """/api/snapshot is cached for a fraction of a second; wait (bounded) for the given version."""
    deadline = time.monotonic() + 5
    while True:
        snap = client.get("/api/snapshot").json()
        if snap["version"] >= version or time.monotonic() > deadline:
            return snap
        time.sleep(0.05)


def test_aggregates_per_gu_region_and_city(live):
    platform, client, clock, ids = live
    t = NOW - 2 * MINUTE_US
    post(client, [
        obs(ids["a:pm10"], t, 10.0), obs(ids["b:pm10"], t, 30.0),  # 중구, air stations
        obs(ids["s:pm10"], NOW - 10 * MINUTE_US, 500.0),  # 중구, S-DoT, reports every 2 min: stale after 6 min
        obs(ids["c:pm10"], t, 70.0),  # 강남구
        obs(ids["g:pm10"], NOW - 4 * 3600 * US, 1000.0),  # 종로구, hourly station, 4 h old: stale
    ])
    snap = poll_snapshot(client, platform.live.version)
    assert snap["version"] == platform.live.version
    agg = snap["aggregates"]
    assert agg["gu"][JUNG_GU] == {"air_station": {"pm10": {"mean": 20.0, "min": 10.0, "max": 30.0, "n": 2}}}
    assert agg["gu"][GANGNAM_GU] == {"air_station": {"pm10": {"mean": 70.0, "min": 70.0, "max": 70.0, "n": 1}}}
    assert JONGNO_GU not in agg["gu"]  # its only value is stale
    assert agg["region"]["central"]["air_station"]["pm10"]["n"] == 2
    assert agg["region"]["southeast"]["air_station"]["pm10"]["mean"] == 70.0
    assert agg["city"] == {"air_station": {"pm10": {"mean": pytest.approx(110 / 3, abs=1e-4), "min": 10.0, "max": 70.0, "n": 3}}}
    fresh = snap["freshness"]
    assert fresh["air_station"] == {"datastreams": 5, "reporting": 4, "fresh": 3, "stale": 2, "newest_ms": t // 1000,
                                    "age_s": 120.0}
    assert fresh["sdot"]["fresh"] == 0 and fresh["sdot"]["stale"] == 1
    # all newest values are listed, stale or not
    assert set(values(snap)) == {ids["a:pm10"], ids["b:pm10"], ids["s:pm10"], ids["c:pm10"], ids["g:pm10"]}
    # time passes: the 중구 values go stale too (3 hourly intervals)
    clock.advance(3 * 3600 * US)
    # the cached snapshot is rebuilt in the background at least every second (plus one period)
    deadline = time.monotonic() + 3.0
    while True:
        later = client.get("/api/snapshot").json()
        if JUNG_GU not in later["aggregates"]["gu"] or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert JUNG_GU not in later["aggregates"]["gu"] and later["aggregates"]["city"] == {}


def test_empty_platform_snapshot_and_live(db):
    with running(db, now_us=NOW) as (platform, client, _):
        snap = client.get("/api/snapshot").json()
        assert snap["type"] == "snapshot" and values(snap) == {}
        assert snap["aggregates"] == {"city": {}, "gu": {}, "region": {}}
        with client.websocket_connect("/api/live") as ws:
            assert ws.receive_json()["type"] == "snapshot"


def test_live_with_only_stale_data(live):
    platform, client, clock, ids = live
    post(client, [obs(ids["a:pm10"], NOW - 5 * 3600 * US, 10.0)])
    snap = poll_snapshot(client, platform.live.version)
    assert snap["aggregates"]["city"] == {} and values(snap) == {ids["a:pm10"]: ((NOW - 5 * 3600 * US) // 1000, 10.0)}
    with client.websocket_connect("/api/live") as ws:
        assert ws.receive_json()["type"] == "snapshot"
        post(client, [obs(ids["b:pm10"], NOW, 11.0)])
        assert values(next_of(ws, "delta")) == {ids["b:pm10"]: (NOW // 1000, 11.0)}


# -- slow clients -----------------------------------------------------------------------

def test_a_full_queue_is_replaced_by_one_resync_marker():
    fast, slow = Subscriber(), Subscriber()
    got = []
    for k in range(5 * QUEUE_SIZE):
        message = json.dumps({"k": k}).encode()
        for sub in (fast, slow):
            sub.offer(message)
        got.append(fast.queue.get_nowait())  # the fast client keeps up
    assert [json.loads(m)["k"] for m in got] == list(range(5 * QUEUE_SIZE))
    # the slow one never holds more than its queue, and a resync marker comes before any newer messages
    assert 0 < slow.queue.qsize() <= QUEUE_SIZE
    backlog = [slow.queue.get_nowait() for _ in range(slow.queue.qsize())]
    assert backlog[0] == RESYNC and RESYNC not in backlog[1:]
    assert [json.loads(m)["k"] for m in backlog[1:]] == list(range(5 * QUEUE_SIZE - len(backlog) + 1, 5 * QUEUE_SIZE))


def test_slow_client_does_not_hold_up_a_fast_one(live):
    platform, client, _, ids = live
    a = ids["a:pm10"]
    before = metric(client.get("/metrics").text, "citywall_live_resyncs_total")
    slow = client.portal.call(platform.hub.subscribe)  # a client that never reads (made on the event loop)
    try:
        with client.websocket_connect("/api/live") as ws:
            assert ws.receive_json()["type"] == "snapshot"
            n = 3 * QUEUE_SIZE
            for k in range(n):
                post(client, [obs(a, NOW - (n - k) * US, float(k))])
                msg = ws.receive_json()
                while msg["type"] == "aggregates":
                    msg = ws.receive_json()
                # every commit reaches the fast client while the slow one is stuck
                assert msg["type"] in ("delta", "snapshot")
                assert values(msg)[a] == ((NOW - (n - k) * US) // 1000, float(k))
            backlog = client.portal.call(lambda: [slow.queue.get_nowait() for _ in range(slow.queue.qsize())])
            assert 0 < len(backlog) <= QUEUE_SIZE
            assert backlog[0] == RESYNC
        after = metric(client.get("/metrics").text, "citywall_live_resyncs_total")
        assert after >= before + 1
    finally:
        client.portal.call(platform.hub.unsubscribe, slow)


def test_slow_websocket_gets_a_current_snapshot_on_resync(live):
    """A WebSocket whose queue overflowed is sent a snapshot holding the newest values, not the backlog."""
    platform, client, _, ids = live
    a = ids["a:pm10"]
    with client.websocket_connect("/api/live") as ws:
        assert ws.receive_json()["type"] == "snapshot"
        post(client, [obs(a, NOW - US, 77.0)])
        assert values(next_of(ws, "delta")) == {a: ((NOW - US) // 1000, 77.0)}
        (sub,) = platform.hub.subscribers

        def burst() -> None:  # more messages than the queue holds, before the handler can send any
            for k in range(QUEUE_SIZE + 1):
                sub.offer(json.dumps({"type": "delta", "k": k}).encode())

        client.portal.call(burst)
        snap = next_of(ws, "snapshot", limit=5)
        assert values(snap)[a] == ((NOW - US) // 1000, 77.0)
        assert snap["version"] == platform.live.version


# -- operations -------------------------------------------------------------------------

def test_health(live):
    platform, client, _, ids = live
    body = client.get("/api/health").json()
    assert body["status"] == "ok" and body["writer_alive"] is True
    assert body["city"] == "seoul" and body["datastreams"] == len(ids)
    assert body["feeds"] == {} and body["simulated"] is False


def test_health_reports_a_dead_writer(db):
    with running(db, now_us=NOW) as (platform, client, _):
        platform.pipeline.stop()
        r = client.get("/api/health")
        assert r.status_code == 503 and r.json()["status"] == "degraded"


def test_metrics_count_accepted_and_rejected_rows(live):
    platform, client, _, ids = live
    text = client.get("/metrics").text
    acc0 = metric(text, "citywall_observations_accepted_total", source="metrics-test")
    range0 = metric(text, "citywall_observations_rejected_total", reason="out_of_range")
    malformed0 = metric(text, "citywall_observations_rejected_total", reason="malformed")
    post(client, [obs(ids["a:pm10"], NOW - k * US, 1.0) for k in range(1, 4)] + [obs(ids["a:pm10"], NOW, -1.0), {"x": 1}],
         source="metrics-test")
    assert client.post("/api/observations", content=b"not json").status_code == 400
    with client.websocket_connect("/api/live") as ws:
        ws.receive_json()
        text = client.get("/metrics").text
        assert metric(text, "citywall_live_clients") == 1
    assert metric(text, "citywall_observations_accepted_total", source="metrics-test") == acc0 + 3
    assert metric(text, "citywall_observations_rejected_total", reason="out_of_range") == range0 + 1
    assert metric(text, "citywall_observations_rejected_total", reason="malformed") == malformed0 + 2
    assert metric(text, "citywall_datastreams") == len(ids)
    assert "citywall_commit_seconds_bucket" in text


def test_live_picture_is_read_safely_while_the_writer_registers(db):
    """Registration runs on the writer thread while snapshots are built on the event loop; a
    snapshot taken mid-registration must neither fail nor see a half-added datastream."""
    import threading

    from citywall.observations.model import DatastreamIn, ThingIn

    with running(db) as (platform, client, _):
        stop = threading.Event()
        errors: list[BaseException] = []

        def build() -> None:
            while not stop.is_set():
                try:
                    doc = platform.snapshots.document()
                    assert sum(f["datastreams"] for f in doc["freshness"].values()) <= platform.registry.size - 1
                except BaseException as e:  # noqa: BLE001 - reported below
                    errors.append(e)
                    return

        reader = threading.Thread(target=build)
        reader.start()
        try:
            for batch in range(40):
                things = [ThingIn(key=f"r{batch}-{i}", name="r", kind=f"kind{batch % 3}", lon=126.98 + i * 1e-4, lat=37.56,
                                  datastreams=[DatastreamIn("pm10"), DatastreamIn("temperature")]) for i in range(60)]
                platform.pipeline.register(things).result(timeout=30)
        finally:
            stop.set()
            reader.join(30)
        assert not errors, errors[0]
        assert len(platform.registry.datastreams) == 40 * 60 * 2
        assert platform.registry.size == 40 * 60 * 2 + 1


def test_background_refresh_survives_a_failed_build(live, monkeypatch):
    """One failed snapshot build must not freeze GET /api/snapshot for the rest of the run."""
    platform, client, _, ids = live
    assert client.get("/api/snapshot").json()["datastreams"]["ids"] == []
    real = platform.snapshots.refresh
    failures = []

    def flaky() -> None:
        if not failures:
            failures.append(1)
            raise RuntimeError("simulated build failure")
        real()

    monkeypatch.setattr(platform.snapshots, "refresh", flaky)
    post(client, [obs(ids["a:pm10"], NOW - MINUTE_US, 21.0)])
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        snap = client.get("/api/snapshot").json()
        if snap["datastreams"]["ids"]:
            break
        time.sleep(0.05)
    assert failures, "the background refresh never ran"
    assert values(snap) == {ids["a:pm10"]: ((NOW - MINUTE_US) // 1000, 21.0)}

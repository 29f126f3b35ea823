"""MQTT ingest against the real Mosquitto on 127.0.0.1:1883 and against the embedded broker.

Every test uses its own topic prefix and client ids, so tests (and leftover persistent sessions
of earlier runs) never see each other's messages. Waits have deadlines; nothing asserts on time.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import msgspec
import paho.mqtt.client as paho
import pytest

from citywall.mqtt import EmbeddedBroker, MqttFeed, mqtt_from_settings
from citywall.mqtt.topics import decode_messages
from citywall.observations.model import ThingIn
from citywall.platform import Settings
from conftest import CITY_HALL, COEX, US, iso, make_platform, register, running, stored, thing, wait_for
from servers import free_port

MOSQUITTO = ("127.0.0.1", 1883)
MOSQUITTO_PID_FILE = Path("/run/mosquitto/mosquitto.pid")
MOSQUITTO_CMD = ["mosquitto", "-d", "-c", "/etc/mosquitto/mosquitto.conf"]
SESSION_S = 600  # test sessions expire in Mosquitto 10 minutes after a test ends


def unique(name: str) -> str:
    return f"{name}-{uuid.uuid4().hex[:10]}"


class Publisher:
    """A paho client publishing with QoS 1 and waiting for each PUBACK (so the broker has it)."""

    def __init__(self, port: int, client_id: str, *, clean: bool = True) -> None:
        self.client = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id=client_id, clean_session=clean, protocol=paho.MQTTv311)
        self.client.max_inflight_messages_set(200)
        self.client.max_queued_messages_set(0)
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()

    def send(self, topic: str, payload: Any, *, wait: bool = True) -> paho.MQTTMessageInfo:
        body = payload if isinstance(payload, (bytes, str)) else json.dumps(payload)
        info = self.client.publish(topic, body, qos=1)
        if wait:
            info.wait_for_publish(10)
            assert info.is_published(), f"the broker did not acknowledge {topic}"
        return info

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@contextmanager
def publisher(port: int = MOSQUITTO[1], client_id: str | None = None, **kw: Any) -> Iterator[Publisher]:
    p = Publisher(port, client_id or unique("test-pub"), **kw)
    try:
        yield p
    finally:
        p.close()


def mosquitto_options(prefix: str, client_id: str) -> dict[str, Any]:
    return {"mqtt": f"mqtt://{MOSQUITTO[0]}:{MOSQUITTO[1]}",
            "mqtt_options": {"client_id": client_id, "prefix": prefix, "session_expiry_s": SESSION_S}}


def mqtt_status(client) -> dict[str, Any]:  # noqa: ANN001
    return client.get("/api/health").json()["feeds"]["mqtt"]


def connected(client) -> dict | None:  # noqa: ANN001
    s = mqtt_status(client)
    return s if s["state"] == "ok" else None


def now_us() -> int:
    return int(time.time() * US)


def st_topic(prefix: str, ds: int) -> str:
    return f"{prefix}v1.1/Datastreams({ds})/Observations"


def rows_of(platform, ds: int) -> list[tuple[int, float]]:  # noqa: ANN001
    return [(t, v) for d, t, v in stored(platform) if d == ds]


# -- the topics, without a broker --------------------------------------------------------
def test_topics_decode_into_one_batch_and_name_what_is_unreadable(db: Path) -> None:
    platform = make_platform(db)
    platform.pipeline.start()
    try:
        ids = platform.pipeline.register(msgspec.convert([thing("s1", CITY_HALL, ["pm10", "temperature"])], list[ThingIn])).result()[1]
        pm10 = next(d.id for d in ids if d.key == "s1:pm10")
        t = now_us()
        decoded = decode_messages([
            (st_topic("p/", pm10), json.dumps({"phenomenonTime": iso(t), "result": 40}).encode()),
            ("p/citywall/things/s1/temperature", b'{"t": "%s", "v": 21.5}' % iso(t).encode()),
            ("p/citywall/things/s1/pm10", b"17"),
            ("p/citywall/observations", json.dumps([{"datastream": "s1:pm10", "phenomenonTime": iso(t - US), "result": 3}]).encode()),
            ("p/citywall/nowhere", b"1"),
            (st_topic("p/", pm10), b"not json"),
            ("p/v1.1/Datastreams('x')/Observations", b"{}"),
            ("p/citywall/things/s1/pm10", b'{"v": "high"}'),
        ], platform.registry, t, "p/")
    finally:
        platform.pipeline.stop()
        platform.store.close()
    batch = decoded.batch
    assert batch is not None and len(batch) == 5 and decoded.rows_of == [0, 1, 2, 3, 7]
    assert batch.source == "mqtt"
    assert batch.value[:4].tolist() == [40.0, 21.5, 17.0, 3.0]
    assert batch.t_us[2] == t  # a bare number is taken at the server's time
    assert batch.pre_reason is not None and batch.pre_reason.tolist() == [None, None, None, None, "malformed"]
    assert '"v" must be a number' in batch.pre_detail[4]
    assert batch.payload(1).startswith("p/citywall/things/s1/temperature {")  # shown as mosquitto_sub -v prints it
    assert [(u.index, u.reason) for u in decoded.unreadable] == [(4, "unknown_topic"), (5, "malformed"), (6, "unknown_datastream")]


def test_topic_and_payload_edge_cases_never_raise(db: Path) -> None:
    """A Thing key with '/', an id int() refuses, empty and oversized payloads: each message is
    rows or an Unreadable with its reason; nothing escapes (it would stop the listener and come
    again after every reconnect)."""
    platform = make_platform(db)
    platform.pipeline.start()
    try:
        platform.pipeline.register(msgspec.convert([thing("gw-3/s17", CITY_HALL, ["pm10"])], list[ThingIn])).result()
        t = now_us()
        decoded = decode_messages([
            ("citywall/things/gw-3/s17/pm10", b"12"),  # the quantity is the last level: gw-3/s17:pm10
            ("v1.1/Datastreams(\u00b2)/Observations", b'{"result": 1}'),  # '²'.isdigit() is True, int('²') raises
            ("citywall/things/gw-3/s17/pm10", b""),
            ("citywall/nowhere", b""),  # the topic is what is wrong
            ("citywall/observations", b"[" + b"1," * 600 + b"1]"),
            ("citywall/things//pm10", b"1"),
        ], platform.registry, t, max_payload=1000)
    finally:
        platform.pipeline.stop()
        platform.store.close()
    assert decoded.batch is not None and decoded.rows_of == [0] and decoded.batch.refs == ["gw-3/s17:pm10"]
    assert decoded.batch.ds[0] >= 0  # resolved to the registered Datastream
    assert [(u.index, u.reason) for u in decoded.unreadable] == [
        (1, "unknown_datastream"), (2, "malformed"), (3, "unknown_topic"), (4, "too_large"), (5, "unknown_topic")]
    assert "empty payload" in decoded.unreadable[1].detail


def test_unknown_mqtt_option_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="not an MQTT option"):
        mqtt_from_settings(Settings(mqtt="mqtt://127.0.0.1:1883", mqtt_options={"clientid": "x"}))


def test_a_refused_subscription_is_an_error() -> None:
    """A broker ACL that does not let citywall read a topic answers SUBACK 0x80: the feed must
    say so (down, with the reason), not sit "ok" receiving nothing."""
    import asyncio

    from paho.mqtt.packettypes import PacketTypes
    from paho.mqtt.reasoncodes import ReasonCode

    class Refusing:
        async def subscribe(self, topic: str, **_: Any) -> list[ReasonCode]:
            return [ReasonCode(PacketTypes.SUBACK, identifier=0x80)]

    feed = MqttFeed("mqtt://127.0.0.1:1", protocol="3.1.1")
    with pytest.raises(ConnectionRefusedError, match="refused the subscription to 'v1.1/#'"):
        asyncio.run(feed._subscribe(Refusing()))  # noqa: SLF001


def test_settings_choose_the_broker() -> None:
    broker, feed = mqtt_from_settings(Settings(mqtt="embedded", mqtt_port=18840))
    assert broker is not None and broker.url == "mqtt://127.0.0.1:18840" and feed is not None and feed.protocol == "3.1.1"
    broker, feed = mqtt_from_settings(Settings(mqtt="mqtt://user:secret@broker.example:2883"))
    assert broker is None and feed is not None and (feed.host, feed.port, feed.protocol) == ("broker.example", 2883, "5")
    assert "secret" not in json.dumps(feed.status())  # the wall shows the status: never the password
    assert mqtt_from_settings(Settings(mqtt="off")) == (None, None)
    with pytest.raises(ValueError, match="embedded, off or mqtt://"):
        mqtt_from_settings(Settings(mqtt="http://x"))
    with pytest.raises(ValueError, match="loopback only"):
        EmbeddedBroker(1884, host="0.0.0.0")


# -- through the real Mosquitto ----------------------------------------------------------
def test_sensorthings_topic_creates_observations_via_mosquitto(db: Path) -> None:
    prefix = unique("t-st") + "/"
    with running(db, **mosquitto_options(prefix, unique("cw"))) as (platform, client, _):
        ids = register(client, [thing("s1", CITY_HALL, ["pm10", "no2"])])
        pm10, no2 = ids["s1:pm10"], ids["s1:no2"]
        wait_for("the MQTT listener to connect", lambda: connected(client))
        t = now_us() - 60 * US
        with publisher() as pub:
            pub.send(st_topic(prefix, pm10), {"phenomenonTime": iso(t), "result": 41})
            pub.send(st_topic(prefix, no2), [{"phenomenonTime": iso(t), "result": 0.021}, {"phenomenonTime": iso(t + US), "result": 0.022}])
            pub.send(st_topic(prefix, pm10), {"result": 43})  # no phenomenonTime: the server's time
        wait_for("4 stored rows", lambda: len(stored(platform)) == 4)
        assert rows_of(platform, pm10)[0] == (t, 41.0)
        assert rows_of(platform, pm10)[1][1] == 43.0
        assert [v for _, v in rows_of(platform, no2)] == [0.021, 0.022]
        assert platform.live.last_v[pm10] == 43.0 and platform.live.last_v[no2] == 0.022  # the live state has them
        status = wait_for("all acknowledged", lambda: (s := mqtt_status(client))["acknowledged"] == 3 and s)
        assert status["state"] == "ok" and status["error"] is None and status["rows_accepted"] == 4 and status["simulated"] is False


def test_json_topics_via_mosquitto(db: Path) -> None:
    prefix = unique("t-json") + "/"
    with running(db, **mosquitto_options(prefix, unique("cw"))) as (platform, client, _):
        ids = register(client, [thing("air:11140", CITY_HALL, ["pm10", "pm25"]), thing("road-7", COEX, ["road_speed"], kind="road_link")])
        wait_for("the MQTT listener to connect", lambda: connected(client))
        t = now_us() - 120 * US
        with publisher() as pub:
            pub.send(f"{prefix}citywall/observations", [{"datastream": "air:11140:pm10", "phenomenonTime": iso(t), "result": 30},
                                                        {"datastream": ids["air:11140:pm25"], "phenomenonTime": iso(t), "result": 12}])
            pub.send(f"{prefix}citywall/things/air:11140/pm10", {"t": iso(t + 60 * US, 540), "v": 31})  # +09:00 offset
            pub.send(f"{prefix}citywall/things/road-7/road_speed", "27.5")  # a bare number: now
        wait_for("4 stored rows", lambda: len(stored(platform)) == 4)
        assert rows_of(platform, ids["air:11140:pm10"]) == [(t, 30.0), (t + 60 * US, 31.0)]
        assert rows_of(platform, ids["air:11140:pm25"]) == [(t, 12.0)]
        assert [v for _, v in rows_of(platform, ids["road-7:road_speed"])] == [27.5]
        assert platform.store.quarantined() == []


def test_bad_messages_are_quarantined_with_the_reason(db: Path) -> None:
    prefix = unique("t-bad") + "/"
    with running(db, **mosquitto_options(prefix, unique("cw"))) as (platform, client, _):
        ids = register(client, [thing("s1", CITY_HALL, ["pm10"])])
        wait_for("the MQTT listener to connect", lambda: connected(client))
        t = now_us() - 60 * US
        with publisher() as pub:
            pub.send(st_topic(prefix, ids["s1:pm10"]), b"{not json")
            pub.send(st_topic(prefix, 987654), {"phenomenonTime": iso(t), "result": 5})
            pub.send(f"{prefix}citywall/unknown/topic", b"12")
            pub.send(f"{prefix}citywall/things/s1/pm10", {"t": "yesterday", "v": 3})
            pub.send(f"{prefix}citywall/things/s1/pm10", {"t": iso(t), "v": -5})  # out of the range of pm10
            pub.send(f"{prefix}citywall/observations", b'{"datastream": 1}')  # an object, not an array
            pub.send(f"{prefix}v1.1/Datastreams(\u00b2)/Observations", b'{"result": 1}')  # once stopped the listener, for ever
        wait_for("7 messages acknowledged", lambda: mqtt_status(client)["acknowledged"] == 7)
        quarantined = wait_for("7 quarantined", lambda: len(qs := platform.store.quarantined()) == 7 and qs)
        q = {(r["reason"], r["source"]): r for r in quarantined}
        assert set(q) == {("malformed", f"mqtt:{st_topic(prefix, ids['s1:pm10'])}"), ("unknown_datastream", "mqtt"),
                          ("unknown_topic", f"mqtt:{prefix}citywall/unknown/topic"), ("malformed", "mqtt"), ("out_of_range", "mqtt"),
                          ("malformed", f"mqtt:{prefix}citywall/observations"),
                          ("unknown_datastream", f"mqtt:{prefix}v1.1/Datastreams(\u00b2)/Observations")}
        assert mqtt_status(client)["connects"] == 1
        assert q[("malformed", f"mqtt:{st_topic(prefix, ids['s1:pm10'])}")]["payload"] == "{not json"
        unknown = q[("unknown_datastream", "mqtt")]
        assert unknown["datastream"] == "987654" and unknown["payload"].startswith(st_topic(prefix, 987654) + " ")
        assert "citywall reads no topic" in q[("unknown_topic", f"mqtt:{prefix}citywall/unknown/topic")]["detail"]
        assert "isoformat" in q[("malformed", "mqtt")]["detail"] or "yesterday" in q[("malformed", "mqtt")]["detail"]
        assert q[("malformed", "mqtt")]["datastream"] == "s1:pm10"
        assert stored(platform) == []


def test_qos1_no_loss_each_message_stored_once(db: Path) -> None:
    prefix = unique("t-qos") + "/"
    n = 600
    with running(db, **mosquitto_options(prefix, unique("cw"))) as (platform, client, _):
        ids = register(client, [thing(f"s{k}", CITY_HALL, ["pm10"]) for k in range(6)])
        wait_for("the MQTT listener to connect", lambda: connected(client))
        t0 = now_us() - 3600 * US
        with publisher() as pub:
            infos = [pub.send(st_topic(prefix, ids[f"s{i % 6}:pm10"]), {"phenomenonTime": iso(t0 + (i // 6) * US), "result": i % 100}, wait=False)
                     for i in range(n)]
            for info in infos:
                info.wait_for_publish(30)
        rows = wait_for(f"{n} stored rows", lambda: len(r := stored(platform)) == n and r)
        assert len(set(rows)) == n
        assert wait_for("all acknowledged", lambda: mqtt_status(client)["acknowledged"] == n)
        assert platform.store.quarantined() == []


@pytest.mark.parametrize("protocol", ["5", "3.1.1"])
def test_retained_messages_are_not_new_observations(db: Path, protocol: str) -> None:
    """A retained message is the broker's copy of an earlier publish, sent again on every
    subscription: a bare number in it would be stored again at the server's time on each
    reconnect. MQTT 5: citywall asks not to get them; 3.1.1: they are quarantined as "retained"."""
    prefix = unique("t-retain") + "/"
    with publisher() as pub:
        info = pub.client.publish(f"{prefix}citywall/things/s1/pm10", "33", qos=1, retain=True)
        info.wait_for_publish(10)
    try:
        options = mosquitto_options(prefix, unique("cw"))
        options["mqtt_options"]["protocol"] = protocol
        with running(db, **options) as (platform, client, _):
            register(client, [thing("s1", CITY_HALL, ["pm10"])])
            wait_for("the MQTT listener to connect", lambda: connected(client))
            with publisher() as pub:
                pub.send(f"{prefix}citywall/things/s1/pm10", "34")  # live: stored
            wait_for("the live row", lambda: len(stored(platform)) == 1)
            if protocol == "3.1.1":
                q = wait_for("the retained message in the quarantine", lambda: platform.store.quarantined())
                assert [(r["reason"], r["source"], r["payload"]) for r in q] == [("retained", f"mqtt:{prefix}citywall/things/s1/pm10", "33")]
            else:
                assert wait_for("both acknowledged", lambda: mqtt_status(client)["acknowledged"] >= 1)
                assert platform.store.quarantined() == [] and mqtt_status(client)["received"] == 1
            assert [v for _, _, v in stored(platform)] == [34.0]
    finally:
        with publisher() as pub:
            pub.client.publish(f"{prefix}citywall/things/s1/pm10", b"", qos=1, retain=True).wait_for_publish(10)  # clear it


def test_a_slow_store_pauses_reading_instead_of_queueing_without_bound(db: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Backpressure: while commits are slow, what waits to be decoded stays under the high-water
    mark (the socket is not read; the broker holds the rest), and every message is still stored once."""
    from citywall.mqtt import listener

    monkeypatch.setattr(listener, "INBOX_HIGH_BYTES", 4_000)
    monkeypatch.setattr(listener, "INBOX_LOW_BYTES", 1_000)
    monkeypatch.setattr(listener, "MAX_PENDING", 1)
    prefix = unique("t-slow") + "/"
    n = 1500
    with running(db, **mosquitto_options(prefix, unique("cw"))) as (platform, client, _):
        ds = register(client, [thing("s1", CITY_HALL, ["pm10"])])["s1:pm10"]
        wait_for("the MQTT listener to connect", lambda: connected(client))
        ingest = platform.ingest
        biggest = [0]

        async def slow_ingest(batch):  # noqa: ANN001, ANN202
            import asyncio

            feed = platform.feeds[-1]
            biggest[0] = max(biggest[0], feed._inbox_bytes)  # noqa: SLF001
            await asyncio.sleep(0.05)
            return await ingest(batch)

        platform.ingest = slow_ingest
        t0 = now_us() - 3600 * US
        with publisher() as pub:
            infos = [pub.send(st_topic(prefix, ds), {"phenomenonTime": iso(t0 + i * US), "result": i % 100}, wait=False) for i in range(n)]
            for info in infos:
                info.wait_for_publish(30)
        rows = wait_for(f"{n} stored rows", lambda: len(r := stored(platform)) == n and r, timeout=120)
        assert len(set(rows)) == n and platform.store.quarantined() == []
        status = wait_for("all acknowledged", lambda: (s := mqtt_status(client))["acknowledged"] == n and s)
        assert status["read_pauses"] >= 1 and status["reading_paused"] is False and status["connects"] == 1
        assert biggest[0] < 4_000 + 300 * 1024  # the mark plus at most one socket read (256 KiB) beyond it


def test_messages_queued_while_citywall_is_down_and_unacknowledged_ones_come_again(tmp_path: Path) -> None:
    """The persistent session: what the broker holds for citywall's client id is delivered on the
    next start; a message whose commit failed was never acknowledged and is delivered again."""
    prefix, cw = unique("t-session") + "/", unique("cw")
    db = tmp_path / "t.duckdb"
    t = now_us() - 600 * US
    with running(db, **mosquitto_options(prefix, cw)) as (platform, client, _):
        ids = register(client, [thing("s1", CITY_HALL, ["pm10"])])
        ds = ids["s1:pm10"]
        wait_for("the MQTT listener to connect", lambda: connected(client))
        platform.pipeline.stop()  # the store can no longer commit: nothing may be acknowledged
        with publisher() as pub:
            pub.send(st_topic(prefix, ds), {"phenomenonTime": iso(t), "result": 1})
            status = wait_for("the refused commit", lambda: (s := mqtt_status(client))["error"] and "refused a commit" in s["error"] and s)
        assert status["state"] == "down" and status["acknowledged"] == 0
    # citywall is down; the broker queues for its session
    with publisher() as pub:
        for k in range(2, 12):
            pub.send(st_topic(prefix, ds), {"phenomenonTime": iso(t + k * US), "result": k})
    with running(db, **mosquitto_options(prefix, cw)) as (platform, client, _):
        rows = wait_for("11 stored rows", lambda: len(r := stored(platform)) == 11 and r)
        assert [v for _, _, v in rows] == [1.0, *map(float, range(2, 12))]
        assert mqtt_status(client)["session_present"] is True  # the broker kept the session (and its queue) for the client id
        assert platform.store.quarantined() == []


def _mosquitto_pid() -> int | None:
    try:
        pid = int(MOSQUITTO_PID_FILE.read_text().strip())
        os.kill(pid, 0)
        return pid
    except (OSError, ValueError):
        return None


def _start_mosquitto() -> None:
    if _mosquitto_pid() is None:
        subprocess.run(MOSQUITTO_CMD, check=True, timeout=30)
    wait_for("Mosquitto to listen on 1883", lambda: _can_connect(MOSQUITTO[1]))


def _can_connect(port: int) -> bool:
    import socket

    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


def test_mosquitto_restart_feed_goes_down_and_recovers_without_loss(db: Path) -> None:
    """Stop the real Mosquitto while citywall runs: the feed says "down" with the error, comes back
    by itself when Mosquitto is back, and every message whose publish the broker acknowledged is
    stored: before the stop, published by a persistent client during the outage (paho holds and
    sends it on reconnect), and after."""
    prefix = unique("t-restart") + "/"
    pid = _mosquitto_pid()
    assert pid is not None, "Mosquitto is not running on 127.0.0.1:1883 (start it: mosquitto -d -c /etc/mosquitto/mosquitto.conf)"
    try:
        with running(db, **mosquitto_options(prefix, unique("cw"))) as (platform, client, _):
            ds = register(client, [thing("s1", CITY_HALL, ["pm10"])])["s1:pm10"]
            wait_for("the MQTT listener to connect", lambda: connected(client))
            t = now_us() - 3600 * US
            durable = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id=unique("test-pub-durable"), clean_session=False, protocol=paho.MQTTv311)
            durable.reconnect_delay_set(0.2, 1)
            acked: set[int] = set()  # mids the broker acknowledged (PUBACK), whenever that happened
            durable.on_publish = lambda _c, _u, mid, _rc, _p: acked.add(mid)
            durable.connect("127.0.0.1", MOSQUITTO[1])
            durable.loop_start()
            try:
                for k in range(5):
                    durable.publish(st_topic(prefix, ds), json.dumps({"phenomenonTime": iso(t + k * US), "result": k}), qos=1).wait_for_publish(10)
                wait_for("5 rows before the stop", lambda: len(stored(platform)) == 5)

                os.kill(pid, signal.SIGTERM)
                wait_for("Mosquitto to stop", lambda: _mosquitto_pid() is None and not _can_connect(MOSQUITTO[1]))
                down = wait_for("the feed to say down", lambda: (s := mqtt_status(client))["state"] == "down" and s)
                assert down["error"] and down["down_since"] and down["running"] is True
                during = [durable.publish(st_topic(prefix, ds), json.dumps({"phenomenonTime": iso(t + k * US), "result": k}), qos=1)
                          for k in range(5, 10)]

                _start_mosquitto()
                up = wait_for("the feed to reconnect", lambda: connected(client), timeout=60)
                assert up["error"] is None and up["down_since"] is None and up["connects"] >= 2 and up["session_present"] is True
                # paho held these while the broker was away and sends them on reconnect
                wait_for("the broker to acknowledge the messages published during the outage", lambda: {i.mid for i in during} <= acked)
                for k in range(10, 15):
                    durable.publish(st_topic(prefix, ds), json.dumps({"phenomenonTime": iso(t + k * US), "result": k}), qos=1).wait_for_publish(10)
                rows = wait_for("all 15 rows", lambda: len(r := stored(platform)) == 15 and r, timeout=60)
                assert [v for _, _, v in rows] == [float(k) for k in range(15)]
            finally:
                durable.disconnect()
                durable.loop_stop()
    finally:
        _start_mosquitto()  # whatever happened, leave Mosquitto running for everyone else


# -- the embedded broker -----------------------------------------------------------------
def test_embedded_broker_on_loopback(db: Path) -> None:
    port = free_port()
    with running(db, mqtt="embedded", mqtt_port=port) as (platform, client, _):
        ids = register(client, [thing("s1", CITY_HALL, ["pm10"])])
        ds = ids["s1:pm10"]
        status = wait_for("the MQTT listener to connect", lambda: connected(client))
        assert status["broker"] == f"mqtt://127.0.0.1:{port}" and status["protocol"] == "3.1.1"
        root = client.get("/sta/v1.1").json()["serverSettings"]  # the SensorThings service says where to publish
        assert root["mqtt"]["endpoints"] == [f"mqtt://127.0.0.1:{port}"]
        assert "http://www.opengis.net/spec/iot_sensing/1.1/req/create-observations-via-mqtt/observations-creation" in root["conformance"]
        t = now_us() - 60 * US
        n = 200
        with publisher(port) as pub:
            pub.send(st_topic("", ds), {"phenomenonTime": iso(t), "result": 7})
            pub.send("citywall/things/s1/pm10", {"t": iso(t + US), "v": 8})
            pub.send("citywall/observations", [{"datastream": "s1:pm10", "phenomenonTime": iso(t + 2 * US), "result": 9}])
            pub.send("citywall/nowhere", b"1")
            infos = [pub.send(st_topic("", ds), {"phenomenonTime": iso(t + (10 + i) * US), "result": i % 50}, wait=False) for i in range(n)]
            for info in infos:
                info.wait_for_publish(30)
        rows = wait_for(f"{n + 3} rows", lambda: len(r := stored(platform)) == n + 3 and r)
        assert rows[:3] == [(ds, t, 7.0), (ds, t + US, 8.0), (ds, t + 2 * US, 9.0)]
        q = wait_for("the unknown topic in the quarantine", lambda: platform.store.quarantined())
        assert [(r["reason"], r["source"]) for r in q] == [("unknown_topic", "mqtt:citywall/nowhere")]
    assert not _can_connect(port)  # the broker stopped with the platform


def test_embedded_broker_port_in_use_is_a_clear_error(db: Path) -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        with pytest.raises(OSError, match=f"cannot listen on 127.0.0.1:{port}"):
            with running(db, mqtt="embedded", mqtt_port=port):
                pass


def test_citywall_up_says_in_one_line_that_the_embedded_port_is_taken(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import socket

    from citywall.cli import main

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        rc = main(["up", "--feed", "none", "--port", str(free_port()), "--db", str(tmp_path / "t.duckdb"), "--mqtt-port", str(port)])
    assert rc == 2
    assert f"citywall up: the embedded MQTT broker cannot listen on 127.0.0.1:{port}" in capsys.readouterr().err


def test_feed_is_down_with_the_error_while_no_broker_answers(db: Path) -> None:
    port = free_port()  # nothing listens there
    with running(db, mqtt=f"mqtt://127.0.0.1:{port}", mqtt_options={"client_id": unique("cw")}) as (platform, client, _):
        status = wait_for("the feed to say down", lambda: (s := mqtt_status(client))["state"] == "down" and s)
        assert status["running"] and status["down_since"] and status["error"] and status["last_ok"] is None
        assert isinstance(platform.feeds[-1], MqttFeed)


def test_session_and_its_queue_survive_a_mosquitto_restart(tmp_path: Path) -> None:
    """With `persistence true` (as /etc/mosquitto/mosquitto.conf has it) Mosquitto writes its sessions
    and queued messages to disk when it stops: what it queued for citywall while citywall was down
    is still delivered after Mosquitto restarted in between."""
    prefix, cw = unique("t-persist") + "/", unique("cw")
    db = tmp_path / "t.duckdb"
    t = now_us() - 600 * US
    with running(db, **mosquitto_options(prefix, cw)) as (platform, client, _):
        ds = register(client, [thing("s1", CITY_HALL, ["pm10"])])["s1:pm10"]
        wait_for("the MQTT listener to connect", lambda: connected(client))
    with publisher() as pub:
        for k in range(5):
            pub.send(st_topic(prefix, ds), {"phenomenonTime": iso(t + k * US), "result": k})
    pid = _mosquitto_pid()
    assert pid is not None
    try:
        os.kill(pid, signal.SIGTERM)  # a clean stop: Mosquitto saves its database
        wait_for("Mosquitto to stop", lambda: _mosquitto_pid() is None and not _can_connect(MOSQUITTO[1]))
    finally:
        _start_mosquitto()
    with running(db, **mosquitto_options(prefix, cw)) as (platform, client, _):
        rows = wait_for("the 5 queued rows", lambda: len(r := stored(platform)) == 5 and r, timeout=60)
        assert [v for _, _, v in rows] == [0.0, 1.0, 2.0, 3.0, 4.0]

"""Incidents, alarms, escalation, replay and access control through the public API of a real platform."""

from __future__ import annotations

import http.server
import itertools
import json
import threading
from pathlib import Path
from typing import Any

import pytest
from conftest import CITY_HALL, COEX, FIXED_NOW_US, GANGNAM_GU, JUNG_GU, MINUTE_US, credential, obs, post, register, running, thing
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from citywall.alerts.signal import Signal
from citywall.live.replay import picture_at

NOW_MS = FIXED_NOW_US // 1000


def fire(client: Any, where: tuple[float, float] = CITY_HALL, severity: str = "high", **extra: Any) -> dict:
    r = client.post("/api/incidents", json={"kind": "fire", "lon": where[0], "lat": where[1], "severity": severity, **extra})
    assert r.status_code == 201, r.text
    return r.json()


def signal(rule: str, subject: str, active: bool, at_ms: int, gu: str | None = JUNG_GU, severity: str = "high") -> Signal:
    return Signal(rule=rule, subject=subject, active=active, at_ms=at_ms, severity=severity, title_ko="시험", title_en="test", gu=gu)


def test_an_incident_is_opened_located_moved_forward_and_survives_a_restart(db: Path) -> None:
    with running(db, now_us=FIXED_NOW_US) as (platform, client, clock):
        inc = fire(client, title="상가 화재", address="세종대로 110")
        assert (inc["kind"], inc["step"], inc["gu"], inc["severity"], inc["active"]) == ("fire", "occurred", JUNG_GU, "high", True)
        assert inc["unit"] == platform.facilities.fire_station_for(JUNG_GU)["name"]  # the gu's fire station by default
        assert inc["dong"] and inc["dong"].startswith(JUNG_GU)
        clock.advance(MINUTE_US)
        moved = client.post(f"/api/incidents/{inc['id']}/transitions", json={"step": "dispatched", "note": "펌프차 2대"})
        assert moved.status_code == 200, moved.text
        assert [s["step"] for s in moved.json()["timeline"]] == ["occurred", "dispatched"]
        assert moved.json()["timeline"][1]["note"] == "펌프차 2대"
        # No going back, no skipping what a fire may not skip: refused with the reason, nothing changes.
        back = client.post(f"/api/incidents/{inc['id']}/transitions", json={"step": "occurred"})
        assert back.status_code == 409 and "cannot go back" in back.json()["detail"]
        skip = client.post(f"/api/incidents/{inc['id']}/transitions", json={"step": "extinguished"})
        assert skip.status_code == 409 and "arrived" in skip.json()["detail"]
        assert client.get("/api/incidents").json()["counts"]["fire"] == 1
        key_actor = moved.json()["timeline"][1]["by"]
        assert key_actor.startswith("key:")
    with running(db, now_us=FIXED_NOW_US + 2 * MINUTE_US) as (platform, client, _):
        again = client.get(f"/api/incidents/{inc['id']}").json()
        assert [s["step"] for s in again["timeline"]] == ["occurred", "dispatched"]
        audit = platform.audit.query(limit=100)
        actions = [(a["action"], a["target"]) for a in audit]
        assert ("incident.open", inc["id"]) in actions and ("incident.advance", inc["id"]) in actions
        assert all(a["actor"] == key_actor for a in audit if a["target"] == inc["id"])


def test_early_close_needs_a_note_and_a_closed_case_leaves_the_map(db: Path) -> None:
    with running(db, now_us=FIXED_NOW_US) as (platform, client, clock):
        inc = fire(client)
        clock.advance(MINUTE_US)
        bare = client.post(f"/api/incidents/{inc['id']}/transitions", json={"step": "closed"})
        assert bare.status_code == 409 and "note" in bare.json()["detail"]
        closed = client.post(f"/api/incidents/{inc['id']}/transitions", json={"step": "closed", "note": "오인 신고 (false alarm)"})
        assert closed.status_code == 200 and closed.json()["active"] is False
        assert client.get("/api/incidents").json()["items"] == []
        assert [i["id"] for i in client.get("/api/incidents?recent=true").json()["items"]] == [inc["id"]]
        assert client.get("/api/incidents").json()["counts"]["fire"] == 0


def test_a_case_sent_twice_by_a_feed_is_opened_once(db: Path) -> None:
    with running(db, now_us=FIXED_NOW_US) as (_, client, _):
        first = fire(client, external_id="119-2025-000123")
        again = client.post("/api/incidents", json={"kind": "fire", "lon": CITY_HALL[0], "lat": CITY_HALL[1], "external_id": "119-2025-000123"})
        assert again.status_code == 200 and again.json()["id"] == first["id"] and again.json()["duplicate"] is True
        assert len(client.get("/api/incidents").json()["items"]) == 1


@pytest.mark.parametrize(("body", "words"), [
    ({"kind": "fire", "lon": 129.07, "lat": 35.18}, "outside"),  # Busan
    ({"kind": "volcano", "lon": CITY_HALL[0], "lat": CITY_HALL[1]}, "unknown incident kind"),
    ({"kind": "fire", "lon": CITY_HALL[0], "lat": CITY_HALL[1], "severity": "apocalyptic"}, "unknown severity"),
    ({"kind": "fire", "lon": CITY_HALL[0]}, "lat"),
    ({"kind": "fire", "lon": CITY_HALL[0], "lat": CITY_HALL[1], "colour": "red"}, "colour"),
])
def test_bad_incidents_are_refused_with_the_reason(db: Path, body: dict, words: str) -> None:
    with running(db, now_us=FIXED_NOW_US) as (_, client, _):
        r = client.post("/api/incidents", json=body)
        assert r.status_code == 422 and words in r.json()["detail"], r.text


def test_incident_detail_has_nearby_facilities_and_related_alarms(db: Path) -> None:
    with running(db, now_us=FIXED_NOW_US) as (platform, client, _):
        client.portal.call(platform.alarms.apply, [signal("pm25_advisory", f"gu:{JUNG_GU}", True, NOW_MS - 60_000)])
        client.portal.call(platform.alarms.apply, [signal("pm25_advisory", f"gu:{GANGNAM_GU}", True, NOW_MS - 60_000, gu=GANGNAM_GU)])
        inc = fire(client)
        detail = client.get(f"/api/incidents/{inc['id']}?radius_m=1500").json()
        assert detail["facilities_example"] is True
        cameras = detail["nearby"].get("cctv", [])
        assert cameras and all(c["distance_m"] <= 1500 for c in cameras)
        assert [c["distance_m"] for c in cameras] == sorted(c["distance_m"] for c in cameras)
        assert [a["gu"] for a in detail["related_alarms"]] == [JUNG_GU]
        assert client.get("/api/incidents/INC-nope").status_code == 404


def test_alarm_lifecycle_ack_assign_comment_and_situations(db: Path) -> None:
    with running(db, now_us=FIXED_NOW_US) as (platform, client, clock):
        operator = credential(platform, "operator", "kim")
        book = platform.alarms
        client.portal.call(book.apply, [signal("crowd", "ds:1", True, NOW_MS), signal("road", "ds:2", True, NOW_MS + 60_000)])
        client.portal.call(book.apply, [signal("road", "ds:9", True, NOW_MS, gu=GANGNAM_GU)])
        alarms = client.get("/api/alarms").json()["items"]
        assert {a["state"] for a in alarms} == {"active_unacked"}
        jung = [a for a in alarms if a["gu"] == JUNG_GU]
        assert len({a["situation"] for a in jung}) == 1  # same gu, minutes apart: one situation
        situations = client.get("/api/situations").json()
        assert sorted(len(s["alarms"]) for s in situations) == [1, 2]
        crowd = next(a for a in alarms if a["rule"] == "crowd")
        # The same rule and subject raising again while open is the same alarm.
        client.portal.call(book.apply, [signal("crowd", "ds:1", True, NOW_MS + 120_000)])
        assert len(client.get("/api/alarms").json()["items"]) == 3
        acked = client.post(f"/api/alarms/{crowd['id']}/ack", json={"note": "CCTV 확인"}, headers=operator)
        assert acked.status_code == 200 and acked.json()["state"] == "active_acked" and acked.json()["acked_by"] == "kim-operator"
        assert client.post(f"/api/alarms/{crowd['id']}/ack", json={}, headers=operator).status_code == 409
        assert client.post(f"/api/alarms/{crowd['id']}/assign", json={"to": "lee"}, headers=operator).json()["assigned_to"] == "lee"
        commented = client.post(f"/api/alarms/{crowd['id']}/comment", json={"text": "경찰 협조 요청"}, headers=operator).json()
        assert commented["comments"][0]["text"] == "경찰 협조 요청"
        assert client.post(f"/api/alarms/{crowd['id']}/comment", json={"text": "  "}, headers=operator).status_code == 422
        # Cleared after the ack: closed, off the list. Cleared before any ack: stays until acknowledged.
        client.portal.call(book.apply, [signal("crowd", "ds:1", False, NOW_MS + 180_000), signal("road", "ds:2", False, NOW_MS + 180_000)])
        left = {a["rule"]: a for a in client.get("/api/alarms").json()["items"] if a["gu"] == JUNG_GU}
        assert set(left) == {"road"} and left["road"]["state"] == "cleared_unacked"
        assert client.post(f"/api/alarms/{left['road']['id']}/ack", json={}, headers=operator).json()["state"] == "cleared_acked"
        assert [a["gu"] for a in client.get("/api/alarms").json()["items"]] == [GANGNAM_GU]
        # The closed alarm keeps its whole story.
        story = client.get(f"/api/alarms/{crowd['id']}").json()
        assert [h["event"] for h in story["history"]] == ["raised", "acked", "assigned", "commented", "cleared", "closed"]
        actions = {a["action"] for a in platform.audit.query(limit=50, actor="kim-operator")}
        assert actions == {"alarm.ack", "alarm.assign", "alarm.comment"}


class _Hook(http.server.BaseHTTPRequestHandler):
    received: list[dict] = []

    def do_POST(self) -> None:  # noqa: N802
        self.received.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


def test_an_unacknowledged_critical_alarm_escalates_once_to_the_webhook(db: Path) -> None:
    hook = http.server.HTTPServer(("127.0.0.1", 0), _Hook)
    threading.Thread(target=hook.serve_forever, daemon=True).start()
    _Hook.received = []
    try:
        url = f"http://127.0.0.1:{hook.server_port}/page-duty"
        with running(db, now_us=FIXED_NOW_US, escalate_after_s=300, escalation_webhook=url) as (platform, client, clock):
            book = platform.alarms
            client.portal.call(book.apply, [signal("pm10_warning", f"gu:{JUNG_GU}", True, NOW_MS, severity="critical"),
                                            signal("pm10_advisory", f"gu:{GANGNAM_GU}", True, NOW_MS, gu=GANGNAM_GU, severity="high")])
            clock.advance(299 * 1_000_000)
            assert client.portal.call(book.escalate_due) == []
            clock.advance(2 * 1_000_000)
            escalated = client.portal.call(book.escalate_due)
            assert [a["rule"] for a in escalated] == ["pm10_warning"] and escalated[0]["escalated_at_ms"] is not None
            assert client.portal.call(book.escalate_due) == []  # once
            assert [r["alarm"]["rule"] for r in _Hook.received] == ["pm10_warning"]
            assert any(a["action"] == "alarm.escalate" for a in platform.audit.query(limit=20))
    finally:
        hook.shutdown()


def test_replay_rebuilds_values_incidents_and_alarms_at_a_past_moment(db: Path) -> None:
    with running(db, now_us=FIXED_NOW_US) as (platform, client, clock):
        ids = register(client, [thing("air:a", CITY_HALL, [{"quantity": "pm25", "interval_s": 3600}])])
        ds = ids["air:a:pm25"]
        post(client, [obs(ds, FIXED_NOW_US - 30 * MINUTE_US, 20.0)])
        t_opened = FIXED_NOW_US
        inc = fire(client)
        client.portal.call(platform.alarms.apply, [signal("crowd", "ds:1", True, NOW_MS)])
        clock.advance(10 * MINUTE_US)
        post(client, [obs(ds, FIXED_NOW_US + 5 * MINUTE_US, 80.0)])
        client.post(f"/api/incidents/{inc['id']}/transitions", json={"step": "closed", "note": "자체 진화"})
        client.portal.call(platform.alarms.apply, [signal("crowd", "ds:1", False, NOW_MS + 10 * 60_000)])
        clock.advance(10 * MINUTE_US)
        then = picture_at(platform, t_opened + MINUTE_US)
        assert [i["id"] for i in then["incidents"]] == [inc["id"]] and then["incidents"][0]["step"] == "occurred"
        assert [a["state"] for a in then["alarms"]] == ["active_unacked"]
        assert dict(zip(then["datastreams"]["ids"], then["datastreams"]["v"]))[ds] == 20.0
        now = client.get(f"/api/replay?at={(FIXED_NOW_US + 20 * MINUTE_US) // 1000}").json()
        assert now["incidents"] == [] and [a["state"] for a in now["alarms"]] == ["cleared_unacked"]
        assert dict(zip(now["datastreams"]["ids"], now["datastreams"]["v"]))[ds] == 80.0
        assert client.get(f"/api/replay?at={(FIXED_NOW_US + 3600 * 1_000_000) // 1000}").status_code == 400


# -- access control: every route that changes state, tried with every kind of caller ------------
OPEN_TO_ALL = {("POST", "/api/login"), ("POST", "/api/logout")}
# What a feed key may do; everything else needs a person with a role.
FEED_MAY = {("POST", "/api/observations"), ("POST", "/api/things"), ("POST", "/api/incidents"), ("POST", "/api/incidents/{incident_id}/transitions"),
            ("POST", "/sta/v1.1/Observations"), ("POST", "/sta/v1.1/Datastreams({datastream_id})/Observations")}
ADMIN_ONLY_PREFIXES = ("/api/users", "/api/keys", "/api/rules")


def _state_changing_routes(app: Any) -> list[tuple[str, str]]:
    """Every POST, PUT, PATCH and DELETE the app serves, from its OpenAPI document (which lists the
    routes of included routers too)."""
    return [(method.upper(), path) for path, ops in app.openapi()["paths"].items() for method in ops
            if method.upper() in ("POST", "PUT", "PATCH", "DELETE")]


def test_no_state_changing_endpoint_works_without_authorisation(db: Path) -> None:
    with running(db, now_us=FIXED_NOW_US, anonymous=True) as (platform, client, _):
        routes = _state_changing_routes(client.app)
        assert ("POST", "/api/observations") in routes and ("PUT", "/api/rules") in routes and len(routes) >= 15
        assert ("POST", "/api/owlbus/plan") in routes  # starting a plan run needs an operator (not a feed key, not a viewer)
        callers = {"anonymous": {}, "bad": {"Authorization": "Bearer not-a-session"}, "viewer": credential(platform, "viewer", "v"),
                   "feed": credential(platform, "feed", "f"), "operator": credential(platform, "operator", "o")}
        for method, path in routes:
            if (method, path) in OPEN_TO_ALL:
                continue
            url = path.replace("{incident_id}", "INC-x").replace("{alarm_id}", "ALM-x").replace("{name}", "v-viewer").replace("{key_id}", "x")
            for who, headers in callers.items():
                # A body the endpoint would accept, so a refusal is the credential's and not the body's.
                body = b'{"password": "a long enough password"}' if path.endswith("/password") else b"{}"
                r = client.request(method, url, headers={**headers, "content-type": "application/json"}, content=body)
                if who in ("anonymous", "bad"):
                    assert r.status_code == 401, (who, method, path, r.status_code)
                elif who == "viewer":  # a viewer changes nothing (not even their password without the present one)
                    assert r.status_code == 403, (who, method, path, r.status_code)
                elif who == "feed" and (method, path) not in FEED_MAY:
                    assert r.status_code == 403, (who, method, path, r.status_code)
                elif who == "operator" and path.startswith(ADMIN_ONLY_PREFIXES):
                    assert r.status_code == 403, (who, method, path, r.status_code)
                else:
                    assert r.status_code not in (401, 403), (who, method, path, r.status_code, r.text)
        # Reading stays open: a wall in read-only mode needs no login.
        for path in ("/api/snapshot", "/api/incidents", "/api/alarms", "/api/situations", "/api/rules", "/api/operations", "/api/facilities"):
            assert client.get(path).status_code == 200, path


# -- the alarm state machine, property-based -------------------------------------------------------
_RUNS = itertools.count()
ACTIONS = st.lists(st.tuples(st.sampled_from(["raise", "clear", "ack"]), st.integers(0, 2)), min_size=1, max_size=25)


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> Any:
    with running(tmp_path_factory.mktemp("alarms") / "t.duckdb", now_us=FIXED_NOW_US) as ctx:
        yield ctx


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(actions=ACTIONS)
def test_alarm_states_follow_the_lifecycle(shared: Any, actions: list[tuple[str, int]]) -> None:
    """Whatever the order of raises, clears and acks: at most one open alarm per rule and subject, it is
    off the list exactly when cleared and acknowledged, and its history only ever grows."""
    platform, client, clock = shared
    book = platform.alarms
    rule = f"r-{next(_RUNS)}"  # each example its own rule: the platform is shared between examples
    model: dict[int, list[dict[str, bool]]] = {0: [], 1: [], 2: []}  # the open alarms of each subject, oldest first

    def opened(subject: int) -> list[Any]:
        return sorted((a for a in book.alarms.values() if a.rule == rule and a.subject == f"s{subject}" and a.open),
                      key=lambda a: a.id)

    for action, subject in actions:
        clock.advance(1_000_000)
        at_ms = clock.now_us // 1000
        mine = model[subject]
        if action in ("raise", "clear"):
            client.portal.call(book.apply, [signal(rule, f"s{subject}", action == "raise", at_ms)])
            active = [m for m in mine if m["active"]]
            if action == "raise" and not active:
                mine.append({"active": True, "acked": False})
            elif action == "clear" and active:
                active[0]["active"] = False
        else:
            unacked = [a for a in opened(subject) if not a.acked]
            if unacked:
                client.portal.call(book.ack, unacked[-1].id, "tester")
                [m for m in mine if not m["acked"]][-1]["acked"] = True
            else:
                with pytest.raises((KeyError, ValueError)):
                    client.portal.call(book.ack, "ALM-none", "tester")
        model[subject] = mine = [m for m in mine if m["active"] or not m["acked"]]
        now_open = opened(subject)
        assert len([a for a in now_open if a.active]) <= 1
        assert [(a.active, a.acked) for a in now_open] == [(m["active"], m["acked"]) for m in mine]
        assert all(len(a.history) >= 1 and a.history[0]["event"] == "raised" for a in now_open)


def test_after_a_restart_alarms_no_rule_holds_are_cleared_and_held_ones_kept(db: Path) -> None:
    with running(db, now_us=FIXED_NOW_US) as (platform, client, _):
        client.portal.call(platform.alarms.apply, [signal("crowd", "ds:1", True, NOW_MS), signal("road", "ds:2", True, NOW_MS)])
    with running(db, now_us=FIXED_NOW_US + 3600 * 1_000_000) as (platform, client, _):
        assert {a["rule"] for a in client.get("/api/alarms").json()["items"]} == {"crowd", "road"}  # the book survives a restart
        cleared = client.portal.call(platform.alarms.reconcile, {("road", "ds:2")}, NOW_MS + 1)
        assert [a["rule"] for a in cleared] == ["crowd"] and cleared[0]["state"] == "cleared_unacked"
        assert {a["rule"]: a["state"] for a in client.get("/api/alarms").json()["items"]} == {"crowd": "cleared_unacked", "road": "active_unacked"}


def test_an_alarm_that_ended_long_before_it_arrived_is_kept_but_not_left_to_acknowledge(db: Path) -> None:
    """A backfill or a gateway's old buffer can raise and clear an alarm hours back: it is stored (and
    replayed), but nobody is asked to acknowledge what was over before anyone could see it."""
    with running(db, now_us=FIXED_NOW_US) as (platform, client, _):
        hours_ago = NOW_MS - 3 * 3600_000
        client.portal.call(platform.alarms.apply, [signal("crowd", "ds:1", True, hours_ago), signal("crowd", "ds:1", False, hours_ago + 600_000),
                                                   signal("road", "ds:2", True, NOW_MS - 120_000), signal("road", "ds:2", False, NOW_MS - 60_000)])
        open_now = {a["rule"]: a["state"] for a in client.get("/api/alarms").json()["items"]}
        assert open_now == {"road": "cleared_unacked"}
        then = picture_at(platform, (hours_ago + 60_000) * 1000)
        assert [a["rule"] for a in then["alarms"]] == ["crowd"]


RULES = """
version: 1
rules:
  - id: pm25_high
    kind: threshold
    title: {ko: 초미세먼지 높음, en: PM2.5 high}
    category: air
    severity: high
    select: {quantity: pm25, kind: air_station}
    above: 100
    clear_at: 50
"""


def _wait(predicate: Any, timeout: float = 5.0) -> Any:
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    return predicate()


def test_rules_run_on_the_live_stream_and_a_late_reading_does_not_run_them_backwards(db: Path, tmp_path: Path) -> None:
    rules = tmp_path / "rules.yaml"
    rules.write_text(RULES, encoding="utf-8")
    with running(db, now_us=FIXED_NOW_US, rules=str(rules)) as (platform, client, _):
        ds = register(client, [thing("air:a", CITY_HALL, [{"quantity": "pm25", "interval_s": 3600}])])["air:a:pm25"]
        post(client, [obs(ds, FIXED_NOW_US - 10 * MINUTE_US, 120.0)])
        alarms = _wait(lambda: client.get("/api/alarms").json()["items"])
        assert [(a["rule"], a["state"], a["gu"], a["value"]) for a in alarms] == [("pm25_high", "active_unacked", JUNG_GU, 120.0)]
        post(client, [obs(ds, FIXED_NOW_US - 20 * MINUTE_US, 10.0)])  # late: older than the reading the rule saw
        post(client, [obs(ds, FIXED_NOW_US - 5 * MINUTE_US, 80.0)])  # above the clearing line: still holds
        _wait(lambda: False, 0.5)
        assert [a["state"] for a in client.get("/api/alarms").json()["items"]] == ["active_unacked"]
        post(client, [obs(ds, FIXED_NOW_US - 1 * MINUTE_US, 40.0)])
        assert _wait(lambda: [a["state"] for a in client.get("/api/alarms").json()["items"]] == ["cleared_unacked"])
        # An admin replaces the rules: stored with an audit row saying what changed; the rule's alarm is cleared.
        admin = credential(platform, "admin", "root")
        bad = client.put("/api/rules", content=RULES.replace("above: 100", "above: banana"), headers=admin)
        assert bad.status_code == 422 and "pm25_high" in bad.json()["detail"]
        done = client.put("/api/rules", content=RULES.replace("pm25_high", "pm25_very_high").replace("above: 100", "above: 150"), headers=admin)
        assert done.status_code == 200 and done.json()["added"] == ["pm25_very_high"] and done.json()["removed"] == ["pm25_high"]
        assert "pm25_very_high" in client.get("/api/rules").text
        row = platform.audit.query(action="rules.replace", limit=5)[0]
        assert row["actor"] == "root-admin" and row["detail"]["removed"] == ["pm25_high"] and row["detail"]["sha256_before"] != row["detail"]["sha256_after"]
    with running(db, now_us=FIXED_NOW_US) as (platform, client, _):
        assert "pm25_very_high" in client.get("/api/rules").text  # the saved rules outlive a restart


def test_simulated_cases_are_on_the_board_and_close_after_a_long_stop(db: Path) -> None:
    """The simulator opens the cases running now (labelled simulated, from the gu's fire station);
    after a stop longer than its look-back, the cases that ended meanwhile are closed with a note."""
    opts = {"components": ["weather"], "backfill_hours": 1}
    with running(db, now_us=FIXED_NOW_US, feed="simulator", feed_options=opts) as (platform, client, _):
        board = _wait(lambda: (b := client.get("/api/incidents").json())["counts"]["ems"] > 10 and b)
        counts, items = board["counts"], board["items"]  # one answer: the simulator keeps opening cases
        assert all(i["simulated"] and i["source"] == "simulator" for i in items)
        assert counts["ems"] == sum(i["kind"] == "ems" for i in items)
        before = {i["id"] for i in items}
    with running(db, now_us=FIXED_NOW_US + 12 * 3600 * 1_000_000, feed="simulator", feed_options=opts) as (platform, client, _):
        def old_ones_closed() -> bool:
            return not before & {i["id"] for i in client.get("/api/incidents").json()["items"]}
        assert _wait(old_ones_closed, 20)
        closed = client.get(f"/api/incidents/{sorted(before)[0]}").json()
        assert not closed["active"] and "stopped" in closed["timeline"][-1]["note"]

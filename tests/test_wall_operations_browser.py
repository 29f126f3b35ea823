"""Incidents, alarms, login and replay on the wall page, in real headless Chromium against a real
`citywall up` (no simulator: every incident and alarm here is one the test made, so nothing else
takes the focus).

An operator user and the rules are set up before the server starts; incidents come in over the API
with the feed key the Server helper creates, as a 119 dispatch system would send them. Screenshots
(the wall with an incident in focus, the alarm list) land in `artifacts/`.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Iterator
from datetime import datetime, timezone

import pytest
from playwright.sync_api import Browser

from browsers import Wall as BaseWall
from browsers import TILE_H, TILE_W, chromium, tile_violations
from servers import ROOT, Server

ARTIFACTS = ROOT / "artifacts"
FOCUS_S = 4
OPERATOR, PASSWORD = "kim.operator", "a long and careful passphrase"

# A rule that fires on one reading, so the alarm list can be filled in a second.
RULES = """
version: 1
rules:
  - id: test_pm25_high
    kind: threshold
    title: {ko: 시험 센서 초미세먼지 높음, en: Test sensor PM2.5 high}
    category: air
    severity: critical
    select: {quantity: pm25, kind: test_sensor}
    above: 100
    clear_at: 50
  - id: test_noise_high
    kind: threshold
    title: {ko: 시험 센서 소음 높음, en: Test sensor noise high}
    category: sensor
    severity: medium
    select: {quantity: noise, kind: test_sensor}
    above: 80
    clear_at: 70
"""

# Places inside the city (lon, lat): Gwanghwamun (Jongno-gu), Gangnam-gu office, Mapo-gu office.
JONGNO = (126.9769, 37.5759)
GANGNAM = (127.0473, 37.5172)
MAPO = (126.9016, 37.5663)

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    tmp = tmp_path_factory.mktemp("ops")
    rules = tmp / "rules.yaml"
    rules.write_text(RULES, encoding="utf-8")
    srv = Server(tmp / "ops.duckdb", tmp / "server.log", "--feed", "none", "--focus-seconds", str(FOCUS_S), "--focus-severity", "high",
                 "--rules", str(rules))
    srv.command("user", "add", OPERATOR, "--role", "operator", "--password-stdin", stdin=PASSWORD + "\n")
    srv.start()
    yield srv
    srv.stop()


# What must not cross a bezel while an incident is in focus (district labels the zoomed map pushes
# past its edge are clipped by it, so they are not among them).
PANELS = ".panel, #layers, #legend, .maplibregl-ctrl-group, .map-banner:not([hidden]), .replay-bar, .inc-label"


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    yield from chromium()


class Wall(BaseWall):
    """A page of the wall; the server's refusals (401 for a wrong password, 409 for a refused step) are
    shown on the page and are not errors."""

    def __init__(self, browser: Browser, base: str, query: str, width: int = 1920, height: int = 1080) -> None:
        super().__init__(browser, base, query, width, height, expected=("status of 401", "status of 409"))

    def settled(self) -> None:
        self.page.wait_for_function("!window.citywall.map.map.isMoving()", timeout=10_000)
        self.page.wait_for_timeout(150)

    def view(self) -> dict:
        return self.js("(() => { const m = window.citywall.map; const c = m.map.getCenter(); return {lon: c.lng, lat: c.lat, zoom: m.map.getZoom(), gu: m.selectedGu, layer: m.layer}; })()")



def open_incident(server: Server, kind: str, where: tuple[float, float], severity: str, **extra: object) -> dict:
    body = {"kind": kind, "lon": where[0], "lat": where[1], "severity": severity, **extra}
    status, reply = server.request("POST", "/api/incidents", json.dumps(body).encode())
    assert status == 201, reply
    return json.loads(reply)


def advance(server: Server, incident_id: str, step: str, **extra: object) -> dict:
    status, reply = server.request("POST", f"/api/incidents/{incident_id}/transitions", json.dumps({"step": step, **extra}).encode())
    assert status == 200, reply
    return json.loads(reply)


def iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, timezone.utc).isoformat()


def near(view: dict, lon: float, lat: float, metres: float) -> bool:
    dx = (view["lon"] - lon) * 111_320 * math.cos(math.radians(lat))
    dy = (view["lat"] - lat) * 110_540
    return math.hypot(dx, dy) <= metres


def same_view(a: dict, b: dict) -> bool:
    return a["gu"] == b["gu"] and a["layer"] == b["layer"] and abs(a["zoom"] - b["zoom"]) < 0.01 and near(a, b["lon"], b["lat"], 5)


def small_text(w: Wall) -> list:
    return w.js("""[...document.querySelectorAll('#app .panel *')]
        .filter(e => e.childNodes.length && [...e.childNodes].some(n => n.nodeType === 3 && n.textContent.trim()))
        .filter(e => !e.closest('.maplibregl-ctrl-attrib') && e.getClientRects().length)
        .map(e => [e.className || e.tagName, e.textContent.trim().slice(0, 20), parseFloat(getComputedStyle(e).fontSize)])
        .filter(([, , size]) => size < 20)""")


# -- (a) a severe incident takes the focus, and the wall comes back --------------------------
def test_a_severe_incident_takes_focus_and_the_wall_returns_after_the_focus_time(server: Server, browser: Browser) -> None:
    w = Wall(browser, f"http://127.0.0.1:{server.port}", "layout=screen&lang=ko")
    try:
        # An operator's own view: the PM2.5 layer, drilled into Gangnam-gu.
        w.page.locator("#layers button[data-layer='pm25']").click()
        w.page.locator(".gu-label[data-gu='11680']").click()
        w.page.wait_for_function("window.citywall.map.selectedGu === '11680'")
        w.settled()
        before = w.view()

        inc = open_incident(server, "fire", JONGNO, "high", title="상가 화재", address="종로구 세종대로 175")
        w.page.wait_for_function(f"window.citywall.focus.active && window.citywall.incidentPanel.id === '{inc['id']}'", timeout=5000)
        banner = w.page.locator("#focus-banner")
        assert banner.is_visible()
        assert "화재" in banner.text_content() and "높음" in banner.text_content()
        w.settled()
        assert near(w.view(), *JONGNO, 150), w.view()
        panel = w.page.locator("#incident")
        assert panel.is_visible() and inc["id"] in panel.locator(".incident-id").text_content()
        panel.locator("li.step.current[data-step='occurred']").wait_for()
        assert panel.locator("li.step.pending").count() == 6  # 출동지령 ... 상황종결 still to come
        assert int(banner.locator(".focus-count").get_attribute("data-seconds")) <= FOCUS_S

        # After the focus time: exactly the view it had, and the incident stays a marker.
        w.page.wait_for_function("!window.citywall.focus.active", timeout=(FOCUS_S + 3) * 1000)
        w.settled()
        assert same_view(w.view(), before), (w.view(), before)
        assert banner.is_hidden() and panel.is_hidden()
        assert w.js(f"window.citywall.map.incidents.has('{inc['id']}')")
        assert w.errors == []
    finally:
        w.close()


def test_dismiss_returns_at_once_and_a_second_incident_replaces_or_waits(server: Server, browser: Browser) -> None:
    w = Wall(browser, f"http://127.0.0.1:{server.port}", "layout=screen&lang=en")
    try:
        w.settled()
        before = w.view()
        first = open_incident(server, "rescue", MAPO, "high")
        w.page.wait_for_function(f"window.citywall.focus.current?.inc.id === '{first['id']}'", timeout=5000)
        # As severe or worse: it takes over the focus.
        second = open_incident(server, "collapse", GANGNAM, "critical")
        w.page.wait_for_function(f"window.citywall.focus.current?.inc.id === '{second['id']}'", timeout=5000)
        assert "Collapse" in w.page.locator("#focus-banner").text_content()
        # Less severe: it waits its turn.
        third = open_incident(server, "gas_leak", JONGNO, "high")
        w.page.wait_for_function("window.citywall.focus.queue.length === 1", timeout=5000)
        assert "1 waiting" in w.page.locator("#focus-banner").text_content()
        w.page.locator("#focus-banner button[data-act=dismiss]").click()  # the button: the waiting one's turn
        w.page.wait_for_function(f"window.citywall.focus.current?.inc.id === '{third['id']}'", timeout=2000)
        w.settled()
        w.page.keyboard.press("Escape")  # and Esc: back to the wall, well before the focus time is up
        w.page.wait_for_function("!window.citywall.focus.active", timeout=1000)
        w.settled()
        assert same_view(w.view(), before), (w.view(), before)
        assert w.page.locator("#incident").is_hidden()
        assert w.errors == []
    finally:
        w.close()


def test_wall_layout_with_an_incident_in_focus(server: Server, browser: Browser) -> None:
    w = Wall(browser, f"http://127.0.0.1:{server.port}", "layout=wall&kiosk=1", 5760, 2160)
    try:
        inc = open_incident(server, "fire", JONGNO, "critical", title="주택 화재", address="종로구 사직로 161")
        w.page.wait_for_function(f"window.citywall.focus.current?.inc.id === '{inc['id']}'", timeout=5000)
        w.page.locator("#incident .nearby").wait_for()
        w.settled()
        assert tile_violations(w, PANELS) == []
        assert small_text(w) == []
        assert w.page.locator("#account").is_hidden()  # kiosk: no login control
        ARTIFACTS.mkdir(exist_ok=True)
        w.page.screenshot(path=ARTIFACTS / "wall-5760x2160-incident-focus.png")
        assert w.errors == []
    finally:
        w.close()


# -- (b) a low-severity incident: a marker and a count, no focus ------------------------------
def test_a_low_severity_incident_is_a_marker_and_a_count_without_focus(server: Server, browser: Browser) -> None:
    w = Wall(browser, f"http://127.0.0.1:{server.port}", "layout=screen&lang=ko")
    try:
        counter = w.page.locator(".counter[data-counter='ems'] b")
        before = int(counter.text_content())
        inc = open_incident(server, "ems", GANGNAM, "low", title="낙상 환자")
        w.page.wait_for_function(f"window.citywall.map.incidents?.has('{inc['id']}')", timeout=5000)
        w.page.wait_for_function(f"document.querySelector(\".counter[data-counter='ems'] b\").textContent === '{before + 1}'", timeout=5000)
        # Drawn on the map (a circle of the incident layer at its place) and listed.
        w.page.wait_for_function(f"window.citywall.map.map.querySourceFeatures('incidents').some(f => f.properties.id === '{inc['id']}')", timeout=5000)
        assert w.page.locator(f"#events li[data-incident='{inc['id']}']").is_visible()
        w.page.wait_for_timeout(500)
        assert not w.js("window.citywall.focus.active")
        assert w.page.locator("#focus-banner").is_hidden() and w.page.locator("#incident").is_hidden()
        # Clicking it in the list opens it (without focus).
        w.page.locator(f"#events li[data-incident='{inc['id']}']").click()
        w.page.locator("#incident li.step.current[data-step='ordered']").wait_for()
        assert w.page.locator("#focus-banner").is_hidden()
        assert w.errors == []
    finally:
        w.close()


# -- (c) an operator logs in and moves a case; anonymous walls show no buttons ----------------
def test_operator_logs_in_advances_an_incident_and_anonymous_sees_no_buttons(server: Server, browser: Browser) -> None:
    inc = open_incident(server, "fire", MAPO, "medium", title="차량 화재")
    w = Wall(browser, f"http://127.0.0.1:{server.port}", "layout=screen&lang=ko")
    try:
        w.page.locator(f"#events li[data-incident='{inc['id']}']").click()
        w.page.locator("#incident li.step.current").wait_for()
        assert w.page.locator("#incident button[data-advance]").count() == 0  # anonymous: read-only
        assert w.page.locator("#events .alarm-list button").count() == 0

        w.page.locator("#login-open").click()
        dialog = w.page.locator("#login-dialog")
        dialog.locator("input[name=name]").fill(OPERATOR)
        dialog.locator("input[name=password]").fill("not the password")
        dialog.locator("button[type=submit]").click()
        dialog.locator(".error").filter(has_text="wrong").wait_for()
        dialog.locator("input[name=password]").fill(PASSWORD)
        dialog.locator("button[type=submit]").click()
        w.page.locator("#account .who", has_text=OPERATOR).wait_for()
        assert dialog.is_hidden()

        buttons = w.page.locator("#incident button[data-advance]")
        buttons.first.wait_for()
        assert buttons.evaluate_all("bs => bs.map(b => b.dataset.advance)") == ["dispatched", "closed"]
        w.page.locator("#incident .inc-note").fill("119 지령: 마포 펌프차 출동")
        w.page.locator("#incident button[data-advance='dispatched']").click()
        step = w.page.locator("#incident li.step.current[data-step='dispatched']")
        step.wait_for()
        assert OPERATOR in step.locator(".by").text_content()
        assert "마포 펌프차" in step.text_content()
        assert w.page.locator("#incident li.step.done[data-step='occurred']").count() == 1

        # A move the kind forbids (passing over 현장도착): the server's reason is shown, nothing moves.
        w.js("window.citywall.incidentPanel.advance('operating')")
        w.page.locator("#incident .inc-actions .error").wait_for()
        assert "현장도착" in w.page.locator("#incident .inc-actions .error").text_content() or \
            "arrived" in w.page.locator("#incident .inc-actions .error").text_content()
        assert w.page.locator("#incident li.step.current[data-step='dispatched']").count() == 1

        # Every wall sees the move, with who made it.
        status, body = server.request("GET", f"/api/incidents/{inc['id']}")
        assert status == 200 and json.loads(body)["timeline"][-1]["by"] == OPERATOR

        w.page.locator("#account button[data-act=logout]").click()
        w.page.locator("#login-open").wait_for()
        w.page.wait_for_function("document.querySelectorAll('#incident button[data-advance]').length === 0")
        assert w.errors == []
    finally:
        w.close()


def post_readings(server: Server, key: str, values: dict[str, float]) -> None:
    now = datetime.now(timezone.utc).isoformat()
    rows = [{"datastream": f"{key}:{q}", "phenomenonTime": now, "result": v} for q, v in values.items()]
    status, reply = server.request("POST", "/api/observations", json.dumps(rows).encode())
    assert status == 200 and json.loads(reply)["accepted"] == len(rows), reply


def test_alarm_list_groups_by_situation_and_an_operator_acknowledges(server: Server, browser: Browser) -> None:
    things = [{"key": f"test:ops-{name}", "name": f"시험 센서 {name}", "kind": "test_sensor", "lon": lon, "lat": lat,
               "datastreams": [{"quantity": "pm25", "interval_s": 60}, {"quantity": "noise", "interval_s": 60}]}
              for name, (lon, lat) in (("jongno", JONGNO), ("gangnam", GANGNAM))]
    assert server.request("POST", "/api/things", json.dumps(things).encode())[0] == 200
    w = Wall(browser, f"http://127.0.0.1:{server.port}", "layout=screen&lang=ko")
    try:
        post_readings(server, "test:ops-jongno", {"pm25": 180.0})
        w.page.locator("#events li.alarm").first.wait_for(timeout=10_000)
        post_readings(server, "test:ops-jongno", {"noise": 95.0})
        post_readings(server, "test:ops-gangnam", {"pm25": 140.0})
        alarms = w.page.locator("#events li.alarm")
        w.page.wait_for_function("document.querySelectorAll('#events li.alarm').length === 3", timeout=10_000)
        # Jongno's two alarms are one situation, Gangnam's another; the critical ones first, unacknowledged.
        assert w.page.locator("#events .situation").count() == 2
        jongno = w.page.locator("#events .situation", has_text="종로구")
        assert jongno.count() == 1 and jongno.locator("li.alarm").count() == 2
        assert jongno.locator("li.alarm").first.locator(".sev-badge").text_content() == "심각"
        assert alarms.evaluate_all("rows => rows.every(r => r.classList.contains('unacked') && r.classList.contains('active'))")
        assert w.page.locator("#events .alarm-list button").count() == 0  # anonymous

        w.page.locator("#login-open").click()
        w.page.locator("#login-dialog input[name=name]").fill(OPERATOR)
        w.page.locator("#login-dialog input[name=password]").fill(PASSWORD)
        w.page.locator("#login-dialog button[type=submit]").click()
        w.page.locator("#account .who").wait_for()
        row = jongno.locator("li.alarm", has_text="초미세먼지")
        row.locator("button[data-act=ack]").click()
        row.locator(".state-active_acked").wait_for()
        assert OPERATOR in row.locator(".alarm-meta").text_content()
        row.locator("button[data-act=comment]").click()
        row.locator("form.inline input").fill("현장 확인 요청함")
        row.locator("form.inline button[type=submit]").click()
        row.locator(".alarm-comment", has_text="현장 확인 요청함").wait_for()
        row.locator("button[data-act=assign]").click()
        row.locator("form.inline input").fill("park")
        row.locator("form.inline button[type=submit]").click()
        row.locator(".alarm-meta", has_text="park").wait_for()
        ARTIFACTS.mkdir(exist_ok=True)
        assert w.errors == []
    finally:
        w.close()

    wall = Wall(browser, f"http://127.0.0.1:{server.port}", "layout=wall&kiosk=1", 5760, 2160)
    try:
        wall.page.wait_for_function("document.querySelectorAll('#events li.alarm').length >= 3")
        assert tile_violations(wall) == [] and small_text(wall) == []
        # The situation board's screen (bottom right of the wall).
        wall.page.screenshot(path=ARTIFACTS / "wall-5760x2160-alarms.png", clip={"x": 3840, "y": 1080, "width": 1920, "height": 1080})
        assert wall.errors == []
    finally:
        wall.close()


# -- (d) replay shows a case since closed; back to live restores the present ------------------
def test_replay_shows_a_closed_incident_and_back_to_live_restores_the_present(server: Server, browser: Browser) -> None:
    now_ms = int(time.time() * 1000)
    opened = now_ms - 3 * 3600_000
    inc = open_incident(server, "flood", GANGNAM, "medium", title="지하차도 침수", time=iso(opened))
    advance(server, inc["id"], "dispatched", time=iso(opened + 10 * 60_000))
    advance(server, inc["id"], "closed", note="배수 완료", time=iso(now_ms - 2 * 3600_000))
    w = Wall(browser, f"http://127.0.0.1:{server.port}", "layout=screen&lang=ko")
    try:
        assert w.page.locator(f"#events li[data-incident='{inc['id']}']").count() == 0  # closed: not live
        live_count = w.js("window.citywall.live.incidents.size")
        # 2.5 hours ago, on the slider's 5-minute grid.
        at = w.js("""(() => { const s = document.querySelector('#replay input[type=range]');
            const v = +s.max - 30 * 300000; s.value = String(v); s.dispatchEvent(new Event('change')); return v; })()""")
        assert now_ms - 3 * 3600_000 < at < now_ms - 2 * 3600_000
        banner = w.page.locator("#replay-banner")
        banner.wait_for()
        assert "다시보기" in banner.text_content()
        row = w.page.locator(f"#events li[data-incident='{inc['id']}']")
        row.wait_for(timeout=10_000)
        assert w.js(f"window.citywall.map.incidents.has('{inc['id']}')")
        assert w.js("document.getElementById('app').classList.contains('replay')")
        # Its timeline as it stood then: dispatched, not yet closed; no buttons in replay.
        row.click()
        w.page.locator("#incident li.step.current[data-step='dispatched']").wait_for()
        assert w.page.locator("#incident li.step.pending[data-step='closed']").count() == 1

        # A severe case arriving meanwhile takes no focus; it is there once back to live.
        live_one = open_incident(server, "fire", JONGNO, "critical", title="replay 중 화재")
        w.page.wait_for_timeout(1000)
        assert not w.js("window.citywall.focus.active")
        assert w.page.locator(f"#events li[data-incident='{live_one['id']}']").count() == 0

        banner.locator("button[data-act=live]").click()
        w.page.wait_for_function("!document.getElementById('app').classList.contains('replay')")
        w.page.locator(f"#events li[data-incident='{live_one['id']}']").wait_for(timeout=5000)
        assert banner.is_hidden()
        assert w.page.locator(f"#events li[data-incident='{inc['id']}']").count() == 0
        assert w.js("window.citywall.live.incidents.size") == live_count + 1
        assert not w.js("window.citywall.focus.active")  # it opened before we came back
        assert w.errors == []
    finally:
        w.close()


def test_laptop_layout_does_not_scroll_sideways_with_incidents_open(server: Server, browser: Browser) -> None:
    w = Wall(browser, f"http://127.0.0.1:{server.port}", "lang=en", 1366, 768)
    try:
        assert w.js("window.citywall.layout") == "laptop"
        first = w.page.locator("#events li[data-incident]").first
        first.wait_for()
        first.click()
        w.page.locator("#incident li.step.current").wait_for()
        assert w.js("document.documentElement.scrollWidth") <= 1366
        assert w.errors == []
    finally:
        w.close()


def test_login_dialog_on_the_wall_stays_inside_one_screen(server: Server, browser: Browser) -> None:
    w = Wall(browser, f"http://127.0.0.1:{server.port}", "layout=wall", 5760, 2160)
    try:
        w.page.locator("#login-open").click()
        left, top, right, bottom, size = w.js("""(() => { const d = document.getElementById('login-dialog'); const r = d.getBoundingClientRect();
            return [r.left, r.top, r.right, r.bottom, parseFloat(getComputedStyle(d.querySelector('input')).fontSize)]; })()""")
        assert int(left // TILE_W) == int(right // TILE_W) and int(top // TILE_H) == int(bottom // TILE_H), (left, top, right, bottom)
        assert size >= 20
        w.page.keyboard.press("Escape")
        assert w.page.locator("#login-dialog").is_hidden()
        assert w.errors == []
    finally:
        w.close()

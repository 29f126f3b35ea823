"""Alert rules as data and the engine that runs them, on recorded streams: every rule kind, the
shipped rules, validation errors, advisories against `advisory_levels`, cross-domain rules,
run-time replacement, and the live runner on a real platform."""

from __future__ import annotations

import asyncio
import math
from collections import Counter
from importlib.resources import files
from types import SimpleNamespace

import numpy as np
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from citywall.alerts.advisory import PM10, PM25, advisory_levels
from citywall.alerts.engine import HOUR_MS, RuleEngine
from citywall.alerts.live import AlertRunner, gu_hourly_means
from citywall.alerts.rules import (KINDS, AdvisoryAlertRule, CrossRule, RuleError, StaleRule, ThresholdRule, load_rules,
                                   parse_duration, parse_rules)
from citywall.alerts.severity import SEVERITIES
from citywall.alerts.signal import Signal
from citywall.city import load_city
from citywall.feeds.simulator import SimulatorFeed
from citywall.ingest.batch import ObservationBatch
from citywall.clock import Clock
from citywall.ingest.pipeline import Pipeline
from citywall.ingest.validate import Limits
from citywall.live.bus import AIR_REFRESHED, EventBus
from citywall.live.state import LiveState
from citywall.store.embedded import EmbeddedStore
from citywall.observations.model import DatastreamIn, ThingIn
from citywall.observations.quantities import quantities
from citywall.observations.registry import Registry
from conftest import CITY_HALL, COEX, FIXED_NOW_US, GANGNAM_GU, GYEONGBOKGUNG, JONGNO_GU, JUNG_GU, MYEONGDONG

T0 = FIXED_NOW_US // 1000  # ms
H0 = T0 - T0 % 3_600_000  # the start of T0's hour
MIN = 60_000


def _thing(key: str, kind: str, where: tuple[float, float], quantities_: list[str], interval_s: float, **props: object) -> ThingIn:
    return ThingIn(key=key, name=key.upper(), kind=kind, lon=where[0], lat=where[1],
                   datastreams=[DatastreamIn(quantity=q, interval_s=interval_s) for q in quantities_], properties=dict(props))


THINGS = [
    _thing("road:a", "road_link", CITY_HALL, ["road_speed"], 300, road_type="간선도로"),
    _thing("road:x", "road_link", COEX, ["road_speed"], 300, road_type="도시고속도로"),
    _thing("hot:jung", "hotspot", MYEONGDONG, ["congestion_level"], 300),
    _thing("hot:gangnam", "hotspot", COEX, ["congestion_level"], 300),
    _thing("air:jung", "air_station", CITY_HALL, ["pm10", "pm25"], 3600),
    _thing("air:gangnam", "air_station", COEX, ["pm10", "pm25"], 3600),
    _thing("sdot:1", "sdot", CITY_HALL, ["noise", "temperature"], 120),
    _thing("kma", "weather", GYEONGBOKGUNG, ["precipitation"], 3600),
]


@pytest.fixture(scope="module")
def city():
    return load_city("seoul")


@pytest.fixture
def reg(city) -> Registry:
    r = Registry(city)
    things, datastreams = r.plan(THINGS)
    r.add(things, datastreams)
    return r


SHIPPED = load_rules(None)


def engine_for(reg: Registry, city, doc: str | None = None) -> RuleEngine:
    return RuleEngine(SHIPPED if doc is None else parse_rules(doc), reg, city)


def send(engine: RuleEngine, reg: Registry, key: str, t_ms: int, v: float) -> list[Signal]:
    return engine.on_values(np.array([reg.ds_by_key[key]]), np.array([t_ms * 1000]), np.array([v]))


def rules_doc(*rules: dict) -> str:
    return yaml.safe_dump({"version": 1, "rules": list(rules)}, allow_unicode=True)


def rule(id_: str, kind: str, **fields: object) -> dict:
    return {"id": id_, "kind": kind, "title": {"ko": id_, "en": id_}, "category": "sensor", "severity": "low", **fields}


# -- the shipped rules and the format ----------------------------------------------------
def test_shipped_rules_load_and_cover_the_issue(reg, city):
    rs = load_rules(None)
    by_id = {r.id: r for r in rs}
    assert {r.kind for r in rs} == set(KINDS)
    pm10, pm25 = by_id["pm10_advisory"], by_id["pm25_advisory"]
    assert isinstance(pm10, AdvisoryAlertRule) and pm10.standard == PM10 and pm25.standard == PM25  # the official figures
    assert pm10.severity_of(1) == "high" and pm10.severity_of(2) == "critical"
    assert by_id["cai_grade"].places == ("city", "gu")
    road = by_id["road_congestion"]
    assert isinstance(road, ThresholdRule) and road.below == 15 and road.for_s == 900 and road.clear_at == 20
    assert by_id["hotspot_crowded"].above == 4 and by_id["hotspot_crowded"].for_s == 1800
    assert isinstance(by_id["feed_stale"], StaleRule) and by_id["feed_stale"].per == "feed"
    assert by_id["sdot_frozen"].select.kind == "sdot"
    assert sum(isinstance(r, CrossRule) for r in rs) >= 1
    for r in rs.evaluated():  # units and codes: every quantity named exists
        assert r.select.quantity is None or r.select.quantity in quantities()
        assert r.severity in SEVERITIES
    engine = RuleEngine(rs, reg, city)
    assert engine.state() == []


@pytest.mark.parametrize(("text", "seconds"), [("90s", 90), ("15m", 900), ("2h", 7200), ("1h30m", 5400), ("1d", 86400),
                                               (45, 45), ("500ms", 0.5), ("1.5h", 5400)])
def test_durations(text, seconds):
    assert parse_duration(text) == seconds


BAD = [
    (rule("r1", "nonsense"), ["'r1'", "'kind'", "unknown kind"]),
    (rule("r2", "threshold", severity="urgent", select={"quantity": "pm10"}, above=100), ["'r2'", "'severity'", "urgent"]),
    (rule("r3", "threshold", select={"quantity": "pm10"}, above=100, clear_at=120), ["'r3'", "'clear_at'", "safe side"]),
    (rule("r4", "threshold", select={"quantity": "road_speed"}, below=15, clear_at=10), ["'r4'", "'clear_at'", "safe side"]),
    (rule("r5", "threshold", select={"quantity": "pm100"}, above=100), ["'r5'", "'select.quantity'", "unknown quantity 'pm100'"]),
    (rule("r6", "threshold", select={"quantity": "pm10"}, above=100, **{"for": "10 minutes"}), ["'r6'", "'for'", "not a duration"]),
    (rule("r7", "threshold", select={"quantity": "pm10"}, above=100, clear_a=80), ["'r7'", "'clear_a'", "unknown field"]),
    (rule("r8", "threshold", select={"quantity": "pm10"}, above=100, below=10), ["'r8'", "exactly one of above or below"]),
    (rule("r9", "threshold", select={"quantity": "road_speed"}, below=250), ["'r9'", "'below'", "outside the range"]),
    (rule("r10", "frozen", select={"quantity": "noise"}, readings=1), ["'r10'", "'readings'", "at least 2"]),
    (rule("r11", "stale", per="feed", max_age="10m", share=1.5), ["'r11'", "'share'"]),
    (rule("r12", "stale", select={"kind": "sdot"}), ["'r12'", "'max_age'", "exactly one"]),
    (rule("r13", "rate", select={"quantity": "road_speed"}, max_change=20, per="0s"), ["'r13'", "'per'"]),
    (rule("r14", "advisory", select={"quantity": "pm25"}, advisory={"at": 75, "lift": 90}), ["'r14'", "'advisory.lift'", "safe side"]),
    (rule("r15", "advisory", select={"quantity": "o3"}), ["'r15'", "no official advisory for o3"]),
    (rule("r16", "cai_grade", min_grade="awful"), ["'r16'", "'min_grade'", "unknown grade"]),
    (rule("r17", "cross", parts=[{"rule": "nowhere"}, {"rule": "r17"}]), ["'r17'", "'parts[0].rule'", "'nowhere'"]),
    (rule("r18", "cross", parts=[{"kind": "threshold", "select": {"quantity": "pm25"}, "above": 36}]), ["'r18'", "'parts'", "at least two"]),
    (rule("r19", "cross", parts=[{"kind": "threshold", "select": {"quantity": "pm25"}, "above": 36, "clear_at": 50},
                                 {"kind": "frozen", "select": {"quantity": "noise"}, "readings": 3}]), ["'r19'", "'parts[0].clear_at'", "safe side"]),
    ({**rule("r20", "threshold", select={"quantity": "pm10"}, above=100), "title": {"ko": "미세먼지"}}, ["'r20'", "'title'", "ko and en"]),
    (rule("Bad-Id", "threshold", select={"quantity": "pm10"}, above=100), ["'id'", "lower-case"]),
    (rule("r22", "threshold", select={"quantity": "pm10", "knid": "x"}, above=100), ["'r22'", "'select.knid'"]),
    (rule("r23", "threshold", category="weather", select={"quantity": "pm10"}, above=100), ["'r23'", "'category'"]),
]


@pytest.mark.parametrize(("raw", "fragments"), BAD, ids=[b[0]["id"] for b in BAD])
def test_bad_rules_are_refused_naming_the_rule_and_field(raw, fragments):
    with pytest.raises(RuleError) as e:
        parse_rules(rules_doc(raw), source="ops.yaml")
    for fragment in fragments:
        assert fragment in str(e.value), str(e.value)
    assert str(e.value).startswith("ops.yaml")


def test_document_level_errors(tmp_path, reg, city):
    with pytest.raises(RuleError, match="list under `rules:`"):
        parse_rules("- just a list")
    with pytest.raises(RuleError, match="not valid YAML"):
        parse_rules("rules: [")
    dup = rule("same", "frozen", select={"quantity": "noise"}, readings=3)
    with pytest.raises(RuleError, match="'same'.*used by an earlier rule"):
        parse_rules(rules_doc(dup, dup))
    with pytest.raises(RuleError, match="cannot read"):
        load_rules(tmp_path / "missing.yaml")
    path = tmp_path / "rules.yaml"
    path.write_text(rules_doc(rule("in_nowhere", "frozen", select={"quantity": "noise", "gu": "99999"}, readings=3)), encoding="utf-8")
    rs = load_rules(path)
    with pytest.raises(RuleError, match="'in_nowhere'.*select.gu.*99999"):
        RuleEngine(rs, reg, city)  # gu codes are checked against the city the engine runs in


# -- per-datastream kinds ----------------------------------------------------------------
def test_road_congestion_duration_and_hysteresis_with_the_shipped_rule(reg, city):
    e = engine_for(reg, city)
    got = []
    for minute, speed in [(0, 14), (5, 12), (10, 13)]:
        got += send(e, reg, "road:a:road_speed", T0 + minute * MIN, speed)
    assert got == []  # 10 minutes below 15: not yet
    raised = send(e, reg, "road:a:road_speed", T0 + 15 * MIN, 11)
    assert [(s.rule, s.active) for s in raised] == [("road_congestion", True)]
    s = raised[0]
    ds = reg.ds_by_key["road:a:road_speed"]
    assert (s.subject, s.datastream, s.gu, s.value, s.severity, s.category) == (f"ds:{ds}", ds, JUNG_GU, 11.0, "medium", "traffic")
    assert s.dong and s.lon == CITY_HALL[0] and s.lat == CITY_HALL[1]
    assert "11 km/h" in s.message_en and "15 km/h" in s.message_en and "15 min" in s.message_en and "15분" in s.message_ko
    assert send(e, reg, "road:a:road_speed", T0 + 20 * MIN, 18) == []  # 서행 but not past clear_at 20
    cleared = send(e, reg, "road:a:road_speed", T0 + 25 * MIN, 21)
    assert [(c.rule, c.active, c.severity) for c in cleared] == [("road_congestion", False, "medium")]
    assert e.state() == []


def test_selector_properties_pick_expressways(reg, city):
    e = engine_for(reg, city)
    got = [s for m in range(0, 20, 5) for s in send(e, reg, "road:x:road_speed", T0 + m * MIN, 25)]  # 25 km/h: 정체 on an expressway
    assert [(s.rule, s.active, s.gu) for s in got] == [("expressway_congestion", True, GANGNAM_GU)]


def test_rate_of_change(reg, city):
    e = engine_for(reg, city)
    assert send(e, reg, "road:a:road_speed", T0, 50) == []
    assert send(e, reg, "road:a:road_speed", T0 + 5 * MIN, 45) == []
    jump = send(e, reg, "road:a:road_speed", T0 + 10 * MIN, 18)  # -27 km/h in 5 minutes
    assert [(s.rule, s.active) for s in jump] == [("road_speed_jump", True)]
    assert [(s.rule, s.active) for s in send(e, reg, "road:a:road_speed", T0 + 15 * MIN, 20)] == [("road_speed_jump", False)]


def test_frozen_sdot_sensor_by_hand(reg, city):
    e = engine_for(reg, city)
    got = []
    for i in range(16):
        got += send(e, reg, "sdot:1:noise", T0 + i * 2 * MIN, 61.3)
        got += send(e, reg, "sdot:1:temperature", T0 + i * 2 * MIN, 20.1)  # not watched by the shipped rule
    assert [(s.rule, s.active, s.at_ms) for s in got] == [("sdot_frozen", True, T0 + 14 * 2 * MIN)]  # the 15th equal reading
    assert "15" in got[0].message_en
    assert [s.active for s in send(e, reg, "sdot:1:noise", T0 + 40 * MIN, 61.4)] == [False]


def test_frozen_sensors_of_the_simulator_are_found_and_only_they(city):
    """S-DoT from the simulator: 200 sensors over 24 h; the `freeze` fault repeats one reading."""
    start_us = FIXED_NOW_US - FIXED_NOW_US % (3600 * 1_000_000)
    feed = SimulatorFeed(seed=2017, sdot_count=200, components=["sdot"], episodes=False).build(city, start_us)
    comp = feed.streams["sdot"].comp
    reg = Registry(city)
    reg.add(*reg.plan(comp.things()))
    ids = np.array([reg.ds_by_key[k] for k in comp.keys])
    engine = engine_for(reg, city)
    ticks = start_us + np.arange(0, 24 * 3600, 120, dtype=np.int64) * 1_000_000
    idx, t, v = comp.generate(ticks)
    bounds = np.searchsorted(t, ticks, side="left").tolist() + [len(t)]
    signals = []
    for a, b in zip(bounds, bounds[1:]):
        signals += engine.on_values(ids[idx[a:b]], t[a:b], v[a:b])
    frozen = {s.subject for s in signals if s.rule == "sdot_frozen" and s.active}
    faulty = {f"ds:{reg.ds_by_key[f'sdot:{serial}:noise']}" for serial, fault in zip(comp.sensors.serial, comp.sensors.fault) if fault == "freeze"}
    assert frozen and frozen <= faulty


def test_stale_datastream_and_feed_down(reg, city):
    doc = rules_doc(
        rule("silent", "stale", select={"quantity": "pm25", "kind": "air_station"}, max_age="3h"),
        rule("feed_down", "stale", category="feed", per="feed", max_intervals=3, share=0.5, clear_share=0.2),
    )
    e = engine_for(reg, city, doc)
    air = [reg.ds_by_key[k] for k in ("air:jung:pm25", "air:gangnam:pm25", "air:jung:pm10", "air:gangnam:pm10")]
    e.on_values(np.array(air), np.full(4, T0 * 1000), np.array([20.0, 30.0, 40.0, 50.0]))
    assert e.on_tick(T0 + 3 * 3600_000) == []  # exactly 3 h (= 3 intervals): not yet
    got = e.on_tick(T0 + 3 * 3600_000 + 1)
    assert sorted((s.rule, s.subject) for s in got) == sorted(
        [("silent", f"ds:{air[0]}"), ("silent", f"ds:{air[1]}"), ("feed_down", "feed:air_station")])
    feed = next(s for s in got if s.rule == "feed_down")
    assert feed.value == 1.0 and "4 of 4" in feed.message_en
    assert e.on_tick(T0 + 4 * 3600_000) == []  # reported once
    back = e.on_values(np.array(air[:3]), np.full(3, (T0 + 4 * 3600_000) * 1000), np.array([21.0, 31.0, 41.0]))
    assert sorted((s.rule, s.active) for s in back) == [("silent", False), ("silent", False)]
    assert e.on_tick(T0 + 4 * 3600_000 + 1000) == []  # 1 of 4 (25 %) still stale: not below clear_share 20 %
    e.on_values(np.array(air[3:]), np.full(1, (T0 + 4 * 3600_000) * 1000), np.array([51.0]))
    assert [(s.rule, s.subject, s.active) for s in e.on_tick(T0 + 4 * 3600_000 + 2000)] == [("feed_down", "feed:air_station", False)]


# -- advisories --------------------------------------------------------------------------
def levels_from(signals: list[Signal], level: int) -> int:
    for s in signals:
        level = {"high": 1, "critical": 2}[s.severity] if s.active else 0
    return level


def test_advisory_issue_upgrade_downgrade_and_lift(reg, city):
    e = engine_for(reg, city)
    pm25 = [80, 160, 155, 100, 74, 34]  # test_advisory: NONE, 주의보, 경보, 경보, 주의보, lifted
    seen, got = [], []
    for h, value in enumerate(pm25):
        window = [(H0 + k * HOUR_MS, float(pm25[k])) for k in range(max(0, h - 2), h + 1)]
        signals = e.on_hourly({JUNG_GU: {"pm25": window}}, H0 + (h + 1) * HOUR_MS)
        got.append([(s.active, s.severity) for s in signals])
        seen.append(levels_from(signals, seen[-1] if seen else 0))
    assert seen == advisory_levels(pm25, PM25)
    assert got == [[], [(True, "high")], [(False, "high"), (True, "critical")], [], [(False, "critical"), (True, "high")], [(False, "high")]]
    e2 = engine_for(reg, city)  # the raise names the value, the unit and the level
    s = e2.on_hourly({JUNG_GU: {"pm25": [(H0, 82.0), (H0 + HOUR_MS, 90.0)]}}, H0 + 2 * HOUR_MS)[0]
    assert (s.rule, s.subject, s.gu, s.category) == ("pm25_advisory", f"gu:{JUNG_GU}", JUNG_GU, "air")
    assert "90 ㎍/㎥" in s.message_ko and "주의보" in s.message_ko and "2시간" in s.message_ko and "advisory" in s.message_en
    assert s.lon is not None and s.at_ms == H0 + HOUR_MS


def test_advisory_needs_complete_data_and_ignores_other_gu_codes(reg, city):
    e = engine_for(reg, city)
    # A missing hour (no mean) breaks the run: 160, gap, 160 is no advisory.
    assert e.on_hourly({JUNG_GU: {"pm10": [(H0, 160.0), (H0 + 2 * HOUR_MS, 160.0)]}}, H0 + 3 * HOUR_MS) == []
    assert e.on_hourly({"99999": {"pm10": [(H0, 400.0), (H0 + HOUR_MS, 400.0)]}}, H0 + 3 * HOUR_MS) == []


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(hourly=st.lists(st.one_of(st.floats(0, 400, allow_nan=False), st.just(math.nan)), min_size=1, max_size=40),
       window=st.integers(1, 5), every=st.integers(1, 3))
def test_advisory_levels_hour_by_hour_match_advisory_levels(reg, city, hourly, window, every):
    """Called every `every` hours with the last `window` hours (missing hours left out), the engine's
    level after each call is what advisory_levels says for the whole series."""
    e = engine_for(reg, city)
    want = advisory_levels(hourly, PM10)
    level = 0
    for h in range(len(hourly)):
        if h % every and h != len(hourly) - 1:
            continue
        lo = max(0, h - max(window, every) + 1)
        series = [(H0 + k * HOUR_MS, hourly[k]) for k in range(lo, h + 1) if not math.isnan(hourly[k])]
        level = levels_from(e.on_hourly({JUNG_GU: {"pm10": series}}, H0 + (h + 1) * HOUR_MS), level)
        assert level == want[h], (h, hourly[: h + 1])


# -- CAI grades --------------------------------------------------------------------------
def air(time_ms: int, city_grade: str | None, gu_grade: str | None, index: int = 120) -> dict:
    entry = lambda g: None if g is None else {"index": index, "grade": g, "pollutant": "pm25"}  # noqa: E731
    return {"time_ms": time_ms, "city": entry(city_grade), "gu": {JUNG_GU: entry(gu_grade)} if gu_grade else {}}


def test_cai_grade_alarms_while_unhealthy_or_worse(reg, city):
    e = engine_for(reg, city)
    assert e.on_air(air(T0, "moderate", "moderate", 80)) == []
    got = e.on_air(air(T0 + HOUR_MS, "unhealthy", "moderate", 130))
    assert [(s.subject, s.active, s.severity) for s in got] == [("city:seoul", True, "medium")]
    assert "130" in got[0].message_ko and "나쁨" in got[0].message_ko
    got = e.on_air(air(T0 + 2 * HOUR_MS, "unhealthy", "very_unhealthy", 260))
    assert [(s.subject, s.active, s.severity) for s in got] == [(f"gu:{JUNG_GU}", True, "high")]
    assert e.on_air(air(T0 + 3 * HOUR_MS, None, None)) == []  # no index this time: nothing changes
    got = e.on_air(air(T0 + 4 * HOUR_MS, "moderate", "unhealthy", 110))
    assert [(s.subject, s.active, s.severity) for s in got] == [
        ("city:seoul", False, "medium"), (f"gu:{JUNG_GU}", False, "high"), (f"gu:{JUNG_GU}", True, "medium")]
    assert e.state() == [("cai_grade", f"gu:{JUNG_GU}")]


# -- cross-domain ------------------------------------------------------------------------
CROSS = rules_doc(
    rule("crowded", "threshold", category="crowd", select={"quantity": "congestion_level", "kind": "hotspot"}, above=4, clear_at=3),
    rule("jam", "threshold", category="traffic", select={"quantity": "road_speed", "kind": "road_link"}, below=15, clear_at=20),
    {**rule("air_crowd", "cross", category="cross", severity="high"),
     "parts": [{"kind": "threshold", "select": {"quantity": "pm25", "kind": "air_station"}, "above": 36}, {"rule": "crowded"}]},
    {**rule("rain_jam", "cross", category="cross", severity="high"), "within": "30m",
     "parts": [{"kind": "threshold", "select": {"quantity": "precipitation"}, "above": 15, "clear_at": 3, "scope": "city"},
               {"rule": "jam"}]},
)


def test_cross_rule_raises_only_when_both_parts_hold_in_the_same_gu(reg, city):
    e = engine_for(reg, city, CROSS)
    assert send(e, reg, "air:jung:pm25", T0, 50) == []  # bad air in 중구: the inline part's own signal is not shown
    got = send(e, reg, "hot:gangnam:congestion_level", T0 + MIN, 4)  # crowded, but in 강남구
    assert [(s.rule, s.gu) for s in got] == [("crowded", GANGNAM_GU)]
    got = send(e, reg, "hot:jung:congestion_level", T0 + 2 * MIN, 4)
    assert [(s.rule, s.subject, s.active) for s in got] == [("crowded", f"ds:{reg.ds_by_key['hot:jung:congestion_level']}", True),
                                                          ("air_crowd", f"gu:{JUNG_GU}", True)]
    cross = got[1]
    assert cross.severity == "high" and cross.gu == JUNG_GU and cross.lon is not None and "중구" in cross.message_ko
    assert "PM2.5 at or above 36 µg/m³ + crowded" in cross.message_en
    got = send(e, reg, "air:gangnam:pm25", T0 + 3 * MIN, 60)  # now 강남구 has both too
    assert [(s.rule, s.gu, s.active) for s in got] == [("air_crowd", GANGNAM_GU, True)]
    got = send(e, reg, "air:jung:pm25", T0 + HOUR_MS, 20)  # the air of 중구 clears: so does its cross alarm (no window)
    assert [(s.rule, s.gu, s.active) for s in got] == [("air_crowd", JUNG_GU, False)]
    assert [k for k in e.state() if k[0] == "air_crowd"] == [("air_crowd", f"gu:{GANGNAM_GU}")]


def test_cross_rule_window_and_city_wide_part(reg, city):
    e = engine_for(reg, city, CROSS)
    assert send(e, reg, "kma:precipitation", T0, 22) == []  # heavy rain at the KMA station (종로구), counts city-wide
    assert send(e, reg, "kma:precipitation", T0 + 10 * MIN, 2) == []  # the rain stops at T0+10m
    got = send(e, reg, "road:a:road_speed", T0 + 25 * MIN, 10)  # a jam in 중구 within 30 minutes of the rain
    assert [(s.rule, s.gu, s.active) for s in got] == [("jam", JUNG_GU, True), ("rain_jam", JUNG_GU, True)]
    assert e.on_tick(T0 + 40 * MIN) == []  # the rain ended 30 minutes ago: still inside the window
    got = e.on_tick(T0 + 40 * MIN + 1)
    assert [(s.rule, s.gu, s.active) for s in got] == [("rain_jam", JUNG_GU, False)]
    assert JONGNO_GU not in {s.gu for s in got}


def test_shipped_cross_rule_crowds_in_bad_air(reg, city):
    e = engine_for(reg, city)
    send(e, reg, "air:jung:pm25", T0, 40)
    got = [s for m in range(0, 35, 5) for s in send(e, reg, "hot:jung:congestion_level", T0 + m * MIN, 4)]
    assert [(s.rule, s.active) for s in got] == [("hotspot_crowded", True), ("crowd_in_bad_air", True)]
    assert got[0].at_ms == T0 + 30 * MIN and "4 (붐빔)" in got[0].message_ko


# -- replacing the rules at run time ------------------------------------------------------
def test_replace_keeps_unchanged_state_and_clears_removed_and_changed(reg, city):
    slow = rule("slow", "threshold", category="traffic", select={"quantity": "road_speed"}, below=15, **{"for": "10m"})
    busy = rule("busy", "threshold", category="crowd", select={"quantity": "congestion_level"}, above=4)
    frozen = rule("stuck", "frozen", select={"quantity": "noise"}, readings=3)
    e = engine_for(reg, city, rules_doc(slow, busy, frozen))
    send(e, reg, "road:a:road_speed", T0, 10)
    send(e, reg, "road:a:road_speed", T0 + 5 * MIN, 11)  # slow: 5 of its 10 minutes run
    assert [s.rule for s in send(e, reg, "hot:jung:congestion_level", T0 + 5 * MIN, 4)] == ["busy"]
    for i in range(3):
        send(e, reg, "sdot:1:noise", T0 + i * MIN, 60.0)
    assert e.state() == sorted([("busy", f"ds:{reg.ds_by_key['hot:jung:congestion_level']}"), ("stuck", f"ds:{reg.ds_by_key['sdot:1:noise']}")])
    changed_busy = {**busy, "above": 3}
    cleared = e.replace(parse_rules(rules_doc(slow, changed_busy)))  # busy changed, stuck removed, slow kept
    assert sorted((s.rule, s.active) for s in cleared) == [("busy", False), ("stuck", False)]
    assert all("rule change" in s.message_en for s in cleared)
    assert e.state() == []
    raised = send(e, reg, "road:a:road_speed", T0 + 10 * MIN, 12)  # slow's clock was kept: 10 minutes are up now
    assert [(s.rule, s.active) for s in raised] == [("slow", True)]
    assert [s.rule for s in send(e, reg, "hot:jung:congestion_level", T0 + 11 * MIN, 4)] == ["busy"]  # afresh, with the new line


# -- signals alternate -------------------------------------------------------------------
KEYS = ["road:a:road_speed", "road:x:road_speed", "hot:jung:congestion_level", "hot:gangnam:congestion_level", "air:jung:pm25",
        "air:gangnam:pm25", "sdot:1:noise", "kma:precipitation"]
GRADE = ["good", "moderate", "unhealthy", "very_unhealthy", None]
EVENTS = st.one_of(
    st.tuples(st.just("value"), st.sampled_from(KEYS), st.integers(0, 60), st.integers(0, 20)),
    st.tuples(st.just("tick"), st.integers(0, 400)),
    st.tuples(st.just("air"), st.sampled_from(GRADE), st.sampled_from(GRADE)),
    st.tuples(st.just("hourly"), st.integers(0, 350)),
    st.tuples(st.just("replace"),),
)


def _tweaked() -> object:
    doc = yaml.safe_load((files("citywall.alerts") / "rules.yaml").read_text(encoding="utf-8"))
    next(r for r in doc["rules"] if r["id"] == "road_congestion")["below"] = 20
    return parse_rules(doc)


RULESETS = (SHIPPED, _tweaked())  # the shipped rules and an admin's edit of one


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(events=st.lists(EVENTS, max_size=80))
def test_signals_for_one_subject_alternate_raise_and_clear(reg, city, events):
    shipped, tweaked = RULESETS
    e = RuleEngine(shipped, reg, city)
    now, hours, which = T0, [], 0
    signals: list[Signal] = []
    for ev in events:
        if ev[0] == "value":
            _, key, value, minutes = ev
            now += minutes * MIN
            v = 1 + value % 4 if "congestion" in key else value
            signals += e.on_values(np.array([reg.ds_by_key[key]]), np.array([now * 1000]), np.array([float(v)]))
        elif ev[0] == "tick":
            now += ev[1] * MIN
            signals += e.on_tick(now)
        elif ev[0] == "air":
            signals += e.on_air(air(now, ev[1], ev[2], 150))
        elif ev[0] == "hourly":
            hours.append(float(ev[1]))
            series = [(H0 + k * HOUR_MS, hours[k]) for k in range(max(0, len(hours) - 3), len(hours))]
            signals += e.on_hourly({JUNG_GU: {"pm10": series, "pm25": series}}, H0 + len(hours) * HOUR_MS)
        else:
            which = 1 - which
            signals += e.replace((shipped, tweaked)[which])
    last: dict[tuple[str, str], bool] = {}
    for s in signals:
        key = (s.rule, s.subject)
        assert s.active != last.get(key, False), (key, s.active)
        assert s.severity in SEVERITIES
        last[key] = s.active
    assert e.state() == sorted(k for k, active in last.items() if active)


# -- the live runner on a real platform ---------------------------------------------------
def test_runner_on_a_platform(db, monkeypatch):
    import citywall.alerts.live as alerts_live

    monkeypatch.setattr(alerts_live, "TICK_S", 0.05)
    received: list[Signal] = []
    doc = rules_doc(
        rule("jam", "threshold", category="traffic", select={"quantity": "road_speed", "kind": "road_link"}, below=15),
        rule("silent", "stale", select={"quantity": "road_speed"}, max_age="10m"),
        rule("dust", "advisory", category="air", select={"quantity": "pm10", "kind": "air_station"}, severity={"warning": "critical"}),
        rule("grade", "cai_grade", category="air", places=["gu"]),
    )

    async def scenario() -> None:
        # The parts of a platform the runner uses, wired as Platform wires them.
        city = load_city("seoul")
        registry = Registry(city)
        store = EmbeddedStore(str(db))
        live = LiveState(registry)
        bus = EventBus()
        clock = Clock()
        pipeline = Pipeline(store, registry, live, bus, clock, Limits(max_age_s=30 * 86400))
        platform = SimpleNamespace(city=city, registry=registry, store=store, live=live, bus=bus, clock=clock, pipeline=pipeline)
        bus.bind(asyncio.get_running_loop())
        pipeline.start()
        try:
            await asyncio.wrap_future(pipeline.register([THINGS[0], THINGS[4]]))
            road, pm10 = registry.ds_by_key["road:a:road_speed"], registry.ds_by_key["air:jung:pm10"]
            now = clock.now_us()
            hour = now - now % (3600 * 1_000_000)
            past = [hour - 3 * 3600 * 1_000_000, hour - 2 * 3600 * 1_000_000]
            ingest = lambda ds, t, v: asyncio.wrap_future(pipeline.submit(  # noqa: E731
                ObservationBatch(ds=np.array(ds), t_us=np.array(t), value=np.array(v, dtype=float), source="test")))
            await ingest([pm10, pm10], past, [170.0, 180.0])
            runner = AlertRunner(platform, RuleEngine(parse_rules(doc), registry, city), received.extend)  # type: ignore[arg-type]
            runner.start()
            await ingest([road], [now - 60_000_000], [9.0])
            bus.fire(AIR_REFRESHED, {"time_ms": now // 1000, "city": None,
                                     "gu": {JUNG_GU: {"index": 300, "grade": "very_unhealthy", "pollutant": "pm10"}}})
            for _ in range(100):
                if {"jam", "dust", "grade"} <= {s.rule for s in received}:
                    break
                await asyncio.sleep(0.05)
            clock.now_us = lambda: now + 20 * 60 * 1_000_000  # type: ignore[method-assign]  # the road goes quiet
            for _ in range(100):
                if "silent" in {s.rule for s in received}:
                    break
                await asyncio.sleep(0.05)
            await runner.stop()
            assert not runner._tasks and all(not listeners for listeners in bus._listeners.values())
        finally:
            await asyncio.to_thread(pipeline.stop)
            store.close()

    asyncio.run(scenario())
    by_rule = Counter((s.rule, s.active) for s in received)
    assert by_rule[("jam", True)] == 1 and by_rule[("dust", True)] == 1 and by_rule[("grade", True)] == 1
    assert by_rule[("silent", True)] == 1
    dust = next(s for s in received if s.rule == "dust")
    assert dust.gu == JUNG_GU and dust.severity == "high"


def test_gu_hourly_means_average_the_stations_of_a_gu(reg):
    a, b, c = reg.ds_by_key["air:jung:pm10"], reg.ds_by_key["air:gangnam:pm10"], reg.ds_by_key["air:jung:pm25"]
    rows = {"ds": [a, b, c, a], "t": [H0, H0, H0, H0 + HOUR_MS], "v": [100.0, 50.0, 30.0, 110.0]}
    assert gu_hourly_means(reg, rows) == {JUNG_GU: {"pm10": [(H0, 100.0), (H0 + HOUR_MS, 110.0)], "pm25": [(H0, 30.0)]},
                                          GANGNAM_GU: {"pm10": [(H0, 50.0)]}}

"""The simulator feed: deterministic, Seoul-shaped, valid, and runnable through the platform."""

from __future__ import annotations

import time
from collections import Counter
from datetime import datetime, timezone

import numpy as np
import pytest
from fastapi.testclient import TestClient

from citywall.city import load_city
from citywall.feeds.simulator import SimulatorFeed
from citywall.feeds.simulator.episodes import year_episodes
from citywall.feeds.simulator.sdot import SENTINEL_CHANNELS
from citywall.feeds.simulator.timebase import local
from citywall.ingest.batch import NO_TIME, ObservationBatch
from citywall.ingest.validate import Limits, validate
from citywall.observations.registry import Registry
from citywall.platform import Platform, Settings
from citywall.web.app import create_app

US = 1_000_000
HOUR_US = 3600 * US
DAY_US = 24 * HOUR_US


def kst(*args: int) -> int:
    """Epoch µs of a Seoul local time (UTC+9)."""
    return int(datetime(*args, tzinfo=timezone.utc).timestamp()) * US - 9 * HOUR_US


MONDAY_0512 = kst(2025, 5, 12)  # a Monday in May


@pytest.fixture(scope="module")
def city():
    return load_city("seoul")


@pytest.fixture(scope="module")
def feed(city):
    return SimulatorFeed(seed=2017).build(city, MONDAY_0512)


def hours(start_us: int, n: int, step_s: int = 3600) -> np.ndarray:
    return start_us + np.arange(n, dtype=np.int64) * step_s * US


def table(feed: SimulatorFeed, name: str, ticks: np.ndarray) -> dict[tuple[str, int], float]:
    keys, idx, t, v = feed.generate(name, ticks)
    return {(keys[i], int(tt)): float(x) for i, tt, x in zip(idx.tolist(), t.tolist(), v.tolist())}


# -- determinism -------------------------------------------------------------------------
@pytest.mark.parametrize("name,step,n", [("air", 3600, 30), ("weather", 3600, 30), ("roads", 300, 40), ("hotspots", 300, 40), ("sdot", 120, 12)])
def test_same_seed_same_values_whatever_the_start_and_batching(city, feed, name, step, n):
    other = SimulatorFeed(seed=2017).build(city, MONDAY_0512 + 5 * DAY_US)  # "started" days later
    ticks = hours(MONDAY_0512 + 7 * HOUR_US, n, step)
    whole = table(feed, name, ticks)
    # The other instance sees the same instants one tick at a time, in reverse order.
    pieces: dict = {}
    for t in ticks[::-1]:
        pieces.update(table(other, name, np.array([t])))
    assert whole == pieces and len(whole) > 0
    # A different seed is a different city.
    third = SimulatorFeed(seed=7).build(city, MONDAY_0512)
    assert table(third, name, ticks[:3]) != table(feed, name, ticks[:3])


def test_episode_calendar_is_seeded_and_seasonal():
    assert year_episodes(2017, 2025) == year_episodes(2017, 2025)
    assert year_episodes(2017, 2025) != year_episodes(2018, 2025)
    for year in range(2020, 2030):
        dust = [e for e in year_episodes(2017, year) if e.kind == "yellow_dust"]
        assert 2 <= len(dust) <= 8
        months = [datetime.fromtimestamp(e.plateau_start_us / US + 9 * 3600, timezone.utc).month for e in dust]
        assert all(2 <= m <= 6 for m in months)
        smog = [e for e in year_episodes(2017, year) if e.kind == "winter_smog"]
        assert all(datetime.fromtimestamp(e.plateau_start_us / US + 9 * 3600, timezone.utc).month in (11, 12, 1, 2, 3, 4) for e in smog)


# -- validity ----------------------------------------------------------------------------
def test_everything_passes_validation_except_deliberate_sentinels(city, feed):
    registry = Registry(city)
    things = feed.things()
    assert all(t.simulated and t.properties["source"] == "citywall simulator" for t in things)
    registry.add(*registry.plan(things))
    reasons: Counter = Counter()
    sentinel_keys: set[str] = set()
    windows = {"air": (3600, 24), "weather": (3600, 24), "roads": (300, 48), "hotspots": (300, 48), "sdot": (120, 20)}
    for start in (kst(2025, 1, 15, 5), kst(2025, 7, 20, 12), kst(2025, 4, 2, 18)):  # a winter dawn, a summer noon, a spring evening
        for name, (step, n) in windows.items():
            keys, idx, t, v = feed.generate(name, hours(start, n, step))
            ds = np.array([registry.ds_by_key[k] for k in keys])[idx]
            batch = ObservationBatch(ds=ds, t_us=t, value=v, source="simulator")
            last = np.full(registry.capacity, NO_TIME, dtype=np.int64)
            verdict = validate(batch, registry, last, int(t.max()), Limits(), lambda d, tt: np.full(len(d), np.nan))
            reasons.update(r for r in verdict.reason if r is not None)
            sentinel_keys |= {keys[i] for i in idx[verdict.reason == "sentinel"].tolist()}
    assert set(reasons) == {"sentinel"}, reasons
    assert reasons["sentinel"] > 0
    faulty = {t.key for t in things if t.properties.get("simulated_fault") == "sentinel"}
    assert {k.rsplit(":", 1)[0] for k in sentinel_keys} <= faulty
    assert {k.rsplit(":", 1)[1] for k in sentinel_keys} <= SENTINEL_CHANNELS


def test_the_city_is_covered(city, feed):
    things = feed.things()
    kinds = Counter(t.kind for t in things)
    assert kinds["air_station"] == 25 and kinds["hotspot"] == 116 and kinds["weather"] == 1
    assert 1000 <= kinds["sdot"] <= 1200 and kinds["road_link"] >= 100
    places = city.locate_many(np.array([t.lon for t in things]), np.array([t.lat for t in things]))
    for thing, (gu, _) in zip(things, places):
        if thing.kind == "air_station":
            assert gu == thing.key.split(":")[1], thing.name
        if thing.kind == "sdot":
            assert gu is not None
    sdot_gu = {gu for t, (gu, _) in zip(things, places) if t.kind == "sdot"}
    assert sdot_gu == set(city.districts)
    serials = [t.properties["serial"] for t in things if t.kind == "sdot"]
    assert len(set(serials)) == len(serials) and all(s.startswith("V02Q19") and len(s) == 11 for s in serials)
    codes = sorted(t.properties["area_cd"] for t in things if t.kind == "hotspot")
    assert codes == [f"POI{i:03d}" for i in range(1, 117)]
    faults = Counter(t.properties.get("simulated_fault") for t in things if t.kind == "sdot")
    assert all(faults[f] > 0 for f in ("sentinel", "freeze", "dropout", "drift"))


def test_sensor_failures_look_real(feed):
    keys, idx, t, v = feed.generate("sdot", hours(kst(2025, 5, 12, 0), 720, 120))  # one day
    sd = feed.streams["sdot"].comp
    fault = sd.sensors.fault
    sensor = idx // 14
    channel = idx % 14
    # dropouts: fewer rows from dropout sensors than from healthy ones
    rows = np.bincount(sensor, minlength=sd.n)
    assert rows[fault == "dropout"].mean() < 0.8 * rows[fault == None].mean()  # noqa: E711
    # freeze: a frozen sensor repeats its temperature for hours
    temp = channel == 2
    frozen = np.flatnonzero(fault == "freeze")
    runs = []
    for s_ in frozen:
        x = v[temp & (sensor == s_)]
        same = np.concatenate([[0], (np.diff(x) == 0).astype(int)])
        runs.append(max((len(r) for r in "".join(map(str, same)).split("0")), default=0))
    assert max(runs) >= 60  # two hours of 2-minute readings
    # healthy sensors follow their station: their PM2.5 correlates with it over the day
    healthy = np.flatnonzero(fault == None)[:50]  # noqa: E711
    pm = channel == 0
    assert all(np.ptp(v[pm & (sensor == s_)]) > 0 for s_ in healthy)


# -- patterns ----------------------------------------------------------------------------
def test_neighbouring_districts_correlate_more_than_distant_ones(city, feed):
    air = feed.air
    pm = air.fields(hours(MONDAY_0512, 24 * 7))["pm25"]  # a simulated week, hourly
    logs = np.log(pm)
    corr = np.corrcoef(logs.T)
    gus = [s.gu for s in air.stations]
    near, far = [], []
    for i in range(len(gus)):
        for j in range(i + 1, len(gus)):
            a, b = city.districts[gus[i]].geometry, city.districts[gus[j]].geometry
            km = np.hypot((air.lon[i] - air.lon[j]) * 88.2, (air.lat[i] - air.lat[j]) * 111.0)
            if a.touches(b) or a.intersects(b):
                near.append(corr[i, j])
            elif km > 15:
                far.append(corr[i, j])
    assert len(near) > 20 and len(far) > 20
    assert np.mean(near) > np.mean(far) + 0.03
    # e.g. Jongno and Jung (both 도심권) against Gangseo and Gangdong (west and east ends)
    assert corr[gus.index("11110"), gus.index("11140")] > corr[gus.index("11500"), gus.index("11740")]


def test_seasons_and_hours(feed):
    air = feed.air
    jan = air.fields(hours(kst(2025, 1, 6), 24 * 14))
    aug = air.fields(hours(kst(2025, 8, 4), 24 * 14))
    assert jan["pm25"].mean() > 1.3 * aug["pm25"].mean()  # PM high in winter
    lt = local(hours(kst(2025, 8, 4), 24 * 14))
    afternoon, night = (lt.hour >= 13) & (lt.hour <= 17), (lt.hour <= 5)
    assert aug["o3"][afternoon].mean() > 1.5 * aug["o3"][night].mean()  # O3 on summer afternoons
    assert aug["o3"].mean() > jan["o3"].mean()
    w = feed.weather.at(hours(kst(2025, 1, 6), 24 * 14))
    s = feed.weather.at(hours(kst(2025, 8, 4), 24 * 14))
    assert w.temperature.mean() < 3 < 22 < s.temperature.mean()


def test_forced_yellow_dust_crosses_the_pm10_advisory(city):
    start = kst(2025, 5, 12, 15)
    dusty = SimulatorFeed(seed=2017, episode="yellow_dust", episode_start=start / US, episodes=False).build(city)
    ticks = hours(start - 6 * HOUR_US, 30)
    pm10 = dusty.air.fields(ticks)["pm10"]
    above = pm10 >= 150
    # the longest run of hourly values at or above 150 ug/m3, per gu
    runs = [max((len(r) for r in "".join("1" if x else "0" for x in above[:, g]).split("0")), default=0) for g in range(25)]
    assert min(runs) >= 2, runs
    assert pm10.max() > 300
    clean = SimulatorFeed(seed=2017, episodes=False).build(city).air.fields(ticks)["pm10"]
    assert clean.max() < pm10.max() / 2
    status = dusty.status()
    assert status["forced_episode"]["kind"] == "yellow_dust"


def test_forced_winter_smog_crosses_the_pm25_advisory(city):
    start = kst(2025, 1, 10, 12)
    smoggy = SimulatorFeed(seed=2017, episode="winter_smog", episode_start=start / US).build(city)
    pm25 = smoggy.air.fields(hours(start, 24))["pm25"]
    assert ((pm25 >= 75).sum(axis=0) >= 2).all()


def test_hotspots_follow_the_day(feed):
    hs = feed.streams["hotspots"].comp
    ticks = hours(MONDAY_0512, 7 * 288, 300)
    lt = local(ticks)
    keys, idx, t, v = feed.generate("hotspots", ticks)
    level = v[idx % 3 == 0].reshape(len(ticks), -1)
    assert set(np.unique(level)) <= {1.0, 2.0, 3.0, 4.0}
    low, high = v[idx % 3 == 1], v[idx % 3 == 2]
    assert (high > low).all() and (low >= 0).all()
    cats = np.array([p.category for p in hs.places])
    at = lambda hour: (lt.hour >= hour) & (lt.hour < hour + 1)  # noqa: E731
    assert level[at(4)].mean() < 1.3
    assert level[at(19) & ~lt.offday][:, cats == "발달상권"].mean() > level[at(4)][:, cats == "발달상권"].mean() + 1
    assert level[at(13)][:, cats == "고궁·문화유산"].mean() > level[at(4)][:, cats == "고궁·문화유산"].mean() + 1
    assert level[at(14) & lt.offday][:, cats == "공원"].mean() > level[at(14) & ~lt.offday][:, cats == "공원"].mean()


def test_roads_slow_down_in_the_rush_hour(feed):
    roads = feed.streams["roads"].comp
    ticks = hours(MONDAY_0512, 5 * 288, 300)  # Monday to Friday
    lt = local(ticks)
    speed = roads.speeds(ticks)
    rush = (lt.hour >= 8) & (lt.hour < 9)
    night = (lt.hour >= 3) & (lt.hour < 4)
    assert speed[rush].mean() < 0.75 * speed[night].mean()
    evening = (lt.hour >= 18) & (lt.hour < 19)
    assert speed[evening].mean() < speed[rush].mean() * 1.1
    types = np.array([lk.type for lk in roads.links])
    assert speed[night][:, types == "expressway"].mean() > 60
    sat = roads.speeds(hours(kst(2025, 5, 17, 8), 12, 300))  # a Saturday at 8
    assert sat.mean() > speed[rush].mean()


# -- through the platform ----------------------------------------------------------------
def pinned(platform: Platform, start_us: int) -> None:
    """Run the platform clock from a fixed instant at its speed (deterministic tests)."""
    real0, speed = time.time(), platform.clock.speed
    platform.clock.now_us = lambda: start_us + int((time.time() - real0) * 1e6 * speed)  # type: ignore[method-assign]


SMALL = {"sdot_count": 60, "backfill_hours": 3, "sdot_backfill_hours": 0.5}
START = kst(2025, 5, 12, 8, 10)


def wait_for(predicate, timeout: float = 30.0) -> None:
    end = time.time() + timeout
    while time.time() < end:
        if predicate():
            return
        time.sleep(0.1)
    raise AssertionError("timed out")


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    db = tmp_path_factory.mktemp("sim") / "x.duckdb"
    platform = Platform(Settings(db=str(db), feed="simulator", speed=600, feed_options=SMALL, mqtt="off"))
    pinned(platform, START)
    with TestClient(create_app(platform)) as client:
        wait_for(lambda: platform.feed_status()["simulator"]["phase"] == "live")
        yield platform, client, db


def test_the_platform_shows_every_gu(live):
    platform, client, _ = live
    # the snapshot is refreshed in the background a few times a second: wait for this version
    version = platform.live.version
    wait_for(lambda: client.get("/api/snapshot").json()["version"] >= version, 5)
    snap = client.get("/api/snapshot").json()
    gus = snap["aggregates"]["gu"]
    assert set(gus) == set(platform.city.districts)
    assert all("pm10" in gus[g]["air_station"] for g in gus)
    health = client.get("/api/health").json()
    assert health["simulated"] is True and health["feeds"]["simulator"]["simulated"] is True
    things = client.get("/api/things").json()
    assert things and all(t["simulated"] and t["properties"]["source"] == "citywall simulator" for t in things)
    kinds = Counter(t["kind"] for t in things)
    assert kinds["air_station"] == 25 and kinds["hotspot"] == 116 and kinds["sdot"] == 60


def test_only_sentinels_are_refused(live):
    platform, client, _ = live
    status = platform.feed_status()["simulator"]
    assert status["rows_accepted"] > 10_000
    counts = client.get("/api/quarantine").json()["counts"]
    assert set(counts) <= {"sentinel"} and set(status["rejected_by_reason"]) <= {"sentinel"}


def test_speed_runs_the_feed_faster_than_real_time(live):
    platform, _, _ = live
    status = platform.feed_status()["simulator"]
    t0, real0 = datetime.fromisoformat(status["last_batch_time"]).timestamp(), time.time()
    wait_for(lambda: datetime.fromisoformat(platform.feed_status()["simulator"]["last_batch_time"]).timestamp() >= t0 + 600, 10)
    # 10 platform minutes in well under 10 real minutes (x600: about a second)
    assert time.time() - real0 < 5


def test_restart_and_another_start_time_agree(live, tmp_path):
    platform, _, db = live
    options = {**SMALL, "components": ["air", "roads", "hotspots", "weather"]}
    other = Platform(Settings(db=str(tmp_path / "y.duckdb"), feed="simulator", speed=600, feed_options=options, mqtt="off"))
    pinned(other, START + 2 * HOUR_US)  # started two hours later
    with TestClient(create_app(other)):
        wait_for(lambda: other.feed_status()["simulator"]["phase"] == "live")

        def rows(p: Platform) -> dict:
            got = p.store.reader().execute(
                "SELECT d.key, epoch_us(o.phenomenon_time), o.result FROM observations o JOIN datastreams d ON d.id = o.datastream_id "
                "WHERE d.key LIKE 'air:%' OR d.key LIKE 'road:%'").fetchall()
            return {(k, t): r for k, t, r in got}

        a, b = rows(platform), rows(other)
        common = set(a) & set(b)
        assert len(common) > 1000
        assert all(a[k] == b[k] for k in common)


def test_a_restart_reuses_its_things_and_fills_the_gap(tmp_path):
    db = str(tmp_path / "r.duckdb")
    options = {"components": ["air", "roads", "weather"], "backfill_hours": 2}
    first = Platform(Settings(db=db, feed="simulator", speed=600, feed_options=options, mqtt="off"))
    pinned(first, START)
    with TestClient(create_app(first)):
        wait_for(lambda: first.feed_status()["simulator"]["phase"] == "live")
        ids = dict(first.registry.ds_by_key)
    again = Platform(Settings(db=db, feed="simulator", speed=600, feed_options=options, mqtt="off"))
    pinned(again, START + 5 * HOUR_US)
    with TestClient(create_app(again)):
        wait_for(lambda: again.feed_status()["simulator"]["phase"] == "live")
        assert again.registry.ds_by_key == ids
        status = again.feed_status()["simulator"]
        assert status["rows_accepted"] > 0 and status["rows_rejected"] == 0
        hours_stored = again.store.reader().execute(
            "SELECT count(DISTINCT phenomenon_time) FROM observations WHERE datastream_id = ?", [ids["air:11110:pm10"]]).fetchone()[0]
        assert hours_stored >= 4  # two hours before the first start, two before the restart

"""History (raw, minute, hour, day; per datastream and per place), rollup, retention and restarts,
on small data written through the pipeline with hand-computed expectations."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from conftest import (CITY_HALL, COEX, DAY_US, FIXED_NOW_US, GANGNAM_GU, GYEONGBOKGUNG, HOUR_US, JUNG_GU, MINUTE_US, MYEONGDONG,
                      US, obs, post, register, running, stored)

NOW = FIXED_NOW_US  # 2025-06-15 03:30 UTC


def utc(*args: int) -> int:
    return int(datetime(*args, tzinfo=timezone.utc).timestamp()) * US


def ms(us: int) -> int:
    return us // 1000


THINGS = [
    {"key": "a", "name": "A", "kind": "air_station", "lon": CITY_HALL[0], "lat": CITY_HALL[1],
     "datastreams": [{"quantity": "pm10"}, {"quantity": "pm25"}]},
    {"key": "b", "name": "B", "kind": "sdot", "lon": MYEONGDONG[0], "lat": MYEONGDONG[1], "datastreams": [{"quantity": "pm10"}]},
    {"key": "c", "name": "C", "kind": "air_station", "lon": COEX[0], "lat": COEX[1], "datastreams": [{"quantity": "pm10"}]},
    {"key": "d", "name": "D", "kind": "air_station", "lon": GYEONGBOKGUNG[0], "lat": GYEONGBOKGUNG[1], "datastreams": [{"quantity": "pm10"}]},
]

H10 = utc(2025, 6, 14, 10)
H11 = utc(2025, 6, 14, 11)
A_PM10 = [(H10 + 10 * US, 1.0), (H10 + 50 * US, 3.0), (H10 + 80 * US, 5.0), (H11 - US, 7.0), (H11, 11.0)]
B_PM10 = [(H10 + 30 * MINUTE_US, 20.0)]
C_PM10 = [(H10 + 20 * MINUTE_US, 50.0)]
D_PM10 = [(H10 + 15 * MINUTE_US, 100.0)]
# Around midnight in Seoul (UTC+9): 14:30 UTC is 23:30 KST, 15:30 UTC is 00:30 KST the next day.
A_PM25 = [(utc(2025, 6, 13, 16), 6.0), (utc(2025, 6, 14, 14, 30), 10.0), (utc(2025, 6, 14, 15, 30), 30.0)]


def load(client) -> dict[str, int]:
    ids = register(client, THINGS)
    rows = [obs(ids["a:pm10"], t, v) for t, v in A_PM10] + [obs(ids["b:pm10"], t, v) for t, v in B_PM10]
    rows += [obs(ids["c:pm10"], t, v) for t, v in C_PM10] + [obs(ids["d:pm10"], t, v) for t, v in D_PM10]
    rows += [obs(ids["a:pm25"], t, v, offset_minutes=540) for t, v in A_PM25]
    res = post(client, rows)
    assert res["accepted"] == len(rows), res
    return ids


def history(client, **params) -> dict:
    for k in ("start", "end"):
        if isinstance(params.get(k), int):
            params[k] = str(ms(params[k]))
    r = client.get("/api/history", params=params)
    assert r.status_code == 200, r.text
    return r.json()


def series(body: dict) -> list[tuple[int, float, int]]:
    return list(zip(body["t"], body["v"], body["n"]))


HOUR_WINDOW = {"start": "2025-06-14T10:00:00Z", "end": "2025-06-14T21:00:00+09:00"}  # 10:00-12:00 UTC

# (query, aggregate) -> expected [(bucket start µs, value, n)]
EXPECTED = {
    ("a:pm10", "hour", "mean"): [(H10, 4.0, 4), (H11, 11.0, 1)],
    ("a:pm10", "hour", "min"): [(H10, 1.0, 4), (H11, 11.0, 1)],
    ("a:pm10", "hour", "max"): [(H10, 7.0, 4), (H11, 11.0, 1)],
    ("a:pm10", "hour", "last"): [(H10, 7.0, 4), (H11, 11.0, 1)],
    ("a:pm10", "minute", "mean"): [(H10, 2.0, 2), (H10 + MINUTE_US, 5.0, 1), (H11 - MINUTE_US, 7.0, 1), (H11, 11.0, 1)],
    ("a:pm10", "minute", "min"): [(H10, 1.0, 2), (H10 + MINUTE_US, 5.0, 1), (H11 - MINUTE_US, 7.0, 1), (H11, 11.0, 1)],
    ("a:pm10", "minute", "max"): [(H10, 3.0, 2), (H10 + MINUTE_US, 5.0, 1), (H11 - MINUTE_US, 7.0, 1), (H11, 11.0, 1)],
    ("a:pm10", "minute", "last"): [(H10, 3.0, 2), (H10 + MINUTE_US, 5.0, 1), (H11 - MINUTE_US, 7.0, 1), (H11, 11.0, 1)],
}


@pytest.fixture
def loaded(db):
    with running(db, now_us=NOW) as (platform, client, clock):
        ids = load(client)
        yield platform, client, clock, ids


def test_raw_history_is_every_row_in_order(loaded):
    _, client, _, _ = loaded
    body = history(client, datastream="a:pm10", resolution="raw", **HOUR_WINDOW)
    assert body["unit"] == "ug/m3" and body["quantity"] == "pm10"
    assert body["t"] == [ms(t) for t, _ in A_PM10]
    assert body["v"] == [v for _, v in A_PM10]
    # the window is half-open: [start, end)
    body = history(client, datastream="a:pm10", resolution="raw", start=H10 + 10 * US, end=H11)
    assert body["v"] == [1.0, 3.0, 5.0, 7.0]


@pytest.mark.parametrize(("key", "resolution", "aggregate"), sorted(EXPECTED))
def test_bucketed_history_of_one_datastream(loaded, key, resolution, aggregate):
    _, client, _, _ = loaded
    body = history(client, datastream=key, resolution=resolution, aggregate=aggregate, **HOUR_WINDOW)
    assert series(body) == [(ms(t), pytest.approx(v), n) for t, v, n in EXPECTED[(key, resolution, aggregate)]]


def test_day_buckets_follow_seoul_time(loaded):
    _, client, _, _ = loaded
    window = {"start": "2025-06-13T00:00:00+09:00", "end": "2025-06-16T00:00:00+09:00"}
    body = history(client, datastream="a:pm25", resolution="day", **window)
    # a Seoul day starts at 15:00 UTC the day before
    assert series(body) == [(ms(utc(2025, 6, 13, 15)), 8.0, 2), (ms(utc(2025, 6, 14, 15)), 30.0, 1)]
    body = history(client, datastream="a:pm25", resolution="day", aggregate="last", **window)
    assert body["v"] == [10.0, 30.0]
    body = history(client, datastream="a:pm10", resolution="day", **window)
    assert series(body) == [(ms(utc(2025, 6, 13, 15)), pytest.approx(27 / 5), 5)]


PLACES = [
    # (place filter, expected hour 10 (mean, min, max, last, n), expected hour 11 or None)
    ({"gu": JUNG_GU}, (36 / 5, 1.0, 20.0, 7.0, 5), (11.0, 1)),
    ({"gu": JUNG_GU, "kind": "sdot"}, (20.0, 20.0, 20.0, 20.0, 1), None),
    ({"gu": JUNG_GU, "kind": "air_station"}, (4.0, 1.0, 7.0, 7.0, 4), (11.0, 1)),
    ({"dong": "11140103"}, (4.0, 1.0, 7.0, 7.0, 4), (11.0, 1)),  # 태평로1가: A only
    ({"dong": "11140127"}, (20.0, 20.0, 20.0, 20.0, 1), None),  # 명동2가: B only
    ({"region": "central"}, (136 / 6, 1.0, 100.0, 7.0, 6), (11.0, 1)),
    ({"region": "southeast"}, (50.0, 50.0, 50.0, 50.0, 1), None),
    ({"gu": GANGNAM_GU}, (50.0, 50.0, 50.0, 50.0, 1), None),
    ({}, (186 / 7, 1.0, 100.0, 7.0, 7), (11.0, 1)),  # the whole city
    ({"region": "northwest"}, None, None),
]


@pytest.mark.parametrize(("place", "h10", "h11"), PLACES)
def test_history_of_a_place(loaded, place, h10, h11):
    _, client, _, _ = loaded
    got = {agg: history(client, quantity="pm10", resolution="hour", aggregate=agg, **place, **HOUR_WINDOW)
           for agg in ("mean", "min", "max", "last")}
    if h10 is None:
        assert all(b["t"] == [] for b in got.values())
        return
    mean, low, high, last, n = h10
    assert got["mean"]["t"][0] == ms(H10) and got["mean"]["n"][0] == n
    assert got["mean"]["v"][0] == pytest.approx(mean)
    assert (got["min"]["v"][0], got["max"]["v"][0], got["last"]["v"][0]) == (low, high, last)
    if h11 is None:
        assert got["mean"]["t"] == [ms(H10)]
    else:
        assert series(got["mean"])[1] == (ms(H11), h11[0], h11[1])
    assert got["mean"]["datastreams"] >= 1


def test_history_rejects_bad_queries(loaded):
    _, client, _, _ = loaded
    assert client.get("/api/history", params={"datastream": "nope"}).status_code == 404
    assert client.get("/api/history", params={"datastream": "a:pm10", "start": "2025-06-14T10:00:00"}).status_code == 400  # no offset
    assert client.get("/api/history", params={"datastream": "a:pm10", "start": "2025-06-14T12:00:00Z", "end": "2025-06-14T10:00:00Z"}).status_code == 400
    assert client.get("/api/history", params={"datastream": "a:pm10", "resolution": "week"}).status_code == 422
    assert client.get("/api/history", params={"quantity": "pm10", "gu": JUNG_GU, "resolution": "raw"}).status_code == 400
    assert client.get("/api/history", params={"quantity": "pm10", "gu": "99999"}).status_code == 404
    assert client.get("/api/history", params={"quantity": "pm10", "region": "north-pole"}).status_code == 404
    assert client.get("/api/history", params={"quantity": "unobtainium"}).status_code == 400


# -- rollup and retention ---------------------------------------------------------------

QUERIES = [
    {"datastream": "a:pm10", "resolution": "hour"},
    {"datastream": "a:pm10", "resolution": "day"},
    {"datastream": "a:pm25", "resolution": "day"},
    {"datastream": "a:pm25", "resolution": "hour"},
    {"quantity": "pm10", "gu": JUNG_GU, "resolution": "hour"},
    {"quantity": "pm10", "region": "central", "resolution": "day"},
    {"quantity": "pm10", "resolution": "hour", "kind": "air_station"},
]
WIDE = {"start": "2025-06-13T00:00:00+09:00", "end": "2025-06-16T00:00:00+09:00"}


def snapshot_of_queries(client) -> dict:
    out = {}
    for i, q in enumerate(QUERIES):
        for agg in ("mean", "min", "max", "last"):
            body = history(client, aggregate=agg, **q, **WIDE)
            out[(i, agg)] = (body["t"], [round(v, 9) for v in body["v"]], body["n"])
    return out


def hourly_rows(platform, ds: int) -> list[tuple]:
    return platform.store.reader().execute(
        "SELECT epoch_us(hour), n, mean, min, max, last, epoch_us(last_time) FROM observations_hourly WHERE datastream_id = ? ORDER BY 1",
        [ds]).fetchall()


def test_rollup_and_retention_keep_hour_and_day_history(loaded):
    platform, client, _, ids = loaded
    before = snapshot_of_queries(client)
    assert all(v[0] for v in before.values()), "every query has data"
    out = platform.pipeline.rollup(None, None).result(10)
    assert out["watermark_us"] == NOW - NOW % HOUR_US - HOUR_US  # complete hours up to an hour ago
    assert hourly_rows(platform, ids["a:pm10"]) == [(H10, 4, 4.0, 1.0, 7.0, 7.0, H11 - US), (H11, 1, 11.0, 11.0, 11.0, 11.0, H11)]
    assert snapshot_of_queries(client) == before
    # rolling up again adds nothing
    platform.pipeline.rollup(None, None).result(10)
    assert platform.store.counts()["observations_hourly"] == 8
    assert snapshot_of_queries(client) == before
    # retention: every raw row is older than the watermark, so all go; hour and day history stay
    out = platform.pipeline.rollup(0, None).result(10)
    assert out["observations"] == 11
    assert stored(platform) == []
    assert history(client, datastream="a:pm10", resolution="raw", **WIDE)["t"] == []
    assert snapshot_of_queries(client) == before
    # hourly retention drops the old hours too
    platform.pipeline.rollup(0, 0).result(10)
    assert platform.store.counts()["observations_hourly"] == 0


def test_buckets_mix_rolled_up_and_raw_rows(loaded):
    platform, client, _, ids = loaded
    platform.pipeline.rollup(0, None).result(10)  # everything loaded so far is hourly only
    watermark = NOW - NOW % HOUR_US - HOUR_US  # 02:00 UTC
    res = post(client, [obs(ids["a:pm25"], watermark + 30 * MINUTE_US, 50.0)])  # after the watermark: raw
    assert res["accepted"] == 1
    body = history(client, datastream="a:pm25", resolution="day", **WIDE)
    # the Seoul day of 2025-06-15 holds 30 (rolled up) and 50 (raw)
    assert series(body) == [(ms(utc(2025, 6, 13, 15)), 8.0, 2), (ms(utc(2025, 6, 14, 15)), 40.0, 2)]
    assert history(client, datastream="a:pm25", resolution="day", aggregate="last", **WIDE)["v"] == [10.0, 50.0]
    assert history(client, datastream="a:pm25", resolution="day", aggregate="min", **WIDE)["v"] == [6.0, 30.0]


def test_late_data_into_a_rolled_up_hour_is_rolled_up_again(loaded):
    platform, client, _, ids = loaded
    platform.pipeline.rollup(None, None).result(10)
    res = post(client, [obs(ids["a:pm10"], H10 + 30 * MINUTE_US, 9.0), obs(ids["a:pm10"], H10 + 10 * US, 1.0)])
    assert [x["reason"] for x in res["rejected"]] == ["duplicate"] and res["accepted"] == 1
    platform.pipeline.rollup(None, None).result(10)
    expect = [(ms(H10), 5.0, 5), (ms(H11), 11.0, 1)]  # (1+3+5+7+9)/5
    assert series(history(client, datastream="a:pm10", resolution="hour", **WIDE)) == expect
    assert hourly_rows(platform, ids["a:pm10"])[0] == (H10, 5, 5.0, 1.0, 9.0, 7.0, H11 - US)
    platform.pipeline.rollup(0, None).result(10)
    assert series(history(client, datastream="a:pm10", resolution="hour", **WIDE)) == expect
    assert history(client, datastream="a:pm10", resolution="hour", aggregate="max", **WIDE)["v"] == [9.0, 11.0]


def test_rows_in_hours_whose_raw_data_was_deleted_are_refused_as_too_old(loaded):
    """Once retention has deleted an hour's raw rows, that hour cannot be re-rolled: a late row
    for it is refused (and quarantined) instead of replacing the rolled-up hour with itself."""
    platform, client, _, ids = loaded
    expect = series(history(client, datastream="a:pm10", resolution="hour", **WIDE))
    assert len(expect) == 2
    platform.pipeline.rollup(0, None).result(10)  # every raw row goes; hourly rows stay
    res = post(client, [obs(ids["a:pm10"], H10 + 31 * MINUTE_US, 100.0)])
    assert res["accepted"] == 0 and [x["reason"] for x in res["rejected"]] == ["too_old"]
    assert "retention" in res["rejected"][0]["detail"]
    platform.pipeline.rollup(0, None).result(10)
    assert series(history(client, datastream="a:pm10", resolution="hour", **WIDE)) == expect


def test_late_data_is_rolled_up_even_after_a_restart(db):
    with running(db, now_us=NOW) as (platform, client, _):
        ids = load(client)
        platform.pipeline.rollup(None, None).result(10)
        assert post(client, [obs(ids["a:pm10"], H10 + 30 * MINUTE_US, 9.0)])["accepted"] == 1
    # the process stops before its next rollup; the new one must still redo that hour
    with running(db, now_us=NOW) as (platform, client, _):
        platform.pipeline.rollup(None, None).result(10)
        assert series(history(client, datastream="a:pm10", resolution="hour", **WIDE)) == [(ms(H10), 5.0, 5), (ms(H11), 11.0, 1)]
        platform.pipeline.rollup(0, None).result(10)
        assert series(history(client, datastream="a:pm10", resolution="hour", **WIDE)) == [(ms(H10), 5.0, 5), (ms(H11), 11.0, 1)]


def test_late_data_into_a_partly_retained_hour_keeps_the_rolled_up_rows(db):
    """Raw retention of 1 day (and the matching too_old window): late rows into the oldest hour must
    not replace the hour's rolled-up rows with only what is still raw."""
    hour = H10 - DAY_US + HOUR_US  # 2025-06-13 11:00 UTC; the clock starts a day and a minute later
    with running(db, now_us=hour + DAY_US + MINUTE_US, raw_retention_days=1.0) as (platform, client, clock):
        ids = register(client, THINGS)
        ds = ids["a:pm10"]
        assert post(client, [obs(ds, hour + 5 * MINUTE_US, 10.0), obs(ds, hour + 40 * MINUTE_US, 20.0)])["accepted"] == 2
        clock.now_us = hour + DAY_US + 30 * MINUTE_US
        platform.pipeline.rollup(1.0, None).result(10)  # the retention cut falls inside the hour
        window = {"start": str(ms(hour)), "end": str(ms(hour + HOUR_US))}
        assert series(history(client, datastream="a:pm10", resolution="hour", **window)) == [(ms(hour), 15.0, 2)]
        res = post(client, [obs(ds, hour + 35 * MINUTE_US, 30.0)])  # late, but inside the 1-day window
        assert res["accepted"] == 1
        platform.pipeline.rollup(1.0, None).result(10)
        assert series(history(client, datastream="a:pm10", resolution="hour", **window)) == [(ms(hour), 20.0, 3)]


# -- restarts ---------------------------------------------------------------------------

def test_registry_live_state_and_duplicates_survive_a_restart(db):
    with running(db, now_us=NOW) as (platform, client, _):
        ids = load(client)
        fresh = {ids["c:pm10"]: (NOW - 10 * MINUTE_US, 42.0)}
        res1 = post(client, [obs(ds, t, v) for ds, (t, v) in fresh.items()])
        things = client.get("/api/things").json()
        datastreams = client.get("/api/datastreams").json()
        live = platform.live.values()
        history_before = history(client, quantity="pm10", resolution="hour", **WIDE)
    with running(db, now_us=NOW) as (platform, client, _):
        assert client.get("/api/things").json() == things
        assert client.get("/api/datastreams").json() == datastreams
        assert platform.live.values() == live
        snap = client.get("/api/snapshot").json()
        by_id = dict(zip(snap["datastreams"]["ids"], zip(snap["datastreams"]["t"], snap["datastreams"]["v"])))
        assert by_id[ids["c:pm10"]] == (ms(NOW - 10 * MINUTE_US), 42.0)
        assert by_id[ids["a:pm25"]] == (ms(A_PM25[-1][0]), A_PM25[-1][1])
        # the fresh value counts in the live aggregates of its gu again
        assert snap["aggregates"]["gu"][GANGNAM_GU]["air_station"]["pm10"]["n"] == 1
        assert history(client, quantity="pm10", resolution="hour", **WIDE) == history_before
        # stored rows are still recognised: no double counting, no overwriting
        again = post(client, [obs(ids["a:pm10"], t, v) for t, v in A_PM10] + [obs(ids["a:pm10"], A_PM10[0][0], 99.0)])
        assert again["accepted"] == 0
        assert [x["reason"] for x in again["rejected"]] == ["duplicate"] * len(A_PM10) + ["conflicting_duplicate"]
        assert again["batch_id"] > res1["batch_id"]
        # registering the same things again creates nothing and keeps the ids
        r = client.post("/api/things", json=THINGS).json()
        assert (r["created_things"], r["created_datastreams"]) == (0, 0) and r["datastreams"] == ids
        # new data continues normally
        assert post(client, [obs(ids["a:pm10"], NOW - MINUTE_US, 12.0)])["accepted"] == 1


def physical_order(platform) -> list[tuple[int, int]]:
    return platform.store.reader().execute("SELECT datastream_id, epoch_us(phenomenon_time) FROM observations ORDER BY rowid").fetchall()


def test_compaction_sorts_whole_days_then_hours_and_changes_no_answer(loaded):
    platform, client, _, ids = loaded
    store = platform.store
    before, rows = snapshot_of_queries(client), stored(platform)
    raw = history(client, datastream="a:pm10", resolution="raw", **WIDE)
    assert physical_order(platform) != sorted(physical_order(platform))  # written in arrival order
    done = []
    while (step := store.compact(NOW - NOW % HOUR_US)) is not None:
        done.append(step)
    # 2025-06-13 and 2025-06-14 (UTC) are whole days before now; 06-15 has no rows before 03:00
    assert [(d["from_us"], d["to_us"]) for d in done] == [(utc(2025, 6, 13), utc(2025, 6, 14)), (utc(2025, 6, 14), utc(2025, 6, 15))]
    assert sum(d["rows"] for d in done) == len(rows) == 11
    assert store.get_meta("compacted_until_us") == str(utc(2025, 6, 15))
    order = physical_order(platform)
    assert order[:1] == [(ids["a:pm25"], utc(2025, 6, 13, 16))] and order[1:] == sorted(order[1:])
    assert stored(platform) == rows
    assert snapshot_of_queries(client) == before
    assert history(client, datastream="a:pm10", resolution="raw", **WIDE) == raw
    # compacted days still refuse duplicates and take late data
    res = post(client, [obs(ids["a:pm10"], H10 + 10 * US, 1.0), obs(ids["a:pm10"], H10 + 30 * MINUTE_US, 9.0)])
    assert res["accepted"] == 1 and [x["reason"] for x in res["rejected"]] == ["duplicate"]
    assert len(stored(platform)) == 12
    assert store.compact(NOW - NOW % HOUR_US) is None  # a late row does not reopen a compacted day


def test_compaction_of_the_current_day_goes_hour_by_hour(db):
    now = utc(2025, 6, 15, 5, 30)
    with running(db, now_us=now) as (platform, client, _):
        ids = register(client, THINGS)
        rows = [obs(ids[k], utc(2025, 6, 15, h, m), float(h * 100 + m)) for h in (1, 2, 4) for m in (50, 10) for k in ("c:pm10", "a:pm10")]
        assert post(client, rows)["accepted"] == 12
        done = []
        while (step := platform.store.compact(utc(2025, 6, 15, 4))) is not None:
            done.append((step["from_us"], step["to_us"], step["rows"]))
        # the day is not whole: hours 01 and 02 are sorted; 04 is not complete before the mark
        assert done == [(utc(2025, 6, 15, 1), utc(2025, 6, 15, 2), 4), (utc(2025, 6, 15, 2), utc(2025, 6, 15, 3), 4)]
        assert platform.store.get_meta("compacted_until_us") is None
        order = physical_order(platform)
        hour1, hour2 = order[4:8], order[8:]
        assert hour1 == sorted(hour1) and {t for _, t in hour1} == {utc(2025, 6, 15, 1, m) for m in (10, 50)}
        assert hour2 == sorted(hour2) and {t for _, t in hour2} == {utc(2025, 6, 15, 2, m) for m in (10, 50)}
        assert order[:4] == [(ids["c:pm10"], utc(2025, 6, 15, 4, 50)), (ids["a:pm10"], utc(2025, 6, 15, 4, 50)),
                                                                 (ids["c:pm10"], utc(2025, 6, 15, 4, 10)), (ids["a:pm10"], utc(2025, 6, 15, 4, 10))]
        assert len(stored(platform)) == 12


def test_housekeeping_compacts_beside_the_writer(loaded):
    platform, client, _, ids = loaded
    assert client.portal.call(platform.compact, NOW - NOW % HOUR_US) == 2  # the two whole days
    assert client.portal.call(platform.compact, NOW - NOW % HOUR_US) == 0
    assert len(stored(platform)) == 11

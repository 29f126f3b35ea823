"""The Seoul Open API feed against recorded answers served by a local HTTP server (never the internet):
reading every source and its edge cases, the result codes, accidents as incidents, the quarantine,
and an outage of the API (errors, then connection refused) with recovery."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from citywall.feeds import make_feed, make_feeds
from citywall.feeds.seoul import SeoulFeed
from citywall.feeds.seoul.client import (Backoff, SeoulApiError, SeoulClient, SeoulHttpError, SeoulPayloadError, SeoulUnreachable,
                                         parse)
from citywall.feeds.seoul.values import BadValue, kst_us, number, rows
from conftest import FIXED_NOW_US, HOUR_US, MINUTE_US, running, wait_for
from seoul_server import RECORDED, RecordedSeoulApi

KEY = "sample-key-0000"
PLACES = "광화문·덕수궁,강남역,명동 관광특구"
LINKS = [{"link_id": "1220003800", "name": "세종대로 (세종로사거리→광화문)", "lon": 126.9769, "lat": 37.5727},
         {"link_id": "1220003900", "name": "세종대로 (광화문→세종로사거리)", "lon": 126.9769, "lat": 37.5727},
         {"link_id": "1220009999", "name": "a link the service has no data for", "lon": 126.99, "lat": 37.56}]
NOON_KST_US = FIXED_NOW_US - 30 * MINUTE_US  # the recorded hour: 2025-06-15 12:00 KST


@pytest.fixture
def api() -> Iterator[RecordedSeoulApi]:
    server = RecordedSeoulApi(KEY).start()
    yield server
    server.stop()


def options(api: RecordedSeoulApi, **extra: Any) -> dict[str, Any]:
    return {"api_key": KEY, "base_url": api.base_url, "places": PLACES, "traffic_links": LINKS, "timeout_s": 5,
            "sdot_page_rows": 50, **extra}


def poll(client, platform, source, api: RecordedSeoulApi) -> dict[str, Any]:  # noqa: ANN001
    """One poll of one source, on the platform's event loop."""
    async def go() -> dict[str, Any]:
        http = SeoulClient(KEY, api.base_url, timeout_s=5)
        try:
            things = source.things(platform)
            if things:
                await platform.register(things)
            return await source.poll(http, platform)
        finally:
            await http.aclose()
    return client.portal.call(go)


def value(platform, key: str) -> list[tuple[int, float]]:  # noqa: ANN001
    ds = platform.registry.ds_by_key[key]
    got = platform.store.reader().execute(
        "SELECT epoch_us(phenomenon_time), result FROM observations WHERE datastream_id = ? ORDER BY 1", [ds]).fetchall()
    return [(int(t), float(v)) for t, v in got]


def quarantine(platform, source: str | None = None) -> list[dict[str, Any]]:  # noqa: ANN001
    return platform.store.quarantined(source=source, limit=1000)


def seoul_feed(platform) -> SeoulFeed:  # noqa: ANN001
    return next(f for f in platform.feeds if f.name == "seoul")


# -- values and envelopes ----------------------------------------------------------------------
def test_values_as_the_api_sends_them() -> None:
    assert number(25.0) == 25.0 and number("0.048") == 0.048 and number(" 1,234 ") == 1234.0
    assert number("-") is None and number("") is None and number(None) is None
    with pytest.raises(BadValue, match="PM10 '점검중' is not a number"):
        number("점검중", "PM10")
    assert rows({"a": 1}) == [{"a": 1}] and rows([{"a": 1}, {"b": 2}]) == [{"a": 1}, {"b": 2}] and rows("") == [] and rows(None) == []
    assert kst_us("202506151200") == NOON_KST_US
    assert kst_us("2025-06-15 12:00") == kst_us("2025-06-15_12:00:00") == NOON_KST_US
    assert kst_us("202506142400") == kst_us("202506150000")  # hour 24 is midnight of the next day
    assert kst_us("2025061512") == NOON_KST_US  # YYYYMMDDHH: 12:00, not read as 01:02 by a YYYYMMDDHHMM pattern
    assert kst_us("2025061424") == kst_us("2025-06-15 00:00")
    with pytest.raises(BadValue, match="MSRDT 'yesterday'"):
        kst_us("yesterday", "MSRDT")


def test_result_codes_become_clear_errors() -> None:
    assert parse("RealtimeCityAir", (RECORDED / "INFO-200.json").read_bytes()).empty
    with pytest.raises(SeoulApiError, match=r"RealtimeCityAir: ERROR-500 서버 오류입니다.*the service had a server error") as err:
        parse("RealtimeCityAir", (RECORDED / "ERROR-500.json").read_bytes())
    assert err.value.code == "ERROR-500"
    with pytest.raises(SeoulApiError, match=r"INFO-100 .*the API key is not valid \(check CITYWALL_SEOUL_API_KEY\)"):
        parse("citydata", (RECORDED / "INFO-100.json").read_bytes(), root="CITYDATA")
    with pytest.raises(SeoulApiError, match="ERROR-336.*at most 1000 rows a call"):
        parse("IotVdata017", (RECORDED / "ERROR-336.json").read_bytes())
    with pytest.raises(SeoulPayloadError, match="not JSON") as bad:
        parse("RealtimeCityAir", b"<html>busy</html>")
    assert bad.value.body == b"<html>busy</html>"
    with pytest.raises(SeoulPayloadError, match="no RESULT code"):
        parse("RealtimeCityAir", b'{"something": "else"}')
    # citydata puts its code under dotted names; TrafficInfo is XML
    ok = parse("citydata", (RECORDED / "citydata-POI009.json").read_bytes(), root="CITYDATA")
    assert ok.code == "INFO-000" and ok.section["AREA_CD"] == "POI009"
    xml = parse("TrafficInfo", (RECORDED / "TrafficInfo-1220003800.xml").read_bytes(), fmt="xml")
    assert xml.total == 1 and xml.section["row"]["prcs_spd"] == "17"
    assert parse("TrafficInfo", (RECORDED / "TrafficInfo-INFO-200.xml").read_bytes(), fmt="xml").empty


def test_transport_failures_are_named_and_never_show_the_key(api: RecordedSeoulApi, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="httpx")
    async def go() -> list[Exception]:
        http = SeoulClient(KEY, api.base_url, timeout_s=5)
        got: list[Exception] = []
        try:
            api.fail("http500")
            with pytest.raises(SeoulHttpError) as a:
                await http.fetch("RealtimeCityAir", 1, 100)
            got.append(a.value)
            api.fail(None)
            wrong = SeoulClient("not-the-key", api.base_url, timeout_s=5)
            with pytest.raises(SeoulApiError, match="INFO-100") as b:
                await wrong.fetch("RealtimeCityAir", 1, 100)
            await wrong.aclose()
            got.append(b.value)
            api.stop()
            with pytest.raises(SeoulUnreachable) as c:
                await http.fetch("RealtimeCityAir", 1, 100)
            got.append(c.value)
        finally:
            await http.aclose()
        return got

    http500, bad_key, refused = asyncio.run(go())
    assert http500.status == 500 and "HTTP 500" in str(http500)
    assert "cannot reach http://127.0.0.1" in str(refused)
    for exc in (http500, bad_key, refused):
        assert KEY not in str(exc)
    assert "/***/json/RealtimeCityAir/1/100" in caplog.text and KEY not in caplog.text  # httpx logs every URL


def test_backoff_grows_with_jitter_to_its_cap_and_never_gives_up() -> None:
    import random

    b = Backoff(base_s=1.0, cap_s=30.0, rng=random.Random(7))
    delays = [b.next_delay() for _ in range(50)]
    assert 0.5 <= delays[0] <= 1.0 and 1.0 <= delays[1] <= 2.0 and 2.0 <= delays[2] <= 4.0
    assert all(15.0 <= d <= 30.0 for d in delays[10:])  # capped, still retrying after 50 failures
    assert len(set(delays[10:])) > 30  # jittered: not all at one moment
    b.reset()
    assert b.next_delay() <= 1.0


# -- sources -------------------------------------------------------------------------------------
def test_air_stations_edge_cases_and_repeat_polls(db: Path, api: RecordedSeoulApi) -> None:
    with running(db, FIXED_NOW_US) as (platform, client, clock):
        feed = SeoulFeed(**options(api))
        air = feed.sources["air"]
        got = poll(client, platform, air, api)
        things = [t for t in platform.registry.things.values() if t.kind == "air_station"]
        assert len(things) == 25 and all(not t.simulated for t in things)
        assert value(platform, "air:11110:pm10")[-1] == (NOON_KST_US, pytest.approx(float(json.loads(
            (RECORDED / "RealtimeCityAir.json").read_text())["RealtimeCityAir"]["row"][0]["PM10"])))
        raw = {r["MSRSTE_NM"]: r for r in json.loads((RECORDED / "RealtimeCityAir.json").read_text())["RealtimeCityAir"]["row"]}
        assert value(platform, "air:11140:pm10") == [(NOON_KST_US, float(raw["중구"]["PM10"]))]  # a number as a string
        assert value(platform, "air:11140:o3") == [(NOON_KST_US, float(raw["중구"]["O3"]))]
        assert value(platform, "air:11500:pm25") == []  # "-": a missing hour, not an error
        assert value(platform, "air:11350:co") == []  # ""
        assert got["accepted"] == 25 * 6 - 2 and got["missing_values"] == 2 and got["rejected"] == 0
        again = poll(client, platform, air, api)  # the same hour, ten minutes later
        assert again["accepted"] == 0 and again["unchanged"] == 25 * 6 - 2
        assert quarantine(platform) == []

        clock.advance(50 * MINUTE_US)  # 13:20 KST: the 13:00 hour is out
        api.serve("RealtimeCityAir", "RealtimeCityAir-bad-rows.json")
        bad = poll(client, platform, air, api)
        assert value(platform, "air:11110:pm10")[-1] == (NOON_KST_US + HOUR_US, 41.0)
        assert value(platform, "air:11440:pm25")[-1] == (NOON_KST_US + HOUR_US, 17.0)  # the row's readable values are kept
        q = quarantine(platform, "seoul-air")
        assert {(r["reason"], r["detail"]) for r in q} == {
            ("malformed", "RealtimeCityAir 마포구 202506151300: PM10 '점검중' is not a number"),
            ("unknown_datastream", "RealtimeCityAir: station '행주' (MSRSTE_NM) is not one of the city's district stations"),
        }
        assert any("점검중" in r["payload"] for r in q)  # the row as the service sent it
        assert bad["rejected_by_reason"] == {"malformed": 1, "unknown_datastream": 1}
        poll(client, platform, air, api)
        assert len(quarantine(platform, "seoul-air")) == 2  # a bad row polled again is not quarantined twice

        api.serve("RealtimeCityAir", "RealtimeCityAir-row-as-object.json")
        one = poll(client, platform, air, api)
        assert one["accepted"] == 6 and value(platform, "air:11170:pm10")[-1] == (NOON_KST_US + HOUR_US, 38.0)


def test_citydata_places_values_and_bad_rows(db: Path, api: RecordedSeoulApi) -> None:
    with running(db, FIXED_NOW_US) as (platform, client, _):
        feed = SeoulFeed(**options(api))
        got = poll(client, platform, feed.sources["citydata"], api)
        assert got["places_ok"] == 3 and got["place_errors"] == {}
        t = FIXED_NOW_US  # PPLTN_TIME 2025-06-15 12:30
        assert platform.registry.things[platform.registry.thing_by_key["hotspot:POI009"]].kind == "hotspot"
        assert value(platform, "hotspot:POI009:congestion_level") == [(t, 2.0)]  # 보통
        assert value(platform, "hotspot:POI009:population_min") == [(t, 38000.0)]
        assert value(platform, "hotspot:POI009:population_max") == [(t, 40000.0)]
        assert value(platform, "hotspot:POI009:road_speed") == [(t, 19.0)]
        assert value(platform, "hotspot:POI009:temperature") == [(t, 27.4)]
        assert value(platform, "hotspot:POI009:pm25") == [(t, 14.0)]
        # 강남역: every section an object instead of an array; 강수없음 is no rain
        assert value(platform, "hotspot:POI014:congestion_level") == [(t, 3.0)]
        assert value(platform, "hotspot:POI014:road_speed") == [(t, 14.5)]
        assert value(platform, "hotspot:POI014:precipitation") == [(t, 0.0)]
        assert got["forecast_rows"] == 12 and got["forecast_rows_unreadable"] == 0
        fc = feed.forecasts()["POI009"]  # kept in memory, not stored as observations (they are future hours)
        first_hour = json.loads((RECORDED / "citydata-POI009.json").read_text())["CITYDATA"]["LIVE_PPLTN_STTS"][0]["FCST_PPLTN"][0]
        assert fc["area_nm"] == "광화문·덕수궁" and fc["hours"][0]["time"] == "2025-06-15T04:00:00+00:00"  # FCST_TIME 13:00 KST
        assert fc["hours"][0]["congestion"] == first_hour["FCST_CONGEST_LVL"] and fc["hours"][0]["congestion_level"] == 2
        assert fc["hours"][0]["population_min"] == float(first_hour["FCST_PPLTN_MIN"])
        platform.feeds.append(feed)  # as `citywall up --feed seoul` has it: the forecast is served
        served = client.get("/api/hotspots/forecast").json()["places"]
        assert served["POI009"]["hours"] == fc["hours"] and served["POI009"]["feed"] == "seoul" and served["POI009"]["simulated"] is False
        # 명동: the readable values are stored, the rest quarantined with the reason
        assert value(platform, "hotspot:POI003:population_min") == [(t, 41000.0)]
        assert value(platform, "hotspot:POI003:temperature") == []  # "-"
        details = sorted(r["detail"] for r in quarantine(platform, "seoul-citydata"))
        assert details == ["citydata 명동 관광특구: AREA_CONGEST_LVL '매우 붐빔' is not one of 여유, 보통, 약간 붐빔, 붐빔",
                           "citydata 명동 관광특구: AREA_PPLTN_MAX '자료없음' is not a number"]
        assert all(r["reason"] == "malformed" for r in quarantine(platform, "seoul-citydata"))
        assert api.count("citydata") == 3 and all("/citydata/1/5/" in r for r in api.requests)


def test_a_place_that_fails_does_not_stop_the_round(db: Path, api: RecordedSeoulApi) -> None:
    with running(db, FIXED_NOW_US) as (platform, client, _):
        feed = SeoulFeed(**options(api, places="광화문·덕수궁,강남역,잠실 관광특구"))  # 잠실: no recorded answer (INFO-200)
        api.serve("citydata", "ERROR-500.json", "강남역")
        got = poll(client, platform, feed.sources["citydata"], api)
        assert got["places_ok"] == 2
        assert got["place_errors"] == {"강남역": "citydata: ERROR-500 서버 오류입니다. 지속적으로 발생시 열린 데이터 광장으로 문의(Q&A) 바랍니다. "
                                              "(the service had a server error)"}
        assert value(platform, "hotspot:POI009:congestion_level") and not value(platform, "hotspot:POI014:congestion_level")


def test_accidents_become_incidents_once_and_close_when_gone(db: Path, api: RecordedSeoulApi) -> None:
    with running(db, FIXED_NOW_US) as (platform, client, clock):
        feed = SeoulFeed(**options(api))
        src = feed.sources["citydata"]
        first = poll(client, platform, src, api)
        cases = {c["title"]: c for c in platform.incidents.active() if c["source"] == "seoul-citydata"}
        assert first["incidents_opened"] == 3 and len(cases) == 3
        crash = cases["추돌사고: 세종대로 광화문→시청 방면 2차로 추돌사고로 부분 통제"]
        assert (crash["kind"], crash["severity"], crash["gu"]) == ("traffic_accident", "medium", "11110")
        assert crash["opened_at_ms"] == (NOON_KST_US - 8 * MINUTE_US) // 1000  # ACDNT_OCCR_DT 11:52 KST
        works = cases["도로보수공사: 새문안로 서울역사박물관 앞 하위 1차로 도로보수공사"]
        assert (works["kind"], works["severity"]) == ("other", "low")
        breakdown = cases["차량고장: 강남대로 강남역→신논현역 방면 차량고장으로 1차로 통제"]  # the section was one object
        assert (breakdown["kind"], breakdown["severity"], breakdown["gu"]) == ("traffic_accident", "low", "11680")

        again = poll(client, platform, src, api)  # a repeat poll does not open them again
        assert again["incidents_opened"] == 0 and len([c for c in platform.incidents.active() if c["source"] == "seoul-citydata"]) == 3
        # a new feed object (a restart) does not open them again either: the board knows their ids
        poll(client, platform, SeoulFeed(**options(api)).sources["citydata"], api)
        assert len([c for c in platform.incidents.recent() if c["source"] == "seoul-citydata"]) == 3

        clock.advance(20 * MINUTE_US)
        api.serve("citydata", "citydata-POI009-later.json", "광화문·덕수궁")
        later = poll(client, platform, src, api)
        assert later["incidents_closed"] == 1
        assert platform.incidents.get(crash["id"])["step"] == "closed"
        assert "no longer listed" in platform.incidents.get(crash["id"])["timeline"][-1]["note"]
        assert platform.incidents.get(works["id"])["active"]
        poll(client, platform, src, api)
        assert platform.incidents.get(crash["id"])["step"] == "closed"  # listed no more, not reopened

        clock.advance(15 * MINUTE_US)  # 13:05 KST: past the breakdown's EXP_CLR_DT (13:00), still listed
        poll(client, platform, src, api)
        closed = platform.incidents.get(breakdown["id"])
        assert closed["step"] == "closed" and "EXP_CLR_DT" in closed["timeline"][-1]["note"]
        assert platform.incidents.get(works["id"])["active"]


def test_traffic_links_from_xml(db: Path, api: RecordedSeoulApi) -> None:
    with running(db, FIXED_NOW_US) as (platform, client, _):
        feed = SeoulFeed(**options(api))
        got = poll(client, platform, feed.sources["traffic"], api)
        assert value(platform, "road:topis:1220003800:road_speed") == [(FIXED_NOW_US, 17.0)]
        assert value(platform, "road:topis:1220003900:road_speed") == [(FIXED_NOW_US, 21.4)]
        assert value(platform, "road:topis:1220009999:road_speed") == []  # INFO-200: no data, not an error
        assert got["links_ok"] == 3 and got["missing_values"] == 1
        assert poll(client, platform, feed.sources["traffic"], api)["accepted"] == 0  # the same 5-minute period
        assert sorted({r.split("/", 1)[1] for r in api.requests}) == [f"xml/TrafficInfo/1/1/{link['link_id']}" for link in LINKS]


def test_sdot_pages_sensors_sentinels_and_unknown_districts(db: Path, api: RecordedSeoulApi) -> None:
    with running(db, FIXED_NOW_US) as (platform, client, _):
        feed = SeoulFeed(**options(api, sdot_max_pages=3))
        src = feed.sources["sdot"]
        got = poll(client, platform, src, api)
        assert got["pages"] == 3 and api.count("IotVdata017") == 3  # 120 rows, 50 a call
        assert any(r.endswith("/IotVdata017/51/100") for r in api.requests)
        sensors = [t for t in platform.registry.things.values() if t.kind == "sdot"]
        assert len(sensors) == 59 and got["new_sensors"] == 59
        gangnam = platform.registry.things[platform.registry.thing_by_key["sdot:OC3CL2000102"]]
        assert gangnam.gu == "11680" and gangnam.dong is not None  # placed in 역삼동 from CGG + DONG
        assert "centre of the dong" in gangnam.properties["location"]
        assert platform.registry.things[platform.registry.thing_by_key["sdot:OC3CL2000109"]].gu == "11170"  # unknown dong: the gu's centre
        reasons = {}
        for r in quarantine(platform, "seoul-sdot"):
            reasons.setdefault(r["reason"], []).append(r["detail"])
        assert len(reasons["sentinel"]) == 6  # -40 / 100 / -40, two hours
        assert reasons["unknown_datastream"] == ["IotVdata017 OC3CL2000999: district 'Gwacheon-si' (CGG) is not a district of Seoul"] * 2
        assert reasons["malformed"] == ["IotVdata017 OC3CL2000112 2025-06-15_12:00:00: AVG_NIS 'ERR' is not a number"]
        assert value(platform, "sdot:OC3CL2000101:temperature")[-1][0] == NOON_KST_US  # numbers as strings
        assert value(platform, "sdot:OC3CL2000103:uv_index") == []  # "-"
        n_q = len(quarantine(platform))
        again = poll(client, platform, src, api)
        assert again["pages"] == 1 and again["accepted"] == 0 and len(quarantine(platform)) == n_q  # stops at the hour it has


def test_a_section_of_the_wrong_shape_is_quarantined_whole_and_adds_nothing(db: Path, api: RecordedSeoulApi) -> None:
    """A section that is a word instead of rows cannot be read at all: the answer is kept whole in
    the quarantine (row_index -1), none of that place's rows are stored, the other places go on."""
    word = json.dumps({"CITYDATA": {"AREA_NM": "강남역", "AREA_CD": "POI014", "LIVE_PPLTN_STTS": [{"AREA_CONGEST_LVL": "보통",
                       "AREA_PPLTN_MIN": "1000", "AREA_PPLTN_MAX": "2000", "PPLTN_TIME": "2025-06-15 12:30"}], "WEATHER_STTS": "점검중",
                       "RESULT": {"RESULT.CODE": "INFO-000", "RESULT.MESSAGE": "정상 처리되었습니다."}}}, ensure_ascii=False).encode()
    with running(db, FIXED_NOW_US) as (platform, client, _):
        feed = SeoulFeed(**options(api))
        api.serve_body("citydata", word, "강남역")
        got = poll(client, platform, feed.sources["citydata"], api)
        assert got["places_ok"] == 2 and "WEATHER_STTS" not in got["place_errors"]["강남역"]  # the field is not named: the shape is
        assert "citydata 강남역: expected a list of objects, got str '점검중'" in got["place_errors"]["강남역"]
        assert value(platform, "hotspot:POI014:population_min") == []  # read before the bad section, still not stored
        assert value(platform, "hotspot:POI009:population_min") == [(FIXED_NOW_US, 38000.0)]
        whole = [r for r in quarantine(platform, "seoul-citydata") if r["row_index"] == -1]
        assert len(whole) == 1 and "점검중" in whole[0]["payload"] and whole[0]["reason"] == "malformed"

        api.serve_body("RealtimeCityAir", json.dumps({"RealtimeCityAir": {"list_total_count": 1, "row": "점검중",
                       "RESULT": {"CODE": "INFO-000", "MESSAGE": "정상 처리되었습니다"}}}, ensure_ascii=False).encode())
        with pytest.raises(SeoulPayloadError, match="RealtimeCityAir: expected a list of objects") as err:
            poll(client, platform, feed.sources["air"], api)
        assert "점검중" in err.value.body.decode()  # the feed quarantines this body (test_an_unreadable_answer_is_quarantined_whole)


def test_a_section_with_values_but_no_time_is_quarantined_not_counted_missing(db: Path, api: RecordedSeoulApi) -> None:
    body = json.dumps({"CITYDATA": {"AREA_NM": "강남역", "AREA_CD": "POI014", "LIVE_PPLTN_STTS": [{"AREA_CONGEST_LVL": "보통",
                       "AREA_PPLTN_MIN": "1000", "AREA_PPLTN_MAX": "2000", "PPLTN_TIME": ""}],
                       "WEATHER_STTS": [{"TEMP": "-", "HUMIDITY": "", "WEATHER_TIME": ""}],  # nothing in it: nothing to keep
                       "RESULT": {"RESULT.CODE": "INFO-000", "RESULT.MESSAGE": "정상 처리되었습니다."}}}, ensure_ascii=False).encode()
    with running(db, FIXED_NOW_US) as (platform, client, _):
        feed = SeoulFeed(**options(api, places="강남역"))
        api.serve_body("citydata", body, "강남역")
        got = poll(client, platform, feed.sources["citydata"], api)
        assert value(platform, "hotspot:POI014:population_min") == []
        assert [r["detail"] for r in quarantine(platform, "seoul-citydata")] == ["citydata 강남역: no measurement time (PPLTN_TIME)"]
        assert got["rejected_by_reason"] == {"malformed": 1}


def test_a_traffic_answer_about_another_link_is_not_stored_as_this_one(db: Path, api: RecordedSeoulApi) -> None:
    with running(db, FIXED_NOW_US) as (platform, client, _):
        feed = SeoulFeed(**options(api))
        api.serve("TrafficInfo", "TrafficInfo-1220003800.xml", "1220009999")
        got = poll(client, platform, feed.sources["traffic"], api)
        assert value(platform, "road:topis:1220009999:road_speed") == []
        assert value(platform, "road:topis:1220003800:road_speed") == [(FIXED_NOW_US, 17.0)]
        assert got["rejected_by_reason"] == {"malformed": 1}
        assert [r["detail"] for r in quarantine(platform, "seoul-traffic")] == [
            "TrafficInfo link 1220009999: the answer is about link '1220003800', not 1220009999"]


# -- the feed: schedule, status, outage and recovery ----------------------------------------------
def test_outage_marks_the_source_down_and_recovery_brings_values_back(db: Path, api: RecordedSeoulApi) -> None:
    fast = options(api, air_every_s=0.2, citydata_every_s=0.2, traffic_every_s=0.2, sdot_every_s=0.2, backoff_base_s=0.05, backoff_cap_s=0.2)
    with running(db, FIXED_NOW_US, feed="seoul", feed_options=fast) as (platform, client, clock):
        feed = seoul_feed(platform)
        wait_for("every source ok", lambda: platform.feed_status()["seoul"]["state"] == "ok")
        status = platform.feed_status()["seoul"]
        assert status["simulated"] is False and status["running"] and status["error"] is None and status["last_ok"]
        assert set(status["sources"]) == {"air", "citydata", "traffic", "sdot"}

        api.fail("error500", service="RealtimeCityAir")  # one source fails: the others go on
        st = wait_for("air down", lambda: (s := platform.feed_status()["seoul"])["state"] == "down" and s)
        assert st["error"].startswith("air: RealtimeCityAir: ERROR-500") and st["down_since"]
        assert st["sources"]["air"]["state"] == "down" and st["sources"]["citydata"]["state"] == "ok"
        polls = st["sources"]["citydata"]["polls"]
        wait_for("citydata still polled", lambda: platform.feed_status()["seoul"]["sources"]["citydata"]["polls"] > polls + 1)

        api.fail(None, service="RealtimeCityAir")
        api.fail("http500")
        wait_for("HTTP 500 shown", lambda: "HTTP 500" in (platform.feed_status()["seoul"]["sources"]["citydata"]["error"] or ""))
        api.fail(None)
        api.stop()  # connection refused
        st = wait_for("refused shown", lambda: (s := platform.feed_status()["seoul"])["state"] == "down"
                      and all("cannot reach" in (x["error"] or "") for x in s["sources"].values()) and s)
        assert KEY not in json.dumps(st)
        assert client.get("/api/health").json()["feeds"]["seoul"]["state"] == "down"
        failures = st["sources"]["air"]["failures"]
        wait_for("still retrying", lambda: platform.feed_status()["seoul"]["sources"]["air"]["failures"] > failures + 2)

        clock.advance(50 * MINUTE_US)
        api.serve("RealtimeCityAir", "RealtimeCityAir-bad-rows.json")  # the API comes back with a new hour
        api.start()
        wait_for("ok again", lambda: platform.feed_status()["seoul"]["state"] == "ok")
        wait_for("the new hour stored", lambda: value(platform, "air:11110:pm10")[-1] == (NOON_KST_US + HOUR_US, 41.0))
        assert platform.feed_status()["seoul"]["down_since"] is None and feed._running


def test_an_unreadable_answer_is_quarantined_whole(db: Path, api: RecordedSeoulApi) -> None:
    fast = options(api, sources="air", air_every_s=0.2, backoff_base_s=0.05, backoff_cap_s=0.2)
    with running(db, FIXED_NOW_US, feed="seoul", feed_options=fast) as (platform, client, _):
        wait_for("ok", lambda: platform.feed_status()["seoul"]["state"] == "ok")
        api.fail("garbage")
        st = wait_for("down", lambda: (s := platform.feed_status()["seoul"])["state"] == "down" and s)
        assert "RealtimeCityAir: the answer is not JSON" in st["error"]
        q = wait_for("quarantined", lambda: [r for r in quarantine(platform, "seoul-air") if r["row_index"] == -1])
        assert q[0]["reason"] == "malformed" and "Service temporarily unavailable" in q[0]["payload"]
        api.fail(None)
        wait_for("ok", lambda: platform.feed_status()["seoul"]["state"] == "ok")


# -- configuration -------------------------------------------------------------------------------
def test_a_key_is_required_and_options_reach_the_right_feed(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("CITYWALL_SEOUL_API_KEY", raising=False)
    monkeypatch.delenv("CITYWALL_SEOUL_API_KEY_FILE", raising=False)
    with pytest.raises(ValueError, match="CITYWALL_SEOUL_API_KEY"):
        make_feed("seoul", seed=1)
    key_file = tmp_path / "seoul.key"
    key_file.write_text("from-file\n")
    assert make_feed("seoul", api_key_file=str(key_file)).api_key == "from-file"
    monkeypatch.setenv("CITYWALL_SEOUL_API_KEY_FILE", str(key_file))
    assert make_feed("seoul").api_key == "from-file"
    with pytest.raises(ValueError, match="cannot read its API key file .*nothing.key"):
        make_feed("seoul", api_key_file=str(tmp_path / "nothing.key"))
    monkeypatch.delenv("CITYWALL_SEOUL_API_KEY_FILE")
    monkeypatch.setenv("CITYWALL_SEOUL_API_KEY", "from-env")
    feed = make_feed("seoul", seed=1, places="강남역")
    assert feed.api_key == "from-env" and [p.code for p in feed.sources["citydata"].places] == ["POI014"]
    assert list(feed.sources) == ["air", "citydata", "sdot"]  # traffic only with links
    both = make_feeds("simulator,seoul", seed=3, options={"seoul.api_key": "k", "sdot_count": 30, "places": "POI009"})
    assert [f.name for f in both] == ["simulator", "seoul"]
    assert both[0].sdot_count == 30 and both[1].api_key == "k" and both[1].sources["citydata"].places[0].name == "광화문·덕수궁"
    with pytest.raises(ValueError, match="not an option of simulator, seoul"):
        make_feeds("simulator,seoul", seed=3, options={"no_such_option": 1})
    with pytest.raises(ValueError, match="unknown citydata places"):
        make_feed("seoul", places="Atlantis")
    with pytest.raises(ValueError, match="traffic source needs traffic_links"):
        make_feed("seoul", sources="traffic")
    assert make_feeds("none", seed=1, options={}) == []


def test_cli_takes_a_list_of_feeds() -> None:
    from citywall.cli import build_parser

    assert build_parser().parse_args(["up", "--feed", "simulator,seoul"]).feed == "simulator,seoul"
    with pytest.raises(SystemExit):
        build_parser().parse_args(["up", "--feed", "simulator,pigeon"])

"""Smart Data Models export as NGSI-LD: AirQualityObserved, TrafficFlowObserved and Alert carry the
attributes the models require, in NGSI-LD's structure, with the platform's newest values."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

from citywall.alerts.signal import Signal
from citywall.observations.model import DatastreamIn, ThingIn

from conftest import CITY_HALL, COEX, FIXED_NOW_US, GANGNAM_GU, HOUR_US, JUNG_GU, MINUTE_US, obs, post, register, running, thing

NOW_MS = FIXED_NOW_US // 1000
SDM_CONTEXT = "https://raw.githubusercontent.com/smart-data-models/data-models/master/context.jsonld"


def check_structure(e: dict[str, Any], entity_type: str) -> None:
    """NGSI-LD normalised form: id a URN of the type, every attribute a Property or GeoProperty with
    a value, observedAt (when given) an ISO 8601 UTC instant."""
    assert e["type"] == entity_type
    assert e["id"].startswith(f"urn:ngsi-ld:{entity_type}:")
    assert e["@context"] == SDM_CONTEXT
    for name, attr in e.items():
        if name in ("id", "type", "@context"):
            continue
        assert isinstance(attr, dict) and attr["type"] in ("Property", "GeoProperty"), (name, attr)
        assert "value" in attr and attr["value"] is not None, (name, attr)
        if "observedAt" in attr:
            assert attr["observedAt"].endswith("Z")
            datetime.fromisoformat(attr["observedAt"].replace("Z", "+00:00"))
        if attr["type"] == "GeoProperty":
            assert attr["value"]["type"] in ("Point", "LineString")
    if "dateObserved" in e:
        assert e["dateObserved"]["value"]["@type"] == "DateTime"


def test_air_quality_observed_has_the_newest_values_and_the_cai(db: Path) -> None:
    with running(db, FIXED_NOW_US) as (platform, client, _):
        ids = register(client, [thing("air:11140", CITY_HALL, ["pm10", "pm25", "o3", "no2", "co", "so2", "humidity"]),
                                thing("air:11680", COEX, ["pm10"])])
        values = {"pm10": 85.0, "pm25": 40.0, "o3": 0.035, "no2": 0.025, "co": 0.5, "so2": 0.003}
        rows = [obs(ids[f"air:11140:{q}"], FIXED_NOW_US - h * HOUR_US, v) for q, v in values.items() for h in range(12)]
        rows += [obs(ids["air:11680:pm10"], FIXED_NOW_US - 20 * MINUTE_US, 12.0), obs(ids["air:11140:humidity"], FIXED_NOW_US, 65.0)]
        post(client, rows)
        platform.air.refresh()
        r = client.get("/api/ngsi-ld/AirQualityObserved")
        assert r.status_code == 200 and r.headers["content-type"] == "application/ld+json"
        by_id = {e["id"]: e for e in r.json()}
        assert set(by_id) == {"urn:ngsi-ld:AirQualityObserved:air:11140", "urn:ngsi-ld:AirQualityObserved:air:11680"}
        for e in by_id.values():
            check_structure(e, "AirQualityObserved")
        a = by_id["urn:ngsi-ld:AirQualityObserved:air:11140"]
        assert a["location"]["value"] == {"type": "Point", "coordinates": [CITY_HALL[0], CITY_HALL[1]]}
        for q, v in values.items():
            assert a[q]["value"] == v and a[q]["observedAt"] == "2025-06-15T03:30:00Z"
        assert a["pm10"]["unitCode"] == "GQ" and a["no2"]["unitCode"] == "59"
        assert a["relativeHumidity"]["value"] == 0.65 and a["relativeHumidity"]["unitCode"] == "C62"  # the model's 0..1, not 65 %
        assert a["dateObserved"]["value"]["@value"] == "2025-06-15T03:30:00Z"
        cai = platform.air.latest["stations"]["air:11140"]["cai"]
        assert a["airQualityIndex"]["value"] == cai["index"] and a["airQualityLevel"]["value"] == cai["grade"]
        assert isinstance(cai["index"], int) and cai["index"] > 50  # PM10 85 is above the 좋음 band
        assert a["address"]["value"]["addressLocality"] == "Jung-gu"
        b = by_id["urn:ngsi-ld:AirQualityObserved:air:11680"]
        assert b["pm10"]["value"] == 12.0 and "pm25" not in b and "airQualityIndex" not in b  # a CAI needs PM2.5, O3, NO2 too
        only = client.get("/api/ngsi-ld/AirQualityObserved", params={"gu": GANGNAM_GU}).json()
        assert [e["id"] for e in only] == ["urn:ngsi-ld:AirQualityObserved:air:11680"]
        assert client.get("/api/ngsi-ld/AirQualityObserved", params={"gu": "99999"}).status_code == 404


def test_traffic_flow_observed_uses_the_topis_bands(db: Path) -> None:
    line = [[127.05, 37.51], [127.06, 37.515]]
    with running(db, FIXED_NOW_US) as (platform, client, _):
        ids = register(client, [
            thing("road:exp", COEX, ["road_speed"], kind="road_link", properties={"road": "올림픽대로", "road_type": "도시고속도로", "line": line}),
            thing("road:art", CITY_HALL, ["road_speed"], kind="road_link", properties={"road": "세종대로", "road_type": "주간선도로"}),
            thing("road:quiet", CITY_HALL, ["road_speed"], kind="road_link"),
        ])
        post(client, [obs(ids["road:exp:road_speed"], FIXED_NOW_US - 10 * MINUTE_US, 60.0), obs(ids["road:exp:road_speed"], FIXED_NOW_US, 25.0),
                      obs(ids["road:art:road_speed"], FIXED_NOW_US, 25.0)])
        got = {e["id"]: e for e in client.get("/api/ngsi-ld/TrafficFlowObserved").json()}
        assert set(got) == {"urn:ngsi-ld:TrafficFlowObserved:road:exp", "urn:ngsi-ld:TrafficFlowObserved:road:art"}  # no speed yet: not listed
        for e in got.values():
            check_structure(e, "TrafficFlowObserved")
        exp, art = got["urn:ngsi-ld:TrafficFlowObserved:road:exp"], got["urn:ngsi-ld:TrafficFlowObserved:road:art"]
        assert exp["averageVehicleSpeed"]["value"] == 25.0 and exp["averageVehicleSpeed"]["unitCode"] == "KMH"
        assert exp["congested"]["value"] is True and art["congested"]["value"] is False  # 25 km/h: 정체 on an expressway only
        assert exp["location"]["value"] == {"type": "LineString", "coordinates": line}
        assert art["location"]["value"]["type"] == "Point"
        assert exp["dateObserved"]["value"]["@value"] == "2025-06-15T03:30:00Z"


def test_alerts_from_alarms_and_incidents(db: Path) -> None:
    with running(db, FIXED_NOW_US) as (platform, client, _):
        r = client.post("/api/incidents", json={"kind": "traffic_accident", "lon": COEX[0], "lat": COEX[1], "severity": "high", "title": "추돌"})
        assert r.status_code == 201, r.text
        incident = r.json()
        signals = [
            Signal(rule="pm25_advisory", subject=f"gu:{JUNG_GU}", active=True, at_ms=NOW_MS - 60_000, severity="medium", title_ko="초미세먼지",
                   title_en="PM2.5 advisory", message_en="PM2.5 high in Jung-gu", gu=JUNG_GU, category="air"),
            Signal(rule="road_congestion", subject="ds:7", active=True, at_ms=NOW_MS - 30_000, severity="medium", title_ko="정체",
                   title_en="Road congestion", gu=GANGNAM_GU, lon=COEX[0], lat=COEX[1], category="traffic"),
            Signal(rule="air_station_silent", subject="ds:8", active=True, at_ms=NOW_MS, severity="low", title_ko="무응답",
                   title_en="Station silent", gu=JUNG_GU, category="sensor"),
        ]
        client.portal.call(platform.alarms.apply, signals)
        alerts = client.get("/api/ngsi-ld/Alert").json()
        for e in alerts:
            check_structure(e, "Alert")
            for required in ("category", "severity", "dateIssued", "validFrom", "alertSource", "location"):
                assert required in e, (required, e)
            assert e["severity"]["value"] in ("informational", "low", "medium", "high", "critical")
        by_source = {e["alertSource"]["value"]: e for e in alerts}
        assert "citywall alert rule air_station_silent" not in by_source  # citywall's own input checks stay internal
        air = by_source["citywall alert rule pm25_advisory"]
        assert (air["category"]["value"], air["subCategory"]["value"]) == ("environment", "airPollution")
        assert air["dateIssued"]["value"]["@value"] == "2025-06-15T03:29:00Z" and "validTo" not in air
        assert air["location"]["value"]["type"] == "Point"  # a district-wide alarm: a point inside the district
        jam = by_source["citywall alert rule road_congestion"]
        assert (jam["category"]["value"], jam["subCategory"]["value"]) == ("traffic", "trafficJam")
        assert jam["location"]["value"]["coordinates"] == [COEX[0], COEX[1]]
        assert air["simulated"]["value"] is False and jam["simulated"]["value"] is False  # no simulated Thing, no simulated feed
        [crash] = [e for e in alerts if e["id"] == f"urn:ngsi-ld:Alert:incident:{incident['id']}"]
        assert (crash["category"]["value"], crash["subCategory"]["value"]) == ("traffic", "carAccident")
        assert crash["severity"]["value"] == "high" and crash["name"]["value"] == "추돌"
        # The alarm clears: it stays (unacknowledged) with its end as validTo.
        client.portal.call(platform.alarms.apply, [Signal(rule="pm25_advisory", subject=f"gu:{JUNG_GU}", active=False, at_ms=NOW_MS,
                                                          severity="medium", title_ko="초미세먼지", title_en="PM2.5 advisory", gu=JUNG_GU, category="air")])
        cleared = {e["alertSource"]["value"]: e for e in client.get("/api/ngsi-ld/Alert").json()}["citywall alert rule pm25_advisory"]
        assert cleared["validTo"]["value"]["@value"] == "2025-06-15T03:30:00Z"
        assert [e["id"] for e in client.get("/api/ngsi-ld/Alert", params={"gu": JUNG_GU}).json()] == [air["id"]]


def test_an_alarm_on_simulated_data_is_labelled_simulated(db: Path) -> None:
    with running(db, FIXED_NOW_US) as (platform, client, _):
        client.portal.call(platform.register, [ThingIn(key="air:sim", name="simulated station", kind="air_station", lon=CITY_HALL[0],
                                                       lat=CITY_HALL[1], datastreams=[DatastreamIn(quantity="pm25")], simulated=True)])
        ds = platform.registry.ds_by_key["air:sim:pm25"]
        client.portal.call(platform.alarms.apply, [
            Signal(rule="pm25_high", subject=f"ds:{ds}", active=True, at_ms=NOW_MS, severity="medium", title_ko="초미세먼지",
                   title_en="PM2.5 high", gu=JUNG_GU, lon=CITY_HALL[0], lat=CITY_HALL[1], category="air"),
            Signal(rule="pm25_advisory", subject=f"gu:{JUNG_GU}", active=True, at_ms=NOW_MS, severity="medium", title_ko="초미세먼지",
                   title_en="PM2.5 advisory", gu=JUNG_GU, category="air"),
            Signal(rule="pm25_advisory", subject=f"gu:{GANGNAM_GU}", active=True, at_ms=NOW_MS, severity="medium", title_ko="초미세먼지",
                   title_en="PM2.5 advisory", gu=GANGNAM_GU, category="air"),
        ])
        got = {(e["alertSource"]["value"], e["address"]["value"]["addressLocality"]): e["simulated"]["value"]
               for e in client.get("/api/ngsi-ld/Alert").json()}
        assert got == {("citywall alert rule pm25_high", "Jung-gu"): True, ("citywall alert rule pm25_advisory", "Jung-gu"): True,
                       ("citywall alert rule pm25_advisory", "Gangnam-gu"): False}

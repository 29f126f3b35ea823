"""OGC SensorThings API v1.1 over HTTP: the entity sets, every query option (alone, combined and
wrong), $expand, paging by nextLink, and Observations created through the pipeline."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from pgtools import fresh_database

from conftest import CITY_HALL, COEX, FIXED_NOW_US, HOUR_US, MINUTE_US, credential, iso, obs, post, register, running, stored, thing

STA = "/sta/v1.1"
# The data set every read test uses: (datastream key, hours before now, result).
PM10_A = [(i, 10.0 + i) for i in range(24)]  # 24 hourly values 10..33, newest = 10
PM25_A = [(i, 5.0 + 2 * i) for i in range(5)]
PM10_B = [(i, 50.0 - i) for i in range(3)]
SPEED = [(0, 25.0), (1, 70.0)]


@contextmanager
def store_at(kind: str, tmp: Path) -> Iterator[str]:
    """A new store of either kind: the Observations SQL (sensorthings/sql.py) runs on both."""
    if kind == "duckdb":
        yield str(tmp / "t.duckdb")
        return
    with pytest.MonkeyPatch.context() as mp, fresh_database() as url:
        mp.chdir(tmp)  # where a PostgreSQL platform writes its first admin password (data/)
        yield url


@pytest.fixture(scope="module", params=["duckdb", "postgresql"])
def sta(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Any, Any, dict[str, int]]]:
    with store_at(request.param, tmp_path_factory.mktemp("sta")) as db, running(db, FIXED_NOW_US) as (platform, client, _clock):
        ids = register(client, [
            thing("air:11140", CITY_HALL, ["pm10", "pm25"]),
            thing("air:11680", COEX, ["pm10"]),
            thing("road:x:01f", COEX, ["road_speed"], kind="road_link", properties={"road": "올림픽대로", "road_type": "도시고속도로"}),
        ])
        rows = [obs(ids["air:11140:pm10"], FIXED_NOW_US - h * HOUR_US, v) for h, v in PM10_A]
        rows += [obs(ids["air:11140:pm25"], FIXED_NOW_US - h * HOUR_US, v) for h, v in PM25_A]
        rows += [obs(ids["air:11680:pm10"], FIXED_NOW_US - h * HOUR_US, v) for h, v in PM10_B]
        rows += [obs(ids["road:x:01f:road_speed"], FIXED_NOW_US - h * 5 * MINUTE_US, v) for h, v in SPEED]
        assert post(client, rows)["accepted"] == len(rows)
        yield platform, client, ids


def get(client: Any, path: str, status: int = 200, **params: Any) -> Any:
    r = client.get(STA + path, params=params or None)
    assert r.status_code == status, r.text
    return r.json() if r.headers["content-type"].startswith("application/json") else r.text


def all_rows() -> list[tuple[str, int, float]]:
    out = [("air:11140:pm10", FIXED_NOW_US - h * HOUR_US, v) for h, v in PM10_A]
    out += [("air:11140:pm25", FIXED_NOW_US - h * HOUR_US, v) for h, v in PM25_A]
    out += [("air:11680:pm10", FIXED_NOW_US - h * HOUR_US, v) for h, v in PM10_B]
    out += [("road:x:01f:road_speed", FIXED_NOW_US - h * 5 * MINUTE_US, v) for h, v in SPEED]
    return out


# -- the service root and the entity sets ------------------------------------------------------------
def test_service_root_lists_the_sets_and_conformance(sta: Any) -> None:
    _, client, _ = sta
    root = get(client, "")
    names = {s["name"]: s["url"] for s in root["value"]}
    assert set(names) == {"Things", "Locations", "HistoricalLocations", "Datastreams", "Sensors", "ObservedProperties", "Observations",
                          "FeaturesOfInterest"}
    assert names["Things"] == "http://testserver/sta/v1.1/Things"
    assert "http://www.opengis.net/spec/iot_sensing/1.1/req/request-data" in root["serverSettings"]["conformance"]
    assert "mqtt" not in root["serverSettings"]  # MQTT ingest is off here: no MQTT creation is claimed
    assert not any("mqtt" in c for c in root["serverSettings"]["conformance"])


def test_things_locations_and_features_of_interest(sta: Any) -> None:
    platform, client, ids = sta
    things = get(client, "/Things")["value"]
    assert [t["name"] for t in things] == ["AIR:11140", "AIR:11680", "ROAD:X:01F"]
    one = get(client, "/Things(1)")
    assert one["@iot.id"] == 1 and one["@iot.selfLink"] == "http://testserver/sta/v1.1/Things(1)"
    assert one["properties"]["kind"] == "air_station" and one["properties"]["gu"] == "11140"
    assert one["Datastreams@iot.navigationLink"].endswith("/Things(1)/Datastreams")
    loc = get(client, "/Things(1)/Locations")["value"]
    assert len(loc) == 1 and loc[0]["encodingType"] == "application/geo+json"
    assert loc[0]["location"] == {"type": "Point", "coordinates": [CITY_HALL[0], CITY_HALL[1]]}
    assert [t["@iot.id"] for t in get(client, "/Locations(2)/Things")["value"]] == [2]
    foi = get(client, "/FeaturesOfInterest(2)")
    assert foi["feature"] == {"type": "Point", "coordinates": [COEX[0], COEX[1]]}
    assert {d["@iot.id"] for d in get(client, "/Things(1)/Datastreams")["value"]} == {ids["air:11140:pm10"], ids["air:11140:pm25"]}
    get(client, "/Things(99)", 404)
    get(client, "/Things(1)/Datastreams(%d)" % ids["air:11680:pm10"], 404)  # not one of its Datastreams
    # HistoricalLocations: the set the data model requires, empty (the registry keeps no moves)
    assert get(client, "/HistoricalLocations", **{"$count": "true"}) == {"@iot.count": 0, "value": []}
    assert one["HistoricalLocations@iot.navigationLink"].endswith("/Things(1)/HistoricalLocations")
    assert get(client, "/Things(1)/HistoricalLocations")["value"] == []
    assert get(client, "/Things(1)", **{"$expand": "HistoricalLocations"})["HistoricalLocations"] == []
    get(client, "/HistoricalLocations(1)", 404)
    assert get(client, "/FeaturesOfInterest(99)", 404)["message"] == "no FeatureOfInterest 99"


def test_datastreams_sensors_and_observed_properties(sta: Any) -> None:
    _, client, ids = sta
    ds = get(client, f"/Datastreams({ids['air:11140:pm10']})")
    assert ds["unitOfMeasurement"] == {"name": "microgram per cubic metre", "symbol": "ug/m3", "definition": "http://qudt.org/vocab/unit/MicroGM-PER-M3"}
    assert ds["observationType"] == "http://www.opengis.net/def/observationType/OGC-OM/2.0/OM_Measurement"
    assert ds["observedArea"]["type"] == "Point"
    assert get(client, f"/Datastreams({ids['air:11140:pm10']})/Thing")["@iot.id"] == 1
    sensor = get(client, f"/Datastreams({ids['road:x:01f:road_speed']})/Sensor")
    assert sensor["@iot.id"] == "road_link" and "TOPIS" in sensor["description"]
    assert sensor["properties"] == {"things": 1, "simulated_things": 0} and "Simulated" not in sensor["description"]
    assert get(client, f"/Datastreams({ids['air:11140:pm25']})/ObservedProperty")["@iot.id"] == "pm25"
    pm10 = get(client, "/ObservedProperties('pm10')/Datastreams")["value"]
    assert {d["@iot.id"] for d in pm10} == {ids["air:11140:pm10"], ids["air:11680:pm10"]}
    # an ObservedProperty's definition names the property, never its unit (PM10 and PM2.5 share ug/m3)
    definitions = {p["@iot.id"]: p["definition"] for p in get(client, "/ObservedProperties", **{"$top": "1000"})["value"]}
    assert definitions["pm10"] == "urn:citywall:observed-property:pm10" and len(set(definitions.values())) == len(definitions)
    assert {s["@iot.id"] for s in get(client, "/Sensors")["value"]} == {"air_station", "road_link"}
    assert len(get(client, "/Sensors('air_station')/Datastreams")["value"]) == 3
    get(client, "/Sensors('nothing')", 404)


def test_properties_value_and_ref(sta: Any) -> None:
    _, client, _ = sta
    assert get(client, "/Things(2)/name") == {"name": "AIR:11680"}
    assert get(client, "/Things(2)/name/$value") == "AIR:11680"
    refs = get(client, "/Things(1)/Datastreams/$ref")["value"]
    assert refs and all(set(r) == {"@iot.selfLink"} for r in refs)
    get(client, "/Things(2)/nothing", 404)
    get(client, "/Things/name", 400)


# -- Observations ------------------------------------------------------------------------------------
def ids_of(page: dict) -> list[str]:
    return [o["@iot.id"] for o in page["value"]]


def test_observation_ids_are_stable_and_resolve(sta: Any) -> None:
    _, client, ids = sta
    ds = ids["air:11140:pm25"]
    page = get(client, f"/Datastreams({ds})/Observations", **{"$orderby": "phenomenonTime desc", "$top": "1"})
    newest = page["value"][0]
    assert newest["@iot.id"] == f"{ds}-{FIXED_NOW_US}" and newest["result"] == 5.0
    assert newest["phenomenonTime"] == iso(FIXED_NOW_US).replace("+00:00", "Z")
    again = get(client, f"/Observations('{newest['@iot.id']}')")
    assert again == newest
    assert get(client, f"/Observations('{newest['@iot.id']}')/Datastream")["@iot.id"] == ds
    assert get(client, f"/Observations('{newest['@iot.id']}')/FeatureOfInterest")["@iot.id"] == 1
    assert get(client, f"/Observations('{newest['@iot.id']}')/result") == {"result": 5.0}
    nested = get(client, f"/Things(1)/Datastreams({ds})/Observations", **{"$orderby": "result asc", "$top": "2"})
    assert [o["result"] for o in nested["value"]] == [5.0, 7.0]
    get(client, f"/Things(2)/Datastreams({ds})/Observations", 404)
    get(client, f"/Observations('{ds}-1')", 404)
    get(client, "/Observations('garbage')", 404)
    get(client, "/Observations('1-999999999999999999999999')", 404)
    get(client, "/Observations('99999999999-1')", 404)
    # Observations of a FeatureOfInterest: every Datastream of its Thing.
    assert len(get(client, "/FeaturesOfInterest(1)/Observations", **{"$top": "1000"})["value"]) == len(PM10_A) + len(PM25_A)


@pytest.mark.parametrize(("expr", "keep"), [
    ("result gt 30", lambda k, t, v: v > 30),
    ("result ge 30", lambda k, t, v: v >= 30),
    ("result lt 11", lambda k, t, v: v < 11),
    ("result le 11", lambda k, t, v: v <= 11),
    ("result eq 13", lambda k, t, v: v == 13),
    ("result ne 13 and result lt 15", lambda k, t, v: v != 13 and v < 15),
    ("result lt 8 or result gt 48", lambda k, t, v: v < 8 or v > 48),
    ("not (result lt 30)", lambda k, t, v: not v < 30),
    ("(result gt 40 or result lt 8) and not (result eq 5)", lambda k, t, v: (v > 40 or v < 8) and v != 5),
    ("result mul 2 gt 90", lambda k, t, v: v * 2 > 90),
    ("result mod 10 eq 3 and result div 2 lt 10", lambda k, t, v: v % 10 == 3 and v / 2 < 10),
    ("result sub 1 add 1 eq result and result div 0 eq null", lambda k, t, v: True),
    ("result lt 10 and 7 div 2 eq 3.5", lambda k, t, v: v < 10),  # division of integers is exact on both stores
    (f"phenomenonTime ge {iso(FIXED_NOW_US - 2 * HOUR_US)}", lambda k, t, v: t >= FIXED_NOW_US - 2 * HOUR_US),
    (f"phenomenonTime lt '{iso(FIXED_NOW_US - 20 * HOUR_US, 540)}'", lambda k, t, v: t < FIXED_NOW_US - 20 * HOUR_US),
    (f"phenomenonTime gt 2025-06-15T00:00:00+09:00 and phenomenonTime le 2025-06-15T02:30:00Z",
     lambda k, t, v: FIXED_NOW_US - 12 * HOUR_US - 30 * MINUTE_US < t <= FIXED_NOW_US - HOUR_US),
    ("Datastream/ObservedProperty/@iot.id eq 'pm25'", lambda k, t, v: k.endswith("pm25")),
    ("Datastream/Thing/name eq 'AIR:11680' and result lt 50", lambda k, t, v: k.startswith("air:11680") and v < 50),
    ("startswith(Datastream/Thing/name, 'ROAD') or result eq 10", lambda k, t, v: k.startswith("road") or v == 10),
    ("FeatureOfInterest/@iot.id eq 3", lambda k, t, v: k.startswith("road")),
    ("Datastream/@iot.id eq 2", lambda k, t, v: k == "air:11140:pm25"),  # ids in registration order
    ("3 le Datastream/id and result lt 60", lambda k, t, v: k in ("air:11680:pm10", "road:x:01f:road_speed") and v < 60),
    ("result eq null", lambda k, t, v: False),
    ("result lt 99999999999999999999999 and result gt -1e308", lambda k, t, v: True),
    ("result ne null and result add 5 gt null", lambda k, t, v: False),
    ("null ne result and result lt 6", lambda k, t, v: v < 6),
])
def test_filter_on_observations(sta: Any, expr: str, keep: Any) -> None:
    _, client, ids = sta
    want = sorted(f"{ids[k]}-{t}" for k, t, v in all_rows() if keep(k, t, v))
    page = get(client, "/Observations", **{"$filter": expr, "$top": "1000", "$count": "true"})
    assert sorted(ids_of(page)) == want
    assert page["@iot.count"] == len(want)


def test_filter_by_id_and_on_a_navigation_path(sta: Any) -> None:
    _, client, ids = sta
    ds = ids["air:11140:pm25"]
    one = f"{ds}-{FIXED_NOW_US - HOUR_US}"
    assert ids_of(get(client, "/Observations", **{"$filter": f"@iot.id eq '{one}'"})) == [one]
    # Ids order as (datastream, time): the pm25 rows after `one` are the newer one only.
    after = get(client, f"/Datastreams({ds})/Observations", **{"$filter": f"id gt '{one}'"})
    assert ids_of(after) == [f"{ds}-{FIXED_NOW_US}"]


def test_orderby_one_and_several_keys(sta: Any) -> None:
    _, client, ids = sta
    by_result = get(client, "/Observations", **{"$orderby": "result desc", "$top": "3"})
    assert [o["result"] for o in by_result["value"]] == [70.0, 50.0, 49.0]
    two = get(client, "/Observations", **{"$orderby": "Datastream/@iot.id desc, phenomenonTime asc", "$top": "1000"})
    keys = [(int(o["@iot.id"].split("-")[0]), int(o["@iot.id"].split("-")[1])) for o in two["value"]]
    assert keys == sorted(keys, key=lambda k: (-k[0], k[1]))
    things = get(client, "/Things", **{"$orderby": "properties/kind desc,name desc"})
    assert [t["name"] for t in things["value"]] == ["ROAD:X:01F", "AIR:11680", "AIR:11140"]


def test_top_skip_count_and_nextlink_round_trip(sta: Any) -> None:
    _, client, _ = sta
    everything = ids_of(get(client, "/Observations", **{"$top": "1000", "$orderby": "phenomenonTime desc"}))
    assert len(everything) == len(all_rows())
    seen: list[str] = []
    page = get(client, "/Observations", **{"$top": "7", "$orderby": "phenomenonTime desc", "$count": "true"})
    pages = 0
    while True:
        pages += 1
        assert page["@iot.count"] == len(all_rows())
        assert len(page["value"]) <= 7
        seen += ids_of(page)
        if "@iot.nextLink" not in page:
            break
        link = urlsplit(page["@iot.nextLink"])
        r = client.get(f"{link.path}?{link.query}")
        assert r.status_code == 200, r.text
        page = r.json()
    assert seen == everything and pages == -(-len(everything) // 7)
    assert ids_of(get(client, "/Observations", **{"$top": "5", "$skip": "3", "$orderby": "phenomenonTime desc"})) == everything[3:8]
    default = get(client, "/Observations")
    assert len(default["value"]) == min(100, len(everything)) and "@iot.count" not in default
    assert get(client, "/Observations", **{"$top": "0", "$count": "true"}) == {"@iot.count": len(everything), "value": []}
    # In-memory sets page the same way.
    first = get(client, "/Datastreams", **{"$top": "2", "$count": "true"})
    assert first["@iot.count"] == 4 and len(first["value"]) == 2
    link = urlsplit(first["@iot.nextLink"])
    rest = client.get(f"{link.path}?{link.query}").json()
    assert [d["@iot.id"] for d in first["value"] + rest["value"]] == [1, 2, 3, 4] and "@iot.nextLink" not in rest


def test_filter_and_select_on_registry_sets(sta: Any) -> None:
    _, client, ids = sta
    assert [t["@iot.id"] for t in get(client, "/Things", **{"$filter": "properties/kind eq 'road_link'"})["value"]] == [3]
    assert [t["@iot.id"] for t in get(client, "/Things", **{"$filter": "startswith(name,'AIR') and not (properties/gu eq '11680')"})["value"]] == [1]
    # Through a to-many navigation: a Thing with any pm25 Datastream.
    assert [t["@iot.id"] for t in get(client, "/Things", **{"$filter": "Datastreams/ObservedProperty/@iot.id eq 'pm25'"})["value"]] == [1]
    dss = get(client, "/Datastreams", **{"$filter": "unitOfMeasurement/symbol eq 'km/h' or Thing/@iot.id eq 2"})["value"]
    assert {d["@iot.id"] for d in dss} == {ids["road:x:01f:road_speed"], ids["air:11680:pm10"]}
    assert get(client, "/Things", **{"$filter": "length(name) eq 9", "$count": "true"})["@iot.count"] == 2
    selected = get(client, "/Things", **{"$select": "id,name"})["value"]
    assert selected[0] == {"@iot.id": 1, "name": "AIR:11140"}
    obs_sel = get(client, "/Observations", **{"$select": "result", "$top": "1"})["value"][0]
    assert set(obs_sel) == {"result"}


# -- $expand -----------------------------------------------------------------------------------------
def test_expand_newest_observation_of_each_datastream(sta: Any) -> None:
    _, client, ids = sta
    things = get(client, "/Things", **{"$expand": "Datastreams/Observations($top=1;$orderby=phenomenonTime desc)"})["value"]
    newest = {d["@iot.id"]: d["Observations"][0]["result"] for t in things for d in t["Datastreams"]}
    assert newest == {ids["air:11140:pm10"]: 10.0, ids["air:11140:pm25"]: 5.0, ids["air:11680:pm10"]: 50.0, ids["road:x:01f:road_speed"]: 25.0}
    assert all(len(d["Observations"]) == 1 for t in things for d in t["Datastreams"])
    # The same in OData's nested form, with a count and paging inside the expansion.
    one = get(client, "/Things(1)", **{"$expand": "Datastreams($filter=ObservedProperty/@iot.id eq 'pm10';$expand=Observations($top=5;$count=true;$filter=result gt 12))"})
    [pm10] = one["Datastreams"]
    assert pm10["Observations@iot.count"] == len([v for _, v in PM10_A if v > 12])
    assert [o["result"] for o in pm10["Observations"]] == [33.0, 32.0, 31.0, 30.0, 29.0]  # default order: oldest first
    link = urlsplit(pm10["Observations@iot.nextLink"])
    assert link.path == f"/sta/v1.1/Datastreams({pm10['@iot.id']})/Observations"
    following = client.get(f"{link.path}?{link.query}").json()
    assert [o["result"] for o in following["value"]] == [28.0, 27.0, 26.0, 25.0, 24.0]


def test_an_answer_too_big_is_refused_before_it_is_built(sta: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """$top is bounded per level; the whole answer (expansions included) is bounded too, so one
    request cannot make the server hold the store in memory. 4 Datastreams hold 34 Observations."""
    from citywall.sensorthings import api

    _, client, _ = sta
    monkeypatch.setattr(api, "MAX_ENTITIES", 20)
    too_big = get(client, "/Datastreams", 400, **{"$expand": "Observations($top=100)"})  # 4 + 34, read in one query
    assert "more than 20 entities" in too_big["message"]
    get(client, "/FeaturesOfInterest", 400, **{"$expand": "Observations($top=100)"})  # 3 + 34, one query per entity
    get(client, "/Things", 400, **{"$expand": "Datastreams/Observations($top=100)"})
    fits = get(client, "/Datastreams", **{"$expand": "Observations($top=2)"})  # 4 + 8
    assert sum(len(d["Observations"]) for d in fits["value"]) == 8


def test_expand_to_one_paths(sta: Any) -> None:
    _, client, ids = sta
    ds = get(client, f"/Datastreams({ids['air:11140:pm25']})", **{"$expand": "Thing/Locations,Sensor,ObservedProperty"})
    assert ds["Thing"]["@iot.id"] == 1 and ds["Thing"]["Locations"][0]["location"]["type"] == "Point"
    assert ds["Sensor"]["@iot.id"] == "air_station" and ds["ObservedProperty"]["name"] == "PM2.5"
    o = get(client, "/Observations", **{"$expand": "Datastream($select=name),FeatureOfInterest", "$top": "1", "$orderby": "result desc"})["value"][0]
    assert o["Datastream"] == {"name": "ROAD:X:01F Road speed"} and o["FeatureOfInterest"]["@iot.id"] == 3
    things = get(client, "/Things", **{"$expand": "Locations,Datastreams($select=id;$orderby=id desc)", "$top": "1"})["value"]
    assert things[0]["Locations"][0]["@iot.id"] == 1
    assert [d["@iot.id"] for d in things[0]["Datastreams"]] == [ids["air:11140:pm25"], ids["air:11140:pm10"]]


@pytest.mark.parametrize(("path", "params", "says"), [
    ("/Observations", {"$filter": "result gt"}, "ends too early"),
    ("/Observations", {"$filter": "result gt 5 )"}, "unexpected"),
    ("/Observations", {"$filter": "result ## 5"}, "cannot read"),
    ("/Observations", {"$filter": "nosuch gt 5"}, "no property"),
    ("/Observations", {"$filter": "frobnicate(result) eq 1"}, "not supported"),
    ("/Observations", {"$filter": "tolower(result) eq 1"}, "not supported"),
    ("/Observations", {"$filter": "phenomenonTime gt 2025-06-15T00:00:00"}, "no time zone"),
    ("/Observations", {"$filter": "phenomenonTime gt 2025-13-45T00:00:00Z"}, "not an ISO 8601 time"),
    ("/Observations", {"$filter": "phenomenonTime gt '2025-06-15T00:00:00'"}, "no time zone"),
    ("/Observations", {"$filter": "phenomenonTime gt 5"}, "cannot compare a time with a number"),
    ("/Observations", {"$filter": "result gt phenomenonTime"}, "cannot compare a number with a time"),
    ("/Observations", {"$filter": "phenomenonTime add 1 gt 5"}, "add needs numbers"),
    ("/Observations", {"$filter": "result eq true"}, "cannot compare a number with a boolean"),
    ("/Observations", {"$filter": "resultTime gt 2025-06-15T00:00:00Z"}, "not recorded"),
    ("/Observations", {"$filter": "@iot.id eq 'x'"}, "not an Observation id"),
    ("/Things", {"$filter": "nosuch eq 1"}, "no property"),
    ("/Things", {"$filter": "Datastreams/Observations/result gt 1"}, "filter Observations themselves"),
    ("/Things", {"$filter": "name gt 5 and"}, "ends too early"),
    ("/Observations", {"$top": "-1"}, "between 0 and 10000"),
    ("/Observations", {"$top": "10001"}, "between 0 and 10000"),
    ("/Observations", {"$top": "abc"}, "integer"),
    ("/Observations", {"$skip": "-3"}, "between 0 and"),
    ("/Observations", {"$skip": str(2**70)}, "between 0 and"),
    ("/Observations", {"$count": "maybe"}, "true or false"),
    ("/Observations", {"$orderby": "result sideways"}, "asc|desc"),
    ("/Observations", {"$orderby": "Datastream/name"}, "can be ordered by"),
    ("/Observations", {"$frobnicate": "1"}, "unknown query option"),
    ("/Observations", {"$expand": "Thing"}, "no navigation property"),
    ("/Things", {"$expand": "Datastreams($top=x)"}, "integer"),
    ("/Things", {"$expand": "Datastreams($top=1"}, "unbalanced"),
    ("/Things", {"$select": "name,nothing"}, "have no"),
    ("/Things(1)/Datastreams", {"$resultFormat": "dataArray"}, "not supported"),
])
def test_bad_query_options_are_400_with_the_reason(sta: Any, path: str, params: dict, says: str) -> None:
    _, client, _ = sta
    body = get(client, path, 400, **params)
    assert body["code"] == 400 and says in body["message"], body


def test_an_option_given_twice_is_refused(sta: Any) -> None:
    _, client, _ = sta
    r = client.get(STA + "/Observations?$top=1&$top=2")
    assert r.status_code == 400 and "more than once" in r.json()["message"]


# -- creating Observations ---------------------------------------------------------------------------
@pytest.fixture(params=["duckdb", "postgresql"])
def fresh(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[Any, Any, dict[str, int]]]:
    with store_at(request.param, tmp_path) as db, running(db, FIXED_NOW_US) as (platform, client, _clock):
        ids = register(client, [thing("air:11140", CITY_HALL, ["pm10", "o3"])])
        yield platform, client, ids


def test_simulated_things_are_labelled_in_things_and_sensors(db: Path) -> None:
    from citywall.observations.model import DatastreamIn, ThingIn

    with running(db, FIXED_NOW_US) as (platform, client, _):
        register(client, [thing("air:11140", CITY_HALL, ["pm10"])])
        client.portal.call(platform.register, [ThingIn(key="air:sim", name="sim", kind="air_station", lon=COEX[0], lat=COEX[1],
                                                       datastreams=[DatastreamIn(quantity="pm10")], simulated=True)])
        sensor = get(client, "/Sensors('air_station')")
        assert sensor["properties"] == {"things": 2, "simulated_things": 1}
        assert "Simulated here: 1 of the 2 Things of this kind" in sensor["description"]
        sim = get(client, "/Things", **{"$filter": "properties/key eq 'air:sim'"})["value"][0]
        assert sim["properties"]["simulated"] is True and sim["description"].endswith("(simulated)")


def quarantined(client: Any) -> list[dict]:
    return [q for q in client.get("/api/quarantine", params={"source": "sta"}).json()["items"]]


def test_create_an_observation_201_with_location_and_stored(fresh: Any) -> None:
    platform, client, ids = fresh
    ds = ids["air:11140:pm10"]
    t = FIXED_NOW_US - 10 * MINUTE_US
    r = client.post(STA + "/Observations", json={"phenomenonTime": iso(t, 540), "result": 42, "Datastream": {"@iot.id": ds}})
    assert r.status_code == 201, r.text
    assert r.headers["location"] == f"http://testserver/sta/v1.1/Observations('{ds}-{t}')"
    assert r.json()["result"] == 42.0 and r.json()["@iot.id"] == f"{ds}-{t}"
    assert stored(platform) == [(ds, t, 42.0)]
    assert client.get(urlsplit(r.headers["location"]).path).json()["result"] == 42.0
    # Below a Datastream, and without phenomenonTime: the server's time, as the standard says.
    o3 = ids["air:11140:o3"]
    r = client.post(STA + f"/Datastreams({o3})/Observations", json={"result": 0.031})
    assert r.status_code == 201, r.text
    assert r.headers["location"].endswith(f"Observations('{o3}-{FIXED_NOW_US}')")
    assert (o3, FIXED_NOW_US, 0.031) in stored(platform)


def test_creation_needs_a_feed_key(db: Path) -> None:
    body = {"phenomenonTime": iso(FIXED_NOW_US), "result": 1, "Datastream": {"@iot.id": 1}}
    with running(db, FIXED_NOW_US, anonymous=True) as (platform, client, _):
        r = client.post(STA + "/Observations", json=body)
        assert r.status_code == 401, r.text
        r = client.post(STA + "/Observations", json=body, headers=credential(platform, "viewer"))
        assert r.status_code == 403, r.text
        r = client.post(STA + "/Observations", json=body, headers={"X-API-Key": "cw_not_a_key"})
        assert r.status_code == 401
        assert stored(platform) == []


@pytest.mark.parametrize(("path", "body", "reason", "says"), [
    ("/Observations", b"{not json", "malformed", "expected a SensorThings Observation"),
    ("/Observations", b'{"phenomenonTime": "2025-06-15T03:00:00Z", "result": "abc", "Datastream": {"@iot.id": 1}}', "malformed", "result must be a number"),
    ("/Observations", b'{"phenomenonTime": "2025-06-15T03:00:00Z", "result": 5}', "malformed", "names no Datastream"),
    ("/Observations", b'{"phenomenonTime": "2025-06-15T03:00:00", "result": 5, "Datastream": {"@iot.id": 1}}', "malformed", "no time zone"),
    ("/Observations", b'{"phenomenonTime": "2025-06-15T03:00:00Z", "result": 5, "Datastream": {"@iot.id": 999}}', "unknown_datastream", "999"),
    ("/Datastreams(999)/Observations", b'{"phenomenonTime": "2025-06-15T03:00:00Z", "result": 5}', "unknown_datastream", "999"),
    ("/Observations", b'{"phenomenonTime": "2025-06-15T03:00:00Z", "result": 99999, "Datastream": {"@iot.id": 1}}', "out_of_range", ""),
])
def test_refused_input_is_400_and_quarantined(fresh: Any, path: str, body: bytes, reason: str, says: str) -> None:
    platform, client, _ = fresh
    r = client.post(STA + path, content=body, headers={"content-type": "application/json"})
    assert r.status_code == 400, r.text
    assert r.json()["reason"] == reason and says in r.json()["message"], r.json()
    kept = quarantined(client)
    assert len(kept) == 1 and kept[0]["reason"] == reason and kept[0]["batch_id"] == r.json()["batch_id"]
    assert stored(platform) == []


def test_an_array_is_created_row_by_row(fresh: Any) -> None:
    platform, client, ids = fresh
    ds = ids["air:11140:pm10"]
    body = [{"phenomenonTime": iso(FIXED_NOW_US - HOUR_US), "result": 20, "Datastream": {"@iot.id": ds}},
            {"phenomenonTime": iso(FIXED_NOW_US), "result": -5, "Datastream": {"@iot.id": ds}}]
    r = client.post(STA + "/Observations", json=body)
    assert r.status_code == 200, r.text
    assert r.json()["created"] == [f"http://testserver/sta/v1.1/Observations('{ds}-{FIXED_NOW_US - HOUR_US}')"]
    assert [x["index"] for x in r.json()["rejected"]] == [1]
    assert stored(platform) == [(ds, FIXED_NOW_US - HOUR_US, 20.0)] and len(quarantined(client)) == 1
    r = client.post(STA + "/Observations", json=body[:1] and [{**body[0], "phenomenonTime": iso(FIXED_NOW_US - 2 * HOUR_US)}])
    assert r.status_code == 201


def test_only_observations_can_be_created(fresh: Any) -> None:
    _, client, _ = fresh
    assert client.post(STA + "/Things", json={"name": "x"}).status_code == 405
    assert client.post(STA + "/Datastreams('k')/Observations", json={"result": 1}).status_code == 404

"""The registry and the rest of the HTTP API: Things, Datastreams, quantities, errors."""

from __future__ import annotations

import pytest

from conftest import CITY_HALL, COEX, FIXED_NOW_US, GANGNAM_GU, JUNG_GU, obs, post, register, running, thing

NOW = FIXED_NOW_US


@pytest.fixture(scope="module")
def api(tmp_path_factory):
    with running(tmp_path_factory.mktemp("api") / "t.duckdb", now_us=NOW) as (platform, client, _):
        yield platform, client


def test_register_places_things_in_their_gu_and_dong(api):
    platform, client = api
    r = client.post("/api/things", json=[
        thing("reg-hall", CITY_HALL, ["pm10", "pm25", {"quantity": "o3", "key": "hall-ozone", "name": "Ozone at City Hall"}]),
        thing("reg-coex", COEX, [{"quantity": "noise", "sentinels": [-40, 100], "interval_s": 120}], kind="sdot"),
        thing("reg-busan", (129.0756, 35.1796), ["temperature"], kind="weather_station"),
    ])
    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["created_things"], body["created_datastreams"]) == (3, 5)
    assert set(body["datastreams"]) == {"reg-hall:pm10", "reg-hall:pm25", "hall-ozone", "reg-coex:noise", "reg-busan:temperature"}
    things = {t["key"]: t for t in client.get("/api/things").json()}
    assert (things["reg-hall"]["gu"], things["reg-hall"]["dong"]) == (JUNG_GU, "11140103")
    assert (things["reg-coex"]["gu"], things["reg-coex"]["dong"]) == (GANGNAM_GU, "11680105")
    assert (things["reg-busan"]["gu"], things["reg-busan"]["dong"]) == (None, None)  # outside the city, still registered
    streams = {d["key"]: d for d in client.get("/api/datastreams").json()}
    ozone = streams["hall-ozone"]
    assert (ozone["quantity"], ozone["unit"], ozone["name"], ozone["gu"], ozone["kind"]) == ("o3", "ppm", "Ozone at City Hall", JUNG_GU, "air_station")
    assert streams["reg-coex:noise"]["interval_s"] == 120 and streams["reg-coex:noise"]["unit"] == "dB"
    assert streams["reg-hall:pm10"]["unit"] == "ug/m3"
    # filters
    assert {d["key"] for d in client.get("/api/datastreams", params={"gu": GANGNAM_GU}).json()} >= {"reg-coex:noise"}
    assert all(d["quantity"] == "pm25" for d in client.get("/api/datastreams", params={"quantity": "pm25"}).json())
    assert {t["key"] for t in client.get("/api/things", params={"kind": "sdot"}).json()} >= {"reg-coex"}
    assert all(t["kind"] == "sdot" for t in client.get("/api/things", params={"kind": "sdot"}).json())


def test_registration_is_idempotent_by_key(api):
    _, client = api
    first = register(client, [thing("idem", CITY_HALL, ["pm10"])])
    r = client.post("/api/things", json=[thing("idem", CITY_HALL, ["pm10", "humidity"])]).json()
    assert (r["created_things"], r["created_datastreams"]) == (0, 1)
    assert r["datastreams"]["idem:pm10"] == first["idem:pm10"]
    assert [t["key"] for t in client.get("/api/things").json()].count("idem") == 1


@pytest.mark.parametrize(
    "payload",
    [
        [thing("bad-q", CITY_HALL, ["pm1"])],  # unknown quantity
        [thing("bad-kind", CITY_HALL, ["pm10"], kind="Air Station")],  # kind must be a lowercase identifier
        [thing("bad-lon", (200.0, 37.5), ["pm10"])],
        [thing("", CITY_HALL, ["pm10"])],  # empty key
        [thing("bad-twice", CITY_HALL, ["pm10", "pm10"])],  # the same datastream key twice
        [thing("bad-sent", CITY_HALL, [{"quantity": "pm10", "sentinels": [1, 2, 3, 4, 5]}])],
        [thing("bad-int", CITY_HALL, [{"quantity": "pm10", "interval_s": 0}])],
        [{"key": "bad-extra", "name": "x", "kind": "a", "lon": 127, "lat": 37.5, "datastreams": [], "colour": "red"}],
        {"key": "not-a-list"},
        "nonsense",
    ],
)
def test_bad_registrations_are_422_and_change_nothing(api, payload):
    _, client = api
    before = client.get("/api/datastreams").json()
    r = client.post("/api/things", json=payload)
    assert r.status_code == 422, r.text
    assert r.json()["detail"]
    assert client.get("/api/datastreams").json() == before


def test_a_datastream_key_cannot_change_quantity(api):
    _, client = api
    register(client, [thing("keyed", CITY_HALL, [{"quantity": "pm10", "key": "shared-key"}])])
    r = client.post("/api/things", json=[thing("keyed2", CITY_HALL, [{"quantity": "o3", "key": "shared-key"}])])
    assert r.status_code == 422 and "pm10" in r.json()["detail"]
    assert "keyed2" not in {t["key"] for t in client.get("/api/things").json()}


def test_quantities(api):
    _, client = api
    q = client.get("/api/quantities").json()
    assert {"pm10", "pm25", "o3", "no2", "co", "so2", "temperature", "humidity", "noise", "congestion_level"} <= set(q)
    assert q["pm10"]["unit"]["symbol"] == "ug/m3" and q["pm10"]["range"] == [0.0, 2000.0] and "mg/m3" in q["pm10"]["other_units"]
    assert q["o3"]["unit"]["symbol"] == "ppm" and "ppb" in q["o3"]["other_units"]
    assert q["congestion_level"]["range"] == [1.0, 4.0]
    assert q["pm10"]["name"] == {"ko": "미세먼지(PM10)", "en": "PM10"}


def test_observations_by_id_and_by_key_are_the_same_stream(api):
    platform, client = api
    ids = register(client, [thing("both", CITY_HALL, ["pm10"])])
    ds = ids["both:pm10"]
    res = post(client, [obs(ds, NOW - 1_000_000, 5.0), obs("both:pm10", NOW - 2_000_000, 6.0)])
    assert res["accepted"] == 2
    h = client.get("/api/history", params={"datastream": "both:pm10", "resolution": "raw", "start": str(NOW // 1000 - 10_000)}).json()
    assert h["datastream"] == ds and h["v"] == [6.0, 5.0]
    assert client.get("/api/history", params={"datastream": str(ds), "resolution": "raw", "start": str(NOW // 1000 - 10_000)}).json()["v"] == [6.0, 5.0]


def test_observations_for_a_thing_outside_the_city_are_kept(api):
    platform, client = api
    ids = register(client, [thing("away", (129.0756, 35.1796), ["pm10"])])
    ds = ids["away:pm10"]
    assert post(client, [obs(ds, NOW - 1_000_000, 5.0)])["accepted"] == 1
    assert platform.live.values()["ids"].count(ds) == 1
    # it has no gu, so no place history includes it; its own history does
    assert ds not in platform.registry.select(quantity="pm10", gu=JUNG_GU)
    h = client.get("/api/history", params={"datastream": "away:pm10", "resolution": "raw", "start": str(NOW // 1000 - 10_000)}).json()
    assert h["v"] == [5.0]


def test_docs_and_openapi(api):
    _, client = api
    spec = client.get("/openapi.json").json()
    for path in ("/api/observations", "/api/things", "/api/history", "/api/quarantine", "/api/snapshot", "/api/health", "/api/city/districts"):
        assert path in spec["paths"], path
    assert client.get("/docs").status_code == 200


def test_unknown_routes_and_methods(api):
    _, client = api
    assert client.get("/api/nothing").status_code == 404
    assert client.delete("/api/observations").status_code == 405

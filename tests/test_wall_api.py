"""What the wall page needs from the server: the page itself, the compact registry, the live CAI
and the city's indicators, all through the public API."""

from __future__ import annotations

import time
from pathlib import Path

from conftest import CITY_HALL, COEX, GANGNAM_GU, JUNG_GU, obs, post, register, running, thing

from citywall.air import cai
from citywall.air.cai import pm_predicted_24h

HOUR_US = 3_600_000_000
NOW_US = 1_790_000_000_000_000 - 1_790_000_000_000_000 % HOUR_US + 20 * 60_000_000  # 20 min past an hour


def test_the_page_and_its_assets_are_served(db: Path) -> None:
    with running(db) as (_, client, _):
        page = client.get("/")
        assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
        assert '<script type="module" src="/static/js/main.js">' in page.text
        for asset in ("/static/js/main.js", "/static/css/wall.css", "/static/vendor/maplibre-gl/maplibre-gl.mjs",
                      "/static/vendor/echarts/echarts.esm.min.mjs", "/static/vendor/noto-sans-kr/index.css"):
            assert client.get(asset).status_code == 200, asset
        assert client.get("/static/../platform.py").status_code == 404


def test_registry_names_every_datastream_compactly(db: Path) -> None:
    with running(db) as (_, client, _):
        ids = register(client, [thing("air:a", CITY_HALL, ["pm10", "pm25"]), thing("sdot:b", COEX, ["noise"], kind="sdot")])
        reg = client.get("/api/registry").json()
        things = dict(zip(reg["things"]["key"], zip(reg["things"]["id"], reg["things"]["kind"], reg["things"]["gu"])))
        assert things["air:a"][1:] == ("air_station", JUNG_GU) and things["sdot:b"][1:] == ("sdot", GANGNAM_GU)
        streams = dict(zip(reg["datastreams"]["id"], zip(reg["datastreams"]["thing"], reg["datastreams"]["quantity"])))
        assert streams[ids["air:a:pm25"]] == (things["air:a"][0], "pm25")
        assert streams[ids["sdot:b:noise"]] == (things["sdot:b"][0], "noise")


def test_live_cai_per_station_district_and_city(db: Path) -> None:
    """Twelve hours of two stations: each district's CAI is AirKorea's from its station's newest gas hours
    and predicted PM average; the city's is that of the stations' mean concentrations."""
    pollutants = ["pm10", "pm25", "o3", "no2"]
    hourly = [{"quantity": q, "interval_s": 3600} for q in pollutants]
    with running(db, now_us=NOW_US) as (platform, client, _):
        ids = register(client, [thing("air:jung", CITY_HALL, hourly), thing("air:gangnam", COEX, hourly)])
        series = {
            "air:jung": {"pm10": [40.0] * 8 + [95.0, 100.0, 110.0, 120.0], "pm25": [20.0] * 12, "o3": [0.02] * 12, "no2": [0.03] * 11 + [0.07]},
            "air:gangnam": {"pm10": [30.0] * 12, "pm25": [10.0] * 10 + [50.0, 60.0], "o3": [0.05] * 12, "no2": [0.02] * 12},
        }
        first_hour = NOW_US - NOW_US % HOUR_US - 11 * HOUR_US
        rows = [obs(ids[f"{key}:{q}"], first_hour + h * HOUR_US, v) for key, s in series.items() for q, vs in s.items() for h, v in enumerate(vs)]
        assert post(client, rows)["accepted"] == len(rows)
        platform.air.refresh()
        air = client.get("/api/air").json()

        def inputs(s: dict[str, list[float]]) -> dict[str, float]:
            return {"pm10": pm_predicted_24h(s["pm10"], "pm10"), "pm25": pm_predicted_24h(s["pm25"], "pm25"), "o3": s["o3"][-1], "no2": s["no2"][-1]}

        jung, gangnam = inputs(series["air:jung"]), inputs(series["air:gangnam"])
        assert air["gu"][JUNG_GU]["index"] == cai(**jung).index
        assert air["gu"][JUNG_GU]["pollutant"] == cai(**jung).pollutant
        assert air["gu"][GANGNAM_GU]["index"] == cai(**gangnam).index
        assert air["stations"]["air:jung"]["cai"]["index"] == cai(**jung).index
        mean = {k: (jung[k] + gangnam[k]) / 2 for k in jung}
        assert air["city"]["index"] == cai(**mean).index
        assert air["region"]["central"]["index"] == cai(**jung).index  # 중구 is the only central station here
        # The snapshot every wall starts from carries the same index (once its background refresh has run).
        deadline = time.monotonic() + 5
        while "11140" not in client.get("/api/snapshot").json()["air"]["gu"] and time.monotonic() < deadline:
            time.sleep(0.05)
        assert client.get("/api/snapshot").json()["air"]["gu"][JUNG_GU]["index"] == cai(**jung).index


def test_indicators_are_served_and_the_example_says_so(db: Path, tmp_path: Path) -> None:
    with running(db) as (_, client, _):
        body = client.get("/api/indicators").json()
        assert body["example"] is True and len(body["indicators"]) == 12
    own = tmp_path / "mine.csv"
    own.write_text("theme_ko,theme_en,code,name_ko,name_en,unit,target,actual,period,better,trend\n"
                   "안전한,Safe,x,지표,Indicator,%,50,25,2026,higher,10;20;25\n", encoding="utf-8")
    with running(tmp_path / "other.duckdb", indicators=str(own)) as (_, client, _):
        body = client.get("/api/indicators").json()
        assert body["example"] is False and body["indicators"][0]["progress"] == 0.5


def test_a_station_lagging_two_hours_still_gets_twelve_hours_of_pm(db: Path) -> None:
    """An hourly feed may land late: the index of a station whose newest hour is two hours old uses
    that station's own last twelve hours, not the nine that fall inside twelve hours of now."""
    hourly = [{"quantity": q, "interval_s": 3600} for q in ("pm10", "pm25", "o3", "no2")]
    with running(db, now_us=NOW_US) as (platform, client, _):
        ids = register(client, [thing("air:late", CITY_HALL, hourly)])
        newest = NOW_US - NOW_US % HOUR_US - 2 * HOUR_US
        pm10 = [20.0] * 3 + [60.0] * 9  # the early hours matter: C12 covers all twelve
        rows = [obs(ids["air:late:pm10"], newest - (11 - h) * HOUR_US, v) for h, v in enumerate(pm10)]
        rows += [obs(ids[f"air:late:{q}"], newest - (11 - h) * HOUR_US, v) for q, v in (("pm25", 10.0), ("o3", 0.02), ("no2", 0.02)) for h in range(12)]
        assert post(client, rows)["accepted"] == len(rows)
        platform.air.refresh()
        inputs = client.get("/api/air").json()["stations"]["air:late"]["cai"]["inputs"]
        assert inputs["pm10"] == round(pm_predicted_24h(pm10, "pm10"), 4)
        assert inputs["pm10"] != round(pm_predicted_24h(pm10[3:], "pm10"), 4)

"""`citywall owlbus plan|evaluate`, the GTFS and GeoJSON exports, and the /api/owlbus endpoints, as a user meets them.

Mandl's benchmark is read from /work/shared (the product does not ship it); the geographic checks use
a small network written here with real Seoul coordinates, so the GTFS feed can be read back by
partridge (a standard GTFS reader) and compared stop by stop.
"""

from __future__ import annotations

import json
import time
import zipfile
from datetime import date
from pathlib import Path

import numpy as np
import partridge as ptg
import pytest

from citywall.analytics.owlbus.gtfs import GtfsError, gtfs_time, parse_window
from citywall.cli import main

MANDL = Path("/work/shared/benchmarks/trndp/mandl/Mandl")
# Mandl's own 1979 route set (1-based in the papers: 1-2-3-6-8-10-11-13 / 5-4-6-8-15-7 / 12-4-6-15-9 / 13-14-10).
MANDL_1979 = [[0, 1, 2, 5, 7, 9, 10, 12], [4, 3, 5, 7, 14, 6], [11, 3, 5, 14, 8], [12, 13, 9]]

# A small night network in central Seoul: lon/lat, direct links in minutes, demand between stops.
STOPS = [(126.9236, 37.5563), (126.9368, 37.5551), (126.9769, 37.5704), (127.0092, 37.5714), (127.0276, 37.4979), (127.0364, 37.5006)]
LINKS = {(0, 1): 4.0, (1, 2): 9.0, (2, 3): 6.0, (3, 4): 15.0, (4, 5): 3.0, (1, 4): 20.0}


def instance(tmp: Path, coords: list[tuple[float, float]] = STOPS) -> Path:
    n = len(coords)
    t = np.full((n, n), np.inf)
    np.fill_diagonal(t, 0)
    for (a, b), m in LINKS.items():
        t[a, b] = t[b, a] = m
    d = np.full((n, n), 10.0)
    np.fill_diagonal(d, 0)
    prefix = tmp / "Seoul6"
    fmt = lambda v: "Inf" if np.isinf(v) else f"{v:g}"  # noqa: E731
    (tmp / "Seoul6TravelTimes.txt").write_text("\n".join(" ".join(fmt(v) for v in row) for row in t) + "\n")
    (tmp / "Seoul6Demand.txt").write_text("\n".join(" ".join(f"{v:g}" for v in row) for row in d) + "\n")
    (tmp / "Seoul6Coords.txt").write_text(f"{n}\n" + "".join(f"{x} {y}\n" for x, y in coords))
    return prefix


def owl(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    rc = main(["owlbus", *map(str, args)])
    out = capsys.readouterr()
    return rc, out.out, out.err


# -- the benchmark interface --------------------------------------------------------------------
def test_plan_on_mandl_writes_routes_and_metrics_that_evaluate_agrees_with(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    plan = tmp_path / "plan.json"
    rc, out, err = owl(capsys, "plan", "--instance", MANDL, "--routes", 4, "--min-nodes", 2, "--max-nodes", 8, "--seed", 3,
                       "--time-budget", 2, "--out", plan)
    assert rc == 0, err
    doc = json.loads(plan.read_text())
    assert set(doc["metrics"]) == {"ATT", "d0", "d1", "d2", "dun", "TRT"}
    routes = doc["routes"]
    assert len(routes) == 4 and all(2 <= len(r) <= 8 for r in routes)
    assert sorted({i for r in routes for i in r}) == list(range(15))  # every node reached, 0-based ids
    assert doc["metrics"]["d0"] + doc["metrics"]["d1"] + doc["metrics"]["d2"] + doc["metrics"]["dun"] == pytest.approx(100, abs=1e-6)
    assert [r["nodes"] for r in doc["route_details"]] == routes
    assert all(r["buses"] >= 1 and r["time_min"] > 0 for r in doc["route_details"])
    assert "ATT" in out and "N4" in out and "owlbus plan: 4 routes" in err and "plan written" in err
    # The evaluator reads the plan file back and finds the same measures.
    rc, out, err = owl(capsys, "evaluate", "--instance", MANDL, "--route-set", plan, "--out", tmp_path / "ev.json")
    assert rc == 0, err
    ev = json.loads((tmp_path / "ev.json").read_text())
    assert ev["metrics"] == doc["metrics"] and ev["routes"] == routes


def test_a_time_budgeted_plan_prints_how_to_repeat_it_exactly(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import re

    first, again = tmp_path / "first.json", tmp_path / "again.json"
    rc, out, err = owl(capsys, "plan", "--instance", MANDL, "--routes", 6, "--min-nodes", 2, "--max-nodes", 8, "--seed", 4,
                       "--time-budget", 1, "--quiet", "--out", first)
    assert rc == 0, err
    repeat = re.search(r"repeat exactly with --seed 4 --iterations (\d+)", out)
    assert repeat, out
    rc, out2, err = owl(capsys, "plan", "--instance", MANDL, "--routes", 6, "--min-nodes", 2, "--max-nodes", 8, "--seed", 4,
                        "--iterations", repeat.group(1), "--quiet", "--out", again)
    assert rc == 0, err
    a, b = json.loads(first.read_text()), json.loads(again.read_text())
    assert a["routes"] == b["routes"] and a["metrics"] == b["metrics"]
    assert b["settings"]["iterations"] == int(repeat.group(1)) and b["search"]["iterations"] == int(repeat.group(1))


def test_the_transfer_penalty_reaches_the_planner_and_the_measures(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    from citywall.analytics.owlbus import planner

    seen: list[float] = []
    real = planner.plan
    monkeypatch.setattr(planner, "plan", lambda *a, **k: seen.append(k["transfer_penalty"]) or real(*a, **k))
    plan = tmp_path / "plan.json"
    rc, out, err = owl(capsys, "plan", "--instance", MANDL, "--routes", 4, "--min-nodes", 2, "--max-nodes", 8, "--iterations", 500,
                       "--transfer-penalty", 0, "--quiet", "--out", plan)
    assert rc == 0, err
    assert seen == [0.0]
    doc = json.loads(plan.read_text())
    assert doc["settings"]["transfer_penalty"] == 0
    at = {}
    for penalty in (0, 5):
        rc, _, err = owl(capsys, "evaluate", "--instance", MANDL, "--route-set", plan, "--transfer-penalty", penalty, "--out", tmp_path / "ev.json")
        assert rc == 0, err
        at[penalty] = json.loads((tmp_path / "ev.json").read_text())["metrics"]["ATT"]
    assert doc["metrics"]["ATT"] == at[0] < at[5]  # the plan was measured without the penalty it was asked to drop
    with pytest.raises(SystemExit):
        main(["owlbus", "evaluate", "--instance", str(MANDL), "--route-set", str(plan), "--transfer-penalty", "-1"])
    assert "must be non-negative" in capsys.readouterr().err


def test_evaluate_reproduces_mandls_1979_route_set(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rs = tmp_path / "mandl1979.json"
    rs.write_text(json.dumps({"routes": MANDL_1979}))
    rc, out, err = owl(capsys, "evaluate", "--instance", MANDL, "--route-set", rs, "--headway", 15, "--out", tmp_path / "ev.json")
    assert rc == 0, err
    m = json.loads((tmp_path / "ev.json").read_text())["metrics"]
    assert (round(m["d0"], 2), round(m["d1"], 2), round(m["d2"], 2), round(m["ATT"], 2), m["TRT"]) == (69.94, 29.93, 0.13, 12.90, 82)
    assert "ATT 12.90 min" in out and "d0 69.94%" in out
    details = json.loads((tmp_path / "ev.json").read_text())["route_details"]
    # Route 1 takes 33 min one way: (2 x 33 + 2 x 5 layover) / 15 min headway -> 6 buses.
    assert details[0]["time_min"] == 33 and details[0]["buses"] == 6 and details[0]["length_km"] is None
    # A text route set, one route per line as published (0-based here), gives the same.
    txt = tmp_path / "mandl1979.txt"
    txt.write_text("\n".join("-".join(map(str, r)) for r in MANDL_1979) + "\n")
    assert owl(capsys, "evaluate", "--instance", MANDL, "--route-set", txt, "--headway", 15)[1] == out


@pytest.mark.parametrize("routes, words", [
    ([[0, 1, 2], [12, 13, 99]], ["bad.json", "route 1", "node 99", "0..14"]),
    ([[0, 1, 2, 5, 7, 9, 10, 12], [12, 13, 0]], ["no link between nodes 13 and 0"]),
    ([[0, 1, 0]], ["more than once"]),
    ({"route": [[0, 1]]}, ["no 'routes'"]),
    ([[0, "1"]], ["integer node ids"]),
])
def test_evaluate_refuses_a_route_set_that_breaks_the_instance(tmp_path: Path, capsys: pytest.CaptureFixture[str], routes: object,
                                                                words: list[str]) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(routes if isinstance(routes, dict) else {"routes": routes}))
    rc, out, err = owl(capsys, "evaluate", "--instance", MANDL, "--route-set", bad)
    assert rc == 2 and out == ""
    for w in words:
        assert w in err, err


def test_bad_files_and_arguments_say_what_is_wrong(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    broken = tmp_path / "broken.json"
    broken.write_text('{"routes": [[0, 1,]]}')
    rc, _, err = owl(capsys, "evaluate", "--instance", MANDL, "--route-set", broken)
    assert rc == 2 and "broken.json: not valid JSON (line 1" in err
    rc, _, err = owl(capsys, "evaluate", "--instance", tmp_path / "Nowhere", "--route-set", broken)
    assert rc == 2 and "NowhereTravelTimes.txt" in err
    rc, _, err = owl(capsys, "evaluate", "--instance", MANDL, "--route-set", tmp_path / "missing.json")
    assert rc == 2 and "route set not found" in err and "missing.json" in err
    rc, _, err = owl(capsys, "plan", "--instance", MANDL, "--routes", 4, "--min-nodes", 9, "--max-nodes", 8, "--out", tmp_path / "p.json")
    assert rc == 2 and "--min-nodes 9 is more than --max-nodes 8" in err and not (tmp_path / "p.json").exists()
    with pytest.raises(SystemExit):
        main(["owlbus", "plan", "--instance", str(MANDL), "--routes", "0", "--min-nodes", "2", "--max-nodes", "8", "--out", "x.json"])
    assert "must be at least 1" in capsys.readouterr().err


def test_mandl_is_not_exported_as_if_it_were_on_a_map(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Mandl's coordinates are a drawing: GTFS and GeoJSON are refused before any planning time is spent."""
    for flag in ("--gtfs", "--geojson"):
        out = tmp_path / "x"
        rc, _, err = owl(capsys, "plan", "--instance", MANDL, "--routes", 4, "--min-nodes", 2, "--max-nodes", 8, "--time-budget", 60,
                         "--out", tmp_path / "p.json", flag, out)
        assert rc == 2 and "needs a geographic network" in err and "drawing coordinates" in err, err
        assert not out.exists() and not (tmp_path / "p.json").exists()
    # Coordinates said to be lon/lat must be: a projected x/y in metres is caught.
    prefix = instance(tmp_path, [(x * 1000 + 200000, y) for x, y in STOPS])
    rc, _, err = owl(capsys, "evaluate", "--instance", prefix, "--coords", "lonlat", "--route-set", tmp_path / "p.json")
    assert rc == 2 and "Seoul6Coords.txt: node 0" in err and "not a longitude/latitude" in err


# -- the exports --------------------------------------------------------------------------------
def test_gtfs_export_reads_back_with_partridge_stop_by_stop(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    prefix = instance(tmp_path)
    routes = [[0, 1, 2, 3], [3, 4, 5], [1, 4]]
    rs = tmp_path / "routes.json"
    rs.write_text(json.dumps({"routes": routes}))
    feed_zip, geo = tmp_path / "owl.zip", tmp_path / "owl.geojson"
    rc, out, err = owl(capsys, "evaluate", "--instance", prefix, "--coords", "lonlat", "--route-set", rs, "--gtfs", feed_zip,
                       "--geojson", geo, "--window", "23:30-04:00", "--headway", 45)
    assert rc == 0, err
    assert "GTFS feed written" in err
    feed = ptg.load_feed(str(feed_zip))
    assert set(feed.routes.route_type) == {3} and list(feed.routes.route_short_name) == ["N1", "N2", "N3"]
    stops = feed.stops.set_index("stop_id")
    assert sorted(stops.index) == [str(i) for i in range(6)]
    for i, (lon, lat) in enumerate(STOPS):
        assert (stops.loc[str(i), "stop_lon"], stops.loc[str(i), "stop_lat"]) == pytest.approx((lon, lat), abs=1e-6)
    # 23:30-04:00 every 45 min: 23:30, 00:15, ..., 03:15 -> 6 departures each way (04:00 is the end, not a departure).
    assert len(feed.trips) == 3 * 2 * 6
    st = feed.stop_times.sort_values(["trip_id", "stop_sequence"])
    travel = {**LINKS, **{(b, a): m for (a, b), m in LINKS.items()}}
    for k, route in enumerate(routes):
        for direction, seq in ((0, route), (1, route[::-1])):
            trips = feed.trips[(feed.trips.route_id == f"N{k + 1}") & (feed.trips.direction_id == direction)]
            assert len(trips) == 6
            first = st[st.trip_id == sorted(trips.trip_id)[0]]
            assert list(first.stop_id) == [str(i) for i in seq]
            expect = np.cumsum([0.0] + [travel[a, b] for a, b in zip(seq, seq[1:])]) * 60 + (23 * 3600 + 30 * 60)
            assert list(first.arrival_time) == list(expect) and list(first.departure_time) == list(expect)
            last = st[st.trip_id == sorted(trips.trip_id)[-1]]
            assert last.departure_time.iloc[0] == 27 * 3600 + 15 * 60  # 03:15 the morning after, as 27:15:00
            shape = feed.shapes[feed.shapes.shape_id == trips.shape_id.iloc[0]].sort_values("shape_pt_sequence")
            assert np.allclose(np.column_stack([shape.shape_pt_lon, shape.shape_pt_lat]), [STOPS[i] for i in seq], atol=1e-6)
    cal = feed.calendar.iloc[0]
    assert all(cal[d] == 1 for d in ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"))
    with zipfile.ZipFile(feed_zip) as z:
        assert {"agency.txt", "stops.txt", "routes.txt", "trips.txt", "stop_times.txt", "shapes.txt", "calendar.txt"} <= set(z.namelist())
    # The GeoJSON carries the same routes as lines over the same stops, with riders and buses.
    g = json.loads(geo.read_text())
    lines = [f for f in g["features"] if f["properties"]["kind"] == "route"]
    assert [f["geometry"]["coordinates"] for f in lines] == [[list(STOPS[i]) for i in r] for r in routes]
    assert all(f["properties"]["buses"] >= 1 and "riders" in f["properties"] and f["properties"]["length_km"] > 0 for f in lines)
    assert len([f for f in g["features"] if f["properties"]["kind"] == "stop"]) == 6
    assert g["simulated"] is False


def test_a_simulated_plan_says_so_in_the_feed_and_the_map(tmp_path: Path) -> None:
    from citywall.analytics.owlbus.geo import plan_geojson
    from citywall.analytics.owlbus.gtfs import gtfs_tables
    from citywall.analytics.owlbus.network import read_mumford

    net = read_mumford(instance(tmp_path))
    net.geographic, net.simulated = True, True
    tables = gtfs_tables(net, [[0, 1, 2]], start_date=date(2026, 1, 1), days=7)
    assert b"SIMULATED" in tables["routes.txt"] and b"SIMULATED" in tables["feed_info.txt"]
    assert b"20260101,20260107" in tables["calendar.txt"]
    g = plan_geojson(net, [[0, 1, 2]])
    assert g["simulated"] is True and all(f["properties"].get("simulated", True) for f in g["features"] if f["properties"]["kind"] != "stop")


def test_service_window_times_run_past_midnight_as_gtfs_allows() -> None:
    assert parse_window("00:00-05:00") == (24 * 3600, 29 * 3600)
    assert parse_window("23:30-04:00") == (23 * 3600 + 1800, 28 * 3600)
    assert gtfs_time(24 * 3600 + 30 * 60) == "24:30:00"
    for bad in ("5-6", "00:00", "01:00-00:30", "25:00-26:00"):
        with pytest.raises(GtfsError, match="window"):
            parse_window(bad)


def test_gtfs_refuses_a_hop_without_a_link(tmp_path: Path) -> None:
    from citywall.analytics.owlbus.gtfs import gtfs_tables
    from citywall.analytics.owlbus.network import read_mumford

    net = read_mumford(instance(tmp_path))
    net.geographic = True
    with pytest.raises(GtfsError, match="no link from node 0 to node 5"):
        gtfs_tables(net, [[0, 5]])


# -- the REST API ---------------------------------------------------------------------------------
def test_api_plans_in_the_background_and_serves_plan_demand_and_evaluation(tmp_path: Path) -> None:
    from conftest import credential, running

    with running(tmp_path / "t.duckdb", anonymous=True) as (platform, client, _):
        assert client.get("/api/owlbus/plan").json()["state"] == "none"
        assert client.get("/api/owlbus/plan.geojson").status_code == 404
        body = {"routes": 4, "min_nodes": 3, "max_nodes": 12, "time_budget_s": 2, "resolution": 6, "transfer_penalty": 2}
        assert client.post("/api/owlbus/plan", json=body).status_code == 401
        op = credential(platform, "operator", "owl")
        bad = client.post("/api/owlbus/plan", json={**body, "max_nodes": 2}, headers=op)
        assert bad.status_code == 422 and "max_nodes 2 is less than min_nodes 3" in bad.json()["detail"]
        r = client.post("/api/owlbus/plan", json=body, headers=op)
        assert r.status_code == 202, r.text
        assert r.json()["state"] == "running" and r.json()["requested_by"] == "owl-operator"
        assert client.post("/api/owlbus/plan", json=body, headers=op).status_code == 409  # one run at a time
        deadline = time.monotonic() + 120  # a bound on waiting, not a timing assertion
        while (job := client.get("/api/owlbus/plan").json())["state"] == "running" and time.monotonic() < deadline:
            time.sleep(0.2)
        assert job["state"] == "done", job["error"]
        plan = job["plan"]
        assert plan["simulated"] is True and len(plan["routes"]) == 4 and set(plan["metrics"]) == {"ATT", "d0", "d1", "d2", "dun", "TRT"}
        assert plan["settings"]["resolution"] == 6 and plan["settings"]["transfer_penalty"] == 2
        assert plan["demand_unit"] == "riders a night" and plan["search"]["iterations"] > 0
        geo = client.get("/api/owlbus/plan.geojson").json()
        kinds = [f["properties"]["kind"] for f in geo["features"]]
        assert kinds.count("route") == 4 and kinds.count("demand") == plan["nodes"] and geo["simulated"] is True
        hexes = [f for f in geo["features"] if f["properties"]["kind"] == "demand"]
        assert all(f["geometry"]["type"] == "Polygon" for f in hexes) and sum(f["properties"]["trips"] for f in hexes) > 0
        demand = client.get("/api/owlbus/demand?resolution=6").json()
        assert demand["simulated"] is True and len(demand["features"]) == plan["nodes"]
        ev = client.get("/api/owlbus/evaluate").json()
        assert ev["metrics"] == plan["metrics"]  # measured with the plan's own transfer penalty (2 min)
        assert client.get("/api/owlbus/evaluate?transfer_penalty=5").json()["metrics"]["ATT"] > plan["metrics"]["ATT"]
        assert client.get("/api/owlbus/demand?resolution=9").status_code == 422  # no n x n matrices of ~6,000 cells on an open GET
        one = "-".join(map(str, plan["routes"][0]))
        part = client.get(f"/api/owlbus/evaluate?resolution=6&routes={one}").json()
        assert part["routes"] == [plan["routes"][0]] and part["metrics"]["dun"] > 0
        assert "not in the network" in client.get("/api/owlbus/evaluate?resolution=6&routes=0-999").json()["detail"]
        zipped = client.get("/api/owlbus/plan.gtfs.zip")
        assert zipped.status_code == 200 and zipped.content[:2] == b"PK"


def test_pareto_writes_a_non_dominated_trade_off_curve(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    plan = tmp_path / "plan.json"
    rc, out, err = owl(capsys, "plan", "--instance", MANDL, "--routes", 4, "--min-nodes", 2, "--max-nodes", 8, "--time-budget", 2,
                       "--pareto", "--quiet", "--out", plan)
    assert rc == 0, err
    curve = json.loads(plan.read_text())["pareto"]
    assert len(curve) >= 2 and "trade-off curve" in out
    att = [p["metrics"]["ATT"] for p in curve]
    trt = [p["metrics"]["TRT"] for p in curve]
    assert att == sorted(att) and all(a > b for a, b in zip(trt, trt[1:]))  # better for passengers costs operators more
    assert all(len(p["routes"]) == 4 for p in curve)


# -- city mode: demand on the H3 grid ---------------------------------------------------------------
def test_city_mode_plans_on_simulated_seoul_demand_and_exports_hexagons_and_gtfs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    plan, geo, feed_zip = tmp_path / "plan.json", tmp_path / "plan.geojson", tmp_path / "owl.zip"
    rc, out, err = owl(capsys, "plan", "--simulate", "--resolution", 6, "--routes", 4, "--min-nodes", 3, "--max-nodes", 12,
                       "--time-budget", 2, "--out", plan, "--geojson", geo, "--gtfs", feed_zip)
    assert rc == 0, err
    doc = json.loads(plan.read_text())
    assert doc["simulated"] is True and "[SIMULATED demand]" in out and "SIMULATED" in err
    # The simulated demand is riders a night (the Owl buses' published average), and every output says so.
    assert doc["demand_unit"] == "riders a night" and "riders: riders a night" in out and "on SIMULATED demand" in out
    assert "riders a night (SIMULATED)" in err
    assert doc["settings"]["resolution"] == 6 and doc["geographic"] is True
    assert all(r["length_km"] > 0 and r["riders"] >= 0 for r in doc["route_details"])
    g = json.loads(geo.read_text())
    hexes = [f for f in g["features"] if f["properties"]["kind"] == "demand"]
    assert len(hexes) == doc["nodes"] and all(len(f["geometry"]["coordinates"][0]) == 7 for f in hexes)  # six corners, closed
    assert g["demand_unit"] == "riders a night" and g["simulated"] is True
    assert sum(f["properties"]["trips_from"] for f in hexes) == pytest.approx(6079, rel=1e-3)
    assert {f["properties"]["name"] for f in hexes} == set(doc["names"])
    feed = ptg.load_feed(str(feed_zip))
    assert set(feed.stops.stop_code) <= set(doc["names"]) and len(feed.routes) == 4
    # A GTFS consumer sees places: each cell's stop is named after the dong (and gu) its centre lies in.
    from citywall.city import load_city

    seoul = load_city("seoul")
    for stop in feed.stops.itertuples():
        gu, dong = seoul.locate(stop.stop_lon, stop.stop_lat)
        if dong is not None:
            assert stop.stop_name == f"{seoul.districts[gu].name_ko} {seoul.dongs[dong].name_ko}", stop
        else:  # the centre lies in a sliver outside every dong: the nearest dong names it
            assert stop.stop_name.split(" ")[1] in {d.name_ko for d in seoul.dongs.values()}, stop
    # The stops of a trip are the plan's route, by node id.
    trip = feed.trips[(feed.trips.route_id == "N1") & (feed.trips.direction_id == 0)].trip_id.iloc[0]
    assert list(feed.stop_times[feed.stop_times.trip_id == trip].sort_values("stop_sequence").stop_id) == [str(i) for i in doc["routes"][0]]


def test_city_mode_reads_origin_destination_records(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rng = np.random.default_rng(5)
    spots = [(126.9236, 37.5563), (127.0276, 37.4979), (126.9292, 37.4842), (127.0092, 37.5714), (126.9780, 37.5665)]
    rows = ["origin_lon,origin_lat,dest_lon,dest_lat,count,time"]
    for k in range(400):
        (ox, oy), (dx, dy) = (spots[i] for i in rng.choice(len(spots), 2, replace=False))
        hour = "13:00" if k % 10 == 0 else "01:30"  # a tenth outside the night window
        rows.append(f"{ox + rng.normal(0, .01):.5f},{oy + rng.normal(0, .01):.5f},{dx + rng.normal(0, .01):.5f},{dy + rng.normal(0, .01):.5f},3,"
                    f"2026-11-20 {hour}")
    od = tmp_path / "calls.csv"
    od.write_text("\n".join(rows) + "\n")
    plan = tmp_path / "plan.json"
    rc, out, err = owl(capsys, "plan", "--od", od, "--resolution", 7, "--routes", 3, "--min-nodes", 2, "--max-nodes", 30,
                       "--time-budget", 2, "--quiet", "--out", plan)
    assert rc == 0, err
    doc = json.loads(plan.read_text())
    assert doc["simulated"] is False and "calls.csv" in doc["source"]
    assert doc["settings"]["window"] == "00:00-05:00"
    bad = tmp_path / "bad.csv"
    bad.write_text("origin_lon,origin_lat,dest_lon,dest_lat,count,time\n126.9,37.5,127.0,37.5,-4,2026-11-20 01:00\n")
    rc, _, err = owl(capsys, "plan", "--od", bad, "--routes", 1, "--min-nodes", 2, "--max-nodes", 5, "--out", tmp_path / "x.json")
    assert rc == 2 and "bad.csv" in err and "negative" in err


def test_a_users_own_network_from_node_and_link_tables(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    nodes, links, demand = tmp_path / "nodes.csv", tmp_path / "links.csv", tmp_path / "demand.csv"
    nodes.write_text("id,lon,lat\n" + "".join(f"s{i},{x},{y}\n" for i, (x, y) in enumerate(STOPS)))
    links.write_text("from,to,minutes\n" + "".join(f"s{a},s{b},{m:g}\n" for (a, b), m in LINKS.items()))
    demand.write_text("from,to,trips\ns0,s5,120\ns2,s4,40\ns3,s0,15\n")
    rs = tmp_path / "routes.txt"
    rs.write_text("0-1-2-3-4-5\n")
    feed_zip = tmp_path / "owl.zip"
    rc, out, err = owl(capsys, "evaluate", "--network", nodes, links, demand, "--route-set", rs, "--gtfs", feed_zip, "--out", tmp_path / "ev.json")
    assert rc == 0, err
    ev = json.loads((tmp_path / "ev.json").read_text())
    assert ev["metrics"]["d0"] == 100 and ev["names"] == [f"s{i}" for i in range(6)]
    assert ev["route_details"][0]["riders"] == 175 and ev["route_details"][0]["time_min"] == 37
    assert sorted(ptg.load_feed(str(feed_zip)).stops.stop_code) == [f"s{i}" for i in range(6)]
    links.write_text("from,to,minutes\ns0,s9,4\n")
    rc, _, err = owl(capsys, "evaluate", "--network", nodes, links, demand, "--route-set", rs)
    assert rc == 2 and "links.csv" in err and "s9" in err

"""Owl-bus demand and network inputs: OD aggregation onto H3, the simulated Seoul demand, the city
network, and user network files (link tables, matrices) with their errors."""

from __future__ import annotations

from pathlib import Path

import h3
import numpy as np
import pytest

from citywall.analytics.owlbus import citynet, demand, hexgrid, simdemand
from citywall.analytics.owlbus.network import NetworkError
from citywall.city import load_city

HONGDAE = (126.9186, 37.5538)  # 마포구 서교동 (its centroid in the city model)
YEOKSAM = (127.0385, 37.5001)  # 강남구 역삼동
INCHEON = (126.7052, 37.4563)  # outside Seoul


@pytest.fixture(scope="module")
def seoul():
    return load_city("seoul")


@pytest.fixture(scope="module")
def sim(seoul):
    return simdemand.simulate_seoul_demand(7, city=seoul, samples=60_000)


def write(tmp_path: Path, name: str, text: str) -> Path:
    p = tmp_path / name
    p.write_text(text, encoding="utf-8")
    return p


# --- grid -------------------------------------------------------------------------------------

def test_default_grid_is_close_to_seouls_1252_hexagons(seoul):
    cells = hexgrid.city_cells(seoul, hexgrid.DEFAULT_RESOLUTION)
    assert 1000 < len(cells) < 1500
    assert hexgrid.resolution_for(seoul, 1252) == 8
    assert hexgrid.resolution_for(seoul, 150) == 7
    with pytest.raises(hexgrid.GridError):
        hexgrid.city_cells(seoul, 16)


# --- aggregation ------------------------------------------------------------------------------

def test_points_window_city_and_same_cell_are_counted_not_silent(tmp_path, seoul):
    f = write(tmp_path, "od.csv", "pu_x,pu_y,home_lon,home_lat,trips,time\n"
              f"{HONGDAE[0]},{HONGDAE[1]},{YEOKSAM[0]},{YEOKSAM[1]},3,2024-05-01T01:30:00+09:00\n"
              f"{HONGDAE[0]},{HONGDAE[1]},{YEOKSAM[0]},{YEOKSAM[1]},2,02:10\n"
              f"{HONGDAE[0]},{HONGDAE[1]},{YEOKSAM[0]},{YEOKSAM[1]},4,06:10\n"  # outside the window
              f"{HONGDAE[0]},{HONGDAE[1]},{INCHEON[0]},{INCHEON[1]},5,01:10\n"  # home outside Seoul
              f"{HONGDAE[0]},{HONGDAE[1]},{HONGDAE[0]},{HONGDAE[1]},1,2024-04-30T16:30:00Z\n")  # 01:30 KST, same cell
    d = demand.load_demand(f, seoul, columns={"origin_lon": "pu_x", "origin_lat": "pu_y"})
    s = d.summary
    assert d.total == 5 and s["od_pairs"] == 1 and len(d.cells) == 2
    assert s["outside_window"] == {"records": 1, "trips": 4.0}
    assert s["outside_city"] == {"records": 1, "trips": 5.0}
    assert s["same_cell"] == {"records": 1, "trips": 1.0}
    assert s["simulated"] is False and s["resolution"] == 8
    hongdae = h3.latlng_to_cell(HONGDAE[1], HONGDAE[0], 8)
    m = d.matrix()
    assert m[d.cells.index(hongdae)].sum() == 5
    # the UTC time was moved to Seoul time: 01:30 KST, in hour 1 with the 3 trips at 01:30
    assert s["by_hour"][1] == 4 and s["by_hour"][2] == 2
    # a window across midnight keeps 23:00-02:00 only
    d2 = demand.load_demand(f, seoul, columns={"origin_lon": "pu_x", "origin_lat": "pu_y"}, window="23:00-02:00")
    assert d2.total == 3 and d2.summary["outside_window"]["records"] == 2


def test_cell_ids_at_finer_resolution_roll_up_and_coarser_is_an_error(tmp_path, seoul):
    a9 = h3.latlng_to_cell(HONGDAE[1], HONGDAE[0], 9)
    b9 = h3.latlng_to_cell(YEOKSAM[1], YEOKSAM[0], 9)
    f = write(tmp_path, "cells.csv", f"origin_cell,dest_cell,count,hour\n{a9},{b9},2,1\n{b9},{a9},1,3.5\n{a9},{b9},7,12\n")
    d = demand.load_demand(f, seoul)
    assert d.cells == sorted([h3.cell_to_parent(a9, 8), h3.cell_to_parent(b9, 8)])
    assert d.total == 3 and d.summary["outside_window"]["trips"] == 7
    a7 = h3.cell_to_parent(a9, 7)
    g = write(tmp_path, "coarse.csv", f"origin_cell,dest_cell,hour\n{a9},{b9},1\n{a7},{b9},1\n")
    with pytest.raises(demand.ODInputError, match=r"coarse.csv: row 2, column 'origin_cell'.*resolution 7"):
        demand.load_demand(g, seoul)


@pytest.mark.parametrize("row, column, why", [
    ("x,37.55,127.03,37.50,1,01:00", "o_lon", "not a number"),
    ("126.9,37.55,127.03,37.50,-2,01:00", "trips", "negative"),
    ("126.9,37.55,127.03,37.50,1,25:99", "when", "not a time"),
    ("126.9,95,127.03,37.50,1,01:00", "o_lat", "latitude"),
])
def test_bad_rows_name_file_row_and_column(tmp_path, seoul, row, column, why):
    f = write(tmp_path, "bad.csv", "o_lon,o_lat,d_lon,d_lat,trips,when\n126.9,37.55,127.03,37.50,1,01:00\n" + row + "\n")
    cols = {"time": "when"}
    with pytest.raises(demand.ODInputError, match=rf"bad.csv: row 2, column '{column}'.*{why}"):
        demand.load_demand(f, seoul, columns=cols)
    d = demand.load_demand(f, seoul, columns=cols, on_bad="skip")
    assert d.summary["bad_rows_skipped"] == 1 and d.total == 1
    assert "row 2" in d.summary["bad_row_examples"][0]


def test_short_csv_row_is_named(tmp_path, seoul):
    f = write(tmp_path, "short.csv", "origin_lon,origin_lat,dest_lon,dest_lat,time\n126.9,37.5,127.0,37.5,01:00\n126.9,37.5,127.0,01:00\n")
    with pytest.raises(demand.ODInputError, match=r"short.csv: row 2 \(line 3\) has 4 values, the header has 5"):
        demand.load_demand(f, seoul)


def test_mapping_and_missing_columns_are_explained(tmp_path, seoul):
    f = write(tmp_path, "m.csv", "a,b,c,d,t\n126.9,37.55,127.03,37.50,01:00\n")
    with pytest.raises(demand.ODInputError, match="no origin columns"):
        demand.load_demand(f, seoul)
    with pytest.raises(demand.ODInputError, match="column 'zz'.*not found"):
        demand.load_demand(f, seoul, columns={"origin_lon": "zz"})
    with pytest.raises(demand.ODInputError, match="unknown field"):
        demand.load_demand(f, seoul, columns={"bogus": "a"})
    cols = demand.parse_column_map("origin_lon=a,origin_lat=b,dest_lon=c,dest_lat=d")
    with pytest.raises(demand.ODInputError, match="no time column"):  # t is not a known time name
        demand.load_demand(f, seoul, columns=cols)
    assert demand.load_demand(f, seoul, columns=cols | {"time": "t"}).total == 1
    assert demand.load_demand(f, seoul, columns=cols, window=None).summary["window"] == "all day"


def test_parquet_with_timestamps(tmp_path, seoul):
    import pyarrow as pa
    import pyarrow.parquet as pq
    from datetime import datetime, timezone

    ts = [datetime(2024, 5, 1, 16, 30, tzinfo=timezone.utc), datetime(2024, 5, 1, 23, 0, tzinfo=timezone.utc)]  # 01:30, 08:00 KST
    table = pa.table({"origin_lon": [HONGDAE[0]] * 2, "origin_lat": [HONGDAE[1]] * 2, "dest_lon": [YEOKSAM[0]] * 2,
                      "dest_lat": [YEOKSAM[1]] * 2, "count": [4.0, 9.0], "time": pa.array(ts, pa.timestamp("us", tz="UTC"))})
    pq.write_table(table, tmp_path / "od.parquet")
    d = demand.load_demand(tmp_path / "od.parquet", seoul)
    assert d.total == 4 and d.summary["outside_window"]["trips"] == 9


# --- the simulator ----------------------------------------------------------------------------

def test_simulation_is_reproducible_and_marked(seoul, sim):
    again = simdemand.simulate_seoul_demand(7, city=seoul, samples=60_000)
    other = simdemand.simulate_seoul_demand(8, city=seoul, samples=60_000)
    assert np.array_equal(sim.trips, again.trips) and sim.cells == again.cells
    assert not np.array_equal(sim.matrix(), other.matrix())
    assert sim.simulated and sim.summary["simulated"] and sim.summary["simulation"]["simulated"]
    assert "simulated" in sim.source.lower()
    assert "area" in sim.summary["simulation"]["home_weights"]
    # counts, not rows: Seoul's ~3 billion records from tens of thousands of rows
    assert sim.total == pytest.approx(6079) and sim.summary["records"] < 100_000  # riders a night by default
    calls = simdemand.simulate_seoul_demand(7, city=seoul, samples=60_000, total=simdemand.calibration()["total_records"])
    assert calls.total == pytest.approx(3.0e9) and np.allclose(calls.trips * 6079 / 3.0e9, sim.trips)


def test_hot_spots_lead_and_most_trips_are_between_1_and_3(seoul, sim):
    top = {c for c, _ in sim.top_origins(12)}
    for p in simdemand.hotspot_points(seoul):
        if p.weight >= 0.1:  # each hot spot's main dong
            cell = h3.latlng_to_cell(p.lat, p.lon, 8)
            ring = set(h3.grid_disk(cell, 1))
            assert top & ring, f"{p.hotspot} ({p.dong_name}) not among the top origin cells"
    by_hour = sim.by_hour
    assert by_hour[1] + by_hour[2] > 0.5 * by_hour.sum()
    assert by_hour[5:].sum() == 0
    # a night trip goes home: the hot spots send far more than they receive
    o, d = sim.origin_totals(), sim.dest_totals()
    yeoksam = sim.cells.index(h3.latlng_to_cell(YEOKSAM[1], YEOKSAM[0], 8))
    assert o[yeoksam] > 5 * d[yeoksam]


def test_hot_spot_point_must_lie_in_its_dong(seoul):
    cal = dict(simdemand.calibration())
    cal["hotspots"] = [{"name": "x", "dongs": [{"gu": "관악구", "dong": "신림동", "point": list(YEOKSAM)}]}]
    with pytest.raises(simdemand.SimulationError, match="not inside 관악구 신림동"):
        simdemand.hotspot_points(seoul, cal)
    cal["hotspots"] = [{"name": "x", "dongs": [{"gu": "관악구", "dong": "없는동"}]}]
    with pytest.raises(simdemand.SimulationError, match="not in the city model"):
        simdemand.hotspot_points(seoul, cal)


# --- the city network -------------------------------------------------------------------------

def test_city_network_is_connected_symmetric_and_plausible(seoul, sim):
    net, report = citynet.build_city_network(seoul, sim)
    assert net.geographic and net.simulated and "SIMULATED" in net.source
    assert net.names == sim.cells and net.n == len(sim.cells)
    assert citynet.components(net.travel)[0] == 1
    assert np.array_equal(net.travel, net.travel.T)
    t = net.travel[np.isfinite(net.travel) & (net.travel > 0)]
    # neighbouring res-8 cells are ~0.8 km apart: 1.3 x 0.8 km at 30 km/h is about 2 minutes
    assert 1.5 < t.min() and t.max() < 3.0 or report["bridging_links"]
    assert 1.5 < np.median(t) < 2.5
    assert net.demand.sum() == pytest.approx(sim.total)
    assert np.all(np.diag(net.demand) == 0)
    # a cell links to at most its 6 neighbours
    assert (np.isfinite(net.travel).sum(axis=1) - 1).max() <= 6 + len(report["bridging_links"])


def test_the_simulated_demand_counts_riders_a_night_and_says_so(seoul, sim):
    assert sim.unit == "riders a night" and sim.total == pytest.approx(6079)
    assert "6,079 riders a night (SIMULATED)" in demand.format_summary(sim.summary)
    assert citynet.city_network(seoul, sim).unit == "riders a night"
    scaled = simdemand.simulate_seoul_demand(7, city=seoul, samples=20_000, total=1e6, resolution=6)
    assert scaled.unit == "trips" and scaled.total == pytest.approx(1e6)


def test_a_grid_too_fine_for_dense_matrices_is_refused_before_they_are_made(seoul, sim, monkeypatch):
    monkeypatch.setattr(citynet, "MAX_NODES", len(sim.cells) - 1)
    with pytest.raises(NetworkError, match=r"cells with demand at H3 resolution 8 .*coarser resolution"):
        citynet.build_city_network(seoul, sim)


def test_gaps_in_demand_are_bridged_and_reported(tmp_path, seoul):
    far = (127.1, 37.64)  # 노원구, far from the others
    f = write(tmp_path, "gap.csv", "origin_lon,origin_lat,dest_lon,dest_lat,time\n"
              f"{HONGDAE[0]},{HONGDAE[1]},{YEOKSAM[0]},{YEOKSAM[1]},01:00\n{far[0]},{far[1]},{YEOKSAM[0]},{YEOKSAM[1]},01:00\n")
    d = demand.load_demand(f, seoul)
    net, report = citynet.build_city_network(seoul, d)
    assert report["components_before"] == 3 and len(report["bridging_links"]) == 2
    assert citynet.components(net.travel)[0] == 1 and "bridging" in net.source


def test_dong_network(seoul, sim):
    net, report = citynet.build_city_network(seoul, sim, nodes="dongs")
    assert citynet.components(net.travel)[0] == 1
    assert any(name == "마포구 서교동" for name in net.names)
    dropped = report["trips_inside_one_dong"] + report["trips_in_no_dong"]
    assert net.demand.sum() + dropped == pytest.approx(sim.total)
    assert report["trips_in_no_dong"] < 0.05 * sim.total
    with pytest.raises(NetworkError, match="resolution 8, not 7"):
        citynet.city_network(seoul, sim, 7)


# --- user networks ----------------------------------------------------------------------------

NODES = "id,lon,lat\nA,126.90,37.55\nB,126.92,37.55\nC,126.94,37.56\n"


def test_link_tables(tmp_path):
    n = write(tmp_path, "nodes.csv", NODES)
    ln = write(tmp_path, "links.csv", "from,to,minutes\nA,B,4\nB,C,6.5\n")
    dm = write(tmp_path, "demand.csv", "from,to,trips\nA,C,10\nA,C,5\nC,A,3\n")
    net = citynet.read_link_tables(n, ln, dm)
    assert net.names == ["A", "B", "C"] and net.geographic
    assert net.travel[0, 1] == net.travel[1, 0] == 4 and np.isinf(net.travel[0, 2])
    assert net.demand[0, 2] == 15 and net.demand[2, 0] == 3
    directed = citynet.read_link_tables(n, ln, dm, directed=True)
    assert np.isinf(directed.travel[1, 0])


@pytest.mark.parametrize("links, demand_text, match", [
    ("from,to,minutes\nA,B,4\nB,Z,6\n", "from,to,trips\nA,C,1\n", r"links.csv: line 3, column 'to': unknown node 'Z'"),
    ("from,to,minutes\nA,B,-4\nB,C,6\n", "from,to,trips\nA,C,1\n", r"links.csv: line 2, column 'minutes': negative"),
    ("from,to,minutes\nA,B,4\n", "from,to,trips\nA,C,1\n", r"not connected: 2 separate parts.*C"),
    ("from,to,minutes\nA,B,4\nB,A,5\nB,C,1\n", "from,to,trips\nA,C,1\n", r"line 3: link 'B'-'A' is 5 min but line 2"),
    ("from,to,minutes\nA,B,4\nB,C,6\n", "from,to,trips\nA,C,lots\n", r"demand.csv: line 2, column 'trips': 'lots' is not a number"),
    ("src,to,minutes\nA,B,4\n", "from,to,trips\nA,C,1\n", r"links.csv: no from-node column"),
])
def test_link_table_errors(tmp_path, links, demand_text, match):
    n = write(tmp_path, "nodes.csv", NODES)
    with pytest.raises(NetworkError, match=match):
        citynet.read_link_tables(n, write(tmp_path, "links.csv", links), write(tmp_path, "demand.csv", demand_text))


def test_duplicate_node_is_an_error(tmp_path):
    n = write(tmp_path, "nodes.csv", NODES + "A,126.95,37.57\n")
    with pytest.raises(NetworkError, match=r"nodes.csv: line 5: node id 'A' already given on line 2"):
        citynet.read_link_tables(n, write(tmp_path, "l.csv", "from,to,minutes\nA,B,1\n"), write(tmp_path, "d.csv", "from,to,trips\n"))


def test_matrix_files(tmp_path):
    coords = write(tmp_path, "coords.csv", "id,x,y\n1,0,0\n2,1,0\n3,2,1\n")
    plain = write(tmp_path, "t.csv", "0,3,Inf\n3,0,2\nInf,2,0\n")
    dem = write(tmp_path, "d.csv", "0,5,1\n5,0,2\n1,2,0\n")
    net = citynet.read_matrix(plain, dem, coords)
    assert not net.geographic and net.names == ["1", "2", "3"] and net.travel[1, 2] == 2 and np.isinf(net.travel[0, 2])
    # labelled matrices are matched to the node table by id, whatever its order
    coords2 = write(tmp_path, "coords2.csv", "id,lon,lat\nc,126.9,37.5\na,126.8,37.5\nb,126.85,37.5\n")
    lab = write(tmp_path, "tl.csv", ",a,b,c\na,0,3,Inf\nb,3,0,2\nc,Inf,2,0\n")
    dlab = write(tmp_path, "dl.csv", ",a,b,c\na,0,5,1\nb,5,0,2\nc,1,2,0\n")
    net2 = citynet.read_matrix(lab, dlab, coords2)
    assert net2.names == ["a", "b", "c"] and net2.coords[0].tolist() == [126.8, 37.5] and net2.geographic


@pytest.mark.parametrize("travel, match", [
    ("0,3,Inf\n3,0,2\nInf,2\n", r"t.csv: line 3 has 2 values"),
    ("0,3,Inf\n3,0,-2\nInf,2,0\n", r"t.csv: line 2, column '3': negative"),
    ("0,3,Inf\n3,1,2\nInf,2,0\n", r"diagonal entry for node '2'"),
    ("0,3,Inf\n3,0,Inf\nInf,Inf,0\n", r"not connected"),
    ("0,3,x\n3,0,2\nx,2,0\n", r"t.csv: line 1, column '3': 'x' is not a number"),
])
def test_matrix_errors(tmp_path, travel, match):
    coords = write(tmp_path, "coords.csv", "id,x,y\n1,0,0\n2,1,0\n3,2,1\n")
    dem = write(tmp_path, "d.csv", "0,5,1\n5,0,2\n1,2,0\n")
    with pytest.raises(NetworkError, match=match):
        citynet.read_matrix(write(tmp_path, "t.csv", travel), dem, coords)

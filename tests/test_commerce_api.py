"""The commerce REST API on a tiny indicator dataset written here in the documented layout
(DATA/ as schema.py lays it out, OUT/ as `citywall commerce build` writes it, indicators.py's column
names, a subset of its columns): the districts as
GeoJSON with risk signal and change index, a district's detail and trends, the comparison of up to
four districts, the lists of quarters and business types, and the answers without a source.

`write_dataset` is also used by the browser test (tests/test_commerce_browser.py).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from citywall.analytics.commerce.api import CommerceSourceError, _quarter_shift, check_source
from conftest import running

QUARTERS = [20234, 20241, 20242, 20243, 20244]
# Four districts side by side west to east across central Seoul (near City Hall), 0.012° squares.
DISTRICTS = [
    ("3110001", "무교동 골목", "A", "11140", 126.950),
    ("3110002", "명동 관광특구", "U", "11140", 126.964),
    ("3110003", "남대문시장", "R", "11140", 126.978),
    ("3110004", "을지로 발달상권", "D", "11140", 126.992),
]
LAT = 37.556
RISK = {"3110001": "blue", "3110002": "yellow", "3110003": "orange", "3110004": "red"}
ALL_RISK = {"3110001": "red", "3110002": "orange", "3110003": "yellow", "3110004": "blue"}  # over all types
CHANGE = {"3110001": "LL", "3110002": "LH", "3110003": "HL", "3110004": "HH"}
TYPES = [("CS100001", "한식음식점", "Korean restaurants", "외식업"), ("CS300011", "편의점", "Convenience stores", "소매업")]


def square(lon: float, lat: float, d: float = 0.012) -> str:
    return f"POLYGON (({lon} {lat}, {lon + d} {lat}, {lon + d} {lat + d}, {lon} {lat + d}, {lon} {lat}))"


def sales(code: str, bt: str, q: int) -> int:
    """A distinct, growing amount per district, type and quarter (so QoQ/YoY are known exactly)."""
    base = (int(code[-1]) * 100 + (7 if bt == "CS100001" else 3)) * 1_000_000
    return base + QUARTERS.index(q) * 10_000_000


def stores(code: str, bt: str, q: int) -> int:
    return int(code[-1]) * 10 + (5 if bt == "CS100001" else 2) + QUARTERS.index(q)


def type_rows() -> list[tuple[str, str]]:
    return [(d[0], t[0]) for d in DISTRICTS for t in TYPES if not (d[0] == "3110004" and t[0] == "CS300011")]  # no shops of one kind there


def total(f: Any, code: str, q: int) -> int:
    """A district's all-types total of stores() or sales()."""
    return sum(f(c, b, q) for c, b in type_rows() if c == code)


def write_dataset(root: Path, *, trends: bool = True, seoul_names: bool = False) -> Path:
    """DATA/ and OUT/ under root; returns OUT (what `citywall up --commerce` takes). `seoul_names`:
    Seoul's published column names where indicators.py has its own (trdar_chnge_ix, opbiz_rt, clsbiz_rt)."""
    data, out = root / "data", root / "out"
    data.mkdir(parents=True)
    out.mkdir()
    pq.write_table(pa.table({
        "trdar_cd": [d[0] for d in DISTRICTS], "trdar_cd_nm": [d[1] for d in DISTRICTS], "trdar_se_cd": [d[2] for d in DISTRICTS],
        "signgu_cd": [d[3] for d in DISTRICTS], "adstrd_cd": ["11140550"] * 4,
        "lon": [d[4] + 0.006 for d in DISTRICTS], "lat": [LAT + 0.006] * 4,
        "geometry": [square(d[4], LAT) for d in DISTRICTS], "simulated": [True] * 4,
    }), data / "districts.parquet")
    pq.write_table(pa.table({"svc_induty_cd": [t[0] for t in TYPES], "svc_induty_cd_nm": [t[1] for t in TYPES],
                             "name_en": [t[2] for t in TYPES], "category": [t[3] for t in TYPES]}), data / "business_types.parquet")
    (data / "manifest.json").write_text(json.dumps({"generator": "test", "seed": 1, "simulated": True, "quarters": QUARTERS}))
    (out / "manifest.json").write_text(json.dumps({"data": str(data), "engine": "duckdb", "simulated": True}))
    for q in QUARTERS:
        rows = type_rows()
        part = out / "indicators" / f"stdr_yyqu_cd={q}"
        part.mkdir(parents=True)
        pq.write_table(pa.table({
            "stdr_yyqu_cd": pa.array([q] * len(rows), pa.int32()), "trdar_cd": [r[0] for r in rows], "svc_induty_cd": [r[1] for r in rows],
            "similr_induty_stor_co": [stores(c, b, q) for c, b in rows], "stor_co": [stores(c, b, q) - 1 for c, b in rows],
            ("opbiz_rt" if seoul_names else "opening_rate"): [2.5] * len(rows),
            ("clsbiz_rt" if seoul_names else "closing_rate"): [3.0 + int(c[-1]) + QUARTERS.index(q) for c, _ in rows],
            "franchise_share": [25.0] * len(rows), "thsmon_selng_amt": [sales(c, b, q) for c, b in rows],
            "sales_per_store": [sales(c, b, q) / stores(c, b, q) for c, b in rows],
            "risk_signal": [RISK[c] if b == "CS100001" else "blue" for c, b in rows], "simulated": [True] * len(rows),
        }), part / "part-0.parquet")
    pq.write_table(pa.table({
        "stdr_yyqu_cd": pa.array([q for q in QUARTERS for _ in DISTRICTS], pa.int32()),
        "trdar_cd": [d[0] for _ in QUARTERS for d in DISTRICTS],
        ("trdar_chnge_ix" if seoul_names else "change_index"): [CHANGE[d[0]] for _ in QUARTERS for d in DISTRICTS],
        "tot_flpop_co": [100_000 * int(d[0][-1]) + q % 10 for q in QUARTERS for d in DISTRICTS],
        "tot_repop_co": [5_000] * 20, "tot_wrc_popltn_co": [8_000] * 20, "simulated": [True] * 20,
        "similr_induty_stor_co": [total(stores, d[0], q) for q in QUARTERS for d in DISTRICTS],
        "thsmon_selng_amt": [total(sales, d[0], q) for q in QUARTERS for d in DISTRICTS],
        "risk_signal": [ALL_RISK[d[0]] for _ in QUARTERS for d in DISTRICTS],
    }), out / "district_indicators.parquet")
    if trends:
        q, prev, year = QUARTERS[-1], QUARTERS[-2], QUARTERS[0]
        rows = [(d[0], "CS100001") for d in DISTRICTS]
        pq.write_table(pa.table({
            "stdr_yyqu_cd": pa.array([q] * 4, pa.int32()), "trdar_cd": [r[0] for r in rows], "svc_induty_cd": [r[1] for r in rows],
            "thsmon_selng_amt_qoq_pct": [(sales(c, b, q) / sales(c, b, prev) - 1) * 100 for c, b in rows],
            "thsmon_selng_amt_yoy_pct": [(sales(c, b, q) / sales(c, b, year) - 1) * 100 for c, b in rows],
            "similr_induty_stor_co_qoq_pct": [(stores(c, b, q) / stores(c, b, prev) - 1) * 100 for c, b in rows],
            "similr_induty_stor_co_yoy_pct": [(stores(c, b, q) / stores(c, b, year) - 1) * 100 for c, b in rows],
            "closing_rate_qoq_pp": [1.0] * 4, "closing_rate_yoy_pp": [4.0] * 4, "simulated": [True] * 4,
        }), out / "trends.parquet")
    return out


@pytest.fixture
def out(tmp_path: Path) -> Path:
    return write_dataset(tmp_path)


def test_without_a_source_the_api_says_so(tmp_path: Path) -> None:
    with running(tmp_path / "c.duckdb") as (_, client, _c):
        meta = client.get("/api/commerce").json()
        assert meta["configured"] is False and "--commerce" in meta["message"]
        for path in ("/api/commerce/districts.geojson", "/api/commerce/quarters", "/api/commerce/districts/3110001",
                     "/api/commerce/compare?districts=3110001"):
            r = client.get(path)
            assert r.status_code == 404 and "no commerce source connected" in r.json()["detail"], path


def test_quarters_and_business_types(tmp_path: Path, out: Path) -> None:
    with running(tmp_path / "c.duckdb", commerce=str(out)) as (_, client, _c):
        meta = client.get("/api/commerce").json()
        assert meta["configured"] is True and meta["simulated"] is True
        assert meta["quarters"] == QUARTERS == client.get("/api/commerce/quarters").json()["quarters"]
        types = client.get("/api/commerce/business-types").json()["business_types"]
        assert [(t["code"], t["name_ko"], t["name_en"], t["category"]) for t in types] == [("*", "전체 업종", "All business types", None)] + TYPES
        assert [t["districts"] for t in types] == [4, 4, 3]
        assert meta["default_business_type"] == "CS100001"  # the map opens on one type; "*" is the districts' totals


def test_all_business_types_are_the_district_totals(tmp_path: Path, out: Path) -> None:
    with running(tmp_path / "c.duckdb", commerce=str(out)) as (_, client, _c):
        fc = client.get("/api/commerce/districts.geojson?business_type=*").json()
        assert fc["business_type"] == "*"
        props = {f["properties"]["code"]: f["properties"] for f in fc["features"]}
        assert {c: p["risk_signal"] for c, p in props.items()} == ALL_RISK
        assert props["3110004"]["stores"] == total(stores, "3110004", 20244) == stores("3110004", "CS100001", 20244)
        assert props["3110002"]["sales"] == total(sales, "3110002", 20244) == sales("3110002", "CS100001", 20244) + sales("3110002", "CS300011", 20244)
        d = client.get("/api/commerce/districts/3110002?business_type=*&quarter=20243").json()
        assert d["risk_signal"] == "orange" and d["indicators"]["similr_induty_stor_co"] == total(stores, "3110002", 20243)
        assert d["series"]["thsmon_selng_amt"] == [total(sales, "3110002", q) for q in QUARTERS]
        c = client.get("/api/commerce/compare?districts=3110001,3110004&business_type=*").json()
        assert [x["risk_signal"] for x in c["districts"]] == ["red", "blue"]
        assert c["districts"][1]["indicators"]["thsmon_selng_amt"] == total(sales, "3110004", 20244)


def test_the_map_colours_each_district_by_risk_and_change(tmp_path: Path, out: Path) -> None:
    with running(tmp_path / "c.duckdb", commerce=str(out)) as (_, client, _c):
        r = client.get("/api/commerce/districts.geojson")  # defaults: the latest quarter, the first business type
        assert r.status_code == 200 and r.headers["content-type"] == "application/geo+json"
        fc = r.json()
        assert fc["quarter"] == 20244 and fc["business_type"] == "CS100001" and fc["simulated"] is True
        props = {f["properties"]["code"]: f["properties"] for f in fc["features"]}
        assert {c: p["risk_signal"] for c, p in props.items()} == RISK
        assert {c: p["change_index"] for c, p in props.items()} == CHANGE
        assert props["3110003"]["sales"] == sales("3110003", "CS100001", 20244) and props["3110003"]["name"] == "남대문시장"
        assert props["3110003"]["name_en"] == "Namdaemun Market"  # the wall in English
        assert fc["risk_counts"] == {"blue": 1, "yellow": 1, "orange": 1, "red": 1}
        geom = next(f["geometry"] for f in fc["features"] if f["id"] == "3110001")
        assert geom["type"] == "Polygon" and geom["coordinates"][0][0] == [126.95, LAT]
        # Another type and quarter: the district without such shops has no signal (not a made-up one).
        fc = client.get("/api/commerce/districts.geojson?business_type=CS300011&quarter=20241").json()
        props = {f["properties"]["code"]: f["properties"] for f in fc["features"]}
        assert props["3110004"]["risk_signal"] is None and props["3110004"]["has_data"] is False
        assert props["3110004"]["change_index"] == "HH"  # a district's change index does not depend on the type
        assert props["3110001"]["stores"] == stores("3110001", "CS300011", 20241)  # similr_induty_stor_co, not stor_co
        # A rebuild shows on the next request (map views are cached until a table file changes).
        f = out / "indicators" / "stdr_yyqu_cd=20244" / "part-0.parquet"
        t = pq.read_table(f)
        pq.write_table(t.set_column(t.schema.get_field_index("risk_signal"), "risk_signal", pa.array(["red"] * t.num_rows)), f)
        fc = client.get("/api/commerce/districts.geojson").json()
        assert fc["risk_counts"] == {"blue": 0, "yellow": 0, "orange": 0, "red": 4}
        # Rebuilt from another data directory (the manifest names it): its names and boundaries are read.
        data2 = out.parent / "data2"
        shutil.copytree(out.parent / "data", data2)
        d = pq.read_table(data2 / "districts.parquet")
        names = d["trdar_cd_nm"].to_pylist()
        names[2] = "광장시장"
        pq.write_table(d.set_column(d.schema.get_field_index("trdar_cd_nm"), "trdar_cd_nm", pa.array(names)), data2 / "districts.parquet")
        (out / "manifest.json").write_text(json.dumps({"data": str(data2), "engine": "duckdb", "simulated": True}))
        props = {f["properties"]["code"]: f["properties"] for f in client.get("/api/commerce/districts.geojson").json()["features"]}
        assert (props["3110003"]["name"], props["3110003"]["name_en"]) == ("광장시장", "Gwangjang Market")


def test_unknown_quarter_type_or_district_is_named(tmp_path: Path, out: Path) -> None:
    with running(tmp_path / "c.duckdb", commerce=str(out)) as (_, client, _c):
        r = client.get("/api/commerce/districts.geojson?quarter=20251")
        assert r.status_code == 404 and "quarter 20251" in r.json()["detail"] and "20234..20244" in r.json()["detail"]
        r = client.get("/api/commerce/districts.geojson?business_type=CS999999")
        assert r.status_code == 404 and "CS999999" in r.json()["detail"]
        r = client.get("/api/commerce/districts/9999999")
        assert r.status_code == 404 and "9999999" in r.json()["detail"]
        r = client.get("/api/commerce/compare?districts=3110001,9999999")
        assert r.status_code == 404 and "9999999" in r.json()["detail"]
        assert client.get("/api/commerce/districts.geojson?quarter=abc").status_code == 422


def test_a_district_detail_with_indicators_trends_and_series(tmp_path: Path, out: Path) -> None:
    with running(tmp_path / "c.duckdb", commerce=str(out)) as (_, client, _c):
        d = client.get("/api/commerce/districts/3110002?business_type=CS100001").json()
        assert d["district"]["name"] == "명동 관광특구" and d["district"]["kind"] == "U" and d["quarter"] == 20244
        assert d["indicators"]["similr_induty_stor_co"] == stores("3110002", "CS100001", 20244) and d["risk_signal"] == "yellow"
        assert d["change_index"] == "LH" and d["district_indicators"]["tot_flpop_co"] == 200_004
        assert [(f["column"], f["kind"]) for f in d["fields"]] == [
            ("similr_induty_stor_co", "count"), ("stor_co", "count"), ("opening_rate", "pct"), ("closing_rate", "pct"),
            ("franchise_share", "pct"), ("thsmon_selng_amt", "krw"), ("sales_per_store", "krw")]
        assert [f["column"] for f in d["district_fields"]] == ["tot_flpop_co", "tot_repop_co", "tot_wrc_popltn_co"]
        assert d["simulated"] is True
        t = d["trends"]
        assert t["source"] == "trends"
        assert t["metrics"]["thsmon_selng_amt"]["qoq"] == pytest.approx((sales("3110002", "CS100001", 20244) / sales("3110002", "CS100001", 20243) - 1) * 100)
        assert t["metrics"]["similr_induty_stor_co"] == {
            "unit": "pct", "qoq": pytest.approx((stores("3110002", "CS100001", 20244) / stores("3110002", "CS100001", 20243) - 1) * 100),
            "yoy": pytest.approx((stores("3110002", "CS100001", 20244) / stores("3110002", "CS100001", 20234) - 1) * 100)}
        assert t["metrics"]["closing_rate"] == {"unit": "pp", "qoq": 1.0, "yoy": 4.0}
        s = d["series"]
        assert s["quarters"] == QUARTERS
        assert s["thsmon_selng_amt"] == [sales("3110002", "CS100001", q) for q in QUARTERS]
        assert s["tot_flpop_co"] == [200_000 + q % 10 for q in QUARTERS]
        # An earlier quarter: that quarter's row.
        d = client.get("/api/commerce/districts/3110002?business_type=CS300011&quarter=20242").json()
        assert d["indicators"]["similr_induty_stor_co"] == stores("3110002", "CS300011", 20242)


def test_without_a_trends_table_qoq_and_yoy_come_from_the_quarterly_rows(tmp_path: Path) -> None:
    out = write_dataset(tmp_path, trends=False)
    with running(tmp_path / "c.duckdb", commerce=str(out)) as (_, client, _c):
        t = client.get("/api/commerce/districts/3110001?business_type=CS100001&quarter=20244").json()["trends"]
        assert t["source"] == "derived from indicators"
        a = [sales("3110001", "CS100001", q) for q in QUARTERS]
        assert t["metrics"]["thsmon_selng_amt"] == {"unit": "pct", "qoq": pytest.approx((a[4] / a[3] - 1) * 100), "yoy": pytest.approx((a[4] / a[0] - 1) * 100)}
        assert t["metrics"]["closing_rate"] == {"unit": "pp", "qoq": pytest.approx(1.0), "yoy": pytest.approx(4.0)}  # rates: percentage points
        first = client.get("/api/commerce/districts/3110001?business_type=CS100001&quarter=20234").json()["trends"]
        assert first["metrics"] == {}  # nothing before the first quarter: no trend, not a zero


def test_quarter_arithmetic() -> None:
    assert _quarter_shift(20241, 1) == 20234 and _quarter_shift(20244, 4) == 20234 and _quarter_shift(20242, 5) == 20231


def test_comparison_of_up_to_four_districts(tmp_path: Path, out: Path) -> None:
    with running(tmp_path / "c.duckdb", commerce=str(out)) as (_, client, _c):
        c = client.get("/api/commerce/compare?districts=3110004,3110001&business_type=CS100001").json()
        assert [x["district"]["code"] for x in c["districts"]] == ["3110004", "3110001"]  # in the order asked
        assert [x["risk_signal"] for x in c["districts"]] == ["red", "blue"] and [x["change_index"] for x in c["districts"]] == ["HH", "LL"]
        assert c["districts"][0]["indicators"]["thsmon_selng_amt"] == sales("3110004", "CS100001", 20244)
        assert "similr_induty_stor_co" in [f["column"] for f in c["fields"]] and "tot_flpop_co" in [f["column"] for f in c["district_fields"]]
        c = client.get("/api/commerce/compare?districts=3110004,3110001&business_type=CS300011").json()
        assert c["districts"][0]["indicators"] is None and c["districts"][1]["indicators"]["similr_induty_stor_co"] == stores("3110001", "CS300011", 20244)
        r = client.get("/api/commerce/compare?districts=3110001,3110002,3110003,3110004,3110001")
        assert r.status_code == 422
        r = client.get("/api/commerce/compare?districts=3110001,3110002,3110003,3110004,3110005")
        assert r.status_code == 422 and "at most 4" in r.json()["detail"]
        assert client.get("/api/commerce/compare?districts=,").status_code == 422


def test_a_wrong_directory_stops_the_start_naming_what_is_missing(tmp_path: Path, out: Path) -> None:
    with pytest.raises(CommerceSourceError, match="no such directory"):
        check_source(str(tmp_path / "nowhere"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(CommerceSourceError, match="no indicators.parquet"):
        check_source(str(tmp_path / "empty"))
    bad = tmp_path / "bad"
    bad.mkdir()
    pq.write_table(pa.table({"trdar_cd": ["1"], "stor_co": [1]}), bad / "indicators.parquet")
    with pytest.raises(CommerceSourceError, match=r"indicators\.parquet: indicators lack column\(s\) stdr_yyqu_cd, svc_induty_cd"):
        check_source(str(bad))
    (bad / "indicators.parquet").write_bytes(b"not parquet")
    with pytest.raises(CommerceSourceError, match="not a readable Parquet file"):
        check_source(str(bad))
    assert check_source(str(out)).tables.keys() >= {"indicators", "district_indicators", "trends", "districts", "business_types"}


def test_seoul_published_names_are_read_where_indicators_py_has_its_own(tmp_path: Path) -> None:
    out = write_dataset(tmp_path, seoul_names=True)
    with running(tmp_path / "c.duckdb", commerce=str(out)) as (_, client, _c):
        fc = client.get("/api/commerce/districts.geojson").json()
        assert {f["properties"]["code"]: f["properties"]["change_index"] for f in fc["features"]} == CHANGE
        d = client.get("/api/commerce/districts/3110001").json()
        assert d["change_index"] == "LL"
        assert [f["column"] for f in d["fields"]][2:4] == ["opbiz_rt", "clsbiz_rt"]


def test_citywall_up_refuses_a_wrong_commerce_directory(tmp_path: Path) -> None:
    """`citywall up --commerce DIR` checks DIR before opening anything and says what is wrong."""
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-m", "citywall", "up", "--commerce", str(tmp_path / "nowhere"), "--feed", "none", "--mqtt", "off",
                           "--db", str(tmp_path / "c.duckdb")], capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    assert "nowhere: no such directory" in done.stderr and "citywall commerce build" in done.stderr
    assert not (tmp_path / "c.duckdb").exists()  # nothing was opened

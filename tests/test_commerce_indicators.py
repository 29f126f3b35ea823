"""The golmok indicators on a tiny hand-made data directory: each value computed by hand, DuckDB and Spark
identical, the raw aggregation equal to a direct computation, bad input refused with file/row/column.

The Spark part runs one SparkSession for the module (local[2], UI off, 4 shuffle partitions) and only
two builds; it is skipped when Java is missing. Compare rules between engines: the tables are sorted
by their keys and must be EQUAL (no tolerance): every float is one division of two exact integer sums.
"""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from citywall.analytics.commerce import aggregate, engines, indicators, report, schema

D1, D2, D3 = "3110001", "3110002", "3110003"
T1, T2 = "CS100001", "CS100002"
QUARTERS = (20232, 20234, 20241, 20242)  # 20233 is missing on purpose: QoQ of 20234 must be null, not vs 20232

# similr_induty_stor_co per (district, type, quarter); the other store counts are set per row below.
STORES = {
    (D1, T1): (10, 10, 12, 8), (D1, T2): (4, 4, 4, 4),
    (D2, T1): (20, 20, 20, 25), (D2, T2): (2, 2, 3, 3),
    (D3, T1): (5, 5, 5, 5), (D3, T2): (8, 8, 8, 10),
}
FLPOP = {D1: 10_000, D2: 40_000, D3: 50_000}  # every quarter


def _quarterly(base: Path, name: str, rows: list[dict[str, Any]]) -> None:
    sch = schema.SCHEMAS[name]
    for q in sorted({r["stdr_yyqu_cd"] for r in rows}):
        part = [r for r in rows if r["stdr_yyqu_cd"] == q]
        d = base / name / f"stdr_yyqu_cd={q}"
        d.mkdir(parents=True, exist_ok=True)
        cols = {f.name: [r.get(f.name, 0 if (pa.types.is_integer(f.type) or pa.types.is_floating(f.type)) and not f.nullable else None)
                         for r in part] for f in sch}
        pq.write_table(pa.table(cols, schema=sch), d / "part-0.parquet")


def make_data(base: Path) -> Path:
    """3 districts x 2 business types x 4 quarters, every number chosen by hand."""
    base.mkdir(parents=True, exist_ok=True)
    common = {"trdar_se_cd": "A", "trdar_cd_nm": None, "svc_induty_cd_nm": None, "simulated": True}
    pq.write_table(pa.table({
        "trdar_cd": [D1, D2, D3], "trdar_cd_nm": ["가", "나", "다"], "trdar_se_cd": ["A", "D", "R"], "trdar_se_cd_nm": [None] * 3,
        "signgu_cd": ["11110", "11140", "11170"], "signgu_cd_nm": [None] * 3, "adstrd_cd": ["1111051500", "1114052000", "1117051000"],
        "adstrd_cd_nm": [None] * 3, "lon": [126.97, 126.99, 126.98], "lat": [37.57, 37.56, 37.53], "relm_ar": [1.0] * 3,
        "geometry": [None] * 3, "simulated": [True] * 3}, schema=schema.DISTRICTS), base / "districts.parquet")
    pq.write_table(pa.table({"svc_induty_cd": [T1, T2], "svc_induty_cd_nm": ["한식음식점", "커피-음료"], "name_en": ["Korean food", "Coffee"],
                             "category": ["외식업", "외식업"], "category_en": ["food service"] * 2}, schema=schema.BUSINESS_TYPES),
                   base / "business_types.parquet")
    stores, sales, fl, rp, wk, ch = [], [], [], [], [], []
    for (d, t), counts in STORES.items():
        for q, n in zip(QUARTERS, counts):
            row = {"stdr_yyqu_cd": q, "trdar_cd": d, "svc_induty_cd": t, **common, "similr_induty_stor_co": n,
                   "stor_co": n - 1 if n > 1 else n, "frc_stor_co": 1 if n > 1 else 0, "opbiz_stor_co": 1, "clsbiz_stor_co": 1,
                   "opbiz_rt": 0.0, "clsbiz_rt": 0.0, "clsbiz_3y_stor_co": 0, "srvv_1y_base_co": 4, "srvv_1y_co": 3,
                   "srvv_3y_base_co": 10, "srvv_3y_co": 5}
            stores.append(row)
            amt = 1_000_000 * n
            sales.append({"stdr_yyqu_cd": q, "trdar_cd": d, "svc_induty_cd": t, **common, "thsmon_selng_amt": amt, "thsmon_selng_co": 100 * n,
                          "mdwk_selng_amt": amt * 7 // 10, "wkend_selng_amt": amt * 3 // 10, "ml_selng_amt": amt // 2, "fml_selng_amt": amt // 2})
    # Hand-set rows that the tests look at (20242 unless said):
    r = next(s for s in stores if (s["trdar_cd"], s["svc_induty_cd"], s["stdr_yyqu_cd"]) == (D1, T1, 20242))
    r.update(opbiz_stor_co=2, clsbiz_stor_co=6, frc_stor_co=2, clsbiz_3y_stor_co=3, srvv_3y_base_co=8, srvv_3y_co=2, srvv_1y_base_co=0)
    r = next(s for s in stores if (s["trdar_cd"], s["svc_induty_cd"], s["stdr_yyqu_cd"]) == (D2, T1, 20242))
    r.update(clsbiz_stor_co=0, srvv_3y_base_co=10, srvv_3y_co=9)
    r = next(s for s in stores if (s["trdar_cd"], s["svc_induty_cd"], s["stdr_yyqu_cd"]) == (D3, T1, 20242))
    r.update(clsbiz_stor_co=2, srvv_3y_base_co=None, srvv_3y_co=None)  # no cohort data: 3-year rate unknown
    for q in QUARTERS:
        for d in (D1, D2, D3):
            fl.append({"stdr_yyqu_cd": q, "trdar_cd": d, **common, "tot_flpop_co": FLPOP[d]})
            rp.append({"stdr_yyqu_cd": q, "trdar_cd": d, **common, "tot_repop_co": FLPOP[d] // 10})
            wk.append({"stdr_yyqu_cd": q, "trdar_cd": d, **common, "tot_wrc_popltn_co": FLPOP[d] // 20})
    # Operating months: Seoul averages 100 (surviving) and 50 (closed); published index deliberately wrong for D3.
    for q in QUARTERS:
        for d, opr, cls, pub in ((D1, 80.0, 40.0, "LL"), (D2, 80.0, 60.0, "LH"), (D3, 120.0, 40.0, "HH")):
            ch.append({"stdr_yyqu_cd": q, "trdar_cd": d, **common, "trdar_chnge_ix": pub, "opr_sale_mt_avrg": opr, "cls_sale_mt_avrg": cls,
                       "su_opr_sale_mt_avrg": 100.0, "su_cls_sale_mt_avrg": 50.0})
    for name, rows in (("stores", stores), ("sales", sales), ("flpop", fl), ("resident", rp), ("working", wk), ("change", ch)):
        _quarterly(base, name, rows)
    return base


def row(table: pa.Table, **keys: Any) -> dict[str, Any]:
    rows = [r for r in table.to_pylist() if all(r[k] == v for k, v in keys.items())]
    assert len(rows) == 1, (keys, len(rows))
    return rows[0]


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_data(tmp_path_factory.mktemp("commerce") / "data")


@pytest.fixture(scope="module")
def duck(data: Path) -> dict[str, pa.Table]:
    with engines.session() as con:
        return indicators.build(con, data)


def test_store_counts_rates_and_franchise_share(duck: dict[str, pa.Table]) -> None:
    r = row(duck["indicators"], trdar_cd=D1, svc_induty_cd=T1, stdr_yyqu_cd=20242)
    assert (r["similr_induty_stor_co"], r["opbiz_stor_co"], r["clsbiz_stor_co"], r["frc_stor_co"]) == (8, 2, 6, 2)
    assert r["opening_rate"] == pytest.approx(25.0)  # 2 / 8
    assert r["closing_rate"] == pytest.approx(75.0)  # 6 / 8
    assert r["franchise_share"] == pytest.approx(25.0)  # 2 / 8
    assert r["simulated"] is True and r["trdar_cd_nm"] == "가" and r["svc_induty_name_en"] == "Korean food"


def test_sales_per_store_and_splits(duck: dict[str, pa.Table]) -> None:
    r = row(duck["indicators"], trdar_cd=D2, svc_induty_cd=T1, stdr_yyqu_cd=20242)
    assert r["thsmon_selng_amt"] == 25_000_000
    assert r["sales_per_store"] == pytest.approx(1_000_000.0)  # 25,000,000 / 25 stores
    assert r["mdwk_selng_amt_per_store"] == pytest.approx(700_000.0)
    assert r["wkend_selng_amt_per_store"] == pytest.approx(300_000.0)
    assert r["fml_selng_amt_per_store"] == pytest.approx(500_000.0)
    assert r["agrde_20_selng_amt_per_store"] == 0.0


def test_population_joined_per_district(duck: dict[str, pa.Table]) -> None:
    r = row(duck["indicators"], trdar_cd=D3, svc_induty_cd=T2, stdr_yyqu_cd=20241)
    assert (r["tot_flpop_co"], r["tot_repop_co"], r["tot_wrc_popltn_co"]) == (50_000, 5_000, 2_500)


def test_survival_and_three_year_closure(duck: dict[str, pa.Table]) -> None:
    r = row(duck["indicators"], trdar_cd=D1, svc_induty_cd=T1, stdr_yyqu_cd=20242)
    assert r["survival_rate_3y"] == pytest.approx(25.0)  # 2 of 8 still open
    assert r["closure_rate_3y"] == pytest.approx(75.0)
    assert r["survival_rate_1y"] is None  # empty 1-year cohort: unknown, not 0 or 100
    assert r["young_closure_share"] == pytest.approx(50.0)  # 3 of 6 closures were under 3 years old
    r = row(duck["indicators"], trdar_cd=D3, svc_induty_cd=T1, stdr_yyqu_cd=20242)
    assert r["closure_rate_3y"] is None


def test_overcrowding_against_seoul_average(duck: dict[str, pa.Table]) -> None:
    # T1 in 20242: stores 8 + 25 + 5 = 38 over 100,000 floating -> Seoul 0.38 per 1,000.
    r = row(duck["indicators"], trdar_cd=D1, svc_induty_cd=T1, stdr_yyqu_cd=20242)
    assert r["stores_per_1000_flpop"] == pytest.approx(0.8)  # 8 / 10,000 * 1,000
    assert r["seoul_stores_per_1000_flpop"] == pytest.approx(0.38)
    assert r["overcrowding_index"] == pytest.approx(0.8 / 0.38)
    assert r["overcrowded"] is True
    r = row(duck["indicators"], trdar_cd=D3, svc_induty_cd=T1, stdr_yyqu_cd=20242)
    assert r["overcrowding_index"] == pytest.approx(0.1 / 0.38) and r["overcrowded"] is False


def test_overcrowding_average_counts_only_districts_with_the_type(tmp_path: Path, data: Path) -> None:
    # D3 without any T1 shop in 20242: Seoul's T1 average is (8 + 25) stores over the 50,000 floating
    # people of D1 and D2 (0.66 per 1,000), not over all 100,000 (0.33).
    copy = tmp_path / "data"
    shutil.copytree(data, copy)
    f = copy / "stores" / "stdr_yyqu_cd=20242" / "part-0.parquet"
    t = pq.read_table(f)
    rows = t.to_pylist()
    for r in rows:
        if (r["trdar_cd"], r["svc_induty_cd"]) == (D3, T1):
            r.update(similr_induty_stor_co=0, stor_co=0, frc_stor_co=0, opbiz_stor_co=0, clsbiz_stor_co=0)
    pq.write_table(pa.Table.from_pylist(rows, schema=t.schema), f)
    with engines.session() as con:
        built = indicators.build(con, copy)
    r = row(built["indicators"], trdar_cd=D1, svc_induty_cd=T1, stdr_yyqu_cd=20242)
    assert r["seoul_stores_per_1000_flpop"] == pytest.approx(33 / 50_000 * 1000)
    assert r["overcrowding_index"] == pytest.approx(0.8 / 0.66)
    # ... and D3 counts one business type present that quarter, not two (its T1 row has no store).
    assert row(built["district_indicators"], trdar_cd=D3, stdr_yyqu_cd=20242)["business_types"] == 1


def test_change_index_from_operating_months(duck: dict[str, pa.Table]) -> None:
    d = duck["district_indicators"]
    assert row(d, trdar_cd=D1, stdr_yyqu_cd=20241)["change_index"] == "LL"
    r2 = row(d, trdar_cd=D2, stdr_yyqu_cd=20241)
    assert (r2["change_index"], r2["change_index_nm"], r2["change_index_matches_published"]) == ("LH", "상권확장", True)
    r3 = row(d, trdar_cd=D3, stdr_yyqu_cd=20241)  # surviving above, closed below Seoul: HL, published said HH
    assert (r3["change_index"], r3["change_index_en"], r3["change_index_published"], r3["change_index_matches_published"]) == \
        ("HL", "shrinking", "HH", False)
    assert row(duck["indicators"], trdar_cd=D3, svc_induty_cd=T2, stdr_yyqu_cd=20241)["change_index"] == "HL"


def test_risk_signal(duck: dict[str, pa.Table]) -> None:
    # T1, 20242, each component ranked worst first (`*_worse_share` = share of the rows strictly worse):
    # closing rates: D1 75, D3 40, D2 0 -> D1 0.0, D3 0.5, D2 1.0.
    # 3-year closure: D1 75, D2 10 (D3 unknown) -> D1 0.0, D2 1.0.
    # store change QoQ: D1 12 -> 8 = -33.3%, D3 0%, D2 20 -> 25 = +25% -> D1 0.0, D3 0.5, D2 1.0.
    ind = duck["indicators"]
    r1 = row(ind, trdar_cd=D1, svc_induty_cd=T1, stdr_yyqu_cd=20242)
    assert r1["store_change_qoq_pct"] == pytest.approx(-100 / 3)
    assert (r1["closing_rate_worse_share"], r1["closure_rate_3y_worse_share"], r1["store_change_worse_share"]) == (0.0, 0.0, 0.0)
    assert (r1["risk_points"], r1["risk_basis"], r1["risk_signal"]) == (3, 3, "red")
    r2 = row(ind, trdar_cd=D2, svc_induty_cd=T1, stdr_yyqu_cd=20242)
    assert (r2["risk_points"], r2["risk_signal"]) == (0, "blue")
    r3 = row(ind, trdar_cd=D3, svc_induty_cd=T1, stdr_yyqu_cd=20242)
    assert (r3["closing_rate_worse_share"], r3["store_change_worse_share"]) == (0.5, 0.5)
    assert (r3["risk_points"], r3["risk_basis"], r3["risk_signal"]) == (0, 2, "blue")
    # 20234 follows a missing quarter: no store change, signal from the two closure rates only.
    r = row(ind, trdar_cd=D1, svc_induty_cd=T1, stdr_yyqu_cd=20234)
    assert r["store_change_qoq_pct"] is None and r["risk_basis"] == 2
    # Ties, T2 in 20242: D1 (4 -> 4) and D2 (3 -> 3) did not change, D3 grew (8 -> 10). The unchanged
    # two share the worst rank (0.0) but a count that held earns no point. All three lost 50% of their
    # 3-year cohort: tied at the worst value, all keep that point (ranked best first, a tie group larger
    # than a quarter of the rows would have lost it). Closing rates 1/4, 1/3, 1/10: only D2's is the worst.
    t2 = {d: row(ind, trdar_cd=d, svc_induty_cd=T2, stdr_yyqu_cd=20242) for d in (D1, D2, D3)}
    assert [t2[d]["store_change_qoq_pct"] for d in (D1, D2, D3)] == [0.0, 0.0, 25.0]
    assert [t2[d]["store_change_worse_share"] for d in (D1, D2, D3)] == [0.0, 0.0, 1.0]
    assert [t2[d]["closure_rate_3y_worse_share"] for d in (D1, D2, D3)] == [0.0, 0.0, 0.0]
    assert [t2[d]["risk_points"] for d in (D1, D2, D3)] == [1, 2, 1]
    assert [t2[d]["risk_signal"] for d in (D1, D2, D3)] == ["yellow", "orange", "yellow"]


def test_trends_qoq_yoy(duck: dict[str, pa.Table]) -> None:
    tr = duck["trends"]
    r = row(tr, trdar_cd=D2, svc_induty_cd=T1, stdr_yyqu_cd=20242)
    assert r["similr_induty_stor_co_qoq_pct"] == pytest.approx(25.0)  # 20 -> 25
    assert r["similr_induty_stor_co_yoy_pct"] == pytest.approx(25.0)  # 20232: 20 -> 25
    assert r["closing_rate_qoq_pp"] == pytest.approx(0.0 - 5.0)  # 1/20 = 5% -> 0%
    assert row(tr, trdar_cd=D2, svc_induty_cd=T1, stdr_yyqu_cd=20234)["similr_induty_stor_co_qoq_pct"] is None  # 20233 missing
    assert row(tr, trdar_cd=D2, svc_induty_cd=T1, stdr_yyqu_cd=20241)["similr_induty_stor_co_qoq_pct"] == pytest.approx(0.0)
    total = row(tr, trdar_cd=D1, svc_induty_cd=indicators.ALL_TYPES, stdr_yyqu_cd=20242)
    assert total["similr_induty_stor_co_qoq_pct"] == pytest.approx((12 - 16) / 16 * 100)  # (8+4) vs (12+4)


def test_district_totals(duck: dict[str, pa.Table]) -> None:
    r = row(duck["district_indicators"], trdar_cd=D1, stdr_yyqu_cd=20242)
    assert (r["business_types"], r["similr_induty_stor_co"], r["clsbiz_stor_co"], r["thsmon_selng_amt"]) == (2, 12, 7, 12_000_000)
    assert r["closing_rate"] == pytest.approx(7 / 12 * 100)
    assert r["simulated"] is True


def test_compare_up_to_four(duck: dict[str, pa.Table]) -> None:
    c = indicators.compare(duck["district_indicators"], [D1, D3])
    assert sorted(c["trdar_cd"].to_pylist()) == [D1, D3] and set(c["stdr_yyqu_cd"].to_pylist()) == {20242}
    with pytest.raises(indicators.IndicatorError, match="1 to 4"):
        indicators.compare(duck["district_indicators"], [D1, D2, D3, "3110004", "3110005"])
    with pytest.raises(indicators.IndicatorError, match="3119999"):
        indicators.compare(duck["district_indicators"], [D1, "3119999"])
    with pytest.raises(indicators.IndicatorError, match=f"no rows for district\\(s\\) {D1}, {D2} in quarter 20194, business type {T1}"):
        indicators.compare(duck["indicators"], [D1, D2], quarter=20194, business_type=T1)  # known districts, no such quarter


def test_report_text(data: Path) -> None:
    from citywall.analytics.commerce import report

    text = report.district_report(data, D1)
    assert "SIMULATED" in text and D1 in text and "red" in text and "LL" in text
    with pytest.raises(indicators.IndicatorError, match="3119999"):
        report.district_report(data, "3119999")


def test_cli_build_report_aggregate(tmp_path: Path, data: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from citywall.cli import main

    assert main(["commerce", "build", "--data", str(data), "--out", str(tmp_path / "out"), "--quiet"]) == 0
    assert "SIMULATED" in capsys.readouterr().out
    built = pq.read_table(tmp_path / "out" / "indicators.parquet")
    assert built.num_rows == len(STORES) * len(QUARTERS)
    assert main(["commerce", "report", "--built", str(tmp_path / "out"), "--district", D1, "--district", D2]) == 0
    out = capsys.readouterr().out
    assert out.startswith("SIMULATED") and f"District {D2}" in out
    side = out[out.index("Comparison, all business types, quarter 20242"):]  # two districts: side by side too
    assert D1 in side and D2 in side and side.count("\n") == len(report.COMPARED) + 2  # title, header, rows
    assert main(["commerce", "report", "--built", str(tmp_path / "out"), "--district", "3119999"]) == 2
    assert "3119999" in capsys.readouterr().err
    # `--data` given build's OUT (the issue's `report --data DIR`): read as built, not a missing-table error
    assert main(["commerce", "report", "--data", str(tmp_path / "out"), "--district", D2]) == 0
    assert capsys.readouterr().out.startswith("SIMULATED")
    assert main(["commerce", "report", "--data", str(tmp_path / "out"), "--district", "3119999"]) == 2
    assert "3119999" in capsys.readouterr().err
    raw = write_payments(tmp_path / "raw", PAYMENTS, files=2)
    assert main(["commerce", "aggregate", "--raw", str(raw), "--out", str(tmp_path / "agg"), "--memory-limit", "256MB",
                 "--temp-dir", str(tmp_path / "spill"), "--batch-rows", "3"]) == 0
    got = capsys.readouterr()
    assert "payments 5 -> 3 sales rows" in got.out and "batch 2/2: 2/2 files" in got.err  # progress on stderr
    assert main(["commerce", "build", "--data", str(tmp_path / "nothing"), "--out", str(tmp_path / "o2"), "--quiet"]) == 2
    assert "nothing: not a directory" in capsys.readouterr().err


def test_missing_table_is_named(tmp_path: Path, data: Path) -> None:
    bad = tmp_path / "data"
    shutil.copytree(data, bad)
    shutil.rmtree(bad / "flpop")
    with engines.session() as con, pytest.raises(engines.EngineError, match="flpop"):
        indicators.build(con, bad)
    shutil.rmtree(bad / "working")
    (bad / "districts.parquet").unlink()
    with engines.session() as con, pytest.raises(engines.EngineError, match="missing tables districts, flpop, working"):
        indicators.build(con, bad)  # all of them named at once


def test_codes_missing_from_districts_or_business_types_are_named(tmp_path: Path, data: Path) -> None:
    """A sales row of a district (or business type) the data directory does not know would come out
    nameless: build refuses it and names the table, the column and the code."""
    for col, code, ref in (("trdar_cd", "3119998", "districts"), ("svc_induty_cd", "CS399999", "business_types")):
        bad = tmp_path / col
        shutil.copytree(data, bad)
        f = sorted((bad / "sales").rglob("*.parquet"))[-1]
        t = pq.read_table(f)
        values = t[col].to_pylist()
        values[0] = code
        pq.write_table(t.set_column(t.schema.get_field_index(col), col, pa.array(values, t.schema.field(col).type)), f)
        with engines.session() as con, pytest.raises(indicators.IndicatorError, match=f"sales: column {col}: code.*'{code}'.*{ref}"):
            indicators.build(con, bad)


# ------------------------------------------------------------------ raw aggregation
KST = dt.timezone(dt.timedelta(hours=9))
PAYMENTS = [  # (paid_at KST, district, type, amount, sex, age)
    (dt.datetime(2024, 3, 4, 9, 30, tzinfo=KST), D1, T1, 10_000, "M", 20),   # Monday, 06-11, Q1
    (dt.datetime(2024, 3, 9, 23, 0, tzinfo=KST), D1, T1, 5_000, "F", 60),    # Saturday, 21-24, Q1
    (dt.datetime(2024, 3, 31, 23, 59, tzinfo=KST), D1, T1, 1_000, "F", 30),  # Sunday 23:59 KST = 14:59 UTC: still Q1, Sunday
    (dt.datetime(2024, 4, 1, 0, 30, tzinfo=KST), D1, T1, 7_000, "M", 40),    # Monday 00:30 KST = Sunday 15:30 UTC: Q2, Monday, 00-06
    (dt.datetime(2024, 4, 3, 12, 0, tzinfo=KST), D2, T2, 3_000, "M", 10),    # Wednesday, 11-14, Q2
]


def write_payments(base: Path, rows: list[tuple[Any, ...]], schema_: pa.Schema = schema.PAYMENTS, files: int = 1) -> Path:
    """The rows as RAW/payments/part-NNNNN.parquet, split over `files` files in order."""
    (base / "payments").mkdir(parents=True, exist_ok=True)
    per = -(-len(rows) // files)
    for k in range(files):
        cols = list(zip(*rows[k * per:(k + 1) * per]))
        pq.write_table(pa.table({f.name: list(c) for f, c in zip(schema_, cols)}, schema=schema_), base / "payments" / f"part-{k:05d}.parquet")
    return base


def direct(rows: list[tuple[Any, ...]]) -> dict[tuple[int, str, str], dict[str, int]]:
    """The aggregation in plain Python, from the KST wall-clock time."""
    out: dict[tuple[int, str, str], dict[str, int]] = {}
    days = aggregate.DAYS
    for ts, d, t, amt, sex, age in rows:
        k = (ts.year * 10 + (ts.month - 1) // 3 + 1, d, t)
        acc = out.setdefault(k, {c: 0 for c in aggregate.sales_columns()})
        parts = ["thsmon", "mdwk" if ts.weekday() < 5 else "wkend", days[ts.weekday()],
                 next(f"tmzon_{a:02d}_{b:02d}" for a, b in aggregate.TIME_BANDS if a <= ts.hour < b),
                 "ml" if sex == "M" else "fml", "agrde_60_above" if age == 60 else f"agrde_{age}"]
        for p in parts:
            acc[f"{p}_selng_amt"] += amt
            acc[f"{p}_selng_co"] += 1
    return out


def test_raw_aggregation_equals_direct_computation(tmp_path: Path) -> None:
    raw = write_payments(tmp_path / "raw", PAYMENTS)
    with engines.session() as con:
        table, res = aggregate.aggregate(con, raw, out=tmp_path / "out")
    assert res.rows_in == len(PAYMENTS)
    got = {(r["stdr_yyqu_cd"], r["trdar_cd"], r["svc_induty_cd"]): {c: r[c] for c in aggregate.sales_columns()} for r in table.to_pylist()}
    assert got == direct(PAYMENTS)
    assert got[(20241, D1, T1)]["sun_selng_amt"] == 1_000 and got[(20242, D1, T1)]["mon_selng_co"] == 1
    assert pq.read_table(tmp_path / "out" / "sales" / "stdr_yyqu_cd=20242" / "part-0.parquet").num_rows == 2
    whole = pq.read_table(tmp_path / "out" / "sales", partitioning=None)  # the files agree with the layout's types: one dataset
    assert whole.num_rows == table.num_rows and whole.schema.field("stdr_yyqu_cd").type == pa.int32()
    assert whole.schema.field("thsmon_selng_amt").type == schema.SALES.field("thsmon_selng_amt").type
    # A rerun into the same OUT with only the second quarter's payments holds that quarter alone.
    with engines.session() as con:
        aggregate.aggregate(con, write_payments(tmp_path / "raw2", PAYMENTS[3:]), out=tmp_path / "out")
    assert sorted(p.name for p in (tmp_path / "out" / "sales").iterdir()) == ["stdr_yyqu_cd=20242"]
    assert sorted(aggregate.sales_columns()) == sorted(schema.SALES_MEASURES)


@pytest.mark.parametrize("fold", [10, 2])
def test_batches_add_up_to_the_same_table(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fold: int) -> None:
    # DuckDB reads ~batch_rows rows at a time, appends each batch's groups to a table and adds them up
    # at the end, folding the table every FOLD_BATCHES batches (aggregate's docstring): 3 files of 2,
    # 2 and 1 payments in 3 batches give the one-pass result exactly, with a fold after batch 2 or not.
    monkeypatch.setattr(aggregate, "FOLD_BATCHES", fold)
    merged: list[str] = []
    merge_sql = aggregate.merge_sql
    monkeypatch.setattr(aggregate, "merge_sql", lambda columns, table: merged.append(table) or merge_sql(columns, table))
    raw = write_payments(tmp_path / "raw", PAYMENTS, files=3)
    said: list[str] = []
    with engines.session() as con:
        one, _ = aggregate.aggregate(con, raw)
        batched, res = aggregate.aggregate(con, raw, progress=said.append, batch_rows=2)
        tables = [r[0] for r in con.con.execute("SELECT table_name FROM duckdb_tables()").fetchall()]
    assert any("in 3 batches" in m for m in said) and any(m.startswith("batch 3/3: 3/3 files") for m in said)
    # Folded after batch 2 (then the last batch appended to the folded table), or added up once at the end.
    assert merged == (["raw_sales_parts_0", "raw_sales_parts_1"] if fold == 2 else ["raw_sales_parts_0"])
    assert not [t for t in tables if t.startswith("raw_sales_parts")]  # the stored batches are dropped
    order = [(k, "ascending") for k in aggregate.KEYS]
    assert batched.sort_by(order).equals(one.sort_by(order)) and res.rows_in == len(PAYMENTS)
    got = {(r["stdr_yyqu_cd"], r["trdar_cd"], r["svc_induty_cd"]): {c: r[c] for c in aggregate.sales_columns()} for r in batched.to_pylist()}
    assert got == direct(PAYMENTS)
    assert aggregate.file_batches(aggregate.raw_files(raw), 4) == [aggregate.raw_files(raw)[:2], aggregate.raw_files(raw)[2:]]
    # A bad row in a later batch is still found and named.
    rows = [list(r) for r in PAYMENTS]
    rows[4][3] = -1
    bad = write_payments(tmp_path / "bad", [tuple(r) for r in rows], files=3)
    with engines.session() as con, pytest.raises(aggregate.RawDataError, match="part-00002.parquet: row 1, column amount_krw"):
        aggregate.aggregate(con, bad, batch_rows=2)


@pytest.mark.parametrize(("i", "col", "value", "match"), [
    (2, "amount_krw", -500, "row 3, column amount_krw"),  # rows are 1-based, as schema.CommerceDataError's
    (3, "customer_sex", "X", "row 4, column customer_sex"),
    (0, "customer_age_band", 70, "row 1, column customer_age_band"),
    (4, "business_type_code", "XX100001", "row 5, column business_type_code: unknown code 'XX100001'"),  # not a CSnxxxxx code
    (1, "district_code", "31100", "row 2, column district_code: unknown code '31100'"),  # not 7 digits
    (3, "customer_sex", None, "row 4, column customer_sex"),  # missing values too
    (2, "amount_krw", None, "row 3, column amount_krw"),
    (4, "customer_age_band", None, "row 5, column customer_age_band"),
    (1, "paid_at", None, "row 2, column paid_at"),
    (0, "business_type_code", None, "row 1, column business_type_code"),
])
def test_raw_bad_rows_are_named(tmp_path: Path, i: int, col: str, value: Any, match: str) -> None:
    rows = [list(r) for r in PAYMENTS]
    rows[i][list(aggregate.RAW_COLUMNS).index(col)] = value
    nullable = pa.schema([f.with_nullable(True) for f in schema.PAYMENTS])  # a city's export may have gaps
    raw = write_payments(tmp_path / "raw", [tuple(r) for r in rows], nullable)
    with engines.session() as con, pytest.raises(aggregate.RawDataError, match=match) as err:
        aggregate.aggregate(con, raw)
    assert "part-00000.parquet" in str(err.value)


@pytest.mark.parametrize(("col", "typ", "values", "match"), [
    ("customer_age_band", pa.string(), ["20", "60+", "30", "40", "10"], "column customer_age_band is string.*expected an integer type"),
    ("amount_krw", pa.float64(), [10_000.0, 5_000.4, 1_000.0, 7_000.0, 3_000.0], "column amount_krw is double.*whole won"),
    ("paid_at", pa.string(), ["2024-03-04 09:30:00"] * 5, "column paid_at is string.*expected a timestamp"),
])
def test_raw_column_of_a_wrong_type_is_named(tmp_path: Path, col: str, typ: pa.DataType, values: list[Any], match: str) -> None:
    # Types the two engines would read differently (or truncate) stop the run before the scan.
    i = list(aggregate.RAW_COLUMNS).index(col)
    sch = schema.PAYMENTS.set(i, pa.field(col, typ))
    raw = write_payments(tmp_path / "raw", [tuple(values[k] if j == i else v for j, v in enumerate(r)) for k, r in enumerate(PAYMENTS)], sch)
    with engines.session() as con, pytest.raises(aggregate.RawDataError, match=f"part-00000.parquet: {match}"):
        aggregate.aggregate(con, raw)


def test_raw_int96_timestamps_are_refused_with_the_way_out(tmp_path: Path) -> None:
    raw = write_payments(tmp_path / "raw", PAYMENTS)
    f = raw / "payments" / "part-00000.parquet"
    pq.write_table(pq.read_table(f), f, use_deprecated_int96_timestamps=True)  # as Hive/Impala export
    with engines.session() as con, pytest.raises(aggregate.RawDataError, match="column paid_at is an INT96 timestamp.*timezone\\('UTC', paid_at\\)"):
        aggregate.aggregate(con, raw)


def test_raw_missing_column_is_named(tmp_path: Path) -> None:
    sch = pa.schema([f for f in schema.PAYMENTS if f.name != "customer_sex"])
    raw = write_payments(tmp_path / "raw", [tuple(v for j, v in enumerate(r) if j != 4) for r in PAYMENTS], sch)
    with engines.session() as con, pytest.raises(aggregate.RawDataError, match="part-00000.parquet: missing column.*customer_sex"):
        aggregate.aggregate(con, raw)


def test_unknown_engine() -> None:
    with pytest.raises(engines.EngineError, match="unknown engine 'oracle'"):
        engines.connect(engines.EngineOptions("oracle"))


# ------------------------------------------------------------------ Spark: identical results
@pytest.fixture(scope="module")
def spark_con() -> Any:
    if shutil.which("java") is None:
        pytest.skip("no Java: Spark cannot run")
    con = engines.connect(engines.EngineOptions("spark", spark_master="local[2]", spark_driver_memory="2g"))
    yield con
    con._session.stop()


def assert_same(a: pa.Table, b: pa.Table) -> None:
    assert a.column_names == b.column_names
    assert a.num_rows == b.num_rows
    for c in a.column_names:
        assert a[c].type == b[c].type, c
        assert a[c].to_pylist() == b[c].to_pylist(), c


def test_spark_indicators_identical_to_duckdb(spark_con: Any, data: Path, duck: dict[str, pa.Table]) -> None:
    spark = indicators.build(spark_con, data)
    for name in ("indicators", "district_indicators", "trends"):
        assert_same(duck[name], spark[name])


def test_spark_raw_aggregation_identical(spark_con: Any, tmp_path: Path) -> None:
    raw = write_payments(tmp_path / "raw", PAYMENTS)
    with engines.session() as con:
        d, _ = aggregate.aggregate(con, raw)
    s, _ = aggregate.aggregate(spark_con, raw)
    order = [(k, "ascending") for k in aggregate.KEYS]
    assert_same(d.sort_by(order), s.sort_by(order))

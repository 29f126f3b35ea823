"""Commercial-district data: the layout's schemas, the quarterly generator, the raw-record generator,
the readers of Seoul's CSVs and their errors (file, row, column), and the CLI commands."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
import shapely

from citywall.analytics.commerce import schema as S
from citywall.analytics.commerce.catalog import BUSINESS_TYPES
from citywall.analytics.commerce.generate import DEFAULT_KINDS, generate, quarter_range, simulate
from citywall.analytics.commerce.readers import KOREAN, import_files, read_csv
from citywall.analytics.commerce.rawgen import generate_raw, load_model
from citywall.analytics.commerce.schema import CommerceDataError
from citywall.city import load_city

SMALL = {"A": 40, "D": 12, "R": 10, "U": 2}


@pytest.fixture(scope="module")
def city():
    return load_city("seoul")


@pytest.fixture(scope="module")
def sim(city):
    """The full-size simulation (1,646 districts), 8 quarters."""
    return simulate(seed=11, quarters=8, city=city)


@pytest.fixture(scope="module")
def small_dir(tmp_path_factory, city):
    out = tmp_path_factory.mktemp("commerce") / "data"
    generate(out, seed=5, quarters=4, city=city, kinds=SMALL)
    return out


# ---------------------------------------------------------------- schema
def test_schemas_use_lower_case_api_names_and_carry_quarter_and_simulated():
    for name in S.QUARTERLY:
        schema = S.SCHEMAS[name]
        assert schema.field("stdr_yyqu_cd").type == pa.int32()
        assert schema.field("trdar_cd").type == pa.string()
        assert schema.field("simulated").type == pa.bool_()
        assert all(f.name == f.name.lower() for f in schema)
    sales = set(S.SALES.names)
    for part in ("thsmon", "mdwk", "wkend", "mon", "sun", "tmzon_00_06", "tmzon_21_24", "ml", "fml", "agrde_10", "agrde_60_above"):
        assert {f"{part}_selng_amt", f"{part}_selng_co"} <= sales
    assert S.SALES.field("thsmon_selng_amt").type == pa.int64()
    assert S.PAYMENTS.names == ["paid_at", "district_code", "business_type_code", "amount_krw", "customer_sex", "customer_age_band"]
    assert S.PAYMENTS.field("paid_at").type == pa.timestamp("us", tz="Asia/Seoul")


def _stores_row(**over):
    row = {"stdr_yyqu_cd": 20241, "trdar_se_cd": "A", "trdar_cd": "3110001", "trdar_cd_nm": "x",
           "svc_induty_cd": "CS100001", "svc_induty_cd_nm": "한식음식점", "stor_co": 3, "similr_induty_stor_co": 4,
           "opbiz_rt": 25.0, "opbiz_stor_co": 1, "clsbiz_rt": 0.0, "clsbiz_stor_co": 0, "frc_stor_co": 1}
    row.update(over)
    return row


def test_validate_names_file_row_and_column_for_each_kind_of_bad_value():
    good = pa.Table.from_pylist([_stores_row(), _stores_row(trdar_cd="3110002")])
    out = S.validate(good, "stores", "s.parquet")
    assert out.schema == S.STORES and out["simulated"].to_pylist() == [False, False]  # not generated
    cases = [
        (good.drop(["stor_co"]), None, "stor_co", "missing column"),
        (pa.Table.from_pylist([_stores_row(), _stores_row(trdar_cd="3110002", clsbiz_stor_co=-1)]), 2, "clsbiz_stor_co", "negative"),
        (pa.Table.from_pylist([_stores_row(trdar_se_cd="Z")]), 1, "trdar_se_cd", "unknown district kind"),
        (pa.Table.from_pylist([_stores_row(svc_induty_cd="XX100001")]), 1, "svc_induty_cd", "unknown business type"),
        (pa.Table.from_pylist([_stores_row(stdr_yyqu_cd=20245)]), 1, "stdr_yyqu_cd", "unknown quarter"),
        (pa.Table.from_pylist([_stores_row(), _stores_row()]), 1, "stdr_yyqu_cd, trdar_cd, svc_induty_cd", "duplicate"),
        (pa.Table.from_pylist([_stores_row(stor_co="3"), _stores_row(trdar_cd="3110002", stor_co="three")]), 2, "stor_co", "three"),
    ]
    for table, row, column, problem in cases:
        with pytest.raises(CommerceDataError) as info:
            S.validate(table, "stores", "s.parquet")
        assert (info.value.file, info.value.row, info.value.column) == ("s.parquet", row, column), str(info.value)
        assert problem in str(info.value) and "s.parquet" in str(info.value)
    with pytest.raises(CommerceDataError, match="row 3, column trdar_cd: unknown code '3110002'"):
        S.validate(good, "stores", "s.csv", first_row=2, known={"trdar_cd": {"3110001"}})


# ---------------------------------------------------------------- quarterly generator
def test_generator_places_the_four_kinds_in_real_dongs(sim, city):
    d = sim.districts
    assert d.schema == S.DISTRICTS
    kinds = d["trdar_se_cd"].to_pylist()
    assert {k: kinds.count(k) for k in "ADRU"} == DEFAULT_KINDS
    assert 1600 <= d.num_rows <= 1700
    assert len(set(d["trdar_cd"].to_pylist())) == d.num_rows
    geoms = shapely.from_wkt(d["geometry"].to_pylist())
    for code, gu, lon, lat, g in zip(d["adstrd_cd"].to_pylist(), d["signgu_cd"].to_pylist(), d["lon"].to_pylist(),
                                     d["lat"].to_pylist(), geoms):
        dong = city.dongs[code]                      # a real dong of the city model
        assert dong.parent == gu
        assert dong.geometry.buffer(1e-6).contains(g)  # the district's polygon lies in its dong
        assert g.contains(shapely.Point(lon, lat))
    assert len(set(d["signgu_cd"].to_pylist())) == 25  # spread over every gu
    assert all(d["simulated"].to_pylist())


def test_business_types_are_seoul_service_categories(sim):
    bt = sim.business_types
    codes = bt["svc_induty_cd"].to_pylist()
    assert 55 <= len(codes) <= 65 and len(set(codes)) == len(codes)
    assert all(S.BUSINESS_TYPE_CODE.match(c) for c in codes)
    names = dict(zip(codes, bt["svc_induty_cd_nm"].to_pylist()))
    assert names["CS100001"] == "한식음식점" and names["CS100010"] == "커피-음료" and names["CS300002"] == "편의점"
    assert names["CS200028"] == "미용실"
    assert set(bt["category"].to_pylist()) == {"외식업", "서비스업", "소매업"}


def test_every_table_and_the_manifest_are_marked_simulated(sim, small_dir):
    for name, by_q in sim.tables.items():
        assert sorted(by_q) == sim.quarters
        for table in by_q.values():
            assert table.schema == S.SCHEMAS[name]
            assert pc.all(table["simulated"]).as_py() is True
    manifest = json.loads((small_dir / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["simulated"] is True and manifest["seed"] == 5 and "SIMULATED" in manifest["note"]
    for name in S.QUARTERLY:
        t = S.read_quarterly(small_dir, name)
        S.validate(t, name, str(S.table_path(small_dir, name)))  # passes its own check
        assert sorted(set(t["stdr_yyqu_cd"].to_pylist())) == manifest["quarters"] and all(t["simulated"].to_pylist())
        for q in manifest["quarters"]:  # the quarter is in the path and in the file (schema.py)
            f = S.table_path(small_dir, name, q)
            assert f.parent.name == f"stdr_yyqu_cd={q}" and set(pq.read_table(f)["stdr_yyqu_cd"].to_pylist()) == {q}


def test_change_index_has_all_four_classes_computed_from_operating_months(sim):
    for q in sim.quarters:
        ch = sim.tables["change"][q].to_pandas()
        assert set(ch["trdar_chnge_ix"]) == {"LL", "LH", "HL", "HH"}
        expected = np.where(ch.opr_sale_mt_avrg >= ch.su_opr_sale_mt_avrg, "H", "L")
        expected = np.char.add(expected, np.where(ch.cls_sale_mt_avrg >= ch.su_cls_sale_mt_avrg, "H", "L"))
        # classified on the published (0.1-month) values: exact, no allowance at the rounding edge
        assert (ch.trdar_chnge_ix == expected).all()
        assert (ch.opr_sale_mt_avrg == ch.opr_sale_mt_avrg.round(1)).all()
        assert dict(zip(ch.trdar_chnge_ix, ch.trdar_chnge_ix_nm))["LL"] == "다이나믹"


def test_generated_rates_and_change_index_agree_exactly_with_the_indicators(small_dir):
    """The published-style columns of the generator (opbiz_rt, clsbiz_rt, trdar_chnge_ix) and the
    indicators computed from the same rows use one definition: % of this quarter's stores of the
    type, and the change index from the operating months as published (0.1 month)."""
    from citywall.analytics.commerce import engines, indicators

    with engines.session() as con:
        out = indicators.build(con, small_dir)
    t = out["indicators"].to_pandas()
    has = t.similr_induty_stor_co > 0
    assert has.sum() > 100 and (~has).any()
    assert (t.opbiz_rt[has] == t.opening_rate[has].round(1)).all()
    assert (t.clsbiz_rt[has] == t.closing_rate[has].round(1)).all()
    # no store of the type left: our rate is undefined (null), the non-nullable column 0.0
    assert t.closing_rate[~has].isna().all() and (t.clsbiz_rt[~has] == 0.0).all()
    d = out["district_indicators"].to_pandas()
    assert len(d) == 64 * 4 and d.change_index_matches_published.astype(bool).all()


def test_stores_are_a_consistent_population(sim):
    qs = sim.quarters
    prev = sim.tables["stores"][qs[-2]].to_pandas().set_index(["trdar_cd", "svc_induty_cd"])
    cur = sim.tables["stores"][qs[-1]].to_pandas().set_index(["trdar_cd", "svc_induty_cd"])
    assert (cur.similr_induty_stor_co == cur.stor_co + cur.frc_stor_co).all()
    # this quarter's stores = last quarter's + openings - closings
    assert (cur.similr_induty_stor_co == prev.similr_induty_stor_co + cur.opbiz_stor_co - cur.clsbiz_stor_co).all()
    assert (cur.srvv_1y_co <= cur.srvv_1y_base_co).all() and (cur.srvv_3y_co <= cur.srvv_3y_base_co).all()
    assert (cur.clsbiz_3y_stor_co <= cur.clsbiz_stor_co).all()
    one_year = cur.srvv_1y_co.sum() / cur.srvv_1y_base_co.sum()
    three_year = cur.srvv_3y_co.sum() / cur.srvv_3y_base_co.sum()
    assert 0.6 < one_year < 0.95 and 0.35 < three_year < one_year  # survival falls with age
    assert 0.5 < cur.clsbiz_stor_co.sum() / cur.similr_induty_stor_co.sum() * 100 < 8  # % closing per quarter
    assert 0.05 < cur.frc_stor_co.sum() / cur.similr_induty_stor_co.sum() < 0.4
    # convenience stores are mostly franchises, Korean restaurants mostly not
    by_type = cur.groupby(level="svc_induty_cd")[["frc_stor_co", "similr_induty_stor_co"]].sum()
    share = by_type.frc_stor_co / by_type.similr_induty_stor_co
    assert share["CS300002"] > 0.7 and share["CS100001"] < 0.2


def test_sales_splits_add_up_and_follow_seasons(sim):
    s = sim.tables["sales"][sim.quarters[-1]].to_pandas()
    assert (s.thsmon_selng_amt > 0).all() and (s.thsmon_selng_co > 0).all()
    for unit in ("amt", "co"):
        total = s[f"thsmon_selng_{unit}"]
        assert (s[f"mdwk_selng_{unit}"] + s[f"wkend_selng_{unit}"] == total).all()
        for parts in (S.DAYS, S.TIME_BANDS, S.SEXES, S.AGES):
            assert (sum(s[f"{p}_selng_{unit}"] for p in parts) == total).all()
        assert (s[f"mdwk_selng_{unit}"] == sum(s[f"{d}_selng_{unit}"] for d in S.DAYS[:5])).all()
    pubs = s[s.svc_induty_cd == "CS100009"]
    assert pubs.tmzon_21_24_selng_amt.sum() > 5 * pubs.tmzon_06_11_selng_amt.sum()  # pubs sell at night
    # winter dip for restaurants: Q1 below the Q4 before it
    q4, q1 = 20244, 20251
    year = simulate(seed=11, quarters=2, end_quarter=q1, kinds=SMALL)
    food = {q: year.tables["sales"][q].filter(pc.equal(year.tables["sales"][q]["svc_induty_cd"], "CS100001")) for q in (q4, q1)}
    stores = {q: pc.sum(year.tables["stores"][q].filter(pc.equal(year.tables["stores"][q]["svc_induty_cd"], "CS100001"))["similr_induty_stor_co"]).as_py()
              for q in (q4, q1)}
    per_store = {q: pc.sum(food[q]["thsmon_selng_amt"]).as_py() / stores[q] for q in (q4, q1)}
    assert per_store[q1] < per_store[q4]


def test_population_tables_add_up(sim):
    q = sim.quarters[0]
    fl = sim.tables["flpop"][q].to_pandas()
    assert (fl.ml_flpop_co + fl.fml_flpop_co == fl.tot_flpop_co).all()
    assert (sum(fl[f"{t}_flpop_co"] for t in S.TIME_BANDS) == fl.tot_flpop_co).all()
    kinds = sim.districts["trdar_se_cd"].to_pylist()
    fl["kind"] = kinds
    med = fl.groupby("kind").tot_flpop_co.median()
    assert med["D"] > med["A"] and med["U"] > med["A"]  # developed districts and tourist zones are busier
    wk = sim.tables["working"][q].to_pandas()
    assert (sum(wk[f"{a}_wrc_popltn_co"] for a in S.AGES) == wk.tot_wrc_popltn_co).all()
    re = sim.tables["resident"][q].to_pandas()
    assert (re.tot_hshld_co < re.tot_repop_co).all()


def test_same_seed_same_data_other_seed_other_data(city, tmp_path):
    a, b, c = tmp_path / "a", tmp_path / "b", tmp_path / "c"
    generate(a, seed=3, quarters=2, city=city, kinds=SMALL)
    generate(b, seed=3, quarters=2, city=city, kinds=SMALL)
    generate(c, seed=4, quarters=2, city=city, kinds=SMALL)
    files = sorted(p.relative_to(a) for p in a.rglob("*.parquet"))
    assert len(files) == 2 + 6 * 2
    for f in files:
        assert pq.read_table(a / f).equals(pq.read_table(b / f)), f
    assert (a / "manifest.json").read_text() == (b / "manifest.json").read_text()
    assert not pq.read_table(a / "districts.parquet").equals(pq.read_table(c / "districts.parquet"))


def test_quarter_range():
    assert quarter_range(20252, 3) == [20244, 20251, 20252]
    with pytest.raises(ValueError):
        quarter_range(20255, 3)


# ---------------------------------------------------------------- raw records
def test_raw_payments_rows_columns_types_and_chunks(small_dir, tmp_path):
    out = tmp_path / "raw"
    manifest = generate_raw(out, 25_000, seed=9, data_dir=small_dir, flpop_rows=3_000, chunk_rows=10_000)
    files = sorted((out / "payments").glob("part-*.parquet"))
    assert [f.name for f in files] == ["part-00000.parquet", "part-00001.parquet", "part-00002.parquet"]
    assert [pq.ParquetFile(f).metadata.num_rows for f in files] == [10_000, 10_000, 5_000]
    assert manifest["simulated"] is True and json.loads((out / "manifest.json").read_text())["payments_rows"] == 25_000
    assert pq.read_schema(files[0]).metadata[b"citywall.simulated"] == b"true"
    t = pq.read_table(out / "payments")
    t = S.validate(t, "payments", str(out / "payments"))  # codes, sexes, age bands, no negatives
    assert t.num_rows == 25_000 and t.schema == S.PAYMENTS
    districts = set(pq.read_table(small_dir / "districts.parquet")["trdar_cd"].to_pylist())
    types = set(pq.read_table(small_dir / "business_types.parquet")["svc_induty_cd"].to_pylist())
    assert set(t["district_code"].to_pylist()) <= districts and set(t["business_type_code"].to_pylist()) <= types
    assert pc.min(t["amount_krw"]).as_py() > 0
    # timestamps lie in the data's quarters, in KST
    kst = pc.local_timestamp(t["paid_at"])
    years, months = pc.year(kst).to_numpy(), pc.month(kst).to_numpy()
    quarters = set((years * 10 + (months - 1) // 3 + 1).tolist())
    assert quarters <= set(manifest["quarters"]) and len(quarters) == 4
    fl = S.validate(pq.read_table(out / "flpop"), "raw_flpop", str(out / "flpop"))
    assert fl.num_rows == 3_000 and pc.min(fl["count"]).as_py() >= 1
    assert set(pc.minute(pc.local_timestamp(fl["counted_at"])).to_pylist()) == {0}  # hourly counts


def test_raw_rows_follow_the_quarterly_sales(small_dir, tmp_path):
    out = tmp_path / "raw"
    generate_raw(out, 200_000, seed=1, data_dir=small_dir, chunk_rows=100_000)
    t = pq.read_table(out / "payments").to_pandas()
    sales = S.read_quarterly(small_dir, "sales").to_pandas()
    raw_share = t.groupby("business_type_code").size() / len(t)
    sales_share = sales.groupby("svc_induty_cd").thsmon_selng_co.sum() / sales.thsmon_selng_co.sum()
    joined = sales_share.to_frame("sales").join(raw_share.rename("raw")).fillna(0)
    assert np.corrcoef(joined["sales"], joined["raw"])[0, 1] > 0.98
    hours = pc.hour(pc.local_timestamp(pq.read_table(out / "payments", columns=["paid_at"])["paid_at"])).to_numpy()
    assert (hours < 6).mean() < 0.1  # little is bought between midnight and six
    ticket = sales.thsmon_selng_amt.sum() / sales.thsmon_selng_co.sum()
    assert 0.7 < t.amount_krw.mean() / ticket < 1.3
    female_sales = sales.fml_selng_co.sum() / sales.thsmon_selng_co.sum()
    assert abs((t.customer_sex == "F").mean() - female_sales) < 0.02


def test_raw_is_deterministic_whatever_the_number_of_processes(small_dir, tmp_path):
    model = load_model(small_dir)
    generate_raw(tmp_path / "one", 30_000, seed=2, chunk_rows=10_000, model=model)
    generate_raw(tmp_path / "two", 30_000, seed=2, chunk_rows=10_000, model=model, processes=2)
    for f in sorted((tmp_path / "one" / "payments").glob("*.parquet")):
        assert pq.read_table(f).equals(pq.read_table(tmp_path / "two" / "payments" / f.name))
    generate_raw(tmp_path / "one", 5_000, seed=2, chunk_rows=10_000, model=model)  # a rerun replaces the files
    assert [f.name for f in (tmp_path / "one" / "payments").glob("*.parquet")] == ["part-00000.parquet"]


def test_raw_part_files_stay_labelled_simulated_without_their_manifest(small_dir, tmp_path):
    """Aggregating generated part files copied away from their manifest still says SIMULATED
    (the files carry citywall.simulated in their Parquet metadata)."""
    from citywall.analytics.commerce import aggregate, engines

    generate_raw(tmp_path / "raw", 2_000, seed=3, data_dir=small_dir)
    alone = tmp_path / "alone"
    alone.mkdir()
    (alone / "part-00000.parquet").write_bytes((tmp_path / "raw" / "payments" / "part-00000.parquet").read_bytes())
    with engines.session() as con:
        table, res = aggregate.aggregate(con, alone)
    assert res.rows_in == 2_000 and table.num_rows > 0 and all(table["simulated"].to_pylist())


# ---------------------------------------------------------------- readers
SALES_HEADER = (["기준_년분기_코드", "상권_구분_코드", "상권_구분_코드_명", "상권_코드", "상권_코드_명", "서비스_업종_코드", "서비스_업종_코드_명"]
                + [KOREAN[f"{p}_selng_amt"].replace("시간대_00_06", "시간대_00~06") for p in S.SALES_PARTS]
                + [KOREAN[f"{p}_selng_co"] for p in S.SALES_PARTS])


def _sales_line(q: int, kind: str, code: str, svc: str, amt: int, co: int) -> list[str]:
    """A sales row whose splits add up (all on Monday, 11-14, women, thirties)."""
    vals = {"thsmon": 1, "mdwk": 1, "mon": 1, "tmzon_11_14": 1, "fml": 1, "agrde_30": 1}
    return ([str(q), kind, "골목상권", code, "서촌", svc, "한식음식점"]
            + [str(amt * vals.get(p, 0)) for p in S.SALES_PARTS] + [str(co * vals.get(p, 0)) for p in S.SALES_PARTS])


def _write_csv(path: Path, header: list[str], rows: list[list[str]], encoding: str = "cp949") -> Path:
    text = "\n".join(",".join(r) for r in [header] + rows) + "\n"
    path.write_bytes(text.encode(encoding))
    return path


def test_errors_name_the_csv_line_across_blank_lines_and_quoted_newlines(tmp_path):
    ok = ",".join(_sales_line(20241, "A", "3110001", "CS100001", 5_000_000, 250))
    bad = ",".join(_sales_line(20241, "A", "3110002", "CS100001", -5, 250))  # a negative amount
    name_with_newline = ok.replace("서촌", '"서촌\n(경복궁)"')  # one record over lines 2-3
    text = "\n".join([",".join(SALES_HEADER), name_with_newline, "", bad]) + "\n"  # blank line 4, the bad record on line 5
    f = tmp_path / "sales.csv"
    f.write_bytes(text.encode("cp949"))
    with pytest.raises(CommerceDataError, match=r"sales\.csv, row 5, column 당월_매출_금액"):
        read_csv(f)
    # A whole number written "12.0" is fine; the first value that is not a number is named, not the "12.0".
    cells = _sales_line(20241, "A", "3110003", "CS100001", 5_000_000, 250)
    col = SALES_HEADER.index(KOREAN["thsmon_selng_co"])
    rows = [list(cells), list(cells), list(cells)]
    rows[0][col], rows[1][3], rows[2][3] = "250.0", "3110004", "3110005"
    rows[1][col] = "abc"
    with pytest.raises(CommerceDataError, match=r"row 3, column 당월_매출_건수.*'abc'"):
        read_csv(_write_csv(tmp_path / "s2.csv", SALES_HEADER, rows))


def test_a_stray_cp949_line_in_a_utf8_file_is_named_by_its_line(tmp_path):
    lines = [",".join(SALES_HEADER).encode("utf-8"),
             ",".join(_sales_line(20241, "A", "3110001", "CS100001", 5_000_000, 250)).encode("utf-8"),
             ",".join(_sales_line(20241, "A", "3110002", "CS100001", 5_000_000, 250)).encode("cp949")]  # line 3
    f = tmp_path / "mixed.csv"
    f.write_bytes(b"\n".join(lines) + b"\n")
    with pytest.raises(CommerceDataError, match=r"mixed\.csv, row 3, column 상권_구분_코드_명.*not valid text in UTF-8 and CP949"):
        read_csv(f)


def test_reader_reads_cp949_korean_headers(tmp_path):
    f = _write_csv(tmp_path / "서울시_추정매출.csv", SALES_HEADER,
                   [_sales_line(20241, "A", "3110001", "CS100001", 5_000_000, 250),
                    _sales_line(20242, "A", "3110001", "CS100001", 6_000_000, 300)])
    ds, t = read_csv(f)
    assert ds == "sales" and t.schema == S.SALES and t.num_rows == 2
    assert t["thsmon_selng_amt"].to_pylist() == [5_000_000, 6_000_000]
    assert t["mon_selng_co"].to_pylist() == [250, 300] and t["tmzon_00_06_selng_amt"].to_pylist() == [0, 0]
    assert t["svc_induty_cd_nm"].to_pylist() == ["한식음식점"] * 2 and not any(t["simulated"].to_pylist())


def test_reader_reads_utf8_bom_with_api_names_and_imports_the_layout(tmp_path):
    header = ["STDR_YYQU_CD", "TRDAR_SE_CD", "TRDAR_CD", "TRDAR_CD_NM", "SVC_INDUTY_CD", "SVC_INDUTY_CD_NM", "STOR_CO",
              "SIMILR_INDUTY_STOR_CO", "OPBIZ_RT", "OPBIZ_STOR_CO", "CLSBIZ_RT", "CLSBIZ_STOR_CO", "FRC_STOR_CO"]
    stores = tmp_path / "stores.csv"
    stores.write_bytes(b"\xef\xbb\xbf" + ("\n".join(",".join(r) for r in [header, [
        "20241", "A", "3110001", "서촌", "CS100010", "커피-음료", "5", "7", "14", "1", "0", "0", "2"], [
        "20242", "A", "3110001", "서촌", "CS100010", "커피-음료", "6", "8", "12", "1", "0", "0", "2"]]) + "\n").encode("utf-8"))
    districts = _write_csv(tmp_path / "영역.csv", ["상권_구분_코드", "상권_구분_코드_명", "상권_코드", "상권_코드_명", "경도", "위도",
                                                  "자치구_코드", "자치구_코드_명", "행정동_코드", "행정동_코드_명", "영역_면적"],
                           [["A", "골목상권", "3110001", "서촌", "126.9700", "37.5800", "11110", "종로구", "11110515", "청운효자동", "120000"]])
    out = tmp_path / "data"
    manifest = import_files([stores, districts], out, city=load_city("seoul"))
    assert manifest["simulated"] is False and manifest["datasets"] == {"districts": 1, "stores": 2}
    assert manifest["quarters"] == [20241, 20242]
    d = pq.read_table(out / "districts.parquet")
    assert d["adstrd_cd"][0].as_py() in load_city("seoul").dongs  # placed in the city model's dong
    st = S.read_quarterly(out, "stores", quarters=[20242])
    assert st["similr_induty_stor_co"].to_pylist() == [8] and st["opbiz_rt"].to_pylist() == [12.0]
    bt = pq.read_table(out / "business_types.parquet")
    assert bt["svc_induty_cd"].to_pylist() == ["CS100010"] and bt["category"].to_pylist() == ["외식업"]
    assert bt["name_en"].to_pylist() == ["coffee and drinks"]


def test_reader_errors_name_file_row_and_column(tmp_path):
    ok = _sales_line(20241, "A", "3110001", "CS100001", 100, 1)

    def fails(rows: list[list[str]], *, header: list[str] = SALES_HEADER, raw: bytes | None = None, **kw) -> CommerceDataError:
        f = tmp_path / "bad.csv"
        if raw is not None:
            f.write_bytes(raw)
        else:
            _write_csv(f, header, rows)
        with pytest.raises(CommerceDataError) as info:
            read_csv(f, **kw)
        assert info.value.file == str(f)
        return info.value

    # wrong encoding: a byte sequence that is neither UTF-8 nor CP949, on line 3, in 상권_코드_명
    good = (",".join(SALES_HEADER) + "\n" + ",".join(ok) + "\n").encode("cp949")
    bad_line = ",".join(ok).encode("cp949").replace("서촌".encode("cp949"), b"\xff\xfe")
    e = fails([], raw=good + bad_line + b"\n")
    assert (e.row, e.column) == (3, "상권_코드_명") and "CP949" in e.problem
    # a CP949 file read as UTF-8 on request: the first Korean byte, in the header line
    e = fails([ok], encoding="utf-8")
    assert e.row == 1 and "utf-8" in str(e)
    # missing column: named in Korean and as the API field
    e = fails([ok[:-1]], header=SALES_HEADER[:-1])
    assert e.row is None and e.column == "연령대_60_이상_매출_건수 (agrde_60_above_selng_co)" and "missing" in e.problem
    # negative amount, on line 4
    neg = _sales_line(20241, "A", "3110003", "CS100001", 100, 1)
    neg[SALES_HEADER.index("당월_매출_금액")] = "-100"
    e = fails([ok, _sales_line(20241, "A", "3110002", "CS100001", 100, 1), neg])
    assert (e.row, e.column) == (4, "당월_매출_금액 (thsmon_selng_amt)") and "negative" in e.problem
    # unknown codes
    e = fails([ok, _sales_line(20241, "Q", "3110002", "CS100001", 100, 1)])
    assert (e.row, e.column) == (3, "상권_구분_코드 (trdar_se_cd)") and "'Q'" in str(e)
    e = fails([_sales_line(20241, "A", "3110002", "CS900001", 100, 1)])
    assert (e.row, e.column) == (2, "서비스_업종_코드 (svc_induty_cd)")
    e = fails([ok], known={"trdar_cd": {"3119999"}})
    assert (e.row, e.column) == (2, "상권_코드 (trdar_cd)") and "unknown code '3110001'" in str(e)
    # a row with too few fields
    e = fails([ok, ok[:-3]])
    assert e.row == 3 and "fields" in e.problem
    # UTF-16 (Excel's "Unicode text", with its BOM) is read, and its errors still name row and column
    neg16 = _sales_line(20241, "A", "3110002", "CS100001", 100, -1)
    e = fails([], raw=("\n".join(",".join(r) for r in [SALES_HEADER, ok, neg16]) + "\n").encode("utf-16"))
    assert (e.row, e.column) == (3, "당월_매출_건수 (thsmon_selng_co)") and "negative" in e.problem
    f16 = _write_csv(tmp_path / "u16.csv", SALES_HEADER, [ok], encoding="utf-16")
    assert read_csv(f16)[1]["thsmon_selng_amt"].to_pylist() == [100]
    # not a number
    bad = list(ok)
    bad[SALES_HEADER.index("당월_매출_건수")] = "many"
    e = fails([bad])
    assert (e.row, e.column) == (2, "당월_매출_건수 (thsmon_selng_co)")


def test_import_lists_the_columns_it_does_not_import(tmp_path):
    """A column the layout has no place for is not dropped silently: the manifest names it."""
    ok = _sales_line(20241, "A", "3110001", "CS100001", 100, 1)
    f = _write_csv(tmp_path / "sales.csv", SALES_HEADER + ["비고"], [ok + ["x"]])
    manifest = import_files([f], tmp_path / "data")
    assert manifest["ignored_columns"] == {str(f): ["비고"]}
    assert json.loads((tmp_path / "data" / "manifest.json").read_text())["ignored_columns"] == {str(f): ["비고"]}
    g = _write_csv(tmp_path / "clean.csv", SALES_HEADER, [ok])
    assert "ignored_columns" not in import_files([g], tmp_path / "data2")


def test_import_refuses_districts_that_are_not_in_the_districts_file(tmp_path):
    districts = _write_csv(tmp_path / "영역.csv", ["상권_구분_코드", "상권_코드", "상권_코드_명", "경도", "위도", "자치구_코드", "행정동_코드"],
                           [["A", "3110001", "서촌", "126.97", "37.58", "11110", "11110515"]])
    sales = _write_csv(tmp_path / "sales.csv", SALES_HEADER, [_sales_line(20241, "A", "3110001", "CS100001", 10, 1),
                                                              _sales_line(20241, "A", "3110077", "CS100001", 10, 1)])
    with pytest.raises(CommerceDataError, match=r"sales\.csv, row 3, column 상권_코드 \(trdar_cd\): unknown code '3110077'"):
        import_files([sales, districts], tmp_path / "out")


def test_projected_coordinates_are_converted_and_placed_in_their_dong(tmp_path, city):
    # Seoul publishes district points in EPSG:5181 (Korea 2000 / Central Belt: origin 38N 127E,
    # false easting 200,000 m, false northing 500,000 m). 3 km west and 45 km south of the origin:
    # by hand, lat = 38 - 45,000 / 110,950 m = 37.5944, lon = 127 - 3,000 / (111,320 m x cos 37.594) = 126.9659.
    f = _write_csv(tmp_path / "영역.csv", ["상권_구분_코드", "상권_코드", "상권_코드_명", "엑스좌표_값", "와이좌표_값", "자치구_코드", "행정동_코드"],
                   [["A", "3110001", "서촌", "197000", "455000", "11680", "11680640"]])  # codes of 강남구: wrong on purpose
    _ds, t = read_csv(f, city=city)
    assert t["lon"][0].as_py() == pytest.approx(126.9659, abs=0.001) and t["lat"][0].as_py() == pytest.approx(37.5944, abs=0.001)
    assert t["signgu_cd"][0].as_py() == "11110" and t["adstrd_cd"][0].as_py().startswith("11110")  # 종로구, from the city model, not the file


# ---------------------------------------------------------------- CLI
def test_cli_generate_and_generate_raw(tmp_path, capsys):
    from citywall.analytics.commerce import cli as ccli
    from citywall.analytics.commerce import generate as gen
    from citywall.cli import main

    assert (ccli.DEFAULT_QUARTERS, ccli.DEFAULT_END_QUARTER) == (gen.DEFAULT_QUARTERS, gen.DEFAULT_END_QUARTER)
    data = tmp_path / "data"
    assert main(["commerce", "generate", "--out", str(data), "--seed", "2", "--quarters", "2", "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "SIMULATED" in out and "A 1090, D 250, R 300, U 6" in out
    assert sorted(p.name for p in (data / "sales").iterdir()) == ["stdr_yyqu_cd=20253", "stdr_yyqu_cd=20254"]
    again = main(["commerce", "generate", "--out", str(tmp_path / "again"), "--seed", "2", "--quarters", "2", "--quiet"])
    assert again == 0 and main(["commerce", "generate", "--out", str(tmp_path / "again"), "--seed", "3", "--quarters", "1", "--quiet"]) == 0
    for table in ("sales", "stores", "flpop", "change"):  # a rerun does not leave the first run's other quarter behind
        assert [p.name for p in (tmp_path / "again" / table).iterdir()] == ["stdr_yyqu_cd=20254"], table
    capsys.readouterr()
    raw = tmp_path / "raw"
    assert main(["commerce", "generate-raw", "--rows", "12k", "--out", str(raw), "--data", str(data), "--chunk-rows", "5000"]) == 0
    captured = capsys.readouterr()
    assert "SIMULATED" in captured.out and "12,000/12,000 rows" in captured.err  # progress on stderr
    assert len(list((raw / "payments").glob("part-*.parquet"))) == 3
    assert main(["commerce", "generate-raw", "--rows", "10", "--out", str(raw), "--data", str(tmp_path / "nope")]) == 2
    assert "missing" in capsys.readouterr().err
    assert main(["commerce", "import", str(_write_csv(tmp_path / "x.csv", ["a", "b"], [["1", "2"]])), "--out", str(tmp_path / "i")]) == 2
    assert "x.csv, row 1" in capsys.readouterr().err


def test_business_type_catalog_has_sixty_types_in_three_categories():
    assert len(BUSINESS_TYPES) == 60
    cats = {t.code[2] for t in BUSINESS_TYPES}
    assert cats == {"1", "2", "3"}

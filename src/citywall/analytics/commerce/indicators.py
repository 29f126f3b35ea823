"""The golmok indicators, written once as Ibis expressions, run on DuckDB or Spark with identical results.

Inputs: the tables of a data directory (schema.py's layout, registered by engines.register). Outputs:

- `indicators`: district x business type x quarter (stores, openings, closings, rates, franchise share,
  sales and sales per store by every split, population, survival, 3-year closure rate, overcrowding,
  change index, risk signal);
- `district_indicators`: district x quarter, the same over all business types of the district;
- `trends`: QoQ and YoY changes of the main indicators (business type `*` = all types of the district).

Why everything is built from integer sums and divided last, and ranks instead of quantiles: the two
engines must give IDENTICAL results. Integer sums are exact on both; one IEEE division of two exact
integers gives the same double on both; approximate quantiles differ between engines (DuckDB's
`quantile` vs Spark's `percentile_approx`), while `percent_rank` is defined exactly by the SQL standard.
Rows with a null input are ranked separately (filtered, then joined back) because the engines sort
nulls to different ends. Definitions: docs/commerce.md.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from citywall.analytics.commerce import schema

KEYS = ("stdr_yyqu_cd", "trdar_cd", "svc_induty_cd")
DKEYS = ("stdr_yyqu_cd", "trdar_cd")
ALL_TYPES = "*"  # svc_induty_cd of a district's all-types row in `trends`

# Risk signal: a row earns one point per component in the worst quarter of Seoul for its business type
# and quarter: at most RISK_WORSE_SHARE of the city's rows strictly worse than it, and a value that is
# bad at all (closures above zero, a store count that fell).
RISK_WORSE_SHARE = 0.25
RISK_COLOURS = ("blue", "yellow", "orange", "red")  # 0, 1, 2, 3 points
OVERCROWDED = 1.5  # overcrowding_index at or above this: 50% more stores per floating person than Seoul
MAX_COMPARE = 4

STORE_COUNTS = ("stor_co", "similr_induty_stor_co", "opbiz_stor_co", "clsbiz_stor_co", "frc_stor_co",
                "clsbiz_3y_stor_co", "srvv_1y_base_co", "srvv_1y_co", "srvv_3y_base_co", "srvv_3y_co")
TREND_METRICS = ("similr_induty_stor_co", "opbiz_stor_co", "clsbiz_stor_co", "thsmon_selng_amt", "thsmon_selng_co",
                 "sales_per_store", "tot_flpop_co")
TREND_RATES = ("opening_rate", "closing_rate", "franchise_share", "closure_rate_3y")  # changes in percentage points


class IndicatorError(ValueError):
    """Bad request or inconsistent inputs (says which)."""


def _ratio(num: Any, den: Any, scale: float = 1.0) -> Any:
    """num / den * scale as float64; null when the denominator is null or zero (no division by zero)."""
    import ibis

    n = num.cast("float64")
    d = den.cast("float64")
    value = n * scale / d if scale != 1.0 else n / d  # (no "* 1.0": the same operations on both engines)
    return ibis.ifelse(d.isnull() | (d == 0), ibis.null("float64"), value)


def prev_quarter(q: Any) -> Any:
    """20241 -> 20234, 20243 -> 20242 (an Ibis int expression)."""
    import ibis

    return ibis.ifelse(q % 10 == 1, q - 7, q - 1)


def _rank(t: Any, value: str, partition: list[str], keys: list[str], name: str, descending: bool = False) -> Any:
    """percent_rank of `value` within `partition` (ascending, or descending), over the rows where it is
    not null, joined back onto `t` (null where the value is null). Tied rows share the lowest rank: the
    rank is the share of the other rows strictly before the row in that order."""
    import ibis

    sub = t.filter(t[value].notnull()).select(*keys, value)
    w = ibis.window(group_by=[sub[c] for c in partition], order_by=[sub[value].desc() if descending else sub[value]])
    ranked = sub.select(*keys, **{name: ibis.percent_rank().over(w).cast("float64")})
    return t.left_join(ranked, keys).select(*t.columns, name)


def _risk(t: Any, keys: list[str], partition: list[str]) -> Any:
    """The four-colour risk signal from the closing rate, the 3-year closure rate and the QoQ store-count
    change. Each component is ranked with the worst rows first (high closure rates, shrinking store
    counts): its `*_worse_share` is the share of the city's rows strictly worse. A row earns the point
    when that share is at most RISK_WORSE_SHARE and its value is bad at all. Tied rows share their
    group's rank, so a large group at the worst value (say 100% of a cohort closed) keeps its point,
    and a large group at the best value (no closing, no change) never earns one."""
    import ibis

    t = _rank(t, "closing_rate", partition, keys, "closing_rate_worse_share", descending=True)
    t = _rank(t, "closure_rate_3y", partition, keys, "closure_rate_3y_worse_share", descending=True)
    t = _rank(t, "store_change_qoq_pct", partition, keys, "store_change_worse_share")
    pts = (((t.closing_rate_worse_share <= RISK_WORSE_SHARE) & (t.closing_rate > 0)).fill_null(False).cast("int64")
           + ((t.closure_rate_3y_worse_share <= RISK_WORSE_SHARE) & (t.closure_rate_3y > 0)).fill_null(False).cast("int64")
           + ((t.store_change_worse_share <= RISK_WORSE_SHARE) & (t.store_change_qoq_pct < 0)).fill_null(False).cast("int64"))
    basis = (t.closing_rate_worse_share.notnull().cast("int64") + t.closure_rate_3y_worse_share.notnull().cast("int64")
             + t.store_change_worse_share.notnull().cast("int64"))
    colour = ibis.cases(*((pts == i, c) for i, c in enumerate(RISK_COLOURS)))
    return t.mutate(risk_points=pts, risk_basis=basis,
                    risk_signal=ibis.ifelse(basis == 0, ibis.null("string"), colour))


def _store_rates(t: Any) -> dict[str, Any]:
    """Rates over the summed counts; Seoul's convention: similr_induty_stor_co (stores incl. franchises) is the denominator."""
    return {
        "opening_rate": _ratio(t.opbiz_stor_co, t.similr_induty_stor_co, 100.0),
        "closing_rate": _ratio(t.clsbiz_stor_co, t.similr_induty_stor_co, 100.0),
        "franchise_share": _ratio(t.frc_stor_co, t.similr_induty_stor_co, 100.0),
        "survival_rate_1y": _ratio(t.srvv_1y_co, t.srvv_1y_base_co, 100.0),
        "survival_rate_3y": _ratio(t.srvv_3y_co, t.srvv_3y_base_co, 100.0),
        "closure_rate_3y": _ratio(t.srvv_3y_base_co - t.srvv_3y_co, t.srvv_3y_base_co, 100.0),
        "young_closure_share": _ratio(t.clsbiz_3y_stor_co, t.clsbiz_stor_co, 100.0),
        "sales_per_store": _ratio(t.thsmon_selng_amt, t.similr_induty_stor_co),
    }


def _store_change(t: Any, keys: list[str]) -> Any:
    """store_change_qoq_pct: % change of similr_induty_stor_co against the previous quarter (self-join, so a
    missing quarter gives null rather than comparing with an older one)."""
    prev = t.select(*[k for k in keys if k != "stdr_yyqu_cd"], stdr_yyqu_cd=(t.stdr_yyqu_cd + 0),
                    _prev_stores=t.similr_induty_stor_co)
    cur = t.mutate(_pq=prev_quarter(t.stdr_yyqu_cd))
    pred = [cur._pq == prev.stdr_yyqu_cd] + [cur[k] == prev[k] for k in keys if k != "stdr_yyqu_cd"]
    j = cur.left_join(prev, pred)
    j = j.select(*cur.columns, "_prev_stores")
    return j.mutate(store_change_qoq_pct=_ratio(j.similr_induty_stor_co - j._prev_stores, j._prev_stores, 100.0)).drop("_pq", "_prev_stores")


def _change_index(c: Any) -> Any:
    """상권변화지표 from the operating months: first letter surviving businesses (opr_sale_mt_avrg against
    Seoul's su_opr_sale_mt_avrg), second closed ones (cls_ against su_cls_); L = below Seoul, H = at or above."""
    import ibis

    first = ibis.ifelse(c.opr_sale_mt_avrg < c.su_opr_sale_mt_avrg, "L", "H")
    second = ibis.ifelse(c.cls_sale_mt_avrg < c.su_cls_sale_mt_avrg, "L", "H")
    ix = first.concat(second)
    names = ibis.cases(*((ix == k, v[0]) for k, v in schema.CHANGE_INDEX.items()))
    names_en = ibis.cases(*((ix == k, v[1]) for k, v in schema.CHANGE_INDEX.items()))
    return c.select(
        "stdr_yyqu_cd", "trdar_cd", "opr_sale_mt_avrg", "cls_sale_mt_avrg", "su_opr_sale_mt_avrg", "su_cls_sale_mt_avrg",
        change_index=ix, change_index_nm=names, change_index_en=names_en,
        change_index_published=c.trdar_chnge_ix, change_index_matches_published=(ix == c.trdar_chnge_ix),
    )


def _population(tables: dict[str, Any]) -> Any:
    fl = tables["flpop"].select(*DKEYS, "tot_flpop_co")
    re_ = tables["resident"].select(*DKEYS, "tot_repop_co")
    wk = tables["working"].select(*DKEYS, "tot_wrc_popltn_co")
    dk = (tables["stores"].select(*DKEYS).union(tables["sales"].select(*DKEYS)).union(fl.select(*DKEYS))).distinct()
    out = dk.left_join(fl, list(DKEYS)).select(*DKEYS, "tot_flpop_co")
    out = out.left_join(re_, list(DKEYS)).select(*DKEYS, "tot_flpop_co", "tot_repop_co")
    return out.left_join(wk, list(DKEYS)).select(*DKEYS, "tot_flpop_co", "tot_repop_co", "tot_wrc_popltn_co")


def _simulated(tables: dict[str, Any]) -> Any:
    """Per district x quarter: true if any input row for it is simulated (a mixed directory stays labelled)."""
    parts = [tables[n].select(*DKEYS, sim=tables[n].simulated.cast("int64")) for n in ("stores", "sales", "flpop")]
    u = parts[0].union(parts[1]).union(parts[2])
    return u.group_by(list(DKEYS)).aggregate(simulated=u.sim.max() > 0)


def _with_simulated(t: Any, tables: dict[str, Any]) -> Any:
    sim = _simulated(tables)
    return t.left_join(sim, list(DKEYS)).select(*t.columns, "simulated")


def type_indicators(tables: dict[str, Any]) -> Any:
    """`indicators`: district x business type x quarter."""
    st = tables["stores"].select(*KEYS, *STORE_COUNTS, "opbiz_rt", "clsbiz_rt")
    sa = tables["sales"].select(*KEYS, *schema.SALES_MEASURES)
    keys = st.select(*KEYS).union(sa.select(*KEYS)).distinct()
    t = keys.left_join(st, list(KEYS)).select(*KEYS, *STORE_COUNTS, "opbiz_rt", "clsbiz_rt")
    t = t.left_join(sa, list(KEYS)).select(*t.columns, *schema.SALES_MEASURES)
    pop = _population(tables)
    t = t.left_join(pop, list(DKEYS)).select(*t.columns, "tot_flpop_co", "tot_repop_co", "tot_wrc_popltn_co")
    t = t.mutate(**_store_rates(t),
                 **{f"{p}_selng_amt_per_store": _ratio(t[f"{p}_selng_amt"], t.similr_induty_stor_co) for p in schema.SALES_PARTS[1:]},
                 stores_per_1000_flpop=_ratio(t.similr_induty_stor_co, t.tot_flpop_co, 1000.0))
    # Seoul average per business type and quarter: its stores over the floating population of the
    # districts that have the type. (Over all districts, a type found in a fifth of them would be
    # "overcrowded" almost everywhere it exists: the index would measure how rare the type is.)
    has = t.filter(t.similr_induty_stor_co > 0)
    seoul = has.group_by("stdr_yyqu_cd", "svc_induty_cd").aggregate(
        _seoul_stores=has.similr_induty_stor_co.cast("int64").sum().cast("int64"),
        _seoul_flpop=has.tot_flpop_co.cast("int64").sum().cast("int64"))
    seoul = seoul.mutate(seoul_stores_per_1000_flpop=_ratio(seoul._seoul_stores, seoul._seoul_flpop, 1000.0)).drop("_seoul_stores", "_seoul_flpop")
    t = t.left_join(seoul, ["stdr_yyqu_cd", "svc_induty_cd"]).select(*t.columns, "seoul_stores_per_1000_flpop")
    t = t.mutate(overcrowding_index=_ratio(t.stores_per_1000_flpop, t.seoul_stores_per_1000_flpop))
    t = t.mutate(overcrowded=t.overcrowding_index >= OVERCROWDED)
    t = _store_change(t, list(KEYS))
    t = _risk(t, list(KEYS), ["stdr_yyqu_cd", "svc_induty_cd"])
    ch = _change_index(tables["change"]).select(*DKEYS, "change_index", "change_index_nm", "change_index_en")
    t = t.left_join(ch, list(DKEYS)).select(*t.columns, "change_index", "change_index_nm", "change_index_en")
    return _with_simulated(_names(t, tables, with_type=True), tables)


def _names(t: Any, tables: dict[str, Any], with_type: bool) -> Any:
    d = tables["districts"].select("trdar_cd", "trdar_cd_nm", "trdar_se_cd", "signgu_cd", "adstrd_cd")
    t = t.left_join(d, "trdar_cd").select(*t.columns, "trdar_cd_nm", "trdar_se_cd", "signgu_cd", "adstrd_cd")
    if with_type:
        b = tables["business_types"].select("svc_induty_cd", "svc_induty_cd_nm", "name_en", "category")
        t = t.left_join(b, "svc_induty_cd").select(*t.columns, "svc_induty_cd_nm", svc_induty_name_en=b.name_en, category=b.category)
    return t


def district_indicators(tables: dict[str, Any]) -> Any:
    """`district_indicators`: district x quarter, over all business types (sums, then the same rates)."""
    st = tables["stores"]
    sums = {c: st[c].cast("int64").sum().cast("int64") for c in STORE_COUNTS}  # DuckDB sums to HUGEINT
    # business_types: the types with at least one store (a row of 0 stores after the last one closed is not a type present)
    s = st.group_by(list(DKEYS)).aggregate(business_types=st.svc_induty_cd.nunique(where=st.similr_induty_stor_co > 0).cast("int64"), **sums)
    sa = tables["sales"]
    sales = sa.group_by(list(DKEYS)).aggregate(**{c: sa[c].cast("int64").sum().cast("int64") for c in schema.SALES_MEASURES})
    pop = _population(tables)
    t = pop.left_join(s, list(DKEYS)).select(*pop.columns, "business_types", *STORE_COUNTS)
    t = t.left_join(sales, list(DKEYS)).select(*t.columns, *schema.SALES_MEASURES)
    t = t.mutate(**_store_rates(t), stores_per_1000_flpop=_ratio(t.similr_induty_stor_co, t.tot_flpop_co, 1000.0))
    seoul = t.group_by("stdr_yyqu_cd").aggregate(_s=t.similr_induty_stor_co.sum().cast("int64"), _f=t.tot_flpop_co.cast("int64").sum().cast("int64"))
    seoul = seoul.mutate(seoul_stores_per_1000_flpop=_ratio(seoul._s, seoul._f, 1000.0)).drop("_s", "_f")
    t = t.left_join(seoul, "stdr_yyqu_cd").select(*t.columns, "seoul_stores_per_1000_flpop")
    t = t.mutate(overcrowding_index=_ratio(t.stores_per_1000_flpop, t.seoul_stores_per_1000_flpop))
    t = t.mutate(overcrowded=t.overcrowding_index >= OVERCROWDED)
    t = _store_change(t, list(DKEYS))
    t = _risk(t, list(DKEYS), ["stdr_yyqu_cd"])
    ch = _change_index(tables["change"])
    t = t.left_join(ch, list(DKEYS)).select(*t.columns, *[c for c in ch.columns if c not in DKEYS])
    return _with_simulated(_names(t, tables, with_type=False), tables)


def _trend_table(t: Any, keys: list[str]) -> Any:
    """QoQ and YoY: % change for counts and amounts, percentage-point change for rates (self-joins on the
    previous quarter's and the same quarter last year's code)."""
    metrics = [m for m in TREND_METRICS if m in t.columns]
    rates = [r for r in TREND_RATES if r in t.columns]
    other = [k for k in keys if k != "stdr_yyqu_cd"]
    cur = t.select(*keys, *metrics, *rates, "simulated")
    out = cur.mutate(_pq=prev_quarter(cur.stdr_yyqu_cd), _py=cur.stdr_yyqu_cd - 10)
    for tag, col in (("qoq", "_pq"), ("yoy", "_py")):
        prev = cur.select(*other, _q=cur.stdr_yyqu_cd, **{f"_{tag}_{m}": cur[m] for m in metrics + rates})
        pred = [out[col] == prev._q] + [out[k] == prev[k] for k in other]
        j = out.left_join(prev, pred)
        j = j.select(*out.columns, *[f"_{tag}_{m}" for m in metrics + rates])
        j = j.mutate(**{f"{m}_{tag}_pct": _ratio(j[m] - j[f"_{tag}_{m}"], j[f"_{tag}_{m}"], 100.0) for m in metrics},
                     **{f"{r}_{tag}_pp": j[r] - j[f"_{tag}_{r}"] for r in rates})
        out = j.drop(*[f"_{tag}_{m}" for m in metrics + rates])
    return out.drop("_pq", "_py")


def trends(ind: Any, dist: Any) -> Any:
    """`trends`: per business type and, with svc_induty_cd = '*', for the district's all-types totals."""
    import ibis

    a = _trend_table(ind, list(KEYS))
    b = _trend_table(dist.mutate(svc_induty_cd=ibis.literal(ALL_TYPES)), list(KEYS))
    return a.union(b.select(*a.columns))


def build_exprs(tables: dict[str, Any], con: Any = None) -> dict[str, Any]:
    """The three output tables as Ibis expressions. With `con` the first two are materialised by the
    engine (DuckDB temp table, Spark persisted DataFrame) so that `trends`, which reads each of them
    three times, does not recompute them: on Spark that is most of the build time."""
    ind = type_indicators(tables)
    dist = district_indicators(tables)
    if con is not None:
        from citywall.analytics.commerce import engines

        ind = engines.materialize(con, ind, "commerce_indicators")
        dist = engines.materialize(con, dist, "commerce_district_indicators")
    return {"indicators": ind, "district_indicators": dist, "trends": trends(ind, dist)}


def to_arrow(con: Any, expr: Any, keys: tuple[str, ...]) -> Any:
    """Run `expr`, normalise the types (ints -> int64, floats/decimals -> float64) and sort by `keys`, so
    that the tables of the two engines compare equal row by row."""
    from citywall.analytics.commerce import engines

    t = engines.normalize(engines.collect(con, expr))
    return t.sort_by([(k, "ascending") for k in keys])


def check_codes_known(con: Any, tables: dict[str, Any], data: Path) -> None:
    """Every district code of the quarterly tables is in districts.parquet and every business type code
    of sales and stores in business_types.parquet: otherwise its rows would come out nameless (e.g. a
    sales table aggregated from another city's raw rows, copied into this data directory)."""
    from citywall.analytics.commerce import engines

    checks = [(n, "trdar_cd", "districts") for n in ("stores", "sales", "flpop", "resident", "working", "change")]
    checks += [(n, "svc_induty_cd", "business_types") for n in ("stores", "sales")]
    for name, col, ref in checks:
        if name not in tables or ref not in tables:
            continue
        t = tables[name]
        bad = t.select(col).distinct().anti_join(tables[ref].select(col), col).order_by(col).limit(5)
        codes = engines.collect(con, bad)[col].to_pylist()
        if codes:
            raise IndicatorError(f"{Path(data) / name}: column {col}: code(s) {', '.join(map(repr, codes))} are not in "
                                 f"{ref}.parquet (rows of unknown codes are not computed; add them to {ref}.parquet)")


def build(con: Any, data: Path, out: Path | None = None, progress: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Compute the indicators of a data directory on `con`; write OUT/<name>.parquet if `out` is given.
    Returns {name: Arrow table}."""
    import json
    import time

    import pyarrow.parquet as pq

    from citywall.analytics.commerce import engines

    say = progress or (lambda _m: None)
    t0 = time.perf_counter()
    tables = engines.register(con, Path(data))
    check_codes_known(con, tables, Path(data))
    say(f"planning on {con.name} (caching the per-type and per-district tables)")
    exprs = build_exprs(tables, con)
    result = {}
    for name, expr in exprs.items():
        keys = KEYS if name != "district_indicators" else DKEYS
        say(f"collecting {name} from {con.name} ...")
        result[name] = to_arrow(con, expr, keys)
        say(f"  {name}: {result[name].num_rows:,} rows ({time.perf_counter() - t0:.1f} s)")
    if out is not None:
        out = Path(out)
        out.mkdir(parents=True, exist_ok=True)
        for name, table in result.items():
            pq.write_table(table, out / f"{name}.parquet")
        simulated = any(bool(x) for x in result["district_indicators"]["simulated"].to_pylist())
        manifest = Path(data) / "manifest.json"
        (out / "manifest.json").write_text(json.dumps({
            "built_by": "citywall commerce build", "engine": con.name, "data": str(Path(data).resolve()), "simulated": simulated,
            "source_manifest": json.loads(manifest.read_text()) if manifest.exists() else None,
            "tables": {n: t.num_rows for n, t in result.items()},
            "thresholds": {"risk_worse_share": RISK_WORSE_SHARE, "overcrowded_index": OVERCROWDED},
        }, indent=2, ensure_ascii=False))
        say(f"wrote {', '.join(f'{n}.parquet' for n in result)} to {out}{' (SIMULATED data)' if simulated else ''}")
    return result


def compare(table: Any, districts: list[str], quarter: int | None = None, business_type: str | None = None) -> Any:
    """Up to four districts side by side (Arrow rows of `indicators` or `district_indicators`, one quarter;
    the latest if not given). Unknown districts are an error, not an empty row."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if not 1 <= len(districts) <= MAX_COMPARE:
        raise IndicatorError(f"compare takes 1 to {MAX_COMPARE} districts, got {len(districts)}")
    known = set(table["trdar_cd"].to_pylist())
    unknown = [d for d in districts if d not in known]
    if unknown:
        raise IndicatorError(f"unknown district code(s): {', '.join(unknown)}")
    if quarter is None:
        quarter = pc.max(table["stdr_yyqu_cd"]).as_py()
    mask = pc.and_(pc.is_in(table["trdar_cd"], value_set=pa.array(districts)), pc.equal(table["stdr_yyqu_cd"], quarter))
    if business_type is not None and "svc_induty_cd" in table.column_names:
        mask = pc.and_(mask, pc.equal(table["svc_induty_cd"], business_type))
    rows = table.filter(mask)
    absent = [d for d in districts if d not in set(rows["trdar_cd"].to_pylist())]
    if absent:  # known districts without a row in that quarter (or of that type): said, not silently fewer
        what = f"quarter {quarter}" + (f", business type {business_type}" if business_type is not None else "")
        raise IndicatorError(f"no rows for district(s) {', '.join(absent)} in {what}")
    return rows

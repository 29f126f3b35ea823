"""A district's indicators as text: what `citywall commerce report` prints.

Computed from the data directory on DuckDB (the whole build: tens of seconds for Seoul's 20 quarters),
or read from a built OUT directory if one is given (about a second), so the text always matches `build`.
Simulated data says so in the first line.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from citywall.analytics.commerce.indicators import ALL_TYPES, IndicatorError


def load(data: Path | None = None, built: Path | None = None) -> dict[str, Any]:
    """The three output tables: read from `built` (OUT of `build`) or computed from `data` on DuckDB."""
    import pyarrow.parquet as pq

    if built is not None:
        names = ("indicators", "district_indicators", "trends")
        missing = [n for n in names if not (Path(built) / f"{n}.parquet").exists()]
        if missing:
            raise IndicatorError(f"{built}: missing {', '.join(f'{n}.parquet' for n in missing)} (run `citywall commerce build` first)")
        return {n: pq.read_table(Path(built) / f"{n}.parquet") for n in names}
    if data is None:
        raise IndicatorError("give a data directory or a built indicators directory")
    from citywall.analytics.commerce import engines, indicators

    with engines.session() as con:
        return indicators.build(con, Path(data))


def _fmt(v: Any, unit: str = "", digits: int = 1) -> str:
    if v is None:
        return "n/a"
    if isinstance(v, float):
        return f"{v:,.{digits}f}{unit}"
    return f"{v:,}{unit}"


def _cut(text: str, width: int) -> str:
    """`text` cut and padded to `width` terminal columns: a Korean syllable takes two, so padding by
    characters (str.ljust) would push the following columns of the table out of line."""
    import unicodedata

    out, used = "", 0
    for ch in text:
        w = 2 if unicodedata.east_asian_width(ch) in ("W", "F") else 1
        if used + w > width:
            break
        out, used = out + ch, used + w
    return out + " " * (width - used)


def _rows(table: Any, district: str, quarter: int | None = None) -> list[dict[str, Any]]:
    """The district's rows (of one quarter) as dicts: filtered in Arrow first, since a city's tables
    have hundreds of thousands of rows and turning all of them into dicts took most of a minute."""
    import pyarrow.compute as pc

    mask = pc.equal(table["trdar_cd"], district)
    if quarter is not None:
        mask = pc.and_(mask, pc.equal(table["stdr_yyqu_cd"], quarter))
    return table.filter(mask).to_pylist()


def _district(tables: dict[str, Any], district: str) -> list[dict[str, Any]]:
    """The district's totals of every quarter; an unknown code is an error, not an empty report."""
    dist = _rows(tables["district_indicators"], district)
    if not dist:
        raise IndicatorError(f"unknown district code {district!r}: not in district_indicators")
    return dist


def _pct(v: Any) -> str:
    return "n/a" if v is None else f"{v:+.1f}%"


def district_report(data: Path | None, district: str, quarter: int | None = None, built: Path | None = None,
                    tables: dict[str, Any] | None = None, top: int = 10) -> str:
    """The text for one district (latest quarter unless given): totals, change index, risk, trends, and
    its business types by sales."""
    tables = tables or load(data, built)
    dist = _district(tables, district)
    quarters = sorted({r["stdr_yyqu_cd"] for r in dist})
    q = quarter if quarter is not None else quarters[-1]
    if q not in quarters:
        raise IndicatorError(f"district {district} has no data for quarter {q} (has {quarters[0]}..{quarters[-1]})")
    d = next(r for r in dist if r["stdr_yyqu_cd"] == q)
    tr = {r["svc_induty_cd"]: r for r in _rows(tables["trends"], district, q)}
    types = sorted(_rows(tables["indicators"], district, q), key=lambda r: -(r["thsmon_selng_amt"] or 0))
    lines = []
    if d["simulated"]:
        lines.append("SIMULATED data (generated, not Seoul's published figures)")
    lines.append(f"District {district} {d['trdar_cd_nm'] or ''} (kind {d['trdar_se_cd']}, gu {d['signgu_cd']}), quarter {q}")
    lines.append(f"  stores {_fmt(d['similr_induty_stor_co'])} in {d['business_types']} business types; openings {_fmt(d['opbiz_stor_co'])} "
                 f"({_fmt(d['opening_rate'], '%')}), closings {_fmt(d['clsbiz_stor_co'])} ({_fmt(d['closing_rate'], '%')}), "
                 f"franchise share {_fmt(d['franchise_share'], '%')}")
    lines.append(f"  survival 1y {_fmt(d['survival_rate_1y'], '%')}, 3y {_fmt(d['survival_rate_3y'], '%')}; "
                 f"3-year closure rate {_fmt(d['closure_rate_3y'], '%')}")
    lines.append(f"  sales {_fmt(d['thsmon_selng_amt'])} KRW in {_fmt(d['thsmon_selng_co'])} payments; per store {_fmt(d['sales_per_store'], ' KRW', 0)}")
    lines.append(f"  population: floating {_fmt(d['tot_flpop_co'])}, resident {_fmt(d['tot_repop_co'])}, working {_fmt(d['tot_wrc_popltn_co'])}")
    lines.append(f"  overcrowding: {_fmt(d['stores_per_1000_flpop'], '', 2)} stores per 1,000 floating vs Seoul {_fmt(d['seoul_stores_per_1000_flpop'], '', 2)}"
                 f" (index {_fmt(d['overcrowding_index'], '', 2)}{', overcrowded' if d['overcrowded'] else ''})")
    if d.get("change_index"):
        lines.append(f"  change index {d['change_index']} {d['change_index_nm']} ({d['change_index_en']}): operating months surviving "
                     f"{_fmt(d['opr_sale_mt_avrg'])} vs Seoul {_fmt(d['su_opr_sale_mt_avrg'])}, closed {_fmt(d['cls_sale_mt_avrg'])} vs Seoul "
                     f"{_fmt(d['su_cls_sale_mt_avrg'])}{'' if d['change_index_matches_published'] else ' (published: ' + str(d['change_index_published']) + ')'}")
    lines.append(f"  risk signal {d['risk_signal'] or 'n/a'} ({d['risk_points']} of {d['risk_basis']} components in Seoul's worst quarter)")
    t = tr.get(ALL_TYPES)
    if t:
        lines.append(f"  trends: stores QoQ {_pct(t['similr_induty_stor_co_qoq_pct'])} YoY {_pct(t['similr_induty_stor_co_yoy_pct'])}; "
                     f"sales QoQ {_pct(t['thsmon_selng_amt_qoq_pct'])} YoY {_pct(t['thsmon_selng_amt_yoy_pct'])}")
    lines.append(f"  business types (by sales{', top ' + str(top) if len(types) > top else ''}):")
    lines.append(f"    {'code':<9} {'name':<14} {'stores':>6} {'close%':>6} {'3y cl%':>6} {'sales/store KRW':>16} {'crowd':>5} {'QoQ sales':>9}  risk")
    for r in types[:top]:
        tt = tr.get(r["svc_induty_cd"], {})
        lines.append(f"    {r['svc_induty_cd']:<9} {_cut(r['svc_induty_cd_nm'] or '', 14)} {_fmt(r['similr_induty_stor_co']):>6} "
                     f"{_fmt(r['closing_rate']):>6} {_fmt(r['closure_rate_3y']):>6} {_fmt(r['sales_per_store'], '', 0):>16} "
                     f"{_fmt(r['overcrowding_index'], '', 2):>5} {_pct(tt.get('thsmon_selng_amt_qoq_pct')):>9}  {r['risk_signal'] or 'n/a'}")
    return "\n".join(lines)


COMPARED = (("stores", "similr_induty_stor_co", ""), ("opening rate", "opening_rate", "%"), ("closing rate", "closing_rate", "%"),
            ("franchise share", "franchise_share", "%"), ("sales KRW", "thsmon_selng_amt", ""), ("sales/store KRW", "sales_per_store", ""),
            ("floating pop.", "tot_flpop_co", ""), ("3y closure", "closure_rate_3y", "%"), ("overcrowding", "overcrowding_index", ""),
            ("change index", "change_index", ""), ("risk signal", "risk_signal", ""))


def comparison(tables: dict[str, Any], districts: list[str], quarter: int | None = None) -> str:
    """Up to four districts side by side (all business types, one quarter: the latest unless given),
    as Seoul's service compares them."""
    rows = []
    for code in districts:
        dist = _district(tables, code)
        q = quarter if quarter is not None else max(r["stdr_yyqu_cd"] for r in dist)
        rows.append(next((r for r in dist if r["stdr_yyqu_cd"] == q), {"trdar_cd": code, "stdr_yyqu_cd": q}))
    width = 16
    out = [f"Comparison, all business types, quarter {', '.join(sorted({str(r['stdr_yyqu_cd']) for r in rows}))}",
           f"  {'':<16}" + "".join(f" {_cut(r['trdar_cd'] + ' ' + (r.get('trdar_cd_nm') or ''), width)}" for r in rows)]
    for label, col, unit in COMPARED:
        cells = []
        for r in rows:
            v = r.get(col)
            cells.append(_fmt(v, unit, 2 if col == "overcrowding_index" else (1 if unit else 0)) if not isinstance(v, str) else v)
        out.append(f"  {label:<16}" + "".join(f" {c:>{width}}" for c in cells))
    return "\n".join(out)

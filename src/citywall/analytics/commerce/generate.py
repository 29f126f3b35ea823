"""Seoul-like quarterly commercial-district data, simulated: the offline default.

Why a simulation and not random numbers: the indicators (openings, closures, survival, the change
index, the risk signal) are only worth testing on data whose stores actually open, age and close.
So every district x business type keeps its stores by age in quarters; each quarter the stores age,
some close (a hazard that depends on the district's churn, on infant mortality and on old age),
and new ones open (replacing closures and following the district's growth). Store counts,
openings, closures, survival cohorts and operating months all come from that one state, so they
agree with each other; the change index (LL/LH/HL/HH) is then computed from the operating months
against the city average exactly as Seoul defines it, not drawn.

Districts are placed in the real dongs of the city model (small polygons inside their dong);
sales follow stores, a type's rhythm (catalog.PROFILES), seasonality and a post-2021 recovery.
Every table has `simulated = true` and the manifest says so. Same seed, same data.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import shapely
from shapely import affinity
from shapely.geometry import Point

from citywall.analytics.commerce import schema as S
from citywall.analytics.commerce.catalog import BUSINESS_TYPES, BusinessType, profile_arrays

# The split of the ~1,650 districts (Seoul's 상권분석서비스 has about 1,090 alley districts, 250
# developed districts, 300 traditional markets and a handful of tourist zones).
DEFAULT_KINDS: dict[str, int] = {"A": 1090, "D": 250, "R": 300, "U": 6}
DEFAULT_END_QUARTER = 20254  # fixed (not "today") so that a seed always gives the same data
DEFAULT_QUARTERS = 20
AGE_BINS = 64          # stores' age in quarters; the last bin holds 16 years and older
BURN_IN = 16           # quarters simulated before the first published one (cohorts, 3-year counts)

# Seoul's tourist zones (관광특구) and a dong in each; placed there when the city model has the dong.
TOURIST_ZONES: tuple[tuple[str, str], ...] = (
    ("이태원 관광특구", "이태원동"),
    ("명동 남대문 북창동 다동 무교동 관광특구", "명동2가"),
    ("동대문패션타운 관광특구", "을지로6가"),
    ("종로·청계 관광특구", "관철동"),
    ("잠실 관광특구", "잠실동"),
    ("강남 마이스 관광특구", "삼성동"),
)
# Gu where developed districts (발달상권) concentrate: Jongno, Jung, Mapo, Gangnam, Seocho, Songpa, Yongsan...
DEVELOPED_GU_WEIGHT = {"11110": 3.0, "11140": 3.0, "11440": 2.5, "11680": 3.0, "11650": 2.0, "11710": 2.0,
                       "11170": 1.8, "11560": 1.8, "11215": 1.5, "11620": 1.5}
KIND_NAME = {"A": "골목", "D": "상권", "R": "시장", "U": "관광특구"}
RADIUS_M = {"A": 160.0, "D": 320.0, "R": 110.0, "U": 650.0}
KIND_ORIGIN = {"A": 3110001, "D": 3120001, "R": 3130001, "U": 3001491}  # Seoul-like trdar_cd ranges


def quarter_range(end: int, n: int) -> list[int]:
    """The n quarters (YYYYQ) up to and including `end`, oldest first."""
    if not S.quarter_ok(np.array([end]))[0]:
        raise ValueError(f"not a quarter code (YYYYQ): {end}")
    if n < 1:
        raise ValueError("need at least one quarter")
    idx = (end // 10) * 4 + (end % 10 - 1)
    return [(i // 4) * 10 + i % 4 + 1 for i in range(idx - n + 1, idx + 1)]


def business_types_table(types: tuple[BusinessType, ...] = BUSINESS_TYPES) -> pa.Table:
    return pa.Table.from_pylist(
        [{"svc_induty_cd": t.code, "svc_induty_cd_nm": t.name_ko, "name_en": t.name_en,
          "category": t.category, "category_en": t.category_en} for t in types],
        schema=S.BUSINESS_TYPES)


# ---------------------------------------------------------------- districts
def make_districts(city: Any, rng: np.random.Generator, kinds: dict[str, int] | None = None) -> pa.Table:
    """Districts as small polygons inside real dongs of `city` (a citywall City)."""
    kinds = dict(DEFAULT_KINDS if kinds is None else kinds)
    unknown = set(kinds) - set(S.DISTRICT_KINDS)
    if unknown:
        raise ValueError(f"unknown district kinds {sorted(unknown)}; expected A, D, R, U")
    dongs = sorted(city.dongs.values(), key=lambda d: d.code)
    by_name = {d.name_ko: d for d in dongs}
    gus = sorted({d.parent for d in dongs})
    gu_share = rng.uniform(0.7, 1.3, len(gus))  # districts are spread over all gu, unevenly
    gu_dongs = {g: [d for d in dongs if d.parent == g] for g in gus}
    rows: list[dict[str, Any]] = []
    for kind in ("A", "D", "R", "U"):
        n = kinds.get(kind, 0)
        picks: list[tuple[Any, str | None]] = []
        if kind == "U":
            for i in range(n):
                name, dong_name = TOURIST_ZONES[i % len(TOURIST_ZONES)]
                dong = by_name.get(dong_name) or dongs[int(rng.integers(len(dongs)))]
                picks.append((dong, name if i < len(TOURIST_ZONES) else f"{name} {i // len(TOURIST_ZONES) + 1}"))
        else:
            w = gu_share * (np.array([DEVELOPED_GU_WEIGHT.get(g, 1.0) for g in gus]) if kind == "D" else 1.0)
            gu_pick = rng.choice(len(gus), size=n, p=w / w.sum())
            for gi in gu_pick:
                cands = gu_dongs[gus[gi]]
                dw = np.sqrt(np.array([max(d.area_km2, 0.05) for d in cands]))
                picks.append((cands[int(rng.choice(len(cands), p=dw / dw.sum()))], None))
            picks.sort(key=lambda p: p[0].code)
        seq: dict[str, int] = {}
        for i, (dong, name) in enumerate(picks):
            seq[dong.code] = seq.get(dong.code, 0) + 1
            poly = _polygon_in(dong.geometry, RADIUS_M[kind] * rng.uniform(0.7, 1.3), rng)
            inside = poly.representative_point()
            rows.append({
                "trdar_cd": str(KIND_ORIGIN[kind] + i),
                "trdar_cd_nm": name or f"{dong.name_ko} {KIND_NAME[kind]} {seq[dong.code]}",
                "trdar_se_cd": kind,
                "trdar_se_cd_nm": S.DISTRICT_KINDS[kind][0],
                "signgu_cd": dong.parent,
                "signgu_cd_nm": city.districts[dong.parent].name_ko,
                "adstrd_cd": dong.code,
                "adstrd_cd_nm": dong.name_ko,
                "lon": round(inside.x, 6), "lat": round(inside.y, 6),
                "relm_ar": round(_area_m2(poly), 1),
                "geometry": shapely.to_wkt(poly, rounding_precision=6),
                "simulated": True,
            })
    return pa.Table.from_pylist(rows, schema=S.DISTRICTS)


def _polygon_in(dong: Any, radius_m: float, rng: np.random.Generator) -> Any:
    """A 16-sided polygon of about `radius_m` around a random point of `dong`, clipped to it."""
    minx, miny, maxx, maxy = dong.bounds
    for _ in range(200):
        p = Point(rng.uniform(minx, maxx), rng.uniform(miny, maxy))
        if dong.contains(p):
            break
    else:
        p = dong.representative_point()
    lat = p.y
    circle = affinity.scale(Point(0, 0).buffer(1.0, quad_segs=4), radius_m / (111_320 * math.cos(math.radians(lat))),
                            radius_m / 110_574, origin=(0, 0))
    poly = affinity.translate(circle, p.x, p.y).intersection(dong)
    if poly.geom_type != "Polygon":
        parts = [g for g in getattr(poly, "geoms", []) if g.geom_type == "Polygon"]
        poly = max(parts, key=lambda g: g.area) if parts else affinity.translate(circle, p.x, p.y)
    return poly


def _area_m2(poly: Any) -> float:
    lat = poly.centroid.y
    return poly.area * 111_320 * math.cos(math.radians(lat)) * 110_574


# ---------------------------------------------------------------- the simulation
@dataclass
class Simulation:
    """Everything generated, in memory: the tables by name (quarterly ones as dicts by quarter)."""

    districts: pa.Table
    business_types: pa.Table
    quarters: list[int]
    tables: dict[str, dict[int, pa.Table]]
    seed: int

    def manifest(self) -> dict[str, Any]:
        kinds = self.districts["trdar_se_cd"].to_pylist()
        return {
            "simulated": True,
            "generator": "citywall.analytics.commerce.generate",
            "seed": self.seed,
            "quarters": self.quarters,
            "districts": len(kinds),
            "district_kinds": {k: kinds.count(k) for k in S.DISTRICT_KINDS},
            "business_types": self.business_types.num_rows,
            "rows": {name: sum(t.num_rows for t in by_q.values()) for name, by_q in self.tables.items()},
            "note": "SIMULATED Seoul-like data (not Seoul's published figures); see docs/commerce-data.md",
        }


def _split(total: np.ndarray, shares: np.ndarray) -> np.ndarray:
    """Integer parts of `total` (n,) by `shares` (n, k) that add up exactly (largest share gets the rest)."""
    parts = np.floor(total[:, None] * shares).astype(np.int64)
    rest = total - parts.sum(1)
    parts[np.arange(len(total)), shares.argmax(1)] += rest
    return parts


def _dirichlet_like(base: np.ndarray, rng: np.random.Generator, sigma: float) -> np.ndarray:
    """Row-wise jitter of share profiles (n, k): lognormal noise, renormalised."""
    out = base * rng.lognormal(0.0, sigma, base.shape)
    return out / out.sum(1, keepdims=True)


def simulate(*, seed: int = 7, quarters: int = DEFAULT_QUARTERS, end_quarter: int = DEFAULT_END_QUARTER,
             city: Any = None, kinds: dict[str, int] | None = None,
             progress: Callable[[str], None] | None = None) -> Simulation:
    """Run the simulation; `city` is a citywall City (default: load_city("seoul"))."""
    if city is None:
        from citywall.city import load_city

        city = load_city("seoul")
    say = progress or (lambda _m: None)
    qs = quarter_range(end_quarter, quarters)
    # Independent streams: the district placement does not change when the dynamics do.
    ss = np.random.SeedSequence(seed)
    rng_place, rng_pairs, rng_dyn, rng_sales, rng_pop = (np.random.default_rng(s) for s in ss.spawn(5))
    say(f"placing districts in {len(city.dongs)} dongs")
    districts = make_districts(city, rng_place, kinds)
    types = BUSINESS_TYPES
    btypes = business_types_table(types)
    prof = profile_arrays(types)
    nd, nt = districts.num_rows, len(types)
    kind = np.array(districts["trdar_se_cd"].to_pylist())

    # --- which district has which business type (pairs), and how big it is
    presence = np.array([t.presence for t in types])
    market_type = np.array([t.profile == "market" for t in types])
    size = rng_pairs.lognormal(0.0, 0.45, nd)  # district size
    kind_presence = {"A": 0.85, "D": 1.25, "R": 0.75, "U": 1.5}
    kind_stores = {"A": 1.0, "D": 2.6, "R": 1.4, "U": 4.0}
    p = presence[None, :] * np.array([kind_presence[k] for k in kind])[:, None] * np.clip(size, 0.6, 1.6)[:, None] ** 0.5
    p = np.where((kind == "R")[:, None] & market_type[None, :], 1.0, p)  # markets sell food
    has = rng_pairs.random((nd, nt)) < np.clip(p, 0.0, 0.99)
    d_idx, t_idx = np.nonzero(has)
    npairs = d_idx.size
    base_stores = np.array([t.stores for t in types])[t_idx] * np.array([kind_stores[k] for k in kind])[d_idx]
    base_stores *= size[d_idx] * np.where((kind[d_idx] == "R") & market_type[t_idx], 3.0, 1.0)
    target0 = np.maximum(1.0, base_stores * rng_pairs.lognormal(0.0, 0.35, npairs))

    # --- district regimes: churn, infant mortality, old-age closing, growth (these make LL/LH/HL/HH)
    regime = rng_dyn.choice(4, size=nd, p=[0.3, 0.2, 0.2, 0.3])  # LL-like, LH-like, HL-like, HH-like
    churn = np.choose(regime, [1.6, 1.1, 0.7, 0.6]) * rng_dyn.lognormal(0, 0.15, nd)
    infant = np.choose(regime, [2.6, 1.0, 2.8, 1.1]) * rng_dyn.lognormal(0, 0.12, nd)
    aging = np.choose(regime, [0.2, 1.6, 0.1, 0.4])
    growth = np.choose(regime, [0.003, 0.018, -0.018, 0.0]) + rng_dyn.normal(0, 0.004, nd)
    frc_share = np.clip(np.array([t.franchise for t in types])[t_idx] * np.where(kind[d_idx] == "D", 1.3, np.where(kind[d_idx] == "R", 0.3, 1.0))
                        * rng_dyn.lognormal(0, 0.3, npairs), 0, 0.95)

    ages = np.arange(AGE_BINS)
    hazard = 0.022 * churn[:, None] * np.where(ages[None, :] < 8, infant[:, None], 1.0) * (1 + aging[:, None] * ages[None, :] / 40)
    hazard = np.clip(hazard, 0.0, 0.6)
    # initial ages: the stationary distribution of each district's hazard
    surv = np.cumprod(np.concatenate([np.ones((nd, 1)), 1 - hazard[:, 1:]], axis=1), axis=1)
    surv /= surv.sum(1, keepdims=True)
    counts = rng_dyn.poisson(target0[:, None] * surv[d_idx]).astype(np.int64)
    h_pair = hazard[d_idx]

    total_q = BURN_IN + len(qs)
    opened_hist = np.zeros((total_q, npairs), dtype=np.int64)
    cls_window: list[tuple[np.ndarray, np.ndarray]] = []
    out_stores: dict[int, pa.Table] = {}
    out_sales: dict[int, pa.Table] = {}
    out_change: dict[int, pa.Table] = {}
    stock_hist: dict[int, np.ndarray] = {}

    district_sales_factor = rng_sales.lognormal(0, 0.35, nd) * np.array([{"A": 1.0, "D": 1.45, "R": 0.8, "U": 1.9}[k] for k in kind])
    pair_sales_factor = rng_sales.lognormal(0, 0.25, npairs)
    ticket = np.array([t.ticket for t in types], dtype=float)[t_idx] * rng_sales.lognormal(0, 0.12, npairs)
    # a pair's own rhythm (shares), fixed over time, jittered around its type's profile
    kind_weekend = np.where(np.isin(kind[d_idx], ["D", "U"]), 1.2, 1.0)
    days_base = prof["days"][t_idx].copy()
    days_base[:, 5:] *= kind_weekend[:, None]
    day_sh = _dirichlet_like(days_base, rng_sales, 0.08)
    time_sh = _dirichlet_like(prof["time"][t_idx] + 1e-4, rng_sales, 0.12)
    age_tilt = np.array([{"A": (1, 1, 1, 1, 1, 1), "D": (1.3, 1.4, 1.1, 0.9, 0.8, 0.6), "R": (0.5, 0.6, 0.8, 1.0, 1.3, 1.6),
                          "U": (1.2, 1.4, 1.1, 0.9, 0.8, 0.7)}[k] for k in kind])
    age_sh = _dirichlet_like(prof["ages"][t_idx] * age_tilt[d_idx], rng_sales, 0.1)
    female = np.clip(np.array([t.female for t in types])[t_idx] + rng_sales.normal(0, 0.04, npairs), 0.03, 0.97)
    sex_sh = np.stack([1 - female, female], axis=1)
    season = prof["season"][t_idx]
    sales_m = np.array([t.sales_m for t in types])[t_idx] * 1e6
    recovery_profile = np.isin(np.array([t.profile for t in types])[t_idx], ["meal", "bar", "night"])

    trdar_cd = districts["trdar_cd"]
    trdar_nm = districts["trdar_cd_nm"]
    codes = [t.code for t in types]
    names = [t.name_ko for t in types]
    pair_cd = pa.array(np.array(trdar_cd.to_pylist(), dtype=object)[d_idx].tolist(), pa.string())
    pair_nm = pa.array(np.array(trdar_nm.to_pylist(), dtype=object)[d_idx].tolist(), pa.string())
    pair_se = pa.array(kind[d_idx].tolist(), pa.string())
    pair_ty = pa.array([codes[i] for i in t_idx], pa.string())
    pair_ty_nm = pa.array([names[i] for i in t_idx], pa.string())

    say(f"simulating {npairs:,} district x business type pairs over {len(qs)} quarters (+{BURN_IN} burn-in)")
    for step in range(total_q):
        qi = step - BURN_IN
        g = np.exp(growth[d_idx] * max(step - BURN_IN // 2, 0))
        target = target0 * g
        # age by one quarter (the last bin keeps the oldest)
        counts = np.concatenate([np.zeros((npairs, 1), np.int64), counts[:, :-2], counts[:, -2:].sum(1, keepdims=True)], axis=1)
        closed = rng_dyn.binomial(counts, h_pair)
        counts -= closed
        n_closed = closed.sum(1)
        survivors = counts.sum(1)
        expected = n_closed + 0.25 * (target - survivors)
        opened = rng_dyn.poisson(np.maximum(expected, 0.02 * target))
        counts[:, 0] += opened
        opened_hist[step] = opened
        # closing ages, per district (months, mid-quarter), rolling four quarters
        age_sum_pair = (closed * (ages[None, :] * 3.0 + 1.5)).sum(1)
        cls_window.append((np.bincount(d_idx, age_sum_pair, nd), np.bincount(d_idx, n_closed, nd)))
        cls_window = cls_window[-4:]
        if qi < 0:
            continue
        q = qs[qi]
        total = counts.sum(1)
        stock_hist[q] = total
        frc = np.rint(total * frc_share).astype(np.int64)
        # opbiz_rt / clsbiz_rt: % of this quarter's stores of the type (similr_induty_stor_co of the same
        # row), the definition indicators.opening_rate / closing_rate use, so the published-style
        # columns and ours agree (docs/commerce.md "Opening and closing rates").
        # Where no store of the type is left the rate is undefined: indicators gives null, the
        # published-style column (not nullable) 0.0 rather than a closing rate of 200 %.
        base = np.where(total > 0, total, np.inf)
        srvv1_base = opened_hist[step - 4]
        srvv3_base = opened_hist[step - 12]
        say(f"quarter {q}: {int(total.sum()):,} stores, {int(opened.sum()):,} opened, {int(n_closed.sum()):,} closed")
        out_stores[q] = pa.table({
            "stdr_yyqu_cd": pa.array(np.full(npairs, q, np.int32)),
            "trdar_se_cd": pair_se, "trdar_cd": pair_cd, "trdar_cd_nm": pair_nm,
            "svc_induty_cd": pair_ty, "svc_induty_cd_nm": pair_ty_nm,
            "stor_co": total - frc, "similr_induty_stor_co": total,
            "opbiz_rt": np.round(100.0 * opened / base, 1), "opbiz_stor_co": opened,
            "clsbiz_rt": np.round(100.0 * n_closed / base, 1), "clsbiz_stor_co": n_closed,
            "frc_stor_co": frc,
            "clsbiz_3y_stor_co": closed[:, :12].sum(1),
            "srvv_1y_base_co": srvv1_base, "srvv_1y_co": counts[:, 4],
            "srvv_3y_base_co": srvv3_base, "srvv_3y_co": counts[:, 12],
            "simulated": np.ones(npairs, bool),
        }, schema=S.STORES)

        # change index: operating months of surviving and of closed businesses against the city's
        opr_sum = np.bincount(d_idx, (counts * (ages[None, :] * 3.0 + 1.5)).sum(1), nd)
        opr_n = np.bincount(d_idx, total, nd)
        cls_sum = sum(w[0] for w in cls_window)
        cls_n = sum(w[1] for w in cls_window)
        city_opr = opr_sum.sum() / max(opr_n.sum(), 1)
        city_cls = cls_sum.sum() / max(cls_n.sum(), 1)
        # classify on the values as published (rounded to 0.1 month), so anyone recomputing the index
        # from the published columns (indicators._change_index) gets exactly trdar_chnge_ix
        city_opr = round(float(city_opr), 1)
        city_cls = round(float(city_cls), 1)
        opr = np.round(np.where(opr_n > 0, opr_sum / np.maximum(opr_n, 1), city_opr), 1)
        cls = np.round(np.where(cls_n > 0, cls_sum / np.maximum(cls_n, 1), city_cls), 1)
        ix = np.char.add(np.where(opr >= city_opr, "H", "L"), np.where(cls >= city_cls, "H", "L"))
        out_change[q] = pa.table({
            "stdr_yyqu_cd": pa.array(np.full(nd, q, np.int32)),
            "trdar_se_cd": districts["trdar_se_cd"], "trdar_cd": trdar_cd, "trdar_cd_nm": trdar_nm,
            "trdar_chnge_ix": ix.tolist(), "trdar_chnge_ix_nm": [S.CHANGE_INDEX[x][0] for x in ix.tolist()],
            "opr_sale_mt_avrg": opr, "cls_sale_mt_avrg": cls,
            "su_opr_sale_mt_avrg": np.full(nd, city_opr), "su_cls_sale_mt_avrg": np.full(nd, city_cls),
            "simulated": np.ones(nd, bool),
        }, schema=S.CHANGE)

        # sales: stores x sales per store x season x trend, split by the pair's rhythm
        year, qq = divmod(q, 10)
        t_years = (year - 2021) + (qq - 1) / 4
        trend = 1.0 + 0.035 * t_years
        recovery = np.where(recovery_profile, np.clip(0.82 + 0.09 * t_years, 0.82, 1.0), 1.0)
        amt = total * sales_m * pair_sales_factor * district_sales_factor[d_idx] * season[:, qq - 1] * trend * recovery
        amt = np.rint(amt * rng_sales.lognormal(0, 0.08, npairs)).astype(np.int64)
        co = np.rint(amt / ticket).astype(np.int64)
        sel = total > 0  # Seoul publishes sales where there are stores
        cols: dict[str, Any] = {
            "stdr_yyqu_cd": pa.array(np.full(int(sel.sum()), q, np.int32)),
            "trdar_se_cd": pair_se.filter(pa.array(sel)), "trdar_cd": pair_cd.filter(pa.array(sel)),
            "trdar_cd_nm": pair_nm.filter(pa.array(sel)), "svc_induty_cd": pair_ty.filter(pa.array(sel)),
            "svc_induty_cd_nm": pair_ty_nm.filter(pa.array(sel)),
        }
        for unit, tot in (("amt", amt[sel]), ("co", co[sel])):
            cols[f"thsmon_selng_{unit}"] = tot
            days = _split(tot, day_sh[sel])
            for j, d in enumerate(S.DAYS):
                cols[f"{d}_selng_{unit}"] = days[:, j]
            cols[f"mdwk_selng_{unit}"] = days[:, :5].sum(1)
            cols[f"wkend_selng_{unit}"] = days[:, 5:].sum(1)
            for parts, names_ in ((time_sh, S.TIME_BANDS), (sex_sh, S.SEXES), (age_sh, S.AGES)):
                split = _split(tot, parts[sel])
                for j, n in enumerate(names_):
                    cols[f"{n}_selng_{unit}"] = split[:, j]
        cols["simulated"] = np.ones(int(sel.sum()), bool)
        out_sales[q] = pa.table({f.name: cols[f.name] for f in S.SALES}, schema=S.SALES)

    say("population tables")
    tables = {"sales": out_sales, "stores": out_stores, "change": out_change}
    tables.update(_population(districts, kind, qs, stock_hist, d_idx, rng_pop))
    return Simulation(districts=districts, business_types=btypes, quarters=qs, tables=tables, seed=seed)


def _population(districts: pa.Table, kind: np.ndarray, qs: list[int], stock_hist: dict[int, np.ndarray],
                d_idx: np.ndarray, rng: np.random.Generator) -> dict[str, dict[int, pa.Table]]:
    """Floating, resident and working population per district and quarter."""
    nd = districts.num_rows
    k = lambda m: np.array([m[x] for x in kind])  # noqa: E731
    fl_base = k({"A": 3.2e5, "D": 1.6e6, "R": 6.0e5, "U": 3.5e6}) * rng.lognormal(0, 0.5, nd)
    re_base = k({"A": 9000, "D": 6000, "R": 5000, "U": 8000}) * rng.lognormal(0, 0.4, nd)
    wk_base = k({"A": 2500, "D": 16000, "R": 3500, "U": 30000}) * rng.lognormal(0, 0.6, nd)
    young = k({"A": 1.0, "D": 1.35, "R": 0.7, "U": 1.25})
    age_base = np.array([0.10, 0.20, 0.19, 0.18, 0.17, 0.16])[None, :] * np.stack([young ** (1.5 - j * 0.5) for j in range(6)], 1)
    fl_age = _dirichlet_like(age_base, rng, 0.08)
    re_age = _dirichlet_like(np.tile([0.10, 0.14, 0.16, 0.17, 0.17, 0.26], (nd, 1)), rng, 0.1)
    wk_age = _dirichlet_like(np.tile([0.01, 0.22, 0.30, 0.25, 0.16, 0.06], (nd, 1)), rng, 0.1)
    fl_time = _dirichlet_like(np.tile([0.05, 0.17, 0.20, 0.20, 0.24, 0.14], (nd, 1)), rng, 0.1)
    wk_days = np.where(np.isin(kind, ["D", "U"])[:, None], [[1, 1, 1, 1, 1.1, 1.25, 1.1]], [[1, 1, 1, 1, 1.05, 0.95, 0.85]])
    fl_days = _dirichlet_like(np.asarray(wk_days, float), rng, 0.05)
    fl_fem = np.clip(rng.normal(0.52, 0.03, nd), 0.3, 0.7)
    re_fem = np.clip(rng.normal(0.52, 0.02, nd), 0.3, 0.7)
    wk_fem = np.clip(rng.normal(0.44, 0.06, nd), 0.1, 0.8)
    re_drift = rng.normal(0, 0.004, nd)
    wk_drift = rng.normal(0.002, 0.006, nd)
    meta = {"trdar_se_cd": districts["trdar_se_cd"], "trdar_cd": districts["trdar_cd"], "trdar_cd_nm": districts["trdar_cd_nm"]}
    stock0 = np.bincount(d_idx, stock_hist[qs[0]], nd)
    out: dict[str, dict[int, pa.Table]] = {"flpop": {}, "resident": {}, "working": {}}
    for i, q in enumerate(qs):
        qq = q % 10
        lively = (np.bincount(d_idx, stock_hist[q], nd) + 5) / (stock0 + 5)  # more stores, more passers-by
        fl = np.rint(fl_base * lively ** 0.5 * (1.0, 1.03, 1.02, 0.97)[qq - 1] * rng.lognormal(0, 0.05, nd)).astype(np.int64)
        re = np.rint(re_base * np.exp(re_drift * i) * rng.lognormal(0, 0.01, nd)).astype(np.int64)
        wk = np.rint(wk_base * np.exp(wk_drift * i) * rng.lognormal(0, 0.02, nd)).astype(np.int64)
        common = {"stdr_yyqu_cd": pa.array(np.full(nd, q, np.int32)), **meta}
        cols: dict[str, Any] = dict(common, tot_flpop_co=fl)
        for parts, names in ((np.stack([1 - fl_fem, fl_fem], 1), S.SEXES), (fl_age, S.AGES), (fl_time, S.TIME_BANDS), (fl_days, S.DAYS)):
            split = _split(fl, parts)
            cols.update({f"{n}_flpop_co": split[:, j] for j, n in enumerate(names)})
        out["flpop"][q] = pa.table({**cols, "simulated": np.ones(nd, bool)}, schema=S.FLPOP)
        cols = dict(common, tot_repop_co=re)
        for parts, names in ((np.stack([1 - re_fem, re_fem], 1), S.SEXES), (re_age, S.AGES)):
            split = _split(re, parts)
            cols.update({f"{n}_repop_co": split[:, j] for j, n in enumerate(names)})
        cols["tot_hshld_co"] = np.rint(re / rng.uniform(2.0, 2.5, nd)).astype(np.int64)
        out["resident"][q] = pa.table({**cols, "simulated": np.ones(nd, bool)}, schema=S.RESIDENT)
        cols = dict(common, tot_wrc_popltn_co=wk)
        for parts, names in ((np.stack([1 - wk_fem, wk_fem], 1), S.SEXES), (wk_age, S.AGES)):
            split = _split(wk, parts)
            cols.update({f"{n}_wrc_popltn_co": split[:, j] for j, n in enumerate(names)})
        out["working"][q] = pa.table({**cols, "simulated": np.ones(nd, bool)}, schema=S.WORKING)
    return out


# ---------------------------------------------------------------- writing
def write_simulation(sim: Simulation, out: str | Path) -> dict[str, Any]:
    """Write the layout of schema.py under `out`; returns the manifest."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    pq.write_table(sim.districts, S.table_path(out, "districts"))
    pq.write_table(sim.business_types, S.table_path(out, "business_types"))
    for name, by_q in sim.tables.items():
        S.drop_other_quarters(out, name, set(by_q))
        for q, table in by_q.items():
            S.write_quarter(table, out, name, q)
    manifest = sim.manifest()
    (out / "manifest.json").write_text(json.dumps(manifest, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    return manifest


def generate(out: str | Path, *, seed: int = 7, quarters: int = DEFAULT_QUARTERS, end_quarter: int = DEFAULT_END_QUARTER,
             city: Any = None, kinds: dict[str, int] | None = None,
             progress: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Simulate and write Seoul-like quarterly data under `out`; returns the manifest (simulated: true)."""
    sim = simulate(seed=seed, quarters=quarters, end_quarter=end_quarter, city=city, kinds=kinds, progress=progress)
    return write_simulation(sim, out)

"""Raw records, as a card company or a telecom would deliver them: one row per card payment, one
row per floating-population count. Up to billions of rows, as Parquet files on disk.

Why it is built this way: the raw path (aggregating raw payments into the quarterly sales table,
out of core) has to be tested and benchmarked at the scale Seoul works at (~10 billion records a
month), on one laptop. So generation is vectorised numpy per chunk (default 10 million rows = one
file, written in row groups of 2 million), files are independent (each chunk has its own seed
derived from the run's seed and the chunk number), memory stays constant whatever the row count,
and chunks can be written by several processes with the same result.

The rows follow a quarterly data set: with `data_dir` the one on disk (districts, business types
and, per district x type x quarter, the payment counts, ticket size and the weekday, time-band, sex
and age shares of its sales table); without it, the quarterly simulation of `generate.simulate`
with the same seed. Aggregating the raw rows back by quarter therefore gives sales of the same
shape as the quarterly table. Everything is simulated; the file metadata says so.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from citywall.analytics.commerce import schema as S
from citywall.analytics.commerce.catalog import TIME_BAND_HOURS

DEFAULT_CHUNK_ROWS = 10_000_000
ROW_GROUP_ROWS = 2_000_000
KST = dt.timezone(dt.timedelta(hours=9))
_META = {b"citywall.simulated": b"true", b"citywall.generator": b"citywall.analytics.commerce.rawgen"}


@dataclass
class RawModel:
    """What the raw rows are drawn from: one entry per (quarter, district, business type) cell."""

    district_codes: np.ndarray      # (n_districts,) str
    type_codes: np.ndarray          # (n_types,) str
    quarters: np.ndarray            # (n_cells,) int YYYYQ
    district: np.ndarray            # (n_cells,) index into district_codes
    btype: np.ndarray               # (n_cells,) index into type_codes
    cum_weight: np.ndarray          # (n_cells,) cumulative share of payments, last = 1
    ticket: np.ndarray              # (n_cells,) mean payment, KRW
    cum_days: np.ndarray            # (n_cells, 7) cumulative Mon..Sun shares (float32)
    cum_time: np.ndarray            # (n_cells, 6) cumulative time-band shares
    female: np.ndarray              # (n_cells,) share of women
    cum_ages: np.ndarray            # (n_cells, 6) cumulative age-band shares
    flpop_cum: np.ndarray           # (n_fl_cells,) cumulative share of floating population
    flpop_quarter: np.ndarray       # (n_fl_cells,)
    flpop_district: np.ndarray      # (n_fl_cells,)
    flpop_mean: np.ndarray          # (n_fl_cells,) mean count per (hour, sex, age) row
    flpop_cum_time: np.ndarray      # (n_fl_cells, 6)
    flpop_female: np.ndarray
    flpop_cum_ages: np.ndarray
    source: str


def _cum(table: pa.Table, cols: list[str]) -> np.ndarray:
    m = np.stack([table[c].to_numpy().astype(np.float64) for c in cols], axis=1)
    tot = m.sum(1, keepdims=True)
    m = np.where(tot > 0, m / np.where(tot > 0, tot, 1), 1.0 / len(cols))
    c = np.cumsum(m, axis=1)
    c[:, -1] = 1.0
    return c.astype(np.float32)


def model_from_tables(districts: pa.Table, business_types: pa.Table, sales: pa.Table, flpop: pa.Table,
                      source: str) -> RawModel:
    """Build the sampling model from a quarterly data set (in memory)."""
    dcodes = np.array(districts["trdar_cd"].to_pylist(), dtype=object)
    tcodes = np.array(business_types["svc_induty_cd"].to_pylist(), dtype=object)
    d_of = {c: i for i, c in enumerate(dcodes)}
    t_of = {c: i for i, c in enumerate(tcodes)}
    sales = sales.filter(pc.greater(sales["thsmon_selng_co"], 0))
    if sales.num_rows == 0:
        raise ValueError(f"{source}: the sales table has no payments to draw from")
    co = sales["thsmon_selng_co"].to_numpy().astype(np.float64)
    amt = sales["thsmon_selng_amt"].to_numpy().astype(np.float64)
    d = np.array([d_of[c] for c in sales["trdar_cd"].to_pylist()], dtype=np.int32)
    t = np.array([t_of[c] for c in sales["svc_induty_cd"].to_pylist()], dtype=np.int32)
    cw = np.cumsum(co)
    fl_tot = flpop["tot_flpop_co"].to_numpy().astype(np.float64)
    fl_cw = np.cumsum(fl_tot)
    fl_d = np.array([d_of[c] for c in flpop["trdar_cd"].to_pylist()], dtype=np.int32)
    # a quarter has ~2,184 hours x 2 sexes x 6 age bands = 26,208 (hour, sex, age) cells per district
    return RawModel(
        district_codes=dcodes, type_codes=tcodes,
        quarters=sales["stdr_yyqu_cd"].to_numpy().astype(np.int32), district=d, btype=t,
        cum_weight=cw / cw[-1], ticket=amt / co,
        cum_days=_cum(sales, [f"{x}_selng_co" for x in S.DAYS]),
        cum_time=_cum(sales, [f"{x}_selng_co" for x in S.TIME_BANDS]),
        female=(_cum(sales, ["ml_selng_co", "fml_selng_co"])[:, 0] * -1 + 1).astype(np.float32),
        cum_ages=_cum(sales, [f"{x}_selng_co" for x in S.AGES]),
        flpop_cum=fl_cw / max(fl_cw[-1], 1.0), flpop_quarter=flpop["stdr_yyqu_cd"].to_numpy().astype(np.int32),
        flpop_district=fl_d, flpop_mean=np.maximum(fl_tot / 26_208.0, 1.0),
        flpop_cum_time=_cum(flpop, [f"{x}_flpop_co" for x in S.TIME_BANDS]),
        flpop_female=(1 - _cum(flpop, ["ml_flpop_co", "fml_flpop_co"])[:, 0]).astype(np.float32),
        flpop_cum_ages=_cum(flpop, [f"{x}_flpop_co" for x in S.AGES]),
        source=source,
    )


def load_model(data_dir: str | Path | None, *, seed: int = 7, progress: Callable[[str], None] | None = None) -> RawModel:
    """The model from a data directory written by `generate` or the readers, or (None) from the
    quarterly simulation with `seed`, so that `generate --seed S` and `generate-raw --seed S` agree."""
    if data_dir is None:
        from citywall.analytics.commerce.generate import simulate

        sim = simulate(seed=seed, progress=progress)
        return model_from_tables(sim.districts, sim.business_types, pa.concat_tables(sim.tables["sales"].values()),
                                 pa.concat_tables(sim.tables["flpop"].values()), f"simulation seed {seed}")
    base = Path(data_dir)
    for need in ("districts.parquet", "business_types.parquet", "sales", "flpop"):
        if not (base / need).exists():
            raise FileNotFoundError(f"{base / need}: missing; a data directory needs districts, business types, sales and flpop "
                                    f"(write one with `citywall commerce generate --out {base}`)")
    cols = ["stdr_yyqu_cd", "trdar_cd", "svc_induty_cd", "thsmon_selng_amt", "thsmon_selng_co"] + [
        f"{x}_selng_co" for x in S.DAYS + S.TIME_BANDS + S.SEXES + S.AGES]
    fcols = ["stdr_yyqu_cd", "trdar_cd", "tot_flpop_co"] + [f"{x}_flpop_co" for x in S.SEXES + S.AGES + S.TIME_BANDS]
    sales = S.read_quarterly(base, "sales", columns=cols)
    flpop = S.read_quarterly(base, "flpop", columns=fcols)
    return model_from_tables(pq.read_table(base / "districts.parquet"), pq.read_table(base / "business_types.parquet"),
                             sales, flpop, str(base))


# ---------------------------------------------------------------- vectorised sampling
def _quarter_start_us(quarters: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """For each distinct quarter: epoch µs of its first day 00:00 KST, its length in days and the
    weekday (Mon=0) of its first day."""
    uq = np.unique(quarters)
    starts, days, wd = [], [], []
    for q in uq.tolist():
        y, qq = divmod(q, 10)
        first = dt.date(y, 3 * (qq - 1) + 1, 1)
        nxt = dt.date(y + (qq == 4), 1 if qq == 4 else 3 * qq + 1, 1)
        starts.append(int(dt.datetime(first.year, first.month, 1, tzinfo=KST).timestamp()) * 1_000_000)
        days.append((nxt - first).days)
        wd.append(first.weekday())
    return uq, np.array(starts, np.int64), np.array(days, np.int64), np.array(wd, np.int64)


def _pick(cum: np.ndarray, u: np.ndarray) -> np.ndarray:
    """Row-wise categorical draw: index of the first cumulative share above u ((n,k), (n,))."""
    return (u[:, None] >= cum).sum(1).clip(0, cum.shape[1] - 1)


def _timestamps(rng: np.random.Generator, quarter: np.ndarray, cum_days: np.ndarray, cum_time: np.ndarray) -> np.ndarray:
    """Epoch µs (KST wall time) of a moment in the quarter, on a weekday and in a time band drawn
    from the cell's shares."""
    uq, start, ndays, wd0 = _quarter_start_us(quarter)
    qi = np.searchsorted(uq, quarter)
    weekday = _pick(cum_days, rng.random(len(quarter), dtype=np.float32))
    offset = (weekday - wd0[qi]) % 7                      # first day of the quarter with that weekday
    n_such = (ndays[qi] - 1 - offset) // 7 + 1
    day = offset + 7 * (rng.random(len(quarter)) * n_such).astype(np.int64)
    band = _pick(cum_time, rng.random(len(quarter), dtype=np.float32))
    lo = np.array([h[0] for h in TIME_BAND_HOURS], np.int64)[band]
    hi = np.array([h[1] for h in TIME_BAND_HOURS], np.int64)[band]
    sec = lo * 3600 + (rng.random(len(quarter)) * ((hi - lo) * 3600)).astype(np.int64)
    return start[qi] + (day * 86_400 + sec) * 1_000_000


def _cells(cum: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """n cell indices drawn by weight. A multinomial count per cell, repeated, is ~10x faster than
    a binary search per row and leaves the rows grouped by cell (quarter, district, type), like an
    extract per merchant; the gathers that follow are then sequential in memory. The order within
    a file carries no meaning; the aggregation does not depend on it."""
    p = np.diff(cum, prepend=0.0)
    counts = rng.multinomial(n, np.clip(p, 0.0, None) / p.sum())
    return np.repeat(np.arange(len(cum), dtype=np.int32), counts)


def payments_batch(model: RawModel, n: int, rng: np.random.Generator) -> pa.RecordBatch:
    """n payment rows (schema.PAYMENTS; codes dictionary-encoded, which Parquet stores as such)."""
    cell = _cells(model.cum_weight, n, rng)
    ts = _timestamps(rng, model.quarters[cell], model.cum_days[cell], model.cum_time[cell])
    sigma = 0.6
    amount = model.ticket[cell] * rng.lognormal(-sigma * sigma / 2, sigma, n)
    amount = np.maximum(np.rint(amount / 10.0) * 10, 100).astype(np.int64)   # KRW, to 10 won
    female = rng.random(n, dtype=np.float32) < model.female[cell]
    age = ((_pick(model.cum_ages[cell], rng.random(n, dtype=np.float32)) + 1) * 10).astype(np.int8)
    return pa.RecordBatch.from_arrays([
        pa.array(ts, pa.timestamp("us", tz="Asia/Seoul")),
        pa.DictionaryArray.from_arrays(pa.array(model.district[cell], pa.int32()), pa.array(model.district_codes.tolist(), pa.string())),
        pa.DictionaryArray.from_arrays(pa.array(model.btype[cell], pa.int32()), pa.array(model.type_codes.tolist(), pa.string())),
        pa.array(amount, pa.int64()),
        pa.DictionaryArray.from_arrays(pa.array(female.astype(np.int8)), pa.array(["M", "F"])),
        pa.array(age, pa.int8()),
    ], schema=_dict_schema(S.PAYMENTS))


def flpop_batch(model: RawModel, n: int, rng: np.random.Generator) -> pa.RecordBatch:
    """n floating-population count rows (schema.RAW_FLPOP): one count per district, hour, sex, age."""
    cell = _cells(model.flpop_cum, n, rng)
    ones = np.ones((1, 7), np.float32).cumsum(1) / 7
    ts = _timestamps(rng, model.flpop_quarter[cell], np.broadcast_to(ones, (n, 7)), model.flpop_cum_time[cell])
    ts -= ts % 3_600_000_000  # counts are hourly
    count = np.maximum(rng.poisson(model.flpop_mean[cell]), 1).astype(np.int32)
    female = rng.random(n, dtype=np.float32) < model.flpop_female[cell]
    age = ((_pick(model.flpop_cum_ages[cell], rng.random(n, dtype=np.float32)) + 1) * 10).astype(np.int8)
    return pa.RecordBatch.from_arrays([
        pa.array(ts, pa.timestamp("us", tz="Asia/Seoul")),
        pa.DictionaryArray.from_arrays(pa.array(model.flpop_district[cell], pa.int32()), pa.array(model.district_codes.tolist(), pa.string())),
        pa.array(count, pa.int32()),
        pa.DictionaryArray.from_arrays(pa.array(female.astype(np.int8)), pa.array(["M", "F"])),
        pa.array(age, pa.int8()),
    ], schema=_dict_schema(S.RAW_FLPOP))


def _dict_schema(schema: pa.Schema) -> pa.Schema:
    fields = [pa.field(f.name, pa.dictionary(pa.int32() if f.name != "customer_sex" and f.name != "sex" else pa.int8(), pa.string()), nullable=f.nullable)
              if f.type == pa.string() else f for f in schema]
    return pa.schema(fields, metadata=_META)


# ---------------------------------------------------------------- files
_MODEL: RawModel | None = None  # set in the parent before forking workers (copy-on-write)


def _write_chunk(kind: str, index: int, rows: int, seed: int, path: str) -> int:
    model = _MODEL
    assert model is not None
    rng = np.random.default_rng(np.random.SeedSequence([seed, 1 if kind == "payments" else 2, index]))
    make = payments_batch if kind == "payments" else flpop_batch
    schema = _dict_schema(S.PAYMENTS if kind == "payments" else S.RAW_FLPOP)
    tmp = path + ".tmp"
    with pq.ParquetWriter(tmp, schema, compression="zstd", compression_level=1) as w:
        left = rows
        while left > 0:
            m = min(left, ROW_GROUP_ROWS)
            w.write_batch(make(model, m, rng), row_group_size=m)
            left -= m
    os.replace(tmp, path)  # a file is there whole or not at all
    return rows


def generate_raw(out: str | Path, rows: int, *, seed: int = 7, data_dir: str | Path | None = None,
                 flpop_rows: int = 0, chunk_rows: int = DEFAULT_CHUNK_ROWS, processes: int = 1,
                 progress: Callable[[str], None] | None = None, model: RawModel | None = None) -> dict[str, Any]:
    """Write `rows` payment rows to OUT/payments/part-NNNNN.parquet (and `flpop_rows` floating
    population rows to OUT/flpop/) in chunks of `chunk_rows`; returns the manifest written to
    OUT/manifest.json. The same seed gives the same files whatever `processes` is."""
    global _MODEL
    if rows < 0 or flpop_rows < 0:
        raise ValueError("row counts must not be negative")
    if chunk_rows < 1:
        raise ValueError("chunk_rows must be at least 1")
    say = progress or (lambda _m: None)
    _MODEL = model or load_model(data_dir, seed=seed, progress=say)
    out = Path(out)
    jobs: list[tuple[str, int, int, int, str]] = []
    for kind, total in (("payments", rows), ("flpop", flpop_rows)):
        if total == 0:
            continue
        d = out / kind
        d.mkdir(parents=True, exist_ok=True)
        for old in d.glob("part-*.parquet"):  # a rerun replaces, never mixes, runs
            old.unlink()
        for i, start in enumerate(range(0, total, chunk_rows)):
            jobs.append((kind, i, min(chunk_rows, total - start), seed, str(d / f"part-{i:05d}.parquet")))
    done, t0, total_rows = 0, time.monotonic(), rows + flpop_rows

    def report(n: int) -> None:
        nonlocal done
        done += n
        el = time.monotonic() - t0
        rate = done / el if el > 0 else 0.0
        eta = (total_rows - done) / rate if rate > 0 else 0.0
        say(f"{done:,}/{total_rows:,} rows ({100 * done / max(total_rows, 1):.0f}%), {rate / 1e6:.2f} M rows/s, ETA {eta:.0f} s")

    if processes > 1 and len(jobs) > 1:
        import multiprocessing as mp

        with ProcessPoolExecutor(max_workers=processes, mp_context=mp.get_context("fork")) as ex:
            for n in ex.map(_write_chunk, *zip(*jobs)):
                report(n)
    else:
        for job in jobs:
            report(_write_chunk(*job))
    elapsed = time.monotonic() - t0
    manifest = {
        "simulated": True, "generator": "citywall.analytics.commerce.rawgen", "seed": seed,
        "model": _MODEL.source, "payments_rows": rows, "flpop_rows": flpop_rows, "chunk_rows": chunk_rows,
        "quarters": sorted(set(_MODEL.quarters.tolist())),
        "files": {k: sorted(p.name for p in (out / k).glob("part-*.parquet")) for k in ("payments", "flpop") if (out / k).exists()},
    }
    out.mkdir(parents=True, exist_ok=True)
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    manifest["elapsed_s"] = round(elapsed, 3)
    _MODEL = None
    return manifest


def stderr_progress(message: str) -> None:
    print(f"citywall commerce: {message}", file=sys.stderr, flush=True)

"""The embedded store: one DuckDB file holding the registry, observations and quarantine.

One writer connection, used only by the pipeline's writer thread (one transaction per
group of batches, committed before anyone is told); readers get their own cursors so
history queries never wait for ingest.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, TypeVar

import duckdb
import msgspec
import numpy as np
import pyarrow as pa

from citywall.observations.model import Datastream, Thing
from citywall.store import migrations
from citywall.store.reads import HOUR_US, SharedReads

T = TypeVar("T")
SCHEMA_VERSION = migrations.latest("duckdb")  # 2: operations tables (incident and alarm events, users, sessions, keys, audit)
Resolution = Literal["raw", "minute", "hour", "day"]
Aggregate = Literal["mean", "min", "max", "last"]
BUCKETS = {"minute": "1 minute", "hour": "1 hour", "day": "1 day"}
# id sequences (take_ids) -> the table and column they number
SEQUENCES = {"batches": ("batches", "id"), "incident_events": ("incident_events", "seq"), "alarm_events": ("alarm_events", "seq")}
DAY_US = 24 * HOUR_US

OBSERVATION_SCHEMA = pa.schema(
    [
        ("datastream_id", pa.int32()),
        ("phenomenon_time", pa.timestamp("us", tz="UTC")),
        ("result", pa.float64()),
        ("batch_id", pa.int64()),
    ]
)
THING_SCHEMA = pa.schema(
    [("id", pa.int32()), ("key", pa.string()), ("name", pa.string()), ("kind", pa.string()), ("lon", pa.float64()),
     ("lat", pa.float64()), ("gu", pa.string()), ("dong", pa.string()), ("simulated", pa.bool_()), ("properties", pa.string())]
)
DATASTREAM_SCHEMA = pa.schema(
    [("id", pa.int32()), ("key", pa.string()), ("thing_id", pa.int32()), ("quantity", pa.string()), ("unit", pa.string()),
     ("name", pa.string()), ("sentinels", pa.list_(pa.float64())), ("interval_s", pa.float64())]
)
QUARANTINE_SCHEMA = pa.schema(
    [
        ("batch_id", pa.int64()),
        ("row_index", pa.int32()),
        ("received_at", pa.timestamp("us", tz="UTC")),
        ("source", pa.string()),
        ("reason", pa.string()),
        ("detail", pa.string()),
        ("datastream", pa.string()),
        ("phenomenon_time", pa.string()),
        ("result", pa.string()),
        ("payload", pa.string()),
    ]
)


class RegistryMoved(RuntimeError):
    """Another process sharing the store registered Things or Datastreams since this one last read
    the registry (PostgreSQL only): reload them (Pipeline.sync_registry) and plan again."""


@dataclass
class Write:
    """Everything one group commit writes, in one transaction."""

    observations: pa.Table  # OBSERVATION_SCHEMA
    quarantine: pa.Table  # QUARANTINE_SCHEMA
    batches: list[tuple[int, int, str, int, int]]  # id, received_at_us, source, accepted, rejected


class EmbeddedStore(SharedReads):
    dialect = "duckdb"
    shared = False  # only this process writes the file
    ConstraintError = duckdb.ConstraintException  # a unique or primary key violated (accounts: "exists already")
    # DuckDB's own memory (buffer cache, sorts, aggregates); beyond it DuckDB spills to disk.
    # With the Python side's 200 MiB or so, this keeps the server under 1 GiB even while it
    # compacts a day of S-DoT-scale data (measured: docs/benchmarks.md).
    MEMORY_LIMIT = "768MB"

    def __init__(self, path: str | Path, *, memory_limit: str = MEMORY_LIMIT) -> None:
        self.path = str(path)
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        # A larger WAL before checkpointing keeps checkpoints off the ingest hot path.
        self.con = duckdb.connect(self.path, config={"memory_limit": memory_limit, "checkpoint_threshold": "256MB"})
        self.con.execute("SET TimeZone = 'UTC'")
        self._local = threading.local()
        self._ids: dict[str, int] = {}  # next id per sequence (take_ids): one process owns the file
        self._ids_lock = threading.Lock()
        self._migrate()

    # -- lifecycle ----------------------------------------------------------------------
    def _migrate(self) -> None:
        migrations.migrate(self.con, "duckdb", where=self.path)

    def close(self) -> None:
        self.con.close()

    def reader(self) -> duckdb.DuckDBPyConnection:
        """A cursor for the calling thread: reads run beside the writer."""
        cur = getattr(self._local, "cursor", None)
        if cur is None:
            cur = self._local.cursor = self.con.cursor()
            cur.execute("SET TimeZone = 'UTC'")
        return cur

    # -- meta ---------------------------------------------------------------------------
    def set_meta(self, key: str, value: str) -> None:
        self.con.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", [key, value])

    # -- registry -----------------------------------------------------------------------
    def save_registry(self, things: list[Thing], datastreams: list[Datastream]) -> None:
        """Insert new Things and Datastreams in one transaction, as Arrow tables (a city registers
        tens of thousands of datastreams at once; row-by-row inserts took tens of seconds)."""
        arrow_things = pa.Table.from_pylist(  # noqa: F841 (read by DuckDB's replacement scan)
            [{"id": t.id, "key": t.key, "name": t.name, "kind": t.kind, "lon": t.lon, "lat": t.lat, "gu": t.gu, "dong": t.dong,
              "simulated": t.simulated, "properties": msgspec.json.encode(t.properties).decode()} for t in things],
            schema=THING_SCHEMA,
        )
        arrow_datastreams = pa.Table.from_pylist(  # noqa: F841
            [{"id": d.id, "key": d.key, "thing_id": d.thing_id, "quantity": d.quantity, "unit": d.unit, "name": d.name,
              "sentinels": d.sentinels, "interval_s": d.interval_s} for d in datastreams],
            schema=DATASTREAM_SCHEMA,
        )
        self.con.execute("BEGIN")
        try:
            if things:
                self.con.execute("INSERT INTO things SELECT * FROM arrow_things")
            if datastreams:
                self.con.execute("INSERT INTO datastreams SELECT * FROM arrow_datastreams")
            self.con.execute("COMMIT")
        except BaseException:
            self.con.execute("ROLLBACK")
            raise

    # -- ingest -------------------------------------------------------------------------
    def take_ids(self, sequence: str, n: int = 1) -> list[int]:
        """Reserve `n` new ids of a sequence ("batches", "incident_events", "alarm_events"): counted in
        memory from the table's maximum, as only this process can open the file."""
        if sequence not in SEQUENCES:
            raise ValueError(f"no id sequence {sequence!r}")
        with self._ids_lock:
            nxt = self._ids.get(sequence)
            if nxt is None:
                table, col = SEQUENCES[sequence]
                nxt = int(self.reader().execute(f"SELECT coalesce(max({col}), 0) + 1 FROM {table}").fetchone()[0])  # type: ignore[index]
            self._ids[sequence] = nxt + n
            return list(range(nxt, nxt + n))

    def lock(self, name: str) -> None:
        """Serialise a read-then-append (the audit chain) against other writers of the store, for the
        current transaction. Nothing to do here: one process, one writer thread."""

    def write(self, w: Write) -> None:
        """Commit one group; when this returns the rows survive a crash of the process."""
        con = self.con
        con.execute("BEGIN")
        try:
            if w.observations.num_rows:
                # Arrow tables are read by DuckDB's replacement scan, by variable name; the
                # names must differ from every table name or the table itself is read.
                arrow_obs = w.observations  # noqa: F841
                con.execute("INSERT INTO observations SELECT * FROM arrow_obs")
            if w.quarantine.num_rows:
                arrow_quarantine = w.quarantine  # noqa: F841
                con.execute("INSERT INTO quarantine SELECT * FROM arrow_quarantine")
            if w.batches:
                con.executemany("INSERT INTO batches VALUES (?, make_timestamptz(?), ?, ?, ?)", w.batches)
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            raise

    def existing(self, ds: np.ndarray, t_us: np.ndarray) -> np.ndarray:
        """Stored results for (datastream, time) keys, NaN where none: the duplicate check for late data."""
        arrow_keys = pa.table({"i": np.arange(len(ds), dtype=np.int64), "ds": ds.astype(np.int32), "t": pa.array(t_us, pa.timestamp("us", tz="UTC"))})  # noqa: F841
        lo, hi = int(t_us.min()), int(t_us.max())
        rows = self.con.execute(
            "SELECT k.i, o.result FROM arrow_keys k JOIN observations o ON o.datastream_id = k.ds AND o.phenomenon_time = k.t "
            "WHERE o.phenomenon_time BETWEEN make_timestamptz(?) AND make_timestamptz(?)",
            [lo, hi],
        ).fetchnumpy()
        out = np.full(len(ds), np.nan)
        out[rows["i"].astype(np.int64)] = rows["result"]
        return out

    def latest(self) -> dict[str, np.ndarray]:
        """The newest observation of every datastream, to rebuild live state after a restart."""
        return self.reader().execute(
            "SELECT datastream_id AS ds, epoch_us(max(phenomenon_time)) AS t, arg_max(result, phenomenon_time) AS v "
            "FROM observations GROUP BY datastream_id"
        ).fetchnumpy()

    # -- history ------------------------------------------------------------------------
    def history(
        self,
        datastreams: list[int],
        start_us: int,
        end_us: int,
        resolution: Resolution = "hour",
        aggregate: Aggregate = "mean",
        timezone: str = "UTC",
    ) -> dict[str, list]:
        """A time series over the datastreams: raw for one datastream, else bucketed and aggregated.

        Buckets before the rollup watermark come from `observations_hourly`, the rest from raw
        rows, so hour and day queries keep working after raw data passes retention.
        """
        if not datastreams:
            return {"t": [], "v": [], "n": []}
        ids = ",".join(str(int(d)) for d in sorted(set(datastreams)))
        cur = self.reader()
        if resolution == "raw":
            rows = cur.execute(
                f"SELECT epoch_ms(phenomenon_time), result, datastream_id FROM observations WHERE datastream_id IN ({ids}) "
                "AND phenomenon_time >= make_timestamptz(?) AND phenomenon_time < make_timestamptz(?) "
                "ORDER BY phenomenon_time, datastream_id",
                [start_us, end_us],
            ).fetchnumpy()
            return {"t": rows["epoch_ms(phenomenon_time)"].tolist(), "v": rows["result"].tolist(), "n": [1] * len(rows["result"])}
        bucket = f"time_bucket(INTERVAL '{BUCKETS[resolution]}', {{col}}, '{_sql_str(timezone)}')"
        start_us, raw_from, hourly_to = self._history_split(resolution, start_us, end_us)
        final = {
            "mean": "sum(s) / sum(n)",
            "min": "min(mn)",
            "max": "max(mx)",
            "last": "arg_max(lv, lt)",
        }[aggregate]
        sql = f"""
        WITH parts AS (
          SELECT {bucket.format(col='phenomenon_time')} AS b, count(*) AS n, sum(result) AS s, min(result) AS mn,
                 max(result) AS mx, max(phenomenon_time) AS lt, arg_max(result, phenomenon_time) AS lv
          FROM observations
          WHERE datastream_id IN ({ids}) AND phenomenon_time >= make_timestamptz(?) AND phenomenon_time < make_timestamptz(?)
          GROUP BY ALL
          UNION ALL
          SELECT {bucket.format(col='hour')} AS b, sum(n), sum(mean * n), min(min), max(max), max(last_time),
                 arg_max(last, last_time)
          FROM observations_hourly
          WHERE datastream_id IN ({ids}) AND hour >= make_timestamptz(?) AND hour < make_timestamptz(?)
          GROUP BY ALL
        )
        SELECT epoch_ms(b) AS t, {final} AS v, sum(n)::BIGINT AS n FROM parts GROUP BY b ORDER BY b
        """
        rows = cur.execute(sql, [raw_from, end_us, start_us, hourly_to]).fetchnumpy()
        return {"t": rows["t"].tolist(), "v": rows["v"].tolist(), "n": rows["n"].tolist()}

    def values_at(self, t_us: int, lookback_us: int) -> dict[str, np.ndarray]:
        """The newest value of every datastream at a past moment (replay), from raw rows within
        `lookback_us` before it, or from hourly rollups where raw rows have passed retention."""
        cur = self.reader()
        if t_us - lookback_us >= int(self.get_meta("raw_from_us") or 0):
            return cur.execute(
                "SELECT datastream_id AS ds, epoch_us(max(phenomenon_time)) AS t, arg_max(result, phenomenon_time) AS v FROM observations "
                "WHERE phenomenon_time <= make_timestamptz(?) AND phenomenon_time > make_timestamptz(?) GROUP BY datastream_id",
                [t_us, t_us - lookback_us],
            ).fetchnumpy()
        return cur.execute(
            "SELECT datastream_id AS ds, epoch_us(max(last_time)) AS t, arg_max(last, last_time) AS v FROM observations_hourly "
            "WHERE last_time <= make_timestamptz(?) AND hour > make_timestamptz(?) GROUP BY datastream_id",
            [t_us, t_us - lookback_us - HOUR_US],
        ).fetchnumpy()

    def hourly_means(self, datastreams: list[int], start_us: int, end_us: int) -> dict[str, list]:
        """Mean per datastream and clock hour from raw rows (start of hour, UTC ms), for indices
        such as the CAI that need each station's recent hourly series rather than a place's."""
        if not datastreams:
            return {"ds": [], "t": [], "v": []}
        ids = ",".join(str(int(d)) for d in sorted(set(datastreams)))
        rows = self.reader().execute(
            f"SELECT datastream_id AS ds, epoch_ms(time_bucket(INTERVAL '1 hour', phenomenon_time)) AS t, avg(result) AS v "
            f"FROM observations WHERE datastream_id IN ({ids}) AND phenomenon_time >= make_timestamptz(?) "
            "AND phenomenon_time < make_timestamptz(?) GROUP BY ALL ORDER BY ds, t",
            [start_us, end_us],
        ).fetchnumpy()
        return {k: rows[k].tolist() for k in ("ds", "t", "v")}

    # -- downsampling and retention (run by the writer thread) --------------------------
    def rollup(self, until_us: int) -> int:
        """Aggregate complete hours before `until_us` into `observations_hourly`; redo late-data hours."""
        until_us -= until_us % HOUR_US
        watermark = int(self.get_meta("rollup_watermark_us") or 0)
        # Rows of batches after the last rollup that fall before its watermark are late data;
        # found in the table (not only in memory) so that a restart does not forget them.
        batch_mark = int(self.get_meta("rollup_batch_mark") or 0)
        con = self.con
        con.execute("BEGIN")
        try:
            dirty_hours_us: set[int] = set()
            if watermark == 0:
                first = con.execute("SELECT epoch_us(min(phenomenon_time)) FROM observations").fetchone()[0]  # type: ignore[index]
                watermark = until_us if first is None else int(first) - int(first) % HOUR_US
            else:
                late = con.execute(
                    "SELECT DISTINCT epoch_us(time_bucket(INTERVAL '1 hour', phenomenon_time)) FROM observations "
                    "WHERE batch_id > ? AND phenomenon_time < make_timestamptz(?)",
                    [batch_mark, watermark],
                ).fetchall()
                dirty_hours_us = {int(r[0]) for r in late}
            new_batch_mark = con.execute("SELECT coalesce(max(batch_id), ?) FROM observations", [batch_mark]).fetchone()[0]  # type: ignore[index]
            redo = sorted(h for h in dirty_hours_us if h < watermark)
            for h in redo:
                con.execute("DELETE FROM observations_hourly WHERE hour = make_timestamptz(?)", [h])
            ranges = [(h, h + HOUR_US) for h in redo]
            # At most a day per statement: after a long stop (or on an imported store) the backlog
            # is rolled up without holding every (datastream, hour) group in memory at once.
            ranges += [(lo, min(lo + DAY_US, until_us)) for lo in range(watermark, until_us, DAY_US)]
            for lo, hi in ranges:
                con.execute(
                    "INSERT INTO observations_hourly SELECT datastream_id, time_bucket(INTERVAL '1 hour', phenomenon_time), "
                    "count(*), avg(result), min(result), max(result), arg_max(result, phenomenon_time), max(phenomenon_time) "
                    "FROM observations WHERE phenomenon_time >= make_timestamptz(?) AND phenomenon_time < make_timestamptz(?) GROUP BY ALL",
                    [lo, hi],
                )
            new_mark = max(watermark, until_us)
            con.execute("INSERT OR REPLACE INTO meta VALUES ('rollup_watermark_us', ?)", [str(new_mark)])
            con.execute("INSERT OR REPLACE INTO meta VALUES ('rollup_batch_mark', ?)", [str(int(new_batch_mark))])
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            raise
        return new_mark

    def compact(self, until_us: int) -> dict[str, int] | None:
        """Rewrite the oldest raw day, or else hour, not yet compacted and ending before `until_us`,
        sorted by datastream; None when there is nothing to do.

        Rows arrive in time order, so every row group holds every datastream and a query for
        one gu or dong must read them all (a week of S-DoT data: 55 million rows). Sorted by
        datastream, each row group holds a narrow band of ids, and DuckDB's zone maps skip
        those outside the ids a query asks for: a few row groups a day when a place's
        datastreams have nearby ids (they are numbered in registration order, which feeds
        follow place by place). Whole days give the best layout; until a day is whole its
        hours are sorted one by one, then the day is sorted again as a whole.
        """
        done_days = max(int(self.get_meta("compacted_until_us") or 0), int(self.get_meta("raw_from_us") or 0))
        done_hours = max(int(self.get_meta("compacted_hours_until_us") or 0), done_days)
        cur = self.con.cursor()
        try:
            cur.execute("SET TimeZone = 'UTC'")
            for span, done in ((DAY_US, done_days), (HOUR_US, done_hours)):
                first = cur.execute(
                    "SELECT epoch_us(min(phenomenon_time)) FROM observations WHERE phenomenon_time >= make_timestamptz(?)", [done]
                ).fetchone()[0]  # type: ignore[index]
                if first is None:
                    return None
                lo = int(first) - int(first) % span
                if lo + span > until_us:
                    continue
                marks = {"compacted_hours_until_us": max(done_hours, lo + span)}
                if span == DAY_US:
                    marks["compacted_until_us"] = lo + span
                return {"from_us": lo, "to_us": lo + span, "rows": self._rewrite_sorted(cur, lo, lo + span, marks)}
            return None
        finally:
            cur.close()

    @staticmethod
    def _rewrite_sorted(cur: duckdb.DuckDBPyConnection, lo: int, hi: int, marks: dict[str, int]) -> int:
        """Rewrite [lo, hi) sorted by datastream, in one transaction, on a cursor of its own.

        Runs beside the writer: readers see the range either before or after, and rows the
        writer commits meanwhile (late data) are outside this transaction's view and stay.
        """
        window = "phenomenon_time >= make_timestamptz(?) AND phenomenon_time < make_timestamptz(?)"
        cur.execute("BEGIN")
        try:
            # Copy sorted, then delete the originals: the rows this transaction inserts are not
            # numbered after every stored row until it commits, so `rowid < before` keeps them. No
            # temporary copy of the range is held in memory.
            before = cur.execute("SELECT coalesce(max(rowid), -1) + 1 FROM observations").fetchone()[0]  # type: ignore[index]
            rows = cur.execute(
                f"INSERT INTO observations SELECT * FROM observations WHERE {window} ORDER BY datastream_id, phenomenon_time", [lo, hi]
            ).fetchone()[0]  # type: ignore[index]
            deleted = cur.execute(f"DELETE FROM observations WHERE {window} AND rowid < ?", [lo, hi, before]).fetchone()[0]  # type: ignore[index]
            if deleted != rows:
                raise RuntimeError(f"compaction of {lo}..{hi} copied {rows} rows but would delete {deleted}; nothing changed")
            for key, value in marks.items():
                cur.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", [key, str(value)])
            cur.execute("COMMIT")
        except BaseException:
            cur.execute("ROLLBACK")
            raise
        return int(rows)

    def retain(self, raw_before_us: int, hourly_before_us: int | None) -> dict[str, int]:
        """Delete raw rows already rolled up and older than the window; optionally old hourly rows."""
        watermark = int(self.get_meta("rollup_watermark_us") or 0)
        # Whole hours only: a late row into a partly deleted hour would re-roll it from what is left.
        cut = min(raw_before_us - raw_before_us % HOUR_US, watermark)
        deleted = {"observations": 0, "observations_hourly": 0, "quarantine": 0}
        deleted["observations"] = self.con.execute(
            "DELETE FROM observations WHERE phenomenon_time < make_timestamptz(?)", [cut]
        ).fetchone()[0]  # type: ignore[index]
        # Refused input is kept as long as raw data: long enough to trace a sensor, not for ever.
        deleted["quarantine"] = self.con.execute(
            "DELETE FROM quarantine WHERE received_at < make_timestamptz(?)", [raw_before_us]
        ).fetchone()[0]  # type: ignore[index]
        # From here on, rows before the cut are refused: their hour can no longer be re-rolled.
        if cut > int(self.get_meta("raw_from_us") or 0):
            self.set_meta("raw_from_us", str(cut))
        if hourly_before_us is not None:
            deleted["observations_hourly"] = self.con.execute(
                "DELETE FROM observations_hourly WHERE hour < make_timestamptz(?)", [hourly_before_us]
            ).fetchone()[0]  # type: ignore[index]
        return deleted


def atomic(store: EmbeddedStore, fn: Callable[[], T]) -> T:
    """Run `fn` in one transaction on the writer connection (on the writer thread), so that what it
    writes (an action and its audit row, an incident event) is stored together or not at all. `fn`
    must not open a transaction of its own."""
    con = store.con
    con.execute("BEGIN")
    try:
        result = fn()
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise
    return result


def _sql_str(s: str) -> str:
    if not all(c.isalnum() or c in "/_+-" for c in s):
        raise ValueError(f"bad time zone name {s!r}")
    return s

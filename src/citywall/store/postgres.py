"""The PostgreSQL store: the same methods as EmbeddedStore, for several server processes sharing
one database (`citywall up --db postgresql://...`).

What differs from DuckDB, and why:
- Observations are written with a binary COPY built from the Arrow columns with numpy (no Python
  loop per row), inside the group commit's transaction.
- Ids that several processes take (batches, incident and alarm events) come from sequences; the
  audit chain and the rollup take advisory locks, so two processes never interleave them.
- A datastream's rows are found by a B-tree index on (datastream_id, phenomenon_time), so there is
  nothing to compact (`compact` returns None): DuckDB's sort-by-datastream rewrite is its own layout trick.
- `con` and `reader()` are small adapters with DuckDB's calling convention (`?` placeholders,
  `execute(...).fetchone()`, a row count from DELETE/UPDATE), and the schema defines DuckDB's
  `make_timestamptz(µs)`, `epoch_us` and `epoch_ms`, so the SQL of accounts, audit and event tables
  runs unchanged on both stores.
- A connection lost (database restart) is reopened on next use (a read is asked again at once),
  except inside a transaction, which fails as a whole: nothing is acknowledged that was not committed.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import msgspec
import numpy as np
import psycopg
import psycopg.errors
from psycopg.conninfo import conninfo_to_dict
from psycopg.pq import TransactionStatus

from citywall.observations.model import Datastream, Thing
from citywall.observations.registry import RegistryError
from citywall.store import migrations, redact_url
from citywall.store.reads import SharedReads
from citywall.store.embedded import BUCKETS, DAY_US, HOUR_US, SEQUENCES, Aggregate, RegistryMoved, Resolution, Write, _sql_str

log = logging.getLogger(__name__)
T = TypeVar("T")

CONNECT_TIMEOUT_S = 5  # a request during an outage fails after this long instead of hanging
# Connections for reads, shared by the threads of a process (the web server's thread pool has 40): a
# thread per connection would let two processes use up PostgreSQL's default max_connections (100).
# psycopg serialises statements on a connection; results are fetched whole, so sharing is safe.
READERS = 4
RECONNECT_PAUSE_S = 1.0  # after a failed connect, callers get its error at once for this long (no new attempt)
PG_EPOCH_US = 946_684_800_000_000  # 2000-01-01, PostgreSQL's timestamp origin, in Unix µs
COPY_HEADER = b"PGCOPY\n\xff\r\n\x00" + b"\x00\x00\x00\x00" + b"\x00\x00\x00\x00"
COPY_TRAILER = b"\xff\xff"
# One observation row in PostgreSQL's binary COPY format: field count, then (length, value) per column.
COPY_ROW = np.dtype([("nf", ">i2"), ("l_ds", ">i4"), ("ds", ">i4"), ("l_t", ">i4"), ("t", ">i8"),
                     ("l_v", ">i4"), ("v", ">f8"), ("l_b", ">i4"), ("b", ">i8")])
# Advisory lock keys (pg_advisory_xact_lock): one per read-then-write that must not interleave.
LOCKS = {"audit_log": 0x63_77_61_75, "rollup": 0x63_77_72_6C, "registry": 0x63_77_72_67, "bootstrap": 0x63_77_62_73}
SEQUENCE_NAMES = {"batches": "batch_id_seq", "incident_events": "incident_events_seq", "alarm_events": "alarm_events_seq"}
assert set(SEQUENCE_NAMES) == set(SEQUENCES)
BUCKET_UNITS = {"minute": "minute", "hour": "hour", "day": "day"}
assert set(BUCKET_UNITS) == set(BUCKETS)


_translated: dict[str, str] = {}


def translate(sql: str) -> str:
    """DuckDB's `?` placeholders to psycopg's `%s` (and a literal `%` to `%%`), outside quoted strings."""
    out = _translated.get(sql)
    if out is None:
        parts = re.split(r"('(?:[^']|'')*')", sql)
        out = "".join(p if i % 2 else p.replace("%", "%%").replace("?", "%s") for i, p in enumerate(parts))
        if len(_translated) < 10_000:
            _translated[sql] = out
    return out


class Cursor:
    """A psycopg cursor read the DuckDB way: a statement without a result set (INSERT, UPDATE,
    DELETE) answers one row holding the number of rows it changed, as DuckDB does."""

    def __init__(self, cur: psycopg.Cursor) -> None:
        self._cur = cur

    @property
    def rowcount(self) -> int:
        return self._cur.rowcount

    @property
    def description(self) -> Any:
        return self._cur.description

    def fetchone(self) -> tuple | None:
        if self._cur.description is None:
            return (self._cur.rowcount,)
        return self._cur.fetchone()

    def fetchall(self) -> list[tuple]:
        if self._cur.description is None:
            return [(self._cur.rowcount,)]
        return self._cur.fetchall()

    def fetchmany(self, size: int) -> list[tuple]:
        return self._cur.fetchmany(size)

    def close(self) -> None:
        self._cur.close()


class _Nothing:
    """The answer of a statement that did not reach the server (a ROLLBACK on a lost connection)."""

    rowcount = 0
    description = None

    def fetchone(self) -> tuple:
        return (0,)

    def fetchall(self) -> list[tuple]:
        return [(0,)]


NOTHING = _Nothing()


class Connection:
    """One PostgreSQL connection used the way the stores use DuckDB's: autocommit, with transactions
    opened and closed by `BEGIN`/`COMMIT`/`ROLLBACK` statements.

    A broken connection (the server restarted) is replaced on next use, unless a transaction was open
    on it: then every statement until its ROLLBACK fails, so no part of the transaction is written
    outside it.
    """

    def __init__(self, url: str) -> None:
        self.url = url
        self._raw: psycopg.Connection | None = None
        self._in_tx = False
        self._lock = threading.RLock()
        self._failed: tuple[str | None, float] = (None, 0.0)  # the last failed connect's error, until when it stands

    def raw(self) -> psycopg.Connection:
        raw = self._raw
        if raw is None or raw.closed or raw.broken:
            if self._in_tx:
                raise psycopg.OperationalError("the database connection was lost inside a transaction; nothing of it was stored")
            if raw is not None:
                if not raw.closed:
                    log.warning("database connection lost; reconnecting")
                raw.close()
            # While the database is away, a failed connect is answered again for RECONNECT_PAUSE_S without
            # a new attempt: an unreachable host would otherwise hold every caller for CONNECT_TIMEOUT_S.
            failed, until = self._failed
            if failed is not None and time.monotonic() < until:
                raise psycopg.OperationalError(failed)
            # Times are computed in UTC (as in DuckDB); options given in the URL (a search_path) are kept.
            options = (conninfo_to_dict(self.url).get("options") or "") + " -c TimeZone=UTC"
            try:
                self._raw = raw = psycopg.connect(self.url, autocommit=True, connect_timeout=CONNECT_TIMEOUT_S, options=options.strip())
            except psycopg.OperationalError as exc:
                self._failed = (str(exc), time.monotonic() + RECONNECT_PAUSE_S)
                raise
            self._failed = (None, 0.0)
        return raw

    def execute(self, sql: str, params: Sequence[Any] | None = None) -> Cursor:
        word = sql.strip().upper()
        with self._lock:
            if word == "ROLLBACK":
                # Never fails: a transaction on a lost connection was dropped by the server with it,
                # and the error that led here is the one the caller must see.
                self._in_tx = False
                raw = self._raw
                if raw is not None and not raw.closed and not raw.broken:
                    try:
                        return Cursor(raw.execute(sql))
                    except psycopg.OperationalError:
                        pass
                return NOTHING  # type: ignore[return-value]
            if word == "COMMIT":
                try:
                    raw = self.raw()
                    # PostgreSQL answers COMMIT of a transaction in which a statement failed with a silent
                    # ROLLBACK: an error caught and passed over inside it must not read as stored.
                    if raw.info.transaction_status == TransactionStatus.INERROR:
                        raw.execute("ROLLBACK")
                        raise psycopg.errors.InFailedSqlTransaction("a statement of the transaction failed; it was rolled back, nothing of it was stored")
                    cur = raw.execute(sql)
                    if cur.statusmessage != "COMMIT":
                        raise psycopg.errors.InFailedSqlTransaction(f"the transaction was not committed (the server answered {cur.statusmessage})")
                    return Cursor(cur)
                finally:
                    self._in_tx = False
            query = translate(sql) if params is not None else sql
            try:
                cur = self.raw().execute(query, params)
            except psycopg.OperationalError:
                # A read, or the BEGIN of a transaction, outside a transaction on a connection the server
                # dropped (it restarted since the last use) is asked again on a new one, so the first
                # request after a restart does not fail; a write is not, as it may have been done before
                # the connection broke.
                if self._in_tx or not (self._raw is not None and self._raw.broken) or not (word == "BEGIN" or word.startswith(("SELECT", "WITH"))):
                    raise
                cur = self.raw().execute(query, params)
            if word == "BEGIN":
                self._in_tx = True
            return Cursor(cur)

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        with self._lock:
            with self.raw().cursor() as cur:
                cur.executemany(translate(sql), rows)

    def cursor(self) -> OwnCursor:
        """A cursor on a connection of its own (a long read, such as the audit chain's verification,
        never shares this connection's transaction)."""
        return OwnCursor(self.url)

    @property
    def in_transaction(self) -> bool:
        return self._in_tx

    def close(self) -> None:
        if self._raw is not None:
            self._raw.close()


class OwnCursor:
    def __init__(self, url: str) -> None:
        self._con = Connection(url)
        self._cur: Cursor | None = None

    def execute(self, sql: str, params: Sequence[Any] | None = None) -> OwnCursor:
        self._cur = self._con.execute(sql, params)
        return self

    def fetchone(self) -> tuple | None:
        return self._cur.fetchone() if self._cur else None

    def fetchall(self) -> list[tuple]:
        return self._cur.fetchall() if self._cur else []

    def fetchmany(self, size: int) -> list[tuple]:
        return self._cur.fetchmany(size) if self._cur else []

    def close(self) -> None:
        self._con.close()


class PostgresStore(SharedReads):
    dialect = "postgresql"
    shared = True  # other processes may write the same database (the pipeline then checks every row for duplicates)
    ConstraintError = psycopg.errors.IntegrityError  # a unique or primary key violated (accounts: "exists already")

    def __init__(self, url: str) -> None:
        self.url = url
        self.path = redact_url(url)  # what logs and errors may show
        self.con = Connection(url)  # the writer's (the pipeline's writer thread)
        self._local = threading.local()
        self._readers = [Connection(url) for _ in range(READERS)]  # each connects on first use
        self._ids = Connection(url)  # take_ids only: short statements, never queued behind a long read
        self._readers_lock = threading.Lock()
        self._next_reader = 0
        try:
            self.con.raw()
        except psycopg.OperationalError as exc:
            raise ConnectionError(f"cannot connect to the PostgreSQL store {self.path}: {exc}".strip()) from None
        migrations.migrate(self.con, "postgresql", where=self.path)

    # -- lifecycle ----------------------------------------------------------------------
    def close(self) -> None:
        self.con.close()
        self._ids.close()
        for r in self._readers:
            r.close()

    def reader(self) -> Connection:
        """A connection for reads beside the writer: one of READERS, given to threads in turn, so a
        process holds at most 2 + READERS connections (writer, ids, readers; and one more while the audit
        chain is verified). Never used for a transaction."""
        i = getattr(self._local, "reader", None)
        if i is None:
            with self._readers_lock:
                i = self._local.reader = self._next_reader % READERS
                self._next_reader += 1
        return self._readers[i]

    def lock(self, name: str) -> None:
        """Within the current transaction, wait until no other process holds `name` (released at commit).
        Outside a transaction the lock would be released at once and guard nothing: that is an error."""
        if not self.con.in_transaction:
            raise RuntimeError(f"store lock {name!r} taken outside a transaction (run the caller inside atomic())")
        self.con.execute("SELECT pg_advisory_xact_lock(?)", [LOCKS[name]])

    def take_ids(self, sequence: str, n: int = 1) -> list[int]:
        """Reserve `n` new ids of a sequence; unique across every process writing this database."""
        if sequence not in SEQUENCE_NAMES:
            raise ValueError(f"no id sequence {sequence!r}")
        # On a connection of its own: a sequence is outside transactions anyway, the writer's may be in
        # one that is failing, and a reader's may be busy with a long history query (ingest would wait).
        rows = self._ids.execute("SELECT nextval(?) FROM generate_series(1, ?)", [SEQUENCE_NAMES[sequence], n]).fetchall()
        return [int(r[0]) for r in rows]

    def _transaction(self, fn: Callable[[], T]) -> T:
        self.con.execute("BEGIN")
        try:
            out = fn()
            self.con.execute("COMMIT")
        except BaseException:
            self.con.execute("ROLLBACK")
            raise
        return out

    # -- meta ---------------------------------------------------------------------------
    def set_meta(self, key: str, value: str) -> None:
        self.con.execute("INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value", [key, value])

    def _meta_in_tx(self, key: str) -> str | None:
        row = self.con.execute("SELECT value FROM meta WHERE key = ?", [key]).fetchone()
        return row[0] if row else None

    # -- registry -----------------------------------------------------------------------
    def save_registry(self, things: list[Thing], datastreams: list[Datastream]) -> None:
        """Insert new Things and Datastreams in one transaction. Their ids were planned from this
        process's registry; under a lock, if another process stored higher ids (or the same keys)
        meanwhile, nothing is written and RegistryMoved says to reload and plan again."""
        if not things and not datastreams:
            return
        for x in [*things, *datastreams]:  # TEXT cannot hold NUL (DuckDB's VARCHAR can): say so, not a server error
            for field in ("key", "name", "kind", "gu", "dong", "quantity", "unit"):
                if "\x00" in (getattr(x, field, None) or ""):
                    raise RegistryError(f"{type(x).__name__} {x.key!r}: its {field} holds a NUL character, which PostgreSQL cannot store")

        def run() -> None:
            self.lock("registry")
            for table, items in (("things", things), ("datastreams", datastreams)):
                if not items:
                    continue
                lowest = min(x.id for x in items)
                keys = [x.key for x in items]
                clash = self.con.execute(f"SELECT count(*) FROM {table} WHERE id >= ? OR key = ANY(?)", [lowest, keys]).fetchone()[0]  # type: ignore[index]
                if clash:
                    raise RegistryMoved(f"another process registered {table} meanwhile")
            raw = self.con.raw()
            with raw.cursor() as cur:
                if things:
                    with cur.copy("COPY things (id, key, name, kind, lon, lat, gu, dong, simulated, properties) FROM STDIN") as cp:
                        for t in things:
                            cp.write_row((t.id, t.key, t.name, t.kind, t.lon, t.lat, t.gu, t.dong, t.simulated,
                                          msgspec.json.encode(t.properties).decode()))
                if datastreams:
                    with cur.copy("COPY datastreams (id, key, thing_id, quantity, unit, name, sentinels, interval_s) FROM STDIN") as cp:
                        for d in datastreams:
                            cp.write_row((d.id, d.key, d.thing_id, d.quantity, d.unit, d.name, [float(x) for x in d.sentinels], d.interval_s))

        self._transaction(run)

    # -- ingest -------------------------------------------------------------------------
    def write(self, w: Write) -> None:
        """Commit one group; when this returns the rows survive a crash of the process or the server."""

        def run() -> None:
            if w.observations.num_rows:
                self._mark_late_hours(w.observations)
            raw = self.con.raw()
            with raw.cursor() as cur:
                if w.observations.num_rows:
                    with cur.copy("COPY observations (datastream_id, phenomenon_time, result, batch_id) FROM STDIN (FORMAT BINARY)") as cp:
                        cp.write(copy_observations(w.observations))
                if w.quarantine.num_rows:
                    cols = w.quarantine.column_names
                    with cur.copy(f"COPY quarantine ({', '.join(cols)}) FROM STDIN") as cp:
                        for row in w.quarantine.to_pylist():
                            cp.write_row(tuple(_text(row[c]) for c in cols))
            if w.batches:
                self.con.executemany("INSERT INTO batches VALUES (?, make_timestamptz(?), ?, ?, ?)",
                                     [(b, t, _text(source), a, r) for b, t, source, a, r in w.batches])

        self._transaction(run)

    def _mark_late_hours(self, observations: Any) -> None:
        """In the write's transaction: hold the rollup lock shared (a rollup in another process waits for
        this commit, and this commit for a running rollup), and record the hours before the rollup
        watermark that these rows fall in, so the next rollup redoes them (rollup_pending)."""
        row = self.con.execute("SELECT pg_advisory_xact_lock_shared(?), (SELECT value FROM meta WHERE key = 'rollup_watermark_us')",
                               [LOCKS["rollup"]]).fetchone()
        watermark = int(row[1] or 0) if row else 0  # type: ignore[index]
        if not watermark:
            return
        t = observations.column("phenomenon_time").to_numpy().astype("datetime64[us]").astype(np.int64)
        late = t[t < watermark]
        if len(late):
            hours = np.unique(late - late % HOUR_US).tolist()
            self.con.execute("INSERT INTO rollup_pending SELECT make_timestamptz(h) FROM unnest(?::int8[]) AS h ON CONFLICT DO NOTHING", [hours])

    def existing(self, ds: np.ndarray, t_us: np.ndarray) -> np.ndarray:
        """Stored results for (datastream, time) keys, NaN where none: the duplicate check.

        One index probe per key (LATERAL ... LIMIT 1): as a join, the planner hashes the whole
        observations table for a few thousand keys, a cost that grows with everything ever stored."""
        rows = self.con.execute(
            "SELECT k.i, o.result FROM unnest(?::int4[], ?::int8[]) WITH ORDINALITY AS k(ds, t, i) CROSS JOIN LATERAL "
            "(SELECT result FROM observations WHERE datastream_id = k.ds AND phenomenon_time = make_timestamptz(k.t) LIMIT 1) o",
            [ds.astype(np.int64).tolist(), t_us.astype(np.int64).tolist()],
        ).fetchall()
        out = np.full(len(ds), np.nan)
        for i, v in rows:
            out[int(i) - 1] = v
        return out

    def latest(self) -> dict[str, np.ndarray]:
        """The newest observation of every datastream, to rebuild live state after a restart (and after a
        live broker reconnects): one index probe per datastream, not a scan of every stored row."""
        return _numpy(self.reader().execute(
            "SELECT d.id, epoch_us(o.phenomenon_time), o.result FROM datastreams d CROSS JOIN LATERAL "
            "(SELECT phenomenon_time, result FROM observations WHERE datastream_id = d.id ORDER BY phenomenon_time DESC LIMIT 1) o "
            "ORDER BY d.id").fetchall())

    # -- history ------------------------------------------------------------------------
    def history(self, datastreams: list[int], start_us: int, end_us: int, resolution: Resolution = "hour",
                aggregate: Aggregate = "mean", timezone: str = "UTC") -> dict[str, list]:
        """As EmbeddedStore.history: raw rows, or buckets from raw rows after the rollup watermark and
        from `observations_hourly` before it."""
        if not datastreams:
            return {"t": [], "v": [], "n": []}
        ids = ",".join(str(int(d)) for d in sorted(set(datastreams)))
        cur = self.reader()
        if resolution == "raw":
            rows = cur.execute(
                f"SELECT epoch_ms(phenomenon_time), result FROM observations WHERE datastream_id IN ({ids}) "
                "AND phenomenon_time >= make_timestamptz(?) AND phenomenon_time < make_timestamptz(?) ORDER BY phenomenon_time, datastream_id",
                [start_us, end_us],
            ).fetchall()
            return {"t": [int(r[0]) for r in rows], "v": [float(r[1]) for r in rows], "n": [1] * len(rows)}
        bucket = f"date_trunc('{BUCKET_UNITS[resolution]}', {{col}}, '{_sql_str(timezone)}')"
        start_us, raw_from, hourly_to = self._history_split(resolution, start_us, end_us)
        final = {"mean": "sum(s) / sum(n)::DOUBLE PRECISION", "min": "min(mn)", "max": "max(mx)",
                 "last": "(array_agg(lv ORDER BY lt DESC))[1]"}[aggregate]
        sql = f"""
        WITH parts AS (
          SELECT {bucket.format(col='phenomenon_time')} AS b, count(*) AS n, sum(result) AS s, min(result) AS mn,
                 max(result) AS mx, max(phenomenon_time) AS lt, (array_agg(result ORDER BY phenomenon_time DESC))[1] AS lv
          FROM observations
          WHERE datastream_id IN ({ids}) AND phenomenon_time >= make_timestamptz(?) AND phenomenon_time < make_timestamptz(?)
          GROUP BY 1
          UNION ALL
          SELECT {bucket.format(col='hour')} AS b, sum(n)::BIGINT, sum(mean * n), min(min), max(max), max(last_time),
                 (array_agg(last ORDER BY last_time DESC))[1]
          FROM observations_hourly
          WHERE datastream_id IN ({ids}) AND hour >= make_timestamptz(?) AND hour < make_timestamptz(?)
          GROUP BY 1
        )
        SELECT epoch_ms(b) AS t, {final} AS v, sum(n)::BIGINT AS n FROM parts GROUP BY b ORDER BY b
        """
        rows = cur.execute(sql, [raw_from, end_us, start_us, hourly_to]).fetchall()
        return {"t": [int(r[0]) for r in rows], "v": [float(r[1]) for r in rows], "n": [int(r[2]) for r in rows]}

    def values_at(self, t_us: int, lookback_us: int) -> dict[str, np.ndarray]:
        """The newest value of every datastream at a past moment (replay): raw rows, or hourly rollups
        where raw rows have passed retention."""
        cur = self.reader()
        if t_us - lookback_us >= int(self.get_meta("raw_from_us") or 0):
            return _numpy(cur.execute(
                "SELECT DISTINCT ON (datastream_id) datastream_id, epoch_us(phenomenon_time), result FROM observations "
                "WHERE phenomenon_time <= make_timestamptz(?) AND phenomenon_time > make_timestamptz(?) "
                "ORDER BY datastream_id, phenomenon_time DESC", [t_us, t_us - lookback_us]).fetchall())
        return _numpy(cur.execute(
            "SELECT DISTINCT ON (datastream_id) datastream_id, epoch_us(last_time), last FROM observations_hourly "
            "WHERE last_time <= make_timestamptz(?) AND hour > make_timestamptz(?) ORDER BY datastream_id, last_time DESC",
            [t_us, t_us - lookback_us - HOUR_US]).fetchall())

    def hourly_means(self, datastreams: list[int], start_us: int, end_us: int) -> dict[str, list]:
        """Mean per datastream and clock hour from raw rows (start of hour, UTC ms)."""
        if not datastreams:
            return {"ds": [], "t": [], "v": []}
        ids = ",".join(str(int(d)) for d in sorted(set(datastreams)))
        rows = self.reader().execute(
            f"SELECT datastream_id, epoch_ms(date_trunc('hour', phenomenon_time)), avg(result) FROM observations "
            f"WHERE datastream_id IN ({ids}) AND phenomenon_time >= make_timestamptz(?) AND phenomenon_time < make_timestamptz(?) "
            "GROUP BY 1, 2 ORDER BY 1, 2", [start_us, end_us]).fetchall()
        return {"ds": [int(r[0]) for r in rows], "t": [int(r[1]) for r in rows], "v": [float(r[2]) for r in rows]}

    # -- downsampling and retention -----------------------------------------------------
    def rollup(self, until_us: int) -> int:
        """As EmbeddedStore.rollup, for several processes: under the rollup lock held exclusively (no
        write of any process is between its start and its commit), complete hours after the watermark
        are rolled up, and the hours that commits marked in `rollup_pending` (late rows) are redone.
        A pending hour whose raw rows retention has already deleted (a process that had not yet heard
        of the new `raw_from_us` accepted a row for it) is merged into its hourly rows, not rebuilt
        from the late rows alone."""
        until_us -= until_us % HOUR_US
        con = self.con

        def run() -> int:
            self.lock("rollup")
            watermark = int(self._meta_in_tx("rollup_watermark_us") or 0)
            raw_from = int(self._meta_in_tx("raw_from_us") or 0)
            dirty: list[int] = []
            if watermark == 0:
                first = con.execute("SELECT epoch_us(min(phenomenon_time)) FROM observations").fetchone()[0]  # type: ignore[index]
                watermark = until_us if first is None else int(first) - int(first) % HOUR_US
            else:
                dirty = sorted(int(r[0]) for r in con.execute("SELECT epoch_us(hour) FROM rollup_pending").fetchall())
            con.execute("DELETE FROM rollup_pending")
            parts = ("SELECT datastream_id, date_trunc('hour', phenomenon_time) AS hour, count(*) AS n, sum(result) AS s, min(result) AS mn, "
                     "max(result) AS mx, (array_agg(result ORDER BY phenomenon_time DESC))[1] AS lv, max(phenomenon_time) AS lt "
                     "FROM observations WHERE phenomenon_time >= make_timestamptz(?) AND phenomenon_time < make_timestamptz(?) GROUP BY 1, 2")
            for h in (h for h in dirty if h < watermark):
                if h < raw_from:  # only the late rows are left in raw: add them to what the hour had
                    con.execute(
                        "WITH old AS (DELETE FROM observations_hourly WHERE hour = make_timestamptz(?) RETURNING datastream_id, hour, n, "
                        f"mean * n AS s, min AS mn, max AS mx, last AS lv, last_time AS lt), late AS ({parts}), both_ AS "
                        "(SELECT * FROM old UNION ALL SELECT * FROM late) "
                        "INSERT INTO observations_hourly SELECT datastream_id, hour, sum(n), sum(s) / sum(n)::DOUBLE PRECISION, min(mn), "
                        "max(mx), (array_agg(lv ORDER BY lt DESC))[1], max(lt) FROM both_ GROUP BY 1, 2",
                        [h, h, h + HOUR_US])
                else:
                    con.execute("DELETE FROM observations_hourly WHERE hour = make_timestamptz(?)", [h])
                    con.execute(f"INSERT INTO observations_hourly SELECT datastream_id, hour, n, s / n::DOUBLE PRECISION, mn, mx, lv, lt FROM ({parts}) p",
                                [h, h + HOUR_US])
            for lo in range(watermark, until_us, DAY_US):
                con.execute(f"INSERT INTO observations_hourly SELECT datastream_id, hour, n, s / n::DOUBLE PRECISION, mn, mx, lv, lt FROM ({parts}) p",
                            [lo, min(lo + DAY_US, until_us)])
            new_mark = max(watermark, until_us)
            self.set_meta("rollup_watermark_us", str(new_mark))
            return new_mark

        return self._transaction(run)

    def compact(self, until_us: int) -> dict[str, int] | None:
        """Nothing to do: PostgreSQL finds a datastream's rows by index, not by their physical order."""
        return None

    def retain(self, raw_before_us: int, hourly_before_us: int | None) -> dict[str, int]:
        """Delete raw rows already rolled up and older than the window; optionally old hourly rows."""

        def run() -> dict[str, int]:
            self.lock("rollup")
            watermark = int(self._meta_in_tx("rollup_watermark_us") or 0)
            cut = min(raw_before_us - raw_before_us % HOUR_US, watermark)
            deleted = {"observations": 0, "observations_hourly": 0, "quarantine": 0}
            # Rows of hours a rollup has still to redo (late rows committed since the last one) stay until it has.
            deleted["observations"] = self.con.execute(
                "DELETE FROM observations WHERE phenomenon_time < make_timestamptz(?) "
                "AND date_trunc('hour', phenomenon_time) NOT IN (SELECT hour FROM rollup_pending)", [cut]).rowcount
            deleted["quarantine"] = self.con.execute("DELETE FROM quarantine WHERE received_at < make_timestamptz(?)", [raw_before_us]).rowcount
            if cut > int(self._meta_in_tx("raw_from_us") or 0):
                self.set_meta("raw_from_us", str(cut))
            if hourly_before_us is not None:
                deleted["observations_hourly"] = self.con.execute(
                    "DELETE FROM observations_hourly WHERE hour < make_timestamptz(?)", [hourly_before_us]).rowcount
            return deleted

        return self._transaction(run)


def copy_observations(table: Any) -> bytes:
    """An OBSERVATION_SCHEMA Arrow table as a PostgreSQL binary COPY stream, built with numpy."""
    n = table.num_rows
    rows = np.empty(n, COPY_ROW)
    rows["nf"], rows["l_ds"], rows["l_t"], rows["l_v"], rows["l_b"] = 4, 4, 8, 8, 8
    rows["ds"] = table.column("datastream_id").to_numpy()
    rows["t"] = table.column("phenomenon_time").to_numpy().astype("datetime64[us]").astype(np.int64) - PG_EPOCH_US
    rows["v"] = table.column("result").to_numpy()
    rows["b"] = table.column("batch_id").to_numpy()
    return COPY_HEADER + rows.tobytes() + COPY_TRAILER


def _text(value: Any) -> Any:
    """A string PostgreSQL can store: TEXT cannot hold NUL, which DuckDB's VARCHAR can. Refused input
    must be kept whatever it holds (and one sender's NUL must not fail the group commit of others),
    so a NUL is written as the six characters `\\u0000`, its JSON escape."""
    return value.replace("\x00", "\\u0000") if isinstance(value, str) and "\x00" in value else value


def _numpy(rows: list[tuple]) -> dict[str, np.ndarray]:
    return {
        "ds": np.array([r[0] for r in rows], dtype=np.int64),
        "t": np.array([r[1] for r in rows], dtype=np.int64),
        "v": np.array([r[2] for r in rows], dtype=np.float64),
    }

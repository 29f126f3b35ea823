"""One storage suite, run on both stores: the DuckDB file and the real PostgreSQL on 127.0.0.1:5432.

Every public store method, the SQL that accounts, audit and event tables run through `con`/`reader()`,
versioned migrations (an old store is brought up to date), and what only matters when several
processes share a PostgreSQL store (ids, the audit chain, registration). Each PostgreSQL test gets a
database of its own, dropped afterwards.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path

import duckdb
import numpy as np
import psycopg
import pyarrow as pa
import pytest

from conftest import CITY_HALL, COEX, FIXED_NOW_US, MYEONGDONG, obs, post, register, running, stored
from pgtools import fresh_database

from citywall.auth import Accounts, AuditLog, Conflict, atomic
from citywall.observations.model import Datastream, Thing
from citywall.store import StoreUnavailable, migrations, open_store, redact_url
from citywall.store.embedded import OBSERVATION_SCHEMA, QUARANTINE_SCHEMA, SCHEMA_VERSION, RegistryMoved, Write
from citywall.store.events import EventTable

US = 1_000_000
HOUR = 3600 * US
DAY = 24 * HOUR


def utc(*args: int) -> int:
    return int(datetime(*args, tzinfo=timezone.utc).timestamp()) * US


@pytest.fixture(params=["duckdb", "postgresql"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """The `--db` value of an empty store of each kind."""
    if request.param == "duckdb":
        yield str(tmp_path / "s.duckdb")
    else:
        with fresh_database() as url:
            yield url


@pytest.fixture
def store(backend: str):  # noqa: ANN201
    s = open_store(backend)
    yield s
    s.close()


def things_and_streams(n_things: int = 2) -> tuple[list[Thing], list[Datastream]]:
    things = [Thing(i, f"t{i}", f"Thing {i}", "air_station", 126.97 + i / 100, 37.56, "11140", "11140530", False, {"n": i, "ko": "중구"})
              for i in range(1, n_things + 1)]
    streams = [Datastream(i, f"t{i}:pm10", i, "pm10", "µg/m³", f"Thing {i} PM10", [-999.0, 9999.0] if i == 1 else [], 3600.0)
               for i in range(1, n_things + 1)]
    return things, streams


def observations(rows: list[tuple[int, int, float, int]]) -> pa.Table:
    ds, t, v, b = (list(c) for c in zip(*rows)) if rows else ([], [], [], [])
    return pa.Table.from_arrays([pa.array(ds, pa.int32()), pa.array(t, pa.timestamp("us", tz="UTC")), pa.array(v, pa.float64()),
                                 pa.array(b, pa.int64())], schema=OBSERVATION_SCHEMA)


def write(store, rows: list[tuple[int, int, float]], *, received_us: int = FIXED_NOW_US, quarantine: list[dict] | None = None,  # noqa: ANN001
          batch: int | None = None) -> int:
    """Commit rows (and quarantined rows) as one batch: a new batch id, or the one given (taken earlier)."""
    batch = store.take_ids("batches", 1)[0] if batch is None else batch
    q = [{"batch_id": batch, "row_index": i, "received_at": received_us, "source": "tests", "datastream": None, "phenomenon_time": None,
          "result": None, "payload": None, **r} for i, r in enumerate(quarantine or [])]
    store.write(Write(observations([(d, t, v, batch) for d, t, v in rows]),
                      pa.Table.from_pylist(q, schema=QUARANTINE_SCHEMA) if q else QUARANTINE_SCHEMA.empty_table(),
                      [(batch, received_us, "tests", len(rows), len(q))]))
    return batch


H10 = utc(2025, 6, 14, 10)
H11 = utc(2025, 6, 14, 11)


# -- migrations -------------------------------------------------------------------------
def test_a_new_store_has_the_newest_schema_version(store) -> None:  # noqa: ANN001
    assert store.get_meta("schema_version") == str(migrations.latest(store.dialect))
    # Versions count per dialect: PostgreSQL's 3 (rollup_pending) is what several processes need.
    assert SCHEMA_VERSION == migrations.latest("duckdb") == 2 and migrations.latest("postgresql") == 3


def _old_store(backend: str) -> None:
    """A store as citywall wrote it before operations existed: schema version 1, with data."""
    if backend.startswith("postgresql"):
        con = _PgCon(backend)
    else:
        con = duckdb.connect(backend)
    migrations.migrate(con, "postgresql" if backend.startswith("postgresql") else "duckdb", where="old", until=1)
    con.execute("INSERT INTO things (id, key, name, kind, lon, lat, gu, dong, simulated, properties) "
                "VALUES (1, 'old', 'Old', 'air_station', 127.0, 37.5, '11140', NULL, false, '{}')")
    con.execute("INSERT INTO batches VALUES (7, make_timestamptz(1000000), 'old', 1, 0)")
    if backend.startswith("postgresql"):  # as a version-1 citywall took its batch ids: from the sequence
        con.execute("SELECT setval('batch_id_seq', 7)")
    con.close()


class _PgCon:
    """psycopg with DuckDB's calling convention, as the store's own adapter (for building an old store)."""

    def __init__(self, url: str) -> None:
        from citywall.store.postgres import Connection

        self.con = Connection(url)

    def execute(self, sql: str, params: list | None = None):  # noqa: ANN201
        return self.con.execute(sql, params)

    def close(self) -> None:
        self.con.close()


def test_an_old_store_is_migrated_to_the_newest_version_and_keeps_its_data(backend: str) -> None:
    _old_store(backend)
    s = open_store(backend)
    try:
        assert s.get_meta("schema_version") == str(migrations.latest(s.dialect))
        things, _ = s.load_registry()
        assert [t.key for t in things] == ["old"]
        # Version 2's tables exist and work; batch ids continue after the stored ones.
        assert s.take_ids("batches", 2) == [8, 9]
        Accounts(s, lambda: FIXED_NOW_US).create_user("ana", "admin", "correct horse battery")
        assert [u["name"] for u in Accounts(s, lambda: FIXED_NOW_US).users()] == ["ana"]
    finally:
        s.close()
    s = open_store(backend)  # opening again changes nothing
    try:
        assert s.get_meta("schema_version") == str(migrations.latest(s.dialect)) and s.take_ids("batches", 1)[0] >= 8
    finally:
        s.close()


def test_a_store_from_a_newer_citywall_is_refused(backend: str) -> None:
    s = open_store(backend)
    s.set_meta("schema_version", "99")
    s.close()
    with pytest.raises(RuntimeError, match="schema version 99"):
        open_store(backend)


def test_an_unreachable_postgresql_is_reported_by_name() -> None:
    with pytest.raises(StoreUnavailable, match="cannot connect to the PostgreSQL store postgresql://citywall:\\*\\*\\*@127.0.0.1:1/x"):
        open_store("postgresql://citywall:secret@127.0.0.1:1/x")


# -- meta and registry ------------------------------------------------------------------
def test_meta_is_set_overwritten_and_read(store) -> None:  # noqa: ANN001
    assert store.get_meta("rules_yaml") is None
    store.set_meta("rules_yaml", "a: 1")
    store.set_meta("rules_yaml", "a: 2 — 한글 %s ?")
    assert store.get_meta("rules_yaml") == "a: 2 — 한글 %s ?"


def test_the_registry_round_trips_and_loads_what_is_new(store) -> None:  # noqa: ANN001
    things, streams = things_and_streams(3)
    store.save_registry(things[:2], streams[:2])
    store.save_registry(things[2:], streams[2:])
    t, d = store.load_registry()
    assert t == things and d == streams
    assert d[0].sentinels == [-999.0, 9999.0] and t[0].properties == {"n": 1, "ko": "중구"}
    t, d = store.load_registry(after=(2, 2))
    assert [x.id for x in t] == [3] and [x.id for x in d] == [3]


# -- ingest -----------------------------------------------------------------------------
def test_written_rows_are_counted_found_and_give_the_latest_value(store) -> None:  # noqa: ANN001
    store.save_registry(*things_and_streams(2))
    write(store, [(1, H10, 1.5), (1, H10 + US, 2.5), (2, H10 + 2 * US, 7.0)])
    write(store, [(1, H10 - HOUR, 0.5)], quarantine=[{"reason": "malformed", "detail": "no result", "payload": '{"x": 1}'}])
    assert store.counts() == {"observations": 4, "observations_hourly": 0, "quarantine": 1, "batches": 2}
    latest = store.latest()
    got = sorted(zip(latest["ds"].tolist(), latest["t"].tolist(), latest["v"].tolist()))
    assert got == [(1, H10 + US, 2.5), (2, H10 + 2 * US, 7.0)]
    found = store.existing(np.array([1, 1, 2, 2]), np.array([H10, H10 + 5 * US, H10 + 2 * US, H10]))
    assert found[0] == 1.5 and np.isnan(found[1]) and found[2] == 7.0 and np.isnan(found[3])


def test_microseconds_and_extreme_values_are_kept_exactly(store) -> None:  # noqa: ANN001
    store.save_registry(*things_and_streams(1))
    t = utc(2025, 6, 14, 10) + 123_457
    write(store, [(1, t, 1e-300), (1, t + 1, -1.7976931348623157e308), (1, t + 2, 0.1 + 0.2)])
    rows = store.history([1], t, t + 3, "raw")
    assert rows["t"] == [(t) // 1000, (t + 1) // 1000, (t + 2) // 1000]
    assert rows["v"] == [1e-300, -1.7976931348623157e308, 0.1 + 0.2]
    assert store.reader().execute("SELECT epoch_us(phenomenon_time) FROM observations ORDER BY 1").fetchall() == [(t,), (t + 1,), (t + 2,)]


def test_quarantine_is_listed_newest_first_and_filtered(store) -> None:  # noqa: ANN001
    write(store, [], received_us=FIXED_NOW_US, quarantine=[{"reason": "malformed", "detail": "bad json", "payload": "{"}])
    write(store, [], received_us=FIXED_NOW_US + US, quarantine=[
        {"reason": "out_of_range", "detail": "pm10 -5 below 0", "datastream": "7", "phenomenon_time": "1", "result": "-5.0"},
        {"reason": "malformed", "detail": "no time", "source": "mqtt"}])
    assert store.quarantine_counts() == {"malformed": 2, "out_of_range": 1}
    items = store.quarantined()
    assert [(i["reason"], i["row_index"]) for i in items] == [("out_of_range", 0), ("malformed", 1), ("malformed", 0)]
    assert items[0]["received_at_ms"] == (FIXED_NOW_US + US) // 1000 and items[0]["result"] == "-5.0"
    assert [i["detail"] for i in store.quarantined(reason="malformed", source="mqtt")] == ["no time"]
    assert len(store.quarantined(limit=1)) == 1


def test_ids_are_unique_and_increasing(store) -> None:  # noqa: ANN001
    a = store.take_ids("batches", 3)
    b = store.take_ids("batches", 1)
    assert a == sorted(a) and len(set(a + b)) == 4 and b[0] > a[-1]
    with pytest.raises(ValueError, match="no id sequence"):
        store.take_ids("nothing")


# -- history, rollup, retention ---------------------------------------------------------
def _history_data(store) -> None:  # noqa: ANN001
    store.save_registry(*things_and_streams(2))
    write(store, [(1, H10 + 10 * US, 1.0), (1, H10 + 50 * US, 3.0), (1, H10 + 80 * US, 5.0), (1, H11 - US, 7.0), (1, H11, 11.0),
                  (2, H10 + 30 * 60 * US, 20.0)])


def test_history_raw_and_bucketed_with_every_aggregate(store) -> None:  # noqa: ANN001
    _history_data(store)
    raw = store.history([1], H10, H11 + HOUR, "raw")
    assert raw["v"] == [1.0, 3.0, 5.0, 7.0, 11.0] and raw["t"][0] == (H10 + 10 * US) // 1000 and raw["n"] == [1] * 5
    hour = store.history([1], H10, H11 + HOUR, "hour")
    assert hour == {"t": [H10 // 1000, H11 // 1000], "v": [4.0, 11.0], "n": [4, 1]}
    both = store.history([1, 2], H10, H11, "hour", "mean")
    assert both["v"] == [(1 + 3 + 5 + 7 + 20) / 5] and both["n"] == [5]
    assert store.history([1, 2], H10, H11, "hour", "min")["v"] == [1.0]
    assert store.history([1, 2], H10, H11, "hour", "max")["v"] == [20.0]
    assert store.history([1, 2], H10, H11, "hour", "last")["v"] == [7.0]  # 10:59:59 is the newest row of the hour
    minute = store.history([1], H10, H10 + 2 * 60 * US, "minute")
    assert minute == {"t": [H10 // 1000, (H10 + 60 * US) // 1000], "v": [2.0, 5.0], "n": [2, 1]}
    assert store.history([], H10, H11, "hour") == {"t": [], "v": [], "n": []}


def test_days_are_cut_at_local_midnight(store) -> None:  # noqa: ANN001
    store.save_registry(*things_and_streams(1))
    # 14:30 UTC is 23:30 in Seoul on the 14th; 15:30 UTC is 00:30 on the 15th.
    write(store, [(1, utc(2025, 6, 14, 14, 30), 10.0), (1, utc(2025, 6, 14, 15, 30), 30.0)])
    seoul = store.history([1], utc(2025, 6, 13), utc(2025, 6, 16), "day", "mean", "Asia/Seoul")
    assert seoul["v"] == [10.0, 30.0] and seoul["t"] == [utc(2025, 6, 13, 15) // 1000, utc(2025, 6, 14, 15) // 1000]
    assert store.history([1], utc(2025, 6, 13), utc(2025, 6, 16), "day", "mean", "UTC")["v"] == [20.0]
    with pytest.raises(ValueError, match="bad time zone"):
        store.history([1], 0, 1, "day", "mean", "UTC'; DROP TABLE observations; --")


def test_rollup_then_retention_keeps_hourly_history_and_replay(store) -> None:  # noqa: ANN001
    _history_data(store)
    mark = store.rollup(utc(2025, 6, 14, 12, 30))
    assert mark == utc(2025, 6, 14, 12)
    assert store.counts()["observations_hourly"] == 3  # (1, 10h), (1, 11h), (2, 10h)
    # A late row for an hour already rolled up is rolled up again at the next round.
    write(store, [(2, H10 + 40 * 60 * US, 40.0)])
    store.rollup(utc(2025, 6, 14, 12, 30))
    assert store.history([2], H10, H11, "hour")["v"] == [30.0]
    deleted = store.retain(utc(2025, 6, 14, 12), None)
    assert deleted["observations"] == 7 and store.counts()["observations"] == 0
    assert store.get_meta("raw_from_us") == str(utc(2025, 6, 14, 12))
    # History before the cut comes from the hourly rows, exactly as before.
    assert store.history([1], H10, H11 + HOUR, "hour") == {"t": [H10 // 1000, H11 // 1000], "v": [4.0, 11.0], "n": [4, 1]}
    assert store.history([1, 2], H10, H11, "hour", "last")["v"] == [7.0]  # 10:59:59, not the late 10:40
    at = store.values_at(H11 + 30 * 60 * US, 2 * HOUR)  # before raw_from: from the rollups
    assert dict(zip(at["ds"].tolist(), at["v"].tolist())) == {1: 11.0, 2: 40.0}
    hourly = store.retain(utc(2025, 6, 14, 12), H11)
    assert hourly["observations_hourly"] == 2 and store.counts()["observations_hourly"] == 1


def test_values_at_and_hourly_means_from_raw_rows(store) -> None:  # noqa: ANN001
    _history_data(store)
    at = store.values_at(H10 + 60 * US, HOUR)
    assert dict(zip(at["ds"].tolist(), at["v"].tolist())) == {1: 3.0}
    assert at["t"].tolist() == [H10 + 50 * US]
    means = store.hourly_means([1, 2], H10, H11 + HOUR)
    assert means == {"ds": [1, 1, 2], "t": [H10 // 1000, H11 // 1000, H10 // 1000], "v": [4.0, 11.0, 20.0]}


def test_compaction_keeps_every_row(store) -> None:  # noqa: ANN001
    _history_data(store)
    before = store.history([1, 2], H10, H11 + HOUR, "raw")
    done = store.compact(utc(2025, 6, 16))
    if store.dialect == "duckdb":  # DuckDB sorts a day by datastream; PostgreSQL has an index instead
        assert done is not None and done["rows"] == 6
    else:
        assert done is None
    assert store.history([1, 2], H10, H11 + HOUR, "raw") == before


# -- the SQL of accounts, audit and events, run through con / reader() ------------------
def test_accounts_users_sessions_and_keys(store) -> None:  # noqa: ANN001
    accounts = Accounts(store, lambda: FIXED_NOW_US)
    accounts.create_user("ana", "admin", "correct horse battery")
    with pytest.raises(Conflict, match="exists already"):
        accounts.create_user("ana", "viewer", "correct horse battery")
    assert accounts.check_password("ana", "correct horse battery")["role"] == "admin"
    assert accounts.check_password("ana", "wrong password!") is None
    session = accounts.open_session("ana")
    assert accounts.session_user(session["token"])["name"] == "ana"
    assert accounts.close_session(session["token"]) is True and accounts.close_session(session["token"]) is False
    key = accounts.create_key("gateway", "feed", by="ana")
    assert accounts.verify_key(key["key"])["name"] == "gateway"
    assert accounts.revoke_key(key["id"])["revoked_at_ms"] == FIXED_NOW_US // 1000
    assert accounts.verify_key(key["key"]) is None
    with pytest.raises(Conflict, match="last enabled admin"):
        accounts.disable_user("ana")
    assert [u["created_at_ms"] for u in accounts.users()] == [FIXED_NOW_US // 1000]


def test_the_audit_chain_is_kept_and_verified(store) -> None:  # noqa: ANN001
    audit = AuditLog(store, lambda: FIXED_NOW_US)
    for i in range(3):
        atomic(store, lambda i=i: audit.append("ana", f"user.step{i}", "bob", {"i": i, "text": "한글 \"quoted\" 100%"}))
    atomic(store, lambda: audit.append("sys", "rules.replace", None, {}))
    assert [r["action"] for r in audit.query(action="user.")] == ["user.step2", "user.step1", "user.step0"]
    assert [r["seq"] for r in audit.query(limit=2)] == [4, 3]
    assert audit.query(actor="sys")[0]["detail"] == {}
    assert audit.verify() == (True, None)
    store.con.execute("UPDATE audit_log SET detail = ? WHERE seq = 2", ['{"i": 99}'])
    assert audit.verify() == (False, 2)


def test_a_failed_transaction_leaves_nothing(store) -> None:  # noqa: ANN001
    audit = AuditLog(store, lambda: FIXED_NOW_US)

    def fail() -> None:
        audit.append("ana", "user.create", "bob")
        raise RuntimeError("the action failed after its audit row")

    with pytest.raises(RuntimeError, match="action failed"):
        atomic(store, fail)
    assert audit.query() == []
    atomic(store, lambda: audit.append("ana", "user.create", "carl"))  # the chain starts again at 1, not after the rolled-back row
    assert audit.query()[0]["seq"] == 1 and audit.verify() == (True, None)


def test_event_tables_append_fold_and_find(store) -> None:  # noqa: ANN001
    events = EventTable(store, "incident_events")
    reserved = events.reserve(1)[0]
    events.append([
        {"seq": reserved, "id": "INC-1", "at_us": H10, "event": "opened", "by": "ana", "step": "reported", "note": "", "data": {"k": "fire"},
         "external": "119:A7"},
        {"id": "INC-2", "at_us": H10 + US, "event": "opened", "by": "ana", "step": "reported", "note": None, "data": {}},
    ])
    events.append([{"id": "INC-1", "at_us": H11, "event": "closed", "by": "bob", "step": "closed", "note": "done", "data": {}}])
    got = events.events()
    assert [(e["seq"], e["id"], e["event"]) for e in got] == [(reserved, "INC-1", "opened"), (reserved + 1, "INC-2", "opened"),
                                                              (reserved + 2, "INC-1", "closed")]
    assert got[0]["data"] == {"k": "fire"} and got[0]["at_us"] == H10 and got[2]["note"] == "done"
    assert [e["id"] for e in events.events(["INC-2"])] == ["INC-2"] and events.events([]) == []
    assert [e["seq"] for e in events.events(until_us=H10 + US)] == [reserved, reserved + 1]
    assert events.open_ids(opened="opened", closed="closed") == ["INC-2"]
    assert sorted(events.open_ids(opened="opened", closed="closed", since_us=H10)) == ["INC-1", "INC-2"]
    assert sorted(events.open_ids(opened="opened", closed="closed", until_us=H10 + 2 * US)) == ["INC-1", "INC-2"]
    assert events.find_external("119:A7") == "INC-1" and events.find_external("119:B") is None


def test_the_cli_makes_keys_and_users_in_either_store(backend: str, capsys: pytest.CaptureFixture[str]) -> None:
    from citywall.cli import main

    assert main(["key", "add", "gateway", "--role", "feed", "--db", backend]) == 0
    key = capsys.readouterr().out.strip()
    s = open_store(backend)
    try:
        assert Accounts(s, lambda: FIXED_NOW_US).verify_key(key)["name"] == "gateway"
        assert AuditLog(s, lambda: FIXED_NOW_US).query()[0]["action"].startswith("key.")
    finally:
        s.close()


# -- several processes on one PostgreSQL store ------------------------------------------
@pytest.fixture
def pg_url() -> Iterator[str]:
    with fresh_database() as url:
        yield url


def test_options_in_the_url_are_kept_and_times_are_utc(pg_url: str) -> None:
    with psycopg.connect(pg_url, autocommit=True) as admin:
        admin.execute("CREATE SCHEMA citywall")
    s = open_store(pg_url + "?options=-csearch_path%3Dcitywall")
    try:
        assert s.reader().execute("SELECT current_schema(), current_setting('TimeZone')").fetchone() == ("citywall", "UTC")
        assert s.reader().execute("SELECT count(*) FROM information_schema.tables WHERE table_schema = 'citywall'").fetchone()[0] >= 13
    finally:
        s.close()


def test_two_processes_take_disjoint_ids(pg_url: str) -> None:
    a, b = open_store(pg_url), open_store(pg_url)
    try:
        got: list[int] = []
        lock = threading.Lock()

        def take(s) -> None:  # noqa: ANN001
            for _ in range(50):
                ids = s.take_ids("batches", 3) + s.take_ids("alarm_events", 1)
                with lock:
                    got.extend(ids[:3])

        threads = [threading.Thread(target=take, args=(s,)) for s in (a, b)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert len(got) == len(set(got)) == 300
    finally:
        a.close()
        b.close()


def test_two_processes_appending_to_the_audit_log_keep_one_chain(pg_url: str) -> None:
    stores = [open_store(pg_url), open_store(pg_url)]
    try:
        logs = [AuditLog(s, lambda: FIXED_NOW_US) for s in stores]

        def run(i: int) -> None:
            for j in range(25):
                atomic(stores[i], lambda j=j: logs[i].append(f"p{i}", "user.touch", str(j)))

        threads = [threading.Thread(target=run, args=(i,)) for i in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert logs[0].verify() == (True, None)
        assert sorted(r["seq"] for r in logs[1].query(limit=100)) == list(range(1, 51))
    finally:
        for s in stores:
            s.close()


def test_two_processes_starting_on_a_new_store_create_one_first_admin(pg_url: str, tmp_path: Path) -> None:
    from citywall.platform import Platform, Settings

    platforms = [Platform(Settings(db=pg_url, feed="none", mqtt="off")) for _ in range(2)]
    passwords: list[str | None] = [None, None]
    errors: list[BaseException] = []
    barrier = threading.Barrier(2)

    def start(i: int) -> None:  # the bootstrap transaction Platform.start runs, in two processes at once
        p = platforms[i]
        try:
            barrier.wait()
            passwords[i] = atomic(p.store, lambda: p._bootstrap(tmp_path / f"admin-{i}.txt"))
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=start, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    try:
        assert errors == [] and sum(pw is not None for pw in passwords) == 1
        assert [u["name"] for u in platforms[0].accounts.users()] == ["admin"]
        assert [r["action"] for r in platforms[1].audit.query()] == ["user.create"]
    finally:
        for p in platforms:
            p.store.close()


def test_a_registration_planned_from_a_stale_registry_is_refused_and_nothing_is_written(pg_url: str) -> None:
    a, b = open_store(pg_url), open_store(pg_url)
    try:
        things, streams = things_and_streams(2)
        a.save_registry(things[:1], streams[:1])
        stale = Thing(1, "other", "Other", "sdot", 127.0, 37.5, None, None, False, {})  # b did not know id 1 was taken
        with pytest.raises(RegistryMoved):
            b.save_registry([stale], [])
        assert [t.key for t in b.load_registry()[0]] == ["t1"]
    finally:
        a.close()
        b.close()


def drop_connection(s, url: str) -> None:  # noqa: ANN001
    """End the store's writer connection on the server's side, as a database restart does."""
    pid = s.con.execute("SELECT pg_backend_pid()").fetchone()[0]
    with psycopg.connect(url, autocommit=True) as admin:
        admin.execute("SELECT pg_terminate_backend(%s)", [pid])


def test_a_lost_connection_is_reopened_outside_a_transaction_and_fails_inside_one(pg_url: str) -> None:
    s = open_store(pg_url)
    try:
        s.save_registry(*things_and_streams(1))
        drop_connection(s, pg_url)
        assert s.con.execute("SELECT 2").fetchone() == (2,)  # a read is asked again on a new connection
        drop_connection(s, pg_url)
        with pytest.raises(psycopg.OperationalError):
            s.con.execute("INSERT INTO meta VALUES ('z', '1')")  # a write is not: it may have been done
        write(s, [(1, H10, 1.0)])  # the next use reconnects
        s.con.execute("BEGIN")
        drop_connection(s, pg_url)
        with pytest.raises(psycopg.OperationalError):
            s.con.execute("INSERT INTO meta VALUES ('x', '1')")
        with pytest.raises(psycopg.OperationalError, match="inside a transaction"):
            s.con.execute("INSERT INTO meta VALUES ('y', '1')")  # not written outside the transaction it belonged to
        s.con.execute("ROLLBACK")
        assert s.get_meta("x") is None and s.get_meta("y") is None
        assert s.counts()["observations"] == 1
    finally:
        s.close()


def test_the_first_write_after_the_connection_was_dropped_is_not_refused(pg_url: str) -> None:
    s = open_store(pg_url)
    try:
        s.save_registry(*things_and_streams(1))
        drop_connection(s, pg_url)
        write(s, [(1, H10, 1.0)])  # its BEGIN found the connection gone before anything was sent: asked again
        assert s.counts()["observations"] == 1
    finally:
        s.close()


def test_a_commit_after_a_failed_statement_is_an_error_not_a_silent_rollback(pg_url: str) -> None:
    s = open_store(pg_url)
    try:
        def swallow() -> None:
            s.con.execute("INSERT INTO meta VALUES ('a', '1')")
            try:
                s.con.execute("INSERT INTO meta VALUES ('a', '2')")  # the key exists: PostgreSQL fails the transaction
            except s.ConstraintError:
                pass  # ... and COMMIT would answer ROLLBACK without an error

        with pytest.raises(psycopg.errors.InFailedSqlTransaction, match="nothing of it was stored"):
            atomic(s, swallow)
        assert s.get_meta("a") is None
        atomic(s, lambda: s.set_meta("a", "3"))  # the connection is usable again
        assert s.get_meta("a") == "3"
    finally:
        s.close()


def test_a_store_lock_outside_a_transaction_is_refused(pg_url: str) -> None:
    s = open_store(pg_url)
    try:
        with pytest.raises(RuntimeError, match="outside a transaction"):
            AuditLog(s, lambda: FIXED_NOW_US).append("ana", "user.touch")  # the lock would end with its own statement
        assert AuditLog(s, lambda: FIXED_NOW_US).query() == []
    finally:
        s.close()


def test_late_rows_of_another_process_are_rolled_up_whatever_their_batch_id(pg_url: str) -> None:
    a, b = open_store(pg_url), open_store(pg_url)
    try:
        a.save_registry(*things_and_streams(2))
        early = a.take_ids("batches", 1)[0]  # A takes a batch id; B takes a higher one, commits and rolls up ...
        write(b, [(1, H10 + 10 * US, 1.0), (2, H10 + 20 * US, 5.0)])
        assert b.rollup(utc(2025, 6, 14, 12, 30)) == utc(2025, 6, 14, 12)
        write(a, [(1, H10 + 30 * US, 3.0)], batch=early)  # ... then A commits its lower id into an hour rolled up
        a.rollup(utc(2025, 6, 14, 12, 30))
        assert a.history([1], H10, H11, "hour") == {"t": [H10 // 1000], "v": [2.0], "n": [2]}
        # B's retention deletes the raw rows; A, not told yet, takes one more late row for that hour.
        b.retain(utc(2025, 6, 14, 12), None)
        write(a, [(1, H10 + 40 * US, 8.0)])
        assert b.retain(utc(2025, 6, 14, 12), None)["observations"] == 0  # kept until its hour is rolled up again
        b.rollup(utc(2025, 6, 14, 12, 30))
        # Merged into what the hour had (not rebuilt from the one late row); the other datastream's hour unchanged.
        assert b.history([1], H10, H11, "hour") == {"t": [H10 // 1000], "v": [4.0], "n": [3]}
        assert b.history([2], H10, H11, "hour") == {"t": [H10 // 1000], "v": [5.0], "n": [1]}
        assert b.history([1], H10, H11, "hour", "last")["v"] == [8.0] and b.history([1], H10, H11, "hour", "min")["v"] == [1.0]
        assert b.retain(utc(2025, 6, 14, 12), None)["observations"] == 1  # rolled up now: retention takes it
    finally:
        a.close()
        b.close()


def test_reads_from_many_threads_share_a_few_connections(pg_url: str) -> None:
    """The web server's 40 worker threads must not each hold a connection (two processes would use up
    PostgreSQL's default max_connections of 100)."""
    from citywall.store.postgres import READERS

    s = open_store(pg_url)
    try:
        s.save_registry(*things_and_streams(1))
        write(s, [(1, H10, 1.0)])
        answers: list[int] = []
        threads = [threading.Thread(target=lambda: answers.append(s.counts()["observations"])) for _ in range(40)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert answers == [1] * 40
        dbname = pg_url.rsplit("/", 1)[1]
        with psycopg.connect(pg_url, autocommit=True) as admin:
            held = admin.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()", [dbname]).fetchone()[0]
        assert held <= 2 + READERS  # the writer's, the ids', the readers'
    finally:
        s.close()


def test_a_failed_connect_is_answered_again_for_a_moment_without_a_new_attempt(monkeypatch: pytest.MonkeyPatch) -> None:
    """While the database host is unreachable, callers must not each wait CONNECT_TIMEOUT_S."""
    import types

    from citywall.store import postgres

    attempts: list[str] = []
    real_connect, now = postgres.psycopg.connect, [1000.0]
    monkeypatch.setattr(postgres.psycopg, "connect", lambda *a, **k: attempts.append("try") or real_connect(*a, **k))
    monkeypatch.setattr(postgres, "time", types.SimpleNamespace(monotonic=lambda: now[0]))  # a clock the test moves
    con = postgres.Connection("postgresql://citywall@127.0.0.1:1/x")
    for _ in range(3):
        with pytest.raises(psycopg.OperationalError, match="127.0.0.1"):
            con.execute("SELECT 1")
    assert len(attempts) == 1
    now[0] += postgres.RECONNECT_PAUSE_S
    with pytest.raises(psycopg.OperationalError):
        con.execute("SELECT 1")
    assert len(attempts) == 2


def test_urls_are_shown_without_their_password() -> None:
    assert redact_url("postgresql://cw:secret@db:5432/cw?sslmode=require") == "postgresql://cw:***@db:5432/cw?sslmode=require"
    assert redact_url("postgresql://cw:p@ss@db/cw") == "postgresql://cw:***@db/cw"  # an unescaped @ in the password
    assert redact_url("postgresql:///cw?host=/run/postgresql&password=secret") == "postgresql:///cw?host=/run/postgresql&password=***"
    assert redact_url("redis://:secret@127.0.0.1:6379/0") == "redis://:***@127.0.0.1:6379/0"
    assert redact_url("redis://127.0.0.1:6379") == "redis://127.0.0.1:6379"


def test_a_change_the_live_broker_could_not_publish_is_followed_by_a_resync() -> None:
    """Pub/sub drops what it cannot deliver: after a failed publish the others are told to read the store."""
    import asyncio

    import msgspec

    from citywall.live.broker import Envelope, LiveBroker

    class FlakyRedis:
        def __init__(self) -> None:
            self.failures, self.sent = 1, []

        async def publish(self, channel: str, message: bytes) -> None:
            if self.failures:
                self.failures -= 1
                raise ConnectionError("Redis is away")
            self.sent.append(msgspec.msgpack.decode(message, type=Envelope).kind)

    async def run() -> tuple[LiveBroker, FlakyRedis]:
        broker, redis = LiveBroker(None, "redis://:secret@127.0.0.1:6379"), FlakyRedis()  # type: ignore[arg-type]
        broker._redis, broker._outbox = redis, asyncio.Queue(10)
        task = asyncio.create_task(broker._publish_loop())
        broker._send(Envelope(broker.origin, "rows"))  # lost: Redis refuses it
        broker._send(Envelope(broker.origin, "registry"))
        while len(redis.sent) < 2:
            await asyncio.sleep(0.01)
        task.cancel()
        return broker, redis

    broker, redis = asyncio.run(run())
    assert redis.sent == ["resync", "registry"] and broker.dropped == 1
    assert broker.status()["url"] == "redis://:***@127.0.0.1:6379"


# -- the platform on each store ----------------------------------------------------------
THINGS = [
    {"key": "a", "name": "A", "kind": "air_station", "lon": CITY_HALL[0], "lat": CITY_HALL[1], "datastreams": [{"quantity": "pm10"}]},
    {"key": "b", "name": "B", "kind": "sdot", "lon": MYEONGDONG[0], "lat": MYEONGDONG[1], "datastreams": [{"quantity": "pm10"}]},
    {"key": "c", "name": "C", "kind": "air_station", "lon": COEX[0], "lat": COEX[1], "datastreams": [{"quantity": "pm10"}]},
]


def test_the_platform_ingests_refuses_duplicates_and_restarts_on_each_store(backend: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # where a PostgreSQL platform writes its first admin password (data/)
    now = FIXED_NOW_US
    with running(backend, now) as (platform, client, _):
        ids = register(client, THINGS)
        res = post(client, [obs(ids["a:pm10"], now - HOUR, 10.0), obs(ids["b:pm10"], now - HOUR, 20.0), obs(ids["c:pm10"], now - 2 * HOUR, -3.0)])
        assert res["accepted"] == 2 and [r["reason"] for r in res["rejected"]] == ["out_of_range"]
        again = post(client, [obs(ids["a:pm10"], now - HOUR, 10.0), obs(ids["a:pm10"], now - HOUR, 11.0), obs(ids["a:pm10"], now - HOUR + US, 12.0)])
        assert [r["reason"] for r in again["rejected"]] == ["duplicate", "conflicting_duplicate"] and again["accepted"] == 1
        r = client.get("/api/history", params={"datastream": "a:pm10", "start": (now - 2 * HOUR) // 1000, "end": now // 1000, "resolution": "hour"})
        assert r.status_code == 200, r.text
        assert (r.json()["t"], r.json()["v"], r.json()["n"]) == ([(now - HOUR - HOUR // 2) // 1000], [11.0], [2])
        incident = client.portal.call(lambda: platform.incidents.open("fire", CITY_HALL[0], CITY_HALL[1], "high", by="tests"))
    with running(backend, now) as (platform, client, _):
        assert set(platform.registry.ds_by_key) == {"a:pm10", "b:pm10", "c:pm10"}
        assert stored(platform) == [(ids["a:pm10"], now - HOUR, 10.0), (ids["a:pm10"], now - HOUR + US, 12.0), (ids["b:pm10"], now - HOUR, 20.0)]
        assert platform.incidents.get(incident["id"])["kind"] == "fire"
        assert platform.store.quarantine_counts() == {"conflicting_duplicate": 1, "duplicate": 1, "out_of_range": 1}
        # The batch ids of the second run follow the first's.
        batches = platform.store.reader().execute("SELECT id FROM batches ORDER BY id").fetchall()
        assert [b[0] for b in batches] == sorted({b[0] for b in batches})


def test_a_row_another_process_stored_is_refused_as_a_duplicate(pg_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A sender retrying through a load balancer reaches the other process, whose live state has not
    heard of the first one's commit (no live broker here): the row is still found in the store."""
    monkeypatch.chdir(tmp_path)
    now = FIXED_NOW_US
    with running(pg_url, now) as (_, a, _c), running(pg_url, now) as (platform_b, b, _d):
        ids = register(a, THINGS[:1])
        register(b, THINGS[:1])  # B learns the datastream (already stored: nothing new)
        assert post(a, [obs(ids["a:pm10"], now - 60 * US, 10.0)])["accepted"] == 1
        again = post(b, [obs(ids["a:pm10"], now - 60 * US, 10.0), obs(ids["a:pm10"], now - 60 * US + 1, 11.0)])
        assert [r["reason"] for r in again["rejected"]] == ["duplicate"] and again["accepted"] == 1
        assert stored(platform_b) == [(ids["a:pm10"], now - 60 * US, 10.0), (ids["a:pm10"], now - 60 * US + 1, 11.0)]


def test_input_holding_a_nul_character_is_kept_and_spoils_no_other_row(backend: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """PostgreSQL's TEXT cannot hold NUL (DuckDB's VARCHAR can): refused input is kept all the same, and
    the good rows committed with it are stored (not a 503 for the whole group)."""
    monkeypatch.chdir(tmp_path)
    now = FIXED_NOW_US
    with running(backend, now) as (platform, client, _):
        ids = register(client, THINGS[:1])
        res = post(client, [obs(ids["a:pm10"], now - HOUR, 10.0), obs("x\u0000y", now - HOUR, 1.0)])
        assert res["accepted"] == 1 and [r["reason"] for r in res["rejected"]] == ["unknown_datastream"]
        r = client.post("/api/observations", content=b'[{"datastream": "\x00', headers={"content-type": "application/json"})
        assert r.status_code == 400, r.text
        kept = {q["reason"]: q for q in platform.store.quarantined()}
        assert set(kept) == {"unknown_datastream", "malformed"}
        nul = "\x00" if platform.store.dialect == "duckdb" else "\\u0000"  # PostgreSQL keeps it as its JSON escape
        assert kept["unknown_datastream"]["datastream"] == f"x{nul}y" and kept["malformed"]["payload"] == f'[{{"datastream": "{nul}'
        assert stored(platform) == [(ids["a:pm10"], now - HOUR, 10.0)]
        r = client.post("/api/things", json=[{**THINGS[1], "key": "b\u0000"}])
        if platform.store.dialect == "postgresql":  # refused with the reason, not a server error
            assert r.status_code == 422 and "NUL" in r.json()["detail"], r.text

"""`citywall replay`: recorded files through the pipeline, as an administrator would replay them.

Every file here is generated in tmp_path (small, deterministic), including a real CP949-encoded
Seoul station file with hour-24 rows, blanks and rows the file itself makes unreadable.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from citywall.feeds.replay import Pacer, Replay, ReplayOptions, Summary
from citywall.feeds.replay.formats import LayoutError, parse_maps, resolve_layout
from citywall.feeds.replay.source import detect_encoding
from citywall.feeds.replay.times import TimeError, parse_time
from citywall.platform import Platform
from conftest import GANGNAM_GU, HOUR_US, JONGNO_GU, US, make_platform

KST = timezone(timedelta(hours=9))
SEOUL_HEADER = ["측정일시", "측정소명", "이산화질소농도(ppm)", "오존농도(ppm)", "일산화탄소농도(ppm)", "아황산가스농도(ppm)",
                "미세먼지농도(ug/m3)", "초미세먼지농도(ug/m3)"]


def us(dt: datetime) -> int:
    return int(dt.timestamp()) * US


def write_csv(path: Path, header: list[str], rows: list[list[Any]], encoding: str = "cp949") -> Path:
    lines = [",".join(header)] + [",".join("" if v is None else str(v) for v in r) for r in rows]
    path.write_bytes(("\r\n".join(lines) + "\r\n").encode(encoding))
    return path


def seoul_file(tmp_path: Path, encoding: str = "cp949") -> Path:
    """Two district stations on 15 Jan 2024, hours 22..24, in Seoul's layout; 종로구 lacks O3 and PM2.5
    (blanks); one roadside station (남산) citywall cannot place; a bad hour; a value that is not a number."""
    rows: list[list[Any]] = []
    for hh in (24, 23, 22):  # Seoul's files run newest first
        rows.append([f"20240115{hh}", "강남구", 0.031, 0.012, 0.5, 0.003, 40 + hh, 20 + hh])
        rows.append([f"20240115{hh}", "종로구", 0.028, None, 0.4, 0.002, 30 + hh, None])
    rows.append(["2024011601", "남산", 0.01, 0.02, 0.3, 0.002, 25, 12])
    rows.append(["2024011625", "강남구", 0.01, 0.02, 0.3, 0.002, 25, 12])  # hour 25: unreadable
    rows.append(["2024011601", "강남구", 0.01, 0.02, 0.3, 0.002, "점검중", 12])  # "under maintenance"
    return write_csv(tmp_path / "서울시 대기질 자료.csv", SEOUL_HEADER, rows, encoding)


def replay_into(db: Path, options: ReplayOptions, **kw: Any) -> tuple[Summary, Platform]:
    """Replay in process as `citywall replay` does (the writer only), leaving the store closed."""
    platform = make_platform(db, raw_retention_days=100 * 365.0)

    async def go() -> Summary:
        platform.bus.bind(asyncio.get_running_loop())
        platform.pipeline.start()
        try:
            return await Replay(options, **kw).run(platform)
        finally:
            await asyncio.to_thread(platform.pipeline.stop)
            platform.store.close()

    return asyncio.run(go()), platform


def query(db: Path, sql: str, params: list | None = None) -> list[tuple]:
    con = duckdb.connect(str(db), read_only=True)
    try:
        return con.execute(sql, params or []).fetchall()
    finally:
        con.close()


def stored_by_key(db: Path) -> dict[tuple[str, int], float]:
    rows = query(db, "SELECT d.key, epoch_us(o.phenomenon_time), o.result FROM observations o JOIN datastreams d ON d.id = o.datastream_id")
    return {(k, int(t)): float(v) for k, t, v in rows}


def quarantine(db: Path) -> list[dict[str, Any]]:
    rows = query(db, "SELECT reason, detail, datastream, payload, source FROM quarantine ORDER BY batch_id, row_index")
    return [dict(zip(("reason", "detail", "datastream", "payload", "source"), r)) for r in rows]


# -- reading -----------------------------------------------------------------------------
def test_times_hour_24_is_midnight_of_the_next_day_in_kst() -> None:
    seoul = __import__("zoneinfo").ZoneInfo("Asia/Seoul")
    assert parse_time("2024011524", seoul) == us(datetime(2024, 1, 16, 0, tzinfo=KST))
    assert parse_time("2024123124", seoul) == us(datetime(2025, 1, 1, 0, tzinfo=KST))  # across a year too
    assert parse_time("2024011501", seoul) == us(datetime(2024, 1, 15, 1, tzinfo=KST))
    assert parse_time("20240115", seoul) == us(datetime(2024, 1, 15, tzinfo=KST))
    assert parse_time("2024-01-15T01:00:00Z", seoul) == us(datetime(2024, 1, 15, 1, tzinfo=timezone.utc))
    assert parse_time("2024-01-15 10:00", seoul) == us(datetime(2024, 1, 15, 10, tzinfo=KST))  # no offset: the city's time
    assert parse_time("2024-01-15_10:00:00", seoul) == us(datetime(2024, 1, 15, 10, tzinfo=KST))  # S-DoT's MSRMT_HR
    assert parse_time("2024-01-15 24:00", seoul) == us(datetime(2024, 1, 16, 0, tzinfo=KST))
    for bad in ("2024011525", "20241315", "2024-01-15 24:30", "yesterday", ""):
        with pytest.raises(TimeError):
            parse_time(bad, seoul)


def test_times_in_a_zone_with_daylight_saving_keep_the_wall_time() -> None:
    """Hours are wall-clock hours of the day: on the day clocks go forward, 12 is 12:00 summer time."""
    berlin = __import__("zoneinfo").ZoneInfo("Europe/Berlin")
    assert parse_time("2024033112", berlin) == us(datetime(2024, 3, 31, 10, tzinfo=timezone.utc))  # CEST, +02:00
    assert parse_time("2024033124", berlin) == us(datetime(2024, 3, 31, 22, tzinfo=timezone.utc))  # 1 April 00:00 CEST
    assert parse_time("2024033101", berlin) == us(datetime(2024, 3, 31, 0, tzinfo=timezone.utc))  # still CET, +01:00


def test_encodings_are_detected(tmp_path: Path) -> None:
    assert detect_encoding(seoul_file(tmp_path, "cp949")) == "cp949"
    assert detect_encoding(seoul_file(tmp_path, "utf-8")) == "utf-8"
    assert detect_encoding(seoul_file(tmp_path, "utf-8-sig")) == "utf-8-sig"


def test_layouts_and_maps() -> None:
    quantities = ["pm10", "pm25", "o3", "no2", "co", "so2"]
    seoul = resolve_layout(SEOUL_HEADER, None, {}, quantities)
    assert seoul.format == "seoul-station" and seoul.time == "측정일시" and seoul.station == "측정소명"
    assert seoul.wide == {"no2": "이산화질소농도(ppm)", "o3": "오존농도(ppm)", "co": "일산화탄소농도(ppm)", "so2": "아황산가스농도(ppm)",
                          "pm10": "미세먼지농도(ug/m3)", "pm25": "초미세먼지농도(ug/m3)"}
    long = resolve_layout(["time", "datastream", "value", "unit"], None, {}, quantities)
    assert (long.format, long.datastream, long.value, long.unit, long.is_wide) == ("long", "datastream", "value", "unit", False)
    mapped = resolve_layout(["일시", "지점", "PM10"], "seoul-station", parse_maps(["time=일시", "station=지점", "pm10=PM10"]), quantities)
    assert (mapped.time, mapped.station, mapped.wide) == ("일시", "지점", {"pm10": "PM10"})
    with pytest.raises(LayoutError, match="no column 'nope'"):
        resolve_layout(["time", "value"], None, parse_maps(["datastream=nope"]), quantities)
    with pytest.raises(LayoutError, match="neither a field"):
        resolve_layout(["time", "value"], None, parse_maps(["pm1=value"]), quantities)
    with pytest.raises(LayoutError, match="datastream column, or a station and a quantity"):
        resolve_layout(["time", "value"], None, {}, quantities)
    with pytest.raises(LayoutError, match="FIELD=COLUMN"):
        parse_maps(["time"])


# -- the Seoul station files -------------------------------------------------------------
def test_seoul_station_file_cp949_hour_24_blanks_and_refusals(tmp_path: Path) -> None:
    db = tmp_path / "t.duckdb"
    summary, _ = replay_into(db, ReplayOptions(seoul_file(tmp_path)))
    assert (summary.format, summary.encoding) == ("seoul-station", "cp949")
    # 9 data rows: 3 x 강남구 (6 values) + 3 x 종로구 (4 values, 2 blanks) + 남산 + bad hour + 점검중.
    assert summary.rows_read == 9
    assert summary.blanks == {"이산화질소농도(ppm)": 0, "오존농도(ppm)": 3, "일산화탄소농도(ppm)": 0, "아황산가스농도(ppm)": 0,
                              "미세먼지농도(ug/m3)": 0, "초미세먼지농도(ug/m3)": 3}
    assert summary.observations == 18 + 12 + 6 + 6 + 6
    assert summary.accepted == 18 + 12 + 5
    assert summary.refused == {"unknown_datastream": 6, "malformed": 7}
    assert sorted(summary.registered_things) == sorted([f"air:{GANGNAM_GU}", f"air:{JONGNO_GU}"])

    got = stored_by_key(db)
    midnight = us(datetime(2024, 1, 16, 0, tzinfo=KST))  # "2024011524"
    assert got[(f"air:{GANGNAM_GU}:pm10", midnight)] == 64.0
    assert got[(f"air:{GANGNAM_GU}:pm25", midnight)] == 44.0
    assert got[(f"air:{GANGNAM_GU}:no2", us(datetime(2024, 1, 15, 22, tzinfo=KST)))] == 0.031
    assert got[(f"air:{JONGNO_GU}:pm10", us(datetime(2024, 1, 15, 23, tzinfo=KST)))] == 53.0
    assert not any(k.startswith(f"air:{JONGNO_GU}:o3") or k.startswith(f"air:{JONGNO_GU}:pm25") for k, _ in got)  # blanks: nothing stored
    assert got[(f"air:{GANGNAM_GU}:pm25", us(datetime(2024, 1, 16, 1, tzinfo=KST)))] == 12.0  # the rest of the 점검중 row
    assert summary.first_us == us(datetime(2024, 1, 15, 22, tzinfo=KST)) and summary.last_us == us(datetime(2024, 1, 16, 1, tzinfo=KST))

    things = dict(query(db, "SELECT key, kind FROM things"))
    assert things == {f"air:{GANGNAM_GU}": "air_station", f"air:{JONGNO_GU}": "air_station"}

    q = quarantine(db)
    assert len(q) == 13 and {r["source"] for r in q} == {"replay"}
    name = "서울시 대기질 자료.csv"
    namsan = [r for r in q if r["reason"] == "unknown_datastream"]
    assert len(namsan) == 6
    assert all(r["detail"].startswith(f"{name} row 7 (line 8), column 측정소명: station '남산' is not one of the 25 district stations")
               and "--stations" in r["detail"] for r in namsan)
    bad_hour = [r for r in q if "column 측정일시" in r["detail"]]
    assert len(bad_hour) == 6 and all(r["detail"].startswith(f"{name} row 8 (line 9), column 측정일시: '2024011625'") for r in bad_hour)
    (maintenance,) = [r for r in q if "점검중" in r["detail"]]
    assert maintenance["detail"] == f"{name} row 9 (line 10), column 미세먼지농도(ug/m3): '점검중' is not a number"
    assert maintenance["datastream"] == f"air:{GANGNAM_GU}:pm10"
    assert json.loads(maintenance["payload"])["result"] == "점검중"


def test_utf8_with_bom_reads_the_same(tmp_path: Path) -> None:
    summary, _ = replay_into(tmp_path / "t.duckdb", ReplayOptions(seoul_file(tmp_path, "utf-8-sig")))
    assert summary.encoding == "utf-8-sig" and summary.accepted == 35 and summary.refused == {"unknown_datastream": 6, "malformed": 7}


def test_a_station_placed_with_stations_file_is_registered_as_its_own_thing(tmp_path: Path) -> None:
    places = tmp_path / "places.csv"
    places.write_text("name,lon,lat,network\n남산,126.9882,37.5512,도시대기 (test location)\n", encoding="utf-8")
    db = tmp_path / "t.duckdb"
    summary, _ = replay_into(db, ReplayOptions(seoul_file(tmp_path), stations=places))
    assert summary.refused == {"malformed": 7} and summary.accepted == 35 + 6
    assert "air:station:남산" in summary.registered_things
    assert query(db, "SELECT kind, lon, lat FROM things WHERE key = 'air:station:남산'") == [("air_station_other", 126.9882, 37.5512)]
    assert stored_by_key(db)[("air:station:남산:pm10", us(datetime(2024, 1, 16, 1, tzinfo=KST)))] == 25.0


def test_replaying_twice_stores_nothing_twice(tmp_path: Path) -> None:
    db = tmp_path / "t.duckdb"
    replay_into(db, ReplayOptions(seoul_file(tmp_path)))
    again, _ = replay_into(db, ReplayOptions(seoul_file(tmp_path)))
    assert again.accepted == 0 and again.refused["duplicate"] == 35
    assert query(db, "SELECT count(*) FROM observations") == [(35,)]


def test_map_option_reads_another_wide_layout(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "other.csv", ["일시", "지점", "미세먼지", "비고"],
                     [["2024-03-01 13:00", "강남구", 81, "x"], ["2024-03-01 14:00", "강남구", 95, "y"]], "utf-8")
    db = tmp_path / "t.duckdb"
    summary, _ = replay_into(db, ReplayOptions(path, format="seoul-station", maps=parse_maps(["time=일시", "station=지점", "pm10=미세먼지"])))
    assert summary.accepted == 2 and not summary.refused
    assert stored_by_key(db) == {(f"air:{GANGNAM_GU}:pm10", us(datetime(2024, 3, 1, 13, tzinfo=KST))): 81.0,
                                 (f"air:{GANGNAM_GU}:pm10", us(datetime(2024, 3, 1, 14, tzinfo=KST))): 95.0}


# -- the long format -----------------------------------------------------------------------
def test_long_csv_by_datastream_key_and_by_station_and_quantity(tmp_path: Path) -> None:
    t0 = datetime(2024, 5, 1, 9, tzinfo=KST)
    rows = [
        [t0.isoformat(), f"air:{GANGNAM_GU}:pm25", "", "", 18, ""],
        [(t0 + timedelta(hours=1)).isoformat(), f"air:{GANGNAM_GU}:pm25", "", "", 0.021, "mg/m3"],  # converted to ug/m3
        [(t0 + timedelta(hours=1)).isoformat(), "", "종로구", "NO2", 31, "ppb"],
        [(t0 + timedelta(hours=2)).isoformat(), "", "종로구", "pm1", 5, ""],  # no such quantity
        [(t0 + timedelta(hours=2)).isoformat(), "air:nowhere:pm10", "", "", 5, ""],  # no such datastream
        [(t0 + timedelta(hours=2)).isoformat(), f"air:{GANGNAM_GU}:pm10", "", "", "", ""],  # blank: skipped
        [(t0 + timedelta(hours=3)).isoformat(), f"air:{GANGNAM_GU}:pm10", "", "", 5000, ""],  # the pipeline's own range check
    ]
    path = write_csv(tmp_path / "long.csv", ["time", "datastream", "station", "quantity", "value", "unit"], rows, "utf-8")
    db = tmp_path / "t.duckdb"
    summary, _ = replay_into(db, ReplayOptions(path))
    assert summary.format == "long" and summary.observations == 6 and summary.blanks == {"value": 1}
    assert summary.accepted == 3
    assert summary.refused == {"unknown_datastream": 2, "out_of_range": 1}
    got = stored_by_key(db)
    assert got[(f"air:{GANGNAM_GU}:pm25", us(t0))] == 18.0
    assert got[(f"air:{GANGNAM_GU}:pm25", us(t0 + timedelta(hours=1)))] == pytest.approx(21.0)
    assert got[(f"air:{JONGNO_GU}:no2", us(t0 + timedelta(hours=1)))] == pytest.approx(0.031)
    details = {r["reason"]: r["detail"] for r in quarantine(db) if r["reason"] != "unknown_datastream"}
    assert "outside the plausible range" in details["out_of_range"]
    unknown = sorted(r["detail"] for r in quarantine(db) if r["reason"] == "unknown_datastream")
    assert unknown[0].startswith("long.csv row 4 (line 5), column quantity: unknown quantity 'pm1'")
    assert unknown[1].startswith("long.csv row 5 (line 6), column datastream: no datastream 'air:nowhere:pm10'")


def test_long_parquet_with_typed_columns_and_datastream_ids(tmp_path: Path) -> None:
    # Register the station Things first with a Seoul file, then replay Parquet by datastream id.
    db = tmp_path / "t.duckdb"
    replay_into(db, ReplayOptions(seoul_file(tmp_path)))
    ids = dict(query(db, "SELECT key, id FROM datastreams"))
    t0 = datetime(2024, 2, 1, 0, tzinfo=timezone.utc)
    table = pa.table({
        "time": pa.array([t0 + timedelta(hours=h) for h in range(48)], pa.timestamp("us", tz="UTC")),
        "datastream": pa.array([ids[f"air:{GANGNAM_GU}:o3"]] * 48, pa.int64()),
        "value": pa.array([0.001 * h for h in range(48)], pa.float64()),
    })
    pq.write_table(table, tmp_path / "o3.parquet", row_group_size=10)
    summary, _ = replay_into(db, ReplayOptions(tmp_path / "o3.parquet"))
    assert (summary.format, summary.encoding, summary.accepted, summary.refused) == ("long", None, 48, {})
    got = stored_by_key(db)
    assert got[(f"air:{GANGNAM_GU}:o3", us(t0 + timedelta(hours=47)))] == pytest.approx(0.047)


def test_seoul_parquet_with_integer_times(tmp_path: Path) -> None:
    table = pa.table({"측정일시": pa.array([2024011524, 2024011601], pa.int64()), "측정소명": ["중구", "중구"],
                      "미세먼지농도(ug/m3)": pa.array([50.0, None])})
    pq.write_table(table, tmp_path / "s.parquet")
    db = tmp_path / "t.duckdb"
    summary, _ = replay_into(db, ReplayOptions(tmp_path / "s.parquet"))
    assert summary.format == "seoul-station" and summary.accepted == 1 and summary.blanks["미세먼지농도(ug/m3)"] == 1
    assert stored_by_key(db) == {("air:11140:pm10", us(datetime(2024, 1, 16, tzinfo=KST))): 50.0}


def test_a_ragged_csv_line_is_quarantined_whole(tmp_path: Path) -> None:
    path = tmp_path / "ragged.csv"
    path.write_text("time,datastream,value\n2024-01-01T00:00:00Z,x,1\n2024-01-01T01:00:00Z,x,2,extra\n", encoding="utf-8")
    db = tmp_path / "t.duckdb"
    summary, _ = replay_into(db, ReplayOptions(path))
    assert summary.refused == {"unknown_datastream": 1, "malformed": 1}
    (ragged,) = [r for r in quarantine(db) if r["reason"] == "malformed"]
    assert ragged["detail"] == "ragged.csv line 3: 4 fields where the header has 3"
    assert ragged["payload"] == "2024-01-01T01:00:00Z,x,2,extra"


# -- pacing ---------------------------------------------------------------------------------
class FakeTime:
    """A wall clock that only moves when the replay sleeps: the requested sleeps are recorded."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def monotonic(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def test_pacer_follows_phenomenon_time_at_the_speed() -> None:
    clock = FakeTime()
    pacer = Pacer(3600.0, clock.monotonic, clock.sleep)

    async def go() -> None:
        for h in range(4):
            await pacer.wait(h * HOUR_US)
        clock.now += 5.0  # the store was slow: 5 s behind
        await pacer.wait(5 * HOUR_US)  # due at 5 s, now at 8 s: no sleep

    asyncio.run(go())
    assert clock.sleeps == [pytest.approx(1.0)] * 3 and pacer.behind_s == pytest.approx(3.0)
    fast = Pacer(None, clock.monotonic, clock.sleep)
    asyncio.run(fast.wait(99 * HOUR_US))
    assert len(clock.sleeps) == 3


def test_a_paced_replay_sleeps_an_hour_a_second_at_3600(tmp_path: Path) -> None:
    clock = FakeTime()
    summary, _ = replay_into(tmp_path / "t.duckdb", ReplayOptions(seoul_file(tmp_path), speed=3600.0),
                             monotonic=clock.monotonic, sleep=clock.sleep)
    # Valid hours 22, 23, 24 (= 00) and 01 (남산 and 점검중): one batch each, a second apart.
    assert clock.sleeps == [pytest.approx(1.0)] * 3
    assert summary.accepted == 35 and summary.seconds == pytest.approx(3.0)
    clock = FakeTime()
    replay_into(tmp_path / "u.duckdb", ReplayOptions(seoul_file(tmp_path), speed=60.0), monotonic=clock.monotonic, sleep=clock.sleep)
    assert clock.sleeps == [pytest.approx(60.0)] * 3  # a minute a second: an hour takes a minute


def test_max_speed_never_sleeps_and_batches_by_size(tmp_path: Path) -> None:
    clock = FakeTime()
    lines: list[str] = []
    summary, _ = replay_into(tmp_path / "t.duckdb", ReplayOptions(seoul_file(tmp_path), batch_rows=4),
                             monotonic=clock.monotonic, sleep=clock.sleep, progress=lines.append, progress_every_s=0.0)
    assert clock.sleeps == [] and summary.accepted == 35
    assert len(lines) == 12  # 48 values in batches of 4: progress after each
    assert lines[-1].startswith("replay: 48 of 48 values (100%), phenomenon time 2024-01-15T16:00:00+00:00")


# -- the command ------------------------------------------------------------------------------
def citywall(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "citywall", *args], capture_output=True, text=True, timeout=timeout)


def test_cli_replays_into_a_store_then_the_store_holds_it(tmp_path: Path) -> None:
    db = tmp_path / "data" / "citywall.duckdb"
    out = citywall("replay", str(seoul_file(tmp_path)), "--db", str(db), "--format", "seoul-station", "--speed", "max")
    assert out.returncode == 0, out.stderr
    assert "accepted 35, refused 13 (malformed 7, unknown_datastream 6" in out.stdout
    assert "blanks (not measured, skipped) 6" in out.stdout
    assert query(db, "SELECT count(*) FROM observations") == [(35,)]
    assert query(db, "SELECT count(*) FROM quarantine WHERE source = 'replay'") == [(13,)]
    # The server opens the replayed store and serves the stations' latest values.
    platform = make_platform(db)
    try:
        platform.pipeline.start()
        ds = platform.registry.ds_by_key[f"air:{GANGNAM_GU}:pm25"]
        assert platform.live.newest_times()[ds] == us(datetime(2024, 1, 16, 1, tzinfo=KST))
    finally:
        platform.pipeline.stop()
        platform.store.close()


def test_cli_map_and_bad_usage(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "o.csv", ["when", "where", "pm"], [["2024030113", "강남구", 70]], "cp949")
    db = tmp_path / "t.duckdb"
    out = citywall("replay", str(path), "--db", str(db), "--map", "time=when", "--map", "station=where", "--map", "pm10=pm")
    assert out.returncode == 0, out.stderr
    assert "accepted 1, refused 0" in out.stdout
    out = citywall("replay", str(path), "--db", str(db))
    assert out.returncode == 1 and "no time column" in out.stderr and "--map time=COLUMN" in out.stderr
    out = citywall("replay", str(path), "--db", str(db), "--speed", "fast")
    assert out.returncode == 2 and "--speed takes a number" in out.stderr
    out = citywall("replay", str(tmp_path / "missing.csv"), "--db", str(db))
    assert out.returncode == 2 and "no such file" in out.stderr


def test_cli_refuses_a_store_another_process_holds(tmp_path: Path) -> None:
    db = tmp_path / "t.duckdb"
    holder = subprocess.Popen([sys.executable, "-c", f"import duckdb, sys, time; c = duckdb.connect({str(db)!r}); print('open', flush=True); sys.stdin.read()"],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "open"
        out = citywall("replay", str(seoul_file(tmp_path)), "--db", str(db))
        assert out.returncode == 2
        assert "in use by another process" in out.stderr and "stop the server" in out.stderr and "postgresql://" in out.stderr
    finally:
        holder.stdin.close()  # type: ignore[union-attr]
        holder.wait(timeout=30)


def test_the_replay_feed_runs_inside_a_server(tmp_path: Path) -> None:
    """`citywall up --feed replay --feed-option path=FILE`: the same replay, with the wall's live state."""
    platform = make_platform(tmp_path / "t.duckdb", feed="replay", raw_retention_days=100 * 365.0,
                             feed_options={"path": str(seoul_file(tmp_path)), "speed": "max"})

    async def go() -> dict:
        await platform.start()
        try:
            for _ in range(600):
                status = platform.feed_status()["replay"]
                if status["finished"] or status["state"] == "down":
                    return status
                await asyncio.sleep(0.05)
            raise AssertionError(f"the replay feed did not finish: {platform.feed_status()}")
        finally:
            await platform.stop()

    status = asyncio.run(go())
    assert (status["state"], status["simulated"], status["running"], status["error"]) == ("ok", False, False, None)
    assert status["sent"] == status["total"] == 48
    assert query(tmp_path / "t.duckdb", "SELECT count(*) FROM observations") == [(35,)]

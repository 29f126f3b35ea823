"""Validation of POST /api/observations: hostile input never breaks the API, and every row is
either stored or quarantined with the documented reason, checked against an independent oracle."""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

import msgspec
import numpy as np
import pytest
from hypothesis import HealthCheck, assume, event, example, given, settings
from hypothesis import strategies as st

from citywall.ingest.batch import decode_json, order_by_stream_time
from citywall.ingest.validate import REASONS
from conftest import CITY_HALL, COEX, DAY_US, FIXED_NOW_US, GYEONGBOKGUNG, MYEONGDONG, US, iso, obs, post, register, running, stored

NOW = FIXED_NOW_US
HYPO = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

# The oracle's own table of the quantities these tests use (range, whole numbers, units -> (factor, offset)).
QUANTITIES = {
    "pm10": (0.0, 2000.0, False, {None: (1.0, 0.0), "ug/m3": (1.0, 0.0), "µg/m³": (1.0, 0.0), "㎍/㎥": (1.0, 0.0), "mg/m3": (1000.0, 0.0)}),
    "o3": (0.0, 1.0, False, {None: (1.0, 0.0), "ppm": (1.0, 0.0), "ppb": (0.001, 0.0)}),
    "temperature": (-35.0, 50.0, False, {None: (1.0, 0.0), "degC": (1.0, 0.0), "℃": (1.0, 0.0), "K": (1.0, -273.15),
                                         "degF": (0.5555555555555556, -17.77777777777778)}),
    "humidity": (0.0, 100.0, False, {None: (1.0, 0.0), "%": (1.0, 0.0)}),
    "congestion_level": (1.0, 4.0, True, {None: (1.0, 0.0), "level": (1.0, 0.0)}),
}
HYPO_KEYS = ["air1:pm10", "air1:o3", "sdot1:temperature", "sdot1:humidity", "hot1:congestion_level", "air2:humidity"]
ALL_UNITS = sorted({u for *_, units in QUANTITIES.values() for u in units if u} | {"furlongs", "PPM", "", "ug/m³ "})


@dataclass
class Stream:
    id: int
    key: str
    quantity: str
    sentinels: tuple[float, ...] = ()


@dataclass
class World:
    platform: object
    client: object
    streams: list[Stream] = field(default_factory=list)

    def by_ref(self, ref) -> Stream | None:
        for s in self.streams:
            if (type(ref) is int and ref == s.id) or (type(ref) is str and ref == s.key):
                return s
        return None


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    with running(tmp_path_factory.mktemp("validation") / "t.duckdb", now_us=NOW) as (platform, client, _):
        ids = register(client, [
            {"key": "air1", "name": "Air", "kind": "air_station", "lon": CITY_HALL[0], "lat": CITY_HALL[1],
             "datastreams": [{"quantity": "pm10"}, {"quantity": "o3"}]},
            {"key": "sdot1", "name": "S-DoT", "kind": "sdot", "lon": COEX[0], "lat": COEX[1],
             "datastreams": [{"quantity": "temperature", "sentinels": [-40, 100]}, {"quantity": "humidity", "sentinels": [-40, 100]}]},
            {"key": "hot1", "name": "Hotspot", "kind": "hotspot", "lon": GYEONGBOKGUNG[0], "lat": GYEONGBOKGUNG[1],
             "datastreams": [{"quantity": "congestion_level"}]},
            {"key": "air2", "name": "Air 2", "kind": "air_station", "lon": MYEONGDONG[0], "lat": MYEONGDONG[1],
             "datastreams": [{"quantity": "humidity"}]},
        ])
        # The same set again for the fixed cases, so that random traffic never collides with them.
        ids |= register(client, [
            {"key": "fair", "name": "Air", "kind": "air_station", "lon": CITY_HALL[0], "lat": CITY_HALL[1],
             "datastreams": [{"quantity": "pm10"}, {"quantity": "o3"}]},
            {"key": "fsdot", "name": "S-DoT", "kind": "sdot", "lon": COEX[0], "lat": COEX[1],
             "datastreams": [{"quantity": "temperature", "sentinels": [-40, 100]}, {"quantity": "humidity", "sentinels": [-40, 100]}]},
            {"key": "fhot", "name": "Hotspot", "kind": "hotspot", "lon": GYEONGBOKGUNG[0], "lat": GYEONGBOKGUNG[1],
             "datastreams": [{"quantity": "congestion_level"}]},
            {"key": "fair2", "name": "Air 2", "kind": "air_station", "lon": MYEONGDONG[0], "lat": MYEONGDONG[1],
             "datastreams": [{"quantity": "humidity"}]},
        ])
        assert [ids[k] for k in HYPO_KEYS] == [1, 2, 3, 4, 5, 6]
        sentinels = {k: (-40.0, 100.0) for k in ("sdot1:temperature", "sdot1:humidity", "fsdot:temperature", "fsdot:humidity")}
        streams = [Stream(i, k, k.split(":")[1], sentinels.get(k, ())) for k, i in ids.items()]
        yield World(platform, client, streams)


# -- payload generation -----------------------------------------------------------------

@dataclass
class Row:
    """One generated row: its JSON text, and what the oracle needs (None fields mean 'malformed')."""

    text: str
    malformed: bool = False
    ref: int | str | None = None
    t_us: int | None = None
    result: float | None = None
    unit: str | None = None


def _row_text(fields: dict[str, str]) -> str:
    return "{" + ",".join(f"{json.dumps(k)}:{v}" for k, v in fields.items()) + "}"


FAR_TIMES = [datetime(9999, 6, 1, tzinfo=timezone.utc), datetime(1, 1, 2, tzinfo=timezone.utc),
             datetime(1970, 1, 1, tzinfo=timezone.utc), datetime(2100, 1, 1, tzinfo=timezone.utc)]


def _us(dt: datetime) -> int:
    return (dt - datetime(1970, 1, 1, tzinfo=timezone.utc)) // timedelta(microseconds=1)


@st.composite
def good_shape_rows(draw) -> Row:
    """Rows that parse: the checks after parsing decide. Weighted so that every reason, and acceptance, is common."""
    pick = draw(st.integers(0, 9))
    if pick == 0:
        ref = draw(st.sampled_from([0, -1, 999_999, 2**63, 2**64, -(2**63) - 1, "", "nope", "air1:pm25", "AIR1:PM10", "1"]))
    elif pick < 5:
        ref = draw(st.sampled_from(HYPO_KEYS))
    else:
        ref = draw(st.integers(1, 6))  # the ids of HYPO_KEYS
    pick = draw(st.integers(0, 9))
    if pick == 0:
        dt = draw(st.sampled_from(FAR_TIMES))
        t_us = _us(dt)
        t_text = json.dumps(dt.isoformat())
    else:
        if pick < 6:
            offset = draw(st.sampled_from([-k * 60 * US for k in range(6)]))  # a small pool, so duplicates happen
        elif pick < 9:
            offset = draw(st.integers(-2 * DAY_US, 200 * US))
        else:
            offset = draw(st.one_of(
                st.sampled_from([0, 300 * US, 300 * US + 1, 301 * US, -30 * DAY_US, -30 * DAY_US - 1, -31 * DAY_US]),
                st.integers(-35 * DAY_US, 2 * DAY_US),
            ))
        t_us = NOW + offset
        tz = draw(st.sampled_from([0, 540, -300, 330, 840, -720]))
        text = iso(t_us, tz)
        if tz == 0 and draw(st.booleans()):
            text = text.replace("+00:00", "Z")
        t_text = json.dumps(text)
    pick = draw(st.integers(0, 9))
    if pick < 5:
        value = draw(st.one_of(st.floats(0, 1, allow_nan=False), st.integers(1, 4).map(float), st.sampled_from([0.5, 1.5, 2.5, 3.5])))
    elif pick < 7:
        value = draw(st.sampled_from([-40.0, 100.0]))  # S-DoT sentinels
    elif pick < 9:
        value = draw(st.floats(-1e6, 1e6, allow_nan=False, allow_infinity=False))
    else:
        value = draw(st.sampled_from([0.0, -0.0, 50.0, 50.000001, -35.0, 1000.0, 2000.0, 2000.5, 1e308, -1e308, 5e-324, 4.5]))
    value_text = repr(value)
    if value.is_integer() and abs(value) < 1e18 and draw(st.booleans()):
        value_text = json.dumps(int(value))
    pick = draw(st.integers(0, 9))
    stream_quantity = {k: k.split(":")[1] for k in HYPO_KEYS}.get(ref if isinstance(ref, str) else (HYPO_KEYS[ref - 1] if type(ref) is int and 1 <= ref <= 6 else ""))
    if pick < 6 or stream_quantity is None:
        unit = None if pick < 6 else draw(st.sampled_from(ALL_UNITS))
    elif pick < 8:
        unit = draw(st.sampled_from(sorted(u for u in QUANTITIES[stream_quantity][3] if u)))
    else:
        unit = draw(st.sampled_from(ALL_UNITS))
    fields = {"datastream": json.dumps(ref), "phenomenonTime": t_text, "result": value_text}
    if unit is not None or draw(st.booleans()):
        fields["unit"] = json.dumps(unit)
    return Row(_row_text(fields), ref=ref, t_us=t_us, result=float(value_text), unit=unit)


@st.composite
def malformed_rows(draw) -> Row:
    """Rows that cannot be read as an observation at all."""
    base = {"datastream": "1", "phenomenonTime": json.dumps(iso(NOW)), "result": "12.5"}
    kind = draw(st.sampled_from(["missing", "wrong_type", "naive", "extra", "junk", "bad_number"]))
    if kind == "missing":
        del base[draw(st.sampled_from(sorted(base)))]
    elif kind == "wrong_type":
        name = draw(st.sampled_from(["datastream", "phenomenonTime", "result", "unit"]))
        base[name] = draw(st.sampled_from({
            "datastream": ["1.5", "true", "null", "[1]", '{"id": 1}'],
            "phenomenonTime": ["12345", '"yesterday"', "null", '"2025-06-15T25:00:00Z"', '"2025-06-15T03:00:00+24:00"', "[]"],
            "result": ['"12"', "true", "null", "[1]", '{"v": 1}', '"NaN"', '"Infinity"'],
            "unit": ["5", "true", '["ppm"]'],
        }[name]))
    elif kind == "naive":
        base["phenomenonTime"] = json.dumps(iso(NOW)[:-6])
    elif kind == "extra":
        base[draw(st.sampled_from(["zzz", "Datastream", "phenomenontime", "resultTime"]))] = "1"
    elif kind == "bad_number":
        base["result"] = draw(st.sampled_from(["1e400", "-1e400", "1" + "0" * 400]))
    else:
        junk = draw(st.recursive(
            st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=20),
            lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3),
            max_leaves=8,
        ))
        if isinstance(junk, dict):
            junk["zzz"] = 1  # an unknown field: never a valid observation
        return Row(json.dumps(junk), malformed=True)
    return Row(_row_text(base), malformed=True)


payloads = st.lists(st.one_of(good_shape_rows(), good_shape_rows(), good_shape_rows(), malformed_rows()), max_size=25)


# -- the oracle -------------------------------------------------------------------------

def expected_reasons(world: World, rows: list[Row]) -> tuple[list[str | None], list[float | None]]:
    """The documented checks, in order, computed independently of the pipeline."""
    reasons: list[str | None] = []
    values: list[float | None] = []
    for row in rows:
        if row.malformed:
            reasons.append("malformed")
            values.append(None)
            continue
        stream = world.by_ref(row.ref)
        if stream is None:
            reasons.append("unknown_datastream")
            values.append(None)
            continue
        low, high, integer, units = QUANTITIES[stream.quantity]
        conv = units.get(row.unit)
        value = None if conv is None else row.result * conv[0] + conv[1]
        values.append(value)
        if conv is None:
            reasons.append("unknown_unit")
        elif row.result in stream.sentinels:
            reasons.append("sentinel")
        elif not (low <= value <= high):
            reasons.append("out_of_range")
        elif integer and value != round(value):
            reasons.append("not_integer")
        elif row.t_us > NOW + 300 * US:
            reasons.append("future_time")
        elif row.t_us < NOW - 30 * DAY_US:
            reasons.append("too_old")
        else:
            reasons.append(None)
    # duplicates inside the batch: the first row that passed so far wins
    first: dict[tuple[int, int], int] = {}
    for i, row in enumerate(rows):
        if reasons[i] is not None:
            continue
        key = (world.by_ref(row.ref).id, row.t_us)
        if key in first:
            reasons[i] = "duplicate" if values[i] == values[first[key]] else "conflicting_duplicate"
        else:
            first[key] = i
    # duplicates of stored rows
    have = {(ds, t): v for ds, t, v in stored(world.platform)}
    for i, row in enumerate(rows):
        if reasons[i] is None:
            key = (world.by_ref(row.ref).id, row.t_us)
            if key in have:
                reasons[i] = "duplicate" if have[key] == values[i] else "conflicting_duplicate"
    return reasons, values


def quarantined(world: World, batch_id: int) -> set[tuple[int, str]]:
    rows = world.platform.store.reader().execute("SELECT row_index, reason FROM quarantine WHERE batch_id = ?", [batch_id]).fetchall()
    return {(int(i), r) for i, r in rows}


def send(world: World, body: bytes):
    return world.client.post("/api/observations", content=body, headers={"content-type": "application/json"})


def check_batch(world: World, rows: list[Row]) -> dict:
    body = ("[" + ",".join(r.text for r in rows) + "]").encode()
    want, values = expected_reasons(world, rows)
    before = len(stored(world.platform))
    r = send(world, body)
    assert r.status_code == 200, r.text
    res = r.json()
    rejected = {x["index"]: x["reason"] for x in res["rejected"]}
    assert len(rejected) == len(res["rejected"]), "a row is listed twice"
    assert res["accepted"] + len(rejected) == len(rows)
    assert set(rejected.values()) <= set(REASONS)
    assert all(x["detail"] for x in res["rejected"])
    got = [rejected.get(i) for i in range(len(rows))]
    for reason in got:
        event(f"row: {reason or 'accepted'}")
    assert got == want, [(i, rows[i].text, g, w) for i, (g, w) in enumerate(zip(got, want)) if g != w]
    # every refused row is in the quarantine with its reason
    assert quarantined(world, res["batch_id"]) == set(rejected.items())
    # the accepted rows are exactly what the store holds for this batch, in canonical units
    expect = sorted((world.by_ref(rows[i].ref).id, rows[i].t_us, values[i]) for i in range(len(rows)) if want[i] is None)
    assert stored(world.platform, "batch_id = ?", [res["batch_id"]]) == expect
    assert len(stored(world.platform)) == before + len(expect)
    return res


# -- properties -------------------------------------------------------------------------

def mk(ref: int | str, t_us: int, value: float, unit: str | None = None) -> Row:
    fields = {"datastream": json.dumps(ref), "phenomenonTime": json.dumps(iso(t_us, 540)), "result": repr(value)}
    if unit is not None:
        fields["unit"] = json.dumps(unit)
    return Row(_row_text(fields), ref=ref, t_us=t_us, result=value, unit=unit)


EVERY_REASON = [
    mk(1, NOW - 7 * US, 12.0), mk("air1:pm10", NOW - 7 * US, 12.0), mk(1, NOW - 7 * US, 13.0),  # accepted, duplicate, conflicting
    Row('{"datastream": 1}', malformed=True), mk(77_777, NOW, 1.0), mk(2, NOW - 7 * US, 1.0, "furlongs"),
    mk(3, NOW - 7 * US, -40.0), mk(4, NOW - 7 * US, 100.0), mk(2, NOW - 7 * US, 1.5), mk(5, NOW - 7 * US, 2.5),
    mk(6, NOW + 301 * US, 50.0), mk(6, NOW - 31 * DAY_US, 50.0), mk(2, NOW - 8 * US, 48.0, "ppb"),
]


@HYPO
@given(rows=payloads)
@example(rows=EVERY_REASON)
def test_every_row_is_stored_or_quarantined_with_its_reason(world, rows):
    res = check_batch(world, rows)
    # sending the same batch again changes nothing: what was accepted is now a duplicate
    n_before = len(stored(world.platform))
    again = check_batch(world, rows)
    assert again["accepted"] == 0
    assert len(stored(world.platform)) == n_before
    accepted_before = set(range(len(rows))) - {x["index"] for x in res["rejected"]}
    assert all(x["reason"] == "duplicate" for x in again["rejected"] if x["index"] in accepted_before)


def _not_an_array(body: bytes) -> bool:
    try:
        msgspec.json.decode(body, type=list[msgspec.Raw])
    except msgspec.DecodeError:
        return True
    return False


bodies = st.one_of(
    st.binary(max_size=200),
    st.text(max_size=100).map(lambda s: s.encode("utf-8")),
    st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=10),
                 lambda c: st.dictionaries(st.text(max_size=5), c, max_size=3), max_leaves=5).map(lambda v: json.dumps(v).encode()),
    st.sampled_from([b"", b"[", b"[{", b"[1,]", b"[NaN]", b'[{"result": NaN}]', b"[Infinity]", b"null", b"{}", b"\x00[]",
                     b'{"datastream": 1}', b"\xff\xfe[]"]),
)


@HYPO
@given(body=bodies)
def test_a_body_that_is_not_an_array_is_400_and_quarantined(world, body):
    assume(_not_an_array(body))
    r = send(world, body)
    assert r.status_code == 400, r.text
    res = r.json()
    assert res["reason"] == "malformed" and res["error"]
    rows = world.platform.store.reader().execute(
        "SELECT row_index, reason, payload FROM quarantine WHERE batch_id = ?", [res["batch_id"]]).fetchall()
    assert len(rows) == 1
    index, reason, payload = rows[0]
    assert (index, reason) == (-1, "malformed")
    assert payload == body.decode("utf-8", "replace")


# -- fixed cases, one per rule ----------------------------------------------------------

def ids(world: World) -> dict[str, int]:
    """The fixed cases' datastreams, named like the random ones: "air1:pm10" -> id of "fair:pm10"."""
    return {s.key[1:].replace("air:", "air1:").replace("sdot:", "sdot1:").replace("hot:", "hot1:"): s.id
            for s in world.streams if s.key.startswith("f")}


def fresh_time(world: World) -> int:
    """A time no other test uses: seconds before NOW, moving back one per call."""
    fresh_time.n = getattr(fresh_time, "n", 0) + 1
    return NOW - 2 * DAY_US - fresh_time.n * 7 * US - 123


def reasons_of(res: dict, n: int) -> list[str | None]:
    got = {x["index"]: x["reason"] for x in res["rejected"]}
    return [got.get(i) for i in range(n)]


def test_time_window_boundaries(world):
    ds = ids(world)["air1:pm10"]
    rows = [obs(ds, NOW + 300 * US, 1.0), obs(ds, NOW + 300 * US + 1, 1.0), obs(ds, NOW - 30 * DAY_US, 1.0),
            obs(ds, NOW - 30 * DAY_US - 1, 1.0), obs(ds, NOW + 3650 * DAY_US, 1.0), obs(ds, NOW - 3650 * DAY_US, 1.0),
            {"datastream": ds, "phenomenonTime": iso(NOW - 10 * US)[:-6], "result": 1.0}]
    res = post(world.client, rows)
    assert reasons_of(res, 7) == [None, "future_time", None, "too_old", "future_time", "too_old", "malformed"]


def test_offsets_are_honoured(world):
    ds = ids(world)["air1:pm10"]
    t = fresh_time(world)
    res = post(world.client, [obs(ds, t, 3.0, offset_minutes=540)])  # same instant written in KST
    assert res["accepted"] == 1
    assert stored(world.platform, "batch_id = ?", [res["batch_id"]]) == [(ds, t, 3.0)]
    again = post(world.client, [obs(ds, t, 3.0, offset_minutes=-300)])  # and in EST: the same observation
    assert reasons_of(again, 1) == ["duplicate"]


def test_ranges_sentinels_and_whole_numbers(world):
    i = ids(world)
    t = fresh_time(world)
    rows = [
        obs(i["air1:pm10"], t, 0.0), obs(i["air1:pm10"], t + 1, 2000.0), obs(i["air1:pm10"], t + 2, 2000.0000001),
        obs(i["air1:pm10"], t + 3, -0.001),
        obs(i["sdot1:temperature"], t, -40.0),  # S-DoT sentinel (also out of range, sentinel is checked first)
        obs(i["sdot1:humidity"], t, 100.0),  # S-DoT sentinel inside the plausible range
        obs(i["air2:humidity"], t, 100.0),  # the same value on a datastream without sentinels is fine
        obs(i["sdot1:humidity"], t + 1, 99.5),
        obs(i["hot1:congestion_level"], t, 2.5), obs(i["hot1:congestion_level"], t + 1, 3.0), obs(i["hot1:congestion_level"], t + 2, 5.0),
        obs(i["sdot1:temperature"], t + 1, -35.0),
    ]
    res = post(world.client, rows)
    assert reasons_of(res, len(rows)) == [None, None, "out_of_range", "out_of_range", "sentinel", "sentinel", None, None,
                                          "not_integer", None, "out_of_range", None]


def test_unknown_datastreams_and_units(world):
    i = ids(world)
    t = fresh_time(world)
    rows = [obs(999, t, 1.0), obs("no:such", t, 1.0), obs(0, t, 1.0), obs(i["air1:pm10"], t, 1.0, unit="ppm"),
            obs(i["air1:o3"], t, 1.0, unit="ug/m3"), obs(i["air1:pm10"], t + 1, 1.0, unit="µg/m³")]
    res = post(world.client, rows)
    assert reasons_of(res, 6) == ["unknown_datastream", "unknown_datastream", "unknown_datastream", "unknown_unit", "unknown_unit", None]


@pytest.mark.parametrize(
    ("key", "value", "unit", "canonical"),
    [
        ("air1:o3", 48.0, "ppb", 0.048),
        ("air1:o3", 0.048, "ppm", 0.048),
        ("air1:pm10", 0.035, "mg/m3", 35.0),
        ("air1:pm10", 35.0, "㎍/㎥", 35.0),
        ("sdot1:temperature", 77.0, "degF", 25.0),
        ("sdot1:temperature", 300.0, "K", 26.85),
        ("sdot1:temperature", 21.5, "℃", 21.5),
    ],
)
def test_unit_conversion_stores_the_canonical_value(world, key, value, unit, canonical):
    ds = ids(world)[key]
    t = fresh_time(world)
    res = post(world.client, [obs(ds, t, value, unit=unit)])
    assert res["accepted"] == 1, res
    [(got_ds, got_t, got_v)] = stored(world.platform, "batch_id = ?", [res["batch_id"]])
    assert (got_ds, got_t) == (ds, t)
    assert got_v == pytest.approx(canonical, rel=1e-12)
    hist = world.client.get("/api/history", params={"datastream": str(ds), "resolution": "raw", "start": str(t // 1000), "end": str(t // 1000 + 1)}).json()
    assert hist["unit"] in {"ppm", "ug/m3", "degC"} and hist["v"] == [got_v]
    # the same reading sent again in the other unit is the same observation
    again = post(world.client, [obs(ds, t, canonical if unit not in ("K", "degF") else got_v)])
    assert reasons_of(again, 1) == ["duplicate"]


def test_out_of_range_after_conversion(world):
    ds = ids(world)["air1:o3"]
    t = fresh_time(world)
    res = post(world.client, [obs(ds, t, 1001.0, unit="ppb"), obs(ds, t + 1, 999.0, unit="ppb")])  # 1.001 ppm > 1 ppm
    assert reasons_of(res, 2) == ["out_of_range", None]


def test_duplicates_within_a_batch(world):
    i = ids(world)
    t = fresh_time(world)
    ds, key = i["air1:pm10"], "fair:pm10"
    rows = [obs(ds, t, 10.0), obs(key, t, 10.0), obs(ds, t, 11.0), obs(key, t, 0.01, unit="mg/m3"),
            obs(ds, t + 1, 5.0), obs(ds, t + 1, 5.0, offset_minutes=540)]
    res = post(world.client, rows)
    assert reasons_of(res, 6) == [None, "duplicate", "conflicting_duplicate", "duplicate", None, "duplicate"]
    assert stored(world.platform, "batch_id = ?", [res["batch_id"]]) == [(ds, t, 10.0), (ds, t + 1, 5.0)]


def test_first_valid_row_wins_a_duplicate(world):
    ds = ids(world)["air1:pm10"]
    t = fresh_time(world)
    res = post(world.client, [obs(ds, t, 5000.0), obs(ds, t, 7.0), obs(ds, t, 7.5)])
    assert reasons_of(res, 3) == ["out_of_range", None, "conflicting_duplicate"]


def test_duplicates_across_batches_never_overwrite(world):
    ds = ids(world)["air1:pm10"]
    t = fresh_time(world)
    first = post(world.client, [obs(ds, t, 20.0), obs(ds, t + 1, 21.0)])
    assert first["accepted"] == 2
    again = post(world.client, [obs(ds, t, 20.0), obs(ds, t + 1, 99.0), obs(ds, t + 2, 22.0)])
    assert reasons_of(again, 3) == ["duplicate", "conflicting_duplicate", None]
    assert stored(world.platform, "datastream_id = ? AND epoch_us(phenomenon_time) BETWEEN ? AND ?", [ds, t, t + 2]) == [
        (ds, t, 20.0), (ds, t + 1, 21.0), (ds, t + 2, 22.0)]
    assert "21" in next(x["detail"] for x in again["rejected"] if x["reason"] == "conflicting_duplicate")


def test_batches_committed_together_still_see_each_other(world):
    """Batches that queue up while the writer is busy are validated and committed as one group."""
    platform = world.platform
    ds = ids(world)["air1:pm10"]
    t = fresh_time(world)
    gate = threading.Event()
    blocker = platform.pipeline.call(lambda: gate.wait(10))

    def batch(rows):
        return decode_json(msgspec.json.encode(rows), platform.registry, "api")

    f1 = platform.pipeline.submit(batch([obs(ds, t, 1.0), obs(ds, t + 1, 2.0)]))
    f2 = platform.pipeline.submit(batch([obs(ds, t + 1, 2.0), obs(ds, t, 1.5), obs(ds, t + 2, 3.0), obs(ds, t + 2, 3.0)]))
    gate.set()
    blocker.result(10)
    r1, r2 = f1.result(10), f2.result(10)
    assert r1.batch_id != r2.batch_id
    assert (r1.accepted, r1.rejected) == (2, [])
    assert r2.accepted == 1
    assert [(x.index, x.reason) for x in r2.rejected] == [(0, "duplicate"), (1, "conflicting_duplicate"), (3, "duplicate")]
    # the details name rows as their sender numbered them, not by position in the merged group
    assert "row 1 of this batch" not in r2.rejected[0].detail and "row 1 " in r2.rejected[0].detail
    assert "row 0 of this batch" not in r2.rejected[1].detail and "row 0 " in r2.rejected[1].detail
    assert "row 2 of this batch" in r2.rejected[2].detail
    assert quarantined(world, r2.batch_id) == {(0, "duplicate"), (1, "conflicting_duplicate"), (3, "duplicate")}
    assert quarantined(world, r1.batch_id) == set()
    assert stored(world.platform, "batch_id = ?", [r1.batch_id]) == [(ds, t, 1.0), (ds, t + 1, 2.0)]
    assert stored(world.platform, "batch_id = ?", [r2.batch_id]) == [(ds, t + 2, 3.0)]


def test_quarantine_endpoint_lists_refused_rows(world):
    ds = ids(world)["sdot1:temperature"]
    t = fresh_time(world)
    res = post(world.client, [obs(ds, t, 100.0), obs(ds, t + 1, 20.0), {"datastream": ds}], source="quarantine-test")
    assert reasons_of(res, 3) == ["sentinel", None, "malformed"]
    body = world.client.get("/api/quarantine", params={"source": "quarantine-test"}).json()
    items = {(x["batch_id"], x["row_index"]): x for x in body["items"]}
    assert set(items) == {(res["batch_id"], 0), (res["batch_id"], 2)}
    assert items[(res["batch_id"], 0)]["reason"] == "sentinel" and items[(res["batch_id"], 2)]["reason"] == "malformed"
    assert json.loads(items[(res["batch_id"], 0)]["payload"])["result"] == 100.0
    assert items[(res["batch_id"], 0)]["datastream"] == str(ds)
    assert body["counts"]["sentinel"] >= 1 and body["counts"]["malformed"] >= 1
    only = world.client.get("/api/quarantine", params={"source": "quarantine-test", "reason": "sentinel"}).json()["items"]
    assert [(x["batch_id"], x["row_index"]) for x in only] == [(res["batch_id"], 0)]
    assert world.client.get("/api/quarantine", params={"limit": 0}).status_code == 422


def test_large_batch_is_judged_row_by_row(world):
    """Bodies over 64 KiB are parsed off the event loop; the verdict is the same."""
    ds = ids(world)["air1:pm10"]
    t0 = NOW - 3 * DAY_US
    rows = [obs(ds, t0 + k * US, float(k % 2500)) for k in range(3000)]
    res = post(world.client, rows)
    bad = {k for k in range(3000) if k % 2500 > 2000}
    assert {x["index"] for x in res["rejected"]} == bad
    assert {x["reason"] for x in res["rejected"]} == {"out_of_range"}
    assert res["accepted"] == 3000 - len(bad)
    assert len(stored(world.platform, "batch_id = ?", [res["batch_id"]])) == res["accepted"]


@given(st.lists(st.tuples(st.sampled_from([0, 1, 2, 7, 2**20, 2**31 - 1]), st.sampled_from([0, 1, 2, 10**6, 2**40, -2**40, 2**62, -2**63])),
                max_size=60), st.booleans())
def test_the_fast_stream_time_order_is_the_stable_pair_order(rows, small):
    """The packed-key sort must give exactly np.lexsort's stable (datastream, time) order,
    whether the keys fit one int64 (small ids and spans) or not."""
    ds = np.array([d % 8 if small else d for d, _ in rows], dtype=np.int64)
    t = np.array([x % 1000 if small else x for _, x in rows], dtype=np.int64)
    assert order_by_stream_time(ds, t).tolist() == np.lexsort((t, ds)).tolist()

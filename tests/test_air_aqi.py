"""The US EPA AQI (2024 PM2.5 table), the option beside Korea's CAI: breakpoints, truncation, the
pollutants whose table stops short, and the live computation from the store."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from conftest import CITY_HALL, JUNG_GU, obs, post, register, running, thing

from citywall.air import aqi, aqi_sub_index
from citywall.air.aqi import BREAKPOINTS, BeyondTable


@pytest.mark.parametrize(("pollutant", "c", "expected"), [
    ("pm25", 0.0, 0), ("pm25", 9.0, 50), ("pm25", 9.1, 51), ("pm25", 35.4, 100), ("pm25", 35.49, 100),  # truncated to 35.4
    ("pm25", 12.0, 56),  # 49 / 26.3 x 2.9 + 51 = 56.4
    ("pm25", 100.0, 182),  # 49 / 69.9 x 44.5 + 151 = 182.2
    ("pm25", 225.5, 301),  # the 2024 table: Hazardous starts at 225.5 (was 250.5)
    ("pm25", 325.4, 500), ("pm25", 900.0, 500),
    ("pm10", 154, 100), ("pm10", 155, 101), ("pm10", 200, 123),  # 49 / 99 x 45 + 101 = 123.3
    ("o3", 0.070, 100), ("o3", 0.071, 101), ("o3", 0.2, 300),
    ("co", 9.4, 100), ("co", 9.5, 101),
    ("no2", 0.100, 100), ("no2", 0.101, 101),  # ppm in, the table's ppb inside
    ("so2", 0.075, 100), ("so2", 0.304, 200),
])
def test_sub_indices_by_hand(pollutant: str, c: float, expected: int) -> None:
    assert aqi_sub_index(pollutant, c) == expected


@pytest.mark.parametrize(("pollutant", "c"), [("o3", 0.25), ("so2", 0.4)])
def test_beyond_the_averaging_times_table_is_an_error_not_a_number(pollutant: str, c: float) -> None:
    with pytest.raises(BeyondTable, match="another averaging time"):
        aqi_sub_index(pollutant, c)


def test_the_index_is_the_highest_sub_index_without_a_penalty() -> None:
    r = aqi(pm25=12.0, pm10=200, o3=0.06, no2=0.05)
    assert (r.index, r.pollutant, r.as_dict()["grade"]) == (123, "pm10", "usg")
    assert r.sub_indices == {"pm10": 123, "pm25": 56, "o3": aqi_sub_index("o3", 0.06), "no2": 47}
    assert aqi() is None
    with pytest.raises(ValueError, match="finite number"):
        aqi(pm25=-1)


@given(pollutant=st.sampled_from(sorted(BREAKPOINTS)), a=st.floats(0, 2000), b=st.floats(0, 2000))
def test_more_pollution_never_gives_a_lower_index(pollutant: str, a: float, b: float) -> None:
    scale = 1 / 1000 if pollutant in ("o3", "co", "no2", "so2") else 1
    lo, hi = sorted((a * scale, b * scale))
    try:
        assert aqi_sub_index(pollutant, lo) <= aqi_sub_index(pollutant, hi)
    except BeyondTable:
        pass


HOUR_US = 3_600_000_000
NOW_US = 1_790_000_000_000_000 - 1_790_000_000_000_000 % HOUR_US + 20 * 60_000_000


def test_live_aqi_uses_each_pollutants_own_averaging_time(db) -> None:
    """24 hours of one station: PM from the 24 h mean, O3 and CO from the last 8 hours, NO2 from the
    newest hour; /api/air?index=aqi gives the station's and its district's AQI, the default stays the CAI."""
    quantities = ["pm10", "pm25", "o3", "no2", "co"]
    with running(db, now_us=NOW_US) as (platform, client, _):
        ids = register(client, [thing("air:jung", CITY_HALL, [{"quantity": q, "interval_s": 3600} for q in quantities])])
        first = NOW_US - NOW_US % HOUR_US - 23 * HOUR_US
        series = {"pm10": [40.0] * 12 + [160.0] * 12, "pm25": [10.0] * 24, "o3": [0.01] * 16 + [0.06] * 8,
                  "no2": [0.02] * 23 + [0.09], "co": [0.5] * 24}
        post(client, [obs(ids[f"air:jung:{q}"], first + h * HOUR_US, v) for q, vs in series.items() for h, v in enumerate(vs)])
        expected = aqi(pm10=100.0, pm25=10.0, o3=0.06, no2=0.09, co=0.5)
        got = client.get("/api/air?index=aqi").json()
        assert got["scale"] == "aqi" and got["stations"]["air:jung"]["aqi"]["index"] == expected.index
        assert got["gu"][JUNG_GU]["pollutant"] == expected.pollutant and got["gu"][JUNG_GU]["grade"] == expected.as_dict()["grade"]
        assert client.get("/api/air?index=nope").status_code == 422

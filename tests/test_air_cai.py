"""Korea's CAI (통합대기환경지수): sub-indices, the index with its penalty, the PM prediction and the live inputs.

Expected values come from ../shared/reference/air-quality.md or are computed by hand in the comments from
Ip = (IHI - ILO) / (BPHI - BPLO) x (Cp - BPLO) + ILO, rounded half up, after truncating Cp to the table's
precision (PM to integers, O3/NO2/SO2 to 3 decimals, CO to 2).
"""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from citywall.air.cai import cai, grade_of, pm_predicted_24h, sub_index
from citywall.air.live import HOUR_US, MAX_LAG_HOURS, combine, station_inputs
from conftest import FIXED_NOW_US

# Top of each pollutant's table (the 매우나쁨 band's upper breakpoint), from the reference.
TOP = {"so2": 1.0, "no2": 2.0, "co": 50.0, "o3": 0.6, "pm10": 600.0, "pm25": 500.0}


# -- sub-indices -------------------------------------------------------------------------------

@pytest.mark.parametrize("pollutant, conc, expected", [
    ("pm25", 40, 116),   # (250-101)/(75-36) x (40-36) + 101 = 116.28
    ("pm10", 100, 142),  # (250-101)/(150-81) x (100-81) + 101 = 142.03
    ("o3", 0.1, 124),    # (250-101)/(0.150-0.091) x (0.100-0.091) + 101 = 123.73
    ("no2", 0.07, 111),  # (250-101)/(0.200-0.061) x (0.070-0.061) + 101 = 110.65
])
def test_reference_worked_values(pollutant, conc, expected):
    """The worked examples printed in the reference."""
    assert sub_index(pollutant, conc) == expected


@pytest.mark.parametrize("pollutant, conc, expected", [
    ("so2", 0.001, 3),   # 50/0.020 x 0.001 = 2.5 -> 3 (half up, not banker's 2)
    ("so2", 0.03, 66),   # 49/0.029 x (0.030-0.021) + 51 = 66.21
    ("so2", 0.1, 175),   # 149/0.099 x (0.100-0.051) + 101 = 174.75
    ("no2", 0.045, 75),  # 49/0.029 x (0.045-0.031) + 51 = 74.66
    ("no2", 0.5, 292),   # 249/1.799 x (0.500-0.201) + 251 = 292.38
    ("co", 0.1, 3),      # 50/2 x 0.1 = 2.5 -> 3 (half up)
    ("co", 5, 72),       # 49/6.99 x (5-2.01) + 51 = 71.96
    ("co", 12, 175),     # 149/5.99 x (12-9.01) + 101 = 175.38
    ("o3", 0.05, 67),    # 49/0.059 x (0.050-0.031) + 51 = 66.78
    ("o3", 0.2, 278),    # 249/0.449 x (0.200-0.151) + 251 = 278.17
    ("pm10", 10, 17),    # 50/30 x 10 = 16.67
    ("pm10", 50, 70),    # 49/49 x (50-31) + 51 = 70
    ("pm10", 200, 278),  # 249/449 x (200-151) + 251 = 278.17
    ("pm25", 3, 10),     # 50/15 x 3 = 10
    ("pm25", 25, 74),    # 49/19 x (25-16) + 51 = 74.21
    ("pm25", 100, 265),  # 249/424 x (100-76) + 251 = 265.09
])
def test_hand_computed_sub_indices(pollutant, conc, expected):
    assert sub_index(pollutant, conc) == expected


@pytest.mark.parametrize("pollutant, conc, expected", [
    ("so2", 0.0205, 50),   # truncates to 0.020, the top of 좋음, not into the 0.020..0.021 gap
    ("pm25", 15.9, 50),    # -> 15
    ("pm25", 16, 51),      # bottom of 보통
    ("pm10", 30.99, 50),   # -> 30
    ("co", 2.009, 50),     # -> 2.00
    ("no2", 0.0309, 50),   # -> 0.030
    ("o3", 0.0909, 100),   # -> 0.090, top of 보통
    ("pm10", 150.7, 250),  # -> 150, top of 나쁨
])
def test_truncation_closes_band_gaps(pollutant, conc, expected):
    """Values between two bands' breakpoints fall into the lower band after truncation."""
    assert sub_index(pollutant, conc) == expected


# (top of 좋음, bottom of 보통, top of 보통, bottom of 나쁨, top of 나쁨, bottom of 매우나쁨, top of table)
EDGES = {
    "so2": (0.020, 0.021, 0.050, 0.051, 0.150, 0.151, 1.0),
    "no2": (0.030, 0.031, 0.060, 0.061, 0.200, 0.201, 2.0),
    "co": (2.0, 2.01, 9.0, 9.01, 15.0, 15.01, 50.0),
    "o3": (0.030, 0.031, 0.090, 0.091, 0.150, 0.151, 0.6),
    "pm10": (30, 31, 80, 81, 150, 151, 600),
    "pm25": (15, 16, 35, 36, 75, 76, 500),
}


@pytest.mark.parametrize("pollutant", sorted(EDGES))
def test_band_edges(pollutant):
    """Each band's top breakpoint maps to 50/100/250/500, the next one up to 51/101/251; zero is 0."""
    got = [sub_index(pollutant, c) for c in EDGES[pollutant]]
    assert got == [50, 51, 100, 101, 250, 251, 500]
    assert sub_index(pollutant, 0) == 0
    assert sub_index(pollutant, TOP[pollutant] * 1.5) == 500  # above the table: capped


@pytest.mark.parametrize("pollutant, conc", [("nh3", 1.0), ("pm1", 10.0), ("pm10", -1.0), ("o3", -0.001),
                                             ("pm25", math.nan), ("co", math.inf), ("no2", None)])
def test_sub_index_rejects_unknown_pollutants_and_bad_concentrations(pollutant, conc):
    with pytest.raises(ValueError):
        sub_index(pollutant, conc)


def test_huge_finite_concentration_is_capped_at_500():
    """Values above the table are reported at 500, however large (1e306 x 1000 would overflow the
    truncation: it was an OverflowError before the cap came first)."""
    assert sub_index("so2", 1e306) == 500


@given(st.sampled_from(sorted(TOP)), st.data())
def test_sub_index_is_monotone_and_bounded(pollutant, data):
    """More pollution never gives a lower sub-index, and the sub-index stays in 0..500."""
    conc = st.floats(min_value=0, max_value=TOP[pollutant] * 2, allow_nan=False, allow_infinity=False)
    a, b = sorted((data.draw(conc), data.draw(conc)))
    ia, ib = sub_index(pollutant, a), sub_index(pollutant, b)
    assert 0 <= ia <= ib <= 500


# -- the index ---------------------------------------------------------------------------------

def test_highest_sub_index_decides():
    # pm10 50 -> 70, pm25 25 -> 74, no2 0.045 -> 75, o3 0.05 -> 67: no2 decides, none 나쁨, no penalty
    r = cai(pm10=50, pm25=25, no2=0.045, o3=0.05)
    assert (r.index, r.pollutant, r.grade_info["code"]) == (75, "no2", "moderate")
    assert r.sub_indices == {"pm10": 70, "pm25": 74, "no2": 75, "o3": 67}


def test_penalty_for_two_unhealthy_pollutants():
    # pm10 100 -> 142, pm25 40 -> 116 (both 나쁨), o3 0.05 -> 67, no2 0.02 -> 33: 142 + 50
    r = cai(pm10=100, pm25=40, o3=0.05, no2=0.02)
    assert (r.index, r.pollutant) == (192, "pm10")


def test_penalty_for_three_or_more_unhealthy_pollutants():
    # pm10 142, pm25 116, o3 0.1 -> 124: three 나쁨, 142 + 75; a fourth (no2 0.07 -> 111) adds no more
    assert cai(pm10=100, pm25=40, o3=0.1, no2=0.02).index == 217
    assert cai(pm10=100, pm25=40, o3=0.1, no2=0.07).index == 217


def test_exactly_100_is_not_unhealthy():
    """The penalty counts sub-indices above 100 (나쁨 starts at 101)."""
    # pm10 80 -> 100, pm25 35 -> 100, o3 0.1 -> 124: only one 나쁨, no penalty
    assert cai(pm10=80, pm25=35, o3=0.1, no2=0.02).index == 124


def test_penalty_is_capped_at_500():
    # pm10 500 -> 249/449 x 349 + 251 = 444.55 -> 445; with pm25 116 and o3 124: 445 + 75 = 520 -> 500
    r = cai(pm10=500, pm25=40, o3=0.1, no2=0.02)
    assert (r.index, r.pollutant, r.grade_info["code"]) == (500, "pm10", "very_unhealthy")


@pytest.mark.parametrize("missing", ["pm10", "pm25", "no2", "o3"])
def test_no_index_without_a_required_pollutant(missing):
    """AirKorea publishes no CAI unless PM10, PM2.5, NO2 and O3 are all measured; NaN counts as missing."""
    full = {"pm10": 50, "pm25": 25, "no2": 0.045, "o3": 0.05, "co": 0.5, "so2": 0.003}
    assert cai(**{**full, missing: None}) is None
    assert cai(**{**full, missing: math.nan}) is None
    # without require_all the rest still gives an index
    r = cai(**{**full, missing: None}, require_all=False)
    assert r is not None and missing not in r.sub_indices


def test_co_and_so2_are_optional_but_count_when_given():
    assert cai(pm10=50, pm25=25, no2=0.045, o3=0.05).index == 75
    # co 12 -> 175 decides once given
    r = cai(pm10=50, pm25=25, no2=0.045, o3=0.05, co=12)
    assert (r.index, r.pollutant) == (175, "co")


def test_partial_index_and_nothing_at_all():
    r = cai(pm10=50, require_all=False)
    assert (r.index, r.pollutant, r.sub_indices) == (70, "pm10", {"pm10": 70})
    assert cai(require_all=False) is None


@pytest.mark.parametrize("bad", [{"pm10": -5}, {"o3": -0.01}, {"co": math.inf}])
def test_cai_rejects_negative_or_infinite_concentrations(bad):
    with pytest.raises(ValueError):
        cai(**{"pm10": 50, "pm25": 25, "no2": 0.045, "o3": 0.05, **bad})


@pytest.mark.parametrize("pm10, index, code", [
    (0, 0, "good"), (30, 50, "good"), (31, 51, "moderate"), (80, 100, "moderate"),
    (81, 101, "unhealthy"), (150, 250, "unhealthy"), (151, 251, "very_unhealthy"), (600, 500, "very_unhealthy"),
])
def test_grade_codes_follow_the_bands(pm10, index, code):
    d = cai(pm10=pm10, require_all=False).as_dict()
    assert (d["index"], d["grade"], d["pollutant"]) == (index, code, "pm10")


def test_grade_of_band_edges():
    assert [grade_of(i) for i in (0, 50, 51, 100, 101, 250, 251, 500)] == [0, 0, 1, 1, 2, 2, 3, 3]


# -- predicted 24 h PM average (C24E) ----------------------------------------------------------

def test_pm_prediction_without_adjustment():
    # all below M = 70: C12 = 420/12 = 35, C4 = (30+40+50+60)/4 = 45, C24E = (35x12 + 45x12)/24 = 40
    hourly = [10, 20, 30, 40, 50, 60, 10, 20, 30, 40, 50, 60]
    assert pm_predicted_24h(hourly, "pm10") == pytest.approx(40)


def test_pm_prediction_adjusts_short_peaks():
    # raw C12 = (8x40 + 60+80+90+150)/12 = 700/12 = 58.33
    # 80 (>= 70, 80/58.33 = 1.37) -> 60; 90 (1.54) -> 67.5; 150 (2.57 > 1.7) stays; 60 (< M) stays; 40s stay
    # C12 = (320 + 60+60+67.5+150)/12 = 657.5/12, C4 = 337.5/4, C24E = (657.5/12 + 337.5/4)/2 = 835/12 = 69.58
    hourly = [40] * 8 + [60, 80, 90, 150]
    assert pm_predicted_24h(hourly, "pm10") == pytest.approx(835 / 12)


def test_pm_prediction_ratio_below_0_9_is_not_adjusted():
    # raw C12 = (8x200 + 4x75)/12 = 158.33; 200 (1.26) -> 150; 75 (0.47 < 0.9) stays
    # C12 = (8x150 + 4x75)/12 = 125, C4 = 75, C24E = 100
    assert pm_predicted_24h([200] * 8 + [75] * 4, "pm10") == pytest.approx(100)


def test_pm_prediction_threshold_m_per_pollutant():
    """Ci >= M is adjusted (ratio 1.0 here): 70 for PM10, 30 for PM2.5."""
    assert pm_predicted_24h([70] * 12, "pm10") == pytest.approx(52.5)
    assert pm_predicted_24h([69] * 12, "pm10") == pytest.approx(69)
    assert pm_predicted_24h([30] * 12, "pm25") == pytest.approx(22.5)
    assert pm_predicted_24h([29] * 12, "pm25") == pytest.approx(29)


def test_pm_prediction_missing_hours():
    nan = math.nan
    # means over the hours present: C12 = (4x10 + 20 + 40)/6 = 100/6, C4 = (20+40)/2 = 30 -> (100/6 + 30)/2
    assert pm_predicted_24h([10] * 4 + [nan] * 4 + [20, nan, 40, nan], "pm10") == pytest.approx(70 / 3)
    # exactly 4 of 12 present, all in the last 4: C12 = C4 = 25
    assert pm_predicted_24h([nan] * 8 + [10, 20, 30, 40], "pm10") == pytest.approx(25)
    assert pm_predicted_24h([nan] * 9 + [10, 20, 30], "pm10") is None  # 3 of the last 12
    assert pm_predicted_24h([10] * 8 + [nan] * 4, "pm10") is None  # none of the last 4
    assert pm_predicted_24h([], "pm25") is None


def test_pm_prediction_uses_only_the_last_12_hours():
    assert pm_predicted_24h([1000] * 5 + [10] * 12, "pm10") == pytest.approx(10)


# -- live inputs of a station ------------------------------------------------------------------

NOW = FIXED_NOW_US  # 03:30 UTC
HOUR_MS = HOUR_US // 1000
H = NOW // HOUR_US  # the current hour (its start is H x HOUR_MS)


def hours(values: dict[int, float]) -> list[tuple[int, float]]:
    """(hour start ms, mean) points, keyed by hours before the current one."""
    return [((H - ago) * HOUR_MS, v) for ago, v in values.items()]


def test_station_inputs_gases_use_the_newest_hour():
    series = {"no2": hours({2: 0.02, 0: 0.045, 1: 0.03}), "o3": hours({1: 0.05, 3: 0.09})}
    assert station_inputs(series, NOW) == {"no2": 0.045, "o3": 0.05}


def test_station_inputs_pm_uses_the_prediction_over_12_hours():
    pm10 = {ago: 40.0 for ago in range(4, 12)} | {3: 60.0, 2: 80.0, 1: 90.0, 0: 150.0}
    pm10[15] = 500.0  # older than the 12 hours: ignored
    got = station_inputs({"pm10": hours(pm10)}, NOW)
    assert got["pm10"] == pytest.approx(835 / 12)  # the adjusted example above


def test_station_inputs_pm_with_missing_hours():
    # hours 0..3 ago present only, all below M = 30: C12 = C4 = (4+8+12+16)/4 = 10
    assert station_inputs({"pm25": hours({0: 16, 1: 12, 2: 8, 3: 4})}, NOW)["pm25"] == pytest.approx(10)
    # only 3 hours: no prediction, left out
    assert station_inputs({"pm25": hours({0: 16, 1: 12, 2: 8})}, NOW) == {}


def test_station_inputs_leave_out_stale_pollutants():
    """A pollutant whose newest hour is more than MAX_LAG_HOURS old is left out; at the limit it counts."""
    series = {"no2": hours({MAX_LAG_HOURS: 0.03}), "o3": hours({MAX_LAG_HOURS + 1: 0.05}),
              "pm10": hours({ago: 50.0 for ago in range(MAX_LAG_HOURS + 1, MAX_LAG_HOURS + 13)}),
              "so2": []}
    assert station_inputs(series, NOW) == {"no2": 0.03}


def test_station_inputs_pm_window_ends_at_the_newest_hour():
    """A PM series lagging by 2 hours still uses its own last 12 hours, not the last 12 before now."""
    pm10 = {ago: 20.0 for ago in range(2, 14)}
    assert station_inputs({"pm10": hours(pm10)}, NOW)["pm10"] == pytest.approx(20)


def test_combine_averages_per_pollutant():
    a = {"pm10": 40.0, "o3": 0.03}
    b = {"pm10": 60.0, "no2": 0.02}
    c = {"pm10": 80.0, "o3": 0.05}
    assert combine([a, b, c]) == pytest.approx({"pm10": 60.0, "o3": 0.04, "no2": 0.02})
    assert combine([]) == {}

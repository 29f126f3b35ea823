"""Fine-dust advisories: the two-hour rule and the lower lifting thresholds (air-quality.md)."""

from __future__ import annotations

import math

from hypothesis import given
from hypothesis import strategies as st

from citywall.alerts import PM10, PM25, advisory_levels
from citywall.alerts.advisory import ADVISORY, NONE, WARNING

NAN = math.nan


def test_one_high_hour_is_not_an_advisory_two_are() -> None:
    assert advisory_levels([160, 90], PM10) == [NONE, NONE]
    assert advisory_levels([160, 150], PM10) == [NONE, ADVISORY]  # "at or above" 150


def test_hysteresis_an_advisory_stays_until_below_the_lifting_threshold() -> None:
    # Issued at 150+ for 2 h, still in force at 120 and at 100 (not below), lifted at 99.
    assert advisory_levels([155, 170, 120, 100, 99], PM10) == [NONE, ADVISORY, ADVISORY, ADVISORY, NONE]


def test_warning_and_its_downgrade() -> None:
    pm25 = [80, 160, 155, 100, 74, 34]
    # 80: one hour; 160: two hours >= 75 -> 주의보 (only one >= 150); 155: two >= 150 -> 경보;
    # 100: still >= 75, 경보 stays; 74 < 75 -> back to 주의보 (>= 35, so not lifted); 34 < 35 -> lifted.
    assert advisory_levels(pm25, PM25) == [NONE, ADVISORY, WARNING, WARNING, ADVISORY, NONE]


def test_a_warning_falling_below_both_lines_in_one_hour_is_lifted() -> None:
    assert advisory_levels([310, 320, 90], PM10) == [NONE, WARNING, NONE]


def test_a_missing_hour_breaks_the_run_and_lifts_nothing() -> None:
    assert advisory_levels([160, NAN, 160], PM10) == [NONE, NONE, NONE]
    assert advisory_levels([160, 160, NAN, 50], PM10) == [NONE, ADVISORY, ADVISORY, NONE]


@given(st.lists(st.one_of(st.floats(0, 700, allow_nan=False), st.just(NAN)), max_size=48))
def test_levels_follow_the_rules_hour_by_hour(hourly: list[float]) -> None:
    levels = advisory_levels(hourly, PM10)
    previous = NONE
    for i, (value, level) in enumerate(zip(hourly, levels)):
        if math.isnan(value):
            assert level == previous  # nothing changes on a missing hour
        elif level > previous:  # raised only after two consecutive hours at the new level's threshold
            threshold = PM10.warning_at if level == WARNING else PM10.advisory_at
            assert i >= 1 and min(hourly[i - 1], value) >= threshold
        elif level < previous:  # lowered only below the level's own lower line
            assert value < (PM10.warning_down if previous == WARNING else PM10.advisory_lift)
        previous = level

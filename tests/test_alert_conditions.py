"""Alert conditions on recorded series: duration, hysteresis, rate of change, frozen and stale."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from citywall.alerts.conditions import Frozen, RateOfChange, Stale, Threshold

MIN = 60_000


def run(cond, series: list[tuple[int, float]]) -> list[tuple[int, bool]]:
    return [(t, s) for t, v in series if (s := cond.feed(t, v)) is not None]


def test_threshold_needs_its_duration() -> None:
    c = Threshold(above=100, for_s=600)
    # Above at 0, 5 and 10 minutes: holds at 10 (600 s); a dip at 3 min would restart the clock.
    assert run(c, [(0, 120), (5 * MIN, 130), (10 * MIN, 125)]) == [(10 * MIN, True)]
    c = Threshold(above=100, for_s=600)
    assert run(c, [(0, 120), (3 * MIN, 90), (5 * MIN, 130), (10 * MIN, 125)]) == []


def test_threshold_hysteresis_clears_only_past_clear_at() -> None:
    c = Threshold(above=100, clear_at=80)
    got = run(c, [(0, 101), (1, 95), (2, 85), (3, 80), (4, 79), (5, 90), (6, 100)])
    assert got == [(0, True), (4, False), (6, True)]


def test_threshold_below_and_bad_definitions() -> None:
    c = Threshold(below=15, clear_at=20)  # road speed under 15 km/h: congested
    assert run(c, [(0, 30), (1, 14), (2, 18), (3, 21)]) == [(1, True), (3, False)]
    with pytest.raises(ValueError, match="exactly one"):
        Threshold(above=1, below=2)
    with pytest.raises(ValueError, match="safe side"):
        Threshold(above=100, clear_at=120)


@given(st.lists(st.floats(0, 200, allow_nan=False), min_size=1, max_size=60))
def test_threshold_state_changes_only_across_its_lines(values: list[float]) -> None:
    c = Threshold(above=100, clear_at=80)
    before = False
    for i, v in enumerate(values):
        change = c.feed(i, v)
        if v >= 100:
            assert c.active  # no duration: at or above the line it holds
        elif v < 80:
            assert not c.active
        else:
            assert c.active == before  # between the lines nothing changes
        assert change == (c.active if c.active != before else None)
        before = c.active


def test_rate_of_change() -> None:
    c = RateOfChange(max_change=10, per_s=60)  # more than 10 units a minute
    assert run(c, [(0, 50), (MIN, 55), (2 * MIN, 80), (3 * MIN, 82)]) == [(2 * MIN, True), (3 * MIN, False)]


def test_frozen_sensor() -> None:
    c = Frozen(readings=3)
    assert run(c, [(0, 21.5), (1, 21.5), (2, 21.5), (3, 21.5), (4, 21.6)]) == [(2, True), (4, False)]
    with pytest.raises(ValueError):
        Frozen(readings=1)


def test_stale_feed() -> None:
    c = Stale(max_age_s=360)  # a 2-minute sensor, three intervals
    c.feed(0, 1.0)
    assert c.tick(6 * MIN) is None
    assert c.tick(6 * MIN + 1) is True
    assert c.tick(7 * MIN) is None  # reported once
    assert c.feed(8 * MIN, 2.0) is False
    assert Stale(max_age_s=1).tick(10**9) is None  # never reported: nothing to call stale yet

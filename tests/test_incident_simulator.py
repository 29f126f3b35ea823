"""The simulated incident stream: a pure function of (seed, time) whose windows add up exactly, whose
events every case's lifecycle accepts, and whose open cases at a daytime moment match the demo
figures on Seoul's wall ("화재 2건, 구조 3건, 구급 37건")."""

from __future__ import annotations

from collections import Counter
from datetime import datetime, timezone

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from citywall.alerts.severity import SEVERITIES
from citywall.city.loader import load_city
from citywall.feeds.simulator.incidents import (
    FLOOD_RAIN_THRESHOLD_MM_H, RATES, SLOT_MS, IncidentEvent, IncidentModel,
)
from citywall.feeds.simulator.timebase import local
from citywall.incidents.lifecycle import KINDS, Incident

MIN, HOUR, DAY = 60_000, 3_600_000, 86_400_000
# Monday 16 June 2025, 00:00 KST.
MONDAY = int(datetime(2025, 6, 15, 15, 0, tzinfo=timezone.utc).timestamp()) * 1000


@pytest.fixture(scope="module")
def city():
    return load_city("seoul")


@pytest.fixture(scope="module")
def model(city):
    return IncidentModel(city, seed=2017)


def key(events: list[IncidentEvent]) -> list[tuple]:
    return [(e.at_ms, e.external_id, e.step, e.action) for e in events]


# -- determinism and windows -------------------------------------------------------------------------

def test_same_seed_same_stream_other_seed_other_stream(city, model) -> None:
    window = (MONDAY + 9 * HOUR, MONDAY + 11 * HOUR)
    a = model.events(*window)
    assert a == IncidentModel(city, seed=2017).events(*window)
    b = IncidentModel(city, seed=2018).events(*window)
    assert key(a) != key(b)
    assert len(a) > 200  # two daytime hours: ~100 ambulance calls alone, five events each


def test_events_are_sorted_and_inside_the_window(model) -> None:
    start, end = MONDAY + 12 * HOUR + 12_345, MONDAY + 13 * HOUR - 777
    events = model.events(start, end)
    assert all(start <= e.at_ms < end for e in events)
    assert [e.at_ms for e in events] == sorted(e.at_ms for e in events)
    assert model.events(end, start) == [] and model.events(start, start) == []


@settings(max_examples=25, deadline=None)
@given(st.lists(st.integers(min_value=0, max_value=4 * HOUR), min_size=1, max_size=4))
def test_windows_add_up_exactly(splits: list[int]) -> None:
    model = _shared_model()
    start = MONDAY + 8 * HOUR + 41_017
    end = start + 4 * HOUR
    cuts = [start, *sorted(start + s for s in splits), end]
    pieces: list[IncidentEvent] = []
    for a, b in zip(cuts, cuts[1:]):
        pieces.extend(model.events(a, b))
    assert key(pieces) == key(model.events(start, end))


_MODEL: list[IncidentModel] = []


def _shared_model() -> IncidentModel:
    if not _MODEL:
        _MODEL.append(IncidentModel(load_city("seoul"), seed=2017))
    return _MODEL[0]


def test_every_case_fits_in_its_kinds_lookback(model) -> None:
    for kind, rate in RATES.items():
        cases = model.cases(kind, MONDAY - 20 * DAY, MONDAY + 10 * DAY)
        assert cases, kind
        span = max(c.closed_at_ms - c.opened_at_ms for c in cases)
        assert span < rate.lookback_ms, (kind, span)


# -- validity under the lifecycle ------------------------------------------------------------------

def replay(events: list[IncidentEvent], window_start: int) -> dict[str, Incident]:
    """Feed the events through the real state machine, as the platform will."""
    cases: dict[str, Incident] = {}
    for e in events:
        if e.action == "open":
            assert e.external_id not in cases, "opened twice"
            assert e.step == KINDS[e.kind].steps[0].code
            cases[e.external_id] = Incident(e.external_id, KINDS[e.kind], e.at_ms, e.by)
        elif e.external_id in cases:
            cases[e.external_id].advance(e.step, e.at_ms, e.by, e.note)  # raises TransitionError if invalid
        else:  # a case opened before the window
            slot = int(e.external_id.rsplit("-", 2)[1])
            assert slot * SLOT_MS < window_start
    return cases


@pytest.mark.parametrize("day", [0, 45, 180, 210])  # June, late July (rainy season), December, January
def test_every_event_is_valid_for_the_lifecycle(model, city, day: int) -> None:
    start = MONDAY + day * DAY
    events = model.events(start, start + DAY)
    cases = replay(events, start)
    assert len(cases) > 800
    assert set(Counter(c.kind.code for c in cases.values())) >= {"fire", "ems", "rescue", "other"}
    # Cases opened early enough are closed by the end of the day, early closes always with a note.
    for case in cases.values():
        if case.opened_at_ms < start + DAY - RATES[case.kind.code].lookback_ms:
            assert not case.active, case.id
        if case.active:
            continue
        passed = KINDS[case.kind.code].index(case.step) - KINDS[case.kind.code].index(case.timeline[-2].step) - 1
        if passed > 0:
            assert case.timeline[-1].note.strip()
    for e in events:
        assert e.by.strip()
        if e.action == "open":
            assert e.severity in SEVERITIES
            assert city.locate(e.lon, e.lat) == (e.gu, e.dong)
            assert e.title and e.address.startswith("서울특별시 ") and e.unit and e.unit.endswith("소방서")


def test_the_kinds_allowed_skips_and_early_closes_occur(model) -> None:
    cases = [c for k in ("fire", "ems", "rescue", "gas_leak") for c in model.cases(k, MONDAY, MONDAY + 3 * DAY)]
    paths = Counter((c.kind, tuple(s for s, *_ in c.timeline)) for c in cases)
    fire_full = ("occurred", "dispatched", "arrived", "operating", "under_control", "extinguished", "closed")
    assert paths[("fire", fire_full)] > 0
    assert paths[("fire", tuple(s for s in fire_full if s != "under_control"))] > 0  # small fires skip 초진
    assert paths[("fire", ("occurred", "dispatched", "arrived", "closed"))] > 0  # not a fire after all
    assert paths[("ems", ("ordered", "en_route", "arrived", "operating", "closed"))] > 0
    assert paths[("ems", ("ordered", "en_route", "closed"))] > 0  # cancelled en route
    assert paths[("rescue", ("occurred", "dispatched", "arrived", "operating", "closed"))] > 0  # freed themselves
    fire_arrival = [c.timeline[2][1] - c.timeline[0][1] for c in cases if c.kind == "fire" and c.timeline[2][0] == "arrived"]
    assert 4 * MIN < np.median(fire_arrival) < 7 * MIN
    ems_transported = [c.closed_at_ms - c.opened_at_ms for c in cases if c.kind == "ems" and c.timeline[-1][3] == "병원 이송 완료"]
    assert 30 * MIN < np.mean(ems_transported) < 50 * MIN
    real_fires = [c.closed_at_ms - c.opened_at_ms for c in cases if c.kind == "fire" and len(c.timeline) >= 6]
    assert HOUR < np.median(real_fires) < 4 * HOUR


# -- calibration -------------------------------------------------------------------------------------

def test_open_cases_at_daytime_match_the_demo_figures(model) -> None:
    times = np.arange(MONDAY, MONDAY + 7 * DAY, 10 * MIN, dtype=np.int64)
    counts = model.active_counts(times)
    hour = local(times * 1000).hour
    day = (hour >= 10) & (hour < 18)
    night = (hour >= 2) & (hour < 5)
    assert 25 <= counts["ems"][day].mean() <= 50  # demo: 구급 37건
    assert 1.0 <= counts["fire"][day].mean() <= 3.5  # demo: 화재 2건
    assert 1.5 <= counts["rescue"][day].mean() <= 5.0  # demo: 구조 3건
    assert counts["ems"][night].mean() < 0.6 * counts["ems"][day].mean()
    for kind in ("traffic_accident", "collapse", "gas_leak", "other"):
        assert counts[kind][day].mean() < 2.0
    first_day = model.events(MONDAY, MONDAY + DAY)
    opened = Counter(e.kind for e in first_day if e.action == "open")
    assert 900 <= opened["ems"] <= 1900 and 5 <= opened["fire"] <= 45


def test_active_at_agrees_with_the_event_stream(model) -> None:
    t = MONDAY + 14 * HOUR + 123_456
    active = model.active_at(t)
    expected = {k: int(v[0]) for k, v in model.active_counts([t]).items()}
    assert Counter(a["kind"] for a in active) == Counter({k: v for k, v in expected.items() if v})
    # Replaying everything up to t leaves exactly these cases open, at these steps.
    lookback = max(r.lookback_ms for r in RATES.values()) + SLOT_MS
    cases = replay(model.events(t - lookback, t + 1), t - lookback)
    still_open = {i: c.step for i, c in cases.items() if c.active}
    assert still_open == {a["external_id"]: a["step"] for a in active}


def test_rate_scale(city, model) -> None:
    window = (MONDAY + 10 * HOUR, MONDAY + 16 * HOUR)
    base = sum(e.action == "open" for e in model.events(*window))
    busy = sum(e.action == "open" for e in IncidentModel(city, seed=2017, rate_scale=3).events(*window))
    assert 2.6 * base < busy < 3.4 * base
    assert IncidentModel(city, seed=2017, rate_scale=0).events(*window) == []
    with pytest.raises(ValueError, match="rate_scale"):
        IncidentModel(city, seed=2017, rate_scale=-1)


def test_floods_come_with_the_rain(model) -> None:
    summer = int(datetime(2021, 6, 1, tzinfo=timezone.utc).timestamp()) * 1000
    floods = model.cases("flood", summer, summer + 92 * DAY)
    assert len(floods) > 50
    opened = np.array([c.opened_at_ms for c in floods], dtype=np.int64)
    hours = (opened // HOUR) * HOUR
    rain = model.weather.at(hours * 1000).precipitation
    assert np.mean(rain > FLOOD_RAIN_THRESHOLD_MM_H) > 0.8

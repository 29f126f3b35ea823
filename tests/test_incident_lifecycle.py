"""Incident handling steps: the official sequences, and that no sequence of requests can move a case
backwards, past a step its kind requires, or out of the closed state."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from citywall.incidents import KINDS, Incident, TransitionError


def fire(**kw: object) -> Incident:
    return Incident(id="F-1", kind=KINDS["fire"], opened_at_ms=1_000, opened_by="119 종합상황실", **kw)  # type: ignore[arg-type]


def test_the_official_steps_of_fire_and_ems() -> None:
    assert [s.ko for s in KINDS["fire"].steps] == ["발생", "출동지령", "현장도착", "활동개시", "초진", "완진", "상황종결"]
    assert [s.ko for s in KINDS["ems"].steps] == ["지령하달", "출동중", "현장도착", "활동개시", "종결"]
    assert {"fire", "rescue", "ems", "traffic_accident", "flood", "collapse", "gas_leak", "other"} <= set(KINDS)


def test_a_fire_goes_through_every_step_with_who_when_and_why() -> None:
    case = fire()
    assert case.step == "occurred" and case.active
    for t, step in enumerate(["dispatched", "arrived", "operating", "under_control", "extinguished", "closed"], start=1):
        case.advance(step, 1_000 + t * 60_000, "종로소방서", f"step {t}")
    assert not case.active
    assert [tr.step for tr in case.timeline][-1] == "closed"
    assert case.timeline[3].by == "종로소방서" and case.timeline[3].note == "step 3"


def test_no_going_back_or_staying() -> None:
    case = fire()
    case.advance("dispatched", 2_000, "a")
    with pytest.raises(TransitionError, match="cannot go back"):
        case.advance("occurred", 3_000, "a")
    with pytest.raises(TransitionError, match="cannot go back or stay"):
        case.advance("dispatched", 3_000, "a")
    assert case.step == "dispatched" and len(case.timeline) == 2


def test_skipping_only_where_the_kind_allows() -> None:
    case = fire()
    with pytest.raises(TransitionError, match="cannot pass over dispatched"):
        case.advance("arrived", 2_000, "a")
    for step in ("dispatched", "arrived", "operating"):
        case.advance(step, 2_000, "a")
    case.advance("extinguished", 3_000, "a")  # a small fire: out without a separate 초진
    assert case.step == "extinguished"


def test_closing_early_needs_a_note() -> None:
    case = fire()
    with pytest.raises(TransitionError, match="needs a note"):
        case.advance("closed", 2_000, "a")
    case.advance("closed", 2_000, "a", "오인신고 (false alarm)")
    with pytest.raises(TransitionError, match="closed"):
        case.advance("extinguished", 3_000, "a")


def test_bad_requests_say_what_is_wrong() -> None:
    case = fire()
    with pytest.raises(TransitionError, match="no step 'landed'"):
        case.advance("landed", 2_000, "a")
    with pytest.raises(TransitionError, match="before the last step's time"):
        case.advance("dispatched", 999, "a")
    with pytest.raises(TransitionError, match="who made it"):
        case.advance("dispatched", 2_000, " ")
    assert len(case.timeline) == 1


@settings(max_examples=300, deadline=None)
@given(kind=st.sampled_from(sorted(KINDS)), attempts=st.lists(
    st.tuples(st.integers(0, 7), st.integers(-5_000, 60_000), st.booleans()), max_size=20))
def test_no_sequence_of_requests_breaks_the_rules(kind: str, attempts: list[tuple[int, int, bool]]) -> None:
    k = KINDS[kind]
    case = Incident(id="X", kind=k, opened_at_ms=0, opened_by="test")
    now = 0
    for index, dt, with_note in attempts:
        step = k.steps[index % len(k.steps)].code
        before = list(case.timeline)
        try:
            case.advance(step, now + dt, "operator", "why" if with_note else "")
            now += max(dt, 0)
        except TransitionError:
            assert case.timeline == before  # a refused move changes nothing
    order = [k.index(t.step) for t in case.timeline]
    assert order == sorted(set(order)), "steps only move forward"
    assert all(a.at_ms <= b.at_ms for a, b in zip(case.timeline, case.timeline[1:]))
    for a, b in zip(case.timeline, case.timeline[1:]):
        passed = {s.code for s in k.steps[k.index(a.step) + 1:k.index(b.step)]}
        if b.step == k.closing.code:
            assert not passed or b.note
        else:
            assert passed <= k.skippable
    assert case.active == (case.step != k.closing.code)

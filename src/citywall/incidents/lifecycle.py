"""The handling steps of each kind of incident and the rules for moving between them.

Seoul's wall shows a case's progress in the fire service's own words (발생 -> 출동지령 -> ...), so
the steps are data per kind, in order. A case only moves forward; it may pass over a step only
where the kind allows it (a small fire is put out without a separate 초진), and it may be closed
from any step with a note (a false alarm ends before anyone arrives). Every move records when,
who and why, so the timeline on the wall is the audit trail of the case.
"""

from __future__ import annotations

from dataclasses import dataclass, field


class TransitionError(ValueError):
    """A move the kind's steps do not allow; the message says which and why."""


@dataclass(frozen=True)
class Step:
    code: str
    ko: str
    en: str


@dataclass(frozen=True)
class IncidentKind:
    code: str
    ko: str
    en: str
    steps: tuple[Step, ...]
    # Steps a case may pass over on its way forward (never the first or the closing one).
    skippable: frozenset[str] = frozenset()

    @property
    def closing(self) -> Step:
        return self.steps[-1]

    def index(self, step: str) -> int:
        for i, s in enumerate(self.steps):
            if s.code == step:
                return i
        raise TransitionError(f"{self.code} has no step {step!r}; its steps are {', '.join(s.code for s in self.steps)}")


def _steps(*triples: tuple[str, str, str]) -> tuple[Step, ...]:
    return tuple(Step(*t) for t in triples)


OCCURRED = ("occurred", "발생", "Occurred")
DISPATCHED = ("dispatched", "출동지령", "Dispatch ordered")
ARRIVED = ("arrived", "현장도착", "Arrived on scene")
OPERATING = ("operating", "활동개시", "Operations started")
CLOSED = ("closed", "상황종결", "Closed")

KINDS: dict[str, IncidentKind] = {k.code: k for k in (
    # The fire service's steps as the wall shows them (seoul-digital-mayors-office.md).
    IncidentKind("fire", "화재", "Fire", _steps(OCCURRED, DISPATCHED, ARRIVED, OPERATING, ("under_control", "초진", "Under control"),
                                                ("extinguished", "완진", "Extinguished"), CLOSED),
                 skippable=frozenset({"under_control"})),
    # EMS: 지령하달 -> 출동중 -> 현장도착 -> 활동개시 -> 종결.
    IncidentKind("ems", "구급", "EMS", _steps(("ordered", "지령하달", "Order issued"), ("en_route", "출동중", "En route"), ARRIVED, OPERATING,
                                              ("closed", "종결", "Closed"))),
    IncidentKind("rescue", "구조", "Rescue", _steps(OCCURRED, DISPATCHED, ARRIVED, OPERATING, ("rescued", "구조완료", "Rescue completed"), CLOSED),
                 skippable=frozenset({"rescued"})),
    *(IncidentKind(code, ko, en, _steps(OCCURRED, DISPATCHED, ARRIVED, ("responding", "조치중", "Responding"),
                                        ("resolved", "조치완료", "Resolved"), CLOSED),
                   skippable=frozenset({"dispatched", "responding"}))
      for code, ko, en in (("traffic_accident", "교통사고", "Traffic accident"), ("flood", "침수", "Flood"), ("collapse", "붕괴", "Collapse"),
                           ("gas_leak", "가스누출", "Gas leak"), ("other", "기타", "Other"))),
)}


@dataclass(frozen=True)
class Transition:
    step: str
    at_ms: int
    by: str
    note: str = ""


@dataclass
class Incident:
    """One case and its timeline; `advance` is the only way its step changes."""

    id: str
    kind: IncidentKind
    opened_at_ms: int
    opened_by: str
    timeline: list[Transition] = field(default_factory=list)

    def __post_init__(self) -> None:
        if not self.timeline:
            self.timeline.append(Transition(self.kind.steps[0].code, self.opened_at_ms, self.opened_by, "opened"))

    @property
    def step(self) -> str:
        return self.timeline[-1].step

    @property
    def active(self) -> bool:
        return self.step != self.kind.closing.code

    def advance(self, step: str, at_ms: int, by: str, note: str = "") -> Transition:
        """Move to `step`; raise TransitionError, changing nothing, if the kind does not allow it."""
        kind = self.kind
        if not by.strip():
            raise TransitionError("a transition needs who made it")
        if not self.active:
            raise TransitionError(f"{self.id} is closed ({kind.closing.ko}); a closed case does not move")
        here, there = kind.index(self.step), kind.index(step)
        if there <= here:
            raise TransitionError(f"{self.id} is at {kind.steps[here].ko} ({self.step}); it cannot go back or stay at {kind.steps[there].ko} ({step})")
        if at_ms < self.timeline[-1].at_ms:
            raise TransitionError(f"{self.id}: {step} at {at_ms} is before the last step's time {self.timeline[-1].at_ms}")
        passed = [s.code for s in kind.steps[here + 1:there]]
        if step == kind.closing.code:
            if passed and not note.strip():
                raise TransitionError(f"{self.id}: closing before {', '.join(passed)} needs a note saying why")
        else:
            forbidden = [p for p in passed if p not in kind.skippable]
            if forbidden:
                raise TransitionError(f"{self.id}: {kind.ko} cannot pass over {', '.join(forbidden)} on the way to {step}")
        transition = Transition(step, at_ms, by, note)
        self.timeline.append(transition)
        return transition

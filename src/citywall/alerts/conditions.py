"""The conditions alert rules are built from, each a small state machine over one series.

A condition is fed observations in time order (`feed`) and, for conditions about time passing,
told the time (`tick`); each returns the new state when it changes (True: the condition holds) and
None otherwise. Keeping them per series and free of I/O lets the rule engine run them on the live
stream and a replay run them on stored data with the same results.
"""

from __future__ import annotations

from dataclasses import dataclass, field


class _Condition:
    """What every condition shares: report a state only when it changes."""

    active: bool

    def _become(self, now: bool) -> bool | None:
        if now == self.active:
            return None
        self.active = now
        return now

    def tick(self, now_ms: int) -> bool | None:
        """Only conditions about time passing (Stale) change on a tick."""
        return None


@dataclass
class Threshold(_Condition):
    """Holds when the value stays at or above `above` (or at or below `below`) for `for_s` seconds;
    stops holding only once the value is back past `clear_at`, so a value hovering at the line does
    not raise and clear an alert every reading (hysteresis)."""

    above: float | None = None
    below: float | None = None
    for_s: float = 0.0
    clear_at: float | None = None
    active: bool = False
    _since_ms: int | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if (self.above is None) == (self.below is None):
            raise ValueError("a threshold needs exactly one of above or below")
        line = self.above if self.above is not None else self.below
        if self.clear_at is None:
            self.clear_at = line
        elif self.above is not None and self.clear_at > self.above or self.below is not None and self.clear_at < self.below:
            raise ValueError(f"clear_at {self.clear_at} must lie on the safe side of the threshold {line}")

    def _beyond(self, v: float) -> bool:
        return v >= self.above if self.above is not None else v <= self.below  # type: ignore[operator]

    def _cleared(self, v: float) -> bool:
        return v < self.clear_at if self.above is not None else v > self.clear_at  # type: ignore[operator]

    def feed(self, t_ms: int, v: float) -> bool | None:
        if self.active:
            if self._cleared(v):
                self._since_ms = None
                return self._become(False)
            return None
        if not self._beyond(v):
            self._since_ms = None
            return None
        if self._since_ms is None:
            self._since_ms = t_ms
        return self._become(True) if t_ms - self._since_ms >= self.for_s * 1000 else None


@dataclass
class RateOfChange(_Condition):
    """Holds while the value changes faster than `max_change` per `per_s` seconds between
    consecutive readings (a sensor jumping, a road emptying at once)."""

    max_change: float
    per_s: float = 60.0
    active: bool = False
    _last: tuple[int, float] | None = field(default=None, repr=False)

    def feed(self, t_ms: int, v: float) -> bool | None:
        last, self._last = self._last, (t_ms, v)
        if last is None or t_ms <= last[0]:
            return None
        rate = abs(v - last[1]) / ((t_ms - last[0]) / 1000) * self.per_s
        return self._become(rate > self.max_change)


@dataclass
class Frozen(_Condition):
    """Holds while the last `readings` values are all the same: a stuck sensor still reports, so
    freshness does not catch it."""

    readings: int
    active: bool = False
    _value: float | None = field(default=None, repr=False)
    _run: int = field(default=0, repr=False)

    def __post_init__(self) -> None:
        if self.readings < 2:
            raise ValueError("frozen needs at least 2 readings")

    def feed(self, t_ms: int, v: float) -> bool | None:
        self._run = self._run + 1 if v == self._value else 1
        self._value = v
        return self._become(self._run >= self.readings)


@dataclass
class Stale(_Condition):
    """Holds when no reading has come for more than `max_age_s` (a feed or sensor gone quiet)."""

    max_age_s: float
    active: bool = False
    _last_ms: int | None = field(default=None, repr=False)

    def feed(self, t_ms: int, v: float) -> bool | None:
        self._last_ms = t_ms if self._last_ms is None else max(self._last_ms, t_ms)
        return self._become(False)

    def tick(self, now_ms: int) -> bool | None:
        if self._last_ms is None:
            return None
        return self._become(now_ms - self._last_ms > self.max_age_s * 1000)

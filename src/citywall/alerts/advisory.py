"""Fine-dust advisories (미세먼지 주의보 / 경보) as the Ministry of Environment issues them.

An advisory is issued when a place's hourly mean stays at or above its threshold for two hours or
more, and lifted (or a warning downgraded) when the hourly mean falls below a lower threshold: the
gap is the hysteresis that keeps an advisory from flapping around the line. Hourly means in,
levels out, so the same code serves the live stream, replays and tests.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

NONE, ADVISORY, WARNING = 0, 1, 2
LEVEL_NAMES = {NONE: ("없음", "none"), ADVISORY: ("주의보", "advisory"), WARNING: ("경보", "warning")}


@dataclass(frozen=True)
class AdvisoryRule:
    pollutant: str
    advisory_at: float  # issue 주의보 at or above this for `hours`
    advisory_lift: float  # lift 주의보 below this
    warning_at: float  # issue 경보 at or above this for `hours`
    warning_down: float  # 경보 becomes 주의보 below this
    hours: int = 2


# Thresholds in ug/m3 (air-quality.md; PM2.5 from 2018-07-01).
PM10 = AdvisoryRule("pm10", advisory_at=150, advisory_lift=100, warning_at=300, warning_down=150)
PM25 = AdvisoryRule("pm25", advisory_at=75, advisory_lift=35, warning_at=150, warning_down=75)


def advisory_levels(hourly: Sequence[float], rule: AdvisoryRule, start: int = NONE) -> list[int]:
    """The level in force after each hour (NONE, ADVISORY, WARNING), from consecutive hourly means.

    A missing hour (NaN) breaks a run of high hours and changes nothing in force: an advisory is
    neither issued nor lifted on data that is not there.
    """
    level, at_advisory, at_warning, out = start, 0, 0, []
    for value in hourly:
        if value is None or not math.isfinite(value):
            at_advisory = at_warning = 0
            out.append(level)
            continue
        at_advisory = at_advisory + 1 if value >= rule.advisory_at else 0
        at_warning = at_warning + 1 if value >= rule.warning_at else 0
        if at_warning >= rule.hours:
            level = WARNING
        elif level == WARNING and value < rule.warning_down:
            level = ADVISORY
        if level < ADVISORY and at_advisory >= rule.hours:
            level = ADVISORY
        elif level == ADVISORY and value < rule.advisory_lift:
            level = NONE
        out.append(level)
    return out

"""Korea's Comprehensive Air-quality Index (통합대기환경지수, CAI) as AirKorea computes it.

Pure functions on concentrations already averaged as the standard asks (1 h for the gases, 24 h
or its predicted moving average for PM), so the same code serves the live wall, replays and tests.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

from citywall.air.bands import interpolate, truncate

# Index bands and the grade each one is.
INDEX_BANDS = ((0, 50), (51, 100), (101, 250), (251, 500))
GRADES = (
    {"code": "good", "ko": "좋음", "en": "Good", "color": "#1e88e5"},
    {"code": "moderate", "ko": "보통", "en": "Moderate", "color": "#2e9d4f"},
    {"code": "unhealthy", "ko": "나쁨", "en": "Unhealthy", "color": "#f39c12"},
    {"code": "very_unhealthy", "ko": "매우나쁨", "en": "Very unhealthy", "color": "#e53935"},
)

# Concentration breakpoints per band (low, high), and the decimals inputs are truncated to before
# lookup: truncation is what closes the gaps between bands (0.0205 ppm SO2 is 0.020, good).
BREAKPOINTS: dict[str, tuple[int, tuple[tuple[float, float], ...]]] = {
    "so2": (3, ((0, 0.020), (0.021, 0.050), (0.051, 0.150), (0.151, 1.0))),
    "no2": (3, ((0, 0.030), (0.031, 0.060), (0.061, 0.200), (0.201, 2.0))),
    "co": (2, ((0, 2.0), (2.01, 9.0), (9.01, 15.0), (15.01, 50.0))),
    "o3": (3, ((0, 0.030), (0.031, 0.090), (0.091, 0.150), (0.151, 0.6))),
    "pm10": (0, ((0, 30), (31, 80), (81, 150), (151, 600))),
    "pm25": (0, ((0, 15), (16, 35), (36, 75), (76, 500))),
}
POLLUTANTS = tuple(BREAKPOINTS)
# AirKorea publishes a CAI only when all of these are measured.
REQUIRED = ("pm10", "pm25", "no2", "o3")
# Penalty added to the highest sub-index when this many pollutants are 나쁨 (unhealthy) or worse.
PENALTY = {2: 50, 3: 75}
# The M threshold of the PM prediction (ug/m3).
PM_PREDICTION_M = {"pm10": 70.0, "pm25": 30.0}


@dataclass(frozen=True)
class CaiResult:
    index: int
    grade: int  # 0 good .. 3 very unhealthy
    pollutant: str  # the deciding pollutant
    sub_indices: dict[str, int] = field(default_factory=dict)

    @property
    def grade_info(self) -> dict[str, str]:
        return GRADES[self.grade]

    def as_dict(self) -> dict:
        g = GRADES[self.grade]
        return {"index": self.index, "grade": g["code"], "grade_ko": g["ko"], "grade_en": g["en"], "color": g["color"],
                "pollutant": self.pollutant, "sub_indices": self.sub_indices}


def sub_index(pollutant: str, concentration: float) -> int:
    """The sub-index of one pollutant: Ip = (IHI - ILO) / (BPHI - BPLO) x (Cp - BPLO) + ILO, rounded.

    Concentrations above the table's top are reported at 500, as AirKorea caps the index.
    """
    if pollutant not in BREAKPOINTS:
        raise ValueError(f"no CAI breakpoints for {pollutant!r}; known: {', '.join(POLLUTANTS)}")
    if concentration is None or not math.isfinite(concentration) or concentration < 0:
        raise ValueError(f"{pollutant} concentration must be a finite number >= 0, got {concentration!r}")
    decimals, bands = BREAKPOINTS[pollutant]
    if concentration > bands[-1][1]:
        return 500
    index = interpolate(truncate(concentration, decimals), bands, INDEX_BANDS)
    return 500 if index is None else index


def grade_of(index: int) -> int:
    return next(g for g, (_, hi) in enumerate(INDEX_BANDS) if index <= hi or g == len(INDEX_BANDS) - 1)


def cai(*, pm10: float | None = None, pm25: float | None = None, o3: float | None = None, no2: float | None = None,
        co: float | None = None, so2: float | None = None, require_all: bool = True) -> CaiResult | None:
    """The CAI of a station: the highest sub-index plus the penalty for several unhealthy pollutants.

    Returns None when a pollutant AirKorea requires (PM10, PM2.5, NO2, O3) is missing and
    `require_all` is set; the wall then shows no index rather than a partial one.
    """
    given = {k: v for k, v in {"pm10": pm10, "pm25": pm25, "o3": o3, "no2": no2, "co": co, "so2": so2}.items()
             if v is not None and not (isinstance(v, float) and math.isnan(v))}
    if not given or (require_all and any(k not in given for k in REQUIRED)):
        return None
    subs = {k: sub_index(k, v) for k, v in given.items()}
    pollutant = max(subs, key=lambda k: (subs[k], -POLLUTANTS.index(k)))
    unhealthy = sum(1 for s in subs.values() if s > INDEX_BANDS[1][1])
    index = min(500, subs[pollutant] + PENALTY.get(min(unhealthy, 3), 0))
    return CaiResult(index=index, grade=grade_of(index), pollutant=pollutant, sub_indices=subs)


def pm_predicted_24h(hourly: Sequence[float], pollutant: str) -> float | None:
    """AirKorea's predicted 24 h moving average C24E = (C12 x 12 + C4 x 12) / 24, from the hourly
    values of the last 12 hours (oldest first; NaN for a missing hour).

    C12 and C4 are means of the adjusted values of the last 12 and 4 hours; a value Ci is adjusted
    to 0.75 x Ci when Ci >= M and 0.9 <= Ci / C12 <= 1.7 (a short peak counts less), M being
    70 ug/m3 for PM10 and 30 ug/m3 for PM2.5. None when fewer than 4 of the last 12 and 1 of the
    last 4 hours are there.
    """
    m = PM_PREDICTION_M[pollutant]
    last12 = [float(x) for x in list(hourly)[-12:]]
    known = [x for x in last12 if math.isfinite(x)]
    known4 = [x for x in last12[-4:] if math.isfinite(x)]
    if len(known) < 4 or not known4:
        return None
    c12_raw = sum(known) / len(known)

    def adjusted(ci: float) -> float:
        return 0.75 * ci if c12_raw > 0 and ci >= m and 0.9 <= ci / c12_raw <= 1.7 else ci

    c12 = sum(adjusted(x) for x in known) / len(known)
    c4 = sum(adjusted(x) for x in known4) / len(known4)
    return (c12 * 12 + c4 * 12) / 24

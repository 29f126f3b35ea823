"""The US EPA Air Quality Index (AQI), with the PM2.5 breakpoints in force from 2024-05-06.

For a city that reports to an American-style audience, or to compare with other cities: the same
shape as the CAI (a sub-index per pollutant, the highest wins) but other breakpoints, other
averaging times and no penalty. Inputs are in the units citywall stores (PM in ug/m3, gases in ppm);
NO2 and SO2 are converted to the table's ppb here. Each input is truncated to the table's precision
before lookup, as EPA's Technical Assistance Document asks.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from citywall.air.bands import interpolate, truncate

INDEX_BANDS = ((0, 50), (51, 100), (101, 150), (151, 200), (201, 300), (301, 500))
CATEGORIES = (
    {"code": "good", "en": "Good", "ko": "좋음", "color": "#00e400"},
    {"code": "moderate", "en": "Moderate", "ko": "보통", "color": "#ffff00"},
    {"code": "usg", "en": "Unhealthy for Sensitive Groups", "ko": "민감군 나쁨", "color": "#ff7e00"},
    {"code": "unhealthy", "en": "Unhealthy", "ko": "나쁨", "color": "#ff0000"},
    {"code": "very_unhealthy", "en": "Very Unhealthy", "ko": "매우 나쁨", "color": "#8f3f97"},
    {"code": "hazardous", "en": "Hazardous", "ko": "위험", "color": "#7e0023"},
)

# pollutant -> (averaging time, decimals after conversion, factor from citywall's unit, breakpoints per band)
BREAKPOINTS: dict[str, tuple[str, int, float, tuple[tuple[float, float], ...]]] = {
    "pm25": ("24h", 1, 1.0, ((0.0, 9.0), (9.1, 35.4), (35.5, 55.4), (55.5, 125.4), (125.5, 225.4), (225.5, 325.4))),
    "pm10": ("24h", 0, 1.0, ((0, 54), (55, 154), (155, 254), (255, 354), (355, 424), (425, 604))),
    # 8-hour ozone has no breakpoints above 0.200 ppm: there EPA uses 1-hour ozone, which is not this table.
    "o3": ("8h", 3, 1.0, ((0.000, 0.054), (0.055, 0.070), (0.071, 0.085), (0.086, 0.105), (0.106, 0.200))),
    "co": ("8h", 1, 1.0, ((0.0, 4.4), (4.5, 9.4), (9.5, 12.4), (12.5, 15.4), (15.5, 30.4), (30.5, 50.4))),
    "no2": ("1h", 0, 1000.0, ((0, 53), (54, 100), (101, 360), (361, 649), (650, 1249), (1250, 2049))),
    # 1-hour SO2 above 304 ppb falls under the 24-hour SO2 standard: not this table either.
    "so2": ("1h", 0, 1000.0, ((0, 35), (36, 75), (76, 185), (186, 304))),
}
POLLUTANTS = tuple(BREAKPOINTS)
AVERAGING = {k: v[0] for k, v in BREAKPOINTS.items()}


class BeyondTable(ValueError):
    """A concentration above what this pollutant's table covers with this averaging time."""


@dataclass(frozen=True)
class AqiResult:
    index: int
    category: int  # 0 good .. 5 hazardous
    pollutant: str
    sub_indices: dict[str, int] = field(default_factory=dict)

    def as_dict(self) -> dict:
        c = CATEGORIES[self.category]
        return {"index": self.index, "grade": c["code"], "grade_ko": c["ko"], "grade_en": c["en"], "color": c["color"],
                "pollutant": self.pollutant, "sub_indices": self.sub_indices, "scale": "us_epa_aqi_2024"}


def aqi_sub_index(pollutant: str, concentration: float) -> int:
    """One pollutant's AQI: Ip = (IHi - ILo) / (BPHi - BPLo) x (Cp - BPLo) + ILo, rounded.

    Concentrations above the top of the PM, CO or NO2 tables are reported at 500; above the 8-hour
    ozone or 1-hour SO2 tables the index needs another averaging time and BeyondTable is raised.
    """
    if pollutant not in BREAKPOINTS:
        raise ValueError(f"no AQI breakpoints for {pollutant!r}; known: {', '.join(POLLUTANTS)}")
    if concentration is None or not math.isfinite(concentration) or concentration < 0:
        raise ValueError(f"{pollutant} concentration must be a finite number >= 0, got {concentration!r}")
    averaging, decimals, factor, bands = BREAKPOINTS[pollutant]
    c = truncate(concentration * factor, decimals)
    index = interpolate(c, bands, INDEX_BANDS)
    if index is None and len(bands) < len(INDEX_BANDS):
        raise BeyondTable(f"{pollutant} {c:g} is above the {averaging} AQI table (top {bands[-1][1]:g}); EPA uses another averaging time there")
    return 500 if index is None else index


def category_of(index: int) -> int:
    return next(g for g, (_, hi) in enumerate(INDEX_BANDS) if index <= hi or g == len(INDEX_BANDS) - 1)


def aqi(*, pm10: float | None = None, pm25: float | None = None, o3: float | None = None, no2: float | None = None,
        co: float | None = None, so2: float | None = None) -> AqiResult | None:
    """The AQI from concentrations averaged as the table asks (PM 24 h, O3 and CO 8 h, NO2 and SO2
    1 h; PM in ug/m3, gases in ppm): the highest sub-index. None when nothing is given."""
    given = {k: v for k, v in {"pm10": pm10, "pm25": pm25, "o3": o3, "no2": no2, "co": co, "so2": so2}.items()
             if v is not None and not (isinstance(v, float) and math.isnan(v))}
    if not given:
        return None
    subs = {k: aqi_sub_index(k, v) for k, v in given.items()}
    pollutant = max(subs, key=lambda k: (subs[k], -POLLUTANTS.index(k)))
    return AqiResult(index=subs[pollutant], category=category_of(subs[pollutant]), pollutant=pollutant, sub_indices=subs)

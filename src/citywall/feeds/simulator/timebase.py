"""Time in Seoul: local hour, weekday, season, public holidays and the sun, on whole arrays.

Seoul is UTC+9 all year (no daylight saving time since 1988), so local time is a fixed offset.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

KST_OFFSET_S = 9 * 3600
DAY_S = 86400
HOUR_US = 3_600_000_000
SEOUL_LAT, SEOUL_LON = 37.5665, 126.9780

# Public holidays on fixed solar dates (month, day). Lunar holidays (Seollal, Chuseok, Buddha's
# birthday) move every year and are not modelled; see docs/simulator.md.
FIXED_HOLIDAYS = {(1, 1), (3, 1), (5, 5), (6, 6), (8, 15), (10, 3), (10, 9), (12, 25)}
_HOLIDAY_CODES = np.array(sorted(m * 100 + d for m, d in FIXED_HOLIDAYS))


@dataclass
class LocalTime:
    """Calendar fields of UTC instants, as seen in Seoul."""

    t_s: np.ndarray  # seconds since the epoch, UTC (float64)
    hour: np.ndarray  # local hour of day, fractional, 0..24
    day: np.ndarray  # local day number since 1970-01-01 (int64)
    weekday: np.ndarray  # 0 = Monday .. 6 = Sunday
    year: np.ndarray
    month: np.ndarray  # 1..12
    dom: np.ndarray  # day of month
    doy: np.ndarray  # day of year, fractional, 0..365
    holiday: np.ndarray  # bool: a fixed-date public holiday

    @property
    def offday(self) -> np.ndarray:
        """Saturday, Sunday or a public holiday."""
        return (self.weekday >= 5) | self.holiday

    @property
    def season_phase(self) -> np.ndarray:
        """Fraction of the year, 0 = 1 January."""
        return self.doy / 365.25


def local(t_us: np.ndarray | int) -> LocalTime:
    t_s = np.atleast_1d(np.asarray(t_us, dtype=np.int64)) / 1e6
    loc = t_s + KST_OFFSET_S
    day = np.floor(loc / DAY_S).astype(np.int64)
    hour = (loc - day * DAY_S) / 3600.0
    d64 = day.astype("datetime64[D]")
    y64 = d64.astype("datetime64[Y]")
    m64 = d64.astype("datetime64[M]")
    year = y64.astype(np.int64) + 1970
    month = (m64 - y64.astype("datetime64[M]")).astype(np.int64) + 1
    dom = (d64 - m64.astype("datetime64[D]")).astype(np.int64) + 1
    doy = (d64 - y64.astype("datetime64[D]")).astype(np.int64) + hour / 24.0
    weekday = (day + 3) % 7  # 1970-01-01 was a Thursday
    holiday = np.isin(month * 100 + dom, _HOLIDAY_CODES)
    return LocalTime(t_s, hour, day, weekday, year, month, dom, doy, holiday)


def monthly(table: list[float] | np.ndarray, doy: np.ndarray) -> np.ndarray:
    """A smooth annual cycle through 12 monthly values (taken at mid-month), periodic."""
    values = np.asarray(table, dtype=np.float64)
    mids = (np.arange(12) + 0.5) * 365.25 / 12
    x = np.concatenate([mids - 365.25, mids, mids + 365.25])
    y = np.concatenate([values, values, values])
    return np.interp(doy, x, y)


def daily(profile: list[float] | np.ndarray, hour: np.ndarray) -> np.ndarray:
    """A periodic daily curve through 24 hourly values (value i at hour i)."""
    values = np.asarray(profile, dtype=np.float64)
    x = np.arange(-1, 26, dtype=np.float64)
    y = np.concatenate([values[-1:], values, values[:2]])
    return np.interp(hour, x, y)


def sun_cos_zenith(t_s: np.ndarray, lat: float = SEOUL_LAT, lon: float = SEOUL_LON) -> np.ndarray:
    """Cosine of the solar zenith angle (NOAA's approximation; < 0 at night)."""
    day = np.floor(t_s / DAY_S)
    hour_utc = (t_s - day * DAY_S) / 3600.0
    d64 = day.astype(np.int64).astype("datetime64[D]")
    doy = (d64 - d64.astype("datetime64[Y]").astype("datetime64[D]")).astype(np.float64)
    g = 2 * np.pi / 365.0 * (doy + (hour_utc - 12) / 24)
    decl = (0.006918 - 0.399912 * np.cos(g) + 0.070257 * np.sin(g) - 0.006758 * np.cos(2 * g)
            + 0.000907 * np.sin(2 * g) - 0.002697 * np.cos(3 * g) + 0.00148 * np.sin(3 * g))
    eqtime = 229.18 * (0.000075 + 0.001868 * np.cos(g) - 0.032077 * np.sin(g) - 0.014615 * np.cos(2 * g) - 0.040849 * np.sin(2 * g))
    tst = hour_utc * 60 + eqtime + 4 * lon
    ha = np.radians(tst / 4 - 180)
    phi = np.radians(lat)
    return np.sin(phi) * np.sin(decl) + np.cos(phi) * np.cos(decl) * np.cos(ha)


def grid(start_us: int, end_us: int, interval_s: float) -> np.ndarray:
    """Tick times k * interval in (start, end], int64 µs (the reporting grid of a stream)."""
    step = int(interval_s * 1_000_000)
    first = (start_us // step + 1) * step
    if first > end_us:
        return np.empty(0, dtype=np.int64)
    return np.arange(first, end_us + 1, step, dtype=np.int64)

"""Daily activity profiles (hour 0..23, local time), shared by roads, S-DoT and hotspots.

Traffic: TOPIS speed reports and Seoul's traffic counts put the morning peak at 07-09 and the
evening peak, the heavier and longer one, at 17-20 on weekdays; weekends have no morning peak
and a broad early-afternoon to evening maximum. People: the hotspot categories of Seoul's
real-time city data (offices fill 09-18, commercial districts peak in the evening, palaces and
parks by day, Han river parks on summer evenings).
"""

from __future__ import annotations

import numpy as np

from citywall.feeds.simulator.timebase import LocalTime, daily

# Traffic demand relative to the weekday evening peak (1.0).
TRAFFIC_WEEKDAY = [0.22, 0.14, 0.1, 0.08, 0.09, 0.18, 0.45, 0.85, 0.97, 0.78, 0.66, 0.66, 0.68, 0.68, 0.7, 0.74,
                   0.82, 0.93, 1.0, 0.92, 0.72, 0.58, 0.48, 0.35]
TRAFFIC_SATURDAY = [0.27, 0.20, 0.14, 0.10, 0.09, 0.12, 0.22, 0.36, 0.50, 0.59, 0.67, 0.72, 0.75, 0.77, 0.77, 0.77,
                    0.77, 0.77, 0.74, 0.67, 0.56, 0.47, 0.41, 0.34]
TRAFFIC_SUNDAY = [0.26, 0.19, 0.13, 0.09, 0.07, 0.09, 0.15, 0.25, 0.35, 0.46, 0.55, 0.62, 0.65, 0.67, 0.69, 0.70,
                  0.72, 0.72, 0.69, 0.60, 0.48, 0.38, 0.31, 0.25]


def traffic(lt: LocalTime) -> np.ndarray:
    """Relative traffic demand (weekday evening peak = 1); holidays count as Sundays."""
    sunday = (lt.weekday == 6) | lt.holiday
    saturday = (lt.weekday == 5) & ~lt.holiday
    weekday = daily(TRAFFIC_WEEKDAY, lt.hour)
    # Friday evenings are the slowest of the week.
    weekday = weekday * np.where((lt.weekday == 4) & (lt.hour > 15), 1.06, 1.0)
    return np.where(sunday, daily(TRAFFIC_SUNDAY, lt.hour), np.where(saturday, daily(TRAFFIC_SATURDAY, lt.hour), weekday))


# People present, relative to the profile's own peak. Each is (weekday, off-day) curves.
PEOPLE: dict[str, tuple[list[float], list[float]]] = {
    # 역세권 office districts (가산디지털단지, 역삼, 선릉...): full from 9 to 18, empty at weekends.
    "office": ([0.12, 0.08, 0.06, 0.05, 0.05, 0.08, 0.2, 0.5, 0.85, 0.95, 0.97, 1.0, 1.0, 0.97, 0.96, 0.95, 0.93,
                0.9, 0.8, 0.6, 0.45, 0.35, 0.25, 0.17],
               [0.1, 0.07, 0.05, 0.04, 0.04, 0.05, 0.08, 0.13, 0.2, 0.27, 0.33, 0.38, 0.4, 0.4, 0.4, 0.38, 0.36,
                0.34, 0.3, 0.26, 0.22, 0.18, 0.14, 0.12]),
    # transit hubs and mixed station areas: both rush hours, busy evenings.
    "station": ([0.2, 0.12, 0.08, 0.06, 0.06, 0.12, 0.35, 0.75, 0.85, 0.7, 0.65, 0.7, 0.75, 0.72, 0.72, 0.75, 0.8,
                 0.92, 1.0, 0.95, 0.82, 0.65, 0.48, 0.32],
                [0.22, 0.14, 0.09, 0.06, 0.05, 0.07, 0.14, 0.25, 0.38, 0.5, 0.62, 0.72, 0.78, 0.8, 0.82, 0.82, 0.82,
                 0.82, 0.8, 0.75, 0.66, 0.55, 0.42, 0.3]),
    # nightlife districts (홍대, 이태원, 건대, 신촌): late evenings, Friday and Saturday nights.
    "nightlife": ([0.35, 0.25, 0.16, 0.1, 0.07, 0.06, 0.08, 0.15, 0.25, 0.3, 0.36, 0.45, 0.55, 0.58, 0.6, 0.63,
                   0.68, 0.76, 0.86, 0.95, 1.0, 0.98, 0.85, 0.6],
                  [0.55, 0.42, 0.3, 0.2, 0.12, 0.08, 0.08, 0.1, 0.15, 0.22, 0.32, 0.45, 0.58, 0.68, 0.75, 0.8, 0.85,
                   0.9, 0.96, 1.0, 1.0, 0.98, 0.9, 0.72]),
    # shopping and commercial streets (가로수길, 성수, 압구정, 타임스퀘어): afternoons and evenings.
    "commercial": ([0.1, 0.06, 0.04, 0.03, 0.03, 0.04, 0.08, 0.18, 0.3, 0.4, 0.5, 0.65, 0.75, 0.75, 0.77, 0.8,
                    0.85, 0.92, 1.0, 0.98, 0.88, 0.7, 0.45, 0.22],
                   [0.12, 0.07, 0.05, 0.03, 0.03, 0.03, 0.05, 0.1, 0.2, 0.32, 0.5, 0.7, 0.85, 0.92, 0.97, 1.0, 1.0,
                    0.98, 0.95, 0.88, 0.75, 0.58, 0.38, 0.2]),
    # tourist zones and old quarters (명동, 인사동, 북촌, 종로·청계): late morning to evening.
    "tourism": ([0.1, 0.07, 0.05, 0.04, 0.04, 0.05, 0.1, 0.22, 0.38, 0.52, 0.68, 0.82, 0.9, 0.93, 0.95, 0.97, 0.98,
                 1.0, 0.98, 0.9, 0.75, 0.55, 0.35, 0.18],
                [0.1, 0.07, 0.05, 0.04, 0.04, 0.05, 0.08, 0.15, 0.3, 0.48, 0.66, 0.82, 0.92, 0.97, 1.0, 1.0, 1.0,
                 0.98, 0.94, 0.86, 0.72, 0.52, 0.33, 0.17]),
    # traditional and wholesale markets: morning to early evening.
    "market": ([0.08, 0.06, 0.06, 0.08, 0.12, 0.2, 0.32, 0.48, 0.66, 0.8, 0.9, 0.97, 1.0, 0.98, 0.95, 0.92, 0.88,
                0.82, 0.72, 0.56, 0.38, 0.24, 0.15, 0.1],
               [0.08, 0.06, 0.05, 0.06, 0.08, 0.12, 0.2, 0.32, 0.5, 0.68, 0.85, 0.96, 1.0, 1.0, 0.98, 0.95, 0.9,
                0.82, 0.7, 0.55, 0.38, 0.24, 0.15, 0.1]),
    # palaces and heritage sites: opening hours (about 09-18).
    "palace": ([0.04, 0.03, 0.02, 0.02, 0.02, 0.03, 0.06, 0.12, 0.3, 0.6, 0.85, 0.95, 1.0, 1.0, 0.98, 0.92, 0.8,
                0.6, 0.35, 0.2, 0.14, 0.1, 0.07, 0.05],
               [0.04, 0.03, 0.02, 0.02, 0.02, 0.03, 0.05, 0.1, 0.25, 0.55, 0.82, 0.95, 1.0, 1.0, 1.0, 0.95, 0.85,
                0.65, 0.4, 0.24, 0.16, 0.1, 0.07, 0.05]),
    # city parks and squares: daytime, much busier at weekends.
    "park": ([0.04, 0.03, 0.02, 0.02, 0.03, 0.08, 0.18, 0.25, 0.28, 0.32, 0.4, 0.5, 0.58, 0.62, 0.65, 0.66, 0.64,
              0.6, 0.55, 0.45, 0.32, 0.2, 0.12, 0.07],
             [0.05, 0.03, 0.02, 0.02, 0.03, 0.07, 0.15, 0.28, 0.45, 0.62, 0.78, 0.9, 0.96, 1.0, 1.0, 0.98, 0.92,
              0.82, 0.68, 0.52, 0.36, 0.22, 0.12, 0.07]),
    # Han river parks: evenings, at weekends from noon; strongly seasonal (summer nights).
    "hanriver": ([0.1, 0.06, 0.04, 0.03, 0.03, 0.06, 0.12, 0.15, 0.14, 0.14, 0.17, 0.22, 0.28, 0.3, 0.32, 0.36, 0.42,
                  0.52, 0.62, 0.7, 0.72, 0.62, 0.42, 0.22],
                 [0.14, 0.08, 0.05, 0.03, 0.03, 0.05, 0.1, 0.16, 0.24, 0.35, 0.48, 0.62, 0.74, 0.84, 0.9, 0.94, 0.96,
                  0.98, 1.0, 1.0, 0.94, 0.78, 0.52, 0.28]),
    # mountains and hiking trails (아차산, 청계산, 응봉산): early mornings, weekend mornings.
    "mountain": ([0.02, 0.01, 0.01, 0.01, 0.03, 0.12, 0.28, 0.35, 0.35, 0.34, 0.33, 0.3, 0.27, 0.26, 0.26, 0.25, 0.22,
                  0.18, 0.12, 0.07, 0.05, 0.04, 0.03, 0.02],
                 [0.02, 0.01, 0.01, 0.01, 0.03, 0.15, 0.4, 0.65, 0.85, 0.97, 1.0, 0.96, 0.88, 0.8, 0.72, 0.62, 0.5,
                  0.36, 0.2, 0.1, 0.06, 0.04, 0.03, 0.02]),
    # stadiums: a base crowd plus evening games (added by the hotspot model).
    "stadium": ([0.05, 0.03, 0.02, 0.02, 0.02, 0.03, 0.06, 0.1, 0.15, 0.18, 0.2, 0.22, 0.24, 0.25, 0.25, 0.26, 0.28,
                 0.3, 0.3, 0.28, 0.25, 0.2, 0.12, 0.07],
                [0.05, 0.03, 0.02, 0.02, 0.02, 0.03, 0.05, 0.08, 0.14, 0.2, 0.26, 0.3, 0.32, 0.33, 0.33, 0.33, 0.33,
                 0.32, 0.3, 0.28, 0.24, 0.18, 0.11, 0.06]),
    # airports: first flight to last, Friday and Sunday peaks.
    "airport": ([0.05, 0.03, 0.02, 0.02, 0.05, 0.25, 0.6, 0.85, 0.92, 0.9, 0.85, 0.82, 0.8, 0.8, 0.82, 0.85, 0.9,
                 0.95, 1.0, 0.95, 0.82, 0.6, 0.3, 0.1],
                [0.05, 0.03, 0.02, 0.02, 0.05, 0.28, 0.65, 0.9, 0.97, 0.95, 0.9, 0.88, 0.86, 0.86, 0.88, 0.92, 0.96,
                 1.0, 1.0, 0.95, 0.82, 0.6, 0.3, 0.1]),
    # residential streets (most S-DoT poles): mornings and evenings around home.
    "residential": ([0.1, 0.06, 0.04, 0.03, 0.04, 0.1, 0.35, 0.7, 0.75, 0.55, 0.45, 0.5, 0.55, 0.5, 0.48, 0.52,
                     0.62, 0.8, 0.95, 1.0, 0.9, 0.7, 0.45, 0.22],
                    [0.12, 0.07, 0.04, 0.03, 0.03, 0.05, 0.12, 0.25, 0.4, 0.55, 0.68, 0.75, 0.8, 0.8, 0.8, 0.82,
                     0.85, 0.9, 0.95, 0.95, 0.85, 0.65, 0.42, 0.22]),
}


def people(profile: str, lt: LocalTime) -> np.ndarray:
    weekday, offday = PEOPLE[profile]
    return np.where(lt.offday, daily(offday, lt.hour), daily(weekday, lt.hour))

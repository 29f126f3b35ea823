"""Air-pollution episodes: yellow dust (황사), winter smog (고농도 초미세먼지) and summer ozone.

Each calendar year gets a seeded list of episodes (`EpisodeCalendar`), so which days have an
episode depends only on the seed. An episode can also be forced (`episode=...` option) for
demos and tests; a forced episode reaches its plateau at `start` and holds it for `hours`.

Calibration (docs/simulator.md): yellow dust is observed in Seoul on about 5-10 days a year,
mostly March-May, with hourly PM10 of several hundred ug/m3 in strong events; PM2.5 advisories
(75 ug/m3 for 2 h) are issued several times each winter in stagnant, hazy spells of 1-4 days
that end with a cold north-westerly; ozone advisories (0.12 ppm) fall on hot afternoons, May-August.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from functools import lru_cache

import numpy as np

from citywall.feeds.simulator import noise

HOUR_US = 3_600_000_000
DAY_US = 24 * HOUR_US
KINDS = ("yellow_dust", "winter_smog", "ozone")
LABELS = {"yellow_dust": "황사 (yellow dust)", "winter_smog": "고농도 초미세먼지 (winter smog)", "ozone": "고농도 오존 (ozone)"}
# What `peak` means, per kind.
PEAK_UNITS = {"yellow_dust": "PM10 excess, ug/m3", "winter_smog": "PM2.5 excess, ug/m3", "ozone": "afternoon O3 excess, ppm"}
FORCED_DEFAULTS = {"yellow_dust": (12.0, 380.0), "winter_smog": (36.0, 85.0), "ozone": (48.0, 0.06)}  # plateau h, peak


@dataclass(frozen=True)
class Episode:
    kind: str
    plateau_start_us: int
    ramp_h: float
    plateau_h: float
    decay_h: float
    peak: float
    forced: bool = False

    @property
    def start_us(self) -> int:
        return self.plateau_start_us - int(self.ramp_h * HOUR_US)

    @property
    def end_us(self) -> int:
        return self.plateau_start_us + int((self.plateau_h + self.decay_h) * HOUR_US)

    def shape(self, t_us: np.ndarray, delay_h: np.ndarray | float = 0.0) -> np.ndarray:
        """0..1 intensity: a linear ramp, a plateau, a linear decay; `delay_h` shifts arrival."""
        h = (np.asarray(t_us, dtype=np.float64) - self.plateau_start_us) / HOUR_US - delay_h
        up = np.clip(1 + h / max(self.ramp_h, 1e-9), 0, 1)
        down = np.clip(1 - (h - self.plateau_h) / max(self.decay_h, 1e-9), 0, 1)
        return np.minimum(up, down)

    def describe(self) -> dict:
        return {"kind": self.kind, "label": LABELS[self.kind], "forced": self.forced,
                "start": _iso(self.start_us), "plateau_start": _iso(self.plateau_start_us),
                "end": _iso(self.end_us), "peak": self.peak, "peak_means": PEAK_UNITS[self.kind]}


def _iso(us: int) -> str:
    return datetime.fromtimestamp(us / 1e6, timezone.utc).isoformat(timespec="seconds")


def _year_start_us(year: int) -> int:
    # 1 January 00:00 KST
    return int(datetime(year, 1, 1, tzinfo=timezone.utc).timestamp() * 1e6) - 9 * HOUR_US


@lru_cache(maxsize=64)
def year_episodes(seed: int, year: int) -> tuple[Episode, ...]:
    """The seeded episodes that start in one calendar year (winter smog: in its Nov-Mar season
    that begins in November of this year)."""
    r = noise.rng(seed, "episodes", year)
    y0 = _year_start_us(year)
    out: list[Episode] = []
    # Yellow dust: ~4-5 events a year, centred on early April (most in March-May).
    for _ in range(int(np.clip(r.poisson(4.5), 2, 8))):
        day = float(np.clip(r.normal(92, 24), 35, 150))
        ramp, plateau, decay = r.uniform(3, 6), r.uniform(8, 30), r.uniform(6, 12)
        peak = float(np.clip(r.lognormal(np.log(260), 0.45), 130, 900))
        out.append(Episode("yellow_dust", y0 + int((day + r.uniform(0, 1)) * DAY_US), ramp, plateau, decay, round(peak)))
    # Winter smog: ~5 stagnant spells per November-March season.
    nov1 = _year_start_us(year) + int(304 * DAY_US)
    for _ in range(int(np.clip(r.poisson(5), 2, 9))):
        day = float(r.uniform(0, 150))
        ramp, plateau, decay = r.uniform(12, 30), r.uniform(14, 70), r.uniform(4, 10)
        peak = float(np.clip(r.lognormal(np.log(62), 0.3), 42, 140))
        out.append(Episode("winter_smog", nov1 + int(day * DAY_US), ramp, plateau, decay, round(peak)))
    # Summer ozone: hot, sunny spells of 1-3 days in May-August.
    for _ in range(int(np.clip(r.poisson(6), 2, 12))):
        day = float(r.uniform(125, 240))
        plateau = r.uniform(20, 70)
        peak = float(np.clip(r.normal(0.035, 0.01), 0.015, 0.06))
        out.append(Episode("ozone", y0 + int(day * DAY_US), 6.0, plateau, 6.0, round(peak, 3)))
    return tuple(sorted(out, key=lambda e: e.plateau_start_us))


class EpisodeCalendar:
    def __init__(self, seed: int, forced: list[Episode] | None = None, calendar: bool = True) -> None:
        self.seed = seed
        self.forced = list(forced or [])
        self.calendar = calendar

    def between(self, t0_us: int, t1_us: int, kind: str | None = None) -> list[Episode]:
        """Episodes overlapping [t0, t1]."""
        years = range(datetime.fromtimestamp(t0_us / 1e6, timezone.utc).year - 1,
                      datetime.fromtimestamp(t1_us / 1e6, timezone.utc).year + 1)
        eps = [e for y in years for e in year_episodes(self.seed, y)] if self.calendar else []
        eps += self.forced
        return [e for e in eps if e.end_us >= t0_us and e.start_us <= t1_us and (kind is None or e.kind == kind)]

    def intensity(self, kind: str, t_us: np.ndarray, delay_h: np.ndarray | None = None) -> np.ndarray:
        """Sum over episodes of peak x shape, shape (len(t_us), len(delay_h)) (delay per place)."""
        t_us = np.asarray(t_us, dtype=np.int64)
        delay = np.zeros(1) if delay_h is None else np.asarray(delay_h, dtype=np.float64)
        out = np.zeros((len(t_us), len(delay)))
        if len(t_us) == 0:
            return out
        for e in self.between(int(t_us.min()) - 6 * HOUR_US, int(t_us.max()) + 6 * HOUR_US, kind):
            out += e.peak * e.shape(t_us[:, None], delay[None, :])
        return out

    def active(self, t_us: int) -> list[dict]:
        return [e.describe() for e in self.between(t_us, t_us) if e.start_us <= t_us <= e.end_us]


def forced_episode(kind: str, plateau_start_us: int, hours: float | None = None, peak: float | None = None) -> Episode:
    if kind not in KINDS:
        raise ValueError(f"unknown episode {kind!r}; choose one of {', '.join(KINDS)}")
    default_hours, default_peak = FORCED_DEFAULTS[kind]
    ramp = {"yellow_dust": 2.0, "winter_smog": 6.0, "ozone": 3.0}[kind]
    return Episode(kind, plateau_start_us, ramp, float(hours if hours is not None else default_hours),
                   4.0, float(peak if peak is not None else default_peak), forced=True)

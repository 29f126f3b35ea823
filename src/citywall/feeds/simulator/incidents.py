"""Seoul's incident stream, simulated: fires, rescues, ambulance calls and the rest, with their handling.

Like every other part of the simulator, the stream is a pure function of (seed, time). Time is cut
into one-minute arrival slots; the number of new cases of a kind in a slot is Poisson with the
kind's rate at that minute, and everything about a case (where, how severe, what, how long each
step takes, whether it turns out to be a false alarm) is hashed from (seed, kind, slot, index). So
any window of time can be computed on its own: `events(a, b)` looks back over the slots whose
cases may still be running at `a` (each kind's longest possible case, `RATES[kind].lookback_ms`) and keeps
the steps that fall in [a, b). Asking for [a, b) then [b, c) gives exactly the events of [a, c).

Rates: each kind has an annual count, a daily profile and a monthly profile (both relative,
mean 1); floods instead follow the simulated rain of the weather model with the same seed, so
the wall's floods come with its downpours. The annual counts are chosen so that, at a typical
daytime moment (10-18 h), the number of cases still open is near what Seoul's wall showed in a
demo, "화재 2건, 구조 3건, 구급 37건"; they are compared with Seoul's published yearly figures
below. Annual figures are rounded and approximate; "chosen" means an assumption of the
simulator, not a published number.

| kind | cases / year | basis | mean time open | mean open, 10-18 h |
|---|---|---|---|---|
| fire (화재) | 8,000 calls: ~6,000 fires + ~2,000 that turn out not to be fires | Seoul records roughly 5,000-6,500 fires a year (2017-2023); the non-fire share (25%) is chosen | fires ~2.1 h (10-90%: 1.1-3.4 h), non-fires ~12 min | 1.98 |
| rescue (구조) | 21,500 | chosen to match the demo's 3 open rescues; Seoul's 119 counts many more rescue dispatches (lock-outs, animal captures, insect nests the wall need not show) | ~53 min | 2.98 |
| EMS (구급) | 460,000 | Seoul's 119 ambulances run roughly half a million calls a year, about two-thirds taking a patient to hospital (simulated: 66%) | ~34 min (~41 min when transporting) | 36.9 |
| traffic accident (교통사고) | 3,500 | chosen: the accidents the fire service attends, a tenth or so of Seoul's ~35,000-40,000 injury accidents a year | ~50 min | 0.41 |
| flood (침수) | 40 without rain (burst mains, backflow) + rain-driven: 1.6 per hour per mm/h above 8 mm/h (2021-2023 at seed 2017: 580, 48, 149) | chosen | ~1.8 h | 0.01 (0 most days; up to ~14 in a downpour) |
| collapse (붕괴) | 150 | chosen | ~2.8 h | 0.09 |
| gas leak (가스누출) | 1,500 | chosen | ~48 min | 0.18 |
| other (기타 안전조치) | 9,000 | chosen: signs, fallen trees, broken glass and the like | ~38 min | 0.96 |

The last column is measured: every 20 minutes of the simulated year 2022, seed 2017.

Placement: a case falls in a legal dong with weight sqrt(area in km2) (residents spread over the
city, the same assumption as the S-DoT layout) plus a "busy" term from the 116 real-time hotspots
(their usual peak population, a daytime-population proxy, spread with a 1 km Gaussian), the busy
term carrying about half the total weight; then at one of 64 seeded points inside the dong.
Timing: dispatch about a minute after the call; fire engines on scene a median 5.8 min after the
call (75% within Seoul's 7-minute target), ambulances 6.8 min; fires under control (초진) 15 min to
2.5 h after operations start by severity, extinguished (완진) later, closed after overhaul and
investigation, 1-4 h in all; 39% of fires (small ones) go straight to 완진 without a separate 초진.
EMS cases close ~40 min after the call when a patient is taken to hospital; some are cancelled en
route, find no patient or end without transport, always with a note. Documented in
docs/simulator.md ("Incidents").
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from citywall.alerts.severity import SEVERITIES
from citywall.city.facilities import fire_station_name
from citywall.city.model import City
from citywall.feeds.simulator import noise
from citywall.feeds.simulator.hotspots import load_hotspots
from citywall.feeds.simulator.timebase import daily, local, monthly
from citywall.feeds.simulator.weather import WeatherModel
from citywall.incidents.lifecycle import KINDS

SLOT_MS = 60_000
_SLOT_BITS = 10  # case counter = slot * 1024 + index: at most 1,023 new cases of a kind per minute
_MAX_PER_SLOT = (1 << _SLOT_BITS) - 1
_MIN_MS, _H_MS = 60_000, 3_600_000
_YEAR_SLOTS = 365.2425 * 1440
_NU, _NZ = 10, 8  # hashed uniforms and normals per case
_POINTS_PER_DONG = 64


@dataclass(frozen=True)
class KindRate:
    per_year: float
    daily: tuple[float, ...]  # 24 relative values, hour 0..23 local time
    monthly: tuple[float, ...]  # 12 relative values, January..December
    severity: tuple[float, ...]  # shares over SEVERITIES
    lookback_ms: int  # longer than any case of the kind can stay open


def _norm(values: list[float]) -> tuple[float, ...]:
    a = np.asarray(values, dtype=np.float64)
    return tuple((a / a.mean()).tolist())


# Daily profiles: EMS calls peak mid-morning and stay high until the evening, with a night trough at
# about 40% of the peak; fires are most frequent in the afternoon; rescues and safety calls follow
# daytime activity; road accidents the rush hours; gas calls meal times.
_FLAT = [1.0] * 24
_EMS_DAY = [0.75, 0.65, 0.56, 0.5, 0.47, 0.5, 0.65, 0.9, 1.15, 1.3, 1.3, 1.25, 1.2, 1.2, 1.2, 1.18, 1.15, 1.15, 1.15,
            1.1, 1.05, 1.0, 0.95, 0.85]
_FIRE_DAY = [0.7, 0.6, 0.55, 0.5, 0.5, 0.5, 0.6, 0.75, 0.9, 1.05, 1.2, 1.3, 1.35, 1.4, 1.4, 1.35, 1.3, 1.25, 1.2, 1.15,
             1.05, 0.95, 0.85, 0.75]
_RESCUE_DAY = [0.55, 0.45, 0.4, 0.35, 0.35, 0.4, 0.6, 0.85, 1.05, 1.25, 1.35, 1.35, 1.35, 1.35, 1.35, 1.35, 1.3, 1.3,
               1.3, 1.2, 1.1, 0.95, 0.8, 0.65]
_ROAD_DAY = [0.6, 0.5, 0.4, 0.35, 0.35, 0.45, 0.7, 1.15, 1.25, 1.05, 0.95, 0.95, 1.0, 1.0, 1.05, 1.1, 1.2, 1.35, 1.4,
             1.3, 1.15, 1.0, 0.85, 0.7]
_GAS_DAY = [0.4, 0.3, 0.25, 0.25, 0.3, 0.5, 0.8, 1.1, 1.2, 1.2, 1.3, 1.45, 1.4, 1.3, 1.2, 1.2, 1.3, 1.45, 1.5, 1.4,
            1.2, 0.9, 0.7, 0.5]
_WORK_DAY = [0.4, 0.35, 0.3, 0.3, 0.35, 0.5, 0.75, 1.0, 1.25, 1.4, 1.45, 1.45, 1.4, 1.4, 1.4, 1.4, 1.35, 1.3, 1.2, 1.05,
             0.9, 0.75, 0.6, 0.5]
# Seasons: fires and gas calls in the heating months; rescues (water, heat) and ambulance calls up in
# summer; collapses with the spring thaw (해빙기) and the monsoon.
_FLAT_YEAR = [1.0] * 12
_FIRE_YEAR = [1.25, 1.15, 1.15, 1.05, 0.95, 0.85, 0.8, 0.85, 0.85, 0.95, 1.05, 1.15]
_EMS_YEAR = [1.02, 0.95, 0.96, 0.97, 1.0, 1.0, 1.06, 1.1, 1.0, 0.98, 0.96, 1.0]
_RESCUE_YEAR = [0.85, 0.8, 0.9, 0.95, 1.0, 1.05, 1.2, 1.25, 1.15, 1.0, 0.9, 0.9]
_ROAD_YEAR = [0.95, 0.85, 0.95, 1.0, 1.05, 1.0, 1.0, 1.0, 1.0, 1.1, 1.1, 1.0]
_GAS_YEAR = [1.3, 1.2, 1.1, 1.0, 0.9, 0.8, 0.75, 0.75, 0.85, 1.0, 1.1, 1.25]
_COLLAPSE_YEAR = [0.8, 1.1, 1.3, 1.1, 0.9, 0.9, 1.4, 1.3, 1.0, 0.8, 0.7, 0.7]
_OTHER_YEAR = [0.95, 0.9, 1.0, 1.05, 1.0, 1.0, 1.15, 1.15, 1.05, 0.95, 0.9, 0.9]

RATES: dict[str, KindRate] = {
    "fire": KindRate(8_000, _norm(_FIRE_DAY), _norm(_FIRE_YEAR), (0, 0.52, 0.33, 0.14, 0.01), 17 * _H_MS),
    "rescue": KindRate(21_500, _norm(_RESCUE_DAY), _norm(_RESCUE_YEAR), (0, 0.35, 0.45, 0.17, 0.03), 10 * _H_MS),
    "ems": KindRate(460_000, _norm(_EMS_DAY), _norm(_EMS_YEAR), (0, 0.45, 0.42, 0.12, 0.01), 3 * _H_MS),
    "traffic_accident": KindRate(3_500, _norm(_ROAD_DAY), _norm(_ROAD_YEAR), (0, 0.50, 0.35, 0.12, 0.03), 6 * _H_MS),
    "flood": KindRate(40, _norm(_FLAT), _norm(_FLAT_YEAR), (0, 0.40, 0.40, 0.17, 0.03), 14 * _H_MS),
    "collapse": KindRate(150, _norm(_WORK_DAY), _norm(_COLLAPSE_YEAR), (0, 0.15, 0.45, 0.30, 0.10), 14 * _H_MS),
    "gas_leak": KindRate(1_500, _norm(_GAS_DAY), _norm(_GAS_YEAR), (0, 0.30, 0.45, 0.20, 0.05), 8 * _H_MS),
    "other": KindRate(9_000, _norm(_WORK_DAY), _norm(_OTHER_YEAR), (0.30, 0.50, 0.17, 0.03, 0), 6 * _H_MS),
}
FIRE_FALSE_SHARE = 0.25  # of fire calls (2,000 of 8,000): not a fire after all, closed early with a note
# Floods with the rain: cases per hour per mm/h above the threshold (~250 a year on average at seed
# 2017, 2021-2023, from ~30 in a dry year to ~560 in a wet one).
FLOOD_RAIN_THRESHOLD_MM_H = 8.0
FLOOD_PER_MM = 1.6

_TITLES: dict[str, list[str]] = {
    "fire": ["주택 화재", "아파트 화재", "상가 화재", "음식점 화재", "차량 화재", "쓰레기 화재", "사무실 화재", "공장 화재", "창고 화재"],
    "ems": ["호흡곤란 환자", "복통 환자", "낙상 부상자", "의식 저하 환자", "흉통 환자", "발열 환자", "교통사고 부상자", "주취자 부상",
            "경련 환자", "어지럼증 환자"],
    "rescue": ["승강기 갇힘", "교통사고 차량 갇힘", "수난 구조", "산악 구조", "고립자 구조", "추락 위험 구조", "맨홀 추락"],
    "traffic_accident": ["차량 추돌 사고", "보행자 교통사고", "이륜차 사고", "버스 사고", "차량 전도 사고"],
    "flood": ["도로 침수", "지하 주택 침수", "지하차도 침수", "상가 침수", "맨홀 역류"],
    "collapse": ["축대 붕괴", "담장 붕괴", "공사장 토사 붕괴", "도로 함몰(싱크홀)", "건물 외벽 일부 붕괴"],
    "gas_leak": ["도시가스 누출 의심", "가스 냄새 신고", "LPG 누출", "가스 배관 파손"],
    "other": ["간판 추락 위험", "수목 전도", "전선 단락", "유리창 파손 위험", "배수관 파열", "낙하물 위험"],
}
_EMS_SEVERE = {"critical": ["심정지 의심 환자"], "high": ["흉통 환자", "의식 저하 환자", "뇌졸중 의심 환자", "호흡곤란 환자"]}
_FALSE_NOTES: dict[str, list[str]] = {
    "fire": ["현장 확인 결과 화재 아님 (음식물 조리 연기)", "자동화재탐지설비 오작동", "오인 신고 (굴뚝 연기)", "현장 확인 결과 화재 아님 (수증기)"],
    "rescue": ["현장 확인 결과 구조 대상 없음"],
    "traffic_accident": ["현장 확인 결과 당사자 간 자체 처리"],
    "flood": ["현장 확인 결과 침수 없음"],
    "collapse": ["붕괴 우려 신고, 현장 확인 결과 이상 없음"],
    "gas_leak": ["점검 결과 누출 없음", "가스 냄새 원인 확인 (누출 아님)"],
    "other": ["현장 확인 결과 위험 요인 없음"],
}
# Generic kinds: (share false, share reported by a unit already there (no 출동지령), share fixed on
# arrival (no 조치중), median minutes to resolve at medium severity, longest resolve in minutes).
_GENERIC: dict[str, tuple[float, float, float, float, float]] = {
    "traffic_accident": (0.06, 0.10, 0.15, 25, 240),
    "flood": (0.10, 0.0, 0.10, 80, 600),
    "collapse": (0.20, 0.0, 0.05, 120, 600),
    "gas_leak": (0.35, 0.0, 0.25, 30, 300),
    "other": (0.10, 0.10, 0.30, 20, 240),
}
_SEV_FACTOR = {"informational": 0.5, "low": 0.7, "medium": 1.0, "high": 1.6, "critical": 2.5}


@dataclass(frozen=True)
class IncidentEvent:
    """One thing that happens to a case: it is opened (`action="open"`) or moves to a step.

    `open` carries where and what; `advance` the step, who and why. `external_id` ties the events of
    one case together (stable for a seed, so a replayed window never opens a case twice).
    """

    at_ms: int
    action: Literal["open", "advance"]
    external_id: str
    kind: str
    step: str
    by: str
    note: str = ""
    severity: str | None = None
    lon: float | None = None
    lat: float | None = None
    gu: str | None = None
    dong: str | None = None
    title: str = ""
    address: str = ""
    unit: str | None = None


@dataclass
class SimulatedCase:
    external_id: str
    kind: str
    severity: str
    lon: float
    lat: float
    gu: str | None
    dong: str | None
    title: str
    address: str
    unit: str
    # (step, at_ms, by, note), the first being the opening step.
    timeline: list[tuple[str, int, str, str]] = field(default_factory=list)

    @property
    def opened_at_ms(self) -> int:
        return self.timeline[0][1]

    @property
    def closed_at_ms(self) -> int:
        return self.timeline[-1][1]

    def step_at(self, t_ms: int) -> str | None:
        """The step at `t_ms`, or None when the case is not open then (closed cases are not)."""
        if t_ms < self.opened_at_ms or t_ms >= self.closed_at_ms:
            return None
        step = self.timeline[0][0]
        for s, at, _, _ in self.timeline:
            if at <= t_ms:
                step = s
        return step

    def events(self) -> list[IncidentEvent]:
        first, t0, by0, note0 = self.timeline[0]
        out = [IncidentEvent(t0, "open", self.external_id, self.kind, first, by0, note0, self.severity, self.lon, self.lat,
                             self.gu, self.dong, self.title, self.address, self.unit)]
        out += [IncidentEvent(at, "advance", self.external_id, self.kind, step, by, note) for step, at, by, note in self.timeline[1:]]
        return out


def _ln(median_s: float, sigma: float, lo_s: float, hi_s: float, z: float) -> int:
    """A lognormal duration in ms from a hashed normal, clipped so every case's span stays bounded."""
    return int(round(min(max(median_s * float(np.exp(sigma * z)), lo_s), hi_s) * 1000))


def _mmss(ms: int) -> str:
    s = ms // 1000
    return f"{s // 60}분 {s % 60:02d}초"


def _pick(options: list[str], u: float) -> str:
    return options[min(int(u * len(options)), len(options) - 1)]


class IncidentModel:
    """Seoul's incident stream for one seed. `rate_scale` multiplies every rate (a busier demo)."""

    def __init__(self, city: City, seed: int, rate_scale: float = 1.0) -> None:
        if not 0 <= rate_scale <= 100:
            raise ValueError(f"rate_scale must be between 0 and 100, got {rate_scale}")
        self.city, self.seed, self.rate_scale = city, int(seed), float(rate_scale)
        self.weather = WeatherModel(self.seed)
        self.kinds = tuple(RATES)
        self.control = "서울종합방재센터" if city.id == "seoul" else "119종합상황실"
        self._streams = {k: {name: noise.stream_id(f"incident:{k}:{name}") for name in ("count", "u", "z")} for k in self.kinds}
        self._dong_codes, self._dong_cdf = self._dong_weights()
        self._points = self._dong_points()
        self._station = {code: fire_station_name(a.name_ko) for code, a in city.districts.items()}

    # -- placement --------------------------------------------------------------------------------
    def _dong_weights(self) -> tuple[list[str], np.ndarray]:
        codes = list(self.city.dongs)
        dongs = [self.city.dongs[c] for c in codes]
        base = np.sqrt([d.area_km2 for d in dongs])
        cx = np.array([d.centroid[0] for d in dongs])
        cy = np.array([d.centroid[1] for d in dongs])
        spots = load_hotspots()
        hx = np.array([h.lon for h in spots])
        hy = np.array([h.lat for h in spots])
        peak = np.array([h.peak for h in spots])
        kx = 111.32 * np.cos(np.radians(float(np.mean(cy))))
        d2 = ((cx[:, None] - hx[None, :]) * kx) ** 2 + ((cy[:, None] - hy[None, :]) * 110.57) ** 2
        busy = (peak[None, :] * np.exp(-d2 / 2.0)).sum(axis=1)
        busy = busy / busy.sum() * base.sum() if busy.sum() > 0 else busy  # the busy half weighs as much as the area half
        w = base + busy
        cdf = np.cumsum(w) / w.sum()
        return codes, cdf

    def _dong_points(self) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        import shapely

        r = noise.rng(self.seed, "incident-points")
        out = {}
        for code in self._dong_codes:
            geom = self.city.dongs[code].geometry
            x0, y0, x1, y1 = geom.bounds
            xs: list[float] = []
            ys: list[float] = []
            while len(xs) < _POINTS_PER_DONG:
                px, py = np.round(r.uniform(x0, x1, 128), 6), np.round(r.uniform(y0, y1, 128), 6)
                inside = shapely.contains_xy(geom, px, py)
                px, py = px[inside], py[inside]
                # Keep points the city itself places in this dong (rounding, or dongs that overlap at the edges).
                mine = [i for i, (_, d) in enumerate(self.city.locate_many(px, py)) if d == code]
                xs.extend(px[mine].tolist())
                ys.extend(py[mine].tolist())
            out[code] = (np.array(xs[:_POINTS_PER_DONG]), np.array(ys[:_POINTS_PER_DONG]))
        return out

    # -- rates ------------------------------------------------------------------------------------
    def rate_per_slot(self, kind: str, slots: np.ndarray) -> np.ndarray:
        """Expected new cases of a kind in each one-minute slot (by its middle)."""
        rate = RATES[kind]
        mid_us = (np.asarray(slots, dtype=np.int64) * SLOT_MS + SLOT_MS // 2) * 1000
        lt = local(mid_us)
        lam = rate.per_year / _YEAR_SLOTS * daily(rate.daily, lt.hour) * monthly(rate.monthly, lt.doy)
        if kind == "flood":
            hours = np.floor_divide(mid_us, 3_600_000_000)
            uniq, inv = np.unique(hours, return_inverse=True)
            rain = self.weather.at(uniq * 3_600_000_000).precipitation[inv]
            lam = lam + FLOOD_PER_MM * np.clip(rain - FLOOD_RAIN_THRESHOLD_MM_H, 0, None) / 60.0
        return lam * self.rate_scale

    def _counts(self, kind: str, slots: np.ndarray) -> np.ndarray:
        """Poisson counts per slot by inverse CDF on one hashed uniform per slot."""
        lam = self.rate_per_slot(kind, slots)
        u = noise.uniform(self.seed, self._streams[kind]["count"], slots)
        n = np.zeros(len(slots), dtype=np.int64)
        p = np.exp(-lam)
        cdf = p.copy()
        k = 0
        live = u > cdf
        while live.any() and k < _MAX_PER_SLOT:
            k += 1
            n += live
            p = p * lam / k
            cdf = cdf + p
            live = live & (u > cdf)
        return n

    # -- cases ------------------------------------------------------------------------------------
    def cases(self, kind: str, from_ms: int, to_ms: int) -> list[SimulatedCase]:
        """Cases of a kind whose arrival slot starts in [from_ms, to_ms) (slots are whole minutes)."""
        first = -(-int(from_ms) // SLOT_MS)
        last = -(-int(to_ms) // SLOT_MS)
        slots = np.arange(first, last, dtype=np.int64)
        if len(slots) == 0:
            return []
        n = self._counts(kind, slots)
        slot_of = np.repeat(slots, n)
        if len(slot_of) == 0:
            return []
        index = np.concatenate([np.arange(k) for k in n[n > 0]])
        counter = (slot_of << _SLOT_BITS) + index
        s = self._streams[kind]
        u = noise.uniform(self.seed, np.uint64(s["u"]) + np.arange(_NU, dtype=np.uint64)[None, :], counter[:, None])
        z = noise.normal(self.seed, np.uint64(s["z"]) + np.arange(_NZ, dtype=np.uint64)[None, :], counter[:, None])
        sev_cdf = np.cumsum(RATES[kind].severity)
        out = []
        for i in range(len(counter)):
            slot, j = int(slot_of[i]), int(index[i])
            opened = slot * SLOT_MS + int(u[i, 0] * SLOT_MS)
            d = min(int(np.searchsorted(self._dong_cdf, u[i, 1], side="right")), len(self._dong_codes) - 1)
            dong_code = self._dong_codes[d]
            px, py = self._points[dong_code]
            p = min(int(u[i, 2] * _POINTS_PER_DONG), _POINTS_PER_DONG - 1)
            severity = SEVERITIES[min(int(np.searchsorted(sev_cdf, u[i, 3] * sev_cdf[-1], side="right")), len(SEVERITIES) - 1)]
            dong = self.city.dongs[dong_code]
            gu = self.city.districts.get(dong.parent or "")
            station = self._station.get(dong.parent or "", "119안전센터")
            what = _pick(_EMS_SEVERE[severity], u[i, 4]) if kind == "ems" and severity in _EMS_SEVERE else _pick(_TITLES[kind], u[i, 4])
            case = SimulatedCase(
                external_id=f"sim-{self.seed}-{kind}-{slot}-{j}", kind=kind, severity=severity,
                lon=float(px[p]), lat=float(py[p]), gu=dong.parent, dong=dong_code,
                title=f"{dong.name_ko} {what}",
                address=" ".join(x for x in (self.city.name_ko, gu.name_ko if gu else "", f"{dong.name_ko} 일대") if x),
                unit=station)
            case.timeline.append((KINDS[kind].steps[0].code, opened, self.control, "119 신고 접수"))
            plan = {"fire": self._fire, "ems": self._ems, "rescue": self._rescue}.get(kind, self._generic)
            plan(case, u[i], z[i])
            out.append(case)
        return out

    def _then(self, case: SimulatedCase, step: str, after_ms: int, by: str, note: str = "") -> int:
        at = case.timeline[-1][1] + max(1000, after_ms)
        case.timeline.append((step, at, by, note))
        return at

    def _fire(self, c: SimulatedCase, u: np.ndarray, z: np.ndarray) -> None:
        station, sev = c.unit, c.severity
        self._then(c, "dispatched", _ln(70, 0.35, 30, 180, z[0]), self.control, f"관할 {station} 출동 지령")
        if u[5] < FIRE_FALSE_SHARE:
            if u[6] < 0.25:
                self._then(c, "closed", _ln(180, 0.5, 30, 900, z[1]), station, "출동 중 신고 취소: 화재 아님 확인")
                return
            self._then(c, "arrived", _ln(270, 0.35, 120, 1200, z[1]), station, "현장 도착")
            self._then(c, "closed", _ln(420, 0.5, 120, 2400, z[2]), station, _pick(_FALSE_NOTES["fire"], u[7]))
            return
        travel = _ln(270, 0.35, 120, 1200, z[1])
        self._then(c, "arrived", travel, station, f"출동 {_mmss(travel)} 만에 현장 도착")
        self._then(c, "operating", _ln(70, 0.5, 20, 300, z[2]), station, "화재 진압 개시")
        uc = {"informational": 12, "low": 15, "medium": 30, "high": 60, "critical": 150}[sev] * 60
        ex = {"informational": 15, "low": 20, "medium": 40, "high": 75, "critical": 200}[sev] * 60
        skip = u[6] < {"informational": 0.6, "low": 0.6, "medium": 0.25}.get(sev, 0.0)
        if skip:
            self._then(c, "extinguished", _ln(uc + ex, 0.5, 300, 14 * 3600, z[3]), station, "초진 없이 완진 (소규모 화재)")
        else:
            self._then(c, "under_control", _ln(uc, 0.5, 180, 6 * 3600, z[3]), station, "초진: 연소 확대 저지")
            self._then(c, "extinguished", _ln(ex, 0.5, 300, 8 * 3600, z[4]), station, "완진")
        self._then(c, "closed", _ln(40 * 60, 0.5, 300, 7200, z[5]), station, "잔화 정리 및 화재 조사 후 상황종결")

    def _ems(self, c: SimulatedCase, u: np.ndarray, z: np.ndarray) -> None:
        station, path = c.unit, u[5]
        team = f"{station} 구급대"
        self._then(c, "en_route", _ln(45, 0.4, 15, 180, z[0]), team, "구급차 출동")
        if path < 0.04:
            self._then(c, "closed", _ln(180, 0.5, 30, 900, z[1]), team, "출동 중 신고 취소")
            return
        travel = _ln(360, 0.4, 120, 1500, z[1])
        self._then(c, "arrived", travel, team, f"출동 {_mmss(travel)} 만에 현장 도착")
        if path < 0.08:
            self._then(c, "closed", _ln(360, 0.5, 60, 1800, z[2]), team, "현장 확인 결과 환자 없음")
            return
        self._then(c, "operating", _ln(60, 0.5, 15, 300, z[2]), team, "응급처치 개시")
        if path < 0.34:
            note = _pick(["미이송: 환자 이송 거부", "미이송: 현장 응급처치 후 귀소", "미이송: 경증, 자가 병원 방문 안내"], u[6])
            self._then(c, "closed", _ln(780, 0.5, 180, 3600, z[3]), team, note)
            return
        factor = {"critical": 1.4, "high": 1.15}.get(c.severity, 1.0)
        self._then(c, "closed", _ln(1800 * factor, 0.35, 600, 7200, z[3]), team, "병원 이송 완료")

    def _rescue(self, c: SimulatedCase, u: np.ndarray, z: np.ndarray) -> None:
        station = c.unit
        team = f"{station} 구조대"
        self._then(c, "dispatched", _ln(60, 0.35, 20, 180, z[0]), self.control, f"관할 {station} 출동 지령")
        travel = _ln(390, 0.4, 120, 1800, z[1])
        self._then(c, "arrived", travel, team, f"출동 {_mmss(travel)} 만에 현장 도착")
        if u[5] < 0.10:
            self._then(c, "closed", _ln(480, 0.5, 60, 2400, z[2]), team, _pick(_FALSE_NOTES["rescue"], u[7]))
            return
        self._then(c, "operating", _ln(90, 0.5, 20, 480, z[2]), team, "구조 활동 개시")
        if u[5] < 0.25:
            self._then(c, "closed", _ln(900, 0.5, 180, 5400, z[3]), team, "요구조자 자력 탈출, 안전조치 후 종결")
            return
        minutes = {"informational": 10, "low": 15, "medium": 30, "high": 60, "critical": 150}[c.severity]
        people = 1 + int(u[6] * {"high": 3, "critical": 6}.get(c.severity, 1))
        self._then(c, "rescued", _ln(minutes * 60, 0.55, 180, 8 * 3600, z[3]), team, f"구조 완료 ({people}명)")
        self._then(c, "closed", _ln(720, 0.5, 120, 3600, z[4]), team, "상황종결")

    def _generic(self, c: SimulatedCase, u: np.ndarray, z: np.ndarray) -> None:
        p_false, p_nodispatch, p_noresp, resolve_min, resolve_max_min = _GENERIC[c.kind]
        station = c.unit
        first_leg = _ln(420, 0.4, 120, 2400, z[1])
        if u[6] < p_nodispatch:
            self._then(c, "arrived", _ln(120, 0.5, 20, 600, z[0]), station, "순찰 중 발견, 현장 조치")
        else:
            self._then(c, "dispatched", _ln(70, 0.35, 20, 180, z[0]), self.control, f"관할 {station} 출동 지령")
            self._then(c, "arrived", first_leg, station, f"출동 {_mmss(first_leg)} 만에 현장 도착")
        if u[5] < p_false:
            self._then(c, "closed", _ln(600, 0.5, 60, 3600, z[2]), station, _pick(_FALSE_NOTES[c.kind], u[7]))
            return
        if u[8] >= p_noresp:
            self._then(c, "responding", _ln(120, 0.5, 20, 600, z[3]), station, "조치 개시")
        resolve = resolve_min * 60 * _SEV_FACTOR[c.severity]
        self._then(c, "resolved", _ln(resolve, 0.6, 180, resolve_max_min * 60, z[4]), station,
                   "조치 완료" if u[8] >= p_noresp else "도착 즉시 조치 완료")
        self._then(c, "closed", _ln(720, 0.5, 120, 3600, z[5]), station, "상황종결")

    # -- windows ----------------------------------------------------------------------------------
    def events(self, start_ms: int, end_ms: int) -> list[IncidentEvent]:
        """Every open and step whose time is in [start_ms, end_ms), in time order."""
        start_ms, end_ms = int(start_ms), int(end_ms)
        if end_ms <= start_ms:
            return []
        out: list[IncidentEvent] = []
        for kind in self.kinds:
            for case in self.cases(kind, start_ms - RATES[kind].lookback_ms - SLOT_MS, end_ms):
                out.extend(e for e in case.events() if start_ms <= e.at_ms < end_ms)
        out.sort(key=lambda e: (e.at_ms, e.external_id, KINDS[e.kind].index(e.step)))
        return out

    def active_at(self, t_ms: int) -> list[dict[str, Any]]:
        """The cases open at `t_ms` (opened at or before it, not yet closed), with their step then."""
        t_ms = int(t_ms)
        out = []
        for kind in self.kinds:
            for case in self.cases(kind, t_ms - RATES[kind].lookback_ms - SLOT_MS, t_ms + 1):
                step = case.step_at(t_ms)
                if step is not None:
                    out.append({"external_id": case.external_id, "kind": kind, "severity": case.severity, "step": step,
                                "opened_at_ms": case.opened_at_ms, "lon": case.lon, "lat": case.lat, "gu": case.gu,
                                "dong": case.dong, "title": case.title})
        return out

    def active_counts(self, times_ms: np.ndarray | list[int]) -> dict[str, np.ndarray]:
        """Open cases per kind at each instant (one pass over the cases: for calibration and tests)."""
        times = np.asarray(times_ms, dtype=np.int64)
        out = {}
        for kind in self.kinds:
            cases = self.cases(kind, int(times.min()) - RATES[kind].lookback_ms - SLOT_MS, int(times.max()) + 1)
            opened = np.sort(np.array([c.opened_at_ms for c in cases], dtype=np.int64))
            closed = np.sort(np.array([c.closed_at_ms for c in cases], dtype=np.int64))
            out[kind] = np.searchsorted(opened, times, side="right") - np.searchsorted(closed, times, side="right")
        return out

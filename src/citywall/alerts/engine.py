"""The rule engine: a RuleSet evaluated on the live stream, hour by hour and on each air index.

Pure and I/O-free: every method takes what happened (new values, the time, hourly means, the CAI)
and returns the `Signal`s it caused, so the live runner, a replay and the tests drive the same
code. Conditions (alerts.conditions) are kept per (rule, datastream) and made when a datastream
matching a rule first reports, since Things are registered while the platform runs.

Cost: the live stream brings thousands of changed values a second out of ~16,000 datastreams.
Which rules a datastream belongs to is worked out once per datastream into a boolean matrix
(rule x datastream id); a batch then costs one fancy-index of that matrix and a Python loop over
the values that some rule actually watches. Staleness is kept in arrays and checked with masks,
so a tick does not visit every datastream.

Signals for one (rule, subject) alternate raise / clear. A rule with levels (an advisory's
주의보 / 경보, a CAI grade) that changes level clears the old level and raises the new one at the
same instant: the alarm book then shows the 경보 as the new announcement it is.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import msgspec
import numpy as np

from citywall.air.cai import GRADES
from citywall.alerts.advisory import ADVISORY, NONE, WARNING, AdvisoryRule, advisory_levels
from citywall.alerts.rules import (GRADE_CODES, PER_DATASTREAM, AdvisoryAlertRule, CaiGradeRule, CrossRule, FrozenRule, RateRule,
                                   Rule, RuleError, RuleSet, StaleRule, ThresholdRule)
from citywall.alerts.signal import Signal
from citywall.city.model import City
from citywall.observations.registry import Registry

HOUR_MS = 3_600_000
NO_TIME = np.iinfo(np.int64).min  # "never reported" in the engine's time arrays
# How the wall writes a canonical unit in each language (quantities.yaml keeps ASCII symbols).
UNIT_TEXT = {"ug/m3": ("㎍/㎥", "µg/m³"), "degC": ("℃", "°C"), "{count}": ("명", "people"), "persons": ("명", "people"),
             "level": ("", ""), "UVI": ("", "")}
# Seoul real-time city data congestion levels (feeds/simulator/hotspots.py).
CONGESTION_TEXT = {1: ("여유", "relaxed"), 2: ("보통", "normal"), 3: ("약간 붐빔", "slightly busy"), 4: ("붐빔", "busy")}
KIND_TEXT = {"air_station": ("대기측정소", "air stations"), "sdot": ("S-DoT", "S-DoT"), "road_link": ("도로 소통", "road links"),
             "hotspot": ("주요 장소 인구", "hotspots"), "weather": ("기상관측", "weather")}
LEVEL_TEXT = {ADVISORY: ("주의보", "advisory"), WARNING: ("경보", "warning")}


# -- text ---------------------------------------------------------------------------------
def num(v: float | None) -> str:
    """A reading as a person writes it: 82, 12.3, 0.061."""
    if v is None or not math.isfinite(v):
        return "–"
    if abs(v - round(v)) < 1e-9:
        return f"{int(round(v)):,}"
    if abs(v) >= 100:
        return f"{v:,.0f}"
    if abs(v) >= 1:
        return f"{v:.1f}"
    return f"{v:.3f}".rstrip("0")


def duration_text(seconds: float) -> tuple[str, str]:
    s = int(round(seconds))
    if s < 60 or s % 60:
        return f"{s}초", f"{s} s"
    h, m = divmod(s // 60, 60)
    ko = " ".join(x for x in (f"{h}시간" if h else "", f"{m}분" if m else "") if x)
    en = " ".join(x for x in (f"{h} h" if h else "", f"{m} min" if m else "") if x)
    return ko, en


def _unit(symbol: str) -> tuple[str, str]:
    return UNIT_TEXT.get(symbol, (symbol, symbol))


def with_unit(v: float | None, symbol: str, quantity: str = "") -> tuple[str, str]:
    """"82 ㎍/㎥" / "82 µg/m³"; a congestion level as "4 (붐빔)" / "4 (busy)"."""
    if quantity == "congestion_level" and v is not None and math.isfinite(v) and int(v) in CONGESTION_TEXT:
        ko, en = CONGESTION_TEXT[int(v)]
        return f"{num(v)} ({ko})", f"{num(v)} ({en})"
    ko, en = _unit(symbol)
    return f"{num(v)} {ko}".rstrip(), f"{num(v)} {en}".rstrip()


def describe(rule: Rule, registry: Registry | None = None) -> tuple[str, str]:
    """A rule's condition in words, for cross rules' messages and for lists of rules."""
    if isinstance(rule, ThresholdRule):
        q = (registry.quantities if registry else {}).get(rule.select.quantity or "")
        name = (q.name_ko, q.name_en) if q else (rule.select.quantity or "", rule.select.quantity or "")
        line = with_unit(rule.line, q.unit.symbol if q else "", rule.select.quantity or "")
        dur = duration_text(rule.for_s)
        ko = f"{name[0]} {line[0]} {'이상' if rule.above is not None else '이하'}" + (f" {dur[0]} 지속" if rule.for_s else "")
        en = f"{name[1]} {'at or above' if rule.above is not None else 'at or below'} {line[1]}" + (f" for {dur[1]}" if rule.for_s else "")
        return ko, en
    if rule.title_ko:
        return rule.title_ko, rule.title_en
    return rule.kind, rule.kind


# -- per-rule state -----------------------------------------------------------------------
@dataclass
class _DsState:
    """Conditions of one per-datastream rule, by datastream id."""

    conds: dict[int, Any] = field(default_factory=dict)


@dataclass
class _StaleState(_DsState):
    """Staleness as arrays over datastream ids, so a tick finds the newly stale by a mask. The
    Stale conditions stay the source of truth; they are fed lazily, just before they are asked."""

    last_ms: np.ndarray = field(default_factory=lambda: np.full(0, NO_TIME, np.int64))
    last_v: np.ndarray = field(default_factory=lambda: np.full(0, np.nan))
    max_age_ms: np.ndarray = field(default_factory=lambda: np.full(0, np.inf))
    active: np.ndarray = field(default_factory=lambda: np.zeros(0, bool))
    shares: dict[str, Any] = field(default_factory=dict)  # per: feed, by thing kind -> Threshold

    def grow(self, n: int) -> None:
        if len(self.last_ms) >= n:
            return
        extra = n - len(self.last_ms)
        self.last_ms = np.concatenate([self.last_ms, np.full(extra, NO_TIME, np.int64)])
        self.last_v = np.concatenate([self.last_v, np.full(extra, np.nan)])
        self.max_age_ms = np.concatenate([self.max_age_ms, np.full(extra, np.inf)])
        self.active = np.concatenate([self.active, np.zeros(extra, bool)])


@dataclass
class _AdvisoryState:
    """One gu's advisory: the level in force and the hourly means since the last hour after which
    `advisory_levels` can be resumed exactly (its runs of high hours are then known to be zero or
    no longer matter), so a long-running platform keeps only a few hours per gu."""

    anchor: int | None = None  # hour number (epoch ms // HOUR_MS)
    anchor_level: int = NONE
    means: dict[int, float] = field(default_factory=dict)
    level: int = NONE


def _resumable(value: float, level: int, std: AdvisoryRule) -> bool:
    """After this hour, does replaying from it with `start=level` give what the full history gives?

    Runs count hours at or above a line; a run below advisory_at (or a missing hour) is zero. At 경보
    the warning run no longer matters (it can only raise to 경보), and at 주의보 the advisory run no
    longer matters (it can only raise to 주의보, and a lift needs a value that resets it anyway)."""
    if not math.isfinite(value) or value < std.advisory_at or level == WARNING:
        return True
    return level == ADVISORY and value < std.warning_at


class RuleEngine:
    """Evaluates a RuleSet. Not thread-safe: the live runner calls it from the event loop only."""

    def __init__(self, ruleset: RuleSet, registry: Registry, city: City) -> None:
        self.registry, self.city = registry, city
        self._now_ms = 0
        self._active: dict[tuple[str, str], Signal] = {}
        self._states: dict[str, Any] = {}
        self._held: dict[str, dict[str | None, set[str]]] = {}
        self._last_held: dict[str, dict[str | None, int]] = {}
        self._rules: dict[str, Rule] = {}
        self._install(ruleset, keep=set())

    # -- rules --------------------------------------------------------------------------
    def check(self, ruleset: RuleSet) -> None:
        """What only the city can tell: the gu codes rules name."""
        for rule in ruleset.evaluated():
            unknown = [g for g in rule.select.gu or () if g not in self.city.districts]
            if unknown:
                raise RuleError(f"unknown gu code {unknown[0]!r} in {self.city.name_en}", rule=rule.id.split(".")[0], field="select.gu",
                                source=ruleset.source)

    def _install(self, ruleset: RuleSet, keep: set[str]) -> None:
        self.check(ruleset)
        rules = ruleset.evaluated()
        self.ruleset = ruleset
        self._rules = {r.id: r for r in rules}
        self._states = {r.id: self._states[r.id] if r.id in keep else self._new_state(r) for r in rules}
        self._ds_rules = [r for r in rules if r.kind in PER_DATASTREAM]
        self._advisories = [r for r in rules if isinstance(r, AdvisoryAlertRule)]
        self._cai = [r for r in rules if isinstance(r, CaiGradeRule)]
        self._crosses = [r for r in rules if isinstance(r, CrossRule)]
        self._part_ids = {p.rule for c in self._crosses for p in c.parts}
        self._held = {rid: {} for rid in self._part_ids}
        self._last_held = {rid: self._last_held.get(rid, {}) if rid in keep else {} for rid in self._part_ids}
        for (rid, subject), sig in self._active.items():
            if rid in self._held:
                self._held[rid].setdefault(sig.gu, set()).add(subject)
        # Which datastream each per-datastream rule watches: worked out per datastream on first sight.
        self._cap = 0
        self._member = np.zeros((len(self._ds_rules), 0), bool)
        self._classified = np.zeros(0, bool)

    @staticmethod
    def _new_state(rule: Rule) -> Any:
        if isinstance(rule, StaleRule):
            return _StaleState()
        if rule.kind in PER_DATASTREAM:
            return _DsState()
        return {}  # advisory: gu -> _AdvisoryState; cai_grade: subject -> level; cross: unused

    def replace(self, ruleset: RuleSet) -> list[Signal]:
        """Swap in new rules (an admin's edit). Rules whose definition is unchanged keep their state
        (a 30-minute duration half run stays half run); alarms of rules removed or changed are
        cleared, and returned as clearing signals with those of cross rules that stop holding."""
        self.check(ruleset)  # before anything changes: a refused edit leaves the running rules alone
        new = {r.id: r for r in ruleset.evaluated()}
        keep = {rid for rid, r in new.items() if self._rules.get(rid) == r}
        out: list[Signal] = []
        for key, sig in list(self._active.items()):
            if key[0] not in keep:
                del self._active[key]
                if not self._rules[key[0]].hidden:
                    out.append(msgspec.structs.replace(sig, active=False, at_ms=self._now_ms,
                                                       message_ko=f"규칙 변경으로 해제: {sig.title_ko}",
                                                       message_en=f"cleared by a rule change: {sig.title_en}"))
        self._install(ruleset, keep)
        return out + self._settle([])

    # -- datastreams --------------------------------------------------------------------
    def _ensure(self, ids: np.ndarray) -> None:
        """Grow the arrays to the registry and classify datastreams seen for the first time."""
        need = max(int(ids.max()) + 1, self.registry.capacity)
        if need > self._cap:
            cap = max(need, 2 * self._cap)
            self._member = np.concatenate([self._member, np.zeros((len(self._ds_rules), cap - self._cap), bool)], axis=1)
            self._classified = np.concatenate([self._classified, np.zeros(cap - self._cap, bool)])
            self._cap = cap
            for rule in self._ds_rules:
                st = self._states[rule.id]
                if isinstance(st, _StaleState):
                    st.grow(cap)
        fresh = np.unique(ids[~self._classified[ids]])
        if len(fresh):
            self._classify(fresh)

    def _classify(self, ids: np.ndarray) -> None:
        reg = self.registry
        known = reg.ds_known  # the arrays of this moment: registration may replace them meanwhile
        ids = ids[ids < len(known)]
        ids = ids[known[ids]]
        q, k, g, interval = reg.ds_quantity[ids], reg.ds_kind[ids], reg.ds_gu[ids], reg.ds_interval[ids]
        for row, rule in enumerate(self._ds_rules):
            sel = rule.select
            m = np.ones(len(ids), bool)
            if sel.quantity is not None:
                m &= q == reg.quantity_codes.index(sel.quantity)
            if sel.kind is not None:
                m &= k == (reg.kinds.index(sel.kind) if sel.kind in reg.kinds else -2)
            if sel.gu is not None:
                m &= np.isin(g, [reg.gu_codes.index(c) for c in sel.gu])
            if sel.by_properties:
                for j in np.flatnonzero(m).tolist():
                    thing = reg.things[reg.datastreams[int(ids[j])].thing_id]
                    m[j] = sel.matches_properties(thing.properties)
            self._member[row, ids] = m
            if isinstance(rule, StaleRule):
                mine = ids[m]
                self._states[rule.id].max_age_ms[mine] = rule.max_age_for(interval[m]) * 1000.0
        self._classified[ids] = True

    def on_values(self, ds_ids: np.ndarray, t_us: np.ndarray, v: np.ndarray) -> list[Signal]:
        """The newest values of datastreams that changed (what the live stream gives)."""
        ids = np.asarray(ds_ids, dtype=np.int64)
        t_ms = np.asarray(t_us, dtype=np.int64) // 1000
        values = np.asarray(v, dtype=np.float64)
        ok = np.isfinite(values) & (ids > 0)
        if not ok.all():
            ids, t_ms, values = ids[ok], t_ms[ok], values[ok]
        if not len(ids):
            return []
        self._now_ms = max(self._now_ms, int(t_ms.max()))
        self._ensure(ids)
        hits = self._member[:, ids]
        out: list[Signal] = []
        for row in np.flatnonzero(hits.any(axis=1)).tolist():
            rule = self._ds_rules[row]
            idx = np.flatnonzero(hits[row])
            sel_ids, sel_t, sel_v = ids[idx], t_ms[idx], values[idx]
            if isinstance(rule, StaleRule):
                out.extend(self._stale_seen(rule, sel_ids, sel_t, sel_v))
                continue
            conds, make = self._states[rule.id].conds, rule.condition  # type: ignore[union-attr]
            for ds, t, val in zip(sel_ids.tolist(), sel_t.tolist(), sel_v.tolist()):
                cond = conds.get(ds)
                if cond is None:
                    cond = conds[ds] = make()
                change = cond.feed(t, val)
                if change is not None:
                    out.append(self._ds_signal(rule, ds, change, t, val))
        return self._settle(out)

    def _stale_seen(self, rule: StaleRule, ids: np.ndarray, t: np.ndarray, v: np.ndarray) -> list[Signal]:
        st: _StaleState = self._states[rule.id]
        newer = t > st.last_ms[ids]
        ids, t, v = ids[newer], t[newer], v[newer]
        st.last_ms[ids], st.last_v[ids] = t, v
        if rule.per == "feed":
            return []
        out = []
        for ds in ids[st.active[ids]].tolist():  # only a stale datastream reporting again changes state
            change = st.conds[ds].feed(int(st.last_ms[ds]), float(st.last_v[ds]))
            st.active[ds] = False
            if change is not None:
                out.append(self._ds_signal(rule, ds, False, int(st.last_ms[ds]), float(st.last_v[ds])))
        return out

    # -- time ---------------------------------------------------------------------------
    def on_tick(self, now_ms: int) -> list[Signal]:
        """Time passing: datastreams and feeds going quiet, cross rules' windows running out."""
        self._now_ms = max(self._now_ms, int(now_ms))
        now = self._now_ms
        out: list[Signal] = []
        reg = self.registry
        for rule in self._ds_rules:
            if not isinstance(rule, StaleRule):
                continue
            st: _StaleState = self._states[rule.id]
            reported = st.last_ms != NO_TIME
            late = reported & ((now - st.last_ms) > st.max_age_ms)
            if rule.per == "feed":
                out.extend(self._feed_tick(rule, st, reported, late, now))
                continue
            for ds in np.flatnonzero(late & ~st.active).tolist():
                cond = st.conds.get(ds)
                if cond is None:
                    cond = st.conds[ds] = rule.condition(float(reg.datastreams[ds].interval_s))
                cond.feed(int(st.last_ms[ds]), float(st.last_v[ds]))
                if cond.tick(now):
                    st.active[ds] = True
                    out.append(self._ds_signal(rule, ds, True, now, float(st.last_v[ds])))
        return self._settle(out)

    def _feed_tick(self, rule: StaleRule, st: _StaleState, reported: np.ndarray, late: np.ndarray, now: int) -> list[Signal]:
        reg = self.registry
        ids = np.flatnonzero(reported)
        kinds = reg.ds_kind[ids].astype(np.int64)
        nk = len(reg.kinds)
        total = np.bincount(kinds, minlength=nk)
        stale = np.bincount(kinds, weights=late[ids].astype(np.float64), minlength=nk)
        out = []
        for k in np.flatnonzero(total).tolist():
            kind = reg.kinds[k]
            share = float(stale[k] / total[k])
            cond = st.shares.get(kind)
            if cond is None:
                cond = st.shares[kind] = rule.share_condition()
            change = cond.feed(now, share)
            if change is not None:
                out.append(self._feed_signal(rule, kind, change, now, int(stale[k]), int(total[k]), share))
        return out

    # -- hourly means: the advisories ---------------------------------------------------
    def advisory_datastreams(self) -> list[int]:
        """The datastreams whose hourly means `on_hourly` needs (the live runner queries them)."""
        out: set[int] = set()
        for rule in self._advisories:
            sel = rule.select
            for ds in self.registry.select(quantity=sel.quantity, kind=sel.kind):
                thing = self.registry.things[self.registry.datastreams[ds].thing_id]
                if thing.gu and (sel.gu is None or thing.gu in sel.gu) and sel.matches_properties(thing.properties):
                    out.add(ds)
        return sorted(out)

    def on_hourly(self, gu_hourly: dict[str, dict[str, list[tuple[int, float]]]], now_ms: int) -> list[Signal]:
        """Hourly means per gu and quantity, [(hour start ms, mean)], oldest first. Hours may repeat
        across calls (a mean still growing, late data) until they are an hour old."""
        self._now_ms = max(self._now_ms, int(now_ms))
        out: list[Signal] = []
        for rule in self._advisories:
            states: dict[str, _AdvisoryState] = self._states[rule.id]
            for gu, per_quantity in gu_hourly.items():
                series = per_quantity.get(rule.select.quantity or "")
                if not series or gu not in self.city.districts or (rule.select.gu and gu not in rule.select.gu):
                    continue
                out.extend(self._advance(rule, gu, states.setdefault(gu, _AdvisoryState()), series, int(now_ms)))
        return self._settle(out)

    def _advance(self, rule: AdvisoryAlertRule, gu: str, st: _AdvisoryState, series: Iterable[tuple[int, float]], now_ms: int) -> list[Signal]:
        for hour_ms, mean in series:
            h = int(hour_ms) // HOUR_MS
            if st.anchor is None or h > st.anchor:
                st.means[h] = math.nan if mean is None else float(mean)
        if not st.means:
            return []
        first = st.anchor + 1 if st.anchor is not None else min(st.means)
        hours = list(range(first, max(st.means) + 1))
        values = [st.means.get(h, math.nan) for h in hours]
        levels = advisory_levels(values, rule.standard, start=st.anchor_level)
        level = levels[-1]
        since = len(levels) - 1
        while since > 0 and levels[since - 1] == level:
            since -= 1
        for i in range(len(hours) - 1, -1, -1):  # move the anchor to the newest complete, resumable hour
            if (hours[i] + 1) * HOUR_MS <= now_ms and _resumable(values[i], levels[i], rule.standard):
                st.anchor, st.anchor_level = hours[i], levels[i]
                st.means = {h: m for h, m in st.means.items() if h > hours[i]}
                break
        if level == st.level:
            return []
        before, st.level = st.level, level
        at_ms, value = hours[since] * HOUR_MS, values[since]
        out = []
        if before != NONE:
            out.append(self._advisory_signal(rule, gu, before, False, at_ms, value, level))
        if level != NONE:
            out.append(self._advisory_signal(rule, gu, level, True, at_ms, value, before))
        return out

    # -- the air index: CAI grades ------------------------------------------------------
    def on_air(self, latest: dict[str, Any]) -> list[Signal]:
        """`AirIndex.latest` after a refresh: alarms while the city's or a gu's grade is bad."""
        at = latest.get("time_ms") or self._now_ms
        self._now_ms = max(self._now_ms, int(at))
        out: list[Signal] = []
        for rule in self._cai:
            places: list[tuple[str, str | None, Any]] = []
            if "city" in rule.places:
                places.append((f"city:{self.city.id}", None, latest.get("city")))
            if "gu" in rule.places:
                for gu, entry in sorted((latest.get("gu") or {}).items()):
                    if gu in self.city.districts and (rule.select.gu is None or gu in rule.select.gu):
                        places.append((f"gu:{gu}", gu, entry))
            levels: dict[str, int] = self._states[rule.id]
            for subject, gu, entry in places:
                if not entry or entry.get("grade") not in GRADE_CODES:
                    continue  # no index this time: nothing is known to have changed
                grade = GRADE_CODES.index(entry["grade"])
                level = grade if grade >= rule.min_grade else -1
                before = levels.get(subject, -1)
                if level == before:
                    continue
                levels[subject] = level
                if before >= 0:
                    out.append(self._cai_signal(rule, subject, gu, before, False, int(at), entry))
                if level >= 0:
                    out.append(self._cai_signal(rule, subject, gu, level, True, int(at), entry))
        return self._settle(out)

    # -- cross rules and bookkeeping ----------------------------------------------------
    def _settle(self, signals: list[Signal]) -> list[Signal]:
        """Record signals, evaluate cross rules on the new state, drop the inline parts' signals."""
        for s in signals:
            self._record(s)
        crossed = self._eval_cross(self._now_ms)
        for s in crossed:
            self._record(s)
        return [s for s in signals + crossed if not self._rules[s.rule].hidden]

    def _record(self, s: Signal) -> None:
        key = (s.rule, s.subject)
        if s.active:
            self._active[key] = s
        else:
            self._active.pop(key, None)
        held = self._held.get(s.rule)
        if held is None:
            return
        subjects = held.setdefault(s.gu, set())
        if s.active:
            subjects.add(s.subject)
        else:
            subjects.discard(s.subject)
            if not subjects:
                self._last_held[s.rule][s.gu] = s.at_ms

    def _part_holds(self, rule_id: str, scope: str, gu: str, now: int, within_ms: float) -> bool:
        held, last = self._held[rule_id], self._last_held[rule_id]
        places = [gu] if scope == "gu" else set(held) | set(last)
        for place in places:
            if held.get(place):
                return True
            t = last.get(place)
            if within_ms > 0 and t is not None and now - t <= within_ms:
                return True
        return False

    def _eval_cross(self, now: int) -> list[Signal]:
        out = []
        for rule in self._crosses:
            within = rule.within_s * 1000
            for gu in rule.select.gu or self.city.districts:
                holds = all(self._part_holds(p.rule, p.scope, gu, now, within) for p in rule.parts)
                if holds != ((rule.id, f"gu:{gu}") in self._active):
                    out.append(self._cross_signal(rule, gu, holds, now))
        return out

    def state(self) -> list[tuple[str, str]]:
        """Active (rule, subject) pairs."""
        return sorted(k for k in self._active if not self._rules[k[0]].hidden)

    def active(self) -> list[Signal]:
        """The raising signal of every active alarm (to rebuild an alarm book after a restart)."""
        return [s for k, s in sorted(self._active.items()) if not self._rules[k[0]].hidden]

    # -- signals ------------------------------------------------------------------------
    def _base(self, rule: Rule, subject: str, active: bool, at_ms: int, severity: str | None = None, **kw: Any) -> Signal:
        return Signal(rule=rule.id, subject=subject, active=active, at_ms=int(at_ms), severity=severity or rule.severity,
                      title_ko=rule.title_ko, title_en=rule.title_en, category=rule.category, **kw)

    def _place(self, gu: str | None) -> dict[str, Any]:
        area = self.city.districts.get(gu or "")
        if area is None:
            return {"gu": gu}
        lon, lat = area.centroid
        return {"gu": gu, "lon": lon, "lat": lat}

    def _gu_name(self, gu: str | None) -> tuple[str, str]:
        area = self.city.districts.get(gu or "")
        return (area.name_ko, area.name_en) if area else (self.city.name_ko, self.city.name_en)

    def _ds_signal(self, rule: Rule, ds: int, active: bool, t_ms: int, v: float) -> Signal:
        reg = self.registry
        d = reg.datastreams[ds]
        thing = reg.things[d.thing_id]
        q = reg.quantities[d.quantity]
        val = with_unit(v, q.unit.symbol, q.code)
        name = thing.name
        if isinstance(rule, ThresholdRule):
            cond = describe(rule, reg)
            clear = with_unit(rule.clear_line, q.unit.symbol, q.code)
            if active:
                ko, en = f"{name}: {q.name_ko} {val[0]} ({cond[0]})", f"{name}: {q.name_en} {val[1]} ({cond[1]})"
            elif rule.above is not None:
                ko, en = f"{name}: {q.name_ko} {val[0]}, {clear[0]} 미만으로 회복", f"{name}: {q.name_en} {val[1]}, back below {clear[1]}"
            else:
                ko, en = f"{name}: {q.name_ko} {val[0]}, {clear[0]} 초과로 회복", f"{name}: {q.name_en} {val[1]}, back above {clear[1]}"
        elif isinstance(rule, RateRule):
            per, limit = duration_text(rule.per_s), with_unit(rule.max_change, q.unit.symbol)
            if active:
                ko = f"{name}: {q.name_ko} 급변, {per[0]}당 {limit[0]} 넘게 변해 {val[0]}"
                en = f"{name}: {q.name_en} changed by more than {limit[1]} per {per[1]}, now {val[1]}"
            else:
                ko, en = f"{name}: {q.name_ko} 변화 속도 정상, {val[0]}", f"{name}: {q.name_en} steady again, {val[1]}"
        elif isinstance(rule, FrozenRule):
            if active:
                ko = f"{name}: {q.name_ko} {val[0]}이(가) {rule.readings}회 연속 같음 (센서 고착 의심)"
                en = f"{name}: {q.name_en} read {val[1]} {rule.readings} times in a row (sensor stuck?)"
            else:
                ko, en = f"{name}: {q.name_ko} 값 변화 재개, {val[0]}", f"{name}: {q.name_en} changing again, {val[1]}"
        else:  # stale
            assert isinstance(rule, StaleRule)
            limit = duration_text(rule.max_age_for(d.interval_s))
            if active:
                ko, en = f"{name}: {q.name_ko} {limit[0]} 넘게 수신 없음 (마지막 값 {val[0]})", f"{name}: no {q.name_en} for over {limit[1]} (last {val[1]})"
            else:
                ko, en = f"{name}: {q.name_ko} 수신 재개, {val[0]}", f"{name}: {q.name_en} reporting again, {val[1]}"
        return self._base(rule, f"ds:{ds}", active, t_ms, message_ko=ko, message_en=en, gu=thing.gu, dong=thing.dong,
                          lon=thing.lon, lat=thing.lat, value=float(v), datastream=int(ds))

    def _feed_signal(self, rule: StaleRule, kind: str, active: bool, now: int, stale: int, total: int, share: float) -> Signal:
        k = KIND_TEXT.get(kind, (kind, kind))
        line = rule.share if active or rule.clear_share is None else rule.clear_share
        pct, limit = round(share * 100), round(float(line) * 100)  # type: ignore[arg-type]
        if active:
            ko = f"{k[0]}: 데이터스트림 {total:,}개 중 {stale:,}개({pct}%) 수신 지연 (기준 {limit}%)"
            en = f"{k[1]}: {stale:,} of {total:,} datastreams ({pct}%) stale (limit {limit}%)"
        else:
            ko = f"{k[0]}: 수신 회복, 지연 {stale:,}/{total:,}개({pct}%)"
            en = f"{k[1]}: reporting again, {stale:,} of {total:,} stale ({pct}%)"
        return self._base(rule, f"feed:{kind}", active, now, message_ko=ko, message_en=en, value=share)

    def _advisory_signal(self, rule: AdvisoryAlertRule, gu: str, level: int, active: bool, at_ms: int, value: float, other: int) -> Signal:
        std = rule.standard
        q = self.registry.quantities[std.pollutant]
        place, lv = self._gu_name(gu), LEVEL_TEXT[level]
        val = with_unit(value, q.unit.symbol)
        if active and level > other:
            line = with_unit(std.warning_at if level == WARNING else std.advisory_at, q.unit.symbol)
            ko = f"{place[0]} {q.name_ko} 시간평균 {val[0]}, {std.hours}시간 연속 {line[0]} 이상: {lv[0]} 발령"
            en = f"{place[1]}: {q.name_en} hourly mean {val[1]}, at or above {line[1]} for {std.hours} h: {lv[1]} issued"
        elif active:  # 경보 downgraded to 주의보
            line = with_unit(std.warning_down, q.unit.symbol)
            ko = f"{place[0]} {q.name_ko} 시간평균 {val[0]}, {line[0]} 미만: 경보에서 {lv[0]}로 하향"
            en = f"{place[1]}: {q.name_en} hourly mean {val[1]}, below {line[1]}: warning downgraded to {lv[1]}"
        else:
            ko = f"{place[0]} {q.name_ko} {lv[0]} 해제, 시간평균 {val[0]}"
            en = f"{place[1]}: {q.name_en} {lv[1]} lifted, hourly mean {val[1]}"
        return self._base(rule, f"gu:{gu}", active, at_ms, severity=rule.severity_of(level), message_ko=ko, message_en=en,
                          value=value, **self._place(gu))

    def _cai_signal(self, rule: CaiGradeRule, subject: str, gu: str | None, grade: int, active: bool, at_ms: int, entry: dict) -> Signal:
        place, g = self._gu_name(gu), GRADES[grade]
        now_g = GRADES[GRADE_CODES.index(entry["grade"])]
        pollutant = entry.get("pollutant", "")
        pq = self.registry.quantities.get(pollutant)
        who = (f", 주 오염물질 {pq.name_ko}", f", mainly {pq.name_en}") if pq else ("", "")
        if active:
            ko = f"{place[0]} 통합대기환경지수 {entry.get('index')} ({g['ko']}){who[0]}"
            en = f"{place[1]}: air quality index {entry.get('index')} ({g['en']}){who[1]}"
        else:
            ko = f"{place[0]} 통합대기환경지수 {g['ko']} 해제, 현재 {entry.get('index')} ({now_g['ko']})"
            en = f"{place[1]}: air quality no longer {g['en'].lower()}, now {entry.get('index')} ({now_g['en']})"
        return self._base(rule, subject, active, at_ms, severity=rule.severity_of(grade), message_ko=ko, message_en=en,
                          value=float(entry["index"]) if entry.get("index") is not None else None, **self._place(gu))

    def _cross_signal(self, rule: CrossRule, gu: str, active: bool, now: int) -> Signal:
        place = self._gu_name(gu)
        parts = [describe(p.inline, self.registry) if p.inline is not None else (self._rules[p.rule].title_ko, self._rules[p.rule].title_en)
                 for p in rule.parts]
        ko_parts, en_parts = " + ".join(p[0] for p in parts), " + ".join(p[1] for p in parts)
        if active:
            ko, en = f"{place[0]}: {ko_parts}", f"{place[1]}: {en_parts}"
        else:
            ko, en = f"{place[0]}: 조건 해소 ({ko_parts})", f"{place[1]}: no longer all of {en_parts}"
        return self._base(rule, f"gu:{gu}", active, now, message_ko=ko, message_en=en, **self._place(gu))

"""Alert rules as data: a YAML document read into typed, validated rules.

Operators change rules without a release, so a rule file is checked as strictly as code would be:
every error names the rule and the field, unknown fields are refused (a misspelt `clear_at` would
otherwise silently mean "no hysteresis"), thresholds are checked against the quantity's plausible
range, and a cross-domain rule may only refer to rules that exist. The engine (`engine.py`) then
evaluates a `RuleSet` without looking at YAML again.

The document (see `rules.yaml` for the shipped one)::

    version: 1
    rules:
      - id: road_congestion_arterial          # [a-z][a-z0-9_]*, unique
        kind: threshold                       # threshold rate frozen stale advisory cai_grade cross
        title: {ko: 간선도로 정체, en: Arterial road congestion}
        category: traffic                     # air traffic crowd feed sensor incident cross
        severity: medium                      # or, for advisory / cai_grade, one per level
        select: {quantity: road_speed, kind: road_link, gu: ["11140"], unless: {road_type: 도시고속도로}}
        below: 15                             # or above:
        for: 15m                              # 90s, 15m, 2h, 1h30m, 1d or seconds
        clear_at: 25                          # hysteresis: clears only once back past this

What each kind takes besides the common fields (id, kind, title, category, severity, select,
enabled, description):

    threshold  above | below, for (duration, default 0), clear_at     -> conditions.Threshold per datastream
    rate       max_change, per (duration, default 1m)                  -> conditions.RateOfChange
    frozen     readings (>= 2)                                         -> conditions.Frozen
    stale      max_age (duration) | max_intervals (of the datastream's interval); per: datastream (default)
               or per: feed with share (0-1] and clear_share: a kind's share of stale datastreams
    advisory   select.quantity pm10 | pm25 (official thresholds by default) or advisory: {at, lift},
               warning: {at, down}, hours (default 2); severity: one, or {advisory: .., warning: ..}
    cai_grade  places: [city, gu], min_grade (default unhealthy); severity: one, or per grade code
    cross      parts: [{rule: <id>} | {kind: .., select: .., ...inline condition}], each with
               scope: gu (default, same gu) | city (anywhere); within (duration, default 0)
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from importlib.resources import files
from pathlib import Path
from typing import Any

import yaml

from citywall.air.cai import GRADES
from citywall.alerts.advisory import PM10, PM25, AdvisoryRule
from citywall.alerts.conditions import Frozen, RateOfChange, Stale, Threshold
from citywall.alerts.severity import SEVERITIES
from citywall.observations.quantities import quantities

KINDS = ("threshold", "rate", "frozen", "stale", "advisory", "cai_grade", "cross")
# Kinds evaluated per datastream, on the values the live stream brings.
PER_DATASTREAM = ("threshold", "rate", "frozen", "stale")
CATEGORIES = ("air", "traffic", "crowd", "feed", "sensor", "incident", "cross")
GRADE_CODES = tuple(g["code"] for g in GRADES)
# The official advisories a rule on PM10 or PM2.5 gets when its file does not spell the thresholds out.
OFFICIAL_ADVISORIES = {"pm10": PM10, "pm25": PM25}
ADVISORY_LEVELS = ("advisory", "warning")  # 주의보, 경보: level 1 and 2 of alerts.advisory
DEFAULT_ADVISORY_SEVERITY = {"advisory": "high", "warning": "critical"}
DEFAULT_GRADE_SEVERITY = {"unhealthy": "medium", "very_unhealthy": "high"}
PLACES = ("city", "gu")
SCOPES = ("gu", "city")

_ID = re.compile(r"^[a-z][a-z0-9_]*$")
_KIND = re.compile(r"^[a-z][a-z0-9_]*$")
_DURATION = re.compile(r"(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)")
_UNIT_S = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
SHIPPED = "rules.yaml"


class RuleError(ValueError):
    """A rule file that cannot be used; the message names the file, the rule and the field."""

    def __init__(self, message: str, *, rule: str | None = None, field: str | None = None, source: str | None = None) -> None:
        self.rule, self.field, self.source = rule, field, source
        where = [f"{source}" if source else None, f"rule {rule!r}" if rule else None, f"field {field!r}" if field else None]
        prefix = ", ".join(w for w in where if w)
        super().__init__(f"{prefix}: {message}" if prefix else message)


# -- the typed rules ----------------------------------------------------------------------
@dataclass(frozen=True)
class Selector:
    """The series a rule watches: a quantity, a kind of Thing, optionally some gu, and optionally
    Things whose properties match (`where`) or do not match (`unless`) given values."""

    quantity: str | None = None
    kind: str | None = None
    gu: tuple[str, ...] | None = None
    where: tuple[tuple[str, tuple[Any, ...]], ...] = ()
    unless: tuple[tuple[str, tuple[Any, ...]], ...] = ()

    def matches_properties(self, properties: Mapping[str, Any]) -> bool:
        if any(properties.get(k) not in values for k, values in self.where):
            return False
        return not any(properties.get(k) in values for k, values in self.unless)

    @property
    def by_properties(self) -> bool:
        return bool(self.where or self.unless)


@dataclass(frozen=True, kw_only=True)
class Rule:
    """What every rule has. Frozen and compared by value: `RuleEngine.replace` keeps the state of a
    rule whose definition is equal to the one it replaces."""

    id: str
    kind: str
    title_ko: str
    title_en: str
    category: str
    severity: str
    select: Selector = field(default_factory=Selector)
    enabled: bool = True
    description_ko: str = ""
    description_en: str = ""
    hidden: bool = False  # an inline part of a cross rule: evaluated, never signalled


@dataclass(frozen=True, kw_only=True)
class ThresholdRule(Rule):
    above: float | None = None
    below: float | None = None
    for_s: float = 0.0
    clear_at: float | None = None

    def condition(self) -> Threshold:
        return Threshold(above=self.above, below=self.below, for_s=self.for_s, clear_at=self.clear_at)

    @property
    def line(self) -> float:
        return self.above if self.above is not None else self.below  # type: ignore[return-value]

    @property
    def clear_line(self) -> float:
        return self.line if self.clear_at is None else self.clear_at


@dataclass(frozen=True, kw_only=True)
class RateRule(Rule):
    max_change: float
    per_s: float = 60.0

    def condition(self) -> RateOfChange:
        return RateOfChange(max_change=self.max_change, per_s=self.per_s)


@dataclass(frozen=True, kw_only=True)
class FrozenRule(Rule):
    readings: int

    def condition(self) -> Frozen:
        return Frozen(readings=self.readings)


@dataclass(frozen=True, kw_only=True)
class StaleRule(Rule):
    """Per datastream: no reading for `max_age_s` (or `max_intervals` of the datastream's own
    reporting interval). Per feed: at least `share` of a kind's reporting datastreams are stale."""

    max_age_s: float | None = None
    max_intervals: float | None = None
    per: str = "datastream"  # or "feed"
    share: float | None = None
    clear_share: float | None = None

    def max_age_for(self, interval_s: float) -> float:
        return self.max_age_s if self.max_age_s is not None else self.max_intervals * interval_s  # type: ignore[operator]

    def condition(self, interval_s: float) -> Stale:
        return Stale(max_age_s=self.max_age_for(interval_s))

    def share_condition(self) -> Threshold:
        return Threshold(above=self.share, clear_at=self.clear_share)


@dataclass(frozen=True, kw_only=True)
class AdvisoryAlertRule(Rule):
    """The fine-dust advisory of `alerts.advisory` per gu, from hourly means; `severities` per level."""

    standard: AdvisoryRule
    severities: tuple[tuple[str, str], ...] = tuple(DEFAULT_ADVISORY_SEVERITY.items())

    def severity_of(self, level: int) -> str:
        return dict(self.severities)[ADVISORY_LEVELS[level - 1]]


@dataclass(frozen=True, kw_only=True)
class CaiGradeRule(Rule):
    """An alarm while the CAI grade of the city or a gu is `min_grade` or worse; severity by grade."""

    places: tuple[str, ...] = PLACES
    min_grade: int = 2  # index into air.cai.GRADES: 나쁨
    severities: tuple[tuple[str, str], ...] = tuple(DEFAULT_GRADE_SEVERITY.items())

    def severity_of(self, grade: int) -> str:
        return dict(self.severities)[GRADE_CODES[grade]]


@dataclass(frozen=True)
class Part:
    """One condition of a cross rule: another rule by id, or an inline rule (`inline`) whose id is
    `<cross id>.<n>`. `scope` "gu" needs it in the same gu; "city" lets one city-wide reading (the
    KMA station's rain) count for every gu."""

    rule: str
    scope: str = "gu"
    inline: Rule | None = None


@dataclass(frozen=True, kw_only=True)
class CrossRule(Rule):
    """Holds in a gu while every part holds there, or held there within `within_s`."""

    parts: tuple[Part, ...]
    within_s: float = 0.0


@dataclass(frozen=True)
class RuleSet:
    rules: tuple[Rule, ...]
    source: str = "<memory>"
    text: str = field(default="", compare=False)  # the YAML it was read from (what an admin edits and the store keeps)

    def __iter__(self):  # noqa: ANN204
        return iter(self.rules)

    def __len__(self) -> int:
        return len(self.rules)

    def get(self, rule_id: str) -> Rule | None:
        return next((r for r in self.evaluated() if r.id == rule_id), None)

    def evaluated(self) -> list[Rule]:
        """Enabled rules and the inline parts of enabled cross rules, parts first."""
        out: list[Rule] = []
        for r in self.rules:
            if not r.enabled:
                continue
            if isinstance(r, CrossRule):
                out.extend(p.inline for p in r.parts if p.inline is not None)
            out.append(r)
        return out


# -- parsing ------------------------------------------------------------------------------
def parse_duration(value: Any, *, rule: str | None = None, field_name: str | None = None, source: str | None = None) -> float:
    """Seconds from "90s", "15m", "2h", "1h30m", "1d", "500ms" or a plain number of seconds."""
    if isinstance(value, bool):
        raise RuleError(f"{value!r} is not a duration; write e.g. 90s, 15m, 2h", rule=rule, field=field_name, source=source)
    if isinstance(value, (int, float)):
        seconds = float(value)
    elif isinstance(value, str) and value.strip():
        text = value.strip().replace(" ", "")
        pos, seconds = 0, 0.0
        for m in _DURATION.finditer(text):
            if m.start() != pos:
                break
            seconds += float(m.group(1)) * _UNIT_S[m.group(2)]
            pos = m.end()
        if pos != len(text) or pos == 0:
            raise RuleError(f"{value!r} is not a duration; write e.g. 90s, 15m, 2h, 1h30m", rule=rule, field=field_name, source=source)
    else:
        raise RuleError(f"{value!r} is not a duration; write e.g. 90s, 15m, 2h", rule=rule, field=field_name, source=source)
    if not math.isfinite(seconds) or seconds < 0:
        raise RuleError(f"duration {value!r} must be finite and not negative", rule=rule, field=field_name, source=source)
    return seconds


class _Reader:
    """Reads one rule mapping, remembering which fields were used so unknown ones are refused."""

    def __init__(self, raw: Mapping[str, Any], rule: str | None, source: str, prefix: str = "") -> None:
        self.raw, self.rule, self.source, self.prefix = raw, rule, source, prefix
        self.used: set[str] = set()

    def err(self, message: str, name: str | None = None) -> RuleError:
        return RuleError(message, rule=self.rule, field=f"{self.prefix}{name}" if name else None, source=self.source)

    def has(self, name: str) -> bool:
        return name in self.raw and self.raw[name] is not None

    def get(self, name: str, default: Any = None) -> Any:
        self.used.add(name)
        return self.raw.get(name, default)

    def required(self, name: str) -> Any:
        self.used.add(name)
        if self.raw.get(name) is None:
            raise self.err("is required", name)
        return self.raw[name]

    def number(self, name: str, default: float | None = None, *, required: bool = False) -> float | None:
        value = self.required(name) if required else self.get(name, default)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise self.err(f"{value!r} is not a finite number", name)
        return float(value)

    def duration(self, name: str, default: float | None = None) -> float | None:
        value = self.get(name)
        if value is None:
            return default
        return parse_duration(value, rule=self.rule, field_name=f"{self.prefix}{name}", source=self.source)

    def finish(self, allowed: set[str]) -> None:
        unknown = sorted(set(self.raw) - allowed)
        if unknown:
            raise self.err(f"unknown field; this kind of rule takes {', '.join(sorted(allowed))}", unknown[0])


def _bilingual(r: _Reader, name: str, *, required: bool) -> tuple[str, str]:
    value = r.required(name) if required else r.get(name)
    if value is None:
        return "", ""
    if not isinstance(value, Mapping) or set(value) != {"ko", "en"} or not all(isinstance(v, str) and v.strip() for v in value.values()):
        raise r.err("needs both ko and en, as {ko: ..., en: ...}", name)
    return value["ko"].strip(), value["en"].strip()


def _values(raw: Any, r: _Reader, name: str) -> tuple[tuple[str, tuple[Any, ...]], ...]:
    if raw is None:
        return ()
    if not isinstance(raw, Mapping) or not raw:
        raise r.err("must map Thing property names to a value or a list of values", name)
    return tuple(sorted((str(k), tuple(v) if isinstance(v, list) else (v,)) for k, v in raw.items()))


def _selector(r: _Reader, *, quantity: str) -> Selector:
    """`quantity` is "required", "optional" or "none" (the rule reads no datastream values)."""
    raw = r.get("select")
    if raw is None:
        if quantity == "required":
            raise r.err("is required: which series the rule watches, e.g. {quantity: pm25, kind: air_station}", "select")
        return Selector()
    if not isinstance(raw, Mapping):
        raise r.err("must be a mapping such as {quantity: road_speed, kind: road_link}", "select")
    allowed = {"gu"} if quantity == "none" else {"quantity", "kind", "gu", "where", "unless"}
    unknown = sorted(set(raw) - allowed)
    if unknown:
        raise r.err(f"unknown selector field; use {', '.join(sorted(allowed))}", f"select.{unknown[0]}")
    q = raw.get("quantity")
    known = quantities()
    if q is None and quantity == "required":
        raise r.err("is required", "select.quantity")
    if q is not None and q not in known:
        raise r.err(f"unknown quantity {q!r}; known: {', '.join(known)}", "select.quantity")
    kind = raw.get("kind")
    if kind is not None and (not isinstance(kind, str) or not _KIND.match(kind)):
        raise r.err(f"{kind!r} is not a Thing kind (lower-case code such as road_link)", "select.kind")
    gu = raw.get("gu")
    if gu is not None:
        if isinstance(gu, (str, int)):
            gu = [gu]
        if not isinstance(gu, list) or not gu or not all(isinstance(g, (str, int)) and not isinstance(g, bool) for g in gu):
            raise r.err("must be a gu code or a list of gu codes", "select.gu")
        gu = tuple(str(g) for g in gu)
    return Selector(quantity=q, kind=kind, gu=gu, where=_values(raw.get("where"), r, "select.where"),
                    unless=_values(raw.get("unless"), r, "select.unless"))


def _severity(r: _Reader) -> str:
    value = r.required("severity")
    if value not in SEVERITIES:
        raise r.err(f"unknown severity {value!r}; use one of {', '.join(SEVERITIES)}", "severity")
    return value


def _severities(r: _Reader, levels: tuple[str, ...], default: dict[str, str]) -> tuple[tuple[str, str], ...]:
    """One severity for every level, or a mapping level -> severity (missing levels: the default)."""
    value = r.get("severity")
    if value is None:
        return tuple((lv, default[lv]) for lv in levels)
    if isinstance(value, str):
        if value not in SEVERITIES:
            raise r.err(f"unknown severity {value!r}; use one of {', '.join(SEVERITIES)}", "severity")
        return tuple((lv, value) for lv in levels)
    if not isinstance(value, Mapping):
        raise r.err(f"must be a severity or a mapping of {', '.join(levels)} to severities", "severity")
    for k, v in value.items():
        if k not in levels:
            raise r.err(f"unknown level {k!r}; levels are {', '.join(levels)}", f"severity.{k}")
        if v not in SEVERITIES:
            raise r.err(f"unknown severity {v!r}; use one of {', '.join(SEVERITIES)}", f"severity.{k}")
    return tuple((lv, value.get(lv, default[lv])) for lv in levels)


def _in_range(r: _Reader, sel: Selector, name: str, value: float) -> None:
    """A threshold outside what the quantity can physically read would never fire (or always)."""
    if sel.quantity is None:
        return
    q = quantities()[sel.quantity]
    if not q.low <= value <= q.high:
        raise r.err(f"{value:g} is outside the range of {q.code} ({q.low:g}..{q.high:g} {q.unit.symbol})", name)


COMMON = {"id", "kind", "title", "category", "severity", "select", "enabled", "description"}


def _rule(raw: Any, source: str, index: int, *, inline_of: str | None = None) -> Rule:
    where = f"parts[{index}]" if inline_of else f"rules[{index}]"
    if not isinstance(raw, Mapping):
        raise RuleError(f"{where} must be a mapping", rule=inline_of, source=source)
    if inline_of:
        rule_id = f"{inline_of}.{index + 1}"
        r = _Reader(raw, inline_of, source, prefix=f"parts[{index}].")
    else:
        rule_id = raw.get("id")
        if not isinstance(rule_id, str) or not _ID.match(rule_id):
            raise RuleError(f"{where} needs an id of lower-case letters, digits and _ (got {rule_id!r})", field="id", source=source)
        r = _Reader(raw, rule_id, source)
    r.get("id")
    kind = r.required("kind")
    if kind not in KINDS:
        raise r.err(f"unknown kind {kind!r}; use one of {', '.join(KINDS)}", "kind")
    if inline_of and kind == "cross":
        raise r.err("a cross rule's part cannot itself be a cross rule", "kind")
    if inline_of:
        title_ko = title_en = ""
        category, severity, enabled = "cross", "informational", True
        desc = ("", "")
        common = {"kind", "select"}
    else:
        title_ko, title_en = _bilingual(r, "title", required=True)
        category = r.required("category")
        if category not in CATEGORIES:
            raise r.err(f"unknown category {category!r}; use one of {', '.join(CATEGORIES)}", "category")
        enabled = r.get("enabled", True)
        if not isinstance(enabled, bool):
            raise r.err("must be true or false", "enabled")
        desc = _bilingual(r, "description", required=False)
        common = COMMON
        severity = ""
    base = dict(id=rule_id, kind=kind, title_ko=title_ko, title_en=title_en, category=category, enabled=enabled,
                description_ko=desc[0], description_en=desc[1], hidden=bool(inline_of))

    def sev() -> str:
        return severity if inline_of else _severity(r)

    if kind == "threshold":
        sel = _selector(r, quantity="required")
        above, below = r.number("above"), r.number("below")
        if (above is None) == (below is None):
            raise r.err("a threshold needs exactly one of above or below", "above" if above is not None else "below")
        line_name = "above" if above is not None else "below"
        line = above if above is not None else below
        _in_range(r, sel, line_name, line)  # type: ignore[arg-type]
        clear_at = r.number("clear_at")
        if clear_at is not None:
            if above is not None and clear_at > above:
                raise r.err(f"{clear_at:g} must lie on the safe side of above {above:g} (at or below it)", "clear_at")
            if below is not None and clear_at < below:
                raise r.err(f"{clear_at:g} must lie on the safe side of below {below:g} (at or above it)", "clear_at")
        rule: Rule = ThresholdRule(**base, severity=sev(), select=sel, above=above, below=below, for_s=r.duration("for", 0.0),
                                   clear_at=clear_at)
        r.finish(common | {"above", "below", "for", "clear_at"})
    elif kind == "rate":
        sel = _selector(r, quantity="required")
        max_change = r.number("max_change", required=True)
        if max_change <= 0:  # type: ignore[operator]
            raise r.err("must be greater than 0", "max_change")
        per = r.duration("per", 60.0)
        if not per:
            raise r.err("must be longer than 0", "per")
        rule = RateRule(**base, severity=sev(), select=sel, max_change=max_change, per_s=per)  # type: ignore[arg-type]
        r.finish(common | {"max_change", "per"})
    elif kind == "frozen":
        sel = _selector(r, quantity="required")
        readings = r.required("readings")
        if isinstance(readings, bool) or not isinstance(readings, int) or readings < 2:
            raise r.err(f"{readings!r}: needs a whole number of readings, at least 2", "readings")
        rule = FrozenRule(**base, severity=sev(), select=sel, readings=readings)
        r.finish(common | {"readings"})
    elif kind == "stale":
        sel = _selector(r, quantity="optional")
        max_age, intervals = r.duration("max_age"), r.number("max_intervals")
        if (max_age is None) == (intervals is None):
            raise r.err("a stale rule needs exactly one of max_age (a duration) or max_intervals (of the datastream's interval)",
                        "max_age")
        if max_age is not None and max_age <= 0:
            raise r.err("must be longer than 0", "max_age")
        if intervals is not None and intervals <= 0:
            raise r.err("must be greater than 0", "max_intervals")
        per = r.get("per", "datastream")
        if per not in ("datastream", "feed"):
            raise r.err(f"{per!r}: use datastream or feed", "per")
        share = clear_share = None
        if per == "feed":
            share = r.number("share", required=True)
            if not 0 < share <= 1:  # type: ignore[operator]
                raise r.err(f"{share:g} must be a fraction above 0 and at most 1 (0.5 is half)", "share")
            clear_share = r.number("clear_share")
            if clear_share is not None and not 0 <= clear_share <= share:  # type: ignore[operator]
                raise r.err(f"{clear_share:g} must lie on the safe side of share {share:g} (between 0 and it)", "clear_share")
        elif r.has("share") or r.has("clear_share"):
            raise r.err("share applies only to per: feed", "share" if r.has("share") else "clear_share")
        if sel.quantity is None and per == "datastream" and sel.kind is None:
            raise r.err("a per-datastream stale rule needs a quantity or a kind", "select")
        rule = StaleRule(**base, severity=sev(), select=sel, max_age_s=max_age, max_intervals=intervals, per=per, share=share,
                         clear_share=clear_share)
        r.finish(common | {"max_age", "max_intervals", "per", "share", "clear_share"})
    elif kind == "advisory":
        sel = _selector(r, quantity="required")
        rule = AdvisoryAlertRule(**base, severity="", select=sel, standard=_standard(r, sel.quantity),  # type: ignore[arg-type]
                                 severities=_severities(r, ADVISORY_LEVELS, DEFAULT_ADVISORY_SEVERITY))
        rule = _with_base_severity(rule)
        r.finish(common | {"advisory", "warning", "hours"})
    elif kind == "cai_grade":
        sel = _selector(r, quantity="none")
        places = r.get("places", list(PLACES))
        if isinstance(places, str):
            places = [places]
        if not isinstance(places, list) or not places or any(p not in PLACES for p in places):
            raise r.err(f"{places!r}: use a list of {', '.join(PLACES)}", "places")
        min_grade = r.get("min_grade", "unhealthy")
        if min_grade not in GRADE_CODES:
            raise r.err(f"unknown grade {min_grade!r}; use one of {', '.join(GRADE_CODES)}", "min_grade")
        levels = GRADE_CODES[GRADE_CODES.index(min_grade):]
        default = {g: DEFAULT_GRADE_SEVERITY.get(g, "low") for g in levels}
        rule = CaiGradeRule(**base, severity="", select=sel, places=tuple(dict.fromkeys(places)),
                            min_grade=GRADE_CODES.index(min_grade), severities=_severities(r, levels, default))
        rule = _with_base_severity(rule)
        r.finish(common | {"places", "min_grade"})
    else:  # cross
        sel = _selector(r, quantity="none")
        raw_parts = r.required("parts")
        if not isinstance(raw_parts, list) or len(raw_parts) < 2:
            raise r.err("a cross rule needs a list of at least two parts", "parts")
        parts = []
        for i, p in enumerate(raw_parts):
            if not isinstance(p, Mapping):
                raise r.err("must be a mapping: {rule: <id>} or an inline condition with a kind", f"parts[{i}]")
            scope = p.get("scope", "gu")
            if scope not in SCOPES:
                raise r.err(f"{scope!r}: use gu (same gu) or city (anywhere in the city)", f"parts[{i}].scope")
            if "rule" in p:
                extra = sorted(set(p) - {"rule", "scope"})
                if extra:
                    raise r.err("a part that names a rule takes only rule and scope", f"parts[{i}].{extra[0]}")
                if not isinstance(p["rule"], str) or not _ID.match(p["rule"]):
                    raise r.err(f"{p['rule']!r} is not a rule id", f"parts[{i}].rule")
                parts.append(Part(rule=p["rule"], scope=scope))
            else:
                body = {k: v for k, v in p.items() if k != "scope"}
                inline = _rule(body, source, i, inline_of=rule_id)
                parts.append(Part(rule=inline.id, scope=scope, inline=inline))
        if all(p.scope == "city" for p in parts):
            raise r.err("at least one part must hold in the same gu (scope: gu); otherwise the rule is one city-wide condition",
                        "parts")
        rule = CrossRule(**base, severity=sev(), select=sel, parts=tuple(parts), within_s=r.duration("within", 0.0))
        r.finish(common | {"parts", "within"})
    return rule


def _with_base_severity(rule: AdvisoryAlertRule | CaiGradeRule) -> Rule:
    """The rule's own `severity` is that of its lowest level (what a list of rules shows)."""
    return replace(rule, severity=rule.severities[0][1])


def _standard(r: _Reader, quantity: str) -> AdvisoryRule:
    official = OFFICIAL_ADVISORIES.get(quantity)
    adv, warn = r.get("advisory"), r.get("warning")
    hours = r.get("hours", official.hours if official else 2)
    if isinstance(hours, bool) or not isinstance(hours, int) or hours < 1:
        raise r.err(f"{hours!r}: needs a whole number of hours, at least 1", "hours")
    if official is None and (adv is None or warn is None):
        raise r.err(f"no official advisory for {quantity}; give advisory: {{at, lift}} and warning: {{at, down}}",
                    "advisory" if adv is None else "warning")

    def pair(raw: Any, name: str, keys: tuple[str, str], fallback: tuple[float, float]) -> tuple[float, float]:
        if raw is None:
            return fallback
        if not isinstance(raw, Mapping) or set(raw) != set(keys):
            raise r.err(f"must be {{{keys[0]}: ..., {keys[1]}: ...}}", name)
        out = []
        for k in keys:
            v = raw[k]
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or v < 0:
                raise r.err(f"{v!r} is not a concentration", f"{name}.{k}")
            out.append(float(v))
        return out[0], out[1]

    a_at, a_lift = pair(adv, "advisory", ("at", "lift"), (official.advisory_at, official.advisory_lift) if official else (0, 0))
    w_at, w_down = pair(warn, "warning", ("at", "down"), (official.warning_at, official.warning_down) if official else (0, 0))
    if a_lift > a_at:
        raise r.err(f"{a_lift:g} must lie on the safe side of advisory.at {a_at:g} (at or below it)", "advisory.lift")
    if w_at <= a_at:
        raise r.err(f"{w_at:g} must be above advisory.at {a_at:g}", "warning.at")
    if w_down > w_at:
        raise r.err(f"{w_down:g} must lie on the safe side of warning.at {w_at:g} (at or below it)", "warning.down")
    return AdvisoryRule(quantity, advisory_at=a_at, advisory_lift=a_lift, warning_at=w_at, warning_down=w_down, hours=hours)


def parse_rules(doc: Any, source: str = "<memory>") -> RuleSet:
    """A RuleSet from a parsed YAML document or its text; RuleError on anything wrong."""
    if isinstance(doc, bytes):
        doc = doc.decode("utf-8")
    if isinstance(doc, str):
        text = doc
        try:
            doc = yaml.safe_load(doc)
        except yaml.YAMLError as e:
            raise RuleError(f"not valid YAML: {e}", source=source) from None
    else:
        text = yaml.safe_dump(doc, allow_unicode=True, sort_keys=False) if isinstance(doc, Mapping) else ""
    if not isinstance(doc, Mapping) or not isinstance(doc.get("rules"), list):
        raise RuleError("a rule file is a mapping with a list under `rules:`", source=source)
    unknown = sorted(set(doc) - {"version", "rules"})
    if unknown:
        raise RuleError(f"unknown top-level field {unknown[0]!r}; a rule file has version and rules", source=source)
    if doc.get("version", 1) != 1:
        raise RuleError(f"version {doc.get('version')!r} is not supported; this citywall reads version 1", source=source)
    rules: list[Rule] = []
    seen: set[str] = set()
    for i, raw in enumerate(doc["rules"]):
        rule = _rule(raw, source, i)
        if rule.id in seen:
            raise RuleError("the id is used by an earlier rule too", rule=rule.id, field="id", source=source)
        seen.add(rule.id)
        rules.append(rule)
    by_id = {r.id: r for r in rules}
    for rule in rules:
        if not isinstance(rule, CrossRule):
            continue
        for i, part in enumerate(rule.parts):
            if part.inline is not None:
                continue
            target = by_id.get(part.rule)
            if target is None:
                raise RuleError(f"refers to rule {part.rule!r}, which the file does not define", rule=rule.id, field=f"parts[{i}].rule",
                                source=source)
            if isinstance(target, CrossRule) or target.id == rule.id:
                raise RuleError(f"refers to cross rule {part.rule!r}; parts must be plain conditions", rule=rule.id,
                                field=f"parts[{i}].rule", source=source)
            if rule.enabled and not target.enabled:
                raise RuleError(f"refers to rule {part.rule!r}, which is disabled", rule=rule.id, field=f"parts[{i}].rule", source=source)
    return RuleSet(tuple(rules), source, text)


def load_rules(path: str | Path | None = None) -> RuleSet:
    """The rules of a YAML file; None: the rules shipped with citywall (alerts/rules.yaml)."""
    if path is None:
        return parse_rules((files("citywall.alerts") / SHIPPED).read_text(encoding="utf-8"), source=f"citywall/alerts/{SHIPPED}")
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as e:
        raise RuleError(f"cannot read the rule file: {e.strerror}", source=str(p)) from None
    return parse_rules(text, source=str(p))

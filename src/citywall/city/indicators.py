"""City indicators (시정현황): key figures with a target, the actual value and a trend.

They come from a file the city maintains (CSV from a spreadsheet, or YAML), not from sensors, so
they are loaded once, at start. The shipped file is an example and says so on the wall.
"""

from __future__ import annotations

import csv
import io
from dataclasses import asdict, dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

EXAMPLE = "indicators.example.csv"
COLUMNS = ("theme_ko", "theme_en", "code", "name_ko", "name_en", "unit", "target", "actual", "period", "better", "trend")


class IndicatorError(ValueError):
    pass


@dataclass(frozen=True)
class Indicator:
    code: str
    theme_ko: str
    theme_en: str
    name_ko: str
    name_en: str
    unit: str
    target: float
    actual: float
    period: str
    better: str  # "higher" or "lower": which way is progress
    trend: list[float] = field(default_factory=list)  # earlier periods, oldest first, ending with actual

    @property
    def progress(self) -> float:
        """Share of the target reached, in the indicator's own direction (1.0 = met)."""
        if self.better == "higher":
            return self.actual / self.target if self.target else 0.0
        return self.target / self.actual if self.actual else 1.0


@dataclass(frozen=True)
class Indicators:
    items: list[Indicator]
    source: str
    example: bool

    def as_dict(self) -> dict[str, Any]:
        return {"source": self.source, "example": self.example,
                "indicators": [{**asdict(i), "progress": round(i.progress, 4)} for i in self.items]}


def _number(row: dict[str, Any], key: str, where: str) -> float:
    try:
        return float(row[key])
    except (TypeError, ValueError, KeyError):
        raise IndicatorError(f"{where}: {key} must be a number, got {row.get(key)!r}") from None


def _indicator(row: Any, where: str) -> Indicator:
    if not isinstance(row, dict):
        raise IndicatorError(f"{where}: expected a mapping of {', '.join(COLUMNS)}, got {row!r}")
    missing = [c for c in COLUMNS if c != "trend" and row.get(c) in (None, "")]
    if missing:
        raise IndicatorError(f"{where}: missing {', '.join(missing)}")
    better = str(row["better"]).strip().lower()
    if better not in ("higher", "lower"):
        raise IndicatorError(f"{where}: better must be 'higher' or 'lower', got {row['better']!r}")
    trend_raw = row.get("trend") or []
    if isinstance(trend_raw, str):
        trend_raw = [x for x in trend_raw.split(";") if x.strip()]
    try:
        trend = [float(x) for x in trend_raw]
    except (TypeError, ValueError):
        raise IndicatorError(f"{where}: trend must be numbers separated by ';', got {row.get('trend')!r}") from None
    return Indicator(code=str(row["code"]), theme_ko=str(row["theme_ko"]), theme_en=str(row["theme_en"]),
                     name_ko=str(row["name_ko"]), name_en=str(row["name_en"]), unit=str(row["unit"]),
                     target=_number(row, "target", where), actual=_number(row, "actual", where),
                     period=str(row["period"]), better=better, trend=trend)


def parse(text: str, source: str, fmt: str) -> Indicators:
    """Indicators from CSV (one row each, `trend` as 'a;b;c') or YAML (`example:` and `indicators:`)."""
    example = False
    if fmt == "yaml":
        doc = yaml.safe_load(text) or {}
        if not isinstance(doc, dict) or not isinstance(doc.get("indicators"), list):
            raise IndicatorError(f"{source}: expected a mapping with an 'indicators' list")
        rows, example = doc["indicators"], bool(doc.get("example", False))
    else:
        reader = csv.DictReader(io.StringIO(text))
        unknown = set(reader.fieldnames or ()) - set(COLUMNS) - {"example"}
        if unknown:
            raise IndicatorError(f"{source}: unknown columns {sorted(unknown)}; expected {', '.join(COLUMNS)}")
        rows = list(reader)
        example = any(str(r.get("example", "")).strip().lower() in ("1", "true", "yes") for r in rows)
    items = [_indicator(r, f"{source} row {n}") for n, r in enumerate(rows, start=1)]
    codes = [i.code for i in items]
    duplicates = sorted({c for c in codes if codes.count(c) > 1})
    if duplicates:
        raise IndicatorError(f"{source}: duplicate codes {duplicates}")
    return Indicators(items=items, source=source, example=example)


def load_indicators(path: str | None) -> Indicators:
    """The city's indicators file, or the shipped example when none is configured."""
    if path is None:
        text = resources.files("citywall.city").joinpath("data", EXAMPLE).read_text(encoding="utf-8")
        return parse(text, f"citywall/city/data/{EXAMPLE} (shipped example)", "csv")
    p = Path(path)
    fmt = "yaml" if p.suffix.lower() in (".yaml", ".yml") else "csv"
    return parse(p.read_text(encoding="utf-8-sig"), str(p), fmt)

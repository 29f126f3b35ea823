"""The observed properties citywall knows, read from `quantities.yaml`.

Quantities are data, not classes: adding one is an edit of the YAML, and the pipeline's
vectorised checks read their ranges and unit conversions from here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from importlib.resources import files

import yaml


@dataclass(frozen=True)
class Unit:
    """A SensorThings unitOfMeasurement."""

    symbol: str
    name: str
    definition: str


@dataclass(frozen=True)
class Quantity:
    """A SensorThings ObservedProperty, with the checks citywall applies to its results."""

    code: str
    name_ko: str
    name_en: str
    unit: Unit
    low: float
    high: float
    domain: str
    integer: bool = False
    # other unit spelling -> (factor, offset) into the canonical unit
    conversions: dict[str, tuple[float, float]] = field(default_factory=dict)

    def conversion(self, unit: str | None) -> tuple[float, float] | None:
        """(factor, offset) to bring a value in `unit` to the canonical unit; None if unknown."""
        if unit is None or unit == self.unit.symbol:
            return (1.0, 0.0)
        return self.conversions.get(unit)


@lru_cache(maxsize=1)
def quantities() -> dict[str, Quantity]:
    raw = yaml.safe_load((files("citywall.observations") / "quantities.yaml").read_text(encoding="utf-8"))
    out = {}
    for code, q in raw.items():
        conversions = {alias: (1.0, 0.0) for alias in q.get("aliases", [])}
        conversions |= {u: (float(f), float(o)) for u, (f, o) in q.get("convert", {}).items()}
        out[code] = Quantity(
            code=code,
            name_ko=q["name"]["ko"],
            name_en=q["name"]["en"],
            unit=Unit(**q["unit"]),
            low=float(q["range"][0]),
            high=float(q["range"][1]),
            domain=q["domain"],
            integer=bool(q.get("integer", False)),
            conversions=conversions,
        )
    return out

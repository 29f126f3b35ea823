"""How the platform's registry reads as SensorThings entity sets, and a $filter evaluated over them.

The registry already is the SensorThings model (observations/model.py); this module names the
entities and their links the way the standard does:

- Things: the registry's Things (id = the Thing's id).
- Locations: one per Thing, its WGS84 point (id = the Thing's id).
- HistoricalLocations: the set exists, as the data model requires, and is empty: the registry
  keeps no moves (a Thing that moves is registered again), and an invented history would be worse.
- FeaturesOfInterest: one per Thing, the same point (id = the Thing's id): what a station observes
  is the air, road or place where it stands.
- Datastreams: the registry's Datastreams (id = the Datastream's id).
- Sensors: one per Thing kind (id = the kind, e.g. 'air_station'). The registry does not record
  each device's make and model, so a Sensor per Thing would claim knowledge the platform does not
  have; a Sensor per kind says honestly what is known: what sort of instrument reports.
- ObservedProperties: the platform's quantities (id = the quantity code, e.g. 'pm10').
- Observations: rows of the store (id = '<datastream id>-<phenomenonTime in µs since the epoch>',
  unique because the pipeline refuses a second value for the same datastream and time). They are
  read through `sql.py`, never held here.
"""

from __future__ import annotations

import math
from collections import defaultdict
from datetime import datetime, timezone
from typing import Any, Callable

from citywall.observations.registry import Registry
from citywall.sensorthings.query import Binary, Call, Literal, Not, Path, QueryError

OM_MEASUREMENT = "http://www.opengis.net/def/observationType/OGC-OM/2.0/OM_Measurement"
GEOJSON = "application/geo+json"
OBSERVED_PROPERTY_URN = "urn:citywall:observed-property:"

SETS = ("Things", "Locations", "HistoricalLocations", "Datastreams", "Sensors", "ObservedProperties", "Observations", "FeaturesOfInterest")
# entity set -> navigation property -> (target set, to-one)
NAV: dict[str, dict[str, tuple[str, bool]]] = {
    "Things": {"Locations": ("Locations", False), "HistoricalLocations": ("HistoricalLocations", False), "Datastreams": ("Datastreams", False)},
    "Locations": {"Things": ("Things", False), "HistoricalLocations": ("HistoricalLocations", False)},
    "HistoricalLocations": {"Thing": ("Things", True), "Locations": ("Locations", False)},
    "Datastreams": {"Thing": ("Things", True), "Sensor": ("Sensors", True), "ObservedProperty": ("ObservedProperties", True),
                    "Observations": ("Observations", False)},
    "Sensors": {"Datastreams": ("Datastreams", False)},
    "ObservedProperties": {"Datastreams": ("Datastreams", False)},
    "Observations": {"Datastream": ("Datastreams", True), "FeatureOfInterest": ("FeaturesOfInterest", True)},
    "FeaturesOfInterest": {"Observations": ("Observations", False)},
}
# What a Sensor of each kind the shipped feeds register is; other kinds get a generic description.
# Whether the Things of a kind are real or simulated is in each Thing's `simulated` property (and
# counted in the Sensor's properties), not in these texts.
KIND_TEXT = {
    "air_station": "Air quality monitoring station of the Seoul / AirKorea network (PM10, PM2.5, O3, NO2, CO, SO2; hourly means).",
    "sdot": "S-DoT (Smart Seoul Data of Things) multi-sensor unit (temperature, humidity, noise, light, PM, visitor counts).",
    "road_link": "Average speed of vehicles on one directed road link, as Seoul TOPIS traffic information gives it.",
    "hotspot": "Seoul real-time city data for one hotspot: congestion level and population estimate.",
    "weather": "Automatic weather station (KMA).",
}

Key = int | str
MIN_US, MAX_US = -62_135_596_800_000_000, 253_402_300_799_999_999  # years 1 to 9999, what a datetime holds
ObservationRow = tuple[int, int, float]  # datastream id, phenomenon time µs, result


def iso(t_us: int) -> str:
    """An instant as ISO 8601 UTC with Z, to the microsecond when it has any."""
    t = datetime.fromtimestamp(t_us // 1_000_000, timezone.utc).replace(microsecond=t_us % 1_000_000)
    text = t.isoformat().replace("+00:00", "Z")
    return text


def observation_id(ds: int, t_us: int) -> str:
    return f"{ds}-{t_us}"


def parse_observation_id(key: Any) -> tuple[int, int]:
    """(datastream id, phenomenon time µs) of an Observation id; QueryError if it is not one."""
    if isinstance(key, str):
        a, sep, b = key.partition("-")
        if sep and a.isdigit() and b.lstrip("-").isdigit() and int(a) < 2**31 and MIN_US <= int(b) <= MAX_US:
            return int(a), int(b)
    raise QueryError(f"{key!r} is not an Observation id ('<datastream id>-<phenomenonTime µs>')")


class Catalog:
    """The entity sets over one registry. Reads take copies of the registry's dicts, so a
    registration on the writer thread meanwhile does not break an iteration."""

    def __init__(self, registry: Registry) -> None:
        self.reg = registry
        self._index_version: tuple[int, int] | None = None
        self._ds_by_thing: dict[int, list[int]] = {}
        self._ds_by_kind: dict[str, list[int]] = {}
        self._ds_by_quantity: dict[str, list[int]] = {}

    # -- indexes (rebuilt when the registry grows) ------------------------------------------
    def _index(self) -> None:
        reg = self.reg
        version = (len(reg.things), len(reg.datastreams))
        if version == self._index_version:
            return
        by_thing: dict[int, list[int]] = defaultdict(list)
        by_kind: dict[str, list[int]] = defaultdict(list)
        by_q: dict[str, list[int]] = defaultdict(list)
        things = dict(reg.things)
        for d in list(reg.datastreams.values()):
            by_thing[d.thing_id].append(d.id)
            by_kind[things[d.thing_id].kind].append(d.id)
            by_q[d.quantity].append(d.id)
        self._ds_by_thing, self._ds_by_kind, self._ds_by_quantity = dict(by_thing), dict(by_kind), dict(by_q)
        self._index_version = version

    def datastreams_of(self, set_name: str, key: Key) -> list[int]:
        """The datastream ids whose Observations belong to an entity (for Observations navigation)."""
        self._index()
        if set_name == "Datastreams":
            return [int(key)] if self.exists("Datastreams", key) else []
        if set_name in ("Things", "FeaturesOfInterest", "Locations"):
            return list(self._ds_by_thing.get(int(key), [])) if isinstance(key, int) else []
        if set_name == "Sensors":
            return list(self._ds_by_kind.get(str(key), []))
        if set_name == "ObservedProperties":
            return list(self._ds_by_quantity.get(str(key), []))
        return []

    # -- identity ------------------------------------------------------------------------------
    def keys(self, set_name: str) -> list[Key]:
        reg = self.reg
        if set_name in ("Things", "Locations", "FeaturesOfInterest"):
            return sorted(list(reg.things))
        if set_name == "Datastreams":
            return sorted(list(reg.datastreams))
        if set_name == "Sensors":
            return sorted(list(reg.kinds))
        if set_name == "ObservedProperties":
            return list(reg.quantities)
        if set_name == "HistoricalLocations":
            return []
        raise QueryError(f"{set_name} are not held in the registry")

    def exists(self, set_name: str, key: Key) -> bool:
        reg = self.reg
        if set_name in ("Things", "Locations", "FeaturesOfInterest"):
            return isinstance(key, int) and key in reg.things
        if set_name == "Datastreams":
            return isinstance(key, int) and key in reg.datastreams
        if set_name == "Sensors":
            return isinstance(key, str) and key in reg.kinds
        if set_name == "ObservedProperties":
            return isinstance(key, str) and key in reg.quantities
        return False

    def related(self, set_name: str, key: Key, nav: str, row: ObservationRow | None = None) -> list[Key]:
        """Keys of the entities a navigation property leads to (not for Observations, which sql.py reads)."""
        reg = self.reg
        self._index()
        if nav == "HistoricalLocations" or set_name == "HistoricalLocations":
            return []  # no moves are kept (see the module's docstring)
        if set_name == "Observations":
            ds = row[0] if row is not None else parse_observation_id(key)[0]
            d = reg.datastreams.get(ds)
            if d is None:
                return []
            return [ds] if nav == "Datastream" else [d.thing_id]
        if set_name == "Things":
            return [key] if nav == "Locations" else list(self._ds_by_thing.get(int(key), []))
        if set_name == "Locations":
            return [key]
        d = reg.datastreams.get(int(key)) if set_name == "Datastreams" else None
        if d is not None:
            if nav == "Thing":
                return [d.thing_id]
            if nav == "Sensor":
                return [reg.things[d.thing_id].kind]
            if nav == "ObservedProperty":
                return [d.quantity]
        if set_name == "Sensors":
            return list(self._ds_by_kind.get(str(key), []))
        if set_name == "ObservedProperties":
            return list(self._ds_by_quantity.get(str(key), []))
        return []

    # -- properties ----------------------------------------------------------------------------
    def props(self, set_name: str, key: Key, row: ObservationRow | None = None) -> dict[str, Any]:
        """An entity's own properties as the standard names them (without links)."""
        reg = self.reg
        if set_name == "Observations":
            if row is None:
                raise QueryError("an Observation's properties come from the store")
            ds, t_us, value = row
            return {"@iot.id": observation_id(ds, t_us), "phenomenonTime": iso(t_us), "resultTime": None, "result": value}
        if set_name in ("Things", "Locations", "FeaturesOfInterest"):
            t = reg.things[int(key)]
            point = {"type": "Point", "coordinates": [t.lon, t.lat]}
            place = {"gu": t.gu, "dong": t.dong}
            if set_name == "Things":
                return {"@iot.id": t.id, "name": t.name, "description": f"{t.kind.replace('_', ' ')} {t.key}" + (" (simulated)" if t.simulated else ""),
                        "properties": {**t.properties, "key": t.key, "kind": t.kind, **place, "simulated": t.simulated}}
            if set_name == "Locations":
                return {"@iot.id": t.id, "name": f"Location of {t.name}", "description": f"Where {t.key} stands (WGS84)",
                        "encodingType": GEOJSON, "location": point, "properties": place}
            return {"@iot.id": t.id, "name": t.name, "description": f"The place observed by {t.key}", "encodingType": GEOJSON,
                    "feature": point, "properties": place}
        if set_name == "Datastreams":
            d = reg.datastreams[int(key)]
            q = reg.quantities[d.quantity]
            t = reg.things[d.thing_id]
            return {"@iot.id": d.id, "name": d.name, "description": f"{q.name_en} ({q.name_ko}) at {t.name}",
                    "unitOfMeasurement": {"name": q.unit.name, "symbol": q.unit.symbol, "definition": q.unit.definition},
                    "observationType": OM_MEASUREMENT, "observedArea": {"type": "Point", "coordinates": [t.lon, t.lat]},
                    "properties": {"key": d.key, "quantity": d.quantity, "interval_s": d.interval_s, "sentinels": list(d.sentinels)}}
        if set_name == "Sensors":
            kind = str(key)
            mine = [t for t in list(reg.things.values()) if t.kind == kind]
            simulated = sum(1 for t in mine if t.simulated)
            text = KIND_TEXT.get(kind, f"Devices of the kind {kind!r} registered with citywall.")
            if simulated:  # the kind's text describes the real instrument: say when its Things here are not
                text += f" Simulated here: {simulated} of the {len(mine)} Things of this kind are citywall's simulator."
            return {"@iot.id": kind, "name": kind, "description": text, "encodingType": "text/plain",
                    "metadata": "One Sensor per Thing kind: citywall does not record each device's make and model.",
                    "properties": {"things": len(mine), "simulated_things": simulated}}
        if set_name == "ObservedProperties":
            q = reg.quantities[str(key)]
            # `definition` names the property, not its unit (PM10 and PM2.5 share ug/m3): citywall's
            # own URN for the quantity code; the unit's QUDT definition is in the Datastreams.
            return {"@iot.id": q.code, "name": q.name_en, "definition": f"{OBSERVED_PROPERTY_URN}{q.code}",
                    "description": f"{q.name_en} ({q.name_ko}), in {q.unit.symbol}; plausible range {q.low:g} to {q.high:g}",
                    "properties": {"name_ko": q.name_ko, "domain": q.domain, "range": [q.low, q.high]}}
        raise QueryError(f"no entity set {set_name!r}")

    # -- $filter and $orderby in Python ---------------------------------------------------------
    def values(self, set_name: str, key: Key, path: Path, row: ObservationRow | None = None) -> list[Any]:
        """The values a property path takes on an entity (several across a to-many navigation:
        a comparison holds when it holds for any of them, as FROST reads OData's paths)."""
        current: list[tuple[str, Key, ObservationRow | None]] = [(set_name, key, row)]
        parts = list(path.parts)
        while parts and parts[0] in NAV.get(current[0][0] if current else set_name, {}):
            nav = parts.pop(0)
            here = current[0][0] if current else set_name
            target, _ = NAV[here][nav]
            if target == "Observations":
                raise QueryError(f"$filter: {path} reads Observations from {set_name}; filter Observations themselves instead")
            current = [(target, k, None) for s, k, r in current for k in self.related(s, k, nav, r)]
        if not parts:
            raise QueryError(f"$filter: {path} names an entity, not a property")
        out = []
        for s, k, r in current:
            if s == "Observations" and r is None:
                raise QueryError(f"$filter: {path} is a property of the Observation itself")
            props = self.props(s, k, r)
            name = parts[0]
            if name == "id":
                name = "@iot.id"
            if name not in props:
                raise QueryError(f"$filter: {s} have no property {name!r}; they have {', '.join(props)}")
            value: Any = props[name]
            for sub in parts[1:]:
                value = value.get(sub) if isinstance(value, dict) else None
            if name == "phenomenonTime" and isinstance(value, str):
                value = datetime.fromisoformat(value.replace("Z", "+00:00"))
            out.append(value)
        return out

    def evaluate(self, node: Any, set_name: str, key: Key, row: ObservationRow | None = None) -> Any:
        """A filter expression on one entity: True/False for a condition, else its value(s)."""
        if isinstance(node, Literal):
            return node.value
        if isinstance(node, Path):
            vals = self.values(set_name, key, node, row)
            return vals[0] if len(vals) == 1 else _Many(vals)
        if isinstance(node, Not):
            return not _truth(self.evaluate(node.operand, set_name, key, row))
        if isinstance(node, Binary):
            if node.op == "and":
                return _truth(self.evaluate(node.left, set_name, key, row)) and _truth(self.evaluate(node.right, set_name, key, row))
            if node.op == "or":
                return _truth(self.evaluate(node.left, set_name, key, row)) or _truth(self.evaluate(node.right, set_name, key, row))
            left = self.evaluate(node.left, set_name, key, row)
            right = self.evaluate(node.right, set_name, key, row)
            return _any2(left, right, lambda a, b: _apply(node.op, a, b))
        if isinstance(node, Call):
            args = [self.evaluate(a, set_name, key, row) for a in node.args]
            return _call(node.name, args)
        raise QueryError(f"$filter: cannot evaluate {node!r}")

    def matches(self, node: Any, set_name: str, key: Key, row: ObservationRow | None = None) -> bool:
        return _truth(self.evaluate(node, set_name, key, row))

    def sort_key(self, set_name: str, key: Key, path: Path) -> Any:
        vals = self.values(set_name, key, path)
        v = vals[0] if vals else None
        # Nulls last; values of different types (a free-form property) grouped by type, never compared.
        return (v is None, type(v).__name__ if not isinstance(v, (int, float)) or isinstance(v, bool) else "", v if v is not None else 0)


class _Many(list):
    """Values from a to-many navigation: a comparison holds when it holds for one of them."""


def _truth(v: Any) -> bool:
    if isinstance(v, _Many):
        return any(_truth(x) for x in v)
    return v is True


def _any2(a: Any, b: Any, fn: Callable[[Any, Any], Any]) -> Any:
    left = a if isinstance(a, _Many) else [a]
    right = b if isinstance(b, _Many) else [b]
    results = [fn(x, y) for x in left for y in right]
    if isinstance(a, _Many) or isinstance(b, _Many):
        return _Many(results)
    return results[0]


def _coerce(a: Any, b: Any) -> tuple[Any, Any]:
    """Make a pair comparable: ids may be compared with their text, times with ISO text."""
    if isinstance(a, datetime) and isinstance(b, str):
        from citywall.sensorthings.query import parse_time

        return a, parse_time(b)
    if isinstance(b, datetime) and isinstance(a, str):
        a2, b2 = _coerce(b, a)
        return b2, a2
    if isinstance(a, bool) or isinstance(b, bool):
        return a, b
    if isinstance(a, (int, float)) and isinstance(b, str) or isinstance(a, str) and isinstance(b, (int, float)):
        return str(a), str(b)
    return a, b


def _apply(op: str, a: Any, b: Any) -> Any:
    if op in ("eq", "ne"):
        a, b = _coerce(a, b)
        return (a == b) if op == "eq" else (a != b)
    if op in ("gt", "ge", "lt", "le"):
        if a is None or b is None:
            return False
        a, b = _coerce(a, b)
        try:
            return {"gt": a > b, "ge": a >= b, "lt": a < b, "le": a <= b}[op]
        except TypeError:
            raise QueryError(f"$filter: cannot compare {a!r} with {b!r}") from None
    if a is None or b is None:
        return None
    if not all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in (a, b)):
        raise QueryError(f"$filter: {op} needs numbers, not {a!r} and {b!r}")
    if op in ("div", "mod") and b == 0:
        return None
    return {"add": a + b, "sub": a - b, "mul": a * b, "div": a / b if b else None, "mod": math.fmod(a, b)}[op]


def _call(name: str, args: list[Any]) -> Any:
    if any(isinstance(a, _Many) for a in args):
        if len(args) == 1:
            return _Many(_call(name, [x]) for x in args[0])
        return _any2(args[0], args[1], lambda x, y: _call(name, [x, y]))
    if any(a is None for a in args):
        return None
    if name in ("year", "month", "day", "hour", "minute", "second"):
        t = args[0]
        if not isinstance(t, datetime):
            raise QueryError(f"$filter: {name}() needs a time")
        return getattr(t.astimezone(timezone.utc), name)
    if name in ("round", "floor", "ceiling"):
        x = args[0]
        if not isinstance(x, (int, float)):
            raise QueryError(f"$filter: {name}() needs a number")
        return {"round": lambda v: math.floor(v + 0.5), "floor": math.floor, "ceiling": math.ceil}[name](x)
    texts = [a if isinstance(a, str) else str(a) for a in args]
    if name == "substringof":
        return texts[0] in texts[1]
    if name == "contains":
        return texts[1] in texts[0]
    if name == "startswith":
        return texts[0].startswith(texts[1])
    if name == "endswith":
        return texts[0].endswith(texts[1])
    if name == "indexof":
        return texts[0].find(texts[1])
    if name == "concat":
        return texts[0] + texts[1]
    return {"tolower": str.lower, "toupper": str.upper, "length": len, "trim": str.strip}[name](texts[0])

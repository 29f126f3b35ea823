"""The plan file (plan.json): what `citywall owlbus plan` writes, `evaluate` reads, and the API serves.

One document format for the CLI, the REST API and the wall, so a plan made on the command line
can be evaluated, exported or shown without conversion. It holds `routes` (lists of 0-based node
ids, as in Mumford's instance files) and `metrics` (ATT, d0, d1, d2, dun, TRT) as the benchmark
interface requires, plus per-route details (stops, minutes, kilometres, riders, buses needed for a
headway) and what the plan was made from (source, simulated or not, settings).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from citywall.analytics.owlbus.geo import route_color, route_length_km, route_name
from citywall.analytics.owlbus.network import Network

DEFAULT_HEADWAY_MIN = 40.0  # Seoul's Owl buses run every 40-45 minutes
METRICS = ("ATT", "d0", "d1", "d2", "dun", "TRT")


class PlanFileError(ValueError):
    """A route-set file that cannot be used; the message names the file and what is wrong."""


def route_records(net: Network, evaluation: Any, headway_min: float = DEFAULT_HEADWAY_MIN) -> list[dict[str, Any]]:
    """Per-route details from an `Evaluation`: its minutes and riders, plus length and buses needed."""
    from citywall.analytics.owlbus.evaluate import buses_needed

    out = []
    for k, r in enumerate(evaluation.routes):
        nodes = [int(i) for i in r["nodes"]]
        length = route_length_km(net, nodes)
        out.append({"route": route_name(k), "color": route_color(k), "nodes": nodes, "stops": [net.label(i) for i in nodes],
                    "time_min": round(float(r["time_min"]), 3), "length_km": None if length is None else round(length, 3),
                    "riders": round(float(r["riders"]), 3), "headway_min": headway_min,
                    "buses": int(buses_needed(float(r["time_min"]), headway_min))})
    return out


def metrics_of(evaluation: Any) -> dict[str, float]:
    return {k: round(float(evaluation.metrics[k]), 6) for k in METRICS}


def plan_document(net: Network, routes: Sequence[Sequence[int]], evaluation: Any, *, headway_min: float = DEFAULT_HEADWAY_MIN,
                  settings: dict[str, Any] | None = None, pareto: Sequence[Any] | None = None) -> dict[str, Any]:
    """The plan.json document. `pareto`: the trade-off curve as (routes, evaluation) pairs, when asked."""
    doc: dict[str, Any] = {
        "source": net.source, "simulated": bool(net.simulated), "demand_unit": net.unit,
        "geographic": bool(net.geographic), "nodes": net.n,
        "names": list(net.names) if net.names is not None else None,
        "routes": [[int(i) for i in r] for r in routes], "metrics": metrics_of(evaluation),
        "route_details": route_records(net, evaluation, headway_min), "headway_min": headway_min,
        "settings": settings or {},
    }
    if pareto is not None:
        doc["pareto"] = [{"routes": [[int(i) for i in r] for r in rs], "metrics": metrics_of(ev)} for rs, ev in pareto]
    return doc


def parse_route_set(data: Any, where: str, n: int | None = None) -> list[list[int]]:
    """Routes from a decoded plan document (or a bare list of routes), checked for shape and node ids."""
    routes = data.get("routes") if isinstance(data, dict) else data
    if routes is None:
        raise PlanFileError(f"{where}: no 'routes' key (expected {{\"routes\": [[0, 1, 2], ...]}})")
    if not isinstance(routes, list) or not routes:
        raise PlanFileError(f"{where}: 'routes' must be a non-empty list of routes (lists of 0-based node ids)")
    out = []
    for k, route in enumerate(routes):  # routes counted from 0, as the evaluator's messages do
        if not isinstance(route, list) or not all(isinstance(i, int) and not isinstance(i, bool) for i in route):
            raise PlanFileError(f"{where}: route {k} must be a list of integer node ids, got {json.dumps(route)[:80]}")
        if n is not None:
            bad = [i for i in route if not 0 <= i < n]
            if bad:
                raise PlanFileError(f"{where}: route {k} has node {bad[0]}, which is not in the network (node ids are 0..{n - 1})")
        out.append(list(route))
    return out


def read_route_set(path: str | Path, n: int | None = None) -> list[list[int]]:
    """The routes of a plan file: JSON with `routes`, or text with one route per line (0-based ids
    separated by '-', ',' or spaces, the form route sets are often published in)."""
    path = Path(path)
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise PlanFileError(f"route set not found: {path}") from None
    except OSError as exc:
        raise PlanFileError(f"{path}: cannot read ({exc.strerror})") from None
    if text.lstrip().startswith(("{", "[")):
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise PlanFileError(f"{path}: not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})") from None
        return parse_route_set(data, str(path), n)
    routes = []
    for lineno, line in enumerate(text.splitlines(), start=1):
        parts = line.replace("-", " ").replace(",", " ").split()
        if not parts:
            continue
        try:
            routes.append([int(p) for p in parts])
        except ValueError:
            raise PlanFileError(f"{path}: line {lineno}: {line.strip()!r} is not a route (node ids separated by '-')") from None
    return parse_route_set(routes, str(path), n)


def write_json(path: str | Path, doc: dict[str, Any]) -> None:
    Path(path).write_text(json.dumps(doc, indent=1, ensure_ascii=False) + "\n")

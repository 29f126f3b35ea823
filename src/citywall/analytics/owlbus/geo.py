"""GeoJSON of an Owl-bus plan: the routes as lines, the stops as points, the demand as hexagons.

The wall's Owl-bus view and any GIS read the same documents, so everything shown on the wall
(colours, riders, buses, the simulated flag) travels in the feature properties rather than being
recomputed in the browser. GeoJSON is WGS84 longitude/latitude by definition (RFC 7946): a network
drawn in a plane (Mandl's benchmark) is refused rather than written with coordinates that would
land somewhere in the Gulf of Guinea.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from citywall.analytics.owlbus.network import Network

# Distinct on the wall's dark map and in print; route k gets PALETTE[k % len]. The GTFS export
# uses the same colours (route_color), so a feed opened elsewhere matches the wall.
PALETTE = ("#f59e0b", "#22d3ee", "#f472b6", "#a3e635", "#818cf8", "#fb7185", "#34d399", "#facc15",
           "#60a5fa", "#e879f9", "#2dd4bf", "#fdba74")
EARTH_RADIUS_KM = 6371.0088


class GeoError(ValueError):
    """A plan that cannot be drawn on a map; the message says why."""


def route_color(k: int) -> str:
    return PALETTE[k % len(PALETTE)]


def route_name(k: int) -> str:
    """Seoul numbers its night buses N13, N26...; a plan's routes are N1, N2, ... in plan order."""
    return f"N{k + 1}"


def require_geographic(net: Network, what: str) -> None:
    if not net.geographic:
        raise GeoError(f"{what} needs a geographic network (lon/lat coordinates); {net.source or 'this network'} has drawing "
                       "coordinates (as Mandl's benchmark does), which are not places on Earth")


def haversine_km(a: Sequence[float], b: Sequence[float]) -> float:
    """Great-circle distance between two lon/lat points in kilometres."""
    lon1, lat1, lon2, lat2 = map(math.radians, (a[0], a[1], b[0], b[1]))
    h = math.sin((lat2 - lat1) / 2) ** 2 + math.cos(lat1) * math.cos(lat2) * math.sin((lon2 - lon1) / 2) ** 2
    return 2 * EARTH_RADIUS_KM * math.asin(min(1.0, math.sqrt(h)))


def route_length_km(net: Network, route: Sequence[int]) -> float | None:
    """The stop-to-stop straight-line length of a route (None off the globe): a lower bound of the
    driven distance, since links carry times, not road geometry."""
    if not net.geographic:
        return None
    c = net.coords
    return sum(haversine_km(c[a], c[b]) for a, b in zip(route, route[1:]))


def names_are_h3(names: Sequence[str] | None) -> bool:
    if not names:
        return False
    import h3

    return all(isinstance(s, str) and h3.is_valid_cell(s) for s in names)


def _lonlat(net: Network, i: int) -> list[float]:
    return [round(float(net.coords[i][0]), 6), round(float(net.coords[i][1]), 6)]


def demand_features(net: Network) -> list[dict[str, Any]]:
    """One feature per node with the trips starting and ending there: the cell's hexagon when the
    nodes are H3 cells (Seoul's method), else a point at the node (dong centroids, a user's stops)."""
    require_geographic(net, "a demand map")
    d = np.asarray(net.demand, dtype=float)
    out_trips, in_trips = d.sum(axis=1), d.sum(axis=0)
    hexes = names_are_h3(net.names)
    if hexes:
        import h3
    features = []
    for i in range(net.n):
        props = {"kind": "demand", "node": i, "name": net.label(i), "trips_from": round(float(out_trips[i]), 3),
                 "trips_to": round(float(in_trips[i]), 3), "trips": round(float(out_trips[i] + in_trips[i]), 3),
                 "unit": net.unit, "simulated": bool(net.simulated)}
        if hexes:
            ring = [[round(lng, 6), round(lat, 6)] for lat, lng in h3.cell_to_boundary(net.names[i])]
            geometry = {"type": "Polygon", "coordinates": [ring + [ring[0]]]}
        else:
            geometry = {"type": "Point", "coordinates": _lonlat(net, i)}
        features.append({"type": "Feature", "id": i, "geometry": geometry, "properties": props})
    return features


def _collection(net: Network, features: list[dict[str, Any]]) -> dict[str, Any]:
    """A FeatureCollection that says where its numbers come from, their unit, and if they are simulated."""
    return {"type": "FeatureCollection", "simulated": bool(net.simulated), "source": net.source, "demand_unit": net.unit,
            "features": features}


def demand_geojson(net: Network) -> dict[str, Any]:
    return _collection(net, demand_features(net))


def plan_geojson(net: Network, routes: Sequence[Sequence[int]], stats: Sequence[dict[str, Any]] | None = None,
                 *, include_demand: bool = True, metrics: dict[str, float] | None = None) -> dict[str, Any]:
    """The plan as one FeatureCollection: demand (hexagons or points), route lines, stops.

    `stats` are the plan's per-route records (`time_min`, `riders`, `buses`, ...; see
    `citywall.analytics.owlbus.planfile.route_records`), copied into each route's properties.
    Features carry `kind` ("demand", "route", "stop") so a map styles them with one filter each.
    """
    require_geographic(net, "GeoJSON")
    n = net.n
    features: list[dict[str, Any]] = demand_features(net) if include_demand else []
    on_routes: dict[int, list[str]] = {}
    for k, route in enumerate(routes):
        for i in route:
            if not 0 <= int(i) < n:
                raise GeoError(f"route {k + 1}: node {i} is not in the network (0..{n - 1})")
            on_routes.setdefault(int(i), []).append(route_name(k))
        props: dict[str, Any] = {"kind": "route", "route": k, "name": route_name(k), "color": route_color(k),
                                 "nodes": [int(i) for i in route], "stops": [net.label(int(i)) for i in route],
                                 "length_km": round(route_length_km(net, route) or 0.0, 3), "riders_unit": net.unit,
                                 "simulated": bool(net.simulated)}
        if stats is not None:
            props.update({key: v for key, v in stats[k].items() if key not in props})
        features.append({"type": "Feature", "id": f"route-{k}", "geometry": {"type": "LineString", "coordinates": [_lonlat(net, int(i)) for i in route]},
                         "properties": props})
    for i in sorted(on_routes):
        features.append({"type": "Feature", "id": f"stop-{i}", "geometry": {"type": "Point", "coordinates": _lonlat(net, i)},
                         "properties": {"kind": "stop", "node": i, "name": net.label(i), "routes": on_routes[i]}})
    doc = _collection(net, features)
    if metrics is not None:
        doc["metrics"] = metrics
    return doc

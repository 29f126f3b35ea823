"""A planned Owl-bus route set as a GTFS feed, so journey planners and GIS can use the plan.

Choices (documented in docs/owlbus.md):
- Timetable as explicit trips (stop_times for every departure), not frequencies.txt: every
  consumer reads explicit trips, and a night service of a few hours is a few dozen trips per route.
  Buses leave both ends at the start of the window at once (as Seoul's Owl buses do), then every
  headway while the departure is before the end of the window.
- The service day is the evening the night begins: a clock time before noon belongs to the morning
  after, so the default window 00:00-05:00 runs from 24:00:00 to 29:00:00 as GTFS allows, and the
  calendar runs every night of the week.
- Stop ids are the 0-based node ids of the plan (as in plan.json); the stop code is the node's
  name (an H3 cell id, a dong name, the user's id). A rider reads stop names, so an H3 cell's stop
  is named after the dong its centre lies in ("마포구 서교동", from the city model) when a city is
  given; neighbouring cells in one dong share the name, and the stop code tells them apart.
  Stop times come from the network's link travel times.
- Shapes are the stop sequence as a polyline: links carry times, not road geometry.
"""

from __future__ import annotations

import csv
import io
import zipfile
from collections.abc import Sequence
from datetime import date, timedelta
from pathlib import Path

import numpy as np

from typing import Any

from citywall.analytics.owlbus.geo import names_are_h3, require_geographic, route_color, route_name
from citywall.analytics.owlbus.network import Network

DEFAULT_WINDOW = "00:00-05:00"
DEFAULT_AGENCY = "citywall Owl bus plan"
DEFAULT_AGENCY_URL = "https://github.com/citywall/citywall"


class GtfsError(ValueError):
    """A plan that cannot be written as a GTFS feed; the message says why."""


def parse_window(window: str) -> tuple[int, int]:
    """'HH:MM-HH:MM' -> (start, end) in seconds after midnight of the service day (the evening).

    A clock time before 12:00 is in the morning after, so it gets 24 h added; the end must come
    after the start. '23:30-04:00' -> (84600, 100800); '00:00-05:00' -> (86400, 104400).
    """
    try:
        a, b = window.split("-")
        secs = []
        for part in (a, b):
            hh, mm = part.strip().split(":")
            h, m = int(hh), int(mm)
            if not (0 <= h <= 24 and 0 <= m < 60) or (h == 24 and m):
                raise ValueError
            s = h * 3600 + m * 60
            secs.append(s + 86400 if s < 12 * 3600 else s)
    except ValueError:
        raise GtfsError(f"window {window!r}: expected HH:MM-HH:MM, e.g. 00:00-05:00") from None
    start, end = secs
    if end <= start:
        raise GtfsError(f"window {window!r}: the end must come after the start (times before noon are the morning after)")
    return start, end


def gtfs_time(seconds: float) -> str:
    s = int(round(seconds))
    return f"{s // 3600:02d}:{s % 3600 // 60:02d}:{s % 60:02d}"


def route_times(net: Network, route: Sequence[int], where: str) -> list[float]:
    """Cumulative minutes from the first stop to each stop along the route's links."""
    times = [0.0]
    for a, b in zip(route, route[1:]):
        if not (0 <= a < net.n and 0 <= b < net.n):
            raise GtfsError(f"{where}: node {a if not 0 <= a < net.n else b} is not in the network (0..{net.n - 1})")
        t = float(net.travel[a, b])
        if not np.isfinite(t) or a == b:
            raise GtfsError(f"{where}: no link from node {a} to node {b}")
        times.append(times[-1] + t)
    return times


def stop_names(net: Network, nodes: Sequence[int], city: Any = None) -> dict[int, str]:
    """A rider-facing name per node: the dong (with its gu) an H3 cell's centre lies in, when the
    city model is given; the node's own name otherwise (a user's stop id, a dong network's "gu dong")."""
    names = {i: net.label(i) for i in nodes}
    if city is None or not names_are_h3(net.names) or not nodes:
        return names
    import shapely

    xy = np.asarray([net.coords[i] for i in nodes], dtype=float)
    codes = list(city.dongs)
    tree = None
    for i, (x, y), (_, dong) in zip(nodes, xy, city.locate_many(xy[:, 0], xy[:, 1])):
        if dong is None:  # a centre in a sliver between the city's outline and its dongs: the nearest dong
            tree = tree or shapely.STRtree([city.dongs[c].geometry for c in codes])
            dong = codes[int(tree.nearest(shapely.Point(x, y)))]
        area = city.dongs[dong]
        names[i] = f"{city.districts[area.parent].name_ko} {area.name_ko}" if area.parent in city.districts else area.name_ko
    return names


def _csv(rows: list[list[object]]) -> bytes:
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerows(rows)
    return buf.getvalue().encode("utf-8")


def gtfs_tables(net: Network, routes: Sequence[Sequence[int]], *, headway_min: float = 40.0, window: str = DEFAULT_WINDOW,
                start_date: date | None = None, days: int = 365, timezone: str = "Asia/Seoul",
                agency_name: str = DEFAULT_AGENCY, agency_url: str = DEFAULT_AGENCY_URL, lang: str = "ko",
                city: Any = None) -> dict[str, bytes]:
    """The feed's files as {name: CSV bytes}. `start_date` defaults to today; the calendar covers `days` nights.
    `city` (the city model) names H3-cell stops after their dongs."""
    require_geographic(net, "a GTFS export")
    if not routes:
        raise GtfsError("the plan has no routes")
    if not headway_min > 0:
        raise GtfsError(f"headway must be positive minutes, got {headway_min:g}")
    start, end = parse_window(window)
    start_date = start_date or date.today()
    if days < 1:
        raise GtfsError(f"the calendar needs at least one night, got days={days}")
    sim = " Planned on SIMULATED demand." if net.simulated else ""
    for k, route in enumerate(routes):
        if len(route) < 2:
            raise GtfsError(f"route {k + 1} has {len(route)} stop(s); a route needs at least 2")
    used = sorted({int(i) for r in routes for i in r})
    for i in used:
        if not 0 <= i < net.n:
            raise GtfsError(f"node {i} is not in the network (0..{net.n - 1})")
    label = stop_names(net, used, city)

    agency = [["agency_id", "agency_name", "agency_url", "agency_timezone", "agency_lang"],
              ["owl", agency_name, agency_url, timezone, lang]]
    stops = [["stop_id", "stop_code", "stop_name", "stop_lat", "stop_lon", "location_type"]]
    for i in used:
        lon, lat = (float(x) for x in net.coords[i])
        if not (-180 <= lon <= 180 and -90 <= lat <= 90):
            raise GtfsError(f"node {i}: ({lon:g}, {lat:g}) is not a longitude/latitude")
        stops.append([str(i), net.label(i), label[i] if label[i] != net.label(i) else f"Stop {net.label(i)}", f"{lat:.6f}", f"{lon:.6f}", 0])
    route_rows = [["route_id", "agency_id", "route_short_name", "route_long_name", "route_desc", "route_type", "route_color", "route_text_color"]]
    trips = [["route_id", "service_id", "trip_id", "trip_headsign", "direction_id", "shape_id"]]
    stop_times = [["trip_id", "arrival_time", "departure_time", "stop_id", "stop_sequence", "timepoint"]]
    shapes = [["shape_id", "shape_pt_lat", "shape_pt_lon", "shape_pt_sequence"]]
    headway_s = headway_min * 60
    for k, route in enumerate(routes):
        route = [int(i) for i in route]
        rid, name = route_name(k), route_name(k)
        ends = f"{label[route[0]]} - {label[route[-1]]}"
        route_rows.append([rid, "owl", name, f"Owl {name} {ends}", f"Night bus, every {headway_min:g} min, {window}.{sim}", 3,
                           route_color(k).lstrip("#").upper(), "000000"])
        for direction, seq in ((0, route), (1, route[::-1])):
            cum = route_times(net, seq, f"route {k + 1}")
            shape_id = f"{rid}-{direction}"
            for s, i in enumerate(seq, start=1):
                shapes.append([shape_id, f"{net.coords[i][1]:.6f}", f"{net.coords[i][0]:.6f}", s])
            t = float(start)
            while t < end:
                hhmmss = gtfs_time(t).replace(":", "")
                trip_id = f"{rid}-{direction}-{hhmmss[:4] if hhmmss.endswith('00') else hhmmss}"
                trips.append([rid, "NIGHTLY", trip_id, label[seq[-1]], direction, shape_id])
                for s, (i, m) in enumerate(zip(seq, cum), start=1):
                    hms = gtfs_time(t + m * 60)
                    stop_times.append([trip_id, hms, hms, str(i), s, 1])
                t += headway_s
    end_date = start_date + timedelta(days=days - 1)
    calendar = [["service_id", "monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday", "start_date", "end_date"],
                ["NIGHTLY", 1, 1, 1, 1, 1, 1, 1, start_date.strftime("%Y%m%d"), end_date.strftime("%Y%m%d")]]
    feed_info = [["feed_publisher_name", "feed_publisher_url", "feed_lang", "feed_version"],
                 [agency_name, agency_url, lang, f"plan of {len(routes)} routes from {net.source or 'a network'}"
                  + (" (SIMULATED demand)" if net.simulated else "")]]
    return {"agency.txt": _csv(agency), "stops.txt": _csv(stops), "routes.txt": _csv(route_rows), "trips.txt": _csv(trips),
            "stop_times.txt": _csv(stop_times), "shapes.txt": _csv(shapes), "calendar.txt": _csv(calendar), "feed_info.txt": _csv(feed_info)}


def gtfs_zip(tables: dict[str, bytes]) -> bytes:
    """The feed's files zipped, as GTFS is distributed (the CLI writes it, the API serves it)."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in tables.items():
            z.writestr(name, data)
    return buf.getvalue()


def write_gtfs(net: Network, routes: Sequence[Sequence[int]], path: str | Path, **options: object) -> dict[str, int]:
    """Write the feed as a zip at `path`; returns how many rows each file has (for the summary)."""
    tables = gtfs_tables(net, routes, **options)  # type: ignore[arg-type]
    Path(path).write_bytes(gtfs_zip(tables))
    return {name: data.count(b"\n") - 1 for name, data in tables.items()}

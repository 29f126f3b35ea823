"""The network the Owl-bus planner works on: candidate stops and travel times between them.

Three sources, all giving a `Network` (network.py):
  * the city model (the default): nodes are the H3 cells with demand (or the dongs), links join
    neighbouring cells (H3 grid ring 1) or touching dongs, and a link's time is the great-circle
    distance between the two centres x a detour factor / a night road speed;
  * a user's network as node and link tables plus a demand table (CSV);
  * a travel-time matrix, a demand matrix and node coordinates (CSV).
Mumford's benchmark text format is read by `network.read_mumford`.

The numbers (docs/owlbus-data.md): DETOUR_FACTOR 1.3 and NIGHT_SPEED_KMH 30 are modelling
choices, not measurements. Roads are not straight: circuity studies put urban road distance at
roughly 1.2-1.4 times the straight line, and 1.3 sits in that range. 30 km/h stands for a bus's
average at night including stops: faster than day-time traffic, slower than the 50 km/h arterial
limit of Seoul's "safe speed 5030" rules that a bus cannot hold between stops. The platform's live
road speeds (TOPIS) cover a few chosen links, not a network, so they are not used here; pass
`speed_kmh` to use a city's measured night-time figure.

A plan needs a connected network. City networks are made connected by adding the shortest
straight links between components (counted in the report: a gap in the demand, the Han river
between cells with no demand); a user's network that is not connected is an error listing the
parts, because inventing links in someone else's network would be wrong.
"""

from __future__ import annotations

import csv
import math
from pathlib import Path
from typing import Any

import h3
import numpy as np
import shapely
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import connected_components
from scipy.spatial import cKDTree

from citywall.analytics.owlbus import hexgrid
from citywall.analytics.owlbus.demand import CellDemand
from citywall.analytics.owlbus.network import Network, NetworkError
from citywall.city import City

DETOUR_FACTOR = 1.3
NIGHT_SPEED_KMH = 30.0
MAX_NODES = 10_000  # Seoul at H3 resolution 9 has ~8,300 cells; resolution 10 (~58,000) would need ~54 GB of matrices


def link_minutes(lon1: Any, lat1: Any, lon2: Any, lat2: Any, *, detour: float = DETOUR_FACTOR,
                 speed_kmh: float = NIGHT_SPEED_KMH) -> np.ndarray:
    """Minutes to drive between points: great-circle km x detour / speed."""
    return hexgrid.haversine_km(lon1, lat1, lon2, lat2) * detour / speed_kmh * 60.0


def _local_km(coords: np.ndarray) -> np.ndarray:
    """lon/lat -> km on a local equirectangular plane (for nearest-neighbour search only)."""
    lat0 = math.radians(float(np.mean(coords[:, 1])))
    k = math.pi / 180 * 6371.0088
    return np.column_stack((coords[:, 0] * k * math.cos(lat0), coords[:, 1] * k))


def components(travel: np.ndarray) -> tuple[int, np.ndarray]:
    """Weakly connected components of the link graph (links either way join two nodes)."""
    adj = csr_matrix(np.isfinite(travel) & ~np.eye(len(travel), dtype=bool))
    n, labels = connected_components(adj, directed=True, connection="weak")
    return int(n), labels


def connect(travel: np.ndarray, coords: np.ndarray, *, detour: float, speed_kmh: float) -> list[tuple[int, int, float]]:
    """Join components with the shortest straight links (Kruskal over nearest neighbours), in place.

    Returns the added links (i, j, minutes); each is added both ways.
    """
    n_comp, labels = components(travel)
    if n_comp <= 1:
        return []
    parent = list(range(n_comp))

    def find(a: int) -> int:
        while parent[a] != a:
            parent[a] = parent[parent[a]]
            a = parent[a]
        return a

    pts = _local_km(coords)
    tree = cKDTree(pts)
    added: list[tuple[int, int, float]] = []
    k = 8
    n = len(coords)
    while True:
        kk = min(k, n)
        dist, idx = tree.query(pts, k=kk)
        cand = sorted((float(dist[i, m]), i, int(idx[i, m])) for i in range(n) for m in range(kk)
                      if labels[i] != labels[int(idx[i, m])])
        for _, i, j in cand:
            a, b = find(labels[i]), find(labels[j])
            if a != b:
                parent[a] = b
                t = float(link_minutes(coords[i, 0], coords[i, 1], coords[j, 0], coords[j, 1], detour=detour, speed_kmh=speed_kmh))
                travel[i, j] = travel[j, i] = t
                added.append((i, j, t))
        if len({find(c) for c in range(n_comp)}) == 1:
            return added
        k *= 4


def build_city_network(city: City, demand: CellDemand, *, nodes: str = "cells", min_trips: float = 0.0,
                       detour: float = DETOUR_FACTOR, speed_kmh: float = NIGHT_SPEED_KMH) -> tuple[Network, dict[str, Any]]:
    """The planning network from the city model and cell demand, with a report of how it was made.

    nodes="cells": one node per H3 cell with demand (at least `min_trips` sent + received), names
    are the cell ids, links join H3 neighbours. nodes="dongs": one node per dong holding a cell
    with demand (by the cell's centre), names "gu dong", links join touching dongs; trips inside
    one dong are left out and counted.
    """
    if detour < 1 or speed_kmh <= 0:
        raise NetworkError(f"detour factor must be >= 1 and speed positive, got {detour} and {speed_kmh}")
    if nodes not in ("cells", "dongs"):
        raise NetworkError(f"nodes must be 'cells' or 'dongs', got {nodes!r}")
    if not demand.cells:
        raise NetworkError(f"no demand to plan for ({demand.source}): every record was dropped, see the demand summary")
    totals = demand.origin_totals() + demand.dest_totals()
    cells = [c for c, t in zip(demand.cells, totals) if t >= min_trips and t > 0]
    if len(cells) > MAX_NODES:  # before the first dense n x n matrix, not after the machine runs out of memory
        raise NetworkError(f"{len(cells):,} cells with demand at H3 resolution {demand.resolution} ({demand.source}): a network "
                           f"holds dense n x n matrices ({2 * 8 * len(cells) ** 2 / 1e9:.1f} GB for travel times and demand), "
                           f"so at most {MAX_NODES:,} nodes; use a coarser resolution, min_trips, or nodes='dongs'")
    matrix = demand.matrix(cells)
    report: dict[str, Any] = {"nodes": nodes, "detour_factor": detour, "speed_kmh": speed_kmh,
                              "min_trips": min_trips, "cells_dropped": len(demand.cells) - len(cells),
                              "trips_dropped_small_cells": float(demand.total - matrix.sum())}
    if nodes == "cells":
        coords = hexgrid.cell_centres(cells)
        names = list(cells)
        pos = {c: i for i, c in enumerate(cells)}
        n = len(cells)
        travel = np.full((n, n), np.inf)
        for i, c in enumerate(cells):
            for nb in h3.grid_ring(c, 1):
                j = pos.get(nb)
                if j is not None:
                    travel[i, j] = float(link_minutes(coords[i, 0], coords[i, 1], coords[j, 0], coords[j, 1],
                                                      detour=detour, speed_kmh=speed_kmh))
        label = f"H3 resolution {demand.resolution} cells"
    else:
        xy = hexgrid.cell_centres(cells)
        dong_of = [d for _, d in city.locate_many(xy[:, 0], xy[:, 1])]
        codes = sorted({d for d in dong_of if d is not None})
        if len(codes) < 2:
            raise NetworkError(f"demand falls in {len(codes)} dong(s); a network needs at least 2")
        dpos = {c: i for i, c in enumerate(codes)}
        idx = np.array([dpos.get(d, -1) for d in dong_of]) if dong_of else np.zeros(0, dtype=int)
        n = len(codes)
        agg = np.zeros((n, n))
        oi, di = np.nonzero(matrix)
        keep = (idx[oi] >= 0) & (idx[di] >= 0)
        np.add.at(agg, (idx[oi][keep], idx[di][keep]), matrix[oi, di][keep])
        report["trips_inside_one_dong"] = float(np.trace(agg))
        # a cell centre on a sliver between the district and dong layers is in no dong
        report["trips_in_no_dong"] = float(matrix[oi, di][~keep].sum())
        np.fill_diagonal(agg, 0.0)
        matrix = agg
        areas = [city.dongs[c] for c in codes]
        coords = np.array([a.centroid for a in areas], dtype=float)
        names = [f"{city.districts[a.parent].name_ko} {a.name_ko}" if a.parent in city.districts else a.name_ko for a in areas]
        geoms = [a.geometry for a in areas]
        left, right = shapely.STRtree(geoms).query(geoms, predicate="intersects")
        travel = np.full((n, n), np.inf)
        for i, j in zip(left.tolist(), right.tolist()):
            if i != j:
                travel[i, j] = float(link_minutes(coords[i, 0], coords[i, 1], coords[j, 0], coords[j, 1],
                                                  detour=detour, speed_kmh=speed_kmh))
        label = "dongs"
    np.fill_diagonal(travel, 0.0)
    n_comp, _ = components(travel)
    bridges = connect(travel, coords, detour=detour, speed_kmh=speed_kmh)
    report.update({"n": n, "links": int(np.isfinite(travel).sum() - n), "components_before": n_comp,
                   "bridging_links": [{"from": names[i], "to": names[j], "minutes": round(t, 2)} for i, j, t in bridges],
                   "trips": float(matrix.sum()), "simulated": demand.simulated})
    source = (f"{demand.source}{' [SIMULATED]' if demand.simulated else ''}; {label}, adjacent links at "
              f"{speed_kmh:g} km/h x {detour:g} detour" + (f"; {len(bridges)} bridging links" if bridges else ""))
    net = Network(travel=travel, demand=matrix, coords=coords, geographic=True, names=names,
                  simulated=demand.simulated, source=source, unit=demand.unit)
    net.validate()
    return net, report


def city_network(city: City, demand: CellDemand, resolution: int | None = None, **options: Any) -> Network:
    """`build_city_network` without the report. `resolution`, if given, must match the demand's grid."""
    if resolution is not None and resolution != demand.resolution:
        raise NetworkError(f"demand is on H3 resolution {demand.resolution}, not {resolution}; aggregate it again at {resolution}")
    return build_city_network(city, demand, **options)[0]


# --- user networks ----------------------------------------------------------------------------

def _rows(path: str | Path) -> tuple[Path, list[str], list[tuple[int, list[str]]]]:
    """Header and (line number, cells) of a small CSV; blank lines skipped."""
    path = Path(path)
    try:
        with path.open(newline="", encoding="utf-8-sig") as fh:
            lines = [(k, [c.strip() for c in row]) for k, row in enumerate(csv.reader(fh), start=1) if any(c.strip() for c in row)]
    except FileNotFoundError:
        raise NetworkError(f"file not found: {path}") from None
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise NetworkError(f"{path}: cannot read: {exc}") from None
    if not lines:
        raise NetworkError(f"{path}: empty file")
    return path, [h.lower() for h in lines[0][1]], lines[1:]


def _col(path: Path, header: list[str], options: tuple[str, ...], what: str) -> int:
    for o in options:
        if o in header:
            return header.index(o)
    raise NetworkError(f"{path}: no {what} column (one of {', '.join(options)}); header is {', '.join(header)}")


def _num(path: Path, line: int, column: str, text: str, *, allow_inf: bool = False) -> float:
    try:
        v = float(text)
    except ValueError:
        raise NetworkError(f"{path}: line {line}, column {column!r}: {text!r} is not a number") from None
    if math.isnan(v) or (math.isinf(v) and not allow_inf):
        raise NetworkError(f"{path}: line {line}, column {column!r}: {text!r} is not a finite number")
    return v


def _read_nodes(path_: str | Path) -> tuple[list[str], np.ndarray, bool, Path]:
    path, header, rows = _rows(path_)
    ci = _col(path, header, ("id", "node", "node_id", "name", "stop_id"), "node id")
    geographic = "lon" in header or "longitude" in header
    if geographic:
        cx = _col(path, header, ("lon", "longitude"), "longitude")
        cy = _col(path, header, ("lat", "latitude"), "latitude")
    else:
        cx = _col(path, header, ("x", "lon", "longitude"), "x or lon")
        cy = _col(path, header, ("y", "lat", "latitude"), "y or lat")
    ids: list[str] = []
    seen: dict[str, int] = {}
    xy = []
    for line, r in rows:
        if len(r) < len(header):
            raise NetworkError(f"{path}: line {line} has {len(r)} values, the header has {len(header)}")
        nid = r[ci]
        if not nid:
            raise NetworkError(f"{path}: line {line}, column {header[ci]!r}: empty node id")
        if nid in seen:
            raise NetworkError(f"{path}: line {line}: node id {nid!r} already given on line {seen[nid]}")
        seen[nid] = line
        x, y = _num(path, line, header[cx], r[cx]), _num(path, line, header[cy], r[cy])
        if geographic and (abs(x) > 180 or abs(y) > 90):
            raise NetworkError(f"{path}: line {line}: ({x}, {y}) is not a lon, lat position")
        ids.append(nid)
        xy.append((x, y))
    if len(ids) < 2:
        raise NetworkError(f"{path}: {len(ids)} node(s); a network needs at least 2")
    return ids, np.array(xy, dtype=float), geographic, path


def _pairs(path_: str | Path, pos: dict[str, int], value_names: tuple[str, ...], what: str, nodes_path: Path) -> tuple[list[tuple[int, int, int, float]], Path]:
    """(line, from index, to index, value) rows of a from/to/value table, and its path."""
    path, header, rows = _rows(path_)
    cf = _col(path, header, ("from", "from_node", "origin", "o", "source", "a"), "from-node")
    ct = _col(path, header, ("to", "to_node", "dest", "destination", "d", "target", "b"), "to-node")
    cv = _col(path, header, value_names, what)
    out = []
    for line, r in rows:
        if len(r) < len(header):
            raise NetworkError(f"{path}: line {line} has {len(r)} values, the header has {len(header)}")
        ends = []
        for c in (cf, ct):
            if r[c] not in pos:
                raise NetworkError(f"{path}: line {line}, column {header[c]!r}: unknown node {r[c]!r} (not in {nodes_path})")
            ends.append(pos[r[c]])
        v = _num(path, line, header[cv], r[cv])
        if v < 0:
            raise NetworkError(f"{path}: line {line}, column {header[cv]!r}: negative {what} {v:g}")
        out.append((line, ends[0], ends[1], v))
    return out, path


def _require_connected(travel: np.ndarray, names: list[str], where: str) -> None:
    n_comp, labels = components(travel)
    if n_comp > 1:
        parts = []
        for c in range(min(n_comp, 5)):
            members = [names[i] for i in np.flatnonzero(labels == c)]
            parts.append(f"[{', '.join(members[:6])}{', ...' if len(members) > 6 else ''}] ({len(members)} nodes)")
        raise NetworkError(f"{where}: the network is not connected: {n_comp} separate parts: {'; '.join(parts)}"
                           f"{' ...' if n_comp > 5 else ''}; add links joining them")


def read_link_tables(nodes_csv: str | Path, links_csv: str | Path, demand_csv: str | Path, *, directed: bool = False) -> Network:
    """A user's network: nodes (id, lon, lat, or id, x, y for drawing coordinates), links (from, to,
    minutes; both ways unless `directed`) and demand (from, to, trips; repeated pairs add up)."""
    ids, coords, geographic, npath = _read_nodes(nodes_csv)
    pos = {nid: i for i, nid in enumerate(ids)}
    n = len(ids)
    travel = np.full((n, n), np.inf)
    np.fill_diagonal(travel, 0.0)
    given: dict[tuple[int, int], int] = {}
    links, lpath = _pairs(links_csv, pos, ("minutes", "time", "travel_time", "min", "travel_min"), "travel time", npath)
    for line, i, j, v in links:
        if i == j:
            raise NetworkError(f"{lpath}: line {line}: a link from node {ids[i]!r} to itself")
        if v == 0:
            raise NetworkError(f"{lpath}: line {line}: travel time 0 from {ids[i]!r} to {ids[j]!r}; a link needs a positive time")
        for a, b in ((i, j),) if directed else ((i, j), (j, i)):
            if (a, b) in given and travel[a, b] != v:
                raise NetworkError(f"{lpath}: line {line}: link {ids[a]!r}-{ids[b]!r} is {v:g} min but line "
                                   f"{given[(a, b)]} gives {travel[a, b]:g} min")
            given.setdefault((a, b), line)
            travel[a, b] = v
    dem = np.zeros((n, n))
    drows, _ = _pairs(demand_csv, pos, ("trips", "demand", "count", "value"), "demand", npath)
    for _, i, j, v in drows:
        if i != j:
            dem[i, j] += v
    _require_connected(travel, ids, str(lpath))
    net = Network(travel=travel, demand=dem, coords=coords, geographic=geographic, names=ids, simulated=False,
                  source=f"{npath.name} + {Path(links_csv).name} + {Path(demand_csv).name}")
    net.validate()
    return net


def _read_square(path_: str | Path, what: str) -> tuple[list[str] | None, np.ndarray, Path]:
    """A square CSV matrix, optionally with a header row of node ids and a first column of ids.
    Travel matrices use Inf (or inf, infinity) for no link."""
    path, _, _ = _rows(path_)
    with path.open(newline="", encoding="utf-8-sig") as fh:
        lines = [(k, [c.strip() for c in row]) for k, row in enumerate(csv.reader(fh), start=1) if any(c.strip() for c in row)]

    def numeric(s: str) -> bool:
        try:
            float(s)
            return True
        except ValueError:
            return False

    # A header row (node ids) is recognised by a first cell that is empty or not a number ("", "id");
    # with it, rows may start with their node id too (then they have as many cells as the header).
    labels: list[str] | None = None
    has_row_labels = False
    first = lines[0][1]
    if not first[0] or not numeric(first[0]):
        lines = lines[1:]
        # n rows under n + 1 header cells: a corner cell, and each row starts with its node id
        has_row_labels = len(lines) == len(first) - 1
        labels = first[1:] if has_row_labels else first
        if any(not lab for lab in labels):
            raise NetworkError(f"{path}: line 1: an empty node id in the header row")
        if len(set(labels)) != len(labels):
            raise NetworkError(f"{path}: line 1: repeated node ids in the header row")
    n = len(lines)
    m = np.empty((n, n))
    for r, (line, cells) in enumerate(lines):
        vals = cells[1:] if has_row_labels else cells
        if has_row_labels and labels is not None and cells[0] != labels[r]:
            raise NetworkError(f"{path}: line {line}: row label {cells[0]!r} but column {r + 1} is {labels[r]!r}; rows and columns must list the nodes in the same order")
        if len(vals) != n:
            raise NetworkError(f"{path}: line {line} has {len(vals)} values; a square matrix of {n} rows needs {n}")
        for c, v in enumerate(vals):
            col = labels[c] if labels else str(c + 1)
            if not v:
                raise NetworkError(f"{path}: line {line}, column {col!r}: empty value (use Inf for no link, 0 for no trips)")
            x = _num(path, line, col, v, allow_inf=True)
            if x < 0:
                raise NetworkError(f"{path}: line {line}, column {col!r}: negative {what} {x:g}")
            m[r, c] = x
    if labels is not None and len(labels) != n:
        raise NetworkError(f"{path}: {len(labels)} column labels for {n} rows")
    if n < 2:
        raise NetworkError(f"{path}: {n} row(s); a network needs at least 2 nodes")
    return labels, m, path


def read_matrix(travel_csv: str | Path, demand_csv: str | Path, coords_csv: str | Path) -> Network:
    """A travel-time matrix (minutes, Inf = no direct link, 0 on the diagonal), a demand matrix of
    the same nodes and a node table (id, lon, lat or id, x, y). Without labels in the matrices the
    node table's order is the matrix order; with labels they are matched by id."""
    tl, travel, tpath = _read_square(travel_csv, "travel time")
    dl, dem, dpath = _read_square(demand_csv, "demand")
    if np.isinf(dem).any():
        i, j = np.argwhere(np.isinf(dem))[0]
        raise NetworkError(f"{dpath}: row {i + 1}, column {j + 1}: infinite demand")
    n = len(travel)
    if dem.shape != travel.shape:
        raise NetworkError(f"{dpath} is {len(dem)}x{len(dem)} but {tpath} is {n}x{n}")
    if tl and dl and tl != dl:
        raise NetworkError(f"{dpath}: node labels differ from {tpath}'s (first difference: "
                           f"{next(a + ' vs ' + b for a, b in zip(tl, dl) if a != b)})")
    ids, coords, geographic, cpath = _read_nodes(coords_csv)
    if len(ids) != n:
        raise NetworkError(f"{cpath}: {len(ids)} nodes but the matrices in {tpath} have {n}")
    labels = tl or dl
    if labels:
        missing = [lab for lab in labels if lab not in ids]
        if missing:
            raise NetworkError(f"{cpath}: node(s) {', '.join(missing[:5])} of {tpath} not in the node table")
        order = [ids.index(lab) for lab in labels]
        coords, ids = coords[order], [ids[k] for k in order]
    diag = np.diag(travel)
    if np.any(diag != 0):
        k = int(np.flatnonzero(diag != 0)[0])
        raise NetworkError(f"{tpath}: diagonal entry for node {ids[k]!r} is {diag[k]:g}; it must be 0")
    off = (travel == 0) & ~np.eye(n, dtype=bool)
    if off.any():
        i, j = np.argwhere(off)[0]
        raise NetworkError(f"{tpath}: travel time 0 from {ids[i]!r} to {ids[j]!r}; a link needs a positive time (Inf for none)")
    np.fill_diagonal(dem, 0.0)
    _require_connected(travel, ids, str(tpath))
    net = Network(travel=travel, demand=dem, coords=coords, geographic=geographic, names=ids, simulated=False,
                  source=f"{tpath.name} + {dpath.name} + {cpath.name}")
    net.validate()
    return net

"""The standard measures of a route set (Mumford 2013 convention), and route-set validation.

Convention, as in the literature so results compare: routes run both ways; waiting time is
ignored; each passenger takes the path with the least in-vehicle time plus `transfer_penalty`
minutes per transfer, ties going to fewer transfers; ATT (minutes, transfer penalties included)
is demand-weighted over all trips; d0/d1/d2 are the shares (%) of demand with 0/1/2 transfers and
dun the rest (more than 2 transfers, or no path at all); TRT is the sum of one-way route times.

Two exact computations live here, because the planner calls one of them millions of times:

* `LevelEvaluator` (small networks, up to a few hundred nodes): G1[i, j] is the best single-route
  in-vehicle time; G_{k+1} = min(G_k, G_k (min,+) G1 + penalty) is the best cost with at most k+1
  legs. The fixed point is the cost; the first k where G_k reaches it is the least number of legs
  among the cheapest paths -- the tie rule, exactly, with no epsilon.
* `transit_costs` (any size): Dijkstra (scipy, compiled) on a transit graph whose vertices are the
  stops plus one (route, stop) state per route stop; boarding costs the penalty plus a tiny
  epsilon so equal-time paths prefer fewer boardings; walking each chosen path back up the
  predecessor tree gives transfers and riders per route.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import connected_components, dijkstra

from citywall.analytics.owlbus.network import Network

TRANSFER_PENALTY_MIN = 5.0
# Tie-break weight per boarding in the Dijkstra graph: far below any real time difference
# (benchmark times are whole minutes), far above float noise. City link times are continuous, so
# there two paths within 1e-6 min a boarding count as tied (fewer transfers win): 0.06 ms, no
# reportable change in ATT; networks up to 100 nodes are measured exactly (LevelEvaluator) anyway.
BOARDING_EPS = 1e-6
_TOL = 1e-9


class RouteSetError(ValueError):
    """A route set that cannot be evaluated or operated; the message lists the problems."""


@dataclass
class Evaluation:
    """Standard measures of one route set on one network.

    `metrics`: ATT (min), d0, d1, d2, dun (% of demand), TRT (min, one way), plus `demand` (trips
    counted) and `unserved` (trips with no path). `routes`: per route its nodes, one-way time and
    estimated riders (demand whose chosen path boards the route).
    """

    metrics: dict[str, float]
    routes: list[dict[str, Any]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {"metrics": dict(self.metrics), "routes": [dict(r) for r in self.routes]}


# -- route geometry --------------------------------------------------------------------------
def route_time(net: Network, route: Sequence[int]) -> float:
    """One-way time along the route, first to last node."""
    t = net.travel
    return float(sum(t[a, b] for a, b in zip(route[:-1], route[1:])))


def check_routes(net: Network, routes: Sequence[Sequence[int]], min_nodes: int = 2, max_nodes: int | None = None) -> list[str]:
    """Every problem that makes the route set infeasible, as readable sentences (empty when fine).

    Feasible: each route is a simple path of min..max existing nodes along existing links; every
    node is on some route; the routes form one connected network (so every trip has a path).
    """
    problems: list[str] = []
    n = net.n
    if not routes:
        return ["the route set is empty"]
    covered = np.zeros(n, dtype=bool)
    for k, r in enumerate(routes):
        label = f"route {k}"
        nodes = list(r)
        if any(not isinstance(v, (int, np.integer)) or isinstance(v, bool) for v in nodes):
            problems.append(f"{label}: node ids must be integers, got {nodes!r}")
            continue
        bad = [v for v in nodes if not 0 <= v < n]
        if bad:
            problems.append(f"{label}: unknown node(s) {bad} (valid ids are 0..{n - 1})")
            continue
        if len(nodes) < min_nodes:
            problems.append(f"{label}: {len(nodes)} nodes, fewer than the minimum {min_nodes}")
        if max_nodes is not None and len(nodes) > max_nodes:
            problems.append(f"{label}: {len(nodes)} nodes, more than the maximum {max_nodes}")
        if len(set(nodes)) != len(nodes):
            dup = sorted({v for v in nodes if nodes.count(v) > 1})
            problems.append(f"{label}: visits node(s) {dup} more than once (a route must be a simple path)")
        for a, b in zip(nodes[:-1], nodes[1:]):
            if not (np.isfinite(net.travel[a, b]) and np.isfinite(net.travel[b, a])) or a == b:
                problems.append(f"{label}: no link between nodes {a} and {b} in both directions")
        covered[nodes] = True
    if problems:
        return problems
    missing = np.flatnonzero(~covered).tolist()
    if missing:
        problems.append(f"node(s) {missing} are on no route")
    adj = np.zeros((n, n), dtype=bool)
    for r in routes:
        adj[r[:-1], r[1:]] = True
    _, labels = connected_components(csr_matrix(adj), directed=False)
    comps = {int(labels[r[0]]) for r in routes if len(r)}
    if len(comps) > 1:
        problems.append(f"the routes form {len(comps)} separate networks; some trips have no path")
    return problems


def is_coverage_gap(problem: str) -> bool:
    """A `check_routes` problem that leaves demand unserved (nodes on no route, separate route
    networks) rather than making the routes meaningless: the set can still be measured (dun)."""
    return problem.startswith("node(s) ") or problem.startswith("the routes form ")


def route_pair_times(net: Network, route: Sequence[int]) -> np.ndarray:
    """(m, m) in-vehicle time between positions a and b of a route, either direction."""
    idx = np.asarray(route)
    fwd = np.concatenate([[0.0], np.cumsum(net.travel[idx[:-1], idx[1:]])])  # fwd[b] - fwd[a], a < b
    bwd = np.concatenate([[0.0], np.cumsum(net.travel[idx[1:], idx[:-1]])])  # bwd[a] - bwd[b], a > b
    pos = np.arange(len(idx))
    upper = fwd[None, :] - fwd[:, None]
    lower = bwd[:, None] - bwd[None, :]
    return np.where(pos[:, None] <= pos[None, :], upper, lower)


# -- exact level evaluation (small networks) --------------------------------------------------
class LevelEvaluator:
    """Fast exact ATT and transfer shares for small networks (the planner's inner loop).

    Caches each route's full (n, n) single-route time matrix by its node tuple, so a move that
    changes one route recomputes one matrix; memory is n*n floats per distinct route seen (the
    cache is bounded).
    """

    def __init__(self, net: Network, transfer_penalty: float = TRANSFER_PENALTY_MIN, cache_size: int = 200_000) -> None:
        self.net = net
        self.n = net.n
        self.penalty = float(transfer_penalty)
        d = np.array(net.demand, dtype=float)
        np.fill_diagonal(d, 0.0)
        self.demand = d
        self.total = float(d.sum())
        self._cache: dict[tuple[int, ...], np.ndarray] = {}
        self._cache_size = cache_size

    def single(self, route: Sequence[int]) -> np.ndarray:
        key = tuple(route)
        m = self._cache.get(key)
        if m is None:
            if len(self._cache) >= self._cache_size:
                self._cache.clear()
            m = np.full((self.n, self.n), np.inf)
            idx = np.asarray(key)
            m[np.ix_(idx, idx)] = route_pair_times(self.net, key)
            self._cache[key] = m
        return m

    def levels(self, routes: Sequence[Sequence[int]]) -> tuple[np.ndarray, list[np.ndarray]]:
        """The cost matrix (fixed point) and G_1, G_2, ... until it is reached."""
        g1 = self.single(routes[0])
        for r in routes[1:]:
            g1 = np.minimum(g1, self.single(r))
        g1 = g1.copy()
        np.fill_diagonal(g1, 0.0)
        gs = [g1]
        g = g1
        for _ in range(self.n):
            h = (g[:, :, None] + g1[None, :, :]).min(axis=1) + self.penalty
            nxt = np.minimum(g, h)
            if np.array_equal(nxt, g):
                break
            gs.append(nxt)
            g = nxt
        return g, gs

    def att(self, routes: Sequence[Sequence[int]]) -> float:
        """Demand-weighted mean cost; inf when some trip has no path."""
        g, _ = self.levels(routes)
        served = self.demand > 0
        if not np.isfinite(g[served]).all():
            return math.inf
        return float((self.demand * np.where(served, g, 0.0)).sum() / self.total) if self.total else 0.0

    def metrics(self, routes: Sequence[Sequence[int]]) -> dict[str, float]:
        g, gs = self.levels(routes)
        d = self.demand
        served = np.isfinite(g) & (d > 0)
        shares = []
        done = np.zeros_like(served)
        for gk in gs[:3]:
            hit = served & ~done & (gk <= g + _TOL)
            shares.append(float(d[hit].sum()))
            done |= hit
        while len(shares) < 3:
            shares.append(0.0)
        return _metrics(self.net, routes, d, served, g, shares)


def _metrics(net: Network, routes: Sequence[Sequence[int]], d: np.ndarray, served: np.ndarray, cost: np.ndarray,
             shares: list[float]) -> dict[str, float]:
    total = float(d.sum())
    pct = (lambda x: 100.0 * x / total) if total else (lambda x: 0.0)
    served_demand = float(d[served].sum())
    att = float((d[served] * cost[served]).sum() / served_demand) if served_demand else math.nan
    return {
        "ATT": att,
        "d0": pct(shares[0]), "d1": pct(shares[1]), "d2": pct(shares[2]),
        "dun": max(0.0, pct(total - sum(shares))),  # clamp float noise: -1e-15 % reads badly
        "TRT": float(sum(route_time(net, r) for r in routes)),
        "demand": total, "unserved": max(0.0, total - served_demand),
    }


# -- transit graph (any size) ---------------------------------------------------------------
@dataclass
class TransitGraph:
    """Stops 0..n-1, then one vertex per (route, stop); `route_of[v]` is -1 for stop vertices."""

    matrix: csr_matrix
    route_of: np.ndarray
    stop_of: np.ndarray
    n: int


def transit_graph(net: Network, routes: Sequence[Sequence[int]], transfer_penalty: float = TRANSFER_PENALTY_MIN,
                  eps: float = BOARDING_EPS) -> TransitGraph:
    """Boarding arcs stop -> (route, stop) cost penalty + eps; alighting arcs cost 0; ride arcs both ways."""
    n = net.n
    sizes = [len(r) for r in routes]
    total = sum(sizes)
    route_of = np.concatenate([np.full(n, -1), np.repeat(np.arange(len(routes)), sizes)]).astype(np.int64)
    stop_of = np.concatenate([np.arange(n), np.concatenate([np.asarray(r) for r in routes])]).astype(np.int64)
    v = np.arange(n, n + total)
    stops = stop_of[n:]
    rows = [stops, v]
    cols = [v, stops]
    w = [np.full(total, transfer_penalty + eps), np.zeros(total)]
    start = n
    for r in routes:
        a = np.arange(start, start + len(r) - 1)
        b = a + 1
        ra, rb = np.asarray(r[:-1]), np.asarray(r[1:])
        rows += [a, b]
        cols += [b, a]
        w += [net.travel[ra, rb], net.travel[rb, ra]]
        start += len(r)
    rows_a, cols_a, w_a = np.concatenate(rows), np.concatenate(cols), np.concatenate(w)
    # csgraph treats explicit zeros as no edge: alighting costs a hair above zero, removed afterwards
    # by exact bookkeeping (only boarding counts and ride times enter the reported costs).
    w_a = np.where(w_a == 0, 1e-12, w_a)
    m = csr_matrix((w_a, (rows_a, cols_a)), shape=(n + total, n + total))
    return TransitGraph(m, route_of, stop_of, n)


def transit_costs(net: Network, routes: Sequence[Sequence[int]], transfer_penalty: float = TRANSFER_PENALTY_MIN,
                  origins: np.ndarray | None = None, predecessors: bool = False):  # noqa: ANN201
    """Dijkstra from each origin stop: (origins, cost (len(origins), n) incl. penalties, graph, dist, pred)."""
    tg = transit_graph(net, routes, transfer_penalty)
    if origins is None:
        origins = np.arange(net.n)
    out = dijkstra(tg.matrix, directed=True, indices=origins, return_predecessors=predecessors)
    dist, pred = (out if predecessors else (out, None))
    cost = dist[:, : net.n] - transfer_penalty  # the first boarding is not a transfer
    cost[np.arange(len(origins)), origins] = 0.0
    return origins, cost, tg, dist, pred


class DijkstraEvaluator:
    """ATT for large networks: Dijkstra only from stops that send demand, distances only."""

    def __init__(self, net: Network, transfer_penalty: float = TRANSFER_PENALTY_MIN) -> None:
        self.net = net
        self.penalty = float(transfer_penalty)
        d = np.array(net.demand, dtype=float)
        np.fill_diagonal(d, 0.0)
        self.origins = np.flatnonzero(d.sum(axis=1) > 0)
        self.demand = d[self.origins]
        self.total = float(d.sum())

    def att(self, routes: Sequence[Sequence[int]]) -> float:
        if not self.total:
            return 0.0
        _, cost, *_ = transit_costs(self.net, routes, self.penalty, self.origins)
        served = self.demand > 0
        c = cost[served]
        if not np.isfinite(c).all():
            return math.inf
        # Each path's cost carries eps per boarding; at most ~1e-5 min on the mean, well below reporting precision.
        return float((self.demand[served] * c).sum() / self.total)


def _walk(tg: TransitGraph, pred: np.ndarray, origins: np.ndarray, demand: np.ndarray, n_routes: int) -> tuple[np.ndarray, np.ndarray]:
    """Boardings per (origin, destination) and riders per route, by walking every path up at once."""
    s_count, n = demand.shape
    rows = np.repeat(np.arange(s_count), n)
    cur = pred[rows, np.tile(np.arange(n), s_count)].astype(np.int64)  # vertex before the destination stop
    flat_d = demand.reshape(-1)
    alive = (cur >= 0) & (flat_d > 0)  # only trips that exist: the walk is the costly part on big networks
    boardings = np.zeros(s_count * n, dtype=np.int64)
    riders = np.zeros(n_routes)
    while alive.any():
        idx = np.flatnonzero(alive)
        v = cur[idx]
        p = pred[rows[idx], v]
        # v is a (route, stop) vertex boarded from a stop vertex: one boarding of route_of[v]
        board = (tg.route_of[v] >= 0) & (p >= 0) & (p < tg.n)
        b_idx = idx[board]
        boardings[b_idx] += 1
        np.add.at(riders, tg.route_of[v[board]], flat_d[b_idx])
        cur[idx] = p
        alive[idx] = p >= 0
    return boardings.reshape(s_count, n), riders


def evaluate(net: Network, routes: Sequence[Sequence[int]], transfer_penalty: float = TRANSFER_PENALTY_MIN) -> Evaluation:
    """All standard measures of a route set, plus per-route time and estimated riders.

    Raises RouteSetError if a route is not a path along existing links (times would be
    meaningless); coverage and connectivity problems are not errors here: the unserved demand
    shows up in `dun` and `unserved`.
    """
    problems = [p for p in check_routes(net, [list(r) for r in routes], min_nodes=1) if not is_coverage_gap(p)]
    if problems:
        raise RouteSetError("; ".join(problems))
    routes = [[int(v) for v in r] for r in routes]
    d = np.array(net.demand, dtype=float)
    np.fill_diagonal(d, 0.0)
    origins, cost, tg, _, pred = transit_costs(net, routes, transfer_penalty, None, predecessors=True)
    boardings, riders = _walk(tg, pred, origins, d, len(routes))
    served = np.isfinite(cost) & (d > 0)
    exact = cost - BOARDING_EPS * boardings
    if net.n <= 100:
        # exact tie rule without epsilon, and exact costs, for small networks
        lv = LevelEvaluator(net, transfer_penalty)
        metrics = lv.metrics(routes)
    else:
        transfers = boardings - 1
        shares = [float(d[served & (transfers == k)].sum()) for k in range(3)]
        metrics = _metrics(net, routes, d, served, exact, shares)
    per_route = [{"nodes": r, "time_min": route_time(net, r), "riders": float(riders[k])} for k, r in enumerate(routes)]
    return Evaluation(metrics=metrics, routes=per_route)


def buses_needed(route_time_min: float, headway_min: float, layover_min: float = 5.0) -> int:
    """Vehicles to run a route both ways at `headway_min`: ceil(round-trip cycle / headway).

    The cycle is there and back plus `layover_min` of recovery at each terminal; as in Seoul's
    Owl buses, departures leave both ends at the same headway, which the same fleet covers since
    each bus serves one departure from each end per cycle.
    """
    if headway_min <= 0:
        raise ValueError(f"headway must be positive, got {headway_min} min")
    if route_time_min < 0 or layover_min < 0:
        raise ValueError(f"route time and layover must be non-negative, got {route_time_min} and {layover_min} min")
    cycle = 2.0 * route_time_min + 2.0 * layover_min
    return max(1, math.ceil(cycle / headway_min - 1e-9))

"""Building blocks of the route search: candidate-route pools, the seed route set, neighbourhood moves.

Kept apart from the search loop so each piece can be tested and reasoned about alone. A route is
a list of node ids forming a simple path along links; every move here returns a new list of
routes that again consists of simple paths within the size limits (or None when the move does
not apply), so the search never has to repair route shape -- only coverage and connectivity,
which the planner penalises.
"""

from __future__ import annotations

import bisect
import itertools
import random
from collections.abc import Sequence

import numpy as np
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import dijkstra

from citywall.analytics.owlbus.network import Network

Routes = list[list[int]]


class Context:
    """Everything about a network the moves need, computed once per planning run."""

    def __init__(self, net: Network, min_nodes: int, max_nodes: int, pool_limit: int = 300_000) -> None:
        self.net = net
        self.n = net.n
        self.min_nodes = min_nodes
        self.max_nodes = max_nodes
        t = net.travel
        both = np.isfinite(t) & np.isfinite(t.T) & ~np.eye(self.n, dtype=bool)  # routes run both ways
        self.adj: list[list[int]] = [np.flatnonzero(both[i]).tolist() for i in range(self.n)]
        self.adjset: list[set[int]] = [set(a) for a in self.adj]
        d = np.array(net.demand, dtype=float)
        np.fill_diagonal(d, 0.0)
        self.demand_sym = d + d.T
        w = np.where(both, (t + t.T) / 2.0, 0.0)
        self.dist, self.pred = dijkstra(csr_matrix(w), directed=False, return_predecessors=True)
        self.hops = dijkstra(csr_matrix(both.astype(float)), directed=False, unweighted=True)
        self.hot_paths = self._hot_spot_paths(pool_limit)
        self.pool, cum = self._pool(pool_limit)
        self.pool_cum = cum

    # -- shortest paths and the candidate pool ------------------------------------------------
    def sp(self, a: int, b: int) -> list[int] | None:
        """Shortest street path a -> b (by mean of both directions' times), or None."""
        if not np.isfinite(self.dist[a, b]):
            return None
        path = [b]
        pr = self.pred[a]
        while path[-1] != a:
            path.append(int(pr[path[-1]]))
        path.reverse()
        return path

    def direct_demand(self, route: Sequence[int]) -> float:
        """Trips (both directions) whose ends are both on the route: what it can carry without a transfer."""
        idx = np.asarray(route)
        return float(self.demand_sym[np.ix_(idx, idx)].sum() / 2.0)

    def _hot_spot_paths(self, limit: int) -> list[list[int]]:
        """Shortest paths between the highest-demand pairs (hot spots), cut to max nodes from either end."""
        paths: list[list[int]] = []
        d = self.demand_sym
        iu = np.triu_indices(self.n, 1)
        order = np.argsort(-d[iu], kind="stable")
        k = min(len(order), max(2_000, min(limit, 20 * self.n)))
        seen: set[tuple[int, ...]] = set()
        for o in order[:k].tolist():
            a, b = int(iu[0][o]), int(iu[1][o])
            p = self.sp(a, b)
            if p is None or len(p) < self.min_nodes:
                continue
            for piece in (p[: self.max_nodes], p[-self.max_nodes:]):
                key = tuple(piece) if piece[0] < piece[-1] else tuple(reversed(piece))
                if key not in seen:
                    seen.add(key)
                    paths.append(list(key))
        return paths

    def _pool(self, limit: int) -> tuple[list[list[int]], list[float]]:
        """Candidate routes for the replace move, each weighted by the demand it serves directly.

        Small networks: every simple path of min..max nodes (the search can then reach any route).
        Larger ones: the hot-spot shortest paths.
        """
        paths: list[list[int]] = []
        if self.n <= 40:
            paths = self._simple_paths(limit)
        if not paths or len(paths) >= limit:
            paths = self.hot_paths
        weights = [self.direct_demand(p) + 1e-9 for p in paths]
        return paths, list(itertools.accumulate(weights))

    def _simple_paths(self, limit: int) -> list[list[int]]:
        out: list[list[int]] = []
        lo, hi = self.min_nodes, self.max_nodes

        def dfs(path: list[int], on: set[int]) -> None:
            if len(out) >= limit:
                return
            if len(path) >= lo and path[0] < path[-1]:
                out.append(list(path))
            if len(path) == hi:
                return
            for w in self.adj[path[-1]]:
                if w not in on:
                    path.append(w)
                    on.add(w)
                    dfs(path, on)
                    on.discard(w)
                    path.pop()

        for s in range(self.n):
            dfs([s], {s})
        return out

    def sample_pool(self, rng: random.Random) -> list[int]:
        """A pool route: demand-weighted half the time, uniform otherwise (keeps diversity)."""
        if rng.random() < 0.5:
            x = rng.random() * self.pool_cum[-1]
            return list(self.pool[bisect.bisect_left(self.pool_cum, x)])
        return list(self.pool[rng.randrange(len(self.pool))])


# -- feasibility -------------------------------------------------------------------------------
def infeasibility(routes: Routes, n: int) -> int:
    """Uncovered nodes plus extra components of the route network: 0 when the set is feasible."""
    covered: set[int] = set()
    for r in routes:
        covered.update(r)
    missing = n - len(covered)
    # routes joined when they share a stop
    parent = list(range(len(routes)))

    def find(x: int) -> int:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    owner: dict[int, int] = {}
    for k, r in enumerate(routes):
        for v in r:
            j = owner.setdefault(v, k)
            if j != k:
                a, b = find(j), find(k)
                if a != b:
                    parent[a] = b
    comps = len({find(k) for k in range(len(routes))})
    return missing + comps - 1


# -- the seed route set -------------------------------------------------------------------------
def seed_routes(ctx: Context, n_routes: int) -> Routes:
    """Demand-weighted shortest paths between hot spots, greedily, then repaired towards feasibility.

    Greedy: each route is the hot-spot shortest path serving the most demand not yet served directly,
    with a bonus for nodes no route reaches yet. Repair: uncovered nodes are appended at a
    route end they touch (if the route has room). The result may still be infeasible on awkward
    networks; the planner's penalty then drives the search to feasibility first.
    """
    n = ctx.n
    served = np.zeros((n, n), dtype=bool)
    covered = np.zeros(n, dtype=bool)
    routes: Routes = []
    scale = float(ctx.demand_sym.sum()) / max(1, n) / 2.0
    candidates = ctx.hot_paths or ctx.pool
    if not candidates:  # every shortest path between stops is shorter than min_nodes, and no other path is known
        raise ValueError(f"no route of {ctx.min_nodes}-{ctx.max_nodes} stops found along the links (the shortest paths "
                         f"between stops have fewer than {ctx.min_nodes}); lower the minimum number of stops a route")
    if len(candidates) > 3_000:  # big networks: the greedy scan is O(paths * routes); keep the heaviest paths
        w = np.array([ctx.direct_demand(p) for p in candidates])
        candidates = [candidates[k] for k in np.argsort(-w, kind="stable")[:3_000].tolist()]
    for k in range(n_routes):
        left = n_routes - k - 1
        if (~covered).sum() > 0.7 * ctx.max_nodes * left and covered.any():
            # too much ground left for hot-spot routes alone: this route sweeps uncovered nodes
            snake = _snake(ctx, covered)
            if snake is not None:
                routes.append(snake)
                idx = np.asarray(snake)
                served[np.ix_(idx, idx)] = True
                covered[idx] = True
                continue
        best, best_score = None, -1.0
        for p in candidates:
            idx = np.asarray(p)
            block = ctx.demand_sym[np.ix_(idx, idx)]
            gain = float(block[~served[np.ix_(idx, idx)]].sum()) / 2.0 + scale * float((~covered[idx]).sum())
            if gain > best_score:
                best, best_score = p, gain
        assert best is not None  # candidates is not empty and every gain is >= 0 > -1
        routes.append(list(best))
        idx = np.asarray(best)
        served[np.ix_(idx, idx)] = True
        covered[idx] = True
    return repair(ctx, routes)


def _snake(ctx: Context, covered: np.ndarray) -> list[int] | None:
    """A route from the covered area into uncovered ground, walking to uncovered neighbours.

    Warnsdorff's rule (go where fewest uncovered neighbours remain) keeps the walk from
    cutting the uncovered region into islands; it starts on a covered node so the route
    network stays connected.
    """
    unc = ~covered
    border = [c for c in np.flatnonzero(covered).tolist() if any(unc[w] for w in ctx.adj[c])]
    if not border:
        return None
    weight = ctx.demand_sym.sum(axis=1)
    start = max(border, key=lambda c: (sum(unc[w] for w in ctx.adj[c]), weight[c]))
    path = [start]
    on = {start}
    for _ in range(2):
        while len(path) < ctx.max_nodes:
            end = path[-1]
            options = [w for w in ctx.adj[end] if unc[w] and w not in on]
            if not options:
                break
            w = min(options, key=lambda x: (sum(1 for y in ctx.adj[x] if unc[y] and y not in on), -weight[x]))
            path.append(w)
            on.add(w)
        path.reverse()  # then extend from the other end
    if len(path) < ctx.min_nodes:
        return None
    return path


def repair(ctx: Context, routes: Routes) -> Routes:
    """Bring uncovered nodes onto routes: first at a route end they are linked to, then by extending
    the route end nearest to them along the shortest path, where the route has room."""
    routes = [list(r) for r in routes]
    covered = set().union(*routes) if routes else set()
    _attach(ctx, routes, covered)
    for v in range(ctx.n):
        if v in covered:
            continue
        options = _ends_in_reach(ctx, routes, v)
        if not options:
            continue
        _, k, at_end = min(options, key=lambda o: o[0])  # the nearest end; the first of equals
        new = _extended(ctx, routes[k], at_end, v)
        if new is None:
            continue
        routes[k] = new
        covered.update(new)
    _attach(ctx, routes, covered)
    return routes


def _ends_in_reach(ctx: Context, routes: Routes, v: int) -> list[tuple[float, int, bool]]:
    """(minutes, route, at its last end?) for every route end within the route's spare stops of v."""
    options = []
    for k, r in enumerate(routes):
        room = ctx.max_nodes - len(r)
        for at_end, end in ((True, r[-1]), (False, r[0])):
            if ctx.hops[end, v] <= room:
                options.append((float(ctx.dist[end, v]), k, at_end))
    return options


def _extended(ctx: Context, r: list[int], at_end: bool, v: int) -> list[int] | None:
    """Route r extended from one end along the quickest path to v; None when that path would
    revisit a stop or exceed max_nodes (the quickest path may have more hops than the fewest)."""
    p = ctx.sp(r[-1] if at_end else r[0], v)
    if p is None or len(r) + len(p) - 1 > ctx.max_nodes or any(w in r for w in p[1:]):
        return None
    return r + p[1:] if at_end else p[1:][::-1] + r


def _with(routes: Routes, k: int, new: list[int]) -> Routes:
    """A copy of the route set with route k replaced (moves never change the set they are given)."""
    out = list(routes)
    out[k] = new
    return out


def _attach(ctx: Context, routes: Routes, covered: set[int]) -> None:
    changed = True
    while changed:
        changed = False
        for v in range(ctx.n):
            if v in covered:
                continue
            for r in routes:
                if len(r) >= ctx.max_nodes:
                    continue
                if r[-1] in ctx.adjset[v]:
                    r.append(v)
                elif r[0] in ctx.adjset[v]:
                    r.insert(0, v)
                else:
                    continue
                covered.add(v)
                changed = True
                break


# -- moves ------------------------------------------------------------------------------------
def grow(ctx: Context, routes: Routes, rng: random.Random) -> Routes | None:
    """Add a neighbouring node at one end of a route."""
    k = rng.randrange(len(routes))
    r = routes[k]
    if len(r) >= ctx.max_nodes:
        return None
    at_end = rng.random() < 0.5
    end = r[-1] if at_end else r[0]
    options = [w for w in ctx.adj[end] if w not in r]
    if not options:
        return None
    w = rng.choice(options)
    return _with(routes, k, r + [w] if at_end else [w] + r)


def shrink(ctx: Context, routes: Routes, rng: random.Random) -> Routes | None:
    """Remove the node at one end of a route."""
    k = rng.randrange(len(routes))
    r = routes[k]
    if len(r) <= ctx.min_nodes:
        return None
    return _with(routes, k, r[:-1] if rng.random() < 0.5 else r[1:])


def shift(ctx: Context, routes: Routes, rng: random.Random) -> Routes | None:
    """Remove one end and grow the other: the route slides along the street network."""
    k = rng.randrange(len(routes))
    r = routes[k]
    if len(r) < 2:
        return None
    if rng.random() < 0.5:
        body, end = r[1:], r[-1]
        options = [w for w in ctx.adj[end] if w not in body]
        if not options:
            return None
        new = body + [rng.choice(options)]
    else:
        body, end = r[:-1], r[0]
        options = [w for w in ctx.adj[end] if w not in body]
        if not options:
            return None
        new = [rng.choice(options)] + body
    if len(new) < ctx.min_nodes:
        return None
    return _with(routes, k, new)


def replace(ctx: Context, routes: Routes, rng: random.Random) -> Routes | None:
    """Replace a whole route by a pool route (demand-weighted shortest path or any simple path)."""
    k = rng.randrange(len(routes))
    p = ctx.sample_pool(rng)
    if rng.random() < 0.5:
        p.reverse()
    return _with(routes, k, p)


def exchange(ctx: Context, routes: Routes, rng: random.Random) -> Routes | None:
    """Two routes crossing at a stop swap their tails (the classic crossover of route segments)."""
    if len(routes) < 2:
        return None
    a, b = rng.sample(range(len(routes)), 2)
    ra, rb = routes[a], routes[b]
    common = [v for v in ra if v in rb]
    if not common:
        return None
    x = rng.choice(common)
    i, j = ra.index(x), rb.index(x)
    if rng.random() < 0.5:
        rb = rb[::-1]
        j = len(rb) - 1 - j
    na = ra[:i] + rb[j:]
    nb = rb[:j] + ra[i:]
    for r in (na, nb):
        if not ctx.min_nodes <= len(r) <= ctx.max_nodes or len(set(r)) != len(r):
            return None
    out = list(routes)
    out[a], out[b] = na, nb
    return out


def detour(ctx: Context, routes: Routes, rng: random.Random) -> Routes | None:
    """Insert, delete or substitute one inner node where the streets allow (a local re-routing)."""
    k = rng.randrange(len(routes))
    r = routes[k]
    m = len(r)
    kind = rng.randrange(3)
    if kind == 0 and m < ctx.max_nodes and m >= 2:  # insert w between r[i] and r[i+1]
        i = rng.randrange(m - 1)
        options = [w for w in ctx.adjset[r[i]] & ctx.adjset[r[i + 1]] if w not in r]
        if not options:
            return None
        new = r[: i + 1] + [rng.choice(sorted(options))] + r[i + 1:]
    elif kind == 1 and m > max(ctx.min_nodes, 2):  # drop inner r[i] if its neighbours are linked
        i = rng.randrange(1, m - 1)
        if r[i + 1] not in ctx.adjset[r[i - 1]]:
            return None
        new = r[:i] + r[i + 1:]
    elif kind == 2 and m >= 3:  # substitute inner r[i]
        i = rng.randrange(1, m - 1)
        options = [w for w in ctx.adjset[r[i - 1]] & ctx.adjset[r[i + 1]] if w not in r]
        if not options:
            return None
        new = r[:i] + [rng.choice(sorted(options))] + r[i + 1:]
    else:
        return None
    return _with(routes, k, new)


def reach(ctx: Context, routes: Routes, rng: random.Random) -> Routes | None:
    """Extend a route end by the shortest path to another node (towards a demand hot spot)."""
    k = rng.randrange(len(routes))
    r = routes[k]
    at_end = rng.random() < 0.5
    end = r[-1] if at_end else r[0]
    room = ctx.max_nodes - len(r)
    if room <= 0:
        return None
    row = ctx.demand_sym[end]
    total = float(row.sum())
    target = int(np.searchsorted(np.cumsum(row), rng.random() * total)) if total > 0 else rng.randrange(ctx.n)
    target = min(target, ctx.n - 1)
    p = ctx.sp(end, target)
    if p is None or len(p) < 2:
        return None
    ext = p[1: 1 + room]
    on = set(r)
    if any(v in on for v in ext):
        return None
    return _with(routes, k, r + ext if at_end else ext[::-1] + r)


def cover(ctx: Context, routes: Routes, rng: random.Random) -> Routes | None:
    """Bring one uncovered node onto the route whose end is nearest and has room (feasibility first).

    Only used while the current set is infeasible; on big networks the generic moves would take
    too long to stumble on the last uncovered cells.
    """
    covered: set[int] = set().union(*routes)
    missing = [v for v in range(ctx.n) if v not in covered]
    if not missing:
        return None
    v = rng.choice(missing)
    options = _ends_in_reach(ctx, routes, v)
    if not options:
        # no end has room: shorten the route nearest to v by its far end, making room next time
        k = min(range(len(routes)), key=lambda q: min(ctx.dist[routes[q][0], v], ctx.dist[routes[q][-1], v]))
        r = routes[k]
        if len(r) <= ctx.min_nodes:
            return None
        return _with(routes, k, r[:-1] if ctx.dist[r[0], v] <= ctx.dist[r[-1], v] else r[1:])
    options.sort()
    _, k, at_end = options[min(len(options) - 1, int(rng.random() ** 2 * len(options)))]
    new = _extended(ctx, routes[k], at_end, v)
    return None if new is None else _with(routes, k, new)


MOVES = (grow, shrink, shift, replace, exchange, detour, reach)
# Chosen by trial on Mandl: cheap local moves dominate, whole-route replacement keeps the search global.
MOVE_WEIGHTS = (3.0, 3.0, 2.0, 1.5, 2.0, 2.0, 1.0)

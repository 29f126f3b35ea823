"""The route planner: simulated annealing over route sets, seeded by hot-spot shortest paths.

Method (see docs/owlbus-method.md): a seed route set is built greedily from demand-weighted
shortest paths between the highest-demand pairs; then simulated annealing applies the
route-modification moves of `moves` (add/remove a terminal node, slide, detour, exchange tails
of two crossing routes, replace a route by a pool route, extend towards a hot spot). The
search runs in chains of fixed length; chain k starts from the best set found so far with its
own random stream derived from (seed, k), and cools geometrically.

Reproducibility: the search never looks at the clock except to stop, so a run is a pure function
of (network, limits, objective, seed, iterations). A time-budgeted run reports how many
iterations it made (`Plan.iterations`); `plan(..., iterations=that)` repeats it exactly.

Objectives: "passenger" minimises ATT with TRT as a tie-break (weight 1e-7 per minute, too
small to trade any reportable ATT); "operator" minimises TRT with ATT as a tie-break (1e-3);
a pair of weights (w_att, w_trt) minimises w_att*ATT + w_trt*TRT.
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import connected_components

from citywall.analytics.owlbus import moves as mv
from citywall.analytics.owlbus.evaluate import (
    TRANSFER_PENALTY_MIN,
    DijkstraEvaluator,
    Evaluation,
    LevelEvaluator,
    check_routes,
    evaluate,
    route_time,
)
from citywall.analytics.owlbus.network import Network

Objective = str | tuple[float, float]
LEVEL_MAX_N = 40  # above this the (min,+) levels cost more than Dijkstra from each origin (measured)
INFEASIBLE = 1e9


@dataclass
class Plan:
    """A designed route set, its evaluation, and how the search got there."""

    routes: list[list[int]]
    evaluation: Evaluation
    history: list[dict[str, Any]] = field(default_factory=list)
    seed: int = 0
    iterations: int = 0
    seconds: float = 0.0
    objective: Objective = "passenger"
    seed_routes: list[list[int]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {"routes": self.routes, "metrics": self.evaluation.metrics, "per_route": self.evaluation.routes,
                "seed": self.seed, "iterations": self.iterations, "seconds": round(self.seconds, 3),
                "objective": self.objective if isinstance(self.objective, str) else list(self.objective)}


def _weights(objective: Objective) -> tuple[float, float]:
    if objective == "passenger":
        return 1.0, 1e-7
    if objective == "operator":
        return 1e-3, 1.0
    if isinstance(objective, (tuple, list)) and len(objective) == 2 and all(isinstance(w, (int, float)) for w in objective):
        w = (float(objective[0]), float(objective[1]))
        if min(w) < 0 or max(w) == 0:
            raise ValueError(f"objective weights must be non-negative and not both zero, got {objective}")
        return w
    raise ValueError(f"objective must be 'passenger', 'operator' or (w_att, w_trt), got {objective!r}")


def _check_args(net: Network, n_routes: int, min_nodes: int, max_nodes: int) -> None:
    if n_routes < 1:
        raise ValueError(f"need at least 1 route, got {n_routes}")
    if min_nodes < 2:
        raise ValueError(f"min_nodes must be at least 2 (a route joins two stops), got {min_nodes}")
    if max_nodes < min_nodes:
        raise ValueError(f"max_nodes ({max_nodes}) is below min_nodes ({min_nodes})")
    if min_nodes > net.n:
        raise ValueError(f"min_nodes ({min_nodes}) is more than the network's {net.n} nodes")
    if n_routes * max_nodes < net.n:
        raise ValueError(f"{n_routes} routes of at most {max_nodes} nodes cannot reach all {net.n} nodes")
    # Routes run both ways, so only links usable both ways join stops; say so now, not after the time budget.
    both = np.isfinite(net.travel) & np.isfinite(net.travel.T)
    parts, labels = connected_components(csr_matrix(both), directed=False)
    if parts > 1:
        sizes = np.bincount(labels)
        lonely = [net.label(i) for i in np.flatnonzero(labels != np.argmax(sizes))[:8]]
        raise ValueError(f"the network{f' ({net.source})' if net.source else ''} falls into {parts} parts along links usable "
                         f"both ways, so no route set can join every stop; outside the largest part: {', '.join(lonely)}"
                         f"{' ...' if (labels != np.argmax(sizes)).sum() > 8 else ''}")


def default_chain_length(n: int) -> int:
    """Iterations per annealing chain: long on small networks (cheap moves), short on big ones."""
    if n <= 30:
        return 20_000
    if n <= 150:
        return 4_000
    if n <= 500:
        return 600
    return 200


class Search:
    """One annealing search; `run` can be stopped by iterations or by a clock."""

    def __init__(self, net: Network, n_routes: int, min_nodes: int, max_nodes: int, objective: Objective = "passenger",
                 seed: int = 0, chain_length: int | None = None, ctx: mv.Context | None = None,
                 initial: Sequence[Sequence[int]] | None = None, transfer_penalty: float = TRANSFER_PENALTY_MIN) -> None:
        _check_args(net, n_routes, min_nodes, max_nodes)
        self.net = net
        self.n_routes = n_routes
        self.w_att, self.w_trt = _weights(objective)
        self.objective = objective
        self.seed = seed
        self.ctx = ctx or mv.Context(net, min_nodes, max_nodes)
        if transfer_penalty < 0:
            raise ValueError(f"transfer penalty must be non-negative, got {transfer_penalty} min")
        self.transfer_penalty = float(transfer_penalty)
        self.evaluator = LevelEvaluator(net, transfer_penalty) if net.n <= LEVEL_MAX_N else DijkstraEvaluator(net, transfer_penalty)
        self.chain_length = chain_length or default_chain_length(net.n)
        self.start = [list(r) for r in initial] if initial is not None else mv.seed_routes(self.ctx, n_routes)
        self.archive: dict[float, tuple[float, list[list[int]]]] = {}  # TRT -> (best ATT, routes): the Pareto archive
        self.evaluations = 0
        self._times: dict[tuple[int, ...], float] = {}

    def score(self, routes: list[list[int]]) -> tuple[float, float, float]:
        """(objective, ATT, TRT); infeasible sets score INFEASIBLE per defect so the search repairs them first."""
        times = self._times
        trt = 0.0
        for r in routes:
            key = tuple(r)
            t = times.get(key)
            if t is None:
                if len(times) > 500_000:
                    times.clear()
                t = times[key] = route_time(self.net, r)
            trt += t
        bad = mv.infeasibility(routes, self.net.n)
        if bad:
            return INFEASIBLE * bad + trt, math.inf, trt
        att = self.evaluator.att(routes)
        self.evaluations += 1
        if not math.isfinite(att):
            return INFEASIBLE + trt, att, trt
        key = round(trt, 6)
        old = self.archive.get(key)
        if old is None or att < old[0]:
            self.archive[key] = (att, [list(r) for r in routes])
        return self.w_att * att + self.w_trt * trt, att, trt

    def run(self, iterations: int | None = None, time_budget_s: float | None = 60.0,
            progress: Callable[[dict[str, Any]], None] | None = None) -> tuple[list[list[int]], list[dict[str, Any]], int, float]:
        """Anneal; return (best routes, history of improvements, iterations made, seconds)."""
        t0 = time.monotonic()
        deadline = None if iterations is not None or time_budget_s is None else t0 + time_budget_s
        limit = iterations if iterations is not None else (None if deadline else 50 * self.chain_length)
        cur = [list(r) for r in self.start]
        f_cur, att_cur, trt_cur = self.score(cur)
        best, f_best, att_best, trt_best = cur, f_cur, att_cur, trt_cur
        history = [{"t": 0.0, "iteration": 0, "ATT": att_best, "TRT": trt_best, "objective": f_best}]
        weights = list(mv.MOVE_WEIGHTS)
        cum = [sum(weights[: i + 1]) for i in range(len(weights))]
        it = 0
        chain = 0
        next_report = t0 + 1.0
        while True:
            rng = random.Random(self.seed * 1_000_003 + chain)
            if chain > 0:
                cur, f_cur, att_cur, trt_cur = [list(r) for r in best], f_best, att_best, trt_best
            base = att_best if math.isfinite(att_best) else 20.0
            t_start = 0.02 * (self.w_att * base + self.w_trt * trt_best) if chain == 0 else 0.01 * (self.w_att * base + self.w_trt * trt_best)
            t_end = 1e-4 * t_start
            alpha = (t_end / t_start) ** (1.0 / self.chain_length)
            temp = t_start
            for _ in range(self.chain_length):
                if limit is not None and it >= limit:
                    return best, history, it, time.monotonic() - t0
                if deadline is not None and (it & 15) == 0:
                    now = time.monotonic()
                    if now >= deadline:
                        return best, history, it, now - t0
                it += 1
                temp *= alpha
                if f_cur >= INFEASIBLE and rng.random() < 0.5:
                    move = mv.cover
                else:
                    move = mv.MOVES[_pick(cum, rng.random() * cum[-1])]
                cand = move(self.ctx, cur, rng)
                if cand is None:
                    continue
                f, att, trt = self.score(cand)
                delta = f - f_cur
                if delta <= 0 or (delta < INFEASIBLE / 2 and rng.random() < math.exp(-delta / temp)):
                    cur, f_cur, att_cur, trt_cur = cand, f, att, trt
                    if f < f_best - 1e-12:
                        best, f_best, att_best, trt_best = [list(r) for r in cand], f, att, trt
                        history.append({"t": round(time.monotonic() - t0, 3), "iteration": it, "ATT": att, "TRT": trt, "objective": f})
                if progress is not None and (it & 63) == 0:
                    now = time.monotonic()
                    if now >= next_report:
                        next_report = now + 1.0
                        progress({"elapsed_s": round(now - t0, 1), "iteration": it, "chain": chain, "best_ATT": att_best,
                                  "best_TRT": trt_best, "feasible": math.isfinite(att_best)})
            chain += 1


def _pick(cum: list[float], x: float) -> int:
    for i, c in enumerate(cum):
        if x < c:
            return i
    return len(cum) - 1


def plan(net: Network, n_routes: int, min_nodes: int, max_nodes: int, *, seed: int = 0, time_budget_s: float | None = 60.0,
         objective: Objective = "passenger", progress: Callable[[dict[str, Any]], None] | None = None,
         iterations: int | None = None, chain_length: int | None = None,
         initial: Sequence[Sequence[int]] | None = None, transfer_penalty: float = TRANSFER_PENALTY_MIN) -> Plan:
    """Design `n_routes` routes of `min_nodes`..`max_nodes` stops reaching every node.

    Stops at `iterations` when given (then fully reproducible, `time_budget_s` is ignored), else
    at `time_budget_s` (`Plan.iterations` then tells how to repeat the run exactly); with neither,
    after 50 chains. `transfer_penalty` (minutes) enters the objective and the evaluation. Raises
    RuntimeError if no feasible route set was found (e.g. the limits make covering the network
    impossible in practice), ValueError on impossible limits or an unknown objective.
    """
    search = Search(net, n_routes, min_nodes, max_nodes, objective, seed, chain_length, initial=initial, transfer_penalty=transfer_penalty)
    routes, history, its, secs = search.run(iterations, time_budget_s, progress)
    problems = check_routes(net, routes, min_nodes, max_nodes)
    if problems:
        raise RuntimeError(f"no feasible route set found in {its} iterations: " + "; ".join(problems))
    return Plan(routes=routes, evaluation=evaluate(net, routes, transfer_penalty), history=history, seed=seed, iterations=its, seconds=secs,
                objective=objective, seed_routes=search.start)


def pareto(net: Network, n_routes: int, min_nodes: int, max_nodes: int, *, seed: int = 0, time_budget_s: float | None = 60.0,
           points: int = 6, iterations: int | None = None,
           progress: Callable[[dict[str, Any]], None] | None = None, transfer_penalty: float = TRANSFER_PENALTY_MIN) -> list[Plan]:
    """The non-dominated (ATT, TRT) trade-off curve, ordered by ATT.

    Runs `points` searches with weights from pure passenger to strongly operator-leaning
    (w_trt scaled by ATT/TRT of the seed set), each with an equal share of the budget, and keeps
    the Pareto archive of every feasible set any of them evaluated.
    """
    if points < 2:
        raise ValueError(f"points must be at least 2, got {points}")
    ctx = mv.Context(net, min_nodes, max_nodes)
    first = Search(net, n_routes, min_nodes, max_nodes, "passenger", seed, ctx=ctx, transfer_penalty=transfer_penalty)
    _, att0, trt0 = first.score(first.start)
    scale = (att0 / trt0) if math.isfinite(att0) and trt0 > 0 else 0.05
    lambdas = [0.0] + [scale * 3.0 ** (k - (points - 2)) * 3.0 for k in range(points - 1)]
    archive: dict[float, tuple[float, list[list[int]]]] = {}
    total_its = 0
    for k, lam in enumerate(lambdas):
        s = first if k == 0 else Search(net, n_routes, min_nodes, max_nodes, (1.0, lam), seed + k, ctx=ctx, transfer_penalty=transfer_penalty)
        budget = None if time_budget_s is None else time_budget_s / len(lambdas)
        its = None if iterations is None else max(1, iterations // len(lambdas))
        _, _, made, _ = s.run(its, budget, progress)
        total_its += made
        for trt, (att, routes) in s.archive.items():
            if trt not in archive or att < archive[trt][0]:
                archive[trt] = (att, routes)
    front: list[tuple[float, float, list[list[int]]]] = []
    for trt in sorted(archive):
        att, routes = archive[trt]
        if not front or att < front[-1][0] - 1e-12:
            front.append((att, trt, routes))
    plans = []
    for att, trt, routes in sorted(front, key=lambda x: x[0]):
        if check_routes(net, routes, min_nodes, max_nodes):
            continue
        plans.append(Plan(routes=routes, evaluation=evaluate(net, routes, transfer_penalty), seed=seed, iterations=total_its,
                          objective=(1.0, 0.0), seed_routes=first.start))
    return plans

"""Owl-bus core: the benchmark reader, the standard evaluation (published values), validation, the planner.

Mandl's instance is read from /work/shared (it is not shipped with the package). Planner tests run
by iteration count, not by time, so they are reproducible and short.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from citywall.analytics.owlbus.evaluate import (
    DijkstraEvaluator,
    LevelEvaluator,
    RouteSetError,
    buses_needed,
    check_routes,
    evaluate,
)
from citywall.analytics.owlbus.moves import Context, cover, infeasibility, repair, seed_routes
from citywall.analytics.owlbus.network import Network, NetworkError, read_mumford
from citywall.analytics.owlbus.planner import plan, pareto
from citywall.analytics.owlbus.synthetic import lattice_network, size_limits

MANDL = Path("/work/shared/benchmarks/trndp/mandl/Mandl")
needs_mandl = pytest.mark.skipif(not (MANDL.parent / "MandlTravelTimes.txt").exists(), reason="Mandl instance not available")


def one_based(text: str) -> list[list[int]]:
    return [[int(x) - 1 for x in r.split("-")] for r in text.split(" / ")]


MANDL_1979 = one_based("1-2-3-6-8-10-11-13 / 5-4-6-8-15-7 / 12-4-6-15-9 / 13-14-10")
MUMFORD_2013_6 = one_based("1-2-3-6-15-7-10-11 / 12-11-13-14-10-7-15-9 / 1-2-5-4-6-8-10-11 / "
                           "1-2-3-6-8-10-13-11 / 1-2-4-12-11-10-14-13 / 1-2-5-4-6-8-15-7")


@pytest.fixture(scope="module")
def mandl() -> Network:
    if not (MANDL.parent / "MandlTravelTimes.txt").exists():
        pytest.skip("Mandl instance not available")
    return read_mumford(MANDL)


def tiny() -> Network:
    """0 -2- 1 -3- 2, 1 -4- 3, 2 -10- 3 (minutes, both ways)."""
    t = np.full((4, 4), np.inf)
    np.fill_diagonal(t, 0)
    for a, b, m in ((0, 1, 2), (1, 2, 3), (1, 3, 4), (2, 3, 10)):
        t[a, b] = t[b, a] = m
    d = np.zeros((4, 4))
    d[0, 2], d[0, 3], d[2, 3], d[1, 3] = 10, 20, 30, 40
    return Network(travel=t, demand=d, coords=np.zeros((4, 2)), source="tiny")


# -- reading ------------------------------------------------------------------------------------
def test_read_mumford_mandl(mandl: Network) -> None:
    assert mandl.n == 15
    assert mandl.demand.sum() == 15570
    assert len(mandl.links()) == 42  # 21 links, both directions
    assert mandl.travel[0, 1] == 8 and math.isinf(mandl.travel[0, 2])
    assert mandl.names[0] == "1" and mandl.coords.shape == (15, 2)
    assert not mandl.simulated


def _write(tmp: Path, travel: str, demand: str, coords: str) -> Path:
    (tmp / "XTravelTimes.txt").write_text(travel)
    (tmp / "XDemand.txt").write_text(demand)
    (tmp / "XCoords.txt").write_text(coords)
    return tmp / "X"


GOOD_T = "0 3 Inf\n\n3 0 2\n\nInf 2 0\n"
GOOD_D = "0 1 2\n1 0 3\n2 3 0\n"
GOOD_C = "3\n0 0\n1 0\n2 0\n"


def test_read_mumford_small_file(tmp_path: Path) -> None:
    net = read_mumford(_write(tmp_path, GOOD_T, GOOD_D, GOOD_C))
    assert net.n == 3 and net.travel[1, 2] == 2 and math.isinf(net.travel[0, 2])


@pytest.mark.parametrize(("travel", "demand", "coords", "message"), [
    (GOOD_T.replace("Inf 2 0", "Inf 2 x"), GOOD_D, GOOD_C, "XTravelTimes.txt: line 5, column 3: 'x' is not a number"),
    ("0 3\n3 0\n1 1\n", GOOD_D, GOOD_C, "must be square"),
    ("0 3 Inf\n3 0\n", GOOD_D, GOOD_C, "line 2 has 2 values"),
    (GOOD_T, "0 1\n1 0\n", GOOD_C, "XDemand.txt: 2x2 matrix"),
    (GOOD_T, GOOD_D, "4\n0 0\n1 0\n2 0\n", "says 4 nodes but the travel-time matrix has 3"),
    (GOOD_T, GOOD_D, "3\n0 0\n1 0\n", "2 coordinate lines for 3 nodes"),
    (GOOD_T.replace("0 3 Inf", "0 -3 Inf"), GOOD_D, GOOD_C, "row 0, column 1 is negative"),
    (GOOD_T, GOOD_D.replace("0 1 2", "0 -1 2"), GOOD_C, "demand (.*): row 0, column 1 is negative"),
    (GOOD_T.replace("0 3 Inf", "5 3 Inf"), GOOD_D, GOOD_C, "diagonal entry 0 is 5"),
])
def test_read_mumford_bad_files(tmp_path: Path, travel: str, demand: str, coords: str, message: str) -> None:
    with pytest.raises(NetworkError, match=message):
        read_mumford(_write(tmp_path, travel, demand, coords))


def test_read_mumford_missing_file(tmp_path: Path) -> None:
    prefix = _write(tmp_path, GOOD_T, GOOD_D, GOOD_C)
    (tmp_path / "XCoords.txt").unlink()
    with pytest.raises(NetworkError, match="instance file not found: .*XCoords.txt"):
        read_mumford(prefix)


def test_validate_names_shapes() -> None:
    net = tiny()
    net.names = ["a", "b"]
    with pytest.raises(NetworkError, match="2 names for 4 nodes"):
        net.validate()
    with pytest.raises(NetworkError, match=r"coords \(tiny\) has shape \(3, 2\)"):
        Network(travel=tiny().travel, demand=tiny().demand, coords=np.zeros((3, 2)), source="tiny").validate()


# -- evaluation: published values ----------------------------------------------------------------
def test_mandl_1979_set_published_values(mandl: Network) -> None:
    m = evaluate(mandl, MANDL_1979).metrics
    assert (round(m["d0"], 2), round(m["d1"], 2), round(m["d2"], 2)) == (69.94, 29.93, 0.13)
    assert round(m["ATT"], 2) == 12.90 and m["TRT"] == 82 and m["dun"] == pytest.approx(0.0)


def test_mumford_2013_six_route_set(mandl: Network) -> None:
    m = evaluate(mandl, MUMFORD_2013_6).metrics
    assert round(m["ATT"], 2) == 10.27 and m["TRT"] == 221
    assert m["d0"] + m["d1"] + m["d2"] + m["dun"] == pytest.approx(100.0)


def test_three_evaluators_agree(mandl: Network) -> None:
    net = lattice_network(60, seed=3)
    r, lo, hi = size_limits(60)
    routes = seed_routes(Context(net, lo, hi), r)
    for n, rs in ((mandl, MANDL_1979), (mandl, MUMFORD_2013_6), (net, routes)):
        full = evaluate(n, rs).metrics["ATT"]
        assert LevelEvaluator(n).att(rs) == pytest.approx(full, abs=1e-6)
        assert DijkstraEvaluator(n).att(rs) == pytest.approx(full, abs=1e-4)


def brute_force(net: Network, routes: list[list[int]], penalty: float = 5.0) -> tuple[float, list[float]]:
    """An independent evaluation: Dijkstra on (stop, route) states with lexicographic (cost, transfers) labels."""
    import heapq

    n = net.n
    on: dict[int, list[tuple[int, int]]] = {}
    for k, r in enumerate(routes):
        for pos, v in enumerate(r):
            on.setdefault(v, []).append((k, pos))
    total = att = 0.0
    shares = [0.0, 0.0, 0.0, 0.0]
    for s in range(n):
        best: dict[tuple[int, int], tuple[float, int]] = {}
        heap = [(0.0, 0, k, pos) for k, pos in on.get(s, [])]
        while heap:
            c, tr, k, pos = heapq.heappop(heap)
            if (k, pos) in best:
                continue
            best[(k, pos)] = (c, tr)
            r = routes[k]
            for q in (pos - 1, pos + 1):
                if 0 <= q < len(r):
                    heapq.heappush(heap, (c + net.travel[r[pos], r[q]], tr, k, q))
            for k2, p2 in on[r[pos]]:
                if k2 != k:
                    heapq.heappush(heap, (c + penalty, tr + 1, k2, p2))
        for t in range(n):
            d = net.demand[s, t]
            if t == s or d == 0:
                continue
            labels = [best[(k, p)] for k, p in on.get(t, []) if (k, p) in best]
            total += d
            if not labels:
                shares[3] += d
                continue
            c, tr = min(labels)
            att += d * c
            shares[min(tr, 3)] += d
    return att / (total - shares[3]), [100 * x / total for x in shares]  # ATT over the trips that have a path


def test_matches_an_independent_brute_force(mandl: Network) -> None:
    rng = np.random.default_rng(11)
    ctx = Context(mandl, 2, 8)
    sets = [MANDL_1979, MUMFORD_2013_6]
    for _ in range(6):
        # random pool routes: mostly infeasible sets, which exercise unserved trips and long transfer chains
        sets.append([list(ctx.pool[int(k)]) for k in rng.choice(len(ctx.pool), size=int(rng.integers(4, 9)))])
    sets.append(plan(mandl, 8, 2, 8, seed=0, iterations=3000).routes)
    assert len(sets) >= 4
    for rs in sets:
        att, shares = brute_force(mandl, rs)
        m = evaluate(mandl, rs).metrics
        assert m["ATT"] == pytest.approx(att, abs=1e-9)
        assert [m["d0"], m["d1"], m["d2"], m["dun"]] == pytest.approx(shares, abs=1e-9)


def test_tiny_network_by_hand() -> None:
    net = tiny()
    ev = evaluate(net, [[0, 1, 2], [3, 1]])
    m = ev.metrics
    # 0->2 direct 5; 0->3 2+5+4 = 11; 2->3 3+5+4 = 12; 1->3 direct 4
    assert m["ATT"] == pytest.approx((10 * 5 + 20 * 11 + 30 * 12 + 40 * 4) / 100)
    assert (m["d0"], m["d1"], m["d2"], m["dun"]) == pytest.approx((50.0, 50.0, 0.0, 0.0))
    assert m["TRT"] == 9
    riders = [r["riders"] for r in ev.routes]
    assert riders == [60.0, 90.0]  # route A carries 0->2, 0->3, 2->3; route B 0->3, 2->3, 1->3
    assert [r["time_min"] for r in ev.routes] == [5.0, 4.0]


def test_ties_go_to_fewer_transfers() -> None:
    net = tiny()
    # with no penalty, 0->3 costs 6 both directly (route [0,1,3]) and via [0,1,2] + [3,1]: must count as direct
    rs = [[0, 1, 2], [3, 1], [0, 1, 3]]
    m = evaluate(net, rs, transfer_penalty=0.0).metrics
    assert m["d0"] == pytest.approx(70.0)  # 0->2, 0->3, 1->3 direct; 2->3 needs a transfer
    assert LevelEvaluator(net, 0.0).metrics(rs)["d0"] == pytest.approx(70.0)


def test_unserved_demand_is_dun() -> None:
    net = tiny()
    m = evaluate(net, [[0, 1, 2]]).metrics
    assert m["unserved"] == 90 and m["dun"] == pytest.approx(90.0) and m["ATT"] == pytest.approx(5.0)


def test_evaluate_rejects_routes_off_the_links() -> None:
    with pytest.raises(RouteSetError, match="no link between nodes 0 and 2"):
        evaluate(tiny(), [[0, 2], [1, 3]])
    with pytest.raises(RouteSetError, match="node ids must be integers"):
        evaluate(tiny(), [[0, 1.5], [1, 3]])


def test_check_routes_problems() -> None:
    net = tiny()
    assert check_routes(net, [[0, 1, 2], [3, 1]], 2, 3) == []
    assert any("unknown node(s) [7]" in p for p in check_routes(net, [[0, 7]], 2, 3))
    assert any("more than once" in p for p in check_routes(net, [[0, 1, 0]], 2, 3))
    assert any("more than the maximum 3" in p for p in check_routes(net, [[0, 1, 2, 3], [1, 3]], 2, 3))
    assert any("fewer than the minimum 2" in p for p in check_routes(net, [[0], [0, 1, 2, 3]], 2, 4))
    assert any("node(s) [3] are on no route" in p for p in check_routes(net, [[0, 1, 2]], 2, 3))
    assert any("separate networks" in p for p in check_routes(net, [[0, 1], [2, 3]], 2, 3))
    assert check_routes(net, [], 2, 3) == ["the route set is empty"]


def test_buses_needed() -> None:
    assert buses_needed(40, 40, layover_min=0) == 2
    assert buses_needed(40, 40, layover_min=5) == 3  # cycle 90 min at a 40-min headway
    assert buses_needed(10, 45) == 1
    with pytest.raises(ValueError, match="headway must be positive"):
        buses_needed(10, 0)


# -- planner -----------------------------------------------------------------------------------------
def test_seed_and_plan_feasible(mandl: Network) -> None:
    p = plan(mandl, 4, 2, 8, seed=1, iterations=4000)
    assert check_routes(mandl, p.routes, 2, 8) == []
    assert len(p.routes) == 4 and all(2 <= len(r) <= 8 for r in p.routes)
    assert sorted(set().union(*p.routes)) == list(range(15))
    assert p.iterations == 4000
    # the hot-spot seed is feasible on Mandl, and the search improves on it
    assert infeasibility(p.seed_routes, 15) == 0
    assert p.evaluation.metrics["ATT"] < evaluate(mandl, p.seed_routes).metrics["ATT"] - 1.0
    assert p.evaluation.metrics["ATT"] < 11.5
    assert p.history[-1]["ATT"] == pytest.approx(p.evaluation.metrics["ATT"], abs=1e-9)


def test_plan_reproducible_with_seed_and_iterations(mandl: Network) -> None:
    a = plan(mandl, 6, 2, 8, seed=7, iterations=3000)
    b = plan(mandl, 6, 2, 8, seed=7, iterations=3000)
    c = plan(mandl, 6, 2, 8, seed=8, iterations=3000)
    assert a.routes == b.routes and a.evaluation.metrics == b.evaluation.metrics
    def steps(p):  # history without the wall-clock times
        return [(h["iteration"], h["ATT"], h["TRT"]) for h in p.history]

    assert steps(a) == steps(b) and len(steps(a)) > 1
    assert steps(c) != steps(a)  # another seed takes another path


def test_covering_moves_keep_the_node_limit_when_the_quickest_path_has_more_hops() -> None:
    """0-1-2 take 1 min a hop, the direct link 0-2 takes 10: one hop away, but the quickest way is two."""
    t = np.full((4, 4), np.inf)
    np.fill_diagonal(t, 0)
    for a, b, m in ((3, 0, 1), (0, 1, 1), (1, 2, 1), (0, 2, 10)):
        t[a, b] = t[b, a] = m
    net = Network(travel=t, demand=np.ones((4, 4)) - np.eye(4), coords=np.zeros((4, 2)), source="hops")
    ctx = Context(net, 2, 3)
    import random

    for seed in range(20):
        out = cover(ctx, [[3, 0]], random.Random(seed))
        assert out is None or all(len(r) <= 3 for r in out), out
    assert all(len(r) <= 3 for r in repair(ctx, [[3, 0]]))


def test_time_budgeted_run_is_repeatable_by_its_iteration_count(mandl: Network) -> None:
    timed = plan(mandl, 7, 2, 8, seed=3, time_budget_s=0.4)
    again = plan(mandl, 7, 2, 8, seed=3, iterations=timed.iterations)
    assert timed.iterations > 0 and again.routes == timed.routes


def test_operator_objective_shorter_routes(mandl: Network) -> None:
    p = plan(mandl, 4, 2, 8, seed=2, iterations=3000)
    o = plan(mandl, 4, 2, 8, seed=2, iterations=3000, objective="operator")
    assert o.evaluation.metrics["TRT"] < p.evaluation.metrics["TRT"]
    assert o.evaluation.metrics["ATT"] > p.evaluation.metrics["ATT"]
    with pytest.raises(ValueError, match="objective must be"):
        plan(mandl, 4, 2, 8, iterations=10, objective="fastest")


def test_progress_callback(mandl: Network) -> None:
    seen: list[dict] = []
    plan(mandl, 4, 2, 8, seed=0, time_budget_s=1.6, progress=seen.append)
    assert seen and {"elapsed_s", "iteration", "best_ATT", "best_TRT"} <= set(seen[0])


def test_pareto_non_dominated(mandl: Network) -> None:
    front = pareto(mandl, 4, 2, 8, seed=0, iterations=6000, points=3)
    pts = [(p.evaluation.metrics["ATT"], p.evaluation.metrics["TRT"]) for p in front]
    assert len(pts) >= 3
    for a in pts:
        assert not any(b != a and b[0] <= a[0] and b[1] <= a[1] for b in pts), (a, pts)
    assert all(check_routes(mandl, p.routes, 2, 8) == [] for p in front)


def test_plan_argument_errors(mandl: Network) -> None:
    with pytest.raises(ValueError, match="cannot reach all 15 nodes"):
        plan(mandl, 1, 2, 8, iterations=10)
    with pytest.raises(ValueError, match="max_nodes"):
        plan(mandl, 4, 5, 3, iterations=10)
    with pytest.raises(ValueError, match="more than the network's 15 nodes"):
        plan(mandl, 2, 16, 16, iterations=10)
    # Routes longer than any shortest path: found among all simple paths on a small network, not an assertion error.
    p = plan(mandl, 2, 14, 14, seed=0, iterations=500)
    assert all(len(r) == 14 for r in p.routes)
    # A star has no simple path of 4 stops at all: said so, not an assertion error from inside the seed.
    t = np.full((5, 5), np.inf)
    np.fill_diagonal(t, 0)
    t[0, 1:] = t[1:, 0] = 2.0
    star = Network(travel=t, demand=np.ones((5, 5)) - np.eye(5), coords=np.zeros((5, 2)), source="star")
    with pytest.raises(ValueError, match="no route of 4-5 stops"):
        plan(star, 2, 4, 5, iterations=10)
    # Two islands: refused at once, naming a stop outside the main part (not after the whole time budget).
    t[0, 4] = t[4, 0] = np.inf
    with pytest.raises(ValueError, match=r"falls into 2 parts .* 4$"):
        plan(star, 2, 2, 4, time_budget_s=60)


def test_planner_on_a_generated_lattice() -> None:
    net = lattice_network(120, seed=5)
    assert net.simulated and "simulated" in net.source
    r, lo, hi = size_limits(120)
    p = plan(net, r, lo, hi, seed=0, iterations=300)
    assert check_routes(net, p.routes, lo, hi) == []

"""Benchmark 8: the Owl-bus route planner against the published results on Mandl's network.

1. The reference route sets (Mandl 1979, Mumford 2013) evaluated against their published values.
2. `plan` on Mandl (2-8 nodes per route) for 4, 6, 7 and 8 routes, `--budget` seconds each and a
   few seeds: ATT and TRT against the best published (Ahmed, Mumford & Kheiri 2019), the ratio
   ATT / best, the time at which the run first came within 1%, and the baseline measured in the
   same run: the hot-spot shortest-path seed set before the search.
3. One Pareto run (6 routes): the (ATT, TRT) curve.
4. Scaling on generated (SIMULATED) lattice networks, n = 15 .. 1,250: setup, time per evaluation,
   time per search iteration, evaluations per second, ATT of the seed set and after the search.

    .venv/bin/python -m bench owlbus [--quick] [--budget S] [--seeds K] [--scale-budget S] [--sizes 15 50 ...]

The Mandl instance is read from /work/shared/benchmarks/trndp/mandl (not shipped with citywall).
"""

from __future__ import annotations

import argparse
import math
import time
from pathlib import Path
from typing import Any

from bench import common

MANDL = Path("/work/shared/benchmarks/trndp/mandl/Mandl")
BEST = {4: (10.48, 148), 6: (10.18, 212), 7: (10.10, 250), 8: (10.08, 272)}  # Ahmed, Mumford & Kheiri 2019
REFERENCE = {
    "Mandl 1979": ("1-2-3-6-8-10-11-13 / 5-4-6-8-15-7 / 12-4-6-15-9 / 13-14-10",
                   {"d0": 69.94, "d1": 29.93, "d2": 0.13, "ATT": 12.90, "TRT": 82}),
    "Mumford 2013 (6 routes)": ("1-2-3-6-15-7-10-11 / 12-11-13-14-10-7-15-9 / 1-2-5-4-6-8-10-11 / 1-2-3-6-8-10-13-11 / "
                                "1-2-4-12-11-10-14-13 / 1-2-5-4-6-8-15-7", {"ATT": 10.27, "TRT": 221}),
}
SIZES = [15, 50, 100, 250, 500, 1000, 1250]


def one_based(text: str) -> list[list[int]]:
    return [[int(x) - 1 for x in r.split("-")] for r in text.split(" / ")]


def reference_sets(net: Any) -> list[dict[str, Any]]:
    from citywall.analytics.owlbus.evaluate import evaluate

    out = []
    for name, (text, published) in REFERENCE.items():
        t0 = time.perf_counter()
        m = evaluate(net, one_based(text)).metrics
        ms = (time.perf_counter() - t0) * 1e3
        ours = {k: round(m[k], 2) for k in published}
        out.append({"set": name, "ours": ours, "published": published, "exact": all(ours[k] == published[k] for k in published),
                    "evaluate_ms": round(ms, 2)})
    return out


def mandl_runs(net: Any, budget: float, seeds: list[int]) -> list[dict[str, Any]]:
    from citywall.analytics.owlbus.evaluate import evaluate
    from citywall.analytics.owlbus.planner import plan

    rows = []
    for r, (best_att, best_trt) in BEST.items():
        target = best_att * 1.01
        for seed in seeds:
            with common.LoadMonitor() as load:
                p = plan(net, r, 2, 8, seed=seed, time_budget_s=budget)
            m = p.evaluation.metrics
            seed_m = evaluate(net, p.seed_routes).metrics
            hit = next((h["t"] for h in p.history if h["ATT"] <= target + 1e-9), None)
            rows.append({"routes": r, "seed": seed, "budget_s": budget, "ATT": round(m["ATT"], 3), "TRT": m["TRT"],
                         "d0": round(m["d0"], 2), "d1": round(m["d1"], 2), "d2": round(m["d2"], 2), "dun": round(m["dun"], 2),
                         "best_ATT": best_att, "best_TRT": best_trt, "ratio_to_best": round(m["ATT"] / best_att, 4),
                         "within_1pct": m["ATT"] <= target + 1e-9, "seconds_to_1pct": hit,
                         "baseline_seed_ATT": round(seed_m["ATT"], 3), "baseline_seed_TRT": seed_m["TRT"],
                         "ratio_to_seed": round(m["ATT"] / seed_m["ATT"], 4), "iterations": p.iterations,
                         "routes_found": p.routes, "load": load.result})
            print(f"   {r} routes, seed {seed}: ATT {m['ATT']:.3f} TRT {m['TRT']:g} (best {best_att}/{best_trt}), "
                  f"within 1% after {hit} s, {p.iterations:,} iterations", flush=True)
    return rows


def pareto_run(net: Any, budget: float) -> list[dict[str, Any]]:
    from citywall.analytics.owlbus.planner import pareto

    front = pareto(net, 6, 2, 8, seed=0, time_budget_s=budget, points=6)
    return [{"ATT": round(p.evaluation.metrics["ATT"], 3), "TRT": p.evaluation.metrics["TRT"], "routes": p.routes} for p in front]


def scaling(sizes: list[int], budget: float) -> list[dict[str, Any]]:
    from citywall.analytics.owlbus.planner import Search
    from citywall.analytics.owlbus.synthetic import lattice_network, size_limits

    rows = []
    for n in sizes:
        net = lattice_network(n, seed=1)
        r, lo, hi = size_limits(n)
        t0 = time.perf_counter()
        s = Search(net, r, lo, hi, "passenger", seed=0)
        setup = time.perf_counter() - t0
        _, att_seed, _ = s.score(s.start)
        reps, t0 = 0, time.perf_counter()
        while reps < 3 or time.perf_counter() - t0 < 2.0:
            s.evaluator.att(s.start)
            reps += 1
        eval_ms = (time.perf_counter() - t0) / reps * 1e3
        s.evaluations = 0
        best, hist, its, secs = s.run(None, budget)
        _, att_best, trt_best = s.score(best)
        row = {"n": n, "links": len(net.links()) // 2, "routes": r,
               "max_nodes": hi, "evaluator": type(s.evaluator).__name__, "setup_s": round(setup, 2), "eval_ms": round(eval_ms, 3),
               "iterations": its, "evaluations": s.evaluations, "ms_per_iteration": round(secs / max(its, 1) * 1e3, 3),
               "evaluations_per_s": round(s.evaluations / secs, 1) if secs else None,
               "ATT_seed": None if not math.isfinite(att_seed) else round(att_seed, 3),
               "ATT_after": None if not math.isfinite(att_best) else round(att_best, 3), "TRT_after": trt_best,
               "feasible": math.isfinite(att_best), "budget_s": budget}
        rows.append(row)
        print(f"   n={n}: eval {eval_ms:.3f} ms, {row['ms_per_iteration']} ms/iteration, ATT {row['ATT_seed']} -> {row['ATT_after']}", flush=True)
    return rows


def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(prog="bench owlbus")
    ap.add_argument("--quick", action="store_true", help="10 s per Mandl run, 1 seed, 5 s per scaling size")
    ap.add_argument("--budget", type=float, default=None, help="seconds per Mandl run (default 60; quick 10)")
    ap.add_argument("--seeds", type=int, default=None, help="seeds per route count (default 3; quick 1)")
    ap.add_argument("--scale-budget", type=float, default=None, help="seconds of search per scaling size (default 30; quick 5)")
    ap.add_argument("--sizes", type=int, nargs="*", default=SIZES)
    args = ap.parse_args(argv)
    budget = args.budget or (10.0 if args.quick else 60.0)
    seeds = list(range(args.seeds or (1 if args.quick else 3)))
    scale_budget = args.scale_budget or (5.0 if args.quick else 30.0)

    from citywall.analytics.owlbus.network import read_mumford

    net = read_mumford(MANDL)
    refs = reference_sets(net)
    print(common.table("8a. reference route sets on Mandl (published values to 2 decimals)", ["set", "ours", "published", "exact"],
                       [[r["set"], ", ".join(f"{k} {v:.2f}" for k, v in r["ours"].items()),
                         ", ".join(f"{k} {v:.2f}" for k, v in r["published"].items()), r["exact"]] for r in refs]))
    runs = mandl_runs(net, budget, seeds)
    summary_rows = []
    for r in BEST:
        mine = [x for x in runs if x["routes"] == r]
        best_run = min(mine, key=lambda x: x["ATT"])
        summary_rows.append([r, f"{best_run['ATT']:.3f} / {best_run['TRT']:g}", f"{max(x['ATT'] for x in mine):.3f}",
                             f"{BEST[r][0]:.2f} / {BEST[r][1]}", f"{best_run['ratio_to_best']:.4f}", f"{sum(x['within_1pct'] for x in mine)}/{len(mine)}",
                             f"{best_run['baseline_seed_ATT']:.3f} / {best_run['baseline_seed_TRT']:g}", f"{best_run['ratio_to_seed']:.4f}",
                             max((x["seconds_to_1pct"] or math.inf) for x in mine)])
    print(common.table(f"8b. plan on Mandl, 2-8 nodes, {budget:g} s per run, seeds {seeds}",
                       ["routes", "best ATT / TRT", "worst ATT", "published best", "ratio ATT/best", "runs within 1%",
                        "baseline: seed set ATT / TRT", "ratio ATT/seed", "slowest s to 1%"], summary_rows))
    front = pareto_run(net, budget)
    step = max(1, len(front) // 12)
    shown = front[::step] + ([front[-1]] if (len(front) - 1) % step else [])
    print(common.table(f"8c. Pareto front, Mandl 6 routes, {budget:g} s ({len(front)} points, every {step}th shown)", ["ATT", "TRT"],
                       [[f"{p['ATT']:.3f}", p["TRT"]] for p in shown]))
    scale = scaling(args.sizes, scale_budget)
    print(common.table(f"8d. scaling on SIMULATED lattice networks (gravity demand), {scale_budget:g} s of search each",
                       ["n", "links", "routes x max nodes", "evaluator", "setup s", "ms/evaluation", "ms/iteration", "evaluations/s",
                        "ATT seed -> after", "feasible"],
                       [[s["n"], s["links"], f"{s['routes']} x {s['max_nodes']}", s["evaluator"], s["setup_s"], f"{s['eval_ms']:.3f}",
                         f"{s['ms_per_iteration']:.3f}", f"{s['evaluations_per_s']:,.0f}", f"{s['ATT_seed']} -> {s['ATT_after']}", s["feasible"]] for s in scale]))
    result = {"config": {"budget_s": budget, "seeds": seeds, "scale_budget_s": scale_budget, "sizes": args.sizes, "quick": args.quick},
              "reference_sets": refs, "mandl": runs, "pareto_6": front, "scaling": scale,
              "targets": {"reference_exact": all(r["exact"] for r in refs),
                          "all_best_runs_within_1pct": all(any(x["within_1pct"] for x in runs if x["routes"] == r) for r in BEST),
                          "all_runs_within_1pct": all(x["within_1pct"] for x in runs)}}
    common.save("owlbus", result)
    return result


if __name__ == "__main__":
    main()

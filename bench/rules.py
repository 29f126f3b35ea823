"""Benchmark 6: the alert rules on the live stream.

Every accepted reading goes through the rule engine (`AlertRunner` feeds `RuleEngine.on_values` in
time order after each commit). This measures that cost on the S-DoT-scale registry with the shipped
rules, against what every commit already does with the same rows: `LiveState.apply` (the newest
value per datastream), in the same process. Rows come in commits of `--batch` over every datastream,
one reading each per round, as the simulator and gateways send them.

    .venv/bin/python -m bench rules [--quick] [--rows N] [--batch N]
"""

from __future__ import annotations

import argparse
import time
from typing import Any

import msgspec
import numpy as np

from bench import common


def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(prog="bench rules")
    ap.add_argument("--quick", action="store_true", help="1,000,000 rows instead of 5,000,000")
    ap.add_argument("--rows", type=int, default=None)
    ap.add_argument("--batch", type=int, default=10_000)
    args = ap.parse_args(argv)
    rows = args.rows or (1_000_000 if args.quick else 5_000_000)

    from citywall.alerts.engine import RuleEngine
    from citywall.alerts.rules import load_rules
    from citywall.city import load_city
    from citywall.live.state import LiveState
    from citywall.observations.model import ThingIn
    from citywall.observations.registry import Registry

    city = load_city("seoul")
    registry = Registry(city)
    things, datastreams = registry.plan(msgspec.convert(common.sdot_things(), list[ThingIn]))
    registry.add(things, datastreams)
    ids = np.array(sorted(registry.datastreams), dtype=np.int64)
    rng = np.random.default_rng(2017)
    t0 = 1_790_000_000_000_000
    # One reading per datastream per 2-minute round, values in each quantity's plausible middle.
    n_rounds = -(-rows // len(ids))
    ds = np.tile(ids, n_rounds)[:rows]
    t = (t0 + np.repeat(np.arange(n_rounds, dtype=np.int64), len(ids)) * 120_000_000)[:rows]
    v = rng.uniform(5, 60, rows)

    def run(step: Any) -> float:
        start = time.perf_counter()
        for s in range(0, rows, args.batch):
            step(ds[s:s + args.batch], t[s:s + args.batch], v[s:s + args.batch])
        return time.perf_counter() - start

    live = LiveState(registry)
    base_s = run(live.apply)
    engine = RuleEngine(load_rules(None), registry, city)
    signals = 0

    def rules(d: np.ndarray, tt: np.ndarray, vv: np.ndarray) -> None:
        nonlocal signals
        order = np.argsort(tt, kind="stable")  # what AlertRunner does with each commit's rows
        signals += len(engine.on_values(d[order], tt[order], vv[order]))

    rules_s = run(rules)
    result = {"rows": rows, "batch": args.batch, "datastreams": len(ids), "rules": len(engine.ruleset.rules),
              "live_apply_rows_s": round(rows / base_s), "rules_rows_s": round(rows / rules_s),
              "rules_us_per_row": round(rules_s / rows * 1e6, 3), "ratio_rules_to_live_apply_time": round(rules_s / base_s, 2),
              "signals": signals}
    print(common.table("6. alert rules on every reading (S-DoT-scale registry, shipped rules)",
                       ["path", "rows/s", "us/row", "rows"],
                       [["LiveState.apply (baseline: what every commit does)", result["live_apply_rows_s"], round(base_s / rows * 1e6, 3), rows],
                        ["RuleEngine.on_values, shipped rules", result["rules_rows_s"], result["rules_us_per_row"], rows]]))
    print(f"   rules take {result['ratio_rules_to_live_apply_time']}x the live update's time; {signals} signals")
    common.save("rules", result)
    return result


if __name__ == "__main__":
    main()

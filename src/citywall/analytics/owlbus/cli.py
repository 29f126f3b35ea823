"""`citywall owlbus plan` and `citywall owlbus evaluate`: the planner and the evaluator on files.

Two ways to give the network: a benchmark instance in Mumford's format (`--instance PREFIX`,
the research interface, e.g. Mandl's network) or city data (`--simulate`: Seoul's simulated
night demand, the offline default; `--od FILE`: the city's own origin-destination records),
aggregated on an H3 grid and joined into a network by the city model.

The summary goes to stdout, progress and errors to stderr (so `> summary.txt` stays clean); exit
status 0 on success, 2 for bad arguments and bad files (instance, route set, OD records), 1 when
the planner finds no feasible route set or refuses the limits. Imports are local so `citywall --help` does not load numpy and scipy.
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any, Callable

DEFAULT_WINDOW = "00:00-05:00"


class CliError(Exception):
    """Bad input the user must fix: printed as `citywall owlbus <cmd>: <message>`, exit status 2."""


def _positive_int(text: str) -> int:
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if v < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {v}")
    return v


def _minutes(*, zero_ok: bool) -> Callable[[str], float]:
    """An argparse type for a finite number of minutes or seconds: positive, or also 0 when `zero_ok`."""
    def parse(text: str) -> float:
        try:
            v = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
        if not (v >= 0 if zero_ok else v > 0) or v == float("inf"):
            raise argparse.ArgumentTypeError(f"must be {'non-negative' if zero_ok else 'positive'}, got {text}")
        return v
    return parse


_positive_float = _minutes(zero_ok=False)
_non_negative_float = _minutes(zero_ok=True)


def _add_network_options(p: argparse.ArgumentParser) -> None:
    src = p.add_mutually_exclusive_group()  # none given: --simulate, the offline default
    src.add_argument("--instance", metavar="PREFIX",
                     help="Mumford benchmark files PREFIXTravelTimes.txt, PREFIXDemand.txt, PREFIXCoords.txt (e.g. .../mandl/Mandl)")
    src.add_argument("--simulate", action="store_true",
                     help="Seoul's simulated late-night demand on an H3 grid (the default when no --instance or --od is given; "
                          "offline; the plan is marked SIMULATED)")
    src.add_argument("--od", metavar="FILE", help="origin-destination records, CSV or Parquet (points or H3 cells, counts, times)")
    src.add_argument("--network", nargs=3, metavar=("NODES.csv", "LINKS.csv", "DEMAND.csv"),
                     help="your own network: nodes (id, lon, lat), links (from, to, minutes; both ways), demand (from, to, trips)")
    src.add_argument("--matrix", nargs=3, metavar=("TRAVEL.csv", "DEMAND.csv", "NODES.csv"),
                     help="your own network as a travel-time matrix (Inf = no link), a demand matrix and nodes (id, lon, lat)")
    p.add_argument("--coords", choices=["drawing", "lonlat"], default="drawing",
                   help="with --instance: what PREFIXCoords.txt holds; lonlat (longitude latitude per node) makes the network "
                        "geographic, so --geojson and --gtfs work (default drawing, as in Mandl's and Mumford's files)")
    p.add_argument("--resolution", type=int, default=7, help="H3 resolution of the demand grid in city mode (default 7)")
    p.add_argument("--window", default=DEFAULT_WINDOW, metavar="HH:MM-HH:MM",
                   help="the night service window: demand is taken from it and the GTFS timetable runs in it (default 00:00-05:00)")
    p.add_argument("--nodes-as", choices=["cells", "dongs"], default="cells",
                   help="city mode: stops are the H3 cells with demand (default) or the dongs holding them")
    p.add_argument("--columns", default=None, metavar="FIELD=COLUMN,...",
                   help="with --od: the file's column for a field (origin_lon, origin_lat, dest_lon, dest_lat, origin_cell, dest_cell, count, time)")
    p.add_argument("--demand-seed", type=int, default=0, help="seed of the simulated demand with --simulate (default 0)")
    p.add_argument("--city", default="seoul", help="built-in city name or a city YAML for city mode (default seoul)")
    p.add_argument("--headway", type=_positive_float, default=40.0, metavar="MINUTES",
                   help="headway for buses needed per route (default 40, as Seoul's Owl buses run every 40-45 min)")
    p.add_argument("--transfer-penalty", type=_non_negative_float, default=5.0, metavar="MINUTES",
                   help="minutes added per transfer, in the planner's objective and in ATT (default 5, the literature's convention)")
    p.add_argument("--geojson", metavar="OUT", help="also write the routes, stops and demand as GeoJSON (geographic networks only)")
    p.add_argument("--gtfs", metavar="OUT.zip", help="also write the plan as a GTFS feed (geographic networks only)")


def add_parser(sub: Any) -> None:
    """The `owlbus` subcommand with `plan` and `evaluate`, added to citywall's subparsers."""
    owl = sub.add_parser("owlbus", help="plan night-bus routes from origin-destination demand, evaluate route sets, export GTFS")
    owl_sub = owl.add_subparsers(dest="owlbus_command", required=True)
    plan = owl_sub.add_parser("plan", help="design a route set (passenger travel time first, then operator time)")
    _add_network_options(plan)
    plan.add_argument("--routes", type=_positive_int, required=True, metavar="R", help="number of routes")
    plan.add_argument("--min-nodes", type=_positive_int, required=True, metavar="A", help="fewest stops on a route")
    plan.add_argument("--max-nodes", type=_positive_int, required=True, metavar="B", help="most stops on a route")
    plan.add_argument("--seed", type=int, default=0,
                      help="planner seed (default 0): the same seed and --iterations give the same plan; a time-budgeted run "
                           "prints how many iterations it made, so it can be repeated exactly")
    plan.add_argument("--time-budget", type=_positive_float, default=60.0, metavar="SECONDS",
                      help="planning time (default 60); how far a run gets in it depends on the machine")
    plan.add_argument("--iterations", type=_positive_int, default=None, metavar="N",
                      help="stop after N search iterations instead of at the time budget: repeatable on any machine")
    plan.add_argument("--pareto", action="store_true", help="also compute the trade-off curve between ATT and TRT (written under 'pareto')")
    plan.add_argument("--out", required=True, metavar="plan.json", help="where the plan is written")
    plan.add_argument("--quiet", action="store_true", help="no progress lines on stderr")
    plan.set_defaults(func=run)
    ev = owl_sub.add_parser("evaluate", help="evaluate a route set: ATT, d0, d1, d2, dun, TRT and per-route details")
    _add_network_options(ev)
    ev.add_argument("--route-set", required=True, metavar="plan.json",
                    help="a plan file (JSON with 'routes') or text with one route per line of 0-based node ids, e.g. 0-1-2-5")
    ev.add_argument("--min-nodes", type=_positive_int, default=None, metavar="A", help="also check every route has at least A stops")
    ev.add_argument("--max-nodes", type=_positive_int, default=None, metavar="B", help="also check no route has more than B stops")
    ev.add_argument("--out", default=None, metavar="OUT.json", help="write the evaluation as a plan file")
    ev.set_defaults(func=run)


def load_network(args: argparse.Namespace, progress: Callable[[str], None] | None = None) -> tuple[Any, Any]:
    """The network the command works on, from whichever source the arguments name, and the city
    model when it was built from city data (the GTFS export names stops after its dongs)."""
    from citywall.analytics.owlbus.network import read_mumford

    if args.instance:
        net = read_mumford(args.instance)
        if args.coords == "lonlat":
            lon, lat = net.coords[:, 0], net.coords[:, 1]
            bad = [i for i in range(net.n) if not (-180 <= lon[i] <= 180 and -90 <= lat[i] <= 90)]
            if bad:
                raise CliError(f"{args.instance}Coords.txt: node {bad[0]} has ({lon[bad[0]]:g}, {lat[bad[0]]:g}), "
                               "which is not a longitude/latitude; drop --coords lonlat for drawing coordinates")
            net.geographic = True
        return net, None
    from citywall.analytics.owlbus import citynet

    if args.network:
        return citynet.read_link_tables(*args.network), None
    if args.matrix:
        return citynet.read_matrix(*args.matrix), None
    from citywall.analytics.owlbus.demand import format_summary, load_demand, parse_column_map
    from citywall.analytics.owlbus.simdemand import simulate_seoul_demand
    from citywall.city import load_city

    city = load_city(args.city)
    if progress:
        progress(f"building the demand grid (H3 resolution {args.resolution}, {args.window})")
    if args.od:
        columns = parse_column_map(args.columns) if args.columns else None
        cells = load_demand(args.od, city, resolution=args.resolution, window=args.window, columns=columns)
    else:
        cells = simulate_seoul_demand(args.demand_seed, city=city, resolution=args.resolution, window=args.window)
    if progress:
        progress(format_summary(cells.summary))
    return citynet.city_network(city, cells, args.resolution, nodes=args.nodes_as), city


def _say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def _progress_printer(quiet: bool) -> Callable[[dict[str, Any]], None] | None:
    """Progress lines on stderr, at most one a second: a long run shows it is alive and improving."""
    if quiet:
        return None
    last = [0.0]
    t0 = time.monotonic()

    def show(p: dict[str, Any]) -> None:
        now = time.monotonic()
        if now - last[0] < 1.0 and not p.get("final"):
            return
        last[0] = now
        parts = [f"{now - t0:6.1f} s"]
        for k, v in p.items():
            if k == "elapsed_s":
                continue
            if isinstance(v, float):
                parts.append(f"{k} {v:.3f}" if abs(v) < 1000 else f"{k} {v:.0f}")
            elif isinstance(v, (int, str)) and not isinstance(v, bool):
                parts.append(f"{k} {v}")
        _say("owlbus plan: " + "  ".join(parts))
    return show


def print_summary(doc: dict[str, Any], out: Any = None) -> None:
    out = out or sys.stdout
    m = doc["metrics"]
    sim = "  [SIMULATED demand]" if doc.get("simulated") else ""
    print(f"{len(doc['routes'])} routes on {doc['nodes']} nodes ({doc['source']}){sim}", file=out)
    print(f"ATT {m['ATT']:.2f} min  d0 {m['d0']:.2f}%  d1 {m['d1']:.2f}%  d2 {m['d2']:.2f}%  dun {m['dun']:.2f}%  TRT {m['TRT']:g} min", file=out)
    print(f"{'route':<6} {'stops':>5} {'min':>7} {'km':>7} {'riders':>9} {'buses':>5}  nodes (0-based)", file=out)
    for r in doc["route_details"]:
        km = "-" if r["length_km"] is None else f"{r['length_km']:.1f}"
        print(f"{r['route']:<6} {len(r['nodes']):>5} {r['time_min']:>7.1f} {km:>7} {r['riders']:>9.0f} {r['buses']:>5}  "
              + "-".join(map(str, r["nodes"])), file=out)
    print(f"buses needed at a {doc['headway_min']:g}-minute headway: {sum(r['buses'] for r in doc['route_details'])}", file=out)
    unit = doc.get("demand_unit", "trips")
    print(f"riders: {unit} whose chosen path uses the route (a trip with a transfer counts on both routes)"
          + (", on SIMULATED demand" if doc.get("simulated") else ""), file=out)
    if doc.get("search"):
        s = doc["search"]
        print(f"search: {s['iterations']:,} iterations in {s['seconds']:.1f} s with seed {s['seed']} "
              f"(repeat exactly with --seed {s['seed']} --iterations {s['iterations']})", file=out)
    if doc.get("pareto"):
        pts = doc["pareto"]
        att = [p["metrics"]["ATT"] for p in pts]
        trt = [p["metrics"]["TRT"] for p in pts]
        print(f"trade-off curve: {len(pts)} non-dominated route sets, ATT {min(att):.2f}-{max(att):.2f} min against TRT "
              f"{max(trt):g}-{min(trt):g} min (under 'pareto' in the plan file)", file=out)


def _exports(args: argparse.Namespace, net: Any, doc: dict[str, Any], city: Any = None) -> None:
    from citywall.analytics.owlbus.geo import plan_geojson
    from citywall.analytics.owlbus.gtfs import write_gtfs
    from citywall.analytics.owlbus.planfile import write_json

    if args.geojson:
        write_json(args.geojson, plan_geojson(net, doc["routes"], doc["route_details"], metrics=doc["metrics"]))
        _say(f"GeoJSON written to {args.geojson}")
    if args.gtfs:
        place = {"city": city, "timezone": city.timezone} if city is not None else {}
        rows = write_gtfs(net, doc["routes"], args.gtfs, headway_min=args.headway, window=args.window, **place)
        _say(f"GTFS feed written to {args.gtfs} ({rows['trips.txt']} trips, {rows['stops.txt']} stops)")


def _check_exports(args: argparse.Namespace, net: Any) -> None:
    """Refuse a map export of a drawing before spending the time budget, not after."""
    from citywall.analytics.owlbus.geo import require_geographic

    if args.geojson:
        require_geographic(net, "--geojson")
    if args.gtfs:
        require_geographic(net, "--gtfs")
        from citywall.analytics.owlbus.gtfs import parse_window

        parse_window(args.window)


def _plan(args: argparse.Namespace) -> int:
    from citywall.analytics.owlbus import planner
    from citywall.analytics.owlbus.planfile import plan_document, write_json

    if args.min_nodes > args.max_nodes:
        raise CliError(f"--min-nodes {args.min_nodes} is more than --max-nodes {args.max_nodes}")
    net, city = load_network(args, None if args.quiet else _say)
    _check_exports(args, net)
    settings = {"routes": args.routes, "min_nodes": args.min_nodes, "max_nodes": args.max_nodes, "seed": args.seed,
                "time_budget_s": None if args.iterations else args.time_budget, "iterations": args.iterations,
                "transfer_penalty": args.transfer_penalty}
    if not (args.instance or args.network or args.matrix):
        settings.update({"resolution": args.resolution, "window": args.window, "nodes_as": args.nodes_as})
    if not args.quiet:
        _say(f"owlbus plan: {args.routes} routes of {args.min_nodes}-{args.max_nodes} nodes on {net.n} nodes ({net.source}), "
             f"seed {args.seed}, " + (f"{args.iterations:,} iterations" if args.iterations else f"budget {args.time_budget:g} s")
             + f", transfer penalty {args.transfer_penalty:g} min{'  [SIMULATED demand]' if net.simulated else ''}")
    progress = _progress_printer(args.quiet)
    limits = {"seed": args.seed, "time_budget_s": args.time_budget, "iterations": args.iterations,
              "transfer_penalty": args.transfer_penalty, "progress": progress}
    best = planner.plan(net, args.routes, args.min_nodes, args.max_nodes, **limits)
    curve = None
    if args.pareto:
        if not args.quiet:
            _say("owlbus plan: computing the ATT/TRT trade-off curve")
        front = planner.pareto(net, args.routes, args.min_nodes, args.max_nodes, **limits)
        curve = [(p.routes, p.evaluation) for p in front]
    doc = plan_document(net, best.routes, best.evaluation, headway_min=args.headway, settings=settings, pareto=curve)
    doc["search"] = {"seed": best.seed, "iterations": best.iterations, "seconds": round(best.seconds, 3)}
    write_json(args.out, doc)
    print_summary(doc)
    _say(f"plan written to {args.out}")
    _exports(args, net, doc, city)
    return 0


def _evaluate(args: argparse.Namespace) -> int:
    from citywall.analytics.owlbus.evaluate import check_routes, evaluate, is_coverage_gap
    from citywall.analytics.owlbus.planfile import plan_document, read_route_set, write_json

    net, city = load_network(args)
    _check_exports(args, net)
    routes = read_route_set(args.route_set, net.n)
    problems = check_routes(net, routes, args.min_nodes or 2, args.max_nodes or net.n)
    # A route set that leaves nodes out or falls apart is still measured (its unserved demand is
    # what dun shows); one that names unknown nodes or hops between unlinked ones is not a route set.
    gaps = [p for p in problems if is_coverage_gap(p)]
    if len(gaps) < len(problems):
        raise CliError(f"{args.route_set} is not a valid route set for {net.source} (routes counted from 0):\n  "
                       + "\n  ".join(p for p in problems if p not in gaps))
    for p in gaps:
        _say(f"citywall owlbus evaluate: warning: {p}")
    ev = evaluate(net, routes, transfer_penalty=args.transfer_penalty)
    doc = plan_document(net, routes, ev, headway_min=args.headway, settings={"transfer_penalty": args.transfer_penalty,
                                                                             "route_set": str(args.route_set)})
    print_summary(doc)
    if args.out:
        write_json(args.out, doc)
        _say(f"evaluation written to {args.out}")
    _exports(args, net, doc, city)
    return 0


def run(args: argparse.Namespace) -> int:
    from citywall.analytics.owlbus.geo import GeoError
    from citywall.analytics.owlbus.gtfs import GtfsError
    from citywall.analytics.owlbus.network import NetworkError
    from citywall.analytics.owlbus.demand import ODInputError
    from citywall.analytics.owlbus.hexgrid import GridError
    from citywall.analytics.owlbus.planfile import PlanFileError

    name = f"citywall owlbus {args.owlbus_command}"
    try:
        return _plan(args) if args.owlbus_command == "plan" else _evaluate(args)
    except (CliError, NetworkError, PlanFileError, GeoError, GtfsError, ODInputError, GridError) as exc:
        print(f"{name}: {exc}", file=sys.stderr)
        return 2
    except (ValueError, RuntimeError) as exc:  # the planner, evaluator or demand builders refusing their input (RuntimeError: no feasible set found)
        print(f"{name}: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:
        print(f"{name}: {exc.filename or ''}: {exc.strerror or exc}", file=sys.stderr)
        return 2

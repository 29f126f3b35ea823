"""The Owl-bus REST API (`/api/owlbus/...`): the demand map, planning runs, evaluation, exports.

The server plans on the city's night demand (the simulated Seoul demand offline, marked
simulated). Planning takes minutes, so a POST starts one run in a worker thread with a time budget
and returns at once; clients poll `GET /api/owlbus/plan` for its progress and the result (the wall
does). One run at a time per server: a second request while one runs is refused (409) rather than
queued, since two runs would halve each other's budget on a small wall PC.

Reading is open like the rest of the wall; starting a run needs an operator (it uses the CPU).
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Annotated, Any

import msgspec
from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.responses import Response

from citywall.auth.access import Principal, require

router = APIRouter()
JSON = "application/json"
GEOJSON = "application/geo+json"
MAX_BUDGET_S = 600.0
DEFAULT_RESOLUTION = 7
# The grids the server builds on request. Resolution 9 (~6,000 cells over Seoul) would mean dense
# n x n matrices of hundreds of MB from one open GET; 8 is already the grid closest to Seoul's own.
RESOLUTIONS = range(5, 9)
MAX_NETWORKS = 4  # networks kept in memory (by resolution, window, demand seed); the oldest goes first
Operator = Annotated[Principal, Depends(require("operator"))]


class PlanIn(msgspec.Struct, forbid_unknown_fields=True):
    """A planning request: the issue's plan parameters, on the city's demand grid."""

    routes: int
    min_nodes: int
    max_nodes: int
    seed: int = 0
    time_budget_s: float = 60.0
    transfer_penalty: float = 5.0
    headway_min: float = 40.0
    resolution: int = DEFAULT_RESOLUTION
    window: str = "00:00-05:00"
    demand_seed: int = 0


@dataclass
class Job:
    state: str = "none"  # none, running, done, failed
    request: dict[str, Any] = field(default_factory=dict)
    by: str = ""
    started_ms: int | None = None
    finished_ms: int | None = None
    progress: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    plan: dict[str, Any] | None = None
    net: Any = None

    def public(self) -> dict[str, Any]:
        return {"state": self.state, "request": self.request, "requested_by": self.by, "started_ms": self.started_ms,
                "finished_ms": self.finished_ms, "progress": self.progress, "error": self.error, "plan": self.plan}


class OwlbusService:
    """The server's Owl-bus state: networks built so far (by grid settings) and the planning run."""

    def __init__(self, city: Any) -> None:
        self.city = city
        self.lock = threading.Lock()
        self.networks: dict[tuple[int, str, int], Any] = {}
        self.job = Job()

    def network(self, resolution: int = DEFAULT_RESOLUTION, window: str = "00:00-05:00", demand_seed: int = 0) -> Any:
        """The city network on the simulated demand for these settings, built once and kept."""
        key = (resolution, window, demand_seed)
        with self.lock:
            if key in self.networks:
                return self.networks[key]
        from citywall.analytics.owlbus.citynet import city_network
        from citywall.analytics.owlbus.simdemand import simulate_seoul_demand

        cells = simulate_seoul_demand(demand_seed, city=self.city, resolution=resolution, window=window)
        net = city_network(self.city, cells, resolution)
        with self.lock:
            while len(self.networks) >= MAX_NETWORKS:  # bounded: anyone may ask for another seed or window
                self.networks.pop(next(iter(self.networks)))
            return self.networks.setdefault(key, net)

    def start(self, req: PlanIn, by: str) -> Job:
        with self.lock:
            if self.job.state == "running":
                raise HTTPException(409, f"a plan is already running (started by {self.job.by}); wait for it or poll GET /api/owlbus/plan")
            self.job = job = Job(state="running", request=msgspec.structs.asdict(req), by=by, started_ms=int(time.time() * 1000),
                                 progress={"stage": "building the network"})
        threading.Thread(target=self._run, args=(job, req), name="owlbus-plan", daemon=True).start()
        return job

    def _run(self, job: Job, req: PlanIn) -> None:
        from citywall.analytics.owlbus import planner
        from citywall.analytics.owlbus.planfile import plan_document

        try:
            net = self.network(req.resolution, req.window, req.demand_seed)
            job.progress = {"stage": "planning", "nodes": net.n}

            def progress(p: dict[str, Any]) -> None:
                job.progress = {"stage": "planning", "nodes": net.n,
                                **{k: v for k, v in p.items() if isinstance(v, (int, float, str, bool)) or v is None}}

            result = planner.plan(net, req.routes, req.min_nodes, req.max_nodes, seed=req.seed, time_budget_s=req.time_budget_s,
                                  transfer_penalty=req.transfer_penalty, progress=progress)
            doc = plan_document(net, result.routes, result.evaluation, headway_min=req.headway_min,
                                settings={k: v for k, v in msgspec.structs.asdict(req).items() if k != "headway_min"})
            doc["search"] = {"seed": result.seed, "iterations": result.iterations, "seconds": round(result.seconds, 3)}
            with self.lock:
                job.net, job.plan, job.state = net, doc, "done"
                job.progress = {**job.progress, "stage": "done"}
                job.finished_ms = int(time.time() * 1000)
        except Exception as exc:  # noqa: BLE001 - the run's failure is reported to whoever polls, not lost in a thread
            with self.lock:
                job.state, job.error = "failed", f"{type(exc).__name__}: {exc}"
                job.finished_ms = int(time.time() * 1000)


def _service(request: Request) -> OwlbusService:
    state = request.app.state
    svc = getattr(state, "owlbus", None)
    if svc is None:
        svc = state.owlbus = OwlbusService(state.platform.city)
    return svc


def _json(obj: Any, status: int = 200, media_type: str = JSON) -> Response:
    return Response(msgspec.json.encode(obj), status_code=status, media_type=media_type)


def _check_request(req: PlanIn) -> None:
    problems = []
    if req.routes < 1:
        problems.append(f"routes must be at least 1, got {req.routes}")
    if req.min_nodes < 2:
        problems.append(f"min_nodes must be at least 2, got {req.min_nodes}")
    if req.max_nodes < req.min_nodes:
        problems.append(f"max_nodes {req.max_nodes} is less than min_nodes {req.min_nodes}")
    if not 0 < req.time_budget_s <= MAX_BUDGET_S:
        problems.append(f"time_budget_s must be in (0, {MAX_BUDGET_S:g}], got {req.time_budget_s:g}")
    if not req.headway_min > 0:
        problems.append(f"headway_min must be positive, got {req.headway_min:g}")
    if not 0 <= req.transfer_penalty < 1440:
        problems.append(f"transfer_penalty must be non-negative minutes, got {req.transfer_penalty:g}")
    problems += _grid_problems(req.resolution, req.window)
    if problems:
        raise HTTPException(422, "; ".join(problems))


def _grid_problems(resolution: int, window: str) -> list[str]:
    from citywall.analytics.owlbus.gtfs import GtfsError, parse_window

    problems = []
    if resolution not in RESOLUTIONS:
        problems.append(f"resolution must be an H3 resolution from {RESOLUTIONS[0]} to {RESOLUTIONS[-1]}, got {resolution}")
    try:
        parse_window(window)
    except GtfsError as exc:
        problems.append(str(exc))
    return problems


def _grid(resolution: int, window: str) -> None:
    problems = _grid_problems(resolution, window)
    if problems:
        raise HTTPException(422, "; ".join(problems))


@router.get("/api/owlbus/demand", tags=["owlbus"], summary="Night demand on the city's hexagon grid as GeoJSON (simulated offline, and marked so)")
def get_demand(request: Request, resolution: int = DEFAULT_RESOLUTION, window: str = "00:00-05:00", demand_seed: int = 0) -> Response:
    from citywall.analytics.owlbus.geo import demand_geojson

    _grid(resolution, window)
    net = _service(request).network(resolution, window, demand_seed)
    return _json({**demand_geojson(net), "resolution": resolution, "window": window}, media_type=GEOJSON)


@router.get("/api/owlbus/plan", tags=["owlbus"], summary="The planning run: state, progress, and the plan (routes, metrics, per-route riders and buses)")
def get_plan(request: Request) -> Response:
    svc = _service(request)
    with svc.lock:
        return _json(svc.job.public())


@router.get("/api/owlbus/plan.geojson", tags=["owlbus"], summary="The last plan's routes, stops and demand as GeoJSON")
def get_plan_geojson(request: Request, demand: bool = True) -> Response:
    from citywall.analytics.owlbus.geo import plan_geojson

    job = _done(request)
    doc = plan_geojson(job.net, job.plan["routes"], job.plan["route_details"], include_demand=demand, metrics=job.plan["metrics"])
    return _json(doc, media_type=GEOJSON)


@router.get("/api/owlbus/plan.gtfs.zip", tags=["owlbus"], summary="The last plan as a GTFS feed (zip)")
def get_plan_gtfs(request: Request) -> Response:
    from citywall.analytics.owlbus.gtfs import gtfs_tables, gtfs_zip

    job = _done(request)
    req = job.plan["settings"]
    city = _service(request).city
    tables = gtfs_tables(job.net, job.plan["routes"], headway_min=job.plan["headway_min"], window=req.get("window", "00:00-05:00"),
                         timezone=getattr(city, "timezone", "Asia/Seoul"), city=city)
    return Response(gtfs_zip(tables), media_type="application/zip", headers={"Content-Disposition": 'attachment; filename="owlbus-gtfs.zip"'})


def _done(request: Request) -> Job:
    svc = _service(request)
    with svc.lock:
        job = svc.job
    if job.plan is None:
        raise HTTPException(404, "no plan yet: start one with POST /api/owlbus/plan" if job.state != "running" else "the plan is still running")
    return job


@router.post("/api/owlbus/plan", tags=["owlbus"], status_code=202,
             summary="Start planning on the city's night demand in the background (operators); poll GET /api/owlbus/plan")
async def post_plan(request: Request, who: Operator) -> Response:
    try:
        req = msgspec.json.decode(await request.body() or b"{}", type=PlanIn)
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        raise HTTPException(422, f"bad request body: {exc} (expected routes, min_nodes, max_nodes; optional seed, time_budget_s, "
                                 "transfer_penalty, headway_min, resolution, window, demand_seed)") from None
    _check_request(req)
    job = _service(request).start(req, who.actor)
    return _json(job.public(), 202)


@router.get("/api/owlbus/evaluate", tags=["owlbus"],
            summary="Evaluate a route set on the city network (routes=0-1-2;3-4-5, 0-based node ids), or the last plan without routes")
def get_evaluate(request: Request, routes: str | None = None, headway_min: float = Query(40.0, gt=0), transfer_penalty: float | None = Query(None, ge=0),
                 resolution: int = DEFAULT_RESOLUTION, window: str = "00:00-05:00", demand_seed: int = 0) -> Response:
    from citywall.analytics.owlbus.evaluate import check_routes, evaluate, is_coverage_gap
    from citywall.analytics.owlbus.planfile import PlanFileError, parse_route_set, plan_document

    if routes is None:
        job = _done(request)
        net, route_set = job.net, job.plan["routes"]
        if transfer_penalty is None:  # measured as it was planned
            transfer_penalty = job.plan["settings"].get("transfer_penalty")
    else:
        _grid(resolution, window)
        net = _service(request).network(resolution, window, demand_seed)
        try:
            route_set = [[int(i) for i in part.replace(",", "-").split("-") if i.strip()] for part in routes.split(";") if part.strip()]
        except ValueError:
            raise HTTPException(422, f"routes {routes[:80]!r}: expected 0-based node ids joined by '-', routes separated by ';'") from None
        try:
            route_set = parse_route_set(route_set, "routes", net.n)
        except PlanFileError as exc:
            raise HTTPException(422, str(exc)) from None
        # Leaving nodes out is measured (dun), not refused; unknown nodes and missing links are.
        problems = [p for p in check_routes(net, route_set, 2, net.n) if not is_coverage_gap(p)]
        if problems:
            raise HTTPException(422, "not a valid route set: " + "; ".join(problems))
    if transfer_penalty is None:
        transfer_penalty = 5.0
    ev = evaluate(net, route_set, transfer_penalty=transfer_penalty)
    return _json(plan_document(net, route_set, ev, headway_min=headway_min, settings={"transfer_penalty": transfer_penalty}))

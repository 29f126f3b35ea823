"""The operations API: incidents, alarms and situations, facilities, alert rules and replay.

Reading is open (a wall in read-only mode needs no login); every change names who makes it, through
`require`: a session of an operator or admin, or an API key (feeds may open and move incidents, as a
119 dispatch system would). Handlers stay thin: parse, call the board or the alarm book, encode.
"""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

import msgspec
from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.responses import Response

from citywall.alerts.alarms import AlarmError, AlarmInputError
from citywall.alerts.severity import SEVERITIES
from citywall.auth.access import Principal, require
from citywall.incidents.board import IncidentError
from citywall.incidents.lifecycle import KINDS, TransitionError
from citywall.live.replay import picture_at
from citywall.platform import Platform
from citywall.web.params import parse_moment_us

router = APIRouter()
JSON = "application/json"
NEAR_RADIUS_M = 1000.0
RELATED_WINDOW_MS = 2 * 3600 * 1000


Text = Annotated[str, msgspec.Meta(max_length=500)]
Note = Annotated[str, msgspec.Meta(max_length=4000)]


class IncidentIn(msgspec.Struct, forbid_unknown_fields=True):
    kind: Text
    lon: float
    lat: float
    severity: Text = "medium"
    title: Text = ""
    address: Text = ""
    unit: Text | None = None
    time: Text | None = None  # ISO 8601 with offset or epoch ms; default now
    note: Note = ""
    external_id: Annotated[str, msgspec.Meta(min_length=1, max_length=200)] | None = None


class TransitionIn(msgspec.Struct, forbid_unknown_fields=True):
    step: Text
    note: Note = ""
    time: Text | None = None


class AssignIn(msgspec.Struct, forbid_unknown_fields=True):
    to: str


class CommentIn(msgspec.Struct, forbid_unknown_fields=True):
    text: str


class AckIn(msgspec.Struct, forbid_unknown_fields=True):
    note: str = ""


def _json(obj: Any, status: int = 200) -> Response:
    return Response(msgspec.json.encode(obj), status_code=status, media_type=JSON)


def _platform(request: Request) -> Platform:
    return request.app.state.platform


async def _body(request: Request, type_: type) -> Any:
    try:
        return msgspec.json.decode(await request.body() or b"{}", type=type_)
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        raise HTTPException(422, f"bad request body: {exc}") from None


def _ms(value: str | None) -> int | None:
    if value is None:
        return None
    return parse_moment_us(value) // 1000


Feed = Annotated[Principal, Depends(require("feed"))]
Operator = Annotated[Principal, Depends(require("operator"))]
Admin = Annotated[Principal, Depends(require("admin"))]


# -- incidents -----------------------------------------------------------------------------
@router.get("/api/incidents", tags=["incidents"], summary="Incidents: the active ones, or with recent=true also those closed in the last hours")
async def get_incidents(request: Request, recent: bool = False, kind: str | None = None, gu: str | None = None) -> Response:
    board = _platform(request).incidents
    items = board.recent() if recent else board.active()
    items = [i for i in items if (kind is None or i["kind"] == kind) and (gu is None or i["gu"] == gu)]
    return _json({"counts": board.counts(), "items": items})


@router.get("/api/incidents/kinds", tags=["incidents"], summary="Incident kinds and their official handling steps")
async def get_incident_kinds() -> Response:
    return _json({k.code: {"ko": k.ko, "en": k.en, "steps": [{"step": s.code, "ko": s.ko, "en": s.en} for s in k.steps],
                           "skippable": sorted(k.skippable)} for k in KINDS.values()} | {"_severities": list(SEVERITIES)})


@router.get("/api/incidents/{incident_id}", tags=["incidents"], summary="One incident with its timeline, nearby cameras and facilities, and related alarms")
async def get_incident(request: Request, incident_id: str, radius_m: Annotated[float, Query(gt=0, le=20_000)] = NEAR_RADIUS_M) -> Response:
    p = _platform(request)
    incident = p.incidents.get(incident_id)
    if incident is None:
        raise HTTPException(404, f"no incident {incident_id!r}")
    near = p.facilities.near(incident["lon"], incident["lat"], radius_m)
    nearby: dict[str, list] = {}
    for f in near:
        nearby.setdefault(f["kind"], []).append(f)
    related = p.alarms.near(incident["gu"], incident["opened_at_ms"] - RELATED_WINDOW_MS)
    return _json({**incident, "nearby": nearby, "nearby_radius_m": radius_m, "facilities_example": p.facilities.is_example,
                  "related_alarms": related})


@router.post("/api/incidents", tags=["incidents"], status_code=201, summary="Open an incident (operators, or a feed's API key)")
async def post_incident(request: Request, who: Feed) -> Response:
    body: IncidentIn = await _body(request, IncidentIn)
    p = _platform(request)
    try:
        incident = await p.incidents.open(body.kind, body.lon, body.lat, body.severity, by=who.actor, title=body.title, address=body.address,
                                          unit=body.unit, at_ms=_ms(body.time), note=body.note, source=who.name if who.via == "key" else "api",
                                          external_id=body.external_id)
    except IncidentError as exc:
        raise HTTPException(422, str(exc)) from None
    return _json(incident, 200 if incident.get("duplicate") else 201)


@router.post("/api/incidents/{incident_id}/transitions", tags=["incidents"], summary="Move an incident to a later step of its kind")
async def post_transition(request: Request, incident_id: str, who: Feed) -> Response:
    body: TransitionIn = await _body(request, TransitionIn)
    board = _platform(request).incidents
    if who.via == "key" and who.role == "feed":
        case = board.get(incident_id)
        if case is not None and case["source"] != who.name:
            raise HTTPException(403, f"a feed key moves only the cases it opened; {incident_id} came from {case['source']!r}")
    try:
        incident = await board.advance(incident_id, body.step, by=who.actor, note=body.note, at_ms=_ms(body.time))
    except KeyError:
        raise HTTPException(404, f"no open incident {incident_id!r}") from None
    except TransitionError as exc:
        raise HTTPException(409, str(exc)) from None
    return _json(incident)


# -- alarms and situations -----------------------------------------------------------------
@router.get("/api/alarms", tags=["alarms"], summary="Open alarms (active or not yet acknowledged), most severe first")
async def get_alarms(request: Request, severity: str | None = None, gu: str | None = None) -> Response:
    book = _platform(request).alarms
    items = [a for a in book.open_alarms() if (severity is None or a["severity"] == severity) and (gu is None or a["gu"] == gu)]
    return _json({"counts": book.counts(), "items": items})


@router.get("/api/alarms/{alarm_id}", tags=["alarms"], summary="One alarm with its history and comments")
async def get_alarm(request: Request, alarm_id: str) -> Response:
    alarm = _platform(request).alarms.get(alarm_id)
    if alarm is None:
        raise HTTPException(404, f"no alarm {alarm_id!r}")
    return _json(alarm)


@router.get("/api/situations", tags=["alarms"], summary="Open alarms grouped into situations (same district, close in time)")
async def get_situations(request: Request) -> Response:
    return _json(_platform(request).alarms.situations())


async def _alarm_action(request: Request, alarm_id: str, action: Any) -> Response:
    try:
        return _json(await action)
    except KeyError:
        raise HTTPException(404, f"no open alarm {alarm_id!r}") from None
    except AlarmInputError as exc:
        raise HTTPException(422, str(exc)) from None
    except AlarmError as exc:
        raise HTTPException(409, str(exc)) from None


@router.post("/api/alarms/{alarm_id}/ack", tags=["alarms"], summary="Acknowledge an alarm")
async def post_ack(request: Request, alarm_id: str, who: Operator) -> Response:
    body: AckIn = await _body(request, AckIn)
    return await _alarm_action(request, alarm_id, _platform(request).alarms.ack(alarm_id, who.actor, body.note))


@router.post("/api/alarms/{alarm_id}/assign", tags=["alarms"], summary="Assign an alarm to a person")
async def post_assign(request: Request, alarm_id: str, who: Operator) -> Response:
    body: AssignIn = await _body(request, AssignIn)
    return await _alarm_action(request, alarm_id, _platform(request).alarms.assign(alarm_id, body.to, who.actor))


@router.post("/api/alarms/{alarm_id}/comment", tags=["alarms"], summary="Comment on an alarm")
async def post_comment(request: Request, alarm_id: str, who: Operator) -> Response:
    body: CommentIn = await _body(request, CommentIn)
    return await _alarm_action(request, alarm_id, _platform(request).alarms.comment(alarm_id, body.text, who.actor))


# -- alert rules ---------------------------------------------------------------------------
@router.get("/api/rules", tags=["alarms"], summary="The alert rules in force, as YAML", response_class=Response)
def get_rules(request: Request) -> Response:
    return Response(_platform(request).rules_yaml, media_type="application/yaml")


@router.put("/api/rules", tags=["alarms"], summary="Replace the alert rules (admin): YAML in the body, validated before use")
async def put_rules(request: Request, who: Admin) -> Response:
    p = _platform(request)
    text = (await request.body()).decode("utf-8", "replace")
    try:
        summary = await p.replace_rules(text, by=who.actor)
    except ValueError as exc:
        raise HTTPException(422, str(exc)) from None
    return _json(summary)


# -- facilities ----------------------------------------------------------------------------
@router.get("/api/facilities", tags=["city"], summary="The city's cameras, hospitals, shelters and fire stations (GeoJSON), optionally near a point")
def get_facilities(request: Request, kind: str | None = None, near: str | None = Query(None, description="lon,lat"),
                   radius_m: Annotated[float, Query(gt=0, le=50_000)] = NEAR_RADIUS_M) -> Response:
    f = _platform(request).facilities
    if near is None:
        return Response(msgspec.json.encode(f.as_geojson(kind)), media_type="application/geo+json")
    try:
        lon, lat = (float(x) for x in near.split(","))
    except ValueError:
        raise HTTPException(400, f"near={near!r}: give lon,lat") from None
    return _json({"example": f.is_example, "items": f.near(lon, lat, radius_m, kinds=None if kind is None else [kind])})


# -- the wall's settings and replay --------------------------------------------------------
@router.get("/api/operations", tags=["incidents"], summary="How the wall handles incidents and alarms (focus, escalation)")
async def get_operations(request: Request) -> Response:
    return _json(_platform(request).operations_settings())


@router.get("/api/replay", tags=["live"], summary="The whole picture at a past moment: values, aggregates, CAI, incidents, alarms")
async def get_replay(request: Request, at: str = Query(..., description="ISO 8601 with offset, or epoch ms")) -> Response:
    p = _platform(request)
    t_us = parse_moment_us(at)
    if t_us > p.clock.now_us():
        raise HTTPException(400, "that moment has not happened yet")
    return _json(await asyncio.to_thread(picture_at, p, t_us))

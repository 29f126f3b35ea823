"""The platform's live picture as NGSI-LD entities of the FIWARE Smart Data Models.

A city running a FIWARE context broker (Orion-LD, Scorpio, Stellio) can read what citywall
knows in the shapes its other systems already use: AirQualityObserved (dataModel.Environment)
per air station, TrafficFlowObserved (dataModel.Transportation) per road link, and Alert
(dataModel.Alert) per open alarm and active incident. The entities are built from the live state
(newest value per datastream), the CAI (`platform.air`), the alarm book and the incident board;
nothing is stored twice. `@context` names the Smart Data Models context by URL; citywall never
fetches it.
"""

from __future__ import annotations

import math
from typing import Any
from urllib.parse import quote

import msgspec
import numpy as np
from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import Response

from citywall.ingest.batch import NO_TIME
from citywall.sensorthings.entities import iso

SDM_CONTEXT = "https://raw.githubusercontent.com/smart-data-models/data-models/master/context.jsonld"
LD_JSON = "application/ld+json"
# UN/CEFACT common codes, as Smart Data Models give units (unitCode).
UNIT_CODES = {"ug/m3": "GQ", "ppm": "59", "ppb": "61", "km/h": "KMH", "degC": "CEL", "%": "P1", "m/s": "MTS"}
AIR_POLLUTANTS = ("pm10", "pm25", "o3", "no2", "co", "so2")
AIR_EXTRA = {"temperature": "temperature", "humidity": "relativeHumidity"}
# Korea's CAI grades (good, moderate, unhealthy, very_unhealthy) in the model's airQualityLevel words.
SDM_LEVELS = {"very_unhealthy": "veryUnhealthy"}
# Smart Data Models give relativeHumidity as a fraction (0..1, unitCode C62 "one"); citywall stores %.
FRACTION = {"humidity": (0.01, "C62")}
# Seoul TOPIS speed bands (as in alerts/rules.yaml): 정체 (congested) at or below 30 km/h on urban
# expressways, at or below 15 km/h on other roads.
EXPRESSWAY = "도시고속도로"
CONGESTED_KMH = {True: 30.0, False: 15.0}
# Alarm category -> (Smart Data Models Alert category, subCategory); by rule id where a category is too broad.
ALARM_CATEGORIES: dict[str, tuple[str, str | None]] = {"air": ("environment", "airPollution"), "traffic": ("traffic", None),
                                                       "crowd": ("security", None)}
RULE_CATEGORIES: dict[str, tuple[str, str | None]] = {
    "road_congestion": ("traffic", "trafficJam"), "expressway_congestion": ("traffic", "trafficJam"),
    "crowd_in_bad_air": ("environment", "airPollution"), "rain_and_congestion": ("traffic", "trafficJam"),
}
# Alarms about citywall's own inputs (a silent station, a stale feed) are for operators, not
# public alerts, and no Smart Data Models category describes them: they are not exported.
NOT_EXPORTED = ("feed", "sensor")
INCIDENT_CATEGORIES: dict[str, tuple[str, str | None]] = {
    "fire": ("security", "buildingFire"), "traffic_accident": ("traffic", "carAccident"), "flood": ("naturalDisaster", "flood"),
    "ems": ("health", None), "rescue": ("security", None), "collapse": ("security", None), "gas_leak": ("security", None),
    "other": ("security", None),
}

router = APIRouter(prefix="/api/ngsi-ld", tags=["ngsi-ld"])


def urn(entity_type: str, local: str) -> str:
    """`urn:ngsi-ld:<type>:<local id>` with characters a URN may not hold percent-encoded."""
    return f"urn:ngsi-ld:{entity_type}:{quote(local, safe=':-_.~')}"


def prop(value: Any, *, observed_ms: int | None = None, unit: str | None = None, unit_code: str | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"type": "Property", "value": value}
    if observed_ms is not None:
        out["observedAt"] = iso(observed_ms * 1000)
    code = unit_code or UNIT_CODES.get(unit or "")
    if code is not None:
        out["unitCode"] = code
    return out


def date_time(ms: int) -> dict[str, Any]:
    return {"type": "Property", "value": {"@type": "DateTime", "@value": iso(ms * 1000)}}


def geo(geometry: dict[str, Any]) -> dict[str, Any]:
    return {"type": "GeoProperty", "value": geometry}


def _address(platform: Any, gu: str | None) -> dict[str, Any] | None:
    area = platform.city.districts.get(gu) if gu else None
    if area is None:
        return None
    return prop({"addressLocality": area.name_en, "addressRegion": platform.city.name_en, "addressCountry": "KR"})


def _newest(platform: Any, ids: list[int]) -> dict[int, tuple[int, float]]:
    """The newest (time ms, value) of each datastream that has reported."""
    if not ids:
        return {}
    got = platform.live.values(np.array(ids, dtype=np.int64))
    return {i: (t, v) for i, t, v in zip(got["ids"], got["t"], got["v"]) if t > NO_TIME // 1000 and not math.isnan(v)}


def _things(platform: Any, kind: str, gu: str | None) -> list[Any]:
    return [t for t in list(platform.registry.things.values()) if t.kind == kind and (gu is None or t.gu == gu)]


def _streams(platform: Any) -> dict[int, dict[str, int]]:
    """thing id -> quantity -> datastream id."""
    out: dict[int, dict[str, int]] = {}
    for d in list(platform.registry.datastreams.values()):
        out.setdefault(d.thing_id, {})[d.quantity] = d.id
    return out


def air_quality_observed(platform: Any, gu: str | None = None) -> list[dict[str, Any]]:
    """One AirQualityObserved per air station: its newest pollutant values and its CAI."""
    streams = _streams(platform)
    air = platform.air.latest
    out = []
    for t in _things(platform, "air_station", gu):
        mine = streams.get(t.id, {})
        newest = _newest(platform, list(mine.values()))
        e: dict[str, Any] = {"id": urn("AirQualityObserved", t.key), "type": "AirQualityObserved",
                             "name": prop(t.name), "location": geo({"type": "Point", "coordinates": [t.lon, t.lat]})}
        address = _address(platform, t.gu)
        if address:
            e["address"] = address
        times = []
        for q in (*AIR_POLLUTANTS, *AIR_EXTRA):
            ds = mine.get(q)
            if ds is None or ds not in newest:
                continue
            t_ms, v = newest[ds]
            times.append(t_ms)
            if q in FRACTION:
                factor, code = FRACTION[q]
                e[AIR_EXTRA[q]] = prop(round(v * factor, 6), observed_ms=t_ms, unit_code=code)
            else:
                e[AIR_EXTRA.get(q, q)] = prop(v, observed_ms=t_ms, unit=platform.registry.datastreams[ds].unit)
        if times:
            e["dateObserved"] = date_time(max(times))
        station = (air.get("stations") or {}).get(t.key) or {}
        index = station.get("cai")
        if index and air.get("time_ms") is not None:
            e["airQualityIndex"] = prop(index["index"], observed_ms=air["time_ms"])
            e["airQualityLevel"] = prop(SDM_LEVELS.get(index["grade"], index["grade"]), observed_ms=air["time_ms"])
            e["responsiblePollutant"] = prop(index["pollutant"], observed_ms=air["time_ms"])
        e["dataProvider"] = prop("citywall")
        e["simulated"] = prop(bool(t.simulated))
        e["@context"] = SDM_CONTEXT
        out.append(e)
    return out


def traffic_flow_observed(platform: Any, gu: str | None = None) -> list[dict[str, Any]]:
    """One TrafficFlowObserved per road link that has reported a speed."""
    streams = _streams(platform)
    links = _things(platform, "road_link", gu)
    ids = {t.id: streams.get(t.id, {}).get("road_speed") for t in links}
    newest = _newest(platform, [i for i in ids.values() if i is not None])
    out = []
    for t in links:
        ds = ids[t.id]
        if ds is None or ds not in newest:
            continue
        t_ms, speed = newest[ds]
        line = t.properties.get("line")
        shape = {"type": "LineString", "coordinates": line} if isinstance(line, list) and len(line) >= 2 else {"type": "Point", "coordinates": [t.lon, t.lat]}
        expressway = t.properties.get("road_type") == EXPRESSWAY
        e: dict[str, Any] = {"id": urn("TrafficFlowObserved", t.key), "type": "TrafficFlowObserved", "name": prop(t.name),
                             "location": geo(shape), "dateObserved": date_time(t_ms),
                             "averageVehicleSpeed": prop(speed, observed_ms=t_ms, unit="km/h"),
                             "congested": prop(bool(speed <= CONGESTED_KMH[expressway]), observed_ms=t_ms)}
        if t.properties.get("road"):
            e["description"] = prop(f"{t.properties['road']} ({t.properties.get('road_type', 'road')})")
        address = _address(platform, t.gu)
        if address:
            e["address"] = address
        e["dataProvider"] = prop("citywall")
        e["simulated"] = prop(bool(t.simulated))
        e["@context"] = SDM_CONTEXT
        out.append(e)
    return out


def _point(platform: Any, lon: float | None, lat: float | None, gu: str | None) -> dict[str, Any] | None:
    if lon is not None and lat is not None:
        return {"type": "Point", "coordinates": [lon, lat]}
    area = platform.city.districts.get(gu) if gu else None
    if area is not None:  # a district-wide alarm: a point inside the district
        lon, lat = area.centroid
        return {"type": "Point", "coordinates": [round(lon, 6), round(lat, 6)]}
    return None


def _alarm_simulated(platform: Any, alarm: dict[str, Any]) -> bool:
    """Whether an alarm rests on simulated data: its datastream's or Thing's flag; for a district-wide
    alarm, whether any Thing of that district is simulated; else whether any running feed is."""
    reg = platform.registry
    kind, _, rest = str(alarm.get("subject") or "").partition(":")
    if kind == "ds" and rest.isdigit() and int(rest) in reg.datastreams:
        return bool(reg.things[reg.datastreams[int(rest)].thing_id].simulated)
    thing = reg.thing_by_key.get(alarm.get("subject"))
    if thing is not None:
        return bool(reg.things[thing].simulated)
    if kind == "gu" and rest:
        return any(t.simulated for t in list(reg.things.values()) if t.gu == rest)
    return bool(platform.simulated)


def alerts(platform: Any, gu: str | None = None) -> list[dict[str, Any]]:
    """One Alert per open alarm (except citywall's own input checks) and per active incident, each
    with `simulated`, as every other export carries it."""
    out = []
    for a in platform.alarms.open_alarms():
        if a["category"] in NOT_EXPORTED or (gu is not None and a["gu"] != gu):
            continue
        category, sub = RULE_CATEGORIES.get(a["rule"]) or ALARM_CATEGORIES.get(a["category"], ("security", None))
        e: dict[str, Any] = {"id": urn("Alert", f"alarm:{a['id']}"), "type": "Alert", "category": prop(category)}
        if sub:
            e["subCategory"] = prop(sub)
        e |= {"name": prop(a["title_en"]), "description": prop(a["message_en"]), "severity": prop(a["severity"]),
              "dateIssued": date_time(a["raised_at_ms"]), "validFrom": date_time(a["raised_at_ms"]),
              "alertSource": prop(f"citywall alert rule {a['rule']}")}
        if a["cleared_at_ms"] is not None:
            e["validTo"] = date_time(a["cleared_at_ms"])
        where = _point(platform, a["lon"], a["lat"], a["gu"])
        if where:
            e["location"] = geo(where)
        address = _address(platform, a["gu"])
        if address:
            e["address"] = address
        e["simulated"] = prop(_alarm_simulated(platform, a))
        e["@context"] = SDM_CONTEXT
        out.append(e)
    for c in platform.incidents.active():
        if gu is not None and c["gu"] != gu:
            continue
        category, sub = INCIDENT_CATEGORIES.get(c["kind"], ("security", None))
        e = {"id": urn("Alert", f"incident:{c['id']}"), "type": "Alert", "category": prop(category)}
        if sub:
            e["subCategory"] = prop(sub)
        e |= {"name": prop(c["title"] or c["kind_en"]), "description": prop(f"{c['kind_en']}: {c['step_en']}" + (f", {c['address']}" if c["address"] else "")),
              "severity": prop(c["severity"]), "dateIssued": date_time(c["opened_at_ms"]), "validFrom": date_time(c["opened_at_ms"]),
              "alertSource": prop(c["source"] if c["source"] != "api" else "citywall incident board"),
              "location": geo({"type": "Point", "coordinates": [c["lon"], c["lat"]]}), "simulated": prop(bool(c["simulated"]))}
        address = _address(platform, c["gu"])
        if address:
            e["address"] = address
        e["@context"] = SDM_CONTEXT
        out.append(e)
    return out


def _ld(entities: list[dict[str, Any]]) -> Response:
    return Response(msgspec.json.encode(entities), media_type=LD_JSON)


def _gu(request: Request, gu: str | None) -> str | None:
    if gu is not None and gu not in request.app.state.platform.city.districts:
        raise HTTPException(404, f"no district {gu!r}")
    return gu


GU = Query(None, description="only this district (gu code, e.g. 11140)")


@router.get("/AirQualityObserved", summary="Air stations as Smart Data Models AirQualityObserved (NGSI-LD)")
def get_air_quality(request: Request, gu: str | None = GU) -> Response:
    return _ld(air_quality_observed(request.app.state.platform, _gu(request, gu)))


@router.get("/TrafficFlowObserved", summary="Road links as Smart Data Models TrafficFlowObserved (NGSI-LD)")
def get_traffic_flow(request: Request, gu: str | None = GU) -> Response:
    return _ld(traffic_flow_observed(request.app.state.platform, _gu(request, gu)))


@router.get("/Alert", summary="Open alarms and active incidents as Smart Data Models Alert (NGSI-LD)")
async def get_alerts(request: Request, gu: str | None = GU) -> Response:
    # On the event loop, where the alarm book and the incident board change (as GET /api/alarms
    # reads them): from a worker thread, iterating their dicts could meet a change half-way.
    return _ld(alerts(request.app.state.platform, _gu(request, gu)))

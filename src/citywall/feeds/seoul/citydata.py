"""citydata (서울 실시간 도시데이터): the city's 116 places, one call per place.

From each answer the feed takes what the wall shows for a place: the congestion level (여유 1 ..
붐빔 4) and the population range (AREA_PPLTN_MIN/MAX) at PPLTN_TIME, the average road speed around
it (AVG_ROAD_DATA), the weather and air there (WEATHER_STTS), and the traffic accidents and
controls (ACDNT_CNTRL_STTS), which become incidents on the board. The Things are the simulator's
(`hotspot:{AREA_CD}`, kind hotspot) at the same places, so the wall's crowding layer and the
crowding alert rules read the real places where they read simulated ones.

The population forecast (FCST_PPLTN) is not stored as observations: it describes future hours, and
observations are what was measured (the pipeline refuses future times). The newest forecast of
each place is kept in memory instead (`forecast`, `SeoulFeed.forecasts()`: 116 places x 12 hours).

Accidents: one case per accident, by an id made from what the service gives (time, place, type),
so that a repeat poll, a restart, or the same accident listed by two neighbouring places does not
open it twice; a case is closed when its expected clearance time (EXP_CLR_DT) has passed, or when
every place that listed it has been read again without it.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from citywall.feeds.seoul.client import Answer, SeoulError
from citywall.feeds.seoul.rows import Rows
from citywall.feeds.seoul.source import SOURCE_TAG, fetch_part, thing_props
from citywall.feeds.seoul.values import BadValue, first, is_missing, kst_us, number, rows, text
from citywall.feeds.simulator.hotspots import LEVELS, load_hotspots
from citywall.incidents.board import IncidentError
from citywall.incidents.lifecycle import TransitionError
from citywall.observations.model import DatastreamIn, ThingIn

if TYPE_CHECKING:
    from citywall.feeds.seoul.client import SeoulClient
    from citywall.platform import Platform

log = logging.getLogger(__name__)

SERVICE = "citydata"
ROOT = "CITYDATA"
INCIDENT_SOURCE = "seoul-citydata"
LEVEL = {name: n for n, name in LEVELS.items()}  # 여유 1, 보통 2, 약간 붐빔 3, 붐빔 4
# (section field, quantity, datastream suffix, interval): every datastream is hotspot:{AREA_CD}:{suffix}.
POPULATION = (("AREA_PPLTN_MIN", "population_min"), ("AREA_PPLTN_MAX", "population_max"))
WEATHER = (("TEMP", "temperature"), ("HUMIDITY", "humidity"), ("WIND_SPD", "wind_speed"), ("PRECIPITATION", "precipitation"),
           ("UV_INDEX_LVL", "uv_index"), ("PM10", "pm10"), ("PM25", "pm25"))
STREAMS = [("congestion_level", 300.0), ("population_min", 300.0), ("population_max", 300.0), ("road_speed", 300.0),
           *((q, 3600.0) for _, q in WEATHER)]
# ACDNT_TYPE / ACDNT_DTYPE words -> (incident kind, severity); the first that appears in the text wins.
ACCIDENT_KINDS = (
    ("침수", ("flood", "high")), ("붕괴", ("collapse", "high")), ("가스", ("gas_leak", "high")), ("화재", ("fire", "high")),
    ("고장", ("traffic_accident", "low")), ("사고", ("traffic_accident", "medium")),
    ("공사", ("other", "low")), ("행사", ("other", "informational")), ("집회", ("other", "informational")),
)
NO_RAIN = {"강수없음", "없음"}


@dataclass
class Place:
    code: str
    name: str
    lon: float
    lat: float
    category: str


def load_places(only: list[str] | str | None = None) -> list[Place]:
    """The 116 places (AREA_CD, AREA_NM, a point) from the city model's hotspot list, or the ones
    named in `only` (names or codes); an unknown name is an error that lists where to look."""
    places = [Place(h.code, h.name, h.lon, h.lat, h.category) for h in load_hotspots()]
    if only is None or only == "" or only == []:
        return places
    wanted = [w.strip() for w in (only.split(",") if isinstance(only, str) else only) if str(w).strip()]
    by = {p.name: p for p in places} | {p.code: p for p in places}
    unknown = [w for w in wanted if w not in by]
    if unknown:
        raise ValueError(f"unknown citydata places {unknown}; use AREA_NM or AREA_CD from feeds/simulator/data/hotspots.yaml")
    return [by[w] for w in wanted]


def accident_kind(row: dict[str, Any]) -> tuple[str, str]:
    words = f"{text(row.get('ACDNT_TYPE'))} {text(row.get('ACDNT_DTYPE'))}"
    for word, found in ACCIDENT_KINDS:
        if word in words:
            return found
    return "other", "low"


def accident_id(row: dict[str, Any]) -> str:
    """The accident's id for the board: the service has none, so one from its time, place and type
    (the same accident read through two neighbouring places gets the same id)."""
    raw = "|".join(text(row.get(k)) for k in ("ACDNT_OCCR_DT", "ACDNT_X", "ACDNT_Y", "ACDNT_TYPE", "ACDNT_DTYPE"))
    return f"{text(row.get('ACDNT_OCCR_DT')).replace(' ', 'T')}-{hashlib.sha1(raw.encode()).hexdigest()[:10]}"


def _iso(t_us: int) -> str:
    return datetime.fromtimestamp(t_us / 1e6, timezone.utc).isoformat(timespec="seconds")


def precipitation(value: Any) -> float | None:
    """PRECIPITATION: mm, "-", "강수없음" (none: 0), or "1mm 미만" (under 1 mm: not a number the
    store can hold honestly, so missing)."""
    s = text(value)
    if s in NO_RAIN:
        return 0.0
    if "미만" in s:
        return None
    return number(s.removesuffix("mm").strip() if s.endswith("mm") else value, "PRECIPITATION")


@dataclass
class Accident:
    external_id: str
    place: Place
    row: dict[str, Any]
    occurred_us: int | None
    clear_us: int | None


class CitydataSource:
    name = "citydata"
    service = SERVICE

    def __init__(self, places: list[Place], every_s: float = 300.0, concurrency: int = 8) -> None:
        self.places = places
        self.every_s = every_s
        self.concurrency = max(1, int(concurrency))
        self.done: dict[str, int] = {}
        self.place_errors: dict[str, str] = {}  # AREA_NM -> the last error of that place
        self.last_seen: dict[str, set[str]] = {}  # accident id -> the places that listed it in their last answer
        self.case_ids: dict[str, str] = {}  # accident id -> incident id
        self.forecasts = 0  # forecast rows read, over the run
        self.forecast_unreadable = 0  # of those, rows without a readable time (not kept)
        self.forecast: dict[str, dict[str, Any]] = {}  # AREA_CD -> the newest forecast of that place
        self._bad_accidents: set[str] = set()

    def things(self, platform: Platform) -> list[ThingIn]:
        return [ThingIn(
            key=f"hotspot:{p.code}", name=p.name, kind="hotspot", lon=p.lon, lat=p.lat,
            datastreams=[DatastreamIn(quantity=q, interval_s=i) for q, i in STREAMS],
            properties=thing_props(SERVICE, area_cd=p.code, area_nm=p.name, category=p.category, levels=LEVELS),
        ) for p in self.places]

    def read(self, place: Place, section: dict[str, Any], out: Rows) -> list[Accident]:
        """Add one place's readings to `out`; return its accidents (no I/O)."""
        code = text(section.get("AREA_CD")) or place.code
        if code != place.code:
            out.refuse("malformed", f"{SERVICE} {place.name}: AREA_CD {code!r} is not {place.code}, the code of this place", section)
            return []
        key = f"hotspot:{code}"

        where = f"{SERVICE} {place.name}"

        def reading(field: str, quantity: str, row: dict[str, Any], t: int | None, parse: Any = number) -> None:
            out.reading(row, field, f"{key}:{quantity}", t, where, parse=parse)

        def when(row: dict[str, Any], field: str, values: tuple[str, ...]) -> int | None:
            """A section's time; a section with values but no readable time is refused whole (its
            values cannot be stored without one), an empty section is nothing."""
            if any(not is_missing(row.get(f)) for f in values):
                return out.time(row, field, where)
            return None

        ppl = first(section.get("LIVE_PPLTN_STTS"))
        if ppl:
            t = when(ppl, "PPLTN_TIME", ("AREA_CONGEST_LVL", *(f for f, _ in POPULATION)))
            level = text(ppl.get("AREA_CONGEST_LVL"))
            if level and level not in LEVEL:
                out.refuse("malformed", f"{SERVICE} {place.name}: AREA_CONGEST_LVL {level!r} is not one of {', '.join(LEVEL)}", ppl,
                           key=f"{key}:congestion_level")
            elif level:
                reading("AREA_CONGEST_LVL", "congestion_level", ppl, t, parse=lambda v, f: float(LEVEL[text(v)]))
            for field, quantity in POPULATION:
                reading(field, quantity, ppl, t)
            self.read_forecast(place, ppl)
        roads = section.get("ROAD_TRAFFIC_STTS")
        roads = first(roads) if isinstance(roads, list) else (roads or {})
        avg = first(roads.get("AVG_ROAD_DATA")) if isinstance(roads, dict) else {}
        if avg:
            reading("ROAD_TRAFFIC_SPD", "road_speed", avg, when(avg, "ROAD_TRAFFIC_TIME", ("ROAD_TRAFFIC_SPD",)))
        weather = first(section.get("WEATHER_STTS"))
        if weather:
            t = when(weather, "WEATHER_TIME", tuple(f for f, _ in WEATHER))
            for field, quantity in WEATHER:
                reading(field, quantity, weather, t, parse=(lambda v, f: precipitation(v)) if field == "PRECIPITATION" else number)
        accidents = []
        for row in rows(section.get("ACDNT_CNTRL_STTS")):
            try:
                occurred, clear = kst_us(row.get("ACDNT_OCCR_DT"), "ACDNT_OCCR_DT"), kst_us(row.get("EXP_CLR_DT"), "EXP_CLR_DT")
            except BadValue:
                occurred = clear = None
            accidents.append(Accident(accident_id(row), place, row, occurred, clear))
        return accidents

    def read_forecast(self, place: Place, ppl: dict[str, Any]) -> None:
        """FCST_PPLTN: the next hours' congestion level and population range, as the service gives it."""
        hours = []
        for row in rows(ppl.get("FCST_PPLTN")):
            self.forecasts += 1
            try:
                t = kst_us(row.get("FCST_TIME"), "FCST_TIME")
                low, high = number(row.get("FCST_PPLTN_MIN"), "FCST_PPLTN_MIN"), number(row.get("FCST_PPLTN_MAX"), "FCST_PPLTN_MAX")
            except BadValue:
                t = None
            if t is None:
                self.forecast_unreadable += 1
                continue
            word = text(row.get("FCST_CONGEST_LVL"))
            hours.append({"time": _iso(t), "congestion_level": LEVEL.get(word), "congestion": word or None,
                          "population_min": low, "population_max": high})
        if hours:
            self.forecast[place.code] = {"area_nm": place.name, "issued": text(ppl.get("PPLTN_TIME")) or None, "hours": hours}

    async def fetch_place(self, client: SeoulClient, platform: Platform, place: Place, out: Rows) -> list[Accident] | None:
        """One place; None when it failed (its error is kept per place, the round goes on). The
        place is read on its own first, so an answer that turns out unreadable adds no rows."""
        mine = Rows(out.source)

        def read(answer: Answer) -> list[Accident]:
            return [] if answer.empty else self.read(place, answer.section, mine)

        ok, accidents = await fetch_part(client, platform, self.name, self.place_errors, place.name, read, SERVICE, 1, 5, place.name, root=ROOT)
        if not ok:
            return None
        out.extend(mine)
        return accidents

    async def poll(self, client: SeoulClient, platform: Platform) -> dict[str, Any]:
        out = Rows(f"{SOURCE_TAG}-{self.name}")
        gate = asyncio.Semaphore(self.concurrency)

        async def one(place: Place) -> tuple[Place, list[Accident] | None]:
            async with gate:
                return place, await self.fetch_place(client, platform, place, out)

        results = await asyncio.gather(*(one(p) for p in self.places))
        ok = [(p, acc) for p, acc in results if acc is not None]
        if not ok:  # every place failed: the source is down; say why with one place's error
            raise SeoulError(f"all {len(self.places)} places failed; e.g. {next(iter(self.place_errors.values()), 'no answer')}")
        submitted = await out.submit(platform, self.done)
        incidents = await self._accidents(platform, {p.code for p, _ in ok}, [a for _, acc in ok for a in acc])
        return {"places": len(self.places), "places_ok": len(ok), "place_errors": dict(list(self.place_errors.items())[:10]),
                "rows": len(out), "accepted": submitted.accepted, "rejected": submitted.rejected, "unchanged": submitted.unchanged,
                "missing_values": out.missing, "forecast_rows": self.forecasts,
                "forecast_rows_unreadable": self.forecast_unreadable, "places_with_forecast": len(self.forecast), "rejected_by_reason": submitted.reasons, **incidents}

    async def _accidents(self, platform: Platform, read_ok: set[str], accidents: list[Accident]) -> dict[str, int]:
        board, now_ms = platform.incidents, platform.clock.now_us() // 1000
        opened = closed = 0
        seen: dict[str, set[str]] = {}
        for acc in accidents:
            if acc.external_id in seen:  # listed by another place too: one case
                seen[acc.external_id].add(acc.place.code)
                continue
            seen[acc.external_id] = {acc.place.code}
            if acc.external_id in self.case_ids:
                continue
            if acc.clear_us is not None and acc.clear_us // 1000 <= now_ms:
                continue  # over before citywall saw it: not opened (a case it opened earlier is closed below)
            doc = await self._open(platform, acc, now_ms)
            if doc is not None:
                self.case_ids[acc.external_id] = doc["id"]
                opened += 0 if doc.get("duplicate") else 1
        active = [c for c in board.active() if c["source"] == INCIDENT_SOURCE]
        for case in active:
            ext = case["external_id"]
            self.case_ids.setdefault(ext, case["id"])
            note = None
            listed = [a for a in accidents if a.external_id == ext]
            if listed and any(a.clear_us is not None and a.clear_us // 1000 <= now_ms for a in listed):
                note = "예상 해제 시각 경과 (expected clearance time EXP_CLR_DT passed)"
            elif not listed:
                places = self.last_seen.get(ext)
                # Gone when every place that listed it answered without it (after a restart, when every place answered).
                if (places is not None and places <= read_ok) or (places is None and read_ok >= {p.code for p in self.places}):
                    note = "서울 실시간 도시데이터에서 해제됨 (no longer listed by Seoul citydata)"
            if note is None:
                continue
            try:
                await board.advance(case["id"], "closed", by=INCIDENT_SOURCE, note=note, at_ms=max(now_ms, case["updated_at_ms"]))
                closed += 1
            except (KeyError, TransitionError) as exc:
                log.info("citydata case %s not closed: %s", case["id"], exc)
        for ext, places in seen.items():
            self.last_seen[ext] = places
        for ext in [e for e in self.last_seen if e not in seen and (self.last_seen[e] <= read_ok)]:
            del self.last_seen[ext]
        # Memory stays the size of what is listed now: an accident no longer listed and no longer
        # open is forgotten (were it listed again, the board finds its case by external id).
        still = set(seen) | set(self.last_seen) | {c["external_id"] for c in active}
        self.case_ids = {e: i for e, i in self.case_ids.items() if e in still}
        self._bad_accidents &= still
        return {"incidents_opened": opened, "incidents_closed": closed, "accidents_listed": len(seen)}

    async def _open(self, platform: Platform, acc: Accident, now_ms: int) -> dict[str, Any] | None:
        row, place = acc.row, acc.place
        kind, severity = accident_kind(row)
        what = text(row.get("ACDNT_DTYPE")) or text(row.get("ACDNT_TYPE")) or "교통 통제"
        info = text(row.get("ACDNT_INFO"))
        try:
            lon, lat = number(row.get("ACDNT_X"), "ACDNT_X"), number(row.get("ACDNT_Y"), "ACDNT_Y")
            if lon is None or lat is None:
                raise BadValue("ACDNT_X/ACDNT_Y missing: an incident needs a place")
            at_ms = min(now_ms, acc.occurred_us // 1000) if acc.occurred_us is not None else now_ms
            return await platform.incidents.open(
                kind, lon, lat, severity, by=INCIDENT_SOURCE, title=f"{what}: {info}"[:200] if info else what,
                address=f"{place.name} 일대", at_ms=at_ms, source=INCIDENT_SOURCE, external_id=acc.external_id,
                note=f"서울 실시간 도시데이터 {place.name} ({place.code}); 예상 해제 {text(row.get('EXP_CLR_DT')) or '-'}",
            )
        except (BadValue, IncidentError) as exc:
            if acc.external_id not in self._bad_accidents:  # quarantined once, not every poll
                self._bad_accidents.add(acc.external_id)
                body = json.dumps(row, ensure_ascii=False).encode()
                await asyncio.wrap_future(platform.pipeline.quarantine_payload(
                    body, INCIDENT_SOURCE, "malformed", f"{SERVICE} {place.name}: accident not put on the board: {exc}"))
            return None

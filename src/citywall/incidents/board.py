"""The incident board: every case the city is handling, as the wall and the API see it.

A case is opened and moved only here. Each change is validated by the kind's steps
(`lifecycle.Incident.advance`) before anything is written, stored as an event on the writer thread,
written to the audit log, and only then applied in memory and announced on the bus, so what the wall
shows has always been committed. The board holds the open cases (and those closed in the last hours,
for the timeline); anything older is read back from the events.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any

from citywall.alerts.severity import SEVERITIES
from citywall.incidents.lifecycle import KINDS, Incident, Transition, TransitionError
from citywall.store.embedded import atomic
from citywall.store.events import EventTable

if TYPE_CHECKING:
    from citywall.platform import Platform

INCIDENT_CHANGED = "incident_changed"
OPENED, ADVANCED, CLOSED = "opened", "advanced", "closed"
RECENT_S = 6 * 3600  # closed cases stay on the board (not the map) this long
KST = timezone(timedelta(hours=9))


class IncidentError(ValueError):
    """A request the board refuses (unknown kind, place outside the city, ...); the message says why."""


@dataclass
class Case:
    """An incident with where it is and who handles it; `incident` holds its steps."""

    incident: Incident
    severity: str
    lon: float
    lat: float
    gu: str | None
    dong: str | None
    title: str = ""
    address: str = ""
    unit: str | None = None
    source: str = "api"
    simulated: bool = False
    external_id: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        inc, kind = self.incident, self.incident.kind
        step = kind.steps[kind.index(inc.step)]
        return {
            "id": inc.id, "kind": kind.code, "kind_ko": kind.ko, "kind_en": kind.en, "severity": self.severity,
            "title": self.title, "address": self.address, "lon": self.lon, "lat": self.lat, "gu": self.gu, "dong": self.dong,
            "unit": self.unit, "step": step.code, "step_ko": step.ko, "step_en": step.en, "active": inc.active,
            "opened_at_ms": inc.opened_at_ms, "updated_at_ms": inc.timeline[-1].at_ms, "source": self.source,
            "simulated": self.simulated, "external_id": self.external_id,
            "steps": [{"step": s.code, "ko": s.ko, "en": s.en} for s in kind.steps],
            "timeline": [_transition(kind, t) for t in inc.timeline],
        }


def _transition(kind: Any, t: Transition) -> dict[str, Any]:
    s = kind.steps[kind.index(t.step)]
    return {"step": t.step, "ko": s.ko, "en": s.en, "at_ms": t.at_ms, "by": t.by, "note": t.note}


def fold(events: list[dict[str, Any]]) -> dict[str, Case]:
    """Rebuild cases from their events (in write order): the live board at start, and replay."""
    cases: dict[str, Case] = {}
    for e in events:
        d = e["data"]
        if e["event"] == OPENED:
            inc = Incident(e["id"], KINDS[d["kind"]], e["at_us"] // 1000, e["by"])
            if e.get("note"):
                inc.timeline[0] = Transition(inc.timeline[0].step, inc.timeline[0].at_ms, e["by"], e["note"])
            cases[e["id"]] = Case(inc, d["severity"], d["lon"], d["lat"], d.get("gu"), d.get("dong"), d.get("title", ""),
                                  d.get("address", ""), d.get("unit"), d.get("source", "api"), bool(d.get("simulated")), d.get("external_id"))
        elif e["id"] in cases:
            # Stored events were validated when written; appended as they are (no re-validation on read).
            cases[e["id"]].incident.timeline.append(Transition(e["step"], e["at_us"] // 1000, e["by"], e.get("note") or ""))
    return cases


class IncidentBoard:
    def __init__(self, platform: Platform) -> None:
        self.platform = platform
        self.events = EventTable(platform.store, "incident_events")
        self.cases: dict[str, Case] = {}
        self.version = 0
        self._lock = asyncio.Lock()  # one change at a time: validation and write see the same state

    def load(self) -> None:
        """Open cases and recently closed ones, from the store (at start)."""
        now_us = self.platform.clock.now_us()
        ids = self.events.open_ids(opened=OPENED, closed=CLOSED, since_us=now_us - RECENT_S * 1_000_000)
        self.cases = fold(self.events.events(ids))
        self.version += 1

    async def reload(self, incident_id: str | None = None) -> dict[str, Any] | None:
        """Read the board (or one case) again from the store, after another process sharing it changed
        it: off the event loop, and under the board's lock so that no change of this process is between
        its decision and its write meanwhile. Returns the case asked for, if any."""
        async with self._lock:
            if incident_id is None:
                await asyncio.to_thread(self.load)
                return None
            case = fold(await asyncio.to_thread(self.events.events, [incident_id])).get(incident_id)
            if case is not None:
                self.cases[incident_id] = case
                self.version += 1
            return None if case is None else case.as_dict()

    # -- reading --------------------------------------------------------------------------
    def active(self) -> list[dict[str, Any]]:
        return [c.as_dict() for c in self.cases.values() if c.incident.active]

    def recent(self) -> list[dict[str, Any]]:
        """Open cases and those closed in the last RECENT_S, newest first."""
        cutoff = self.platform.clock.now_us() // 1000 - RECENT_S * 1000
        out = [c.as_dict() for c in self.cases.values() if c.incident.active or c.incident.timeline[-1].at_ms >= cutoff]
        return sorted(out, key=lambda d: d["updated_at_ms"], reverse=True)

    def get(self, incident_id: str) -> dict[str, Any] | None:
        case = self.cases.get(incident_id)
        if case is not None:
            return case.as_dict()
        stored = fold(self.events.events([incident_id]))
        return stored[incident_id].as_dict() if incident_id in stored else None

    def counts(self) -> dict[str, int]:
        """Active cases per kind (every kind listed, zero included: a zero is news on the wall)."""
        out = dict.fromkeys(KINDS, 0)
        for c in self.cases.values():
            if c.incident.active:
                out[c.incident.kind.code] += 1
        return out

    def find_external(self, source: str, external_id: str) -> str | None:
        """The id of the case a source sent with its own id, if the board has ever had it."""
        key = f"{source}:{external_id}"
        for case in list(self.cases.values()):  # a copy: called from a worker thread too (open)
            if case.external_id == external_id and case.source == source:
                return case.incident.id
        return self.events.find_external(key)

    def at(self, t_us: int) -> list[dict[str, Any]]:
        """The cases open at a past moment, as they stood then (replay)."""
        ids = self.events.open_ids(opened=OPENED, closed=CLOSED, until_us=t_us)
        return [c.as_dict() for c in fold(self.events.events(ids, until_us=t_us)).values() if c.incident.active]

    # -- changing -------------------------------------------------------------------------
    async def open(self, kind: str, lon: float, lat: float, severity: str, *, by: str, title: str = "", address: str = "",
                   unit: str | None = None, at_ms: int | None = None, note: str = "", source: str = "api", simulated: bool = False,
                   external_id: str | None = None, announce: bool = True) -> dict[str, Any]:
        """Open a case; a case sent again with the same source and external id is returned, not opened twice.
        With announce=False (a backlog) the change is not sent to live clients one by one: the sender
        resynchronises them once it is done (LiveHub.resync_all)."""
        p = self.platform
        if kind not in KINDS:
            raise IncidentError(f"unknown incident kind {kind!r}; kinds: {', '.join(KINDS)}")
        if severity not in SEVERITIES:
            raise IncidentError(f"unknown severity {severity!r}; use one of {', '.join(SEVERITIES)}")
        if not by.strip():
            raise IncidentError("opening a case needs who opened it")
        gu, dong = p.city.locate(lon, lat)
        if gu is None:
            raise IncidentError(f"({lon}, {lat}) is outside {p.city.name_en}; an incident needs a place inside the city")
        now_ms = p.clock.now_us() // 1000
        at_ms = now_ms if at_ms is None else int(at_ms)
        if at_ms > now_ms + 60_000:
            raise IncidentError(f"time {at_ms} is in the future (now {now_ms})")
        if unit is None:
            station = p.facilities.fire_station_for(gu)
            unit = station["name"] if station else None
        async with self._lock:
            if external_id is not None:
                # Off the event loop: on PostgreSQL the store's part of the lookup is a round trip.
                known = await asyncio.to_thread(self.find_external, source, external_id)
                if known is not None:
                    return await asyncio.to_thread(self.get, known) | {"duplicate": True}  # type: ignore[operator]
            # The opening event's seq, unique across processes sharing the store (off the event loop: on
            # PostgreSQL it is a round trip to the server).
            seq = (await asyncio.to_thread(self.events.reserve, 1))[0]
            incident_id = self._new_id(at_ms, seq)
            inc = Incident(incident_id, KINDS[kind], at_ms, by)
            if note:
                inc.timeline[0] = Transition(inc.step, at_ms, by, note)
            case = Case(inc, severity, lon, lat, gu, dong, title, address, unit, source, simulated, external_id)
            data = {"kind": kind, "severity": severity, "lon": lon, "lat": lat, "gu": gu, "dong": dong, "title": title, "address": address,
                    "unit": unit, "source": source, "simulated": simulated, "external_id": external_id}
            event = {"seq": seq, "id": incident_id, "at_us": at_ms * 1000, "event": OPENED, "by": by, "step": inc.step, "note": note, "data": data,
                     "external": None if external_id is None else f"{source}:{external_id}"}
            await self._write(event, "incident.open", incident_id, {"kind": kind, "severity": severity, "gu": gu, "simulated": simulated})
            self.cases[incident_id] = case
            return self._changed(case, "opened", announce)

    async def advance(self, incident_id: str, step: str, *, by: str, note: str = "", at_ms: int | None = None,
                      announce: bool = True) -> dict[str, Any]:
        """Move a case to its next step (TransitionError if the kind forbids it; nothing changes then)."""
        p = self.platform
        async with self._lock:
            case = self.cases.get(incident_id)
            if case is None:
                raise KeyError(incident_id)
            now_ms = p.clock.now_us() // 1000
            at_ms = now_ms if at_ms is None else int(at_ms)
            if at_ms > now_ms + 60_000:
                raise TransitionError(f"time {at_ms} is in the future (now {now_ms})")
            # Validate on a copy first: the case changes only once the event is stored.
            trial = Incident(case.incident.id, case.incident.kind, case.incident.opened_at_ms, case.incident.opened_by, list(case.incident.timeline))
            t = trial.advance(step, at_ms, by, note)
            event_name = CLOSED if not trial.active else ADVANCED
            event = {"id": incident_id, "at_us": at_ms * 1000, "event": event_name, "by": by, "step": step, "note": note, "data": {}}
            await self._write(event, "incident.advance", incident_id, {"step": step, "note": note})
            case.incident.timeline.append(t)
            return self._changed(case, event_name, announce)

    def _new_id(self, at_ms: int, seq: int) -> str:
        day = datetime.fromtimestamp(at_ms / 1000, KST).strftime("%Y%m%d")
        return f"INC-{day}-{seq:06d}"  # the seq of the opening event

    async def _write(self, event: dict[str, Any], action: str, target: str, detail: dict[str, Any]) -> None:
        p = self.platform

        def run() -> None:
            self.events.append([event], transaction=False)
            # Logged when it is recorded; the time the sender claims for the step is part of what.
            p.audit.append(event["by"], action, target, {**detail, "at_ms": event["at_us"] // 1000})

        # The event and its audit row are stored together or not at all.
        await asyncio.wrap_future(p.pipeline.call(lambda: atomic(p.store, run)))

    def _changed(self, case: Case, change: str, announce: bool = True) -> dict[str, Any]:
        self.version += 1
        doc = case.as_dict()
        if announce:
            self.platform.bus.fire(INCIDENT_CHANGED, {"change": change, "incident": doc})
        return doc

    def prune(self) -> None:
        """Forget closed cases older than RECENT_S (they stay in the store)."""
        cutoff = self.platform.clock.now_us() // 1000 - RECENT_S * 1000
        for key in [k for k, c in self.cases.items() if not c.incident.active and c.incident.timeline[-1].at_ms < cutoff]:
            del self.cases[key]


"""Alarms: what a rule's signal becomes once people have to deal with it.

An alarm has two independent halves of state, as in ISA-18.2 and the peers' alarm tables: whether
its condition still holds (active or cleared) and whether someone has seen it (unacked or acked).
It leaves the open list only when both are done (cleared and acked), so a condition that came and
went while nobody looked is still shown. The same rule and subject holding again while its alarm is
still active is that alarm, not a new one; once the alarm has cleared, holding again is a new alarm
(the cleared one stays on the list until acknowledged).

Alarms about the same district within SITUATION_GAP_S of each other form one situation: a
heat-wave afternoon is one situation with many alarms, not many separate lines. An unacknowledged
critical alarm escalates after `escalate_after_s` to a webhook (the duty officer's pager, a
messenger bot) once.

Every change is an event in `alarm_events` (so replay sees alarms as they were) and, when a person
made it, a row in the audit log.
"""

from __future__ import annotations

import asyncio
import json
import logging
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from citywall.alerts.severity import SEVERITIES, rank
from citywall.alerts.signal import Signal
from citywall.store.embedded import atomic
from citywall.store.events import EventTable

if TYPE_CHECKING:
    from citywall.platform import Platform

log = logging.getLogger(__name__)

ALARM_CHANGED = "alarm_changed"
SITUATION_GAP_S = 30 * 60
ESCALATION_RETRY_S = 60  # after a failed delivery; doubled after each further failure
ESCALATION_ATTEMPTS = 6  # then it is left to the wall (the failures are in the alarm's history and the audit log)
WRITE_ATTEMPTS = 5  # tries to write the rules' signals before giving up (the periodic reconcile repairs what is lost)
MAX_TEXT = 4000
PAST_S = 3600  # an alarm that cleared longer ago than this when the clear arrived closes without an ack
RAISED, CLEARED, ACKED, ASSIGNED, COMMENTED, ESCALATED, ESCALATION_FAILED, CLOSED = (
    "raised", "cleared", "acked", "assigned", "commented", "escalated", "escalation_failed", "closed")


class AlarmError(ValueError):
    """A request the alarm book refuses in the alarm's present state (already acknowledged); the message says why."""


class AlarmInputError(ValueError):
    """A request that is wrong whatever the alarm's state (an empty comment); the message says why."""


@dataclass
class Alarm:
    id: str
    rule: str
    subject: str
    severity: str
    category: str
    title_ko: str
    title_en: str
    message_ko: str
    message_en: str
    gu: str | None
    dong: str | None
    lon: float | None
    lat: float | None
    datastream: int | None
    value: float | None
    raised_at_ms: int
    situation: str
    active: bool = True
    acked: bool = False
    closed: bool = False  # off the list: cleared and acknowledged, or over before it arrived
    cleared_at_ms: int | None = None
    acked_by: str | None = None
    acked_at_ms: int | None = None
    assigned_to: str | None = None
    escalated_at_ms: int | None = None
    escalation_failed_at_ms: int | None = None
    escalation_failures: int = 0
    comments: list[dict[str, Any]] = field(default_factory=list)
    history: list[dict[str, Any]] = field(default_factory=list)

    @property
    def state(self) -> str:
        return f"{'active' if self.active else 'cleared'}_{'acked' if self.acked else 'unacked'}"

    @property
    def open(self) -> bool:
        return not self.closed and (self.active or not self.acked)

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id, "rule": self.rule, "subject": self.subject, "severity": self.severity, "category": self.category,
            "title_ko": self.title_ko, "title_en": self.title_en, "message_ko": self.message_ko, "message_en": self.message_en,
            "gu": self.gu, "dong": self.dong, "lon": self.lon, "lat": self.lat, "datastream": self.datastream, "value": self.value,
            "state": self.state, "active": self.active, "acked": self.acked, "open": self.open, "situation": self.situation,
            "raised_at_ms": self.raised_at_ms, "cleared_at_ms": self.cleared_at_ms, "acked_by": self.acked_by,
            "acked_at_ms": self.acked_at_ms, "assigned_to": self.assigned_to, "escalated_at_ms": self.escalated_at_ms,
            "escalation_failed_at_ms": self.escalation_failed_at_ms,
            "comments": list(self.comments), "history": list(self.history),
        }


def apply_event(alarms: dict[str, Alarm], e: dict[str, Any]) -> Alarm | None:
    """Apply one stored event to the alarms it concerns: the single place alarm state changes, used
    live (after the event is written) and to rebuild the alarms at start and at a past moment."""
    d, at_ms, who = e["data"], e["at_us"] // 1000, e["by"]
    if e["event"] == RAISED:
        s = d["signal"]
        a = Alarm(e["id"], s["rule"], s["subject"], s["severity"], s.get("category", ""), s["title_ko"], s["title_en"],
                  s.get("message_ko", ""), s.get("message_en", ""), s.get("gu"), s.get("dong"), s.get("lon"), s.get("lat"),
                  s.get("datastream"), s.get("value"), at_ms, d["situation"])
        alarms[a.id] = a
    else:
        a = alarms.get(e["id"])
        if a is None:
            return None
        if e["event"] == CLEARED:
            a.active, a.cleared_at_ms = False, at_ms
            if d.get("value") is not None:
                a.value = d["value"]
        elif e["event"] == ACKED:
            a.acked, a.acked_by, a.acked_at_ms = True, who, at_ms
        elif e["event"] == ASSIGNED:
            a.assigned_to = d.get("to")
        elif e["event"] == COMMENTED:
            a.comments.append({"by": who, "at_ms": at_ms, "text": d.get("text", "")})
        elif e["event"] == ESCALATED:
            a.escalated_at_ms = at_ms
        elif e["event"] == ESCALATION_FAILED:
            a.escalation_failed_at_ms = at_ms
            a.escalation_failures += 1
        elif e["event"] == CLOSED:
            a.closed = True
    a.history.append({"event": e["event"], "at_ms": at_ms, "by": who, **({"detail": d["detail"]} if "detail" in d else {})})
    return a


def fold(events: list[dict[str, Any]]) -> dict[str, Alarm]:
    alarms: dict[str, Alarm] = {}
    for e in events:
        apply_event(alarms, e)
    return alarms


class AlarmBook:
    def __init__(self, platform: Platform, *, escalate_after_s: float = 300.0, webhook: str | None = None,
                 escalate_severity: str = "critical") -> None:
        rank(escalate_severity)
        self.platform = platform
        self.events = EventTable(platform.store, "alarm_events")
        self.alarms: dict[str, Alarm] = {}
        self.escalate_after_s, self.webhook, self.escalate_severity = escalate_after_s, webhook, escalate_severity
        self.version = 0
        self._situations: dict[str, tuple[str, int]] = {}  # gu -> (situation id, last raise ms)
        self._queue: asyncio.Queue[list[Signal]] | None = None
        # One change at a time: every change decides from the alarms' state and then writes, so two
        # changes must not both decide before either has written (two acks, an ack and a clear).
        self._lock = asyncio.Lock()

    def load(self) -> None:
        ids = self.events.open_ids(opened=RAISED, closed=CLOSED)
        self.alarms = fold(self.events.events(ids))
        self._note_situations(self.alarms.values())
        self.version += 1

    def _note_situations(self, alarms: Any) -> None:
        for a in sorted(alarms, key=lambda a: a.raised_at_ms):
            if a.gu and a.raised_at_ms >= self._situations.get(a.gu, ("", -1))[1]:
                self._situations[a.gu] = (a.situation, a.raised_at_ms)

    async def reload(self, alarm_id: str | None = None) -> dict[str, Any] | None:
        """Read the book (or one alarm) again from the store, after another process sharing it changed
        it: off the event loop, and under the book's lock so that no change of this process is between
        its decision and its write meanwhile. Returns the alarm asked for, if any."""
        async with self._lock:
            if alarm_id is None:
                await asyncio.to_thread(self.load)
                return None
            a = fold(await asyncio.to_thread(self.events.events, [alarm_id])).get(alarm_id)
            if a is not None:
                if a.open:
                    self.alarms[alarm_id] = a
                    self._note_situations([a])
                else:  # the book holds open alarms only (as _commit keeps it)
                    self.alarms.pop(alarm_id, None)
                self.version += 1
            return None if a is None else a.as_dict()

    # -- reading --------------------------------------------------------------------------
    def open_alarms(self) -> list[dict[str, Any]]:
        """Open alarms, most severe and newest first."""
        out = [a for a in self.alarms.values() if a.open]
        out.sort(key=lambda a: (-rank(a.severity), -a.raised_at_ms))
        return [a.as_dict() for a in out]

    def get(self, alarm_id: str) -> dict[str, Any] | None:
        a = self.alarms.get(alarm_id)
        if a is None:
            stored = fold(self.events.events([alarm_id]))
            a = stored.get(alarm_id)
        return None if a is None else a.as_dict()

    def situations(self) -> list[dict[str, Any]]:
        """Open alarms grouped by situation, the worst first."""
        groups: dict[str, list[Alarm]] = {}
        for a in self.alarms.values():
            if a.open:
                groups.setdefault(a.situation, []).append(a)
        out = []
        for sid, members in groups.items():
            worst = max(members, key=lambda a: rank(a.severity))
            out.append({"id": sid, "gu": members[0].gu, "severity": worst.severity, "title_ko": worst.title_ko, "title_en": worst.title_en,
                        "first_ms": min(a.raised_at_ms for a in members), "last_ms": max(a.raised_at_ms for a in members),
                        "alarms": [a.id for a in sorted(members, key=lambda a: a.raised_at_ms)],
                        "unacked": sum(not a.acked for a in members), "active": sum(a.active for a in members)})
        out.sort(key=lambda s: (-rank(s["severity"]), -s["last_ms"]))
        return out

    def near(self, gu: str | None, since_ms: int) -> list[dict[str, Any]]:
        """Alarms in a district, open or raised since a time (an incident's related alerts)."""
        return [a.as_dict() for a in self.alarms.values() if a.gu == gu and (a.open or a.raised_at_ms >= since_ms)]

    def at(self, t_us: int) -> list[dict[str, Any]]:
        """The alarms open at a past moment, as they stood then (replay)."""
        ids = self.events.open_ids(opened=RAISED, closed=CLOSED, until_us=t_us)
        return [a.as_dict() for a in fold(self.events.events(ids, until_us=t_us)).values() if a.open]

    def counts(self) -> dict[str, int]:
        out = {s: 0 for s in SEVERITIES}
        for a in self.alarms.values():
            if a.open:
                out[a.severity] += 1
        return out

    # -- signals from the rules -----------------------------------------------------------
    def apply_all(self, signals: list[Signal]) -> None:
        """Take signals from the rule engine (on the event loop); written in order by one task."""
        if not signals:
            return
        if self._queue is None:
            self._queue = asyncio.Queue()
            asyncio.get_running_loop().create_task(self._drain(), name="citywall-alarms")
        self._queue.put_nowait(signals)

    async def _drain(self) -> None:
        assert self._queue is not None
        while True:
            signals = await self._queue.get()
            for attempt in range(WRITE_ATTEMPTS):
                try:
                    await self.apply(signals)
                    break
                except Exception:
                    log.exception("could not record %d alarm signals (attempt %d of %d)", len(signals), attempt + 1, WRITE_ATTEMPTS)
                    await asyncio.sleep(min(30.0, 2.0**attempt))

    @property
    def pending(self) -> int:
        """Signals taken from the rules and not yet written."""
        return 0 if self._queue is None else self._queue.qsize()

    async def apply(self, signals: list[Signal]) -> list[dict[str, Any]]:
        """Raise or clear alarms for signals; returns the alarms that changed."""
        async with self._lock:
            return await self._apply(signals)

    async def _apply(self, signals: list[Signal]) -> list[dict[str, Any]]:
        events: list[dict[str, Any]] = []
        open_by_key = {(a.rule, a.subject): a for a in self.alarms.values() if a.active}
        now_ms = self.platform.clock.now_us() // 1000
        batch: set[str] = set()  # situations given to alarms raised in this call (not in self.alarms yet)
        for s in signals:
            key = (s.rule, s.subject)
            current = open_by_key.get(key)
            if s.active and current is None:
                rank(s.severity)
                # The raising event's seq, unique across processes sharing the store (off the event loop:
                # on PostgreSQL it is a round trip to the server).
                seq = (await asyncio.to_thread(self.events.reserve, 1))[0]
                alarm_id = f"ALM-{seq:07d}"
                situation = self._situation(s.gu, s.at_ms, alarm_id, batch)
                events.append({"seq": seq, "id": alarm_id, "at_us": s.at_ms * 1000, "event": RAISED, "by": f"rule:{s.rule}",
                               "data": {"signal": _signal_dict(s), "situation": situation}})
                open_by_key[key] = Alarm(alarm_id, s.rule, s.subject, s.severity, "", "", "", "", "", s.gu, None, None, None, None, None,
                                         s.at_ms, situation)  # a placeholder so a repeat in this batch is not raised twice
            elif not s.active and current is not None:
                events.append({"id": current.id, "at_us": s.at_ms * 1000, "event": CLEARED, "by": f"rule:{s.rule}",
                               "data": {"value": s.value}})
                del open_by_key[key]
                if current.acked:
                    events.append({"id": current.id, "at_us": s.at_ms * 1000, "event": CLOSED, "by": f"rule:{s.rule}", "data": {}})
                elif now_ms - s.at_ms > PAST_S * 1000:
                    # Over before anyone could have seen it (a backfill, a gateway's old buffer): kept in the
                    # store and in replay, but not left on the list for someone to acknowledge.
                    events.append({"id": current.id, "at_us": s.at_ms * 1000, "event": CLOSED, "by": "history",
                                   "data": {"detail": f"ended more than {PAST_S // 60} minutes before it arrived"}})
        return await self._commit(events)

    async def reconcile(self, held: set[tuple[str, str]], raised_before_ms: int) -> list[dict[str, Any]]:
        """Clear active alarms raised before a restart whose condition the rules no longer hold.

        Rule state lives in memory; after a restart the rules learn again from the live stream. An
        alarm still active in the book that no rule holds once they have had time to learn would
        otherwise stay active for ever, since nothing would ever clear it.
        """
        async with self._lock:
            now_ms = self.platform.clock.now_us() // 1000
            stale = [a for a in self.alarms.values() if a.active and a.raised_at_ms < raised_before_ms and (a.rule, a.subject) not in held]
            events = [{"id": a.id, "at_us": now_ms * 1000, "event": CLEARED, "by": "reconcile",
                       "data": {"value": None, "detail": "no rule holds this condition any more (after a restart or a lost write)"}}
                      for a in stale]
            events += [{"id": a.id, "at_us": now_ms * 1000, "event": CLOSED, "by": "reconcile", "data": {}} for a in stale if a.acked]
            return await self._commit(events)

    def missing(self, active: list[Signal]) -> list[Signal]:
        """Of the rules' active conditions, those with no active alarm (a raise whose write was lost)."""
        have = {(a.rule, a.subject) for a in self.alarms.values() if a.active}
        return [s for s in active if (s.rule, s.subject) not in have]

    def _situation(self, gu: str | None, at_ms: int, alarm_id: str, batch: set[str]) -> str:
        """The open situation of the gu if its latest alarm is recent enough, else a new one."""
        if gu is None:
            return f"SIT-{alarm_id[4:]}"
        known = self._situations.get(gu)
        if known is not None and abs(at_ms - known[1]) <= SITUATION_GAP_S * 1000 and (
                known[0] in batch or any(a.open and a.situation == known[0] for a in self.alarms.values())):
            sid = known[0]
        else:
            sid = f"SIT-{alarm_id[4:]}"
        self._situations[gu] = (sid, max(at_ms, known[1]) if known and known[0] == sid else at_ms)
        batch.add(sid)
        return sid

    # -- people ---------------------------------------------------------------------------
    async def ack(self, alarm_id: str, by: str, note: str = "") -> dict[str, Any]:
        if len(note) > MAX_TEXT:
            raise AlarmInputError(f"a note is at most {MAX_TEXT:,} characters")
        async with self._lock:
            a = self._open(alarm_id)
            if a.acked:
                raise AlarmError(f"{alarm_id} was already acknowledged by {a.acked_by}")
            now = self.platform.clock.now_us()
            events = [{"id": alarm_id, "at_us": now, "event": ACKED, "by": by, "data": {"detail": note} if note else {}}]
            if not a.active:
                events.append({"id": alarm_id, "at_us": now, "event": CLOSED, "by": by, "data": {}})
            return (await self._commit(events, audit=("alarm.ack", {"note": note})))[0]

    async def assign(self, alarm_id: str, to: str, by: str) -> dict[str, Any]:
        if not to.strip() or len(to) > 200:
            raise AlarmInputError("assign to whom? give a user name (at most 200 characters)")
        async with self._lock:
            self._open(alarm_id)
            event = {"id": alarm_id, "at_us": self.platform.clock.now_us(), "event": ASSIGNED, "by": by, "data": {"to": to, "detail": to}}
            return (await self._commit([event], audit=("alarm.assign", {"to": to})))[0]

    async def comment(self, alarm_id: str, text: str, by: str) -> dict[str, Any]:
        if not text.strip():
            raise AlarmInputError("an empty comment says nothing")
        if len(text) > MAX_TEXT:
            raise AlarmInputError(f"a comment is at most {MAX_TEXT:,} characters")
        async with self._lock:
            self._open(alarm_id)
            event = {"id": alarm_id, "at_us": self.platform.clock.now_us(), "event": COMMENTED, "by": by, "data": {"text": text}}
            return (await self._commit([event], audit=("alarm.comment", {"text": text})))[0]

    def _open(self, alarm_id: str) -> Alarm:
        a = self.alarms.get(alarm_id)
        if a is None or not a.open:
            raise KeyError(alarm_id)
        return a

    # -- escalation -----------------------------------------------------------------------
    async def escalate_due(self) -> list[dict[str, Any]]:
        """Escalate unacknowledged alarms at or above the escalation severity that waited too long."""
        out = []
        for a in self._due(self.platform.clock.now_us() // 1000):
            # The webhook is called outside the lock (it may take seconds); the result is written only
            # if the alarm still needs it then (nobody acknowledged it meanwhile).
            if self.webhook:
                ok, detail = await asyncio.to_thread(_post, self.webhook, {"type": "citywall.alarm.escalated", "alarm": a.as_dict()})
            else:
                ok, detail = True, "no webhook configured: shown on the wall only"
            async with self._lock:
                now_ms = self.platform.clock.now_us() // 1000
                if a.id not in {d.id for d in self._due(now_ms)}:
                    continue
                event = {"id": a.id, "at_us": now_ms * 1000, "event": ESCALATED if ok else ESCALATION_FAILED, "by": "escalation",
                         "data": {"detail": detail}}
                out += await self._commit([event], audit=("alarm.escalate" if ok else "alarm.escalate_failed", {"detail": detail}))
        return out

    def _due(self, now_ms: int) -> list[Alarm]:
        """Unacknowledged alarms at or above the escalation severity that waited too long; after a
        failed delivery the next try waits twice as long as the one before, up to ESCALATION_ATTEMPTS."""
        return [a for a in self.alarms.values() if a.open and not a.acked and a.escalated_at_ms is None
                and rank(a.severity) >= rank(self.escalate_severity) and now_ms - a.raised_at_ms >= self.escalate_after_s * 1000
                and a.escalation_failures < ESCALATION_ATTEMPTS
                and (a.escalation_failed_at_ms is None
                     or now_ms - a.escalation_failed_at_ms >= ESCALATION_RETRY_S * 1000 * 2 ** (a.escalation_failures - 1))]

    async def run_escalation(self, period_s: float = 5.0) -> None:
        while True:
            await asyncio.sleep(period_s)
            try:
                await self.escalate_due()
            except Exception:
                log.exception("escalation check failed; retrying")

    # -- the one way to change ------------------------------------------------------------
    async def _commit(self, events: list[dict[str, Any]], audit: tuple[str, dict[str, Any]] | None = None) -> list[dict[str, Any]]:
        if not events:
            return []
        p = self.platform

        def run() -> None:
            self.events.append(events, transaction=False)
            if audit is not None:
                p.audit.append(events[0]["by"], audit[0], events[0]["id"], audit[1])

        await asyncio.wrap_future(p.pipeline.call(lambda: atomic(p.store, run)))
        changed: dict[str, Alarm] = {}
        for e in events:
            a = apply_event(self.alarms, e)
            if a is not None:
                changed[a.id] = a
        for a in changed.values():
            if not a.open:
                del self.alarms[a.id]
        self.version += 1
        docs = [a.as_dict() for a in changed.values()]
        for doc in docs:
            p.bus.fire(ALARM_CHANGED, doc)
        return docs


def _signal_dict(s: Signal) -> dict[str, Any]:
    return {f: getattr(s, f) for f in s.__struct_fields__}


def _post(url: str, body: dict[str, Any]) -> tuple[bool, str]:
    """POST JSON to the escalation webhook; (delivered, what happened)."""
    request = urllib.request.Request(url, data=json.dumps(body, ensure_ascii=False).encode(), method="POST",
                                     headers={"Content-Type": "application/json", "User-Agent": "citywall-escalation"})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 - an operator-configured URL
            return 200 <= response.status < 300, f"webhook answered {response.status}"
    except (urllib.error.URLError, OSError, ValueError) as exc:
        return False, f"webhook failed: {exc}"

"""The simulator feed: registers simulated Seoul and keeps it reporting, in platform time.

Run loop: register every Thing (idempotent by key, so a restart reuses the ids), backfill the
recent past where the store has nothing newer, then for each component emit every tick of its
reporting grid that has come due, and sleep (in platform time) until the next one. Every value
is a pure function of (seed, datastream, time), so neither a restart nor `--speed` changes what
a datastream reads at a given instant.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from citywall.city.model import City
from citywall.feeds.simulator.air import AirModel, AirStations
from citywall.feeds.simulator.episodes import KINDS, EpisodeCalendar, forced_episode
from citywall.feeds.simulator.hotspots import Hotspots
from citywall.feeds.simulator.incidents import IncidentEvent, IncidentModel
from citywall.feeds.simulator.roads import Roads
from citywall.feeds.simulator.sdot import SDoT
from citywall.feeds.simulator.timebase import HOUR_US, grid
from citywall.feeds.simulator.weather import WeatherModel, WeatherStation
from citywall.incidents.lifecycle import TransitionError
from citywall.ingest.batch import NO_TIME, ObservationBatch
from citywall.observations.model import ThingIn

if TYPE_CHECKING:
    from citywall.platform import Platform

log = logging.getLogger(__name__)

COMPONENTS = ("air", "sdot", "roads", "hotspots", "weather")
INCIDENT_MARK = "simulator_incidents_until_ms"  # store meta: simulated incident events up to here are applied
INCIDENT_BACKFILL_MS = 6 * 3600 * 1000  # on a fresh store, start this far back so running cases are on the board
INCIDENT_PERIOD_S = 10.0  # platform seconds between looks at the incident model
INCIDENT_LIVE_MS = 60_000  # events older than this when applied are a backlog: applied quietly, walls resynchronised once


class Component(Protocol):
    kind: str
    interval_s: float
    keys: list[str]

    def things(self) -> list[ThingIn]: ...

    def generate(self, ticks: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]: ...


@dataclass
class _Stream:
    """A component and its bookkeeping inside a running feed."""

    name: str
    comp: Component
    backfill_s: float
    ids: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=np.int64))
    things: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=np.int64))  # thing id per datastream
    last_tick_us: int = 0
    stored_until_us: int = 0  # the newest time already in the store for any of its datastreams


def _parse_time(value: Any) -> int:
    """Microseconds since the epoch from epoch seconds or ISO 8601 with an offset."""
    if isinstance(value, (int, float)):
        return int(value * 1_000_000)
    dt = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    if dt.tzinfo is None:
        raise ValueError(f"episode_start {value!r} needs a UTC offset (e.g. +09:00)")
    return int(dt.timestamp() * 1_000_000)


def _iso(us: int | None) -> str | None:
    return None if not us else datetime.fromtimestamp(us / 1e6, timezone.utc).isoformat(timespec="seconds")


class SimulatorFeed:
    """Simulated Seoul: 25 air stations, ~1,100 S-DoT sensors, road links, the 116 hotspots and
    the KMA Seoul weather station. Options (all keyword, via `Settings.feed_options`):

    sdot_count            number of S-DoT sensors (default 1100)
    backfill_hours        history filled in on start for hourly and 5-minute streams (default 24)
    sdot_backfill_hours   history filled in on start for S-DoT (default 1)
    components            which parts run, e.g. ["air", "roads"] (default: all of COMPONENTS)
    episodes              the seeded calendar of episodes on (default True)
    episode               force an episode: "yellow_dust", "winter_smog" or "ozone"
                          (`citywall up --feed-option episode=yellow_dust`)
    episode_start         when the forced episode reaches its plateau (ISO 8601 or epoch seconds;
                          default: the hour the feed starts)
    episode_hours         how long the plateau lasts (default 12 h dust, 36 h smog, 48 h ozone)
    episode_peak          its strength (PM10 excess ug/m3 for dust, PM2.5 excess for smog, ppm O3)
    batch_rows            rows per submitted batch (default 50000)
    incidents             simulate fire, rescue, EMS and disaster cases (default True; see docs/simulator.md)
    incident_rate         scale the incident rates (default 1.0: Seoul's; 0 for none)
    """

    name = "simulator"
    simulated = True

    def __init__(self, seed: int = 2017, *, sdot_count: int = 1100, backfill_hours: float = 24.0, sdot_backfill_hours: float = 1.0,
                 components: list[str] | tuple[str, ...] | str | None = None, episodes: bool = True, episode: str | None = None,
                 episode_start: Any = None, episode_hours: float | None = None, episode_peak: float | None = None,
                 batch_rows: int = 50_000, incidents: bool = True, incident_rate: float = 1.0) -> None:
        self.seed = int(seed)
        self.sdot_count = int(sdot_count)
        self.backfill_hours = float(backfill_hours)
        self.sdot_backfill_hours = float(sdot_backfill_hours)
        if isinstance(components, str):
            components = [c.strip() for c in components.split(",") if c.strip()]
        self.components = tuple(components) if components else COMPONENTS
        unknown = set(self.components) - set(COMPONENTS)
        if unknown:
            raise ValueError(f"unknown simulator components {sorted(unknown)}; known: {', '.join(COMPONENTS)}")
        self.calendar_on = bool(episodes)
        self.episode = episode or None
        if self.episode is not None and self.episode not in KINDS:
            raise ValueError(f"unknown episode {self.episode!r}; choose one of {', '.join(KINDS)}")
        self.episode_start = None if episode_start is None else _parse_time(episode_start)
        self.episode_hours = episode_hours
        self.episode_peak = episode_peak
        self.batch_rows = max(1000, int(batch_rows))
        self.incidents_on = bool(incidents) and float(incident_rate) > 0
        self.incident_rate = float(incident_rate)
        self.incident_model: IncidentModel | None = None
        self.streams: dict[str, _Stream] = {}
        self.calendar: EpisodeCalendar | None = None
        self.weather: WeatherModel | None = None
        self.air: AirModel | None = None
        self._platform: Platform | None = None
        self._stats: dict[str, Any] = {"running": False, "phase": "idle", "batches": 0, "rows_sent": 0, "rows_accepted": 0,
                                       "rows_rejected": 0, "skipped_ticks": 0, "errors": 0}
        self._rejected: Counter[str] = Counter()
        self._newest_us = 0
        self._stored: np.ndarray | None = None
        self._last_batch_real = 0.0
        self._started_real = 0.0

    # -- the model ----------------------------------------------------------------------
    def build(self, city: City, now_us: int | None = None) -> SimulatorFeed:
        """Create the components for a city (the platform's; tests may call this directly)."""
        forced = []
        if self.episode:
            start = self.episode_start
            if start is None:
                now_us = int(time.time() * 1e6) if now_us is None else now_us
                start = now_us - now_us % HOUR_US
            forced.append(forced_episode(self.episode, start, self.episode_hours, self.episode_peak))
        self.calendar = EpisodeCalendar(self.seed, forced, calendar=self.calendar_on)
        self.weather = WeatherModel(self.seed)
        self.air = AirModel(self.seed, city, self.weather, self.calendar)
        made: dict[str, tuple[Component, float]] = {}
        if "air" in self.components:
            made["air"] = (AirStations(self.air), self.backfill_hours)
        if "sdot" in self.components:
            made["sdot"] = (SDoT(self.seed, city, self.weather, self.air, self.sdot_count), self.sdot_backfill_hours)
        if "roads" in self.components:
            made["roads"] = (Roads(self.seed, self.weather), self.backfill_hours)
        if "hotspots" in self.components:
            made["hotspots"] = (Hotspots(self.seed, self.weather), self.backfill_hours)
        if "weather" in self.components:
            made["weather"] = (WeatherStation(self.weather), self.backfill_hours)
        self.streams = {name: _Stream(name, comp, hours * 3600.0) for name, (comp, hours) in made.items()}
        if self.incidents_on:
            self.incident_model = IncidentModel(city, self.seed, rate_scale=self.incident_rate)
        return self

    def things(self) -> list[ThingIn]:
        return [t for s in self.streams.values() for t in s.comp.things()]

    def generate(self, name: str, ticks: np.ndarray) -> tuple[list[str], np.ndarray, np.ndarray, np.ndarray]:
        """(datastream keys, key index per row, time µs, value) of one component at the ticks."""
        comp = self.streams[name].comp
        idx, t, v = comp.generate(np.asarray(ticks, dtype=np.int64))
        return comp.keys, idx, t, v

    # -- the feed -----------------------------------------------------------------------
    async def run(self, platform: Platform) -> None:
        self._platform = platform
        self._stats.update(running=True, phase="starting", started_at=_iso(platform.clock.now_us()))
        self._started_real = time.monotonic()
        try:
            now = platform.clock.now_us()
            if not self.streams:
                await asyncio.to_thread(self.build, platform.city, now)
            await self._register(platform)
            incidents = asyncio.create_task(self._incidents(platform), name="simulator-incidents") if self.incident_model else None
            try:
                self._stats["phase"] = "backfill"
                await self._backfill(platform)
                self._stats["phase"] = "live"
                await self._live(platform)
            finally:
                if incidents is not None:
                    incidents.cancel()
        finally:
            self._stats.update(running=False, phase="stopped")

    async def _incidents(self, platform: Platform) -> None:
        """Open and move simulated cases through the incident board, as a 119 dispatch system would.

        Starts from where the last run stopped (kept in the store), or a few hours back on a fresh
        store so that the cases running now are on the board; a case the board already has (after a
        restart) is not opened twice, and a step it already took is passed over.
        """
        assert self.incident_model is not None
        model, board, clock = self.incident_model, platform.incidents, platform.clock
        ids: dict[str, str] = {}
        mark = platform.store.get_meta(INCIDENT_MARK)
        now_ms = clock.now_us() // 1000
        done_ms = max(int(mark), now_ms - INCIDENT_BACKFILL_MS) if mark else now_ms - INCIDENT_BACKFILL_MS
        if not mark or int(mark) < done_ms:  # a long stop (or one before the first round was kept)
            await self._close_ended(platform, model.active_at(now_ms), now_ms)
        while True:
            now_ms = clock.now_us() // 1000
            if now_ms > done_ms:
                try:
                    events = await asyncio.to_thread(model.events, done_ms, now_ms)
                    # A backlog (the hours before a start) is applied quietly and the walls resynchronised
                    # once: a thousand messages in a few seconds would hold up the live values on every wall.
                    backlog = False
                    for ev in events:
                        quiet = now_ms - ev.at_ms > INCIDENT_LIVE_MS
                        backlog |= quiet
                        await self._incident_event(board, ev, ids, announce=not quiet)
                    if backlog:
                        platform.hub.resync_all()
                    done_ms = now_ms
                    await asyncio.wrap_future(platform.pipeline.call(lambda: platform.store.set_meta(INCIDENT_MARK, str(now_ms))))
                    self._stats["incident_events"] = self._stats.get("incident_events", 0) + len(events)
                except asyncio.CancelledError:
                    raise
                except Exception:
                    self._stats["errors"] += 1
                    log.exception("simulated incidents failed; retrying")
            await asyncio.sleep(max(0.5, clock.sleep_for(INCIDENT_PERIOD_S)))

    async def _close_ended(self, platform: Platform, running: list[dict[str, Any]], now_ms: int) -> None:
        """After a stop longer than the look-back, the closing steps of the cases open at the stop are
        not replayed: close, with a note saying so, the simulated cases the model no longer has open."""
        still = {c["external_id"] for c in running}
        board = platform.incidents
        for case in [c for c in board.active() if c["source"] == "simulator" and c["external_id"] not in still]:
            closing = case["steps"][-1]["step"]
            try:
                await board.advance(case["id"], closing, by="simulator", note="종료: citywall 중지 중 종결된 모의 사건 (ended while citywall was stopped)",
                                    at_ms=now_ms)
            except (KeyError, TransitionError):
                pass

    async def _incident_event(self, board: Any, ev: IncidentEvent, ids: dict[str, str], announce: bool = True) -> None:
        if ev.action == "open":
            doc = await board.open(ev.kind, ev.lon, ev.lat, ev.severity, by=ev.by, title=ev.title, address=ev.address, unit=ev.unit,
                                   at_ms=ev.at_ms, note=ev.note, source="simulator", simulated=True, external_id=ev.external_id,
                                   announce=announce)
            ids[ev.external_id] = doc["id"]
            return
        incident_id = ids.get(ev.external_id) or board.find_external("simulator", ev.external_id)
        if incident_id is None:
            return  # opened before this run looked back: not on the board
        ids[ev.external_id] = incident_id
        try:
            await board.advance(incident_id, ev.step, by=ev.by, note=ev.note, at_ms=ev.at_ms, announce=announce)
        except (KeyError, TransitionError):
            pass  # closed already, or this step was taken before a restart

    async def _register(self, platform: Platform) -> None:
        things = await asyncio.to_thread(self.things)
        await platform.register(things)
        by_key, datastreams = platform.registry.ds_by_key, platform.registry.datastreams
        for s in self.streams.values():
            s.ids = np.array([by_key[k] for k in s.comp.keys], dtype=np.int64)
            s.things = np.array([datastreams[i].thing_id for i in s.ids.tolist()], dtype=np.int64)
        kinds = Counter(t.kind for t in things)
        self._stats.update(things=dict(kinds), datastreams=sum(len(s.ids) for s in self.streams.values()))

    async def _backfill(self, platform: Platform) -> None:
        now = platform.clock.now_us()
        # What the store already has, per datastream, raised to the newest of its Thing: a sensor
        # whose sentinel readings were refused is not asked to send them again after a restart.
        newest = platform.live.newest_times().copy()
        stored = newest.copy()
        for s in self.streams.values():
            if len(s.ids):
                per_thing = np.full(int(s.things.max()) + 1, NO_TIME, dtype=np.int64)
                np.maximum.at(per_thing, s.things, newest[s.ids])
                stored[s.ids] = per_thing[s.things]
        self._stored = stored
        for s in self.streams.values():
            s.last_tick_us = now - now % int(s.comp.interval_s * 1e6)
            s.stored_until_us = int(stored[s.ids].max()) if len(s.ids) else 0
            ticks = grid(now - int(s.backfill_s * 1e6), now, s.comp.interval_s) if s.backfill_s > 0 else np.empty(0, np.int64)
            # Only what the store lacks: a restart fills the gap, a fresh store the whole window.
            ticks = ticks[ticks > stored[s.ids].min()] if len(ticks) and len(s.ids) else ticks
            await self._emit(platform, s, ticks, skip_older=stored)

    async def _live(self, platform: Platform) -> None:
        clock = platform.clock
        while True:
            now = clock.now_us()
            for s in self.streams.values():
                ticks = grid(s.last_tick_us, now, s.comp.interval_s)
                if not len(ticks):
                    continue
                newest_tick = int(ticks[-1])
                # Far behind (a very high --speed, a stalled store): skip to the recent past.
                window = max(s.backfill_s, 6 * s.comp.interval_s)
                late = ticks < now - int(window * 1e6)
                if late.any():
                    self._stats["skipped_ticks"] += int(late.sum())
                    ticks = ticks[~late]
                # A store written by an earlier, faster run can be ahead of this clock: skip what it has.
                stored = self._stored if len(ticks) and ticks[0] <= s.stored_until_us else None
                await self._emit(platform, s, ticks, skip_older=stored)
                s.last_tick_us = newest_tick
            now = clock.now_us()
            overdue = min((s.last_tick_us + int(s.comp.interval_s * 1e6) for s in self.streams.values()), default=now)
            self._stats["lag_s"] = round(max(0, now - overdue) / 1e6, 1)
            next_due = min((s.last_tick_us + int(s.comp.interval_s * 1e6) for s in self.streams.values()), default=now + 60_000_000)
            await asyncio.sleep(max(0.01, clock.sleep_for(max(0.0, (next_due - clock.now_us()) / 1e6))))

    async def _emit(self, platform: Platform, s: _Stream, ticks: np.ndarray, skip_older: np.ndarray | None = None) -> None:
        """Generate and submit ticks in batches of at most `batch_rows` rows."""
        if not len(ticks):
            return
        per_batch = max(1, self.batch_rows // max(1, len(s.ids)))
        pending: asyncio.Task | None = None
        for i in range(0, len(ticks), per_batch):
            chunk = ticks[i : i + per_batch]
            idx, t, v = await asyncio.to_thread(s.comp.generate, chunk)
            ds = s.ids[idx]
            if skip_older is not None:
                keep = t > skip_older[ds]
                ds, t, v = ds[keep], t[keep], v[keep]
            if not len(ds):
                continue
            batch = ObservationBatch(ds=ds.astype(np.int64), t_us=t.astype(np.int64), value=v.astype(np.float64), source="simulator")
            if pending is not None:
                await pending
            pending = asyncio.create_task(self._submit(platform, batch))
        if pending is not None:
            await pending

    async def _submit(self, platform: Platform, batch: ObservationBatch) -> None:
        try:
            # Shielded: cancelling an awaited ingest would cancel the pipeline's concurrent future
            # while the writer thread still holds it, and its set_result would then raise there.
            result = await asyncio.shield(platform.ingest(batch))
        except asyncio.CancelledError:
            raise
        except Exception:
            self._stats["errors"] += 1
            log.exception("simulator batch of %d rows was not stored", len(batch))
            return
        st = self._stats
        st["batches"] += 1
        st["rows_sent"] += len(batch)
        st["rows_accepted"] += result.accepted
        st["rows_rejected"] += len(result.rejected)
        self._rejected.update(r.reason for r in result.rejected)
        self._newest_us = max(self._newest_us, int(batch.t_us.max()))
        self._last_batch_real = time.time()

    def status(self) -> dict:
        st = dict(self._stats)
        elapsed = time.monotonic() - self._started_real if self._started_real else 0.0
        st.update(
            seed=self.seed,
            components=list(self.streams) or list(self.components),
            rejected_by_reason=dict(self._rejected),
            last_batch_time=_iso(self._newest_us),
            last_batch_at=_iso(int(self._last_batch_real * 1e6)) if self._last_batch_real else None,
            rows_per_s=round(st["rows_sent"] / elapsed, 1) if elapsed > 0 else 0.0,
            # The feed status convention every feed follows: a simulator has no source to lose.
            state="ok" if st.get("phase") == "live" else "starting", error=None,
        )
        if self.calendar is not None and self._platform is not None:
            st["episodes"] = self.calendar.active(self._platform.clock.now_us())
        if self.calendar is not None and self.calendar.forced:
            st["forced_episode"] = self.calendar.forced[0].describe()
        return st

"""The rule engine bound to a running platform: commits, ticks, hourly means and air refreshes in,
signals out to a sink (the alarm book).

Everything the engine is given comes from the event loop: commits through the bus (which the
writer thread fires on the loop), the tick and the hourly means from tasks here. The store is read
in a worker thread (`asyncio.to_thread`) but the engine itself is only ever called on the loop, so
it needs no lock.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections import defaultdict
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np

from citywall.alerts.engine import HOUR_MS, RuleEngine
from citywall.alerts.signal import Signal
from citywall.ingest.batch import NO_TIME
from citywall.live.bus import AIR_REFRESHED, OBSERVATIONS_COMMITTED, Committed
from citywall.observations.registry import Registry

if TYPE_CHECKING:
    from citywall.platform import Platform

log = logging.getLogger(__name__)

TICK_S = 5.0  # wall seconds between ticks (staleness, cross windows)
HOURLY_BACK_HOURS = 24  # hourly means read back: enough to rebuild an advisory after a restart


def gu_hourly_means(registry: Registry, rows: dict[str, list]) -> dict[str, dict[str, list[tuple[int, float]]]]:
    """Per gu, per quantity, [(hour start ms, mean over the gu's datastreams)] from
    `EmbeddedStore.hourly_means` rows: a gu's advisory follows the mean of its stations."""
    acc: dict[tuple[str, str, int], list[float]] = defaultdict(list)
    for ds, t, v in zip(rows["ds"], rows["t"], rows["v"]):
        d = registry.datastreams.get(int(ds))
        if d is None or v is None or not math.isfinite(v):
            continue
        gu = registry.things[d.thing_id].gu
        if gu:
            acc[(gu, d.quantity, int(t))].append(float(v))
    out: dict[str, dict[str, list[tuple[int, float]]]] = defaultdict(lambda: defaultdict(list))
    for (gu, q, t), values in sorted(acc.items()):
        out[gu][q].append((t, sum(values) / len(values)))
    return {gu: dict(per_q) for gu, per_q in out.items()}


class AlertRunner:
    """Runs `engine` on `platform`'s live stream; `sink` receives every non-empty list of signals."""

    def __init__(self, platform: Platform, engine: RuleEngine, sink: Callable[[list[Signal]], Any]) -> None:
        self.platform, self.engine, self.sink = platform, engine, sink
        self._tasks: list[asyncio.Task] = []
        self._fed = np.full(1024, NO_TIME, dtype=np.int64)
        self._unsubscribe: list[Callable[[], None]] = []

    def start(self) -> None:
        """Listen to commits and air refreshes, start the tick and hourly tasks. The newest value of
        every datastream that has reported is given to the engine first, so a feed that is already
        silent when the platform starts is noticed."""
        bus = self.platform.bus
        self._seed()
        self._unsubscribe = [bus.listen(OBSERVATIONS_COMMITTED, self._on_committed), bus.listen(AIR_REFRESHED, self._on_air)]
        self._tasks = [asyncio.create_task(self._ticker(), name="citywall-alerts-tick"),
                       asyncio.create_task(self._hourly(), name="citywall-alerts-hourly")]

    def stop(self) -> asyncio.Future:
        """Stop listening and cancel the tasks; the returned future (await it or not) is done when they are."""
        for unsubscribe in self._unsubscribe:
            try:
                unsubscribe()
            except ValueError:  # already removed
                pass
        self._unsubscribe = []
        for task in self._tasks:
            task.cancel()
        tasks, self._tasks = self._tasks, []
        return asyncio.gather(*tasks, return_exceptions=True)

    def _deliver(self, signals: list[Signal]) -> None:
        if not signals:
            return
        try:
            self.sink(signals)
        except Exception:  # the sink failing must not stop the rules
            log.exception("alert sink failed on %d signals", len(signals))

    def _fed_until(self, ids: np.ndarray) -> np.ndarray:
        """The newest time (µs) the rules have seen per datastream, growing with the registry."""
        need = int(ids.max()) + 1 if len(ids) else 0
        if need > len(self._fed):
            self._fed = np.concatenate([self._fed, np.full(max(need, 2 * len(self._fed)) - len(self._fed), NO_TIME, dtype=np.int64)])
        return self._fed[ids]

    def _seed(self) -> None:
        newest = self.platform.live.values()  # every reporting datastream; times in ms
        if newest["ids"]:
            ids = np.asarray(newest["ids"], dtype=np.int64)
            t_us = np.asarray(newest["t"], dtype=np.int64) * 1000
            self._fed_until(ids)
            np.maximum.at(self._fed, ids, t_us)
            self._deliver(self.engine.on_values(ids, t_us, np.asarray(newest["v"], dtype=np.float64)))

    def _on_committed(self, event: Committed) -> None:
        if event.rows is not None:
            # Every accepted reading in time order: a duration or a run of equal readings counts
            # every reading, also when one commit brings many (a backfill, a gateway's buffer).
            ds, t, v = event.rows
            if not len(ds):
                return
            order = np.argsort(t, kind="stable")
            ids, t, v = ds[order].astype(np.int64), t[order].astype(np.int64), v[order].astype(np.float64)
            # A late reading, older than one the rules already saw for its datastream, would run a
            # condition backwards (clear a threshold, fake a jump): the rules only go forward in time.
            newer = t > self._fed_until(ids)
            if not newer.all():
                ids, t, v = ids[newer], t[newer], v[newer]
                if not len(ids):
                    return
            np.maximum.at(self._fed, ids, t)
        else:
            ids = np.asarray(event.changed, dtype=np.int64)
            if not len(ids):
                return
            live = self.platform.live
            with live.lock:
                t, v = live.last_t[ids].copy(), live.last_v[ids].copy()
        try:
            signals = self.engine.on_values(ids, t, v)
        except Exception:
            log.exception("alert rules failed on a commit of %d datastreams", len(ids))
            return
        self._deliver(signals)

    def _on_air(self, latest: dict[str, Any]) -> None:
        try:
            signals = self.engine.on_air(latest)
        except Exception:
            log.exception("alert rules failed on the air index")
            return
        self._deliver(signals)

    async def _ticker(self) -> None:
        while True:
            await asyncio.sleep(TICK_S)
            try:
                self._deliver(self.engine.on_tick(self.platform.clock.now_us() // 1000))
            except Exception:
                log.exception("alert tick failed")

    def _read_hourly(self) -> tuple[dict[str, dict[str, list[tuple[int, float]]]], int]:
        """In a worker thread: the advisories' hourly means per gu (like AirIndex.refresh)."""
        p = self.platform
        now_ms = p.clock.now_us() // 1000
        ids = self.engine.advisory_datastreams()
        start_ms = now_ms - now_ms % HOUR_MS - (HOURLY_BACK_HOURS - 1) * HOUR_MS
        rows = p.store.hourly_means(ids, start_ms * 1000, now_ms * 1000 + 1)
        return gu_hourly_means(p.registry, rows), now_ms

    async def _hourly(self) -> None:
        """Hourly means every minute of wall time (less at a higher --speed, as the air index)."""
        period = min(60.0, max(5.0, 60.0 / self.platform.clock.speed))
        while True:
            try:
                gu_hourly, now_ms = await asyncio.to_thread(self._read_hourly)
                self._deliver(self.engine.on_hourly(gu_hourly, now_ms))
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("alert advisories failed; retrying next period")
            await asyncio.sleep(period)

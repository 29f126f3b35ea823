"""The platform: one object holding the city, registry, store, live state, bus and feeds.

Like Home Assistant's core object, everything else (the web app, feeds, later the alert
engine) receives this and uses its public methods, never the parts' internals.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from citywall.air.live import AirIndex
from citywall.city import City, load_city
from citywall.city.indicators import Indicators, load_indicators
from citywall.clock import Clock
from citywall.feeds import Feed, make_feed
from citywall.ingest.batch import ObservationBatch
from citywall.ingest.pipeline import IngestResult, Pipeline
from citywall.ingest.validate import Limits
from citywall.live.bus import EventBus
from citywall.live.hub import LiveHub
from citywall.live.snapshot import SnapshotCache
from citywall.live.state import LiveState
from citywall.observations.model import Datastream, Thing, ThingIn
from citywall.observations.registry import Registry
from citywall.store.embedded import EmbeddedStore

log = logging.getLogger(__name__)

DEFAULT_PORT = 8765
DEFAULT_DATA_DIR = Path("data")


@dataclass
class Settings:
    host: str = "127.0.0.1"
    port: int = DEFAULT_PORT
    db: str = str(DEFAULT_DATA_DIR / "citywall.duckdb")
    feed: str = "simulator"
    speed: float = 1.0
    seed: int = 2017
    city: str = "seoul"
    raw_retention_days: float = 30.0
    hourly_retention_days: float | None = None  # keep hourly rollups for ever
    rollup_every_s: float = 300.0
    indicators: str | None = None  # CSV or YAML of city indicators; None: the shipped example
    feed_options: dict[str, Any] = field(default_factory=dict)


class Platform:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.clock = Clock(settings.speed)
        self.city: City = load_city(settings.city)
        self.registry = Registry(self.city)
        if settings.db.startswith(("postgres://", "postgresql://")):
            raise ValueError("the PostgreSQL store is not part of this version; use a DuckDB file path")
        self.store = EmbeddedStore(settings.db)
        self.live = LiveState(self.registry)
        self.bus = EventBus()
        limits = Limits(max_age_s=settings.raw_retention_days * 86400)
        self.pipeline = Pipeline(self.store, self.registry, self.live, self.bus, self.clock, limits)
        self.hub = LiveHub(self)
        self.snapshots = SnapshotCache(self)
        self.air = AirIndex(self)
        self.indicators: Indicators = load_indicators(settings.indicators)
        self.feeds: list[Feed] = []
        if settings.feed != "none":
            self.feeds.append(make_feed(settings.feed, seed=settings.seed, **settings.feed_options))
        self._tasks: list[asyncio.Task] = []

    async def start(self) -> None:
        self.bus.bind(asyncio.get_running_loop())
        self.pipeline.start()
        self.hub.start()
        for feed in self.feeds:
            self._tasks.append(asyncio.create_task(self._run_feed(feed), name=f"feed-{feed.name}"))
        self._tasks.append(asyncio.create_task(self._housekeeping(), name="citywall-rollup"))
        self._tasks.append(asyncio.create_task(self._air_index(), name="citywall-air-index"))

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.hub.stop()
        await asyncio.to_thread(self.pipeline.stop)
        self.store.close()

    async def _run_feed(self, feed: Feed) -> None:
        try:
            await feed.run(self)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("feed %s stopped with an error", feed.name)

    async def _housekeeping(self) -> None:
        while True:
            await asyncio.sleep(self.settings.rollup_every_s)
            try:
                done = await asyncio.wrap_future(self.pipeline.rollup(self.settings.raw_retention_days, self.settings.hourly_retention_days))
            except Exception:
                log.exception("rollup failed")
                continue
            await self.compact(done["watermark_us"])

    async def _air_index(self) -> None:
        """Recompute the CAI as platform hours pass (a minute of wall time, less at higher --speed)."""
        period = min(60.0, max(5.0, 60.0 / self.clock.speed))
        while True:
            try:
                latest = await asyncio.to_thread(self.air.refresh)
            except Exception:
                log.exception("air index failed; retrying next period")
                latest = None
            # Until the first index exists (a feed still starting), look again soon.
            await asyncio.sleep(period if latest and latest["city"] else min(period, 5.0))

    async def compact(self, until_us: int) -> int:
        """Sort raw days and hours before `until_us` by datastream (EmbeddedStore.compact), one at a time
        beside the writer; return how many were done. A failure is logged and retried next round."""
        done_n = 0
        while True:
            try:
                done = await asyncio.to_thread(self.store.compact, until_us)
            except Exception:
                log.exception("compaction failed")
                return done_n
            if done is None:
                return done_n
            done_n += 1
            log.info("compacted %s rows from %s to %s", f"{done['rows']:,}", done["from_us"], done["to_us"])

    # -- the public way in --------------------------------------------------------------
    async def ingest(self, batch: ObservationBatch) -> IngestResult:
        return await asyncio.wrap_future(self.pipeline.submit(batch))

    async def register(self, things: list[ThingIn]) -> tuple[list[Thing], list[Datastream]]:
        return await asyncio.wrap_future(self.pipeline.register(things))

    def feed_status(self) -> dict[str, Any]:
        return {f.name: {"simulated": f.simulated, **f.status()} for f in self.feeds}

    @property
    def simulated(self) -> bool:
        return any(f.simulated for f in self.feeds)

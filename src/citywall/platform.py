"""The platform: one object holding the city, registry, store, live state, bus and feeds.

Like Home Assistant's core object, everything else (the web app, feeds, later the alert
engine) receives this and uses its public methods, never the parts' internals.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from citywall.air.live import AirIndex
from citywall.alerts.alarms import ALARM_CHANGED, AlarmBook
from citywall.alerts.engine import RuleEngine
from citywall.alerts.live import AlertRunner
from citywall.alerts.rules import load_rules, parse_rules
from citywall.alerts.severity import rank
from citywall.auth.accounts import Accounts
from citywall.auth.audit import AuditLog
from citywall.city import City, load_city
from citywall.city.facilities import Facilities, load_facilities
from citywall.city.indicators import Indicators, load_indicators
from citywall.clock import Clock
from citywall.feeds import Feed, make_feeds
from citywall.ingest.batch import ObservationBatch
from citywall.ingest.pipeline import IngestResult, Pipeline
from citywall.ingest.validate import Limits
from citywall.incidents.board import INCIDENT_CHANGED, IncidentBoard
from citywall.live.bus import AIR_REFRESHED, EventBus
from citywall.live.broker import LiveBroker
from citywall.live.hub import LiveHub
from citywall.live.snapshot import SnapshotCache
from citywall.live.state import LiveState
from citywall.mqtt import mqtt_from_settings
from citywall.observations.model import Datastream, Thing, ThingIn
from citywall.observations.registry import Registry
from citywall.store import Store, is_postgres, open_store
from citywall.store.embedded import atomic

log = logging.getLogger(__name__)

DEFAULT_PORT = 8765
DEFAULT_DATA_DIR = Path("data")
# After a start, rules (whose state is in memory) have this long to see their conditions hold again
# before alarms from before the start that no rule holds are cleared: longer than the shipped rules' durations.
RULES_RELEARN_S = 3600.0
RECONCILE_EVERY_S = 600.0  # then alarms and rules are compared this often (platform seconds)


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
    facilities: str | None = None  # CSV of cameras, hospitals, shelters, fire stations; None: the shipped example
    rules: str | None = None  # alert rules YAML; None: the rules an admin last saved, else the shipped ones
    focus_severity: str = "critical"  # a new incident at or above this takes focus on the wall (high: ~180 a day in Seoul)
    focus_seconds: float = 60.0  # ... and the wall returns to its normal view after this long
    escalate_after_s: float = 300.0  # an unacknowledged critical alarm escalates after this long
    escalation_webhook: str | None = None  # where escalations are POSTed (JSON)
    feed_options: dict[str, Any] = field(default_factory=dict)
    mqtt: str = "embedded"  # "embedded" (amqtt on loopback), "off", or an external broker "mqtt://host:port"
    mqtt_port: int = 1884  # the embedded broker's port (not 1883: a production Mosquitto is usually there)
    mqtt_options: dict[str, Any] = field(default_factory=dict)  # MqttFeed options: client_id, prefix, protocol, ...
    live_broker: str | None = None  # redis://host:port: live updates shared with other processes on the same store
    commerce: str | None = None  # the --out directory of `citywall commerce build`: the wall's commerce view; None: no source


class Platform:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        if settings.commerce:  # a wrong --commerce DIR stops the start before anything opens, saying what is missing (CommerceSourceError is a ValueError)
            from citywall.analytics.commerce.api import check_source

            check_source(settings.commerce)
        self.clock = Clock(settings.speed)
        self.city: City = load_city(settings.city)
        self.registry = Registry(self.city)
        self.store: Store = open_store(settings.db)  # a DuckDB file, or PostgreSQL for a postgresql:// URL
        self.live = LiveState(self.registry)
        self.bus = EventBus()
        limits = Limits(max_age_s=settings.raw_retention_days * 86400)
        self.pipeline = Pipeline(self.store, self.registry, self.live, self.bus, self.clock, limits)
        self.hub = LiveHub(self)
        self.snapshots = SnapshotCache(self)
        self.air = AirIndex(self)
        self.indicators: Indicators = load_indicators(settings.indicators)
        self.facilities: Facilities = load_facilities(settings.facilities, self.city)
        rank(settings.focus_severity)
        self.accounts = Accounts(self.store, self.clock)
        self.audit = AuditLog(self.store, self.clock)
        self.incidents = IncidentBoard(self)
        self.alarms = AlarmBook(self, escalate_after_s=settings.escalate_after_s, webhook=settings.escalation_webhook)
        saved = self.store.get_meta("rules_yaml") if settings.rules is None else None
        ruleset = parse_rules(saved, "the rules an admin saved (PUT /api/rules)") if saved else load_rules(settings.rules)
        self.rules_yaml = ruleset.text
        self.engine = RuleEngine(ruleset, self.registry, self.city)
        self.alert_runner = AlertRunner(self, self.engine, self.alarms.apply_all)
        self.feeds: list[Feed] = []
        # One feed or a comma-separated list (`simulator,seoul`); "none" for none.
        self.feeds.extend(make_feeds(settings.feed, seed=settings.seed, options=settings.feed_options))
        self.mqtt_broker, mqtt_feed = mqtt_from_settings(settings)  # the embedded broker (or None) and the MQTT listener
        if mqtt_feed is not None:
            self.feeds.append(mqtt_feed)
        self._tasks: list[asyncio.Task] = []
        self.broker: LiveBroker | None = LiveBroker(self, settings.live_broker) if settings.live_broker else None

    async def start(self) -> None:
        self.bus.bind(asyncio.get_running_loop())
        self.pipeline.start()
        self.hub.start()
        self.incidents.load()
        self.alarms.load()
        if self.broker is not None:
            await self.broker.start()
        elif is_postgres(self.settings.db):
            log.warning("no --live-broker: walls served by other processes sharing this PostgreSQL store will not see "
                        "this process's live updates (nor this one theirs) until they restart; see docs/postgresql.md")
        data_dir = DEFAULT_DATA_DIR if is_postgres(self.settings.db) else Path(self.settings.db).parent
        admin_file = data_dir / "initial-admin-password.txt" if self.settings.db != ":memory:" else None
        if admin_file is not None and await asyncio.wrap_future(self.pipeline.call(lambda: atomic(self.store, lambda: self._bootstrap(admin_file)))):
            log.warning("no users yet: created user 'admin'; its password is in %s (change it after logging in)", admin_file)
        self.bus.listen(INCIDENT_CHANGED, lambda doc: self.hub.publish({"type": "incident", **doc}))
        self.bus.listen(ALARM_CHANGED, lambda doc: self.hub.publish({"type": "alarm", "alarm": doc}))
        self.alert_runner.start()
        self._tasks.append(asyncio.create_task(self.alarms.run_escalation(), name="citywall-escalation"))
        self._tasks.append(asyncio.create_task(self._reconcile_alarms(self.clock.now_us() // 1000), name="citywall-alarm-reconcile"))
        if self.mqtt_broker is not None:  # before the listener, which connects to it
            await self.mqtt_broker.start()
        for feed in self.feeds:
            self._tasks.append(asyncio.create_task(self._run_feed(feed), name=f"feed-{feed.name}"))
        self._tasks.append(asyncio.create_task(self._housekeeping(), name="citywall-rollup"))
        self._tasks.append(asyncio.create_task(self._air_index(), name="citywall-air-index"))

    async def stop(self) -> None:
        self.alert_runner.stop()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self.mqtt_broker is not None:
            await self.mqtt_broker.stop()
        if self.broker is not None:
            await self.broker.stop()
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
                self.bus.fire(AIR_REFRESHED, latest)
            except Exception:
                log.exception("air index failed; retrying next period")
                latest = None
            # Until the first index exists (a feed still starting), look again soon.
            await asyncio.sleep(period if latest and latest["city"] else min(period, 5.0))

    async def _reconcile_alarms(self, started_ms: int) -> None:
        """Keep the alarm book and the rules in step. Rule state lives in memory: after a start the
        rules relearn the present from the live stream, so alarms from before the start that no rule
        holds once they have had the time are cleared; and a signal whose write was lost (the store
        refused it) is repaired either way on the next round."""
        await asyncio.sleep(self.clock.sleep_for(RULES_RELEARN_S))
        while True:
            try:
                if not self.alarms.pending:
                    held = set(self.engine.state())
                    cleared = await self.alarms.reconcile(held, max(started_ms, self.clock.now_us() // 1000 - int(RULES_RELEARN_S * 1000)))
                    missing = self.alarms.missing(self.engine.active())
                    if missing:
                        await self.alarms.apply(missing)
                    if cleared or missing:
                        log.info("alarms reconciled with the rules: %d cleared, %d raised", len(cleared), len(missing))
                self.incidents.prune()
            except Exception:
                log.exception("alarm reconciliation failed; retrying next round")
            await asyncio.sleep(self.clock.sleep_for(RECONCILE_EVERY_S))

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

    def _bootstrap(self, admin_file: Path) -> str | None:
        """A first administrator on a store without users, so a new install is not locked out."""
        self.store.lock("bootstrap")  # processes starting together on a new shared store: one creates the admin
        password = self.accounts.ensure_admin(admin_file)
        if password:
            self.audit.append("system", "user.create", "admin", {"role": "admin", "bootstrap": True})
        return password

    def operations_settings(self) -> dict[str, Any]:
        s = self.settings
        return {"focus_severity": s.focus_severity, "focus_seconds": s.focus_seconds, "escalate_after_s": s.escalate_after_s,
                "escalation_webhook": bool(s.escalation_webhook), "facilities_example": self.facilities.is_example}

    async def replace_rules(self, text: str, *, by: str) -> dict[str, Any]:
        """Validate new alert rules, store them with their audit row (one transaction), then put them in force."""
        ruleset = parse_rules(text, "the rules sent")
        self.engine.check(ruleset)  # what only the city can tell (gu codes), before anything is stored
        before = {r.id for r in self.engine.ruleset.rules}
        after = {r.id for r in ruleset.rules}
        detail = {"rules": sorted(after), "added": sorted(after - before), "removed": sorted(before - after),
                  "sha256_before": hashlib.sha256(self.rules_yaml.encode()).hexdigest(), "sha256_after": hashlib.sha256(text.encode()).hexdigest()}

        def run() -> None:
            self.store.set_meta("rules_yaml", text)
            self.audit.append(by, "rules.replace", "rules", detail)

        await asyncio.wrap_future(self.pipeline.call(lambda: atomic(self.store, run)))
        self.rules_yaml = ruleset.text
        signals = self.engine.replace(ruleset)
        await self.alarms.apply(signals)
        return {"rules": len(ruleset.rules), "added": detail["added"], "removed": detail["removed"], "cleared": len(signals)}

    def feed_status(self) -> dict[str, Any]:
        return {f.name: {"simulated": f.simulated, **f.status()} for f in self.feeds}

    @property
    def simulated(self) -> bool:
        return any(f.simulated for f in self.feeds)

"""Live updates between server processes that share one PostgreSQL store, through Redis pub/sub.

Each process stores what it ingests itself; the others would only see it on their next restart.
So after every commit a process publishes what changed on one Redis channel, and every other
process subscribed to it applies that to its own live state and walls, without storing it again:

- committed rows: the datastream ids, times and values as packed arrays (int32, int64, float64);
- registry changes: a signal only; the receivers read the new Things and Datastreams from the store;
- incident and alarm changes: the document; the receivers reload their board or alarm book from
  the store (where the change already is) and send the document to their walls.

Pub/sub is at most once, so nothing is lost without a resynchronisation from the store, which has
every committed change:
- a process whose subscription was cut (or that has just subscribed: commits of others between its
  start and its subscription) reads the newest value of every datastream, the open incidents and
  alarms from the store and sends its walls a fresh snapshot;
- a process that could not publish a change (Redis away, or its outbox full) publishes a "resync"
  message once Redis takes messages again, and every other process then does the same.
Each message carries its sender's id, so a process ignores its own. The store stays the truth; this
only saves the walls of other processes from waiting.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import uuid
from typing import TYPE_CHECKING, Any

import msgspec
import numpy as np

from citywall.alerts.alarms import ALARM_CHANGED
from citywall.incidents.board import INCIDENT_CHANGED
from citywall.live.bus import OBSERVATIONS_COMMITTED, OBSERVATIONS_RECEIVED, REGISTRY_CHANGED, Committed
from citywall.store import redact_url

if TYPE_CHECKING:
    from citywall.platform import Platform

log = logging.getLogger(__name__)

CHANNEL = "citywall:live"  # + ":" + the store's id (meta store_id)
OUTBOX = 10_000  # messages waiting for Redis; beyond it they are dropped (the store has them)
RETRY_MAX_S = 30.0


class Envelope(msgspec.Struct, omit_defaults=True):
    origin: str
    kind: str  # rows | registry | incident | alarm | resync (the sender lost changes: read the store)
    ds: bytes = b""
    t: bytes = b""
    v: bytes = b""
    doc: Any = None


class LiveBroker:
    """Publish this process's committed changes; apply other processes' changes to this one's walls."""

    def __init__(self, platform: Platform, url: str) -> None:
        if not url.startswith(("redis://", "rediss://", "unix://")):
            raise ValueError(f"live broker {url!r}: give a Redis URL, e.g. redis://127.0.0.1:6379")
        self.platform, self.url = platform, url
        self.shown = redact_url(url)  # what logs and /api/health show (a Redis password stays out)
        self.channel = CHANNEL  # + the store's id, at start
        self.origin = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self._encoder = msgspec.msgpack.Encoder()
        self._decoder = msgspec.msgpack.Decoder(Envelope)
        self._outbox: asyncio.Queue[bytes] | None = None
        self._tasks: list[asyncio.Task] = []
        self._unlisten: list[Any] = []
        self.connected = False
        self._lost = False  # a change could not be published: tell the others to resync, once Redis answers
        self.published = 0
        self.received = 0
        self.dropped = 0
        self._subscribed = asyncio.Event()

    # -- lifecycle ----------------------------------------------------------------------
    async def start(self) -> None:
        import redis.asyncio as redis

        self.channel = f"{CHANNEL}:{await self._store_id()}"
        # Named, so an operator (or a test) can tell this process's connections apart in CLIENT LIST.
        self._redis = redis.from_url(self.url, client_name=f"citywall-live-{os.getpid()}-{self.origin.rsplit(':', 1)[-1]}")
        self._outbox = asyncio.Queue(OUTBOX)
        bus = self.platform.bus
        self._unlisten = [
            bus.listen(OBSERVATIONS_COMMITTED, self._on_committed),
            bus.listen(REGISTRY_CHANGED, lambda _: self._send(Envelope(self.origin, "registry"))),
            bus.listen(INCIDENT_CHANGED, lambda doc: self._send(Envelope(self.origin, "incident", doc=doc))),
            bus.listen(ALARM_CHANGED, lambda doc: self._send(Envelope(self.origin, "alarm", doc=doc))),
        ]
        self._tasks = [asyncio.create_task(self._publish_loop(), name="citywall-broker-publish"),
                       asyncio.create_task(self._subscribe_loop(), name="citywall-broker-subscribe")]
        try:  # a first connection before serving, so that a wrong URL is reported at start
            await asyncio.wait_for(self._subscribed.wait(), 5)
        except asyncio.TimeoutError:
            log.warning("live broker %s does not answer yet; retrying in the background (walls of other processes wait)", self.shown)

    async def _store_id(self) -> str:
        """The store's own random id, made by whichever process asks first: processes on the same store
        share a channel, and one Redis can serve several stores (or test runs) without mixing them."""
        store = self.platform.store

        def make() -> None:
            store.con.execute("INSERT INTO meta (key, value) VALUES ('store_id', ?) ON CONFLICT (key) DO NOTHING", [uuid.uuid4().hex])

        await asyncio.wrap_future(self.platform.pipeline.call(make))
        return await asyncio.to_thread(store.get_meta, "store_id")  # type: ignore[return-value]

    async def stop(self) -> None:
        for undo in self._unlisten:
            undo()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._redis.aclose()

    def status(self) -> dict[str, Any]:
        return {"url": self.shown, "connected": self.connected, "published": self.published, "received": self.received, "dropped": self.dropped}

    # -- publishing ---------------------------------------------------------------------
    def _on_committed(self, committed: Committed) -> None:
        if committed.rows is None or len(committed.rows[0]) == 0:
            return
        ds, t, v = committed.rows
        self._send(Envelope(self.origin, "rows", ds=np.asarray(ds, dtype="<i4").tobytes(), t=np.asarray(t, dtype="<i8").tobytes(),
                            v=np.asarray(v, dtype="<f8").tobytes()))

    def _send(self, envelope: Envelope) -> None:
        assert self._outbox is not None
        try:
            self._outbox.put_nowait(self._encoder.encode(envelope))
        except asyncio.QueueFull:
            self.dropped += 1
            self._lost = True

    async def _publish_loop(self) -> None:
        assert self._outbox is not None
        resync = self._encoder.encode(Envelope(self.origin, "resync"))
        delay = 1.0
        while True:
            if self._lost:  # before anything newer: the others read the store, which has what was dropped
                try:
                    await self._redis.publish(self.channel, resync)
                    self._lost, delay = False, 1.0
                    log.info("live broker %s: publishing again; other processes resynchronise from the store", self.shown)
                except Exception:  # noqa: BLE001 - still away: try again later; the outbox fills meanwhile
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, RETRY_MAX_S)
                    continue
            message = await self._outbox.get()
            try:
                await self._redis.publish(self.channel, message)
                self.published += 1
            except Exception as exc:  # noqa: BLE001 - Redis away: the store has the data; resync when it is back
                self.dropped += 1
                self._lost = True
                log.warning("live broker %s: publish failed (%s); other processes resynchronise from the store once it is back", self.shown, exc)

    # -- receiving ----------------------------------------------------------------------
    async def _subscribe_loop(self) -> None:
        delay, first = 1.0, True
        while True:
            pubsub = self._redis.pubsub()
            try:
                await pubsub.subscribe(self.channel)
                self.connected, delay = True, 1.0
                self._subscribed.set()
                # What other processes committed while this one was not subscribed (cut off, or between
                # loading its live state at start and now) is in the store.
                await self._catch_up(walls=not first)
                first = False
                async for message in pubsub.listen():
                    if message.get("type") == "message":
                        await self._receive(message["data"])
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - reconnect with backoff, for ever
                if self.connected:
                    log.warning("live broker %s lost (%s); reconnecting", self.shown, exc)
                self.connected = False
                await asyncio.sleep(delay)
                delay = min(delay * 2, RETRY_MAX_S)
            finally:
                try:
                    await pubsub.aclose()
                except Exception:  # noqa: BLE001 - the connection is gone anyway
                    pass

    async def _receive(self, data: bytes) -> None:
        try:
            env = self._decoder.decode(data)
        except msgspec.DecodeError:
            log.warning("live broker: a message that is not citywall's on %s; ignored", self.channel)
            return
        if env.origin == self.origin:
            return
        self.received += 1
        try:
            await self._apply(env)
        except Exception:  # one bad message must not stop the others
            log.exception("live broker: could not apply a %s message from %s", env.kind, env.origin)

    async def _apply(self, env: Envelope) -> None:
        p = self.platform
        if env.kind == "resync":
            await self._catch_up()
        elif env.kind == "registry":
            await asyncio.wrap_future(p.pipeline.sync_registry())
        elif env.kind == "rows":
            ds = np.frombuffer(env.ds, dtype="<i4").astype(np.int64)
            t = np.frombuffer(env.t, dtype="<i8").astype(np.int64)
            v = np.frombuffer(env.v, dtype="<f8").astype(np.float64)
            if len(ds) and any(int(d) not in p.registry.datastreams for d in np.unique(ds)):
                await asyncio.wrap_future(p.pipeline.sync_registry())  # registered elsewhere: read them first
                known = np.array([int(d) in p.registry.datastreams for d in ds], dtype=bool)
                ds, t, v = ds[known], t[known], v[known]
            changed = p.live.apply(ds, t, v)
            p.bus.fire(OBSERVATIONS_RECEIVED, Committed(changed, len(ds), 0, (f"process {env.origin}",), (ds, t, v)))
        elif env.kind == "incident":
            await p.incidents.reload(env.doc["incident"]["id"])
            p.hub.publish({"type": "incident", **env.doc})
        elif env.kind == "alarm":
            await p.alarms.reload(env.doc["id"])
            p.hub.publish({"type": "alarm", "alarm": env.doc})

    async def _catch_up(self, *, walls: bool = True) -> None:
        """Registry, newest values, incidents and alarms from the store; then, with `walls`, a fresh
        snapshot to every wall of this process."""
        p = self.platform
        await asyncio.wrap_future(p.pipeline.sync_registry())
        latest = await asyncio.to_thread(p.store.latest)
        changed = p.live.apply(latest["ds"].astype(np.int64), latest["t"].astype(np.int64), latest["v"]) if len(latest["ds"]) else []
        await p.incidents.reload()
        await p.alarms.reload()
        if walls or len(changed):
            p.hub.resync_all()

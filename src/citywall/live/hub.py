"""Fan-out of live changes to WebSocket clients, where a slow client never slows the others.

Each client has a small bounded queue. A commit becomes one delta message, encoded once and
offered to every queue without waiting; a client whose queue is full is marked for resync:
its backlog is dropped and it gets a fresh snapshot instead, which always supersedes it.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import TYPE_CHECKING

import msgspec
import numpy as np

from citywall import metrics
from citywall.live.bus import OBSERVATIONS_COMMITTED, OBSERVATIONS_RECEIVED, Committed

if TYPE_CHECKING:
    from citywall.platform import Platform

QUEUE_SIZE = 32
SNAPSHOT_PERIOD_S = 0.25  # background snapshot refresh while values change
AGGREGATES_EVERY = 4  # snapshot periods between aggregates messages (once a second)
# Deltas go out at most this often: the first change after a quiet spell at once, a burst of
# commits as one message. Each message costs a send per client, so this bounds the fan-out
# work (20 messages/s x clients) whatever the commit rate, at a cost of at most 50 ms.
DELTA_INTERVAL_S = 0.05
RESYNC = b""  # queue marker: send a snapshot

log = logging.getLogger(__name__)


class Subscriber:
    def __init__(self) -> None:
        self.queue: asyncio.Queue[bytes] = asyncio.Queue(QUEUE_SIZE)

    def offer(self, message: bytes) -> None:
        try:
            self.queue.put_nowait(message)
        except asyncio.QueueFull:
            while not self.queue.empty():
                self.queue.get_nowait()
            self.queue.put_nowait(RESYNC)
            metrics.WS_RESYNCS.inc()


class LiveHub:
    def __init__(self, platform: Platform) -> None:
        self.platform = platform
        self.subscribers: set[Subscriber] = set()
        self._pending: list[np.ndarray] = []
        self._scheduled = False
        self._last_flush = 0.0
        self._last_aggregates: bytes = b""
        self._task: asyncio.Task | None = None
        platform.bus.listen(OBSERVATIONS_COMMITTED, self._on_commit)
        platform.bus.listen(OBSERVATIONS_RECEIVED, self._on_commit)  # committed by another process (live/broker.py)

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._periodic(), name="citywall-live-periodic")

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()

    def subscribe(self) -> Subscriber:
        sub = Subscriber()
        self.subscribers.add(sub)
        metrics.WS_CLIENTS.set(len(self.subscribers))
        return sub

    def unsubscribe(self, sub: Subscriber) -> None:
        self.subscribers.discard(sub)
        metrics.WS_CLIENTS.set(len(self.subscribers))

    def resync_all(self) -> None:
        """Send every live client a fresh snapshot instead of many small changes (after a backlog)."""
        for sub in self.subscribers:
            sub.offer(RESYNC)

    def publish(self, message: dict) -> None:
        """Send an event (an incident or alarm changing) to every live client, in order with the deltas."""
        encoded = msgspec.json.encode(message)
        for sub in self.subscribers:
            sub.offer(encoded)

    def _on_commit(self, committed: Committed) -> None:
        if len(committed.changed) == 0:
            return
        self._pending.append(committed.changed)
        if not self._scheduled:
            self._scheduled = True
            loop = asyncio.get_running_loop()
            loop.call_at(max(loop.time(), self._last_flush + DELTA_INTERVAL_S), self._flush)

    def _flush(self) -> None:
        self._scheduled = False
        self._last_flush = asyncio.get_running_loop().time()
        ids = np.unique(np.concatenate(self._pending)) if len(self._pending) > 1 else self._pending[0]
        self._pending = []
        if not self.subscribers:
            return
        live = self.platform.live
        message = msgspec.json.encode({"type": "delta", "version": live.version, "sent_ms": int(time.time() * 1000), "datastreams": live.values(ids)})
        for sub in self.subscribers:
            sub.offer(message)

    async def _periodic(self) -> None:
        """Keep the snapshot fresh off the request path; each second, send per-place aggregates and
        freshness (they change with time as well as data) to live clients when they changed."""
        tick = 0
        while True:
            await asyncio.sleep(SNAPSHOT_PERIOD_S)
            tick += 1
            try:
                self._tick(tick)
            except Exception:  # a failed refresh must not stop the live picture for good
                log.exception("live refresh failed; retrying next period")

    def _tick(self, tick: int) -> None:
        snapshots = self.platform.snapshots
        if snapshots.stale():
            snapshots.refresh()
        if tick % AGGREGATES_EVERY == 0 and self.subscribers:
            encoded = msgspec.json.encode(snapshots.parts)
            if encoded != self._last_aggregates:
                self._last_aggregates = encoded
                now_ms = self.platform.clock.now_us() // 1000
                message = msgspec.json.encode({"type": "aggregates", "time_ms": now_ms, **snapshots.parts})
                for sub in self.subscribers:
                    sub.offer(message)

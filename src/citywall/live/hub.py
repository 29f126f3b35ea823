"""Fan-out of live changes to WebSocket clients, where a slow client never slows the others.

Each client has a small bounded queue. A commit becomes one delta message, encoded once and
offered to every queue without waiting; a client whose queue is full is marked for resync:
its backlog is dropped and it gets a fresh snapshot instead, which always supersedes it.
"""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING

import msgspec
import numpy as np

from citywall import metrics
from citywall.live.bus import OBSERVATIONS_COMMITTED, Committed

if TYPE_CHECKING:
    from citywall.platform import Platform

QUEUE_SIZE = 32
AGGREGATE_PERIOD_S = 1.0
RESYNC = b""  # queue marker: send a snapshot


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
        self._last_aggregates: bytes = b""
        self._task: asyncio.Task | None = None
        platform.bus.listen(OBSERVATIONS_COMMITTED, self._on_commit)

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._aggregates_loop(), name="citywall-aggregates")

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

    def _on_commit(self, committed: Committed) -> None:
        if len(committed.changed) == 0:
            return
        self._pending.append(committed.changed)
        if not self._scheduled:
            self._scheduled = True
            # Runs after the callbacks already queued: commits that arrived together go out together.
            asyncio.get_running_loop().call_soon(self._flush)

    def _flush(self) -> None:
        self._scheduled = False
        ids = np.unique(np.concatenate(self._pending)) if len(self._pending) > 1 else self._pending[0]
        self._pending = []
        if not self.subscribers:
            return
        live = self.platform.live
        message = msgspec.json.encode({"type": "delta", "version": live.version, "sent_ms": int(time.time() * 1000), "datastreams": live.values(ids)})
        for sub in self.subscribers:
            sub.offer(message)

    async def _aggregates_loop(self) -> None:
        """Per-place aggregates and freshness change with time as well as data: send them each second when changed."""
        while True:
            await asyncio.sleep(AGGREGATE_PERIOD_S)
            if not self.subscribers:
                continue
            p = self.platform
            now = p.clock.now_us()
            body = {"aggregates": p.live.aggregates(now), "freshness": p.live.freshness(now), "feeds": p.feed_status()}
            encoded = msgspec.json.encode(body)
            if encoded != self._last_aggregates:
                self._last_aggregates = encoded
                message = msgspec.json.encode({"type": "aggregates", "time_ms": now // 1000, **body})
                for sub in self.subscribers:
                    sub.offer(message)

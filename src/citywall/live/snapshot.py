"""The current city picture as one JSON document, cached so that many walls cost one build."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import msgspec

if TYPE_CHECKING:
    from citywall.platform import Platform

# A snapshot is rebuilt at most this often (real seconds) even while values change.
MAX_AGE_S = 0.25


class SnapshotCache:
    def __init__(self, platform: Platform) -> None:
        self.platform = platform
        self._key: tuple[int, int] | None = None
        self._bytes = b""
        self._built = 0.0

    def document(self) -> dict:
        p = self.platform
        now = p.clock.now_us()
        return {
            "type": "snapshot",
            "version": p.live.version,
            "time_ms": now // 1000,
            "city": p.city.id,
            "feeds": p.feed_status(),
            "datastreams": p.live.values(),
            "aggregates": p.live.aggregates(now),
            "freshness": p.live.freshness(now),
        }

    def get(self, current: bool = False) -> bytes:
        """The cached snapshot; with `current`, one that holds every change made so far (what a live
        client starts from, or resyncs to, since the deltas before it are not sent again)."""
        p = self.platform
        key = (p.live.version, len(p.registry.datastreams))
        age = time.monotonic() - self._built
        # Rebuild when values changed (at most every MAX_AGE_S) and at least each second (ages move).
        if not self._bytes or age > 1.0 or (key != self._key and (current or age >= MAX_AGE_S)):
            self._bytes = msgspec.json.encode(self.document())
            self._key, self._built = key, time.monotonic()
        return self._bytes

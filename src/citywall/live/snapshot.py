"""The current city picture as one JSON document, cached so that many walls cost one build.

The hub refreshes it in the background a few times a second while values change, so a
request never waits for a build; a live client that must not miss anything asks for a
`current` one, built on the spot if anything changed since the last build.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import msgspec

if TYPE_CHECKING:
    from citywall.platform import Platform

# Freshness ages move even when no value does: rebuild at least this often (seconds).
MAX_AGE_S = 1.0


class SnapshotCache:
    def __init__(self, platform: Platform) -> None:
        self.platform = platform
        self._key: tuple[int, ...] | None = None
        self._bytes = b""
        self._built = 0.0
        # The parts of the last build the hub also sends on their own (aggregates, freshness, feeds).
        self.parts: dict[str, Any] = {}

    def document(self) -> dict:
        p = self.platform
        now = p.clock.now_us()
        return {
            "type": "snapshot",
            "version": p.live.version,
            "time_ms": now // 1000,
            "city": p.city.id,
            "feeds": p.feed_status(),
            "store": p.pipeline.store_status(),  # the wall says when commits fail (a database outage)
            "datastreams": p.live.values(),
            "aggregates": p.live.aggregates(now),
            "freshness": p.live.freshness(now),
            "air": p.air.latest,
            "incidents": p.incidents.active(),
            "incident_counts": p.incidents.counts(),
            "alarms": p.alarms.open_alarms(),
            "operations": p.operations_settings(),
        }

    def _current_key(self) -> tuple[int, ...]:
        p = self.platform
        return (p.live.version, len(p.registry.datastreams), p.incidents.version, p.alarms.version, p.air.latest.get("computed_at_ms") or 0)

    def stale(self) -> bool:
        return not self._bytes or self._key != self._current_key() or time.monotonic() - self._built > MAX_AGE_S

    def refresh(self) -> None:
        key = self._current_key()
        doc = self.document()
        self.parts = {k: doc[k] for k in ("aggregates", "freshness", "feeds", "store", "air")}
        self._bytes = msgspec.json.encode(doc)
        self._key, self._built = key, time.monotonic()

    def get(self, current: bool = False) -> bytes:
        """The cached snapshot; with `current`, one that holds every change made so far (what a live
        client starts from, or resyncs to, since the deltas before it are not sent again)."""
        if not self._bytes or (current and self.stale()):
            self.refresh()
        return self._bytes

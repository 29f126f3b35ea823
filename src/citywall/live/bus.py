"""A small typed event bus, after Home Assistant's: listeners per event type, fired on the
event loop. The writer thread fires through `fire_threadsafe`, after its commit."""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

log = logging.getLogger(__name__)

OBSERVATIONS_COMMITTED = "observations_committed"
REGISTRY_CHANGED = "registry_changed"
AIR_REFRESHED = "air_refreshed"  # AirIndex.latest after each recomputation
# Rows another process committed to the shared store (live/broker.py): walls show them; this
# process's alert rules do not judge them again (the process that ingested them did).
OBSERVATIONS_RECEIVED = "observations_received"


@dataclass(frozen=True)
class Committed:
    """Fired after a group commit: which datastreams got a newer value, and the accepted rows
    themselves (datastream, time µs, value) for listeners that must see every reading in order,
    such as alert rules with a duration."""

    changed: np.ndarray
    accepted: int
    rejected: int
    sources: tuple[str, ...]
    rows: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None


class EventBus:
    def __init__(self) -> None:
        self._listeners: dict[str, list[Callable[[Any], None]]] = defaultdict(list)
        self._loop: asyncio.AbstractEventLoop | None = None

    def bind(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop

    def listen(self, event_type: str, callback: Callable[[Any], None]) -> Callable[[], None]:
        self._listeners[event_type].append(callback)
        return lambda: self._listeners[event_type].remove(callback)

    def fire(self, event_type: str, data: Any) -> None:
        for callback in list(self._listeners[event_type]):
            try:
                callback(data)
            except Exception:  # one bad listener must not stop the others
                log.exception("listener for %s failed", event_type)

    def fire_threadsafe(self, event_type: str, data: Any) -> None:
        if self._loop is None or self._loop.is_closed():
            self.fire(event_type, data)
        else:
            self._loop.call_soon_threadsafe(self.fire, event_type, data)

"""Replay as a feed of a running server: `citywall up --feed replay --feed-option path=FILE`.

The CLI command (`citywall replay`) writes into a store with the server stopped; this feed runs
the same replay inside the server, so the wall, the live stream and the alert rules see the
rows as they arrive (at `speed`, e.g. 3600 = a recorded hour a second). It is real recorded data,
not simulated; it stops when the file is done.
"""

from __future__ import annotations

import logging
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING

from citywall.feeds.replay.formats import parse_maps
from citywall.feeds.replay.replay import Replay, ReplayOptions

if TYPE_CHECKING:
    from citywall.platform import Platform

log = logging.getLogger(__name__)


class ReplayFeed:
    name = "replay"
    simulated = False

    def __init__(self, path: str | None = None, format: str | None = None, speed: float | str = 3600.0,  # noqa: A002
                 map: str | list[str] | None = None, stations: str | None = None, encoding: str | None = None,  # noqa: A002
                 timezone: str | None = None, seed: int | None = None) -> None:
        if not path:
            raise ValueError("replay feed: give the file with --feed-option path=FILE")
        maps = [m for m in (map.split(",") if isinstance(map, str) else map or []) if m]
        self.options = ReplayOptions(Path(path), format=format, speed=None if str(speed) == "max" else float(speed), maps=parse_maps(maps),
                                     stations=Path(stations) if stations else None, encoding=encoding, timezone=timezone)
        self.replay = Replay(self.options, progress=log.info, progress_every_s=30.0)
        self._error: str | None = None
        self._last_ok: str | None = None
        self._down_since: str | None = None

    async def run(self, platform: Platform) -> None:
        try:
            summary = await self.replay.run(platform)
        except Exception as exc:
            self._error = str(exc)
            self._down_since = datetime.now(timezone.utc).isoformat(timespec="seconds")
            raise
        self._last_ok = datetime.now(timezone.utc).isoformat(timespec="seconds")
        log.info("%s", summary.text())
        if summary.refused.get("too_old"):
            log.warning("replay: %d values were older than the raw retention window and refused as too_old; "
                        "start the server with a longer --raw-retention-days, or replay with `citywall replay` (server stopped)",
                        summary.refused["too_old"])

    def status(self) -> dict:
        r = self.replay
        state = {"done": "ok", "ok": "ok", "starting": "starting"}.get(r.state, "down")
        return {"running": r.state in ("starting", "ok"), "state": state, "error": self._error, "last_ok": self._last_ok,
                "down_since": self._down_since, "file": str(self.options.path), "sent": r.sent, "total": r.total,
                "phenomenon_time": None if r.last_t_us is None else datetime.fromtimestamp(r.last_t_us / 1e6, timezone.utc).isoformat(timespec="seconds"),
                "finished": r.state == "done"}

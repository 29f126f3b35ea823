"""SeoulFeed: Seoul's Open API as a citywall feed (`citywall up --feed seoul`).

Each source (air, citydata, traffic, sdot) runs in its own loop on its own schedule, so one that
fails never holds up the others: a failed poll marks that source "down" at once (with the error
the wall shows), and it is tried again after a backoff that grows to a cap and never gives up;
the first poll that works marks it "ok" again. Nothing here reaches the internet unless a key is
configured; the base URL is an option so tests (and a caching proxy) can stand in for the city.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from citywall.feeds.seoul.air import AirSource
from citywall.feeds.seoul.citydata import CitydataSource, load_places
from citywall.feeds.seoul.client import DEFAULT_BASE_URL, Backoff, SeoulClient, SeoulError, SeoulPayloadError
from citywall.feeds.seoul.sdot import SDoTSource
from citywall.feeds.seoul.source import Source, quarantine_answer
from citywall.feeds.seoul.traffic import TrafficSource, load_links

if TYPE_CHECKING:
    from citywall.platform import Platform

log = logging.getLogger(__name__)

ENV_KEY = "CITYWALL_SEOUL_API_KEY"
ENV_KEY_FILE = "CITYWALL_SEOUL_API_KEY_FILE"


def _key(api_key: str | None, api_key_file: str | None) -> str:
    """The key from the option, the environment, or a file holding it (a config file readable by the
    service only, a systemd credential or a container secret: the key stays out of `ps` and unit files)."""
    key = str(api_key or os.environ.get(ENV_KEY) or "").strip()
    path = api_key_file or os.environ.get(ENV_KEY_FILE)
    if not key and path:
        try:
            key = Path(path).read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise ValueError(f"the seoul feed cannot read its API key file {path}: {exc.strerror or exc}") from None
        if not key:
            raise ValueError(f"the seoul feed's API key file {path} is empty")
    if not key:
        raise ValueError(f"the seoul feed needs an API key from the Seoul Open Data Plaza (data.seoul.go.kr): "
                         f"set {ENV_KEY} (or {ENV_KEY_FILE}, a file holding it) or pass --feed-option api_key=... "
                         "(or api_key_file=FILE)")
    return key
SOURCES = ("air", "citydata", "traffic", "sdot")


def _iso(us: int | None) -> str | None:
    return None if not us else datetime.fromtimestamp(us / 1e6, timezone.utc).isoformat(timespec="seconds")


@dataclass
class SourceState:
    """What the wall and /api/health show about one source."""

    state: str = "starting"  # starting | ok | down
    error: str | None = None
    last_ok_us: int | None = None
    down_since_us: int | None = None
    polls: int = 0
    failures: int = 0
    retry_in_s: float | None = None
    counters: dict[str, Any] = field(default_factory=dict)

    def as_dict(self, every_s: float) -> dict[str, Any]:
        return {"state": self.state, "error": self.error, "last_ok": _iso(self.last_ok_us), "down_since": _iso(self.down_since_us),
                "every_s": every_s, "polls": self.polls, "failures": self.failures, "retry_in_s": self.retry_in_s, **self.counters}


def _list(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [v.strip() for v in value.split(",") if v.strip()]
    return [str(v).strip() for v in value]


class SeoulFeed:
    """Options (keyword; `--feed-option KEY=VALUE`, or `seoul.KEY=VALUE` beside other feeds):

    api_key            the Open Data Plaza key (default: env CITYWALL_SEOUL_API_KEY); required, or
    api_key_file       a file holding it (default: env CITYWALL_SEOUL_API_KEY_FILE)
    base_url           default http://openapi.seoul.go.kr:8088
    sources            which sources run (default air,citydata,sdot, and traffic when traffic_links is set)
    places             citydata places to poll, AREA_NM or AREA_CD, comma-separated (default: all 116)
    place_concurrency  citydata calls in flight at once (default 8)
    traffic_links      TrafficInfo links: a CSV/YAML file of link_id,name,lon,lat (or a list of those)
    air_every_s, citydata_every_s, traffic_every_s, sdot_every_s
                       polling periods (default 600, 300, 300, 3600 seconds)
    sdot_max_pages     pages of S-DoT rows read on the first poll (default 2)
    sdot_page_rows     rows a call (default and most the service allows: 1000)
    timeout_s          timeout of every HTTP call (default 15)
    backoff_base_s, backoff_cap_s
                       retry after a failure: from base, doubling, with jitter, up to the cap or the
                       source's period, whichever is shorter (default 5 and 600); it never gives up
    """

    name = "seoul"
    simulated = False

    def __init__(self, seed: int | None = None, *, api_key: str | None = None, api_key_file: str | None = None, base_url: str = DEFAULT_BASE_URL,
                 sources: list[str] | str | None = None, places: list[str] | str | None = None, place_concurrency: int = 8,
                 traffic_links: Any = None, air_every_s: float = 600.0, citydata_every_s: float = 300.0,
                 traffic_every_s: float = 300.0, sdot_every_s: float = 3600.0, sdot_max_pages: int = 2, sdot_page_rows: int = 1000, timeout_s: float = 15.0,
                 backoff_base_s: float = 5.0, backoff_cap_s: float = 600.0) -> None:
        del seed  # real data: nothing to seed
        key = _key(api_key, api_key_file)
        links = load_links(traffic_links)
        chosen = _list(sources) or [s for s in SOURCES if s != "traffic" or links]
        unknown = [s for s in chosen if s not in SOURCES]
        if unknown:
            raise ValueError(f"unknown seoul sources {unknown}; known: {', '.join(SOURCES)}")
        if "traffic" in chosen and not links:
            raise ValueError("the traffic source needs traffic_links (a CSV or YAML file of link_id, name, lon, lat)")
        self.api_key, self.base_url, self.timeout_s = key, base_url, float(timeout_s)
        self.backoff_base_s, self.backoff_cap_s = float(backoff_base_s), float(backoff_cap_s)
        made: dict[str, Source] = {
            "air": AirSource(float(air_every_s)),
            "citydata": CitydataSource(load_places(places), float(citydata_every_s), int(place_concurrency)),
            "traffic": TrafficSource(links, float(traffic_every_s)),
            "sdot": SDoTSource(float(sdot_every_s), int(sdot_max_pages), page_rows=int(sdot_page_rows)),
        }
        self.sources: dict[str, Source] = {name: made[name] for name in SOURCES if name in chosen}
        self.states = {name: SourceState() for name in self.sources}
        self.client: SeoulClient | None = None
        self._platform: Platform | None = None
        self._running = False
        self._started_us: int | None = None

    def _now_us(self) -> int:
        return self._platform.clock.now_us() if self._platform is not None else int(time.time() * 1e6)

    async def run(self, platform: Platform) -> None:
        self._platform = platform
        self._running = True
        self._started_us = self._now_us()
        self.client = SeoulClient(self.api_key, self.base_url, self.timeout_s)
        try:
            await asyncio.gather(*(self._loop(platform, name, src) for name, src in self.sources.items()))
        finally:
            self._running = False
            await self.client.aclose()

    async def _loop(self, platform: Platform, name: str, src: Source) -> None:
        """Poll one source for ever; every failure is caught here, so the others go on."""
        assert self.client is not None
        st = self.states[name]
        backoff = Backoff(self.backoff_base_s, min(self.backoff_cap_s, src.every_s))
        registered = False
        # A whole round (citydata: 116 calls at a bounded concurrency) has a deadline as well as each call.
        deadline = max(60.0, self.timeout_s * 4 + src.every_s)
        while True:
            try:
                if not registered:
                    things = src.things(platform)
                    if things:
                        await platform.register(things)
                    registered = True
                counters = await asyncio.wait_for(src.poll(self.client, platform), deadline)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - any failure is this source's, and is shown and retried
                message = str(exc) if isinstance(exc, SeoulError) else f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
                if isinstance(exc, asyncio.TimeoutError):
                    message = f"{src.service}: the poll took longer than {deadline:g} s"
                message = self.client.mask(message)
                if isinstance(exc, SeoulPayloadError):
                    await quarantine_answer(platform, name, exc)
                if not isinstance(exc, SeoulError):
                    log.exception("seoul %s poll failed", name)
                elif st.state != "down" or st.error != message:
                    log.warning("seoul %s is down: %s", name, message)
                now = self._now_us()
                if st.state != "down":
                    st.down_since_us = now
                st.state, st.error = "down", message
                st.failures += 1
                delay = backoff.next_delay()
            else:
                if st.state == "down":
                    log.info("seoul %s is back after %d failed polls", name, backoff.failures)
                st.state, st.error, st.down_since_us = "ok", None, None
                st.last_ok_us = self._now_us()
                st.counters = counters
                backoff.reset()
                delay = src.every_s
            st.polls += 1
            st.retry_in_s = round(delay, 1) if st.state == "down" else None
            await asyncio.sleep(delay)

    def forecasts(self) -> dict[str, dict[str, Any]]:
        """The newest congestion forecast of each citydata place (AREA_CD -> {area_nm, issued, hours:
        [{time, congestion_level 1-4, congestion, population_min, population_max}]}), as Seoul gives it;
        empty without the citydata source."""
        src = self.sources.get("citydata")
        return dict(src.forecast) if isinstance(src, CitydataSource) else {}

    def status(self) -> dict[str, Any]:
        per = {name: self.states[name].as_dict(src.every_s) for name, src in self.sources.items()}
        states = [s.state for s in self.states.values()]
        down = {n: s for n, s in self.states.items() if s.state == "down"}
        if down:
            state = "down"
        elif states and all(s == "ok" for s in states):
            state = "ok"
        else:
            state = "starting" if not any(s == "ok" for s in states) else "ok"
        oks = [s.last_ok_us for s in self.states.values() if s.last_ok_us]
        downs = [s.down_since_us for s in down.values() if s.down_since_us]
        return {
            "running": self._running, "state": state,
            "error": "; ".join(f"{n}: {s.error}" for n, s in down.items()) or None,
            "last_ok": _iso(max(oks)) if oks else None, "down_since": _iso(min(downs)) if downs else None,
            "base_url": self.base_url, "calls": self.client.calls if self.client else 0, "sources": per,
        }

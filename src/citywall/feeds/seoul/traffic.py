"""TrafficInfo (TOPIS): the current speed of chosen road links, one call per link.

The service answers for one LINK_ID at a time with its processed speed (prcs_spd, km/h) and
travel time, and gives neither a time stamp nor a position: the reading is stamped with the
start of the polling period it was read in (so a repeat poll in the same period stores nothing
new), and the links to poll, with a point for the map, are configuration (`traffic_links`).
The documented format is XML (`.../xml/TrafficInfo/1/1/{link_id}/`), which is what is asked for.
"""

from __future__ import annotations

import asyncio
import csv
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from citywall.feeds.seoul.client import SeoulError
from citywall.feeds.seoul.rows import Rows
from citywall.feeds.seoul.source import SOURCE_TAG, fetch_part, thing_props
from citywall.feeds.seoul.values import first, rows, text
from citywall.observations.model import DatastreamIn, ThingIn

if TYPE_CHECKING:
    from citywall.feeds.seoul.client import SeoulClient
    from citywall.platform import Platform

SERVICE = "TrafficInfo"


@dataclass
class Link:
    link_id: str
    name: str
    lon: float
    lat: float


def load_links(spec: Any) -> list[Link]:
    """Links from a list of {link_id, name, lon, lat} or a CSV / YAML file holding them."""
    if spec in (None, "", []):
        return []
    if isinstance(spec, (str, Path)):
        path = Path(spec)
        if not path.exists():
            raise ValueError(f"traffic_links: no file {path} (a CSV or YAML of link_id, name, lon, lat)")
        items = list(csv.DictReader(path.open(encoding="utf-8"))) if path.suffix.lower() == ".csv" else yaml.safe_load(path.read_text("utf-8"))
    else:
        items = spec
    out = []
    for i, item in enumerate(items or []):
        try:
            out.append(Link(str(item["link_id"]).strip(), str(item.get("name") or f"TOPIS link {item['link_id']}"),
                            float(item["lon"]), float(item["lat"])))
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"traffic_links entry {i + 1} ({item!r}) needs link_id, lon and lat: {exc}") from None
    return out


class TrafficSource:
    name = "traffic"
    service = SERVICE

    def __init__(self, links: list[Link], every_s: float = 300.0, concurrency: int = 4) -> None:
        self.links, self.every_s, self.concurrency = links, every_s, max(1, int(concurrency))
        self.done: dict[str, int] = {}
        self.link_errors: dict[str, str] = {}

    def things(self, platform: Platform) -> list[ThingIn]:
        return [ThingIn(key=f"road:topis:{link.link_id}", name=link.name, kind="road_link", lon=link.lon, lat=link.lat,
                        datastreams=[DatastreamIn(quantity="road_speed", interval_s=self.every_s)],
                        properties=thing_props(SERVICE, link_id=link.link_id, road=link.name)) for link in self.links]

    def read(self, link: Link, section: dict[str, Any], t_us: int, out: Rows) -> None:
        key = f"road:topis:{link.link_id}:road_speed"
        got = rows(section.get("row"))
        row = first([r for r in got if text(r.get("link_id") or r.get("LINK_ID")) in ("", link.link_id)])
        if not row:
            if got:  # an answer about another link: never stored as this one's speed
                out.refuse("malformed", f"{SERVICE} link {link.link_id}: the answer is about link "
                           f"{text(got[0].get('link_id') or got[0].get('LINK_ID'))!r}, not {link.link_id}", got[0], key=key)
            else:
                out.missing += 1
            return
        field = "prcs_spd" if "prcs_spd" in row or "PRCS_SPD" not in row else "PRCS_SPD"  # the XML's names are lower case
        out.reading(row, field, key, t_us, f"{SERVICE} link {link.link_id}")

    async def poll(self, client: SeoulClient, platform: Platform) -> dict[str, Any]:
        now = platform.clock.now_us()
        period = int(self.every_s * 1_000_000)
        t_us = now - now % period
        out = Rows(f"{SOURCE_TAG}-{self.name}")
        gate = asyncio.Semaphore(self.concurrency)

        async def one(link: Link) -> bool:
            async with gate:
                ok, _ = await fetch_part(client, platform, self.name, self.link_errors, link.link_id,
                                         lambda answer: self.read(link, answer.section, t_us, out), SERVICE, 1, 1, link.link_id, fmt="xml")
            return ok

        ok = sum(await asyncio.gather(*(one(link) for link in self.links)))
        if self.links and not ok:
            raise SeoulError(f"all {len(self.links)} links failed; e.g. {next(iter(self.link_errors.values()), 'no answer')}")
        submitted = await out.submit(platform, self.done)
        return {"links": len(self.links), "links_ok": ok, "link_errors": dict(list(self.link_errors.items())[:10]), "rows": len(out),
                "accepted": submitted.accepted, "rejected": submitted.rejected, "unchanged": submitted.unchanged, "missing_values": out.missing,
                "rejected_by_reason": submitted.reasons}

"""S-DoT (IotVdata017): Seoul's street sensors, hourly averages, newest first, 1,000 rows a call.

The service keeps about 32 days, newest first, so a poll reads pages from the top until it reaches
an hour it has already read (or `max_pages` on the first poll: the latest hour of ~1,100 sensors
fits in two pages). Sensors are Things `sdot:{SN}` (kind sdot) made the first time a serial appears:
the API gives the district (CGG, romanised: "Gangnam-gu") and the dong, not coordinates, so a new
sensor is placed at its dong's centre when the dong's name is known, else its district's, and says
so in its properties. A row whose district is not one of the city's is kept in the quarantine.
Broken sensors send -40 and 100: those are the datastreams' sentinels, refused by the pipeline.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from citywall.feeds.seoul.rows import Rows
from citywall.feeds.seoul.source import SOURCE_TAG, reading, thing_props
from citywall.feeds.seoul.values import rows, text
from citywall.ingest.batch import NO_TIME
from citywall.observations.model import DatastreamIn, ThingIn

if TYPE_CHECKING:
    from citywall.feeds.seoul.client import SeoulClient
    from citywall.platform import Platform

SERVICE = "IotVdata017"
PAGE = 1000
# API field -> (datastream suffix, quantity); keys sdot:{SN}:{suffix}, as the simulator's sensors.
FIELDS = {
    "AVG_TP": ("temperature", "temperature"), "AVG_HUM": ("humidity", "humidity"), "AVG_WSPD": ("wind_speed", "wind_speed"),
    "AVG_INILLU": ("illuminance", "illuminance"), "AVG_UV": ("uv_index", "uv_index"), "AVG_NIS": ("noise", "noise"),
    "AVG_GT": ("globe_temperature", "globe_temperature"),
}
SENTINELS = [-40.0, 100.0]
SENTINEL_FIELDS = {"temperature", "humidity", "globe_temperature"}


def _norm(name: str) -> str:
    return "".join(ch for ch in name.lower() if ch.isalnum())


class SDoTSource:
    name = "sdot"
    service = SERVICE

    def __init__(self, every_s: float = 3600.0, max_pages: int = 2, catchup_pages: int = 30, page_rows: int = PAGE) -> None:
        self.every_s, self.max_pages, self.catchup_pages = every_s, max(1, int(max_pages)), max(1, int(catchup_pages))
        self.page_rows = min(PAGE, max(1, int(page_rows)))
        self.done: dict[str, int] = {}
        self.newest_read = NO_TIME  # the newest MSRMT_HR read so far: paging stops below it
        self.sensors: set[str] = set()
        self.pages = 0

    def things(self, platform: Platform) -> list[ThingIn]:
        return []  # made as serials appear

    def _place(self, platform: Platform, cgg: str, dong: str) -> tuple[str, float, float, str] | None:
        city = platform.city
        want = _norm(cgg)
        gu = next((code for code, d in city.districts.items() if want in (_norm(d.name_en), _norm(d.name_ko))), None)
        if gu is None:
            return None
        wd = _norm(dong)
        for d in city.dongs.values():
            if d.parent == gu and wd and wd in (_norm(d.name_ko), _norm(d.name_en)):
                lon, lat = d.centroid
                return gu, lon, lat, "centre of the dong (the API gives no coordinates)"
        lon, lat = city.districts[gu].centroid
        return gu, lon, lat, "centre of the district (the API gives no coordinates)"

    def read(self, platform: Platform, section: dict[str, Any], out: Rows, new: dict[str, ThingIn]) -> int | None:
        """One page into `out`; Things for serials not seen before into `new`; the page's oldest time."""
        oldest: int | None = None
        for row in rows(section.get("row")):
            sn = text(row.get("SN"))
            if not sn:
                out.refuse("malformed", f"{SERVICE}: a row without a serial (SN)", row)
                continue
            t = out.time(row, "MSRMT_HR", f"{SERVICE} {sn}")
            if t is None:
                continue
            oldest = t if oldest is None else min(oldest, t)
            if sn not in self.sensors and f"sdot:{sn}" in platform.registry.thing_by_key:
                self.sensors.add(sn)  # registered by an earlier run
            if sn not in self.sensors and sn not in new:
                place = self._place(platform, text(row.get("CGG")), text(row.get("DONG")))
                if place is None:
                    out.refuse("unknown_datastream", f"{SERVICE} {sn}: district {text(row.get('CGG'))!r} (CGG) is not a district of "
                               f"{platform.city.name_en}", row)
                    continue
                gu, lon, lat, how = place
                new[sn] = ThingIn(
                    key=f"sdot:{sn}", name=f"S-DoT {sn} ({text(row.get('DONG')) or platform.city.districts[gu].name_ko})", kind="sdot",
                    lon=lon, lat=lat,
                    datastreams=[DatastreamIn(quantity=q, key=f"sdot:{sn}:{suffix}", interval_s=3600.0, name=f"S-DoT {sn} {suffix.replace('_', ' ')}",
                                              sentinels=SENTINELS if suffix in SENTINEL_FIELDS else []) for suffix, q in FIELDS.values()],
                    properties=thing_props(SERVICE, serial=sn, model=text(row.get("MDL_NO")), gu=gu, dong=text(row.get("DONG")),
                                           location=how),
                )
            where = f"{SERVICE} {sn} {text(row.get('MSRMT_HR'))}"
            for field, (suffix, _) in FIELDS.items():
                out.reading(row, field, f"sdot:{sn}:{suffix}", t, where, group=f"sdot:{sn}")
        return oldest

    async def poll(self, client: SeoulClient, platform: Platform) -> dict[str, Any]:
        out = Rows(f"{SOURCE_TAG}-{self.name}")
        new: dict[str, ThingIn] = {}
        pages = 0
        newest_before = self.newest_read
        total = 0
        while True:
            start = pages * self.page_rows + 1
            answer = await client.fetch(SERVICE, start, start + self.page_rows - 1)
            pages += 1
            if answer.empty:
                break
            total = answer.total
            with reading(answer, f"{SERVICE} rows {start}-{start + self.page_rows - 1}"):
                oldest = self.read(platform, answer.section, out, new)
            got = len(rows(answer.section.get("row")))
            if oldest is None or got < self.page_rows or oldest <= newest_before or start + self.page_rows > total:
                break
            if pages >= (self.max_pages if newest_before == NO_TIME else self.catchup_pages):
                break  # first poll: the latest hours only; after an outage: at most catchup_pages
        self.pages += pages
        if new:
            await platform.register(list(new.values()))
            self.sensors.update(new)
        submitted = await out.submit(platform, self.done)
        self.newest_read = max([self.newest_read, *self.done.values()])
        return {"pages": pages, "rows": len(out), "sensors": len(self.sensors),
                "new_sensors": len(new), "accepted": submitted.accepted, "rejected": submitted.rejected, "unchanged": submitted.unchanged,
                "missing_values": out.missing, "available_rows": total, "rejected_by_reason": submitted.reasons}

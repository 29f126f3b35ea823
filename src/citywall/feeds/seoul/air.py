"""RealtimeCityAir: the 25 district air-quality stations (도시대기측정소), hourly.

One call returns every station's latest hour (MSRDT, KST). The service publishes a new hour some
10-40 minutes after the hour, so the feed asks every ten minutes and stores only hours it has not
stored yet. Stations are the simulator's Things (`air:{gu code}`, kind air_station) at the same
sites, so the wall, the CAI and the alert rules read the real stations where they read simulated
ones. A row for a station that is not one of the 25, or with a word where a number belongs
("점검중"), is kept in the quarantine with the reason; an empty or "-" value is a missing hour.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from citywall.feeds.seoul.rows import Rows
from citywall.feeds.seoul.source import SOURCE_TAG, reading, thing_props
from citywall.feeds.seoul.values import rows, text
from citywall.feeds.simulator.air import load_stations
from citywall.observations.model import DatastreamIn, ThingIn

if TYPE_CHECKING:
    from citywall.feeds.seoul.client import SeoulClient
    from citywall.platform import Platform

SERVICE = "RealtimeCityAir"
# API field -> citywall quantity (observations/quantities.yaml); PM in ug/m3, gases in ppm, as stored.
FIELDS = {"PM10": "pm10", "PM25": "pm25", "O3": "o3", "NO2": "no2", "CO": "co", "SO2": "so2"}


class AirSource:
    name = "air"
    service = SERVICE

    def __init__(self, every_s: float = 600.0) -> None:
        self.every_s = every_s
        self.done: dict[str, int] = {}  # station key -> newest MSRDT read (µs)
        self._by_name: dict[str, str] = {}

    def things(self, platform: Platform) -> list[ThingIn]:
        city = platform.city
        self._by_name = {d.name_ko: code for code, d in city.districts.items()}
        return [ThingIn(
            key=f"air:{s.gu}", name=f"{s.name} 도시대기측정소", kind="air_station", lon=s.lon, lat=s.lat,
            datastreams=[DatastreamIn(quantity=q, interval_s=3600.0) for q in FIELDS.values()],
            properties=thing_props(SERVICE, station=s.name, gu=s.gu, site=s.site, region=s.region_ko, region_code=s.region,
                                   network="도시대기측정망 (urban background)"),
        ) for s in load_stations(city)]

    def read(self, section: dict[str, Any]) -> Rows:
        """The rows of one answer (no I/O: the tests read recorded answers with it)."""
        out = Rows(f"{SOURCE_TAG}-{self.name}")
        for row in rows(section.get("row")):
            station = text(row.get("MSRSTE_NM"))
            gu = self._by_name.get(station)
            if gu is None:
                out.refuse("unknown_datastream", f"{SERVICE}: station {station!r} (MSRSTE_NM) is not one of the city's district stations", row)
                continue
            t = out.time(row, "MSRDT", f"{SERVICE} {station}")
            if t is None:
                continue
            where = f"{SERVICE} {station} {text(row.get('MSRDT'))}"
            for field, quantity in FIELDS.items():
                out.reading(row, field, f"air:{gu}:{quantity}", t, where, group=f"air:{gu}")
        return out

    async def poll(self, client: SeoulClient, platform: Platform) -> dict[str, Any]:
        answer = await client.fetch(SERVICE, 1, 100)
        with reading(answer, SERVICE):
            got = self.read(answer.section)
        result = await got.submit(platform, self.done)
        return {"rows": len(got), "accepted": result.accepted, "rejected": result.rejected, "unchanged": result.unchanged,
                "missing_values": got.missing, "no_data": answer.empty, "rejected_by_reason": result.reasons}

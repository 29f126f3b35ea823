"""Replaying a file through the platform's own pipeline, at a chosen speed or as fast as it goes.

The file is read (in chunks) into columns sorted by phenomenon time, its stations are resolved to
Things (registering the district stations that are missing), and the rows go to
`platform.ingest` in batches: the same validation, store, live state and quarantine as every
other feed. Rows the file itself makes unreadable (a bad time, a value that is not a number, a
station or datastream that cannot be found) go along as pre-refused rows, so they land in the
quarantine with the file, row and column in the detail, never silently dropped. A blank value is
a value the station did not measure: counted and skipped.

Pacing follows phenomenon time: at `speed` N a file's hour takes 3600/N seconds of wall time
(3600 = an hour a second); `speed=None` sends batches as fast as the store commits them, with a
few in flight so the writer commits them in groups. The clock and the sleep are parameters, so a
test can check the requested sleeps without waiting for them.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

import msgspec
import numpy as np

from citywall.feeds.replay.formats import Layout, resolve_layout
from citywall.feeds.replay.rows import BAD_TIME, BAD_VALUE, Collected
from citywall.feeds.replay.source import Opened, open_file
from citywall.feeds.replay.stations import POLLUTANTS, StationBook, load_places
from citywall.ingest.batch import NO_TIME, ObservationBatch
from citywall.observations.model import ThingIn

if TYPE_CHECKING:
    from citywall.platform import Platform

BATCH_ROWS = 50_000  # rows per ObservationBatch at full speed
IN_FLIGHT = 4  # batches submitted and not yet acknowledged: lets the writer commit them in groups
TICK_S = 0.05  # when paced, rows within this much wall time of each other go in one batch


class ReplayError(RuntimeError):
    """The replay could not go on (the store refused a batch); the message says how far it got."""


@dataclass
class ReplayOptions:
    path: Path
    format: str | None = None  # "long", "seoul-station" or None (from the header)
    speed: float | None = None  # N x real time by phenomenon time; None = as fast as possible
    maps: dict[str, str] = field(default_factory=dict)  # field or quantity -> column
    stations: Path | None = None  # CSV of station locations (name, lon, lat)
    encoding: str | None = None  # CSV; None = detect (UTF-8, UTF-8 with BOM, CP949)
    timezone: str | None = None  # for times without an offset; None = the city's (Asia/Seoul)
    source: str = "replay"  # the batches' source, as the quarantine and metrics show it
    batch_rows: int = BATCH_ROWS
    in_flight: int = IN_FLIGHT

    def __post_init__(self) -> None:
        self.path = Path(self.path)
        if self.speed is not None and not self.speed > 0:
            raise ValueError("speed must be a positive number (or None for as fast as possible)")


@dataclass
class Summary:
    file: str
    format: str
    encoding: str | None
    layout: str
    rows_read: int = 0  # data rows in the file
    observations: int = 0  # values found (blanks excluded), each accepted or refused
    blanks: dict[str, int] = field(default_factory=dict)
    accepted: int = 0
    refused: dict[str, int] = field(default_factory=dict)
    first_us: int | None = None
    last_us: int | None = None
    registered_things: list[str] = field(default_factory=list)
    seconds: float = 0.0
    speed: float | None = None

    @property
    def rate(self) -> float:
        return self.observations / self.seconds if self.seconds > 0 else 0.0

    def text(self) -> str:
        refused = sum(self.refused.values())
        lines = [
            f"replayed {self.file} ({self.format}{', ' + self.encoding if self.encoding else ''}; {self.layout})",
            f"  rows read {self.rows_read:,}; values {self.observations:,}: accepted {self.accepted:,}, refused {refused:,}"
            + (" (" + ", ".join(f"{r} {n:,}" for r, n in sorted(self.refused.items())) + "; see GET /api/quarantine?source=replay)" if refused else ""),
            f"  blanks (not measured, skipped) {sum(self.blanks.values()):,}"
            + (" (" + ", ".join(f"{c} {n:,}" for c, n in self.blanks.items() if n) + ")" if any(self.blanks.values()) else ""),
            f"  phenomenon time {_iso(self.first_us)} .. {_iso(self.last_us)}",
            f"  {self.seconds:.1f} s at {'max speed' if self.speed is None else f'x{self.speed:g}'}: {self.rate:,.0f} values/s",
        ]
        if self.registered_things:
            lines.append(f"  registered {len(self.registered_things)} Things: {', '.join(self.registered_things)}")
        return "\n".join(lines)


def _iso(t_us: int | None) -> str | None:
    return None if t_us is None else datetime.fromtimestamp(t_us / 1e6, timezone.utc).isoformat(timespec="seconds")


class _Refs(Sequence):
    """The datastream reference of each row of a batch, as the file gave it (for the quarantine)."""

    def __init__(self, display: list[str], ref: np.ndarray) -> None:
        self.display, self.ref = display, ref

    def __len__(self) -> int:
        return len(self.ref)

    def __getitem__(self, i):  # noqa: ANN001, ANN204
        if isinstance(i, slice):
            return [self.display[r] for r in self.ref[i].tolist()]
        return self.display[int(self.ref[i])]

    def __iter__(self) -> Iterator[str]:
        d = self.display
        return (d[r] for r in self.ref.tolist())


class Pacer:
    """Sleeps so that phenomenon time passes `speed` times faster than wall time (None: no sleeps)."""

    def __init__(self, speed: float | None, monotonic: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep) -> None:
        self.speed, self.monotonic, self.sleep = speed, monotonic, sleep
        self._t0: int | None = None
        self._wall0 = 0.0
        self.behind_s = 0.0  # how late the last batch went (the store was slower than the pace)

    async def wait(self, t_us: int) -> None:
        if self.speed is None or t_us == NO_TIME:
            return
        if self._t0 is None:
            self._t0, self._wall0 = t_us, self.monotonic()
            return
        delay = self._wall0 + (t_us - self._t0) / 1e6 / self.speed - self.monotonic()
        if delay > 0:
            self.behind_s = 0.0
            await self.sleep(delay)
        else:
            self.behind_s = -delay


@dataclass
class _Prepared:
    opened: Opened
    layout: Layout
    collected: Collected
    things: list[ThingIn]
    station_of_ref: list[str | None]  # Thing key per station reference
    why_of_ref: list[tuple[str, str] | None]  # (column, why) per reference that cannot be resolved
    arrays: dict[str, np.ndarray]  # every value, sorted by phenomenon time (Collected.arrays)


class Replay:
    def __init__(self, options: ReplayOptions, *, monotonic: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
                 progress: Callable[[str], None] | None = None, progress_every_s: float = 5.0) -> None:
        self.options = options
        self.monotonic, self.sleep = monotonic, sleep
        self.progress, self.progress_every_s = progress, progress_every_s
        self.summary: Summary | None = None
        self.state = "starting"
        self.sent = 0
        self.total = 0
        self.last_t_us: int | None = None

    # -- reading ------------------------------------------------------------------------
    def read(self, platform: Platform) -> _Prepared:
        """Read and parse the whole file (blocking: run it in a thread)."""
        o = self.options
        opened = open_file(o.path, encoding=o.encoding)
        layout = resolve_layout(opened.header, o.format, o.maps, platform.registry.quantity_codes)
        tz = ZoneInfo(o.timezone or platform.city.timezone)
        collected = Collected(layout, tz)
        for chunk in opened.chunks:
            collected.add(chunk)
        book = StationBook(platform.city, platform.registry, load_places(o.stations) if o.stations else None)
        things: dict[str, ThingIn] = {}
        station_of_ref: list[str | None] = []
        why_of_ref: list[tuple[str, str] | None] = []
        station_col = layout.station or ""
        for ref in collected.refs:
            if ref[0] == "station":
                key, thing, why = book.thing_key(ref[1])
                if thing is not None:
                    things.setdefault(thing.key, thing)
                station_of_ref.append(key)
                why_of_ref.append(None if why is None else (station_col, why))
            else:
                # A district station's datastream key (air:11680:pm25) registers its Thing like its name would.
                thing_key, _, quantity = ref[1].rpartition(":")
                if thing_key.startswith("air:") and thing_key not in platform.registry.thing_by_key and quantity in POLLUTANTS:
                    _, thing, _ = book.thing_key(thing_key)
                    if thing is not None:
                        things.setdefault(thing.key, thing)
                station_of_ref.append(None)
                why_of_ref.append(None)
        # Sorted here, in the thread: a server's event loop (the replay feed) must not stall on a big file.
        return _Prepared(opened, layout, collected, list(things.values()), station_of_ref, why_of_ref, collected.arrays())

    def _resolve(self, platform: Platform, prep: _Prepared) -> tuple[np.ndarray, list[tuple[str, str] | None], list[str]]:
        """Datastream id per reference (-1: refused, with (column, why)), and how to show each reference."""
        reg = platform.registry
        by_thing_quantity = {(reg.things[d.thing_id].key, d.quantity): d.id for d in list(reg.datastreams.values())}
        lay = prep.layout
        refs = prep.collected.refs
        ds = np.full(len(refs), -1, dtype=np.int64)
        why = list(prep.why_of_ref)
        display: list[str] = []
        for i, ref in enumerate(refs):
            if ref[0] == "datastream":
                text = ref[1]
                display.append(text)
                if not text:
                    why[i] = (lay.datastream or lay.station or "", "no datastream (or station and quantity) given")
                    continue
                found = int(reg.resolve([int(text) if text.isdigit() else text])[0])
                if found < 0:
                    why[i] = (lay.datastream or "", f"no datastream {text!r}; register its Thing first (POST /api/things)")
                ds[i] = found
                continue
            station, quantity = ref[1], ref[2]
            key = prep.station_of_ref[i]
            q = quantity.strip().lower()
            display.append(f"{key or station}:{q or quantity}")
            if why[i] is not None:
                continue
            if q not in reg.quantities:
                why[i] = (lay.quantity or "", f"unknown quantity {quantity!r}; known: {', '.join(reg.quantities)}")
                continue
            found = by_thing_quantity.get((key, q), -1)  # type: ignore[arg-type]
            if found < 0:
                why[i] = (lay.quantity or lay.station or "", f"Thing {key!r} has no datastream of {q}")
            ds[i] = found
        return ds, why, display

    # -- running ------------------------------------------------------------------------
    async def run(self, platform: Platform) -> Summary:
        o = self.options
        started = self.monotonic()
        prep = await asyncio.to_thread(self.read, platform)
        new_things = []
        if prep.things:
            new_things, _ = await platform.register(prep.things)
        ds_of_ref, why_of_ref, display = self._resolve(platform, prep)
        col = prep.collected
        a = prep.arrays
        n = len(a["t"])
        self.total = n
        ds = await asyncio.to_thread(np.take, ds_of_ref, a["ref"]) if len(ds_of_ref) else np.empty(0, np.int64)
        summary = Summary(str(o.path), prep.layout.format, prep.opened.encoding, prep.layout.describe(), col.rows_read, n,
                          dict(col.blanks), speed=o.speed, registered_things=[t.key for t in new_things])
        valid = a["t"][a["t"] != NO_TIME]
        if len(valid):
            summary.first_us, summary.last_us = int(valid[0]), int(valid[-1])
        self.summary = summary
        # Ragged CSV lines have no columns to speak of: each is quarantined whole, as it was.
        for line, text, why in prep.opened.ragged or []:
            where = f"line {line}" if line is not None else "a line"
            await asyncio.wrap_future(platform.pipeline.quarantine_payload(
                text.encode(), o.source, "malformed", f"{o.path.name} {where}: {why}"))
            summary.refused["malformed"] = summary.refused.get("malformed", 0) + 1
            summary.observations += 1
        self.state = "ok"

        units = np.array([*col.units, None], dtype=object) if col.units else None
        pacer = Pacer(o.speed, self.monotonic, self.sleep)
        limit = asyncio.Semaphore(max(1, o.in_flight))
        failures: list[BaseException] = []
        tasks: set[asyncio.Task] = set()
        last_report = self.monotonic()

        async def send(batch: ObservationBatch) -> None:
            try:
                result = await platform.ingest(batch)
            except BaseException as exc:  # noqa: BLE001 - reported after the in-flight batches settle
                failures.append(exc)
                return
            finally:
                limit.release()
            summary.accepted += result.accepted
            for r in result.rejected:
                summary.refused[r.reason] = summary.refused.get(r.reason, 0) + 1

        for s, e in self._slices(a["t"], o.speed, o.batch_rows):
            if failures:
                break
            t = a["t"][s:e]
            first_valid = t[t != NO_TIME]
            await pacer.wait(int(first_valid[0]) if len(first_valid) else NO_TIME)
            await limit.acquire()
            batch = self._batch(prep, a, s, e, ds, why_of_ref, display, units)
            task = asyncio.create_task(send(batch))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
            self.sent = e
            if len(first_valid):
                self.last_t_us = int(first_valid[-1])
            now = self.monotonic()
            if self.progress is not None and now - last_report >= self.progress_every_s:
                last_report = now
                rate = e / max(now - started, 1e-9)
                self.progress(f"replay: {e:,} of {n:,} values ({e / max(n, 1):.0%}), phenomenon time {_iso(self.last_t_us)}, "
                              f"{rate:,.0f} values/s" + (f", {pacer.behind_s:.1f} s behind the pace" if pacer.behind_s > 1 else ""))
        if tasks:
            await asyncio.gather(*tasks)
        summary.seconds = self.monotonic() - started
        if failures:
            self.state = "down"
            raise ReplayError(f"the store refused a batch after {summary.accepted:,} values were accepted: {failures[0]}") from failures[0]
        self.state = "done"
        return summary

    @staticmethod
    def _slices(t: np.ndarray, speed: float | None, batch_rows: int) -> Iterator[tuple[int, int]]:
        """Row ranges to send as one batch: at most `batch_rows`; when paced, also cut where the
        phenomenon time moves on by more than TICK_S of wall time."""
        n = len(t)
        if speed is None:
            yield from ((s, min(s + batch_rows, n)) for s in range(0, n, batch_rows))
            return
        window = max(1, int(speed * TICK_S * 1e6))
        valid = t != NO_TIME
        start = int(t[valid][0]) if valid.any() else 0
        group = np.where(valid, (t - start) // window, -1)
        cuts = [0, *(np.flatnonzero(group[1:] != group[:-1]) + 1).tolist(), n]
        for s, e in zip(cuts[:-1], cuts[1:]):
            yield from ((k, min(k + batch_rows, e)) for k in range(s, e, batch_rows))

    def _batch(self, prep: _Prepared, a: dict[str, np.ndarray], s: int, e: int, ds_all: np.ndarray,
               why_of_ref: list[tuple[str, str] | None], display: list[str], units: np.ndarray | None) -> ObservationBatch:
        ref, err, row, colx = a["ref"][s:e], a["err"][s:e], a["row"][s:e], a["col"][s:e]
        t, value, ds = a["t"][s:e], a["value"][s:e], ds_all[s:e]
        unit = units[a["unit"][s:e]] if units is not None else None
        refused = np.flatnonzero((err != 0) | (ds < 0))
        pre_reason = pre_detail = None
        name = self.options.path.name
        csv = prep.opened.kind == "csv"
        col = prep.collected
        where = (lambda r, c: f"{name} row {r} (line {r + 1}), column {c}") if csv else (lambda r, c: f"{name} row {r}, column {c}")
        if len(refused):
            pre_reason = np.full(e - s, None, dtype=object)
            pre_detail = np.full(e - s, None, dtype=object)
            time_col = prep.layout.time
            for i in refused.tolist():
                r = int(row[i])
                if err[i] == BAD_TIME:
                    pre_reason[i] = "malformed"
                    pre_detail[i] = f"{where(r, time_col)}: {col.notes.get((r, col.columns.index(time_col)), 'unreadable time')}"
                elif err[i] == BAD_VALUE:
                    pre_reason[i] = "malformed"
                    pre_detail[i] = f"{where(r, col.columns[colx[i]])}: {col.notes.get((r, int(colx[i])), 'not a number')}"
                else:
                    column, why = why_of_ref[int(ref[i])] or ("", "unknown datastream")
                    pre_reason[i] = "unknown_datastream"
                    pre_detail[i] = f"{where(r, column or col.columns[colx[i]])}: {why}"

        def raw(i: int) -> str:
            r, c = int(row[i]), int(colx[i])
            bad_text = col.texts.get((r, c)) if err[i] == BAD_VALUE else None
            return msgspec.json.encode({
                "file": name, "row": r, "column": col.columns[c], "datastream": display[int(ref[i])],
                "phenomenonTime": None if t[i] == NO_TIME else _iso(int(t[i])),
                "result": bad_text if bad_text is not None else (None if not np.isfinite(value[i]) else float(value[i])),
                "unit": None if unit is None else unit[i],
            }).decode()

        return ObservationBatch(ds=ds.copy(), t_us=t, value=value, unit=unit, pre_reason=pre_reason, pre_detail=pre_detail,
                                raw=raw, refs=_Refs(display, ref), source=self.options.source)

"""Phenomenon times as files write them, to microseconds since the epoch (UTC).

Files repeat the same few thousand time stamps over many rows (a year of hourly data has 8,760),
so a column is dictionary-encoded and only its distinct values are parsed: the Python parser
then costs nothing next to the rest of a replay, and it can be exact about Seoul's conventions
(hour 24 is midnight of the next day) and about time zones (a time without an offset is local
time of the city, Asia/Seoul for Seoul; Korea has had no daylight saving time since 1988, but
the zone database is used anyway so a city that has it is right too).
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from citywall.ingest.batch import NO_TIME

_COMPACT = re.compile(r"^(\d{4})(\d{2})(\d{2})(\d{2})?(\d{2})?$")  # YYYYMMDD[HH[MM]]
# YYYY-MM-DD HH:MM[:SS] without an offset, also with "T" or "_" (S-DoT's MSRMT_HR 2024-01-12_10:00:00)
_SEPARATED = re.compile(r"^(\d{4})-(\d{2})-(\d{2})[ T_](\d{2}):(\d{2})(?::(\d{2}))?$")
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


class TimeError(ValueError):
    """A time stamp that cannot be read; the message says what was expected."""


def parse_time(text: str, tz: ZoneInfo) -> int:
    """One time stamp to epoch microseconds.

    Accepted: YYYYMMDD (the day's start), YYYYMMDDHH with HH 00..24 (24 = 00 of the next day, as
    Seoul's station files write the last hour of a day), YYYYMMDDHHMM, YYYY-MM-DD HH:MM[:SS] (also
    with "T" or "_" between, hour 24 too), and ISO 8601
    (`2024-03-01T13:00:00+09:00`, `2024-03-01 13:00`, `...Z`). Without an offset, `tz` applies."""
    s = text.strip()
    if not s:
        raise TimeError("the time is empty")
    m = _COMPACT.match(s) or _SEPARATED.match(s)
    if m:
        year, month, day, hour, minute, *rest = (int(g) if g is not None else 0 for g in m.groups())
        second = rest[0] if rest else 0
        if hour > 24 or minute > 59 or second > 59 or (hour == 24 and (minute or second)):
            raise TimeError(f"{text!r}: hour must be 00..24 (24 = midnight of the next day)")
        try:
            # Wall-clock arithmetic (an aware datetime plus days keeps the wall time): hour 24 is
            # 00:00 of the next day, and a zone with daylight saving time gets that day's offset.
            local = datetime(year, month, day, hour % 24, minute, second, tzinfo=tz) + timedelta(days=hour // 24)
        except ValueError as exc:
            raise TimeError(f"{text!r}: {exc}") from None
        return (local.astimezone(timezone.utc) - _EPOCH) // timedelta(microseconds=1)
    try:
        at = datetime.fromisoformat(s)
    except ValueError:
        raise TimeError(f"{text!r} is not a time (expected YYYYMMDDHH, YYYYMMDD or ISO 8601 such as 2024-03-01T13:00:00+09:00)") from None
    if at.tzinfo is None:
        at = at.replace(tzinfo=tz)
    return (at - _EPOCH) // timedelta(microseconds=1)


def parse_column(column: pa.Array | pa.ChunkedArray, tz: ZoneInfo) -> tuple[np.ndarray, dict[int, str]]:
    """A time column to (epoch microseconds with NO_TIME where unreadable, {row: why} for those rows).

    Typed columns (Parquet timestamps, dates, integers such as 2024030113) are taken as they are;
    a timestamp without a time zone is local time in `tz`."""
    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks()
    typ = column.type
    if pa.types.is_timestamp(typ) or pa.types.is_date(typ):
        if pa.types.is_date(typ):
            column = column.cast(pa.timestamp("s"))
            typ = column.type
        if typ.tz is None:
            column = pc.assume_timezone(column, str(tz), ambiguous="earliest", nonexistent="earliest")
        t = column.cast(pa.timestamp("us", tz="UTC")).cast(pa.int64())
        out = t.fill_null(NO_TIME).to_numpy(zero_copy_only=False).astype(np.int64)
        return out, {int(i): "the time is empty" for i in np.flatnonzero(out == NO_TIME)}
    if pa.types.is_integer(typ):
        column = column.cast(pa.string())
    elif not (pa.types.is_string(typ) or pa.types.is_large_string(typ)):
        raise TimeError(f"a time column of type {typ} cannot be read; expected text, a timestamp or YYYYMMDDHH numbers")
    enc = column.dictionary_encode()
    values = enc.dictionary.to_pylist()
    parsed = np.empty(len(values), dtype=np.int64)
    why: list[str | None] = []
    for k, text in enumerate(values):
        try:
            parsed[k] = parse_time(text, tz)
            why.append(None)
        except TimeError as exc:
            parsed[k] = NO_TIME
            why.append(str(exc))
    idx = enc.indices.fill_null(-1).to_numpy(zero_copy_only=False)
    out = np.where(idx >= 0, parsed[np.maximum(idx, 0)] if len(parsed) else NO_TIME, NO_TIME).astype(np.int64)
    errors = {int(i): (why[idx[i]] if idx[i] >= 0 else "the time is empty") for i in np.flatnonzero(out == NO_TIME)}
    return out, errors

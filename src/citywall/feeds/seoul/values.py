"""Reading the values Seoul's Open API sends, which are not always what its documents promise.

The same field arrives as a number (25.0), a number in a string ("25", "1,234"), an empty string or
"-" for a missing value, or a word ("점검중", under inspection); a section that is normally an array
arrives as one object when it has one element, or as an empty string when it has none. Missing is
not an error (a station skips an hour); a word where a number belongs is, and the caller keeps the
row in the quarantine with the message of `BadValue`.
"""

from __future__ import annotations

import math
from typing import Any
from zoneinfo import ZoneInfo

from citywall.feeds.replay.times import TimeError, parse_time

MISSING = {"", "-", "--", "null", "none", "n/a", "na"}


class BadValue(ValueError):
    """A field that should hold a number or a time holds something else; the message names it."""


def is_missing(value: Any) -> bool:
    return value is None or (isinstance(value, str) and value.strip().lower() in MISSING)


def number(value: Any, field: str = "value") -> float | None:
    """A float, or None when the API says "no value" (None, "", "-"); BadValue for anything else."""
    if is_missing(value):
        return None
    if isinstance(value, bool):
        raise BadValue(f"{field} {value!r} is not a number")
    if isinstance(value, (int, float)):
        out = float(value)
    else:
        try:
            out = float(str(value).strip().replace(",", ""))
        except ValueError:
            raise BadValue(f"{field} {value!r} is not a number") from None
    if not math.isfinite(out):
        raise BadValue(f"{field} {value!r} is not a finite number")
    return out


def text(value: Any) -> str:
    """A field as stripped text ("" for None)."""
    return "" if value is None else str(value).strip()


def rows(section: Any) -> list[dict[str, Any]]:
    """A section that should be a list of objects, whichever way it came: a list, one object, or
    nothing (None, "", an empty list)."""
    if section is None or (isinstance(section, str) and not section.strip()):
        return []
    if isinstance(section, dict):
        return [section]
    if isinstance(section, list):
        return [r for r in section if isinstance(r, dict)]
    raise BadValue(f"expected a list of objects, got {type(section).__name__} {str(section)[:60]!r}")


def first(section: Any) -> dict[str, Any]:
    """The one object of a section that holds one (citydata's LIVE_PPLTN_STTS, WEATHER_STTS, ...)."""
    got = rows(section)
    return got[0] if got else {}


SEOUL_TZ = ZoneInfo("Asia/Seoul")


def kst_us(value: Any, field: str = "time") -> int | None:
    """Microseconds since the epoch for a Korea Standard Time stamp in any of the API's layouts
    (MSRDT 202105111500, PPLTN_TIME 2024-01-12 10:20, MSRMT_HR 2024-01-12_10:00:00, YYYYMMDDHH);
    None when missing; BadValue when it is not a time. Hour 24 is midnight of the next day.

    The replay's parser (feeds/replay/times.py) is the one reader of Seoul's time stamps: it
    takes compact stamps by their length (a strptime pattern would read 2021051115 as 01:05)."""
    if is_missing(value):
        return None
    try:
        return parse_time(text(value), SEOUL_TZ)
    except TimeError as exc:
        raise BadValue(f"{field} {value!r} is not a time the Seoul API uses (e.g. 202105111500 or 2024-01-12 10:20): {exc}") from None

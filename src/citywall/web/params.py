"""Request parameters every endpoint reads the same way."""

from __future__ import annotations

from datetime import datetime

from fastapi import HTTPException


def parse_time_us(value: str) -> int:
    """Microseconds since the epoch from ISO 8601 with an offset, or epoch milliseconds; 400 otherwise."""
    try:
        if value.lstrip("-").isdigit():
            if len(value) > 16:
                raise ValueError("too many digits")
            return int(value) * 1000
        dt = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise HTTPException(400, f"bad time {value!r}: use ISO 8601 with an offset, or epoch milliseconds") from None
    if dt.tzinfo is None:
        raise HTTPException(400, f"time {value!r} needs a UTC offset (e.g. +09:00 or Z)")
    return int(dt.timestamp() * 1e6)


# Times outside this window are typing errors, not data (and would overflow the date arithmetic).
EARLIEST_US = 946_684_800_000_000  # 2000-01-01T00:00:00Z
LATEST_US = 4_102_444_800_000_000  # 2100-01-01T00:00:00Z


def parse_moment_us(value: str) -> int:
    """A moment in the platform's life (an incident, a replay): parse_time_us within 2000-2100."""
    us = parse_time_us(value)
    if not EARLIEST_US <= us < LATEST_US:
        raise HTTPException(400, f"time {value!r} is outside 2000-2100")
    return us

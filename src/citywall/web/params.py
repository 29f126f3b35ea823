"""Request parameters every endpoint reads the same way."""

from __future__ import annotations

from datetime import datetime

from fastapi import HTTPException


def parse_time_us(value: str) -> int:
    """Microseconds since the epoch from ISO 8601 with an offset, or epoch milliseconds; 400 otherwise."""
    try:
        if value.lstrip("-").isdigit():
            return int(value) * 1000
        dt = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise HTTPException(400, f"bad time {value!r}: use ISO 8601 with an offset, or epoch milliseconds") from None
    if dt.tzinfo is None:
        raise HTTPException(400, f"time {value!r} needs a UTC offset (e.g. +09:00 or Z)")
    return int(dt.timestamp() * 1e6)

"""The arithmetic every breakpoint index shares (Korea's CAI, the US EPA AQI): truncate the
concentration to the table's precision, find its band, interpolate linearly within it."""

from __future__ import annotations

import math
from collections.abc import Sequence


def truncate(value: float, decimals: int) -> float:
    scale = 10**decimals
    # The small epsilon keeps 0.07 (0.06999999... in binary) at 0.070, as a person reading it would.
    return math.floor(value * scale + 1e-9) / scale


def interpolate(c: float, bands: Sequence[tuple[float, float]], index_bands: Sequence[tuple[int, int]]) -> int | None:
    """Ip = (IHI - ILO) / (BPHI - BPLO) x (Cp - BPLO) + ILO, rounded half up; None above the top band."""
    for (bp_lo, bp_hi), (i_lo, i_hi) in zip(bands, index_bands):
        if c <= bp_hi:
            c = max(c, bp_lo)
            return int(math.floor((i_hi - i_lo) / (bp_hi - bp_lo) * (c - bp_lo) + i_lo + 0.5))
    return None

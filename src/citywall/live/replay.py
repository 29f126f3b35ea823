"""The whole picture as it was at a past moment, rebuilt from the store, for after-action review.

Values are the newest each datastream had at that moment (raw rows, or hourly rollups once raw rows
have passed retention); incidents and alarms are folded from their events up to it; the CAI is
recomputed from the hourly means before it. The document has the live snapshot's shape (plus the
incidents and alarms) so the wall draws a past moment with the code that draws the present.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from citywall.live.state import STALE_INTERVALS, LiveState

if TYPE_CHECKING:
    from citywall.platform import Platform


def picture_at(platform: Platform, t_us: int) -> dict[str, Any]:
    p = platform
    reg = p.registry
    n = reg.size
    # Far enough back to find every datastream that was still fresh at the moment.
    longest = float(reg.ds_interval[:n][reg.ds_known[:n]].max()) if n and reg.ds_known[:n].any() else 3600.0
    rows = p.store.values_at(t_us, int(STALE_INTERVALS * longest * 1e6))
    state = LiveState(reg)
    if len(rows["ds"]):
        state.apply(rows["ds"].astype(np.int64), rows["t"].astype(np.int64), rows["v"].astype(np.float64))
    return {
        "type": "replay",
        "time_ms": t_us // 1000,
        "city": p.city.id,
        "datastreams": state.values(),
        "aggregates": state.aggregates(t_us),
        "freshness": state.freshness(t_us),
        "air": p.air.compute(t_us),
        "incidents": p.incidents.at(t_us),
        "alarms": p.alarms.at(t_us),
    }

"""Rows read from one answer, on their way into the platform's pipeline.

A source adds readings by datastream key and rows it could not read with the reason; `submit`
turns them into one ObservationBatch. Readings the store already holds (an hourly source polled
every ten minutes sees the same hour six times) are dropped here, by the newest stored time per
datastream, so that only really new values reach the pipeline and a repeat poll does not fill the
quarantine with duplicates. Unreadable rows go in as pre-refused rows, so the pipeline keeps them
in the quarantine with their reason and the original row as the payload.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from citywall.feeds.seoul.values import BadValue, kst_us, number
from citywall.ingest.batch import NO_TIME, ObservationBatch

if TYPE_CHECKING:
    from citywall.platform import Platform


def _tag(raw: str, detail: str | None) -> str:
    return "refused:" + hashlib.sha1(f"{raw}\n{detail}".encode()).hexdigest()


@dataclass
class Submitted:
    sent: int = 0
    accepted: int = 0
    rejected: int = 0
    unchanged: int = 0
    reasons: dict[str, int] = field(default_factory=dict)


@dataclass
class Rows:
    source: str
    keys: list[str] = field(default_factory=list)
    t_us: list[int] = field(default_factory=list)
    values: list[float] = field(default_factory=list)
    raw: list[str] = field(default_factory=list)
    group: list[str | None] = field(default_factory=list)  # the Thing a row is of, for the source's watermarks
    reason: list[str | None] = field(default_factory=list)
    detail: list[str | None] = field(default_factory=list)
    missing: int = 0  # fields the API left empty ("" or "-"): not stored, not an error

    def add(self, key: str, t_us: int, value: float, raw: dict[str, Any] | str, group: str | None = None) -> None:
        self._row(key, t_us, value, raw, None, None, group)

    def reading(self, row: dict[str, Any], field: str, key: str, t_us: int | None, where: str, *, group: str | None = None,
                parse: Callable[[Any, str], float | None] = number) -> None:
        """One field of a row as an observation of `key`: added, counted as missing ("" / "-", or no
        time), or refused as malformed with `where` (service, station, time) before the reason."""
        try:
            v = parse(row.get(field), field)
        except BadValue as exc:
            self.refuse("malformed", f"{where}: {exc}", row, key=key)
            return
        if v is None or t_us is None:
            self.missing += 1
            return
        self.add(key, t_us, v, row, group=group or key)

    def time(self, row: dict[str, Any], field: str, where: str) -> int | None:
        """A row's measurement time, or None with the row refused as malformed (unreadable or missing:
        a row without its time cannot become observations)."""
        try:
            t = kst_us(row.get(field), field)
        except BadValue as exc:
            self.refuse("malformed", f"{where}: {exc}", row)
            return None
        if t is None:
            self.refuse("malformed", f"{where}: no measurement time ({field})", row)
        return t

    def extend(self, other: Rows) -> None:
        """Take the rows of another answer read on its own (so a part that fails adds nothing)."""
        for name in ("group", "keys", "t_us", "values", "raw", "reason", "detail"):
            getattr(self, name).extend(getattr(other, name))
        self.missing += other.missing

    def refuse(self, reason: str, detail: str, raw: dict[str, Any] | str, key: str = "") -> None:
        """A row that cannot become an observation; kept in the quarantine as `reason`."""
        self._row(key, NO_TIME, float("nan"), raw, reason, detail, None)

    def _row(self, key: str, t_us: int, value: float, raw: Any, reason: str | None, detail: str | None, group: str | None) -> None:
        self.group.append(group)
        self.keys.append(key)
        self.t_us.append(int(t_us))
        self.values.append(float(value))
        self.raw.append(raw if isinstance(raw, str) else json.dumps(raw, ensure_ascii=False))
        self.reason.append(reason)
        self.detail.append(detail)

    def __len__(self) -> int:
        return len(self.keys)

    async def submit(self, platform: Platform, marks: dict[str, int] | None = None) -> Submitted:
        """Store the new rows. `marks` (Thing -> newest time already handed over) is the source's
        memory across polls: rows at or before it are not sent again even when the store refused
        them (a sensor's sentinel reading is quarantined once, not every poll); it moves forward
        only once the pipeline has acknowledged the batch."""
        out = Submitted()
        if not self.keys:
            return out
        marks = {} if marks is None else marks
        ds = platform.registry.resolve(self.keys)
        t = np.array(self.t_us, dtype=np.int64)
        refused = np.array([r is not None for r in self.reason], dtype=bool)
        newest = platform.live.newest_times()
        known = (ds >= 0) & (ds < len(newest))
        seen = np.zeros(len(ds), dtype=bool)
        seen[known] = t[known] <= newest[ds[known]]
        seen |= np.array([g is not None and self.t_us[i] <= marks.get(g, NO_TIME) for i, g in enumerate(self.group)], dtype=bool)
        # A refused row the source sends again unchanged (the same bad hour, polled every ten minutes)
        # is quarantined once.
        tags = [_tag(self.raw[i], self.detail[i]) if refused[i] else None for i in range(len(ds))]
        seen &= ~refused  # a refused row's time means nothing; it is judged by its tag alone
        seen |= np.array([tag is not None and tag in marks for tag in tags], dtype=bool)
        keep = ~seen
        out.unchanged = int((~keep).sum())
        idx = np.flatnonzero(keep)
        if not len(idx):
            return out
        reason = np.array([self.reason[i] for i in idx], dtype=object)
        detail = np.array([self.detail[i] for i in idx], dtype=object)
        raws = [self.raw[i] for i in idx]
        keys = [self.keys[i] for i in idx]
        batch = ObservationBatch(
            ds=ds[idx].astype(np.int64), t_us=t[idx], value=np.array([self.values[i] for i in idx], dtype=np.float64),
            pre_reason=reason if refused[idx].any() else None, pre_detail=detail if refused[idx].any() else None,
            raw=lambda i: raws[i], refs=keys, source=self.source,
        )
        # Shielded: cancelling an awaited ingest would cancel the pipeline's future while the writer holds it.
        result = await asyncio.shield(platform.ingest(batch))
        out.sent, out.accepted, out.rejected = len(batch), result.accepted, len(result.rejected)
        if len(marks) > 100_000:  # a long run's memory of refused rows: forget the oldest half
            for old in [k for k in marks if k.startswith("refused:")][:50_000]:
                del marks[old]
        for i in idx.tolist():
            if tags[i] is not None:
                marks[tags[i]] = 0
            g = self.group[i]
            if g is not None and self.t_us[i] > marks.get(g, NO_TIME):
                marks[g] = self.t_us[i]
        for r in result.rejected:
            out.reasons[r.reason] = out.reasons.get(r.reason, 0) + 1
        return out

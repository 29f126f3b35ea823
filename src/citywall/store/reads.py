"""Reads whose SQL means the same on DuckDB and PostgreSQL, written once for both stores.

Each store gives `reader()`: a connection (DuckDB's per-thread cursor, or PostgreSQL's adapter with
DuckDB's calling convention) on which these run beside the writer.
"""

from __future__ import annotations

from typing import Any

import msgspec

from citywall.observations.model import Datastream, Thing

HOUR_US = 3_600_000_000

QUARANTINE_COLUMNS = ["batch_id", "row_index", "received_at_ms", "source", "reason", "detail", "datastream", "phenomenon_time", "result", "payload"]


class SharedReads:
    def reader(self) -> Any:  # provided by each store
        raise NotImplementedError

    def get_meta(self, key: str) -> str | None:
        row = self.reader().execute("SELECT value FROM meta WHERE key = ?", [key]).fetchone()
        return row[0] if row else None

    def load_registry(self, *, after: tuple[int, int] = (0, 0)) -> tuple[list[Thing], list[Datastream]]:
        """Every Thing and Datastream, or those with ids above `after` (thing id, datastream id): what
        other processes sharing a PostgreSQL store registered since."""
        cur = self.reader()
        things = [
            Thing(r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7], r[8], msgspec.json.decode(r[9]) if r[9] else {})
            for r in cur.execute("SELECT id, key, name, kind, lon, lat, gu, dong, simulated, properties FROM things WHERE id > ? ORDER BY id",
                                 [after[0]]).fetchall()
        ]
        datastreams = [Datastream(*r[:6], list(r[6] or []), r[7]) for r in cur.execute(
            "SELECT id, key, thing_id, quantity, unit, name, sentinels, interval_s FROM datastreams WHERE id > ? ORDER BY id",
            [after[1]]).fetchall()]
        return things, datastreams

    def quarantined(self, *, reason: str | None = None, source: str | None = None, limit: int = 100) -> list[dict[str, Any]]:
        """Refused rows and payloads, newest first, optionally of one reason or source."""
        where, params = [], []
        if reason:
            where.append("reason = ?")
            params.append(reason)
        if source:
            where.append("source = ?")
            params.append(source)
        sql = "SELECT batch_id, row_index, epoch_ms(received_at), source, reason, detail, datastream, phenomenon_time, result, payload FROM quarantine"
        if where:
            sql += " WHERE " + " AND ".join(where)
        rows = self.reader().execute(sql + " ORDER BY received_at DESC, batch_id DESC, row_index LIMIT ?", [*params, limit]).fetchall()
        return [dict(zip(QUARANTINE_COLUMNS, r)) for r in rows]

    def quarantine_counts(self) -> dict[str, int]:
        return dict(self.reader().execute("SELECT reason, count(*) FROM quarantine GROUP BY reason ORDER BY reason").fetchall())

    def counts(self) -> dict[str, int]:
        cur = self.reader()
        return {t: int(cur.execute(f"SELECT count(*) FROM {t}").fetchone()[0])  # type: ignore[index]
                for t in ("observations", "observations_hourly", "quarantine", "batches")}

    def _history_split(self, resolution: str, start_us: int, end_us: int) -> tuple[int, int, int]:
        """(start, raw_from, hourly_to) of a bucketed history query: buckets before the rollup watermark
        come from `observations_hourly` [start, hourly_to), the rest from raw rows [raw_from, end)."""
        if resolution == "minute":
            return start_us, start_us, start_us
        # Rolled-up rows cover whole hours; a start inside an hour must cover it whole too.
        start_us -= start_us % HOUR_US
        watermark = int(self.get_meta("rollup_watermark_us") or 0)
        raw_from = max(start_us, min(watermark, end_us))
        return start_us, raw_from, raw_from

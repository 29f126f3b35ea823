"""Append-only event tables for records with a lifecycle (incidents, alarms).

A record is never updated in place: each change is a new row, and the record is the fold of its rows.
That keeps every step with who and when (the timeline is the audit trail), survives a crash as
anything else the writer commits does, and lets replay rebuild the picture at any past moment from
the same rows the live state was built from.
"""

from __future__ import annotations

from typing import Any

import msgspec

from citywall.store import Store
from citywall.store.embedded import atomic

# table -> (id column, columns beside seq/id/at/event/by/data)
TABLES = {"incident_events": ("incident_id", ("step", "note", "external")), "alarm_events": ("alarm_id", ())}


class EventTable:
    """One event table. `append` runs on the writer thread; reads on the caller's cursor."""

    def __init__(self, store: Store, table: str) -> None:
        if table not in TABLES:
            raise ValueError(f"no event table {table!r}")
        self.store, self.table = store, table
        self.id_col, self.extra = TABLES[table]

    def reserve(self, n: int) -> list[int]:
        """Seqs for events not written yet, for ids made from them (INC-..., ALM-...); from any thread."""
        return self.store.take_ids(self.table, n)

    def append(self, events: list[dict[str, Any]], *, transaction: bool = True) -> list[dict[str, Any]]:
        """Write events (keys: id, at_us, event, by, data, and the table's extra columns), in a transaction
        of their own or, with transaction=False, in the caller's (with the audit row of the same action)."""
        cols = ["seq", self.id_col, "event_time", "event", "actor", *self.extra, "data"]
        rows = []
        # Seqs from the store (a sequence on PostgreSQL): several processes may append to one table.
        # An event may bring the seq reserved for it (a record whose id is made from it).
        fresh = [e for e in events if e.get("seq") is None]
        for e, seq in zip(fresh, self.store.take_ids(self.table, len(fresh))):
            e["seq"] = seq
        for e in events:
            seq = e["seq"]
            rows.append([seq, e["id"], e["at_us"], e["event"], e["by"], *(e.get(c) for c in self.extra),
                         msgspec.json.encode(e.get("data") or {}).decode()])
        marks = ", ".join("make_timestamptz(?)" if c == "event_time" else "?" for c in cols)
        con = self.store.con
        sql = f"INSERT INTO {self.table} ({', '.join(cols)}) VALUES ({marks})"
        if transaction:
            atomic(self.store, lambda: con.executemany(sql, rows))
        else:
            con.executemany(sql, rows)
        return events

    def events(self, ids: list[str] | None = None, *, until_us: int | None = None) -> list[dict[str, Any]]:
        """Events in the order they were written, of some records or all, up to a time."""
        where, params = [], []
        if ids is not None:
            if not ids:
                return []
            where.append(f"{self.id_col} IN (SELECT unnest(?::VARCHAR[]))")
            params.append(ids)
        if until_us is not None:
            where.append("event_time <= make_timestamptz(?)")
            params.append(until_us)
        sql = f"SELECT seq, {self.id_col}, epoch_us(event_time), event, actor, {''.join(c + ', ' for c in self.extra)}data FROM {self.table}"
        if where:
            sql += " WHERE " + " AND ".join(where)
        out = []
        for r in self.store.reader().execute(sql + " ORDER BY seq", params).fetchall():
            e = {"seq": r[0], "id": r[1], "at_us": r[2], "event": r[3], "by": r[4]}
            e.update(zip(self.extra, r[5:5 + len(self.extra)]))
            e["data"] = msgspec.json.decode(r[-1]) if r[-1] else {}
            out.append(e)
        return out

    def open_ids(self, *, opened: str, closed: str, until_us: int | None = None, since_us: int | None = None) -> list[str]:
        """Records with an `opened` event and no `closed` event up to a time (all time by default);
        with `since_us`, also those closed after it (what a timeline of recent activity shows)."""
        until = "" if until_us is None else " AND event_time <= make_timestamptz(?)"
        params: list[Any] = [opened] + ([until_us] if until_us is not None else [])
        params += [closed] + ([until_us] if until_us is not None else [])
        recent = ""
        if since_us is not None:
            recent = f" OR {self.id_col} IN (SELECT {self.id_col} FROM {self.table} WHERE event = ? AND event_time > make_timestamptz(?){until})"
            params += [closed, since_us] + ([until_us] if until_us is not None else [])
        sql = (f"SELECT DISTINCT {self.id_col} FROM {self.table} WHERE event = ?{until} AND ({self.id_col} NOT IN "
               f"(SELECT {self.id_col} FROM {self.table} WHERE event = ?{until}){recent})")
        return [r[0] for r in self.store.reader().execute(sql, params).fetchall()]

    def find_external(self, external: str) -> str | None:
        """The record first written with this `external` value (a source's own id for a case it sent)."""
        row = self.store.reader().execute(
            f"SELECT {self.id_col} FROM {self.table} WHERE external = ? ORDER BY seq LIMIT 1", [external]).fetchone()
        return row[0] if row else None

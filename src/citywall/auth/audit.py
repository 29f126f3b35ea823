"""The append-only audit log: who did what, when, as a hash chain.

Each row's hash is SHA-256 over the previous row's hash and the row's canonical JSON, so changing
or removing any row breaks every hash after it and `verify` names the first broken one. There is
deliberately no update or delete method. (A chain cannot show that its newest rows were cut off;
whoever needs that keeps the latest hash elsewhere, e.g. in a daily report.)

`append` writes through the store's writer connection: run it on the pipeline's writer thread,
ideally inside `atomic` together with the change it records.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from citywall.store.embedded import EmbeddedStore

GENESIS = "0" * 64  # the prev_hash of the first row
MAX_QUERY = 10_000


def canonical(row: dict[str, Any]) -> str:
    """The row (without its own hash) as canonical JSON: sorted keys, no spaces, UTF-8 kept."""
    return json.dumps(row, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def row_hash(prev_hash: str, row: dict[str, Any]) -> str:
    return hashlib.sha256((prev_hash + canonical(row)).encode()).hexdigest()


class AuditLog:
    def __init__(self, store: EmbeddedStore, clock: Any) -> None:
        self.store = store
        self.clock = clock  # a Clock (now_us()) or a callable returning microseconds
        self._tail: tuple[int, str | None] | None = None  # the newest row this log wrote: (seq, hash)

    def _last(self, con: Any) -> tuple[int, str] | None:
        """The newest row: by its primary key when this log wrote it (the row may have been rolled back
        since, so it is looked up, not trusted), else by a scan of the table (once, at start)."""
        if self._tail is not None and self._tail[1] is not None:
            row = con.execute("SELECT seq, hash FROM audit_log WHERE seq = ?", [self._tail[0]]).fetchone()
            if row is not None and row[1] == self._tail[1]:
                after = con.execute("SELECT seq, hash FROM audit_log WHERE seq = ?", [self._tail[0] + 1]).fetchone()
                if after is None:
                    return row
        return con.execute("SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1").fetchone()

    def _now_us(self) -> int:
        c = self.clock
        return int(c.now_us()) if hasattr(c, "now_us") else int(c())

    def append(self, actor: str, action: str, target: str | None = None, detail: dict[str, Any] | None = None,
               *, at_us: int | None = None) -> dict[str, Any]:
        """Add a row and return it (with seq, at_us, prev_hash and hash). `detail` must be JSON
        (no NaN); it is stored as it reads back, so the hash verifies after the round trip."""
        if not actor or not action:
            raise ValueError("an audit row needs an actor and an action")
        try:
            detail = json.loads(json.dumps(detail if detail is not None else {}, allow_nan=False))
        except (TypeError, ValueError) as exc:
            raise ValueError(f"audit detail for {action!r} is not plain JSON: {exc}") from None
        if not isinstance(detail, dict):
            raise ValueError(f"audit detail for {action!r} must be a JSON object, not {type(detail).__name__}")
        text = json.dumps(detail, ensure_ascii=False)
        try:
            (text + str(actor) + str(action) + str(target)).encode("utf-8")
        except UnicodeEncodeError as exc:
            raise ValueError(f"audit row for {action!r} is not valid Unicode: {exc}") from None
        con = self.store.con
        # Several processes may share a PostgreSQL store: the read of the newest row and the insert after
        # it must not interleave with another's, or the chain forks (the insert then fails on the key).
        self.store.lock("audit_log")
        last = self._last(con)
        seq, prev = (int(last[0]) + 1, last[1]) if last else (1, GENESIS)
        self._tail = (seq, None)  # the hash is filled in below, once the row is written
        row = {"seq": seq, "at_us": int(self._now_us() if at_us is None else at_us), "actor": str(actor), "action": str(action),
               "target": None if target is None else str(target), "detail": detail, "prev_hash": prev}
        digest = row_hash(prev, row)
        con.execute(
            "INSERT INTO audit_log (seq, logged_at, actor, action, target, detail, prev_hash, hash) "
            "VALUES (?, make_timestamptz(?), ?, ?, ?, ?, ?, ?)",
            [seq, row["at_us"], row["actor"], row["action"], row["target"], text, prev, digest],
        )
        self._tail = (seq, digest)
        return _public({**row, "hash": digest})

    def query(self, limit: int = 100, actor: str | None = None, action: str | None = None,
              since_us: int | None = None) -> list[dict[str, Any]]:
        """Rows newest first; `action` matches exactly, or a prefix when it ends in '.' or '*'
        (e.g. "user." or "incident*")."""
        where, params = [], []
        if actor is not None:
            where.append("actor = ?")
            params.append(actor)
        if action is not None:
            if action.endswith(("*", ".")):
                where.append("starts_with(action, ?)")
                params.append(action.rstrip("*"))
            else:
                where.append("action = ?")
                params.append(action)
        if since_us is not None:
            where.append("logged_at >= make_timestamptz(?)")
            params.append(int(since_us))
        sql = f"SELECT {_COLUMNS} FROM audit_log"
        if where:
            sql += " WHERE " + " AND ".join(where)
        limit = max(1, min(int(limit), MAX_QUERY))
        rows = self.store.reader().execute(sql + " ORDER BY seq DESC LIMIT ?", [*params, limit]).fetchall()
        return [_public(_row(r)) for r in rows]

    def verify(self) -> tuple[bool, int | None]:
        """Recompute the chain from the first row: (True, None), or (False, the first seq at which
        a row was changed, inserted or removed)."""
        cur = self.store.con.cursor()  # a cursor of its own: a long read never shares a result set
        try:
            cur.execute("SET TimeZone = 'UTC'")
            cur.execute(f"SELECT {_COLUMNS} FROM audit_log ORDER BY seq")
            expected, prev = 1, GENESIS
            while chunk := cur.fetchmany(10_000):
                for r in chunk:
                    row = _row(r)
                    stored = row.pop("hash")
                    if row["seq"] != expected:
                        return False, expected
                    if row["prev_hash"] != prev or row_hash(prev, row) != stored:
                        return False, row["seq"]
                    expected, prev = expected + 1, stored
            return True, None
        finally:
            cur.close()


_COLUMNS = "seq, epoch_us(logged_at), actor, action, target, detail, prev_hash, hash"


def _row(r: tuple) -> dict[str, Any]:
    return {"seq": int(r[0]), "at_us": int(r[1]), "actor": r[2], "action": r[3], "target": r[4],
            "detail": json.loads(r[5]) if r[5] is not None else None, "prev_hash": r[6], "hash": r[7]}


def _public(row: dict[str, Any]) -> dict[str, Any]:
    return {**row, "at_ms": row["at_us"] // 1000}

"""Versioned schema migrations: numbered SQL files per dialect, applied in order when a store opens.

`migrations/<dialect>/NNN_name.sql` takes a store from version NNN-1 to NNN; the version a store
has is `meta.schema_version`. Each file runs in a transaction of its own together with the version
bump, so a failed migration leaves the store at the version before it. On PostgreSQL several
processes may start at once: the migration transaction first takes an advisory lock and reads the
version again under it, so each file runs exactly once.

Stores written before migrations were versioned ran every statement at each open; the files for
versions 1 and 2 are the same idempotent statements, so those stores (version 1 or 2) open as before.
"""

from __future__ import annotations

import re
from importlib.resources import files
from typing import Any

DIALECTS = ("duckdb", "postgresql")
MIGRATION_LOCK = 0x63_77_6D_67  # 'cwmg': the PostgreSQL advisory lock key held while migrating


def available(dialect: str) -> list[tuple[int, str, str]]:
    """(version, file name, SQL) of every migration of a dialect, in order."""
    if dialect not in DIALECTS:
        raise ValueError(f"no migrations for {dialect!r}")
    out = []
    for f in (files("citywall.store.migrations") / dialect).iterdir():
        m = re.fullmatch(r"(\d{3})_[a-z0-9_]+\.sql", f.name)
        if m:
            out.append((int(m.group(1)), f.name, f.read_text(encoding="utf-8")))
    out.sort()
    if [v for v, _, _ in out] != list(range(1, len(out) + 1)):
        raise RuntimeError(f"{dialect} migrations are not numbered 001, 002, ... without gaps: {[n for _, n, _ in out]}")
    return out


def latest(dialect: str) -> int:
    return len(available(dialect))


def current(con: Any) -> int:
    """The version a store has: 0 for an empty database."""
    has_meta = con.execute(
        "SELECT count(*) FROM information_schema.tables WHERE table_name = 'meta' AND table_schema = current_schema()"
    ).fetchone()[0]
    if not has_meta:
        return 0
    row = con.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
    return int(row[0]) if row else 0


def migrate(con: Any, dialect: str, *, where: str, until: int | None = None) -> int:
    """Bring the store on `con` (autocommit; `?` placeholders) up to the newest version (or `until`);
    return its version. `where` names the store in errors."""
    steps = available(dialect)
    newest = len(steps) if until is None else until
    have = current(con)
    if have > len(steps):
        raise RuntimeError(f"{where} has schema version {have}; this citywall knows up to {len(steps)}: upgrade citywall")
    for version, name, sql in steps:
        if version <= have or version > newest:
            continue
        con.execute("BEGIN")
        try:
            if dialect == "postgresql":
                con.execute("SELECT pg_advisory_xact_lock(?)", [MIGRATION_LOCK])
                if current(con) >= version:  # another process did it while this one waited
                    con.execute("COMMIT")
                    continue
            con.execute(sql)
            con.execute(
                "INSERT INTO meta (key, value) VALUES ('schema_version', ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                [str(version)],
            )
            con.execute("COMMIT")
        except BaseException as exc:
            con.execute("ROLLBACK")
            raise RuntimeError(f"migration {dialect}/{name} of {where} failed (the store stays at version {version - 1}): {exc}") from exc
        have = version
    return current(con)

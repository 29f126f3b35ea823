"""Where observations are kept: the embedded DuckDB store (a file) or PostgreSQL (a URL).

Both stores have the same public methods (EmbeddedStore's); `open_store` picks one by the `--db` value.
"""

from __future__ import annotations

import re
import urllib.parse
from typing import TYPE_CHECKING, Union

from citywall.store.embedded import EmbeddedStore, Write

POSTGRES_SCHEMES = ("postgresql://", "postgres://")


def is_postgres(db: str) -> bool:
    return db.startswith(POSTGRES_SCHEMES)


def redact_url(url: str) -> str:
    """The URL without its password (after the user name, or a `password=` parameter): what logs, errors
    and /api/health may show of a store or broker URL."""
    parts = urllib.parse.urlsplit(url)
    netloc = parts.netloc
    if "@" in netloc:
        userinfo, host = netloc.rsplit("@", 1)  # a password may itself hold an unescaped "@"
        if ":" in userinfo:
            userinfo = userinfo.split(":", 1)[0] + ":***"
        netloc = f"{userinfo}@{host}"
    query = re.sub(r"(?i)(^|&)(password=)[^&]*", r"\1\2***", parts.query)
    if (netloc, query) == (parts.netloc, parts.query):
        return url
    return f"{parts.scheme}://{netloc}{parts.path}" + (f"?{query}" if query else "") + (f"#{parts.fragment}" if parts.fragment else "")


def open_store(db: str) -> Store:
    """A PostgreSQL store for a `postgresql://` URL, else the DuckDB file at that path (":memory:" too).

    Raises StoreUnavailable, naming the store, when it cannot be opened (a DuckDB file another
    process holds; a PostgreSQL server that does not answer)."""
    if is_postgres(db):
        from citywall.store.postgres import PostgresStore

        try:
            return PostgresStore(db)
        except ConnectionError as exc:
            raise StoreUnavailable(str(exc)) from None
    import duckdb

    try:
        return EmbeddedStore(db)
    except duckdb.IOException as exc:
        raise StoreUnavailable(f"cannot open {db}: {exc}") from None


class StoreUnavailable(OSError):
    """The store could not be opened; the message says which and why."""


if TYPE_CHECKING:  # psycopg is imported only when a PostgreSQL URL is given
    from citywall.store.postgres import PostgresStore
Store = Union[EmbeddedStore, "PostgresStore"]

__all__ = ["EmbeddedStore", "Store", "StoreUnavailable", "Write", "is_postgres", "open_store", "redact_url"]

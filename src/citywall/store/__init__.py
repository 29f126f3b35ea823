"""Where observations are kept: the embedded DuckDB store (PostgreSQL comes in a later issue)."""

from citywall.store.embedded import EmbeddedStore, Write

__all__ = ["EmbeddedStore", "Write"]

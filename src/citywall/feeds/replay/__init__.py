"""Replay of recorded data files (CSV or Parquet) through the platform's pipeline: `citywall replay`.

    formats.py   the long and Seoul station-file layouts, and --map for others
    source.py    opening the file: encoding detection (CP949 / UTF-8 / BOM), chunked reading
    times.py     time stamps (YYYYMMDDHH with hour 24, ISO 8601; local time of the city)
    rows.py      the file's values as time-ordered columns, with where each came from
    stations.py  station names -> Things (district stations by gu; others only if placed)
    replay.py    pacing by phenomenon time and the batches sent to `platform.ingest`
    feed.py      the same as a feed of a running server (`--feed replay`)
"""

from citywall.feeds.replay.replay import Pacer, Replay, ReplayError, ReplayOptions, Summary

__all__ = ["Pacer", "Replay", "ReplayError", "ReplayOptions", "Summary"]

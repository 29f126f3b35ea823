"""`citywall replay FILE`: open the store as the server would (without feeds, MQTT or the web
app), replay the file through the pipeline, print a summary.

The store must not be in use: DuckDB allows one process per file, so with the server running
the command stops with a clear message instead of waiting or writing beside it. (To replay into
a running server, use its replay feed, or a PostgreSQL store, which several processes share.)
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import sys
from pathlib import Path

from citywall.feeds.replay.formats import LayoutError, parse_maps
from citywall.feeds.replay.replay import Replay, ReplayError, ReplayOptions
from citywall.feeds.replay.source import FileFormatError
from citywall.feeds.replay.stations import StationsFileError

# Historical files are old: the platform's "too old" check (the raw retention window) would refuse
# them all. A replay accepts any age; a server started later with a shorter raw retention rolls
# the old raw rows up into its hourly series on its next housekeeping round.
REPLAY_MAX_AGE_DAYS = 100 * 365.0
LOCKED = ("the store {db} is in use by another process (a running citywall server?); stop the server first, "
          "or replay into a running server with `citywall up --feed replay --feed-option path=FILE`, "
          "or use a shared store (--db postgresql://...)")


def parse_speed(text: str) -> float | None:
    if text.strip().lower() == "max":
        return None
    try:
        speed = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--speed takes a number (3600 = an hour a second) or max, not {text!r}") from None
    if not speed > 0:
        raise argparse.ArgumentTypeError("--speed must be positive")
    return speed


def run(args: argparse.Namespace) -> int:
    import duckdb

    from citywall.platform import Platform, Settings

    try:
        options = ReplayOptions(Path(args.file), format=args.format, speed=args.speed, maps=parse_maps(args.map),
                                stations=Path(args.stations) if args.stations else None, encoding=args.encoding, timezone=args.timezone)
    except (LayoutError, ValueError) as exc:
        print(f"citywall replay: {exc}", file=sys.stderr)
        return 2
    if not options.path.is_file():
        print(f"citywall replay: no such file: {options.path}", file=sys.stderr)
        return 2
    wanted = {"db": args.db, "feed": "none", "city": args.city, "raw_retention_days": REPLAY_MAX_AGE_DAYS, "mqtt": "off"}
    known = {f.name for f in dataclasses.fields(Settings)}
    settings = Settings(**{k: v for k, v in wanted.items() if k in known})
    if not str(args.db).startswith(("postgres://", "postgresql://")):
        Path(args.db).parent.mkdir(parents=True, exist_ok=True)
    try:
        platform = Platform(settings)
    except (duckdb.Error, ValueError, OSError) as exc:  # OSError: the store layer's StoreUnavailable too
        print(f"citywall replay: {LOCKED.format(db=args.db)}" if "lock" in str(exc).lower() else f"citywall replay: {exc}", file=sys.stderr)
        return 2
    replay = Replay(options, progress=lambda line: print(line, file=sys.stderr, flush=True))
    try:
        summary = asyncio.run(_replay(platform, replay))
    except (FileFormatError, LayoutError, StationsFileError, ReplayError) as exc:
        print(f"citywall replay: {exc}", file=sys.stderr)
        return 1
    print(summary.text(), flush=True)
    return 0


async def _replay(platform, replay: Replay):  # noqa: ANN001, ANN202
    """Only the writer runs: the replay stores, validates and quarantines like any feed; alert rules
    and the air index run in the server, which reads what was stored when it starts."""
    platform.bus.bind(asyncio.get_running_loop())
    platform.pipeline.start()
    try:
        return await replay.run(platform)
    finally:
        await asyncio.to_thread(platform.pipeline.stop)
        platform.store.close()

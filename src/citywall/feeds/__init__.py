"""Feeds bring observations in. Each is a class with `name`, `simulated` and an async `run`
that registers its Things and submits batches through the platform, the public way in.

Built-in feeds are looked up here by the name `citywall up --feed NAME` takes.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from citywall.platform import Platform


class Feed(Protocol):
    name: str
    simulated: bool

    async def run(self, platform: Platform) -> None:
        """Run until cancelled: register Things, then submit observations."""

    def status(self) -> dict:
        """What the wall shows about this feed: at least `running`, `state` ("starting", "ok" or
        "down": the source cannot be reached or answers errors, from the first failure on; the wall
        names a feed that is down), `error` (why, or None), `last_ok` and `down_since` (ISO 8601)
        where the feed has a source to lose; then its own counters."""


# name -> "module:Class"
BUILTIN_FEEDS = {
    "simulator": "citywall.feeds.simulator:SimulatorFeed",
    "seoul": "citywall.feeds.seoul:SeoulFeed",
    "replay": "citywall.feeds.replay.feed:ReplayFeed",
}


def make_feed(name: str, **options: object) -> Feed:
    if name not in BUILTIN_FEEDS:
        raise ValueError(f"unknown feed {name!r}; built-in feeds: {', '.join(BUILTIN_FEEDS)}, or none")
    module, cls = BUILTIN_FEEDS[name].split(":")
    try:
        return getattr(importlib.import_module(module), cls)(**options)
    except TypeError as exc:  # an option the feed does not have: say so instead of a traceback
        raise ValueError(f"feed {name}: {exc}") from None


def feed_names(spec: str) -> list[str]:
    """The feeds of `--feed`: one name, a comma-separated list (`simulator,seoul`) or "none"."""
    names = [n.strip() for n in spec.split(",") if n.strip()]
    names = [n for n in names if n != "none"]
    unknown = [n for n in names if n not in BUILTIN_FEEDS]
    if unknown:
        raise ValueError(f"unknown feed {unknown[0]!r}; built-in feeds: {', '.join(BUILTIN_FEEDS)}, or none")
    if len(set(names)) != len(names):
        raise ValueError(f"feed listed twice in {spec!r}")
    return names


def make_feeds(spec: str, *, seed: int, options: dict[str, object]) -> list[Feed]:
    """Every feed of `spec`. With one feed it gets every option, as before. With several, an option
    named `feed.key` (`seoul.api_key=...`) goes to that feed only, and a plain `key` to each feed
    whose constructor takes it, so `--feed simulator,seoul` does not hand the simulator an API key."""
    import inspect

    names = feed_names(spec)
    if len(names) == 1:
        prefix = f"{names[0]}."
        return [make_feed(names[0], seed=seed, **{k.removeprefix(prefix): v for k, v in options.items()})]
    per: dict[str, dict[str, object]] = {n: {} for n in names}
    for key, value in options.items():
        name, dot, rest = key.partition(".")
        if dot and name in per:
            per[name][rest] = value
            continue
        takers = []
        for n in names:
            module, cls = BUILTIN_FEEDS[n].split(":")
            params = inspect.signature(getattr(importlib.import_module(module), cls)).parameters
            if key in params or any(p.kind is p.VAR_KEYWORD for p in params.values()):
                takers.append(n)
        if not takers:
            raise ValueError(f"feed option {key!r} is not an option of {', '.join(names)}")
        for n in takers:
            per[n][key] = value
    return [make_feed(n, seed=seed, **per[n]) for n in names]

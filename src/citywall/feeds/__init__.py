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
        """What the wall shows about this feed (running, last batch, errors)."""


# name -> "module:Class"
BUILTIN_FEEDS = {
    "simulator": "citywall.feeds.simulator:SimulatorFeed",
}


def make_feed(name: str, **options: object) -> Feed:
    if name not in BUILTIN_FEEDS:
        raise ValueError(f"unknown feed {name!r}; built-in feeds: {', '.join(BUILTIN_FEEDS)}, or none")
    module, cls = BUILTIN_FEEDS[name].split(":")
    return getattr(importlib.import_module(module), cls)(**options)

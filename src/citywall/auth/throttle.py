"""Keeping password guessing from costing the city its server.

Argon2 is slow and memory-hungry on purpose, so a burst of logins is a burst of work: checks run on
a pool of their own (never the threads the live picture and the rules use), at most QUEUE wait for
it, and after FAILURES failed attempts from one address or on one name within WINDOW_S, further
attempts are refused for the rest of the window without being checked at all.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

T = TypeVar("T")
FAILURES = 10
WINDOW_S = 600.0
QUEUE = 8
WORKERS = 2


class Throttled(Exception):
    def __init__(self, message: str, retry_after_s: int) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class LoginGuard:
    def __init__(self, failures: int = FAILURES, window_s: float = WINDOW_S, queue: int = QUEUE) -> None:
        self.failures, self.window_s, self.queue = failures, window_s, queue
        self._pool = ThreadPoolExecutor(max_workers=WORKERS, thread_name_prefix="citywall-password")
        self._waiting = 0
        self._failed: dict[str, deque[float]] = {}

    def _recent(self, key: str, now: float) -> deque[float]:
        times = self._failed.setdefault(key, deque())
        while times and now - times[0] > self.window_s:
            times.popleft()
        return times

    def check(self, client: str, name: str) -> None:
        """Raise Throttled if this client or this name has failed too often lately."""
        now = time.monotonic()
        for key in (f"client:{client}", f"name:{name}"):
            times = self._recent(key, now)
            if len(times) >= self.failures:
                raise Throttled("too many failed logins; wait and try again", int(self.window_s - (now - times[0])) + 1)
        if len(self._failed) > 100_000:  # a scan over many names: forget the quiet ones
            self._failed = {k: v for k, v in self._failed.items() if self._recent(k, now)}

    def failed(self, client: str, name: str) -> None:
        now = time.monotonic()
        for key in (f"client:{client}", f"name:{name}"):
            self._recent(key, now).append(now)

    async def run(self, fn: Callable[[], T]) -> T:
        """Run a password check on the guard's own pool; Throttled when too many already wait."""
        if self._waiting >= self.queue:
            raise Throttled("too many logins at once; try again in a few seconds", 5)
        self._waiting += 1
        try:
            return await asyncio.get_running_loop().run_in_executor(self._pool, fn)
        finally:
            self._waiting -= 1

"""The platform clock. `--speed X` makes the whole platform (simulator, freshness, the
future-time check) run X times faster than the wall clock, so a day can be shown in minutes."""

from __future__ import annotations

import time


class Clock:
    def __init__(self, speed: float = 1.0, start_us: int | None = None) -> None:
        if speed <= 0:
            raise ValueError("speed must be positive")
        self.speed = speed
        self._real0 = time.time()
        self._start_us = int(self._real0 * 1e6) if start_us is None else start_us

    def now_us(self) -> int:
        return self._start_us + int((time.time() - self._real0) * 1e6 * self.speed)

    def now(self) -> float:
        return self.now_us() / 1e6

    def sleep_for(self, platform_seconds: float) -> float:
        """Real seconds to sleep so that `platform_seconds` pass on this clock."""
        return max(0.0, platform_seconds / self.speed)

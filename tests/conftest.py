"""Shared helpers for the core test suite: in-process platforms, a frozen clock, payload builders."""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from citywall.platform import Platform, Settings
from citywall.web.app import create_app

US = 1_000_000
MINUTE_US = 60 * US
HOUR_US = 3600 * US
DAY_US = 86400 * US

# A fixed "now" for deterministic tests: 2025-06-15 03:30 UTC = 12:30 KST.
FIXED_NOW_US = int(datetime(2025, 6, 15, 3, 30, tzinfo=timezone.utc).timestamp()) * US

# Well-known places (lon, lat) and the gu / legal dong that hold them.
CITY_HALL = (126.9780, 37.5665)  # 중구 태평로1가
COEX = (127.0590, 37.5125)  # 강남구 삼성동
GYEONGBOKGUNG = (126.9770, 37.5796)  # 종로구 세종로
MYEONGDONG = (126.9860, 37.5636)  # 중구 (another dong than City Hall)
JUNG_GU, GANGNAM_GU, JONGNO_GU = "11140", "11680", "11110"


class FrozenClock:
    """Pins `platform.clock` (shared by the pipeline, the hub and the API) to a settable instant."""

    def __init__(self, platform: Platform, now_us: int) -> None:
        self.now_us = now_us
        platform.clock.now_us = lambda: self.now_us  # type: ignore[method-assign]

    def advance(self, us: int) -> None:
        self.now_us += us


def iso(us: int, offset_minutes: int = 0) -> str:
    """ISO 8601 with an explicit offset for epoch microseconds."""
    tz = timezone(timedelta(minutes=offset_minutes))
    return datetime.fromtimestamp(us // US, tz).replace(microsecond=us % US).isoformat()


def make_platform(db: Path | str, **settings: Any) -> Platform:
    # No MQTT unless a test asks: an embedded broker per platform would clash on its port.
    return Platform(Settings(db=str(db), **{"feed": "none", "mqtt": "off", **settings}))


def credential(platform: Platform, role: str = "feed", name: str = "tests") -> dict[str, str]:
    """Headers carrying a new credential of `role`: an API key for feed, else a user's session."""
    accounts = platform.accounts
    if role == "feed":
        key = platform.pipeline.call(lambda: accounts.create_key(f"{name}-{role}", "feed", by="tests")).result()
        return {"X-API-Key": key["key"]}
    platform.pipeline.call(lambda: accounts.create_user(f"{name}-{role}", role, "correct horse battery staple")).result()
    session = platform.pipeline.call(lambda: accounts.open_session(f"{name}-{role}")).result()
    return {"Authorization": f"Bearer {session['token']}"}


@contextmanager
def running(db: Path | str, now_us: int | None = None, *, anonymous: bool = False, **settings: Any) -> Iterator[tuple[Platform, TestClient, FrozenClock | None]]:
    """A platform and a TestClient with its lifespan running; optionally a frozen clock. The client
    sends a feed API key (as a data source would) unless `anonymous`."""
    platform = make_platform(db, **settings)
    clock = FrozenClock(platform, now_us) if now_us is not None else None
    with TestClient(create_app(platform)) as client:
        if not anonymous:
            client.headers.update(credential(platform))
        yield platform, client, clock


def thing(key: str, where: tuple[float, float], quantities: list[str] | list[dict], kind: str = "air_station", **extra: Any) -> dict:
    streams = [q if isinstance(q, dict) else {"quantity": q} for q in quantities]
    return {"key": key, "name": key.upper(), "kind": kind, "lon": where[0], "lat": where[1], "datastreams": streams, **extra}


def register(client: TestClient, things: list[dict]) -> dict[str, int]:
    """POST /api/things; returns datastream key -> id."""
    r = client.post("/api/things", json=things)
    assert r.status_code == 200, r.text
    return r.json()["datastreams"]


def obs(ds: int | str, t_us: int, result: float, unit: str | None = None, offset_minutes: int = 0) -> dict:
    row: dict[str, Any] = {"datastream": ds, "phenomenonTime": iso(t_us, offset_minutes), "result": result}
    if unit is not None:
        row["unit"] = unit
    return row


def post(client: TestClient, rows: list[dict] | bytes, source: str | None = None) -> dict:
    params = {"source": source} if source else None
    if isinstance(rows, bytes):
        r = client.post("/api/observations", content=rows, params=params, headers={"content-type": "application/json"})
    else:
        r = client.post("/api/observations", json=rows, params=params)
    assert r.status_code == 200, r.text
    return r.json()


def stored(platform: Platform, where: str = "TRUE", params: list | None = None) -> list[tuple[int, int, float]]:
    """(datastream, epoch µs, result) of stored raw observations, sorted."""
    rows = platform.store.reader().execute(
        f"SELECT datastream_id, epoch_us(phenomenon_time), result FROM observations WHERE {where} ORDER BY 1, 2", params or []
    ).fetchall()
    return [(int(a), int(b), float(c)) for a, b, c in rows]


def metric(text: str, name: str, **labels: str) -> float:
    """The value of one Prometheus sample in exposition text (0 when absent)."""
    want = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    for line in text.splitlines():
        m = re.match(r"^([a-zA-Z_:][\w:]*)(?:\{(.*)\})? (\S+)$", line)
        if not m or m.group(1) != name:
            continue
        got = ",".join(sorted(p for p in (m.group(2) or "").split(",") if p))
        if got == want:
            return float(m.group(3))
    return 0.0


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "t.duckdb"


THINGS_FOR_PIPELINE = [
    {"key": "p", "name": "pipeline test station", "kind": "air_station", "lon": CITY_HALL[0], "lat": CITY_HALL[1],
     "datastreams": [{"quantity": "pm10"}]},
]


def wait_for(what: str, check: Callable[[], Any], timeout: float = 30.0) -> Any:
    """Poll `check` until it returns something truthy (and return that); fail naming `what` after `timeout` s."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what} (last: {last!r})")

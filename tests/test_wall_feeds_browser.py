"""The wall says which feed is down: a real `citywall up --feed seoul` against the local stand-in for
the Seoul Open API, which the test then stops (an API outage) and starts again."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from browsers import Wall, chromium
from seoul_server import RecordedSeoulApi
from servers import Server

pytestmark = pytest.mark.slow

KEY = "sample-key-0000"


def _seoul_state(server: Server) -> str:
    _, body = server.request("GET", "/api/health")
    return json.loads(body)["feeds"]["seoul"]["state"]


def _until(check, what: str, timeout: float = 60) -> None:  # noqa: ANN001
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.3)
    raise AssertionError(f"not within {timeout:.0f} s: {what}")


def test_the_wall_names_a_feed_that_is_down_and_clears_it_when_it_is_back(tmp_path: Path) -> None:
    api = RecordedSeoulApi(KEY).start()
    port = api.port
    server = Server(tmp_path / "w.duckdb", tmp_path / "server.log", "--feed", "seoul", "--feed-option", f"api_key={KEY}",
                    "--feed-option", f"base_url={api.base_url}", "--feed-option", "places=강남역", "--feed-option", "sources=air,citydata",
                    "--feed-option", "air_every_s=2", "--feed-option", "citydata_every_s=2", "--feed-option", "backoff_base_s=1",
                    "--feed-option", "backoff_cap_s=2",
                    "--focus-seconds", "0")
    server.start()
    browsers = chromium()
    browser = next(browsers)
    wall = Wall(browser, f"http://127.0.0.1:{server.port}", "layout=screen&lang=en", 1920, 1080)
    try:
        _until(lambda: _seoul_state(server) == "ok", "the seoul feed is ok")
        assert wall.js("document.getElementById('feeds-down').hidden") is True
        api.stop()  # the source goes away: connection refused
        _until(lambda: _seoul_state(server) == "down", "the seoul feed is down")
        wall.page.wait_for_function("!document.getElementById('feeds-down').hidden", timeout=15_000)
        text = wall.page.locator("#feeds-down").text_content()
        assert "seoul" in text and "down" in text.lower()
        api = RecordedSeoulApi(KEY, port=port).start()  # back on the same address
        _until(lambda: _seoul_state(server) == "ok", "the seoul feed is back", timeout=120)
        wall.page.wait_for_function("document.getElementById('feeds-down').hidden", timeout=15_000)
        assert wall.errors == []
    finally:
        wall.close()
        next(browsers, None)
        server.stop()
        api.stop()

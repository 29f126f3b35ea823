"""Debian's Chromium through Playwright, and a page of the wall with its console errors collected,
for the browser tests."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, sync_playwright

CHROMIUM = os.environ.get("CITYWALL_CHROMIUM", "/usr/bin/chromium")
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--no-first-run"]


def chromium() -> Iterator[Browser]:
    """The body of a browser fixture: one Chromium for a test module."""
    if not Path(CHROMIUM).exists():
        pytest.fail(f"no Chromium at {CHROMIUM}: install Debian's (apt-get install chromium) or set CITYWALL_CHROMIUM")
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield b
        b.close()


class Wall:
    """One page with its console errors collected; `expected` are console messages that are not
    errors of the page (a refusal the page shows to the user)."""

    def __init__(self, browser: Browser, base: str, query: str, width: int = 1920, height: int = 1080,
                 expected: tuple[str, ...] = ()) -> None:
        self.context = browser.new_context(viewport={"width": width, "height": height})
        self.page: Page = self.context.new_page()
        self.errors: list[str] = []
        self.page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" and not any(x in m.text for x in expected) else None)
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        self.page.on("requestfailed", lambda r: self.errors.append(f"request failed: {r.url}"))
        self.page.goto(f"{base}/?{query}")
        self.page.wait_for_function("window.citywall && window.citywall.ready && window.citywall.live.connected", timeout=30_000)

    def js(self, expression: str, arg: object = None) -> object:
        return self.page.evaluate(expression, arg)

    def close(self) -> None:
        self.context.close()


TILE_W, TILE_H = 1920, 1080  # one screen of the 3x2 wall
ON_SCREEN = ".panel, #layers, #legend, .maplibregl-ctrl-group, .gu-label:not(.hidden), .map-banner:not([hidden]), .replay-bar, .inc-label"


def tile_violations(w: Wall, selector: str = ON_SCREEN) -> list[str]:
    """Elements that cross a bezel of the wall: each must lie inside one 1920x1080 screen."""
    boxes = w.js(f"""[...document.querySelectorAll('{selector}')].filter(e => e.getClientRects().length)
        .map(e => {{ const r = e.getBoundingClientRect(); return [e.id || e.className, r.left, r.top, r.right, r.bottom]; }})""")
    bad = []
    for name, left, top, right, bottom in boxes:  # type: ignore[union-attr]
        col, row = int(left // TILE_W), int(top // TILE_H)
        if right > (col + 1) * TILE_W or bottom > (row + 1) * TILE_H:
            bad.append(f"{name} [{left:.0f},{top:.0f} - {right:.0f},{bottom:.0f}] crosses a screen edge")
    return bad

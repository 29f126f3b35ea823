"""The wall's Commerce view in real headless Chromium against a real `citywall up --commerce DIR`
on the tiny indicator dataset of test_commerce_api.py: the Commerce button replaces "no source
connected", the districts are drawn coloured by risk signal (and by change index after the toggle),
a click shows a district's detail, and two clicks compare two districts.

A screenshot lands in `artifacts/commerce.png` for a person to look at.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser

from browsers import Wall, chromium
from servers import ROOT, Server
from test_commerce_api import ALL_RISK, CHANGE, RISK, sales, stores, write_dataset

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    tmp = tmp_path_factory.mktemp("commerce")
    out = write_dataset(tmp)
    srv = Server(tmp / "c.duckdb", tmp / "server.log", "--feed", "none", "--commerce", str(out))
    srv.start()
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    yield from chromium()


def click_district(w: Wall, code: str) -> None:
    """A mouse click at the middle of the district as MapLibre drew it (its centre on screen)."""
    x, y = w.js("""(code) => { const m = window.citywall.map.map;
        const f = m.queryRenderedFeatures({ layers: ['com-fill'] }).find((f) => f.properties.code === code);
        const ring = f.geometry.coordinates[0];
        const lon = ring.reduce((s, p) => s + p[0], 0) / ring.length, lat = ring.reduce((s, p) => s + p[1], 0) / ring.length;
        const p = m.project([lon, lat]); const r = m.getCanvas().getBoundingClientRect();
        return [r.left + p.x, r.top + p.y]; }""", code)  # type: ignore[misc]
    w.page.mouse.click(x, y)


def test_the_commerce_view_colours_districts_shows_detail_and_compares(server: Server, browser: Browser) -> None:
    w = Wall(browser, f"http://127.0.0.1:{server.port}", "layout=screen&lang=en", 1920, 1080)
    try:
        page = w.page
        commerce = page.locator("#layers .domain", has_text="Commerce")
        assert commerce.locator("button[data-layer=commerce]").is_visible()
        assert "No source connected" not in commerce.inner_text()
        commerce.locator("button[data-layer=commerce]").click()
        page.wait_for_function("window.citywall.map.map.queryRenderedFeatures({ layers: ['com-fill'] }).length >= 4", timeout=20_000)
        # The districts in the part of the map the panel (top right) leaves free.
        page.evaluate("""(() => { const panel = document.getElementById('commerce-panel').offsetWidth;
            window.citywall.map.map.fitBounds([[126.948, 37.552], [127.006, 37.570]],
              { duration: 0, padding: { left: 30, top: 80, bottom: 160, right: panel + 60 } }); })()""")
        page.wait_for_function("""new Set(window.citywall.map.map.queryRenderedFeatures({ layers: ['com-fill'] })
            .map(f => f.properties.code)).size === 4""", timeout=20_000)
        drawn = w.js("""Object.fromEntries(window.citywall.map.map.queryRenderedFeatures({ layers: ['com-fill'] })
            .map(f => [f.properties.code, [f.properties.risk_signal, f.properties._color]]))""")
        colours = {"blue": "#2563eb", "yellow": "#facc15", "orange": "#f97316", "red": "#dc2626"}
        assert drawn == {code: [level, colours[level]] for code, level in RISK.items()}  # type: ignore[comparison-overlap]
        assert page.locator("#commerce-panel .badge.sim").is_visible(), "simulated data must be labelled"
        assert "Risk signal" in page.locator("#legend").inner_text()

        # The change-index toggle recolours the same districts with its four colours.
        page.locator("#commerce-panel button[data-mode=change]").click()
        page.wait_for_function("""window.citywall.map.map.queryRenderedFeatures({ layers: ['com-fill'] })
            .every(f => f.properties._color !== undefined && ['#10b981', '#38bdf8', '#f43f5e', '#f59e0b'].includes(f.properties._color))""")
        by_change = w.js("""Object.fromEntries(window.citywall.map.map.queryRenderedFeatures({ layers: ['com-fill'] })
            .map(f => [f.properties.code, f.properties.change_index]))""")
        assert by_change == CHANGE
        assert "Change index" in page.locator("#legend").inner_text()

        # A click: the district's detail with its indicators and trends.
        click_district(w, "3110002")
        page.wait_for_selector("#commerce-panel .com-detail h4[data-code='3110002']", timeout=10_000)
        detail = page.locator("#commerce-panel .com-detail")
        assert "Myeong-dong Special Tourist Zone" in detail.inner_text() and "Tourist zone" in detail.inner_text()  # 명동 관광특구
        cells = detail.locator("tr[data-field=similr_induty_stor_co] td").all_inner_texts()
        assert cells[1] == str(stores("3110002", "CS100001", 20244))
        qoq = stores("3110002", "CS100001", 20244) / stores("3110002", "CS100001", 20243) - 1
        assert cells[2] == f"+{qoq * 100:.1f}%"
        assert detail.locator("tr[data-field=closing_rate] td").all_inner_texts()[2:] == ["+1.0 pp", "+4.0 pp"]  # rates: percentage points
        assert page.locator("#commerce-panel .com-chart canvas").count() == 1  # the ECharts line of its quarters

        # A second click: two districts compared side by side, in the order clicked.
        click_district(w, "3110004")
        page.wait_for_function("document.querySelectorAll('#commerce-panel .com-comparison thead th[data-code]').length === 2", timeout=10_000)
        heads = w.js("[...document.querySelectorAll('#commerce-panel .com-comparison thead th[data-code]')].map(th => th.dataset.code)")
        assert heads == ["3110002", "3110004"]
        risk_row = page.locator("#commerce-panel .com-comparison tr[data-field=risk_signal] td").all_inner_texts()
        assert [c.strip() for c in risk_row[1:]] == ["Caution", "Danger"]
        sales_row = page.locator("#commerce-panel .com-comparison tr[data-field=thsmon_selng_amt] td").all_inner_texts()
        assert sales_row[1:] == [f"₩{sales(c, 'CS100001', 20244) / 1e6:.1f}M" for c in ("3110002", "3110004")]
        # ... and the detail follows the newest click (its answer may come after the comparison's).
        page.wait_for_selector("#commerce-panel .com-detail h4[data-code='3110004']", timeout=10_000)
        assert w.js("window.citywall.map.selectedGu") in (None, "")  # the clicks were the districts', not a drill into the gu

        (ROOT / "artifacts").mkdir(exist_ok=True)
        page.screenshot(path=str(ROOT / "artifacts" / "commerce.png"))

        # Another business type: the map and the comparison follow it.
        page.locator("#commerce-panel select[name=business_type]").select_option("CS300011")
        page.wait_for_function("""window.citywall.map.map.queryRenderedFeatures({ layers: ['com-fill'] })
            .some(f => f.properties.code === '3110004' && f.properties.has_data === false)""", timeout=10_000)
        # All business types: each district's totals, with their own risk signal.
        page.locator("#commerce-panel button[data-mode=risk]").click()
        page.locator("#commerce-panel select[name=business_type]").select_option("*")
        page.wait_for_function("""(want) => { const got = Object.fromEntries(window.citywall.map.map.queryRenderedFeatures({ layers: ['com-fill'] })
            .map(f => [f.properties.code, f.properties.risk_signal])); return JSON.stringify(got, Object.keys(got).sort()) === JSON.stringify(want, Object.keys(want).sort()); }""",
                               arg=ALL_RISK, timeout=10_000)
        assert page.locator("#commerce-panel select[name=business_type] option:checked").inner_text() == "All business types"
        # Korean, then back to an ordinary layer: the panel and the districts go away.
        page.locator("#lang").click()
        page.wait_for_function("document.querySelector('#commerce-panel h3').textContent.includes('골목상권')")
        assert "명동 관광특구" in page.locator("#commerce-panel .com-comparison").inner_text()  # names in Korean again
        page.locator("#layers button[data-layer=cai]").click()
        assert page.locator("#commerce-panel").is_hidden()
        assert w.js("window.citywall.map.map.getLayoutProperty('com-fill', 'visibility')") == "none"
        assert w.errors == []
    finally:
        w.close()


def test_without_a_source_the_wall_says_no_source_connected(tmp_path: Path, browser: Browser) -> None:
    srv = Server(tmp_path / "n.duckdb", tmp_path / "server.log", "--feed", "none")
    srv.start()
    try:
        w = Wall(browser, f"http://127.0.0.1:{srv.port}", "layout=screen&lang=en", 1920, 1080)
        try:
            commerce = w.page.locator("#layers .domain", has_text="Commerce")
            assert "No source connected" in commerce.inner_text()
            assert commerce.locator("button").count() == 0
            assert w.errors == []
        finally:
            w.close()
    finally:
        srv.stop()

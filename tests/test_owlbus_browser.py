"""The wall's Owl-bus view in real headless Chromium against a real `citywall up`: after an operator's
plan run (through the API), the view draws the demand hexagons and the planned routes on the map,
lists the routes with length, riders and buses, and says the demand is simulated.

A screenshot lands in `artifacts/owlbus.png` for a person to look at.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser

from browsers import Wall, chromium
from servers import ROOT, Server

pytestmark = pytest.mark.slow
OPERATOR, PASSWORD = "park.planner", "a long and careful passphrase"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    tmp = tmp_path_factory.mktemp("owlbus")
    srv = Server(tmp / "owl.duckdb", tmp / "server.log", "--feed", "none")
    srv.key = srv.command("key", "add", "planner", "--role", "operator")  # the test's requests act as an operator
    srv.command("user", "add", OPERATOR, "--role", "operator", "--password-stdin", stdin=PASSWORD + "\n")
    srv.start()
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    yield from chromium()


def wait_for_run(server: Server, by: str | None = None) -> dict:
    """The finished run (of `by`: the click's request may reach the server after the first poll)."""
    deadline = time.monotonic() + 120  # a bound on waiting, not a timing assertion
    while ((job := json.loads(server.request("GET", "/api/owlbus/plan")[1]))["state"] == "running"
           or (by is not None and job["requested_by"] != by)) and time.monotonic() < deadline:
        time.sleep(0.3)
    assert job["state"] == "done", job["error"]
    return job


def plan_through_the_api(server: Server) -> dict:
    """Seoul's simulated night demand on the coarse H3 grid (resolution 6, ~23 cells): a quick plan."""
    status, body = server.request("POST", "/api/owlbus/plan", json.dumps(
        {"routes": 4, "min_nodes": 3, "max_nodes": 12, "time_budget_s": 3, "resolution": 6}).encode())
    assert status == 202, body
    return wait_for_run(server)["plan"]


def owl_view(server: Server, browser: Browser, routes: int) -> Wall:
    """The wall in English on the Owl-bus layer, once its panel lists `routes` routes."""
    w = Wall(browser, f"http://127.0.0.1:{server.port}", "layout=screen&lang=en&layer=owlbus", 1920, 1080)
    w.page.wait_for_function(f"document.querySelectorAll('#owlbus-panel tr[data-route]').length === {routes}", timeout=20_000)
    return w


def test_the_owl_bus_view_shows_the_planned_routes_over_the_demand_hexagons(server: Server, browser: Browser) -> None:
    plan = plan_through_the_api(server)

    w = owl_view(server, browser, 4)
    try:
        page = w.page
        rows = w.js("""[...document.querySelectorAll('#owlbus-panel tr[data-route]')].map(tr => [...tr.cells].map(td => td.textContent.trim()))""")
        assert [r[0] for r in rows] == ["N1", "N2", "N3", "N4"]  # type: ignore[index]
        for row, detail in zip(rows, plan["route_details"]):  # type: ignore[arg-type]
            assert int(row[1]) == len(detail["nodes"]) and row[2] == f"{detail['length_km']:.1f}" and int(row[5]) == detail["buses"]
        assert page.locator("#owlbus-panel .badge.sim").is_visible(), "simulated demand must be labelled"
        # Counts carry their unit: the simulated demand is riders a night, in the table and the legend.
        assert plan["demand_unit"] == "riders a night"
        assert "Riders a night" in page.locator("#owlbus-panel thead").inner_text()
        assert page.locator("#layers button[data-layer=owlbus]").get_attribute("class") == "on"
        # On the map: every route as a line and every demand cell as a hexagon, as MapLibre drew them.
        page.wait_for_function("""(() => { const m = window.citywall.map.map;
            return new Set(m.queryRenderedFeatures({ layers: ['owl-routes'] }).map(f => f.properties.name)).size === 4; })()""", timeout=20_000)
        cells = w.js("""new Set(window.citywall.map.map.queryRenderedFeatures({ layers: ['owl-demand-fill'] }).map(f => f.properties.node)).size""")
        assert cells == plan["nodes"]
        colours = w.js("""new Set(window.citywall.map.map.queryRenderedFeatures({ layers: ['owl-demand-fill'] }).map(f => f.properties._color)).size""")
        assert colours >= 3, "the hexagons are coloured by demand"  # type: ignore[operator]
        assert "Night demand" in page.locator("#legend").inner_text() and "riders a night" in page.locator("#legend").inner_text()
        (ROOT / "artifacts").mkdir(exist_ok=True)
        page.screenshot(path=str(ROOT / "artifacts" / "owlbus.png"))
        # Korean, then back to an ordinary layer: the Owl-bus panel and layers go away.
        page.locator("#lang").click()
        page.wait_for_function("document.querySelector('#owlbus-panel h3').textContent.includes('올빼미버스')")
        page.locator("#layers button[data-layer=cai]").click()
        assert page.locator("#owlbus-panel").is_hidden()
        assert w.js("window.citywall.map.map.getLayoutProperty('owl-routes', 'visibility')") == "none"
        assert w.errors == []
    finally:
        w.close()


def test_an_operator_starts_a_plan_from_the_view(server: Server, browser: Browser) -> None:
    first = plan_through_the_api(server)
    w = owl_view(server, browser, 4)
    try:
        page = w.page
        assert page.locator("#owlbus-panel form.owl-plan").count() == 0  # not logged in: no form
        page.locator("#login-open").click()
        page.locator("#login-dialog input[name=name]").fill(OPERATOR)
        page.locator("#login-dialog input[name=password]").fill(PASSWORD)
        page.locator("#login-dialog button[type=submit]").click()
        form = page.locator("#owlbus-panel form.owl-plan")
        form.wait_for(timeout=10_000)
        form.locator("input[name=routes]").fill("5")
        form.locator("input[name=budget]").fill("3")
        form.locator("button[data-act=plan]").click()
        job = wait_for_run(server, by=OPERATOR)
        assert job["requested_by"] == OPERATOR and job["request"]["resolution"] == first["settings"]["resolution"]
        page.wait_for_function("document.querySelectorAll('#owlbus-panel tr[data-route]').length === 5", timeout=40_000)
        assert w.errors == []
    finally:
        w.close()

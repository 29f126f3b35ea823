"""The `citywall` command."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from citywall import __version__
from citywall.platform import DEFAULT_PORT, Settings


def _up(args: argparse.Namespace) -> int:
    import uvicorn

    from citywall.web.app import create_app
    from citywall.platform import Platform

    settings = Settings(host=args.host, port=args.port, db=args.db, feed=args.feed, speed=args.speed, seed=args.seed,
                        city=args.city, raw_retention_days=args.raw_retention_days, feed_options=dict(args.feed_option),
                        indicators=args.indicators)
    try:
        platform = Platform(settings)
    except (ValueError, OSError) as exc:  # a bad setting or file (IndicatorError is a ValueError): say which
        print(f"citywall up: {exc}", file=sys.stderr)
        return 2
    print(f"citywall {__version__}: {platform.city.name_en} ({len(platform.city.districts)} districts, {len(platform.city.dongs)} dongs), "
          f"store {settings.db}, feed {settings.feed}{' (SIMULATED data)' if platform.simulated else ''}, speed x{settings.speed:g}")
    base = f"http://{settings.host}:{settings.port}"
    print(f"the wall: {base}/   API docs: {base}/docs   live: ws://{settings.host}:{settings.port}/api/live", flush=True)
    uvicorn.run(create_app(platform), host=settings.host, port=settings.port, log_level=args.log_level, ws_max_queue=64)
    return 0


def _city(args: argparse.Namespace) -> int:
    from citywall.city import load_city

    city = load_city(args.city)
    print(f"{city.name_ko} / {city.name_en}: {len(city.districts)} districts, {len(city.dongs)} dongs, time zone {city.timezone}")
    for gu in city.districts.values():
        dongs = sum(1 for d in city.dongs.values() if d.parent == gu.code)
        print(f"  {gu.code} {gu.name_ko:<6} {gu.name_en:<16} {gu.area_km2:7.2f} km²  {dongs:3d} dongs  region {city.region_of(gu.code)}")
    return 0


def _kiosk(args: argparse.Namespace) -> int:
    """Open the wall in a browser without any chrome (no tabs, bars or cursor), spanning the wall."""
    import shutil
    import subprocess
    import tempfile

    browser = args.browser or next((b for b in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
                                    if shutil.which(b)), None)
    if browser is None or not shutil.which(browser):
        print("citywall kiosk: no Chromium or Chrome found; install one or give --browser PATH", file=sys.stderr)
        return 2
    width, height = (5760, 2160) if args.layout == "wall" else (1920, 1080)
    url = f"{args.url.rstrip('/')}/?layout={args.layout}&kiosk=1&lang={args.lang}"
    profile = tempfile.mkdtemp(prefix="citywall-kiosk-")
    cmd = [browser, f"--app={url}", "--kiosk", "--start-fullscreen", "--window-position=0,0", f"--window-size={width},{height}",
           "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync",
           "--noerrdialogs", "--disable-session-crashed-bubble", "--disable-infobars", f"--user-data-dir={profile}"]
    print(" ".join(cmd), flush=True)
    try:
        return subprocess.call(cmd)
    finally:  # the profile is this session's only: a kiosk starts clean every time
        shutil.rmtree(profile, ignore_errors=True)


def _option(text: str) -> tuple[str, object]:
    """KEY=VALUE, the value read as a YAML scalar (so 500 is a number and true a boolean)."""
    import yaml

    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, not {text!r}")
    return key.strip(), yaml.safe_load(value) if value else ""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="citywall", description="The live city platform of a digital mayor's office.")
    parser.add_argument("--version", action="version", version=f"citywall {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    up = sub.add_parser("up", help="start the server (API, live WebSocket, feeds)")
    up.add_argument("--host", default="127.0.0.1")
    up.add_argument("--port", type=int, default=DEFAULT_PORT)
    up.add_argument("--db", default=str(Path("data") / "citywall.duckdb"), help="DuckDB file (default data/citywall.duckdb)")
    up.add_argument("--feed", default="simulator", choices=["simulator", "none"], help="where observations come from")
    up.add_argument("--speed", type=float, default=1.0, help="platform clock speed: 60 runs an hour a minute")
    up.add_argument("--feed-option", type=_option, action="append", default=[], metavar="KEY=VALUE",
                    help="a feed option, repeatable (simulator: episode=yellow_dust, sdot_count=500, ...; see docs/simulator.md)")
    up.add_argument("--seed", type=int, default=2017, help="simulator seed (same seed, same city)")
    up.add_argument("--city", default="seoul", help="built-in city name or a city YAML")
    up.add_argument("--raw-retention-days", type=float, default=30.0, help="keep raw rows this long; hourly rollups stay")
    up.add_argument("--indicators", default=None, metavar="FILE",
                    help="the city's indicators as CSV or YAML (default: the shipped example, shown as an example)")
    up.add_argument("--log-level", default="info", choices=["critical", "error", "warning", "info", "debug"])
    up.set_defaults(func=_up)

    kiosk = sub.add_parser("kiosk", help="open the wall full screen in Chromium, without browser chrome")
    kiosk.add_argument("--url", default=f"http://127.0.0.1:{DEFAULT_PORT}", help="where citywall up serves")
    kiosk.add_argument("--layout", default="wall", choices=["wall", "screen"], help="wall: 3x2 screens of 1920x1080; screen: one")
    kiosk.add_argument("--lang", default="ko", choices=["ko", "en"])
    kiosk.add_argument("--browser", default=None, help="browser executable (default: the first Chromium or Chrome on PATH)")
    kiosk.set_defaults(func=_kiosk)

    city = sub.add_parser("city", help="print the city's districts and dongs")
    city.add_argument("--city", default="seoul")
    city.set_defaults(func=_city)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())

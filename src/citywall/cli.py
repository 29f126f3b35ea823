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
                        indicators=args.indicators, facilities=args.facilities, rules=args.rules, focus_severity=args.focus_severity,
                        focus_seconds=args.focus_seconds, escalate_after_s=args.escalate_after, escalation_webhook=args.escalation_webhook,
                        mqtt=args.mqtt, mqtt_port=args.mqtt_port, mqtt_options=dict(args.mqtt_option), live_broker=args.live_broker,
                        commerce=args.commerce)
    try:
        platform = Platform(settings)
    except (ValueError, OSError) as exc:  # a bad setting or file (IndicatorError is a ValueError): say which
        print(f"citywall up: {exc}", file=sys.stderr)
        return 2
    if platform.mqtt_broker is not None:
        try:
            platform.mqtt_broker.check_port()
        except OSError as exc:
            platform.store.close()
            print(f"citywall up: {exc}", file=sys.stderr)
            return 2
    print(f"citywall {__version__}: {platform.city.name_en} ({len(platform.city.districts)} districts, {len(platform.city.dongs)} dongs), "
          f"store {platform.store.path}, feed {settings.feed}{' (SIMULATED data)' if platform.simulated else ''}, speed x{settings.speed:g}")
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


# -- users and keys: the store opened directly (the server must not be running) -----------
LOCKED = "the store is in use by a running citywall; stop it or use the API (POST /api/users, /api/keys)"


def _cli_actor() -> str:
    import getpass
    import os

    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):  # a container user without a passwd entry
        return f"cli:uid{os.getuid()}"


def _accounts(args: argparse.Namespace, *, create: bool = False):  # noqa: ANN202
    """(store, accounts, audit) over the DuckDB file or PostgreSQL URL; None (after saying why) when it cannot be opened."""
    from citywall.auth import Accounts, AuditLog
    from citywall.clock import Clock
    from citywall.store import StoreUnavailable, is_postgres, open_store

    if not create and not is_postgres(args.db) and not Path(args.db).exists():
        print(f"citywall {args.command}: no store at {args.db} (give --db, or start citywall once)", file=sys.stderr)
        return None
    try:
        store = open_store(args.db)
    except StoreUnavailable as exc:
        print(f"citywall {args.command}: {LOCKED}" if "lock" in str(exc).lower() else f"citywall {args.command}: {exc}", file=sys.stderr)
        return None
    clock = Clock()
    return store, Accounts(store, clock), AuditLog(store, clock)


def _read_password(args: argparse.Namespace) -> str | None:
    import getpass

    if args.password_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    first = getpass.getpass(f"password for {args.name}: ")
    if getpass.getpass("again: ") != first:
        print(f"citywall {args.command}: the two passwords differ; nothing changed", file=sys.stderr)
        return None
    return first


def _run_accounts(args: argparse.Namespace, action, *, create: bool = False) -> int:  # noqa: ANN001
    """Open the store, run `action(accounts, audit, actor)` in one transaction, close; errors said plainly."""
    from citywall.auth import AccountError, atomic

    opened = _accounts(args, create=create)
    if opened is None:
        return 2
    store, accounts, audit = opened
    try:
        return atomic(store, lambda: action(accounts, audit, _cli_actor()))
    except AccountError as exc:
        print(f"citywall {args.command}: {exc}", file=sys.stderr)
        return 1
    finally:
        store.close()


def _user(args: argparse.Namespace) -> int:
    if args.user_command == "list":
        def show(accounts, audit, actor) -> int:  # noqa: ANN001
            for u in accounts.users():
                print(f"{u['name']:<24} {u['role']:<9} {'disabled' if u['disabled'] else 'enabled':<9} created {_ms(u['created_at_ms'])}")
            return 0
        return _run_accounts(args, show)
    password = _read_password(args)
    if password is None:
        return 1
    if args.user_command == "add":
        def add(accounts, audit, actor) -> int:  # noqa: ANN001
            accounts.create_user(args.name, args.role, password)
            audit.append(actor, "user.create", args.name, {"role": args.role})
            print(f"user {args.name} ({args.role}) created", file=sys.stderr)
            return 0
        return _run_accounts(args, add, create=True)

    def passwd(accounts, audit, actor) -> int:  # noqa: ANN001
        accounts.set_password(args.name, password)
        audit.append(actor, "user.password", args.name, {})
        print(f"password of {args.name} changed; their sessions have ended", file=sys.stderr)
        return 0
    return _run_accounts(args, passwd)


def _key(args: argparse.Namespace) -> int:
    if args.key_command == "add":
        def add(accounts, audit, actor) -> int:  # noqa: ANN001
            key = accounts.create_key(args.name, args.role, by=actor)
            audit.append(actor, "key.create", key["id"], {"name": key["name"], "role": key["role"]})
            print(f"API key {key['id']} ({args.name}, {args.role}); it is shown only now:", file=sys.stderr)
            print(key["key"], flush=True)  # alone on stdout, so a script can capture it
            return 0
        return _run_accounts(args, add, create=True)
    if args.key_command == "list":
        def show(accounts, audit, actor) -> int:  # noqa: ANN001
            for k in accounts.keys():
                state = f"revoked {_ms(k['revoked_at_ms'])}" if k["revoked_at_ms"] is not None else "active"
                print(f"{k['id']}  {k['name']:<24} {k['role']:<9} created {_ms(k['created_at_ms'])} by {k['created_by']}  {state}")
            return 0
        return _run_accounts(args, show)

    def revoke(accounts, audit, actor) -> int:  # noqa: ANN001
        key = accounts.revoke_key(args.id)
        audit.append(actor, "key.revoke", args.id, {"name": key["name"]})
        print(f"API key {args.id} ({key['name']}) revoked", file=sys.stderr)
        return 0
    return _run_accounts(args, revoke)


def _replay(args: argparse.Namespace) -> int:
    from citywall.feeds.replay.command import run

    return run(args)


def _ms(ms: int) -> str:
    from datetime import datetime, timezone

    return datetime.fromtimestamp(ms / 1000, timezone.utc).strftime("%Y-%m-%d %H:%M:%SZ")


def _option(text: str) -> tuple[str, object]:
    """KEY=VALUE, the value read as a YAML scalar (so 500 is a number and true a boolean)."""
    import yaml

    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, not {text!r}")
    return key.strip(), yaml.safe_load(value) if value else ""


def _feeds(text: str) -> str:
    """`--feed`: one feed name or a comma-separated list, each a built-in feed (or none)."""
    from citywall.feeds import feed_names

    try:
        feed_names(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="citywall", description="The live city platform of a digital mayor's office.")
    parser.add_argument("--version", action="version", version=f"citywall {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    up = sub.add_parser("up", help="start the server (API, live WebSocket, feeds)")
    up.add_argument("--host", default="127.0.0.1")
    up.add_argument("--port", type=int, default=DEFAULT_PORT)
    up.add_argument("--db", default=str(Path("data") / "citywall.duckdb"),
                    help="DuckDB file (default data/citywall.duckdb) or postgresql://user@host:port/dbname (see docs/postgresql.md)")
    up.add_argument("--live-broker", default=None, metavar="URL",
                    help="redis://host:port: share live updates with other processes serving the same PostgreSQL store")
    up.add_argument("--feed", default="simulator", type=_feeds, metavar="NAME[,NAME...]",
                    help="where observations come from: simulator, seoul (Seoul Open API; needs CITYWALL_SEOUL_API_KEY), "
                         "none, or a comma-separated list such as simulator,seoul (see docs/seoul-open-api.md)")
    up.add_argument("--speed", type=float, default=1.0, help="platform clock speed: 60 runs an hour a minute")
    up.add_argument("--feed-option", type=_option, action="append", default=[], metavar="KEY=VALUE",
                    help="a feed option, repeatable (simulator: episode=yellow_dust, sdot_count=500, ...; see docs/simulator.md; "
                         "seoul: api_key=..., places=..., see docs/seoul-open-api.md); with several feeds, FEED.KEY=VALUE gives it to one")
    up.add_argument("--seed", type=int, default=2017, help="simulator seed (same seed, same city)")
    up.add_argument("--city", default="seoul", help="built-in city name or a city YAML")
    up.add_argument("--raw-retention-days", type=float, default=30.0, help="keep raw rows this long; hourly rollups stay")
    up.add_argument("--indicators", default=None, metavar="FILE",
                    help="the city's indicators as CSV or YAML (default: the shipped example, shown as an example)")
    up.add_argument("--facilities", default=None, metavar="FILE",
                    help="the city's cameras, hospitals, shelters and fire stations as CSV (default: the shipped example, shown as an example)")
    up.add_argument("--rules", default=None, metavar="FILE",
                    help="alert rules as YAML (default: the rules an admin last saved through the API, else the shipped rules)")
    up.add_argument("--focus-severity", default="critical", choices=["informational", "low", "medium", "high", "critical"],
                    help="a new incident at or above this severity takes focus on the wall")
    up.add_argument("--focus-seconds", type=float, default=60.0, help="how long an incident keeps the focus before the wall returns")
    up.add_argument("--escalate-after", type=float, default=300.0, metavar="SECONDS",
                    help="an unacknowledged critical alarm escalates after this long")
    up.add_argument("--escalation-webhook", default=None, metavar="URL", help="where escalations are POSTed as JSON")
    up.add_argument("--mqtt", default="embedded", metavar="embedded|off|mqtt://HOST:PORT",
                    help="MQTT ingest: an embedded broker on 127.0.0.1 (default), off, or an external broker such as Mosquitto (see docs/mqtt.md)")
    up.add_argument("--mqtt-port", type=int, default=1884, help="the embedded broker's port (default 1884; 1883 is left to a production broker)")
    up.add_argument("--mqtt-option", type=_option, action="append", default=[], metavar="KEY=VALUE",
                    help="an MQTT listener option, repeatable: client_id, prefix, protocol (5 or 3.1.1), session_expiry_s, "
                         "receive_maximum, max_payload, max_burst (see docs/mqtt.md)")
    up.add_argument("--commerce", default=None, metavar="DIR",
                    help="the --out directory of `citywall commerce build`: the commerce view on the wall and /api/commerce (see docs/commerce-wall.md)")
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

    db_help = ("DuckDB file (default data/citywall.duckdb, as citywall up; the server must not be running) "
               "or postgresql:// URL (servers may run)")
    user = sub.add_parser("user", help="add, list or change users (with the server stopped; else use the API)")
    user_sub = user.add_subparsers(dest="user_command", required=True)
    user_add = user_sub.add_parser("add", help="create a user")
    user_add.add_argument("name")
    user_add.add_argument("--role", required=True, choices=["viewer", "operator", "admin"])
    user_passwd = user_sub.add_parser("passwd", help="set a user's password (ends their sessions)")
    user_passwd.add_argument("name")
    for p in (user_add, user_passwd):
        p.add_argument("--password-stdin", action="store_true", help="read the password from the first line of stdin")
    user_list = user_sub.add_parser("list", help="list users")
    for p in (user_add, user_passwd, user_list):
        p.add_argument("--db", default=str(Path("data") / "citywall.duckdb"), help=db_help)
    user.set_defaults(func=_user)

    key = sub.add_parser("key", help="add, list or revoke API keys (with the server stopped; else use the API)")
    key_sub = key.add_subparsers(dest="key_command", required=True)
    key_add = key_sub.add_parser("add", help="create an API key and print it (only the key, on stdout)")
    key_add.add_argument("name", help="what the key is for, e.g. the feed's name")
    key_add.add_argument("--role", required=True, choices=["feed", "operator", "admin"])
    key_list = key_sub.add_parser("list", help="list API keys (without their secrets)")
    key_revoke = key_sub.add_parser("revoke", help="revoke an API key")
    key_revoke.add_argument("id", help="the key's id (the part after cw_)")
    for p in (key_add, key_list, key_revoke):
        p.add_argument("--db", default=str(Path("data") / "citywall.duckdb"), help=db_help)
    key.set_defaults(func=_key)

    from citywall.feeds.replay.command import parse_speed

    replay = sub.add_parser("replay", help="feed a CSV or Parquet file through the pipeline into the store (with the server stopped)")
    replay.add_argument("file", help="CSV (UTF-8 or CP949) or Parquet file")
    replay.add_argument("--format", default=None, choices=["long", "seoul-station"],
                        help="long: time, datastream (or station + quantity), value, unit; seoul-station: Seoul's per-station files "
                             "(default: from the header)")
    replay.add_argument("--speed", type=parse_speed, default=None, metavar="N|max",
                        help="N x real time by phenomenon time (3600 = an hour a second), or max (default)")
    replay.add_argument("--map", action="append", default=[], metavar="FIELD=COLUMN",
                        help="the file's column for a field (time, station, datastream, quantity, value, unit) or a quantity (pm10, ...); repeatable")
    replay.add_argument("--stations", default=None, metavar="FILE", help="CSV name,lon,lat of stations that are not district stations")
    replay.add_argument("--encoding", default=None, help="CSV encoding (default: detect UTF-8, UTF-8 with BOM or CP949)")
    replay.add_argument("--timezone", default=None, help="for times without an offset (default: the city's, Asia/Seoul)")
    replay.add_argument("--city", default="seoul", help="built-in city name or a city YAML (as citywall up)")
    replay.add_argument("--db", default=str(Path("data") / "citywall.duckdb"), help=db_help)
    replay.set_defaults(func=_replay)

    from citywall.analytics.owlbus.cli import add_parser as add_owlbus

    add_owlbus(sub)
    from citywall.analytics.commerce.cli import add_commerce

    add_commerce(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())

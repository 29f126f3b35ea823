"""The `citywall` command as a user meets it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from citywall import __version__
from citywall.cli import build_parser, main


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "citywall", *args], capture_output=True, text=True, timeout=120)


def test_version() -> None:
    out = run("--version")
    assert out.returncode == 0 and out.stdout.strip() == f"citywall {__version__}"


def test_city_lists_the_25_districts_with_their_regions(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["city"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("서울특별시 / Seoul: 25 districts, 467 dongs")
    rows = lines[1:]
    assert len(rows) == 25
    assert any("11110 종로구" in r and "Jongno-gu" in r and "region central" in r for r in rows)
    assert not any("서울시" in r for r in rows)


def test_up_defaults_match_the_readme() -> None:
    args = build_parser().parse_args(["up"])
    assert (args.host, args.port, args.feed, args.speed) == ("127.0.0.1", 8765, "simulator", 1.0)
    assert args.db.endswith("data/citywall.duckdb")


def test_unknown_feed_is_refused_with_the_choices() -> None:
    out = run("up", "--feed", "carrier-pigeon")
    assert out.returncode == 2
    assert "simulator" in out.stderr and "none" in out.stderr


def test_feed_options_reach_the_feed() -> None:
    from citywall.cli import _option

    args = build_parser().parse_args(["up", "--feed-option", "episode=yellow_dust", "--feed-option", "sdot_count=500"])
    assert dict(args.feed_option) == {"episode": "yellow_dust", "sdot_count": 500}
    with pytest.raises(Exception, match="KEY=VALUE"):
        _option("no-equals-sign")


def test_kiosk_opens_the_wall_without_browser_chrome(tmp_path: Path) -> None:
    """`citywall kiosk` starts the browser full screen on the wall layout, spanning the 3x2 wall."""
    seen = tmp_path / "args.txt"
    fake = tmp_path / "fake-browser"
    fake.write_text(f"#!/bin/sh\nprintf '%s\\n' \"$@\" > {seen}\n")
    fake.chmod(0o755)
    assert main(["kiosk", "--url", "http://wall-host:8765/", "--browser", str(fake), "--lang", "en"]) == 0
    args = seen.read_text().splitlines()
    assert "--app=http://wall-host:8765/?layout=wall&kiosk=1&lang=en" in args
    assert "--kiosk" in args and "--window-size=5760,2160" in args and "--window-position=0,0" in args
    assert any(a.startswith("--user-data-dir=") for a in args)


def test_kiosk_without_a_browser_says_what_to_do(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["kiosk", "--browser", "/nonexistent/chromium"]) == 2
    assert "no Chromium or Chrome found" in capsys.readouterr().err

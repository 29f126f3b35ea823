"""A fresh PostgreSQL database on the test server (127.0.0.1:5432, trust auth), dropped afterwards,
and a restart of that server (reliability tests). CI runs PostgreSQL; tests never skip without it."""

from __future__ import annotations

import os
import subprocess
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg

ADMIN_URL = os.environ.get("CITYWALL_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")


def url_for(dbname: str) -> str:
    """The admin URL with another database name."""
    return ADMIN_URL.rsplit("/", 1)[0] + "/" + dbname


@contextmanager
def fresh_database() -> Iterator[str]:
    """The URL of a new, empty database; dropped (its connections ended) afterwards."""
    name = f"citywall_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(ADMIN_URL, autocommit=True) as con:
        con.execute(f"CREATE DATABASE {name}")
    try:
        yield url_for(name)
    finally:
        with psycopg.connect(ADMIN_URL, autocommit=True) as con:
            con.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def cluster() -> tuple[str, str]:
    """(version, name) of the local PostgreSQL cluster, as pg_ctlcluster wants them."""
    version = sorted(p.name for p in Path("/etc/postgresql").iterdir())[-1]
    return version, "main"


def pg_ctl(action: str) -> None:
    version, name = cluster()
    subprocess.run(["pg_ctlcluster", "--skip-systemctl-redirect", version, name, action], check=True, capture_output=True, timeout=120)


def wait_until_up(timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            with psycopg.connect(ADMIN_URL, connect_timeout=2) as con:
                con.execute("SELECT 1")
            return
        except psycopg.OperationalError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)

"""People and access: accounts, sessions, API keys, the audit chain, the role checks, the HTTP
endpoints and the `citywall user` / `citywall key` commands."""

from __future__ import annotations

import io
import os
import re
import stat
import subprocess
import sys
from collections.abc import Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any

import pytest
from conftest import make_platform
from fastapi import Depends, FastAPI
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from citywall.auth import Accounts, AccountError, AuditLog, Conflict, NotFound, atomic
from citywall.auth.access import COOKIE, Principal, require
from citywall.auth.accounts import KEY, SESSION_TTL_S
from citywall.auth.audit import GENESIS
from citywall.cli import LOCKED, main
from citywall.platform import Platform
from citywall.store.embedded import EmbeddedStore
from citywall.web.auth_api import LOGIN_FAILED, router

NOW_US = 1_750_000_000_000_000
PASSWORDS = {"root": "root-password-1", "olga": "olga-password-1", "vic": "vic-password-1"}


class Tick:
    """A settable platform clock (a callable, the other form AuditLog and Accounts accept)."""

    def __init__(self, us: int = NOW_US) -> None:
        self.us = us

    def __call__(self) -> int:
        return self.us


@pytest.fixture
def store() -> Iterator[EmbeddedStore]:
    s = EmbeddedStore(":memory:")
    yield s
    s.close()


@pytest.fixture
def accounts(store: EmbeddedStore) -> Accounts:
    a = Accounts(store, Tick())
    a.wall_us = Tick()  # type: ignore[assignment]
    return a


# -- passwords and users ---------------------------------------------------------------------
def test_passwords_are_stored_only_as_argon2id_hashes(accounts: Accounts, store: EmbeddedStore) -> None:
    user = accounts.create_user("alice", "operator", "correct horse battery")
    assert user == {"name": "alice", "role": "operator", "created_at_ms": NOW_US // 1000, "disabled": False}
    (stored,) = store.con.execute("SELECT password_hash FROM users WHERE name = 'alice'").fetchone()
    assert stored.startswith("$argon2id$v=19$") and "correct horse" not in stored
    assert accounts.check_password("alice", "correct horse battery") == user
    assert accounts.check_password("alice", "correct horse batterY") is None
    assert accounts.check_password("alice", "") is None
    # Same password, another salt: equal passwords do not show in the table.
    accounts.create_user("bob", "viewer", "correct horse battery")
    hashes = {r[0] for r in store.con.execute("SELECT password_hash FROM users").fetchall()}
    assert len(hashes) == 2


def test_an_unknown_name_costs_the_same_argon2_work(accounts: Accounts, monkeypatch: pytest.MonkeyPatch) -> None:
    """A login for a name that does not exist still verifies (against a dummy hash), so the answer's
    timing does not reveal which names exist."""
    accounts.create_user("alice", "viewer", "correct horse battery")
    calls: list[str] = []
    real = Accounts.hasher

    class Spy:
        def verify(self, h: str, p: str) -> bool:
            calls.append(h)
            return real.verify(h, p)

    monkeypatch.setattr(accounts, "hasher", Spy(), raising=False)
    assert accounts.check_password("nobody", "correct horse battery") is None
    assert accounts.check_password("alice", "wrong password!") is None
    assert len(calls) == 2 and all(h.startswith("$argon2id$") for h in calls)


def test_bad_users_are_refused_with_the_reason(accounts: Accounts) -> None:
    with pytest.raises(AccountError, match="at least 8"):
        accounts.create_user("alice", "viewer", "short")
    with pytest.raises(AccountError, match="viewer, operator, admin"):
        accounts.create_user("alice", "feed", "long enough password")
    with pytest.raises(AccountError, match="bad user name"):
        accounts.create_user("key:alice", "viewer", "long enough password")
    accounts.create_user("alice", "viewer", "long enough password")
    with pytest.raises(Conflict, match="exists already"):
        accounts.create_user("alice", "admin", "another long password")
    with pytest.raises(NotFound, match="no user 'zed'"):
        accounts.set_password("zed", "long enough password")


def test_a_disabled_user_cannot_log_in_and_loses_their_sessions(accounts: Accounts) -> None:
    accounts.create_user("root", "admin", "root-password-1")
    accounts.create_user("vic", "viewer", "vic-password-1")
    token = accounts.open_session("vic")["token"]
    assert accounts.session_user(token)["name"] == "vic"  # type: ignore[index]
    accounts.disable_user("vic")
    assert accounts.check_password("vic", "vic-password-1") is None
    assert accounts.session_user(token) is None
    with pytest.raises(Conflict, match="last enabled admin"):
        accounts.disable_user("root")
    accounts.enable_user("vic")
    assert accounts.check_password("vic", "vic-password-1")["name"] == "vic"  # type: ignore[index]
    assert accounts.session_user(token) is None  # re-enabling does not bring old sessions back


# -- sessions --------------------------------------------------------------------------------
def test_sessions_expire_and_are_stored_only_hashed(accounts: Accounts, store: EmbeddedStore) -> None:
    accounts.create_user("olga", "operator", "olga-password-1")
    session = accounts.open_session("olga")
    token = session["token"]
    assert session["expires_ms"] == (NOW_US + SESSION_TTL_S * 1_000_000) // 1000
    assert session["user"] == {"name": "olga", "role": "operator"}
    (stored,) = store.con.execute("SELECT token_hash FROM sessions").fetchone()
    assert stored != token and re.fullmatch(r"[0-9a-f]{64}", stored)
    assert accounts.session_user(token)["role"] == "operator"  # type: ignore[index]
    assert accounts.session_user(token + "x") is None and accounts.session_user("") is None
    accounts.wall_us.us = NOW_US + SESSION_TTL_S * 1_000_000 - 1  # type: ignore[attr-defined]
    assert accounts.session_user(token) is not None
    accounts.wall_us.us += 1  # type: ignore[attr-defined]
    assert accounts.session_user(token) is None
    accounts.open_session("olga")  # sweeps the expired one
    assert store.con.execute("SELECT count(*) FROM sessions").fetchone()[0] == 1


def test_a_new_password_ends_the_other_sessions(accounts: Accounts) -> None:
    accounts.create_user("olga", "operator", "olga-password-1")
    here, elsewhere = accounts.open_session("olga")["token"], accounts.open_session("olga")["token"]
    accounts.set_password("olga", "olga-password-2", keep_session=here)
    assert accounts.session_user(here) is not None and accounts.session_user(elsewhere) is None
    assert accounts.check_password("olga", "olga-password-1") is None
    assert accounts.check_password("olga", "olga-password-2") is not None
    assert accounts.close_session(here) and accounts.session_user(here) is None
    assert not accounts.close_session(here)


# -- API keys --------------------------------------------------------------------------------
def test_api_keys_are_shown_once_stored_hashed_and_revocable(accounts: Accounts, store: EmbeddedStore) -> None:
    made = accounts.create_key("sensors-gangnam", "feed", by="root")
    key = made["key"]
    assert KEY.fullmatch(key) and key.startswith(f"cw_{made['id']}_")
    (stored,) = store.con.execute("SELECT key_hash FROM api_keys").fetchone()
    assert stored != key and key.split("_", 2)[2] not in stored
    assert accounts.verify_key(key) == {k: v for k, v in made.items() if k != "key"}
    assert made["role"] == "feed" and made["created_by"] == "root" and made["revoked_at_ms"] is None
    listed = accounts.keys()
    assert [k["id"] for k in listed] == [made["id"]] and "key" not in listed[0]
    wrong_secret = key[:-1] + ("A" if key[-1] != "A" else "B")
    assert accounts.verify_key(wrong_secret) is None
    assert accounts.verify_key(f"cw_{'0' * 12}_{key.split('_', 2)[2]}") is None
    revoked = accounts.revoke_key(made["id"])
    assert revoked["revoked_at_ms"] == NOW_US // 1000
    assert accounts.verify_key(key) is None
    assert accounts.revoke_key(made["id"])["revoked_at_ms"] == NOW_US // 1000  # again: no change
    with pytest.raises(NotFound):
        accounts.revoke_key("000000000000")
    with pytest.raises(AccountError, match="feed, operator, admin"):
        accounts.create_key("x", "viewer", by="root")


@settings(max_examples=200, deadline=None)
@given(st.one_of(st.text(), st.from_regex(r"cw_[0-9a-f]{12}_[A-Za-z0-9_-]{43}", fullmatch=True), st.binary(), st.none()))
def test_any_presented_key_is_answered_without_an_error(shared_accounts: Accounts, text: Any) -> None:
    assert shared_accounts.verify_key(text) is None


@pytest.fixture(scope="module")
def shared_accounts() -> Iterator[Accounts]:
    s = EmbeddedStore(":memory:")
    a = Accounts(s, Tick())
    a.create_key("some-feed", "feed", by="test")  # a table with a key in it, just not these
    yield a
    s.close()


# -- the audit log ---------------------------------------------------------------------------
def test_the_audit_chain_verifies_and_shows_the_first_tampered_row(store: EmbeddedStore) -> None:
    clock = Tick()
    audit = AuditLog(store, clock)
    rows = []
    for i in range(5):
        clock.us += 1_000_123
        rows.append(audit.append("olga", "incident.advance", f"inc-{i}", {"step": "출동지령", "n": i, "x": 0.1}))
    assert [r["seq"] for r in rows] == [1, 2, 3, 4, 5]
    assert rows[0]["prev_hash"] == GENESIS and all(b["prev_hash"] == a["hash"] for a, b in zip(rows, rows[1:]))
    assert rows[2]["at_us"] == NOW_US + 3 * 1_000_123 and rows[2]["at_ms"] == rows[2]["at_us"] // 1000
    assert audit.query(limit=10) == rows[::-1]
    assert audit.verify() == (True, None)
    # An edit by SQL behind the log's back: a changed detail, actor or time is each found.
    store.con.execute("""UPDATE audit_log SET detail = '{"step":"완진","n":2,"x":0.1}' WHERE seq = 3""")
    assert audit.verify() == (False, 3)
    store.con.execute("UPDATE audit_log SET detail = ? WHERE seq = 3", ['{"n": 2, "step": "출동지령", "x": 0.1}'])
    assert audit.verify() == (True, None)  # the same JSON, spaced and ordered differently
    store.con.execute('UPDATE audit_log SET logged_at = logged_at + INTERVAL 1 SECOND WHERE seq = 4')
    assert audit.verify() == (False, 4)
    store.con.execute('UPDATE audit_log SET logged_at = logged_at - INTERVAL 1 SECOND WHERE seq = 4')
    store.con.execute("UPDATE audit_log SET actor = 'mallory' WHERE seq = 2")
    assert audit.verify() == (False, 2)
    store.con.execute("UPDATE audit_log SET actor = 'olga' WHERE seq = 2")
    store.con.execute("DELETE FROM audit_log WHERE seq = 2")
    assert audit.verify() == (False, 2)


def test_audit_has_no_way_to_change_rows() -> None:
    public = {n for n in dir(AuditLog) if not n.startswith("_")}
    assert public == {"append", "query", "verify"}


def test_audit_query_filters(store: EmbeddedStore) -> None:
    clock = Tick()
    audit = AuditLog(store, clock)
    audit.append("root", "user.create", "olga", {"role": "operator"})
    clock.us += 10_000_000
    audit.append("olga", "login", "olga", {})
    audit.append("olga", "alarm.ack", "pm10:11140", {}, at_us=NOW_US + 20_000_000)
    assert [r["action"] for r in audit.query(actor="olga")] == ["alarm.ack", "login"]
    assert [r["actor"] for r in audit.query(action="user.")] == ["root"]
    assert [r["seq"] for r in audit.query(since_us=NOW_US + 10_000_000)] == [3, 2]
    assert [r["seq"] for r in audit.query(limit=1)] == [3]
    with pytest.raises(ValueError, match="plain JSON"):
        audit.append("olga", "x", None, {"nan": float("nan")})
    with pytest.raises(ValueError, match="plain JSON"):
        audit.append("olga", "x", None, {"when": object()})


def test_an_action_and_its_audit_row_commit_together(accounts: Accounts, store: EmbeddedStore) -> None:
    audit = AuditLog(store, Tick())

    def create_twice() -> None:
        accounts.create_user("olga", "operator", "olga-password-1")
        audit.append("root", "user.create", "olga", {})
        accounts.create_user("olga", "operator", "olga-password-1")

    with pytest.raises(Conflict):
        atomic(store, create_twice)
    assert accounts.users() == [] and audit.query() == []


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**62), 2**62) | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(st.characters(exclude_categories=("Cs",)), max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.dictionaries(st.text(max_size=8), json_values, max_size=4), min_size=1, max_size=6), st.data())
def test_any_json_detail_survives_the_store_and_verifies(details: list[dict], data: st.DataObject) -> None:
    """Whatever JSON an action records (Korean, floats, nesting, odd keys) reads back equal and the
    chain verifies after the round trip through DuckDB; changing any one row is then found."""
    s = EmbeddedStore(":memory:")
    try:
        audit = AuditLog(s, Tick())
        written = [audit.append("a", "act", None, d) for d in details]
        assert audit.query(limit=100)[::-1] == written
        assert audit.verify() == (True, None)
        victim = data.draw(st.integers(1, len(details)))
        s.con.execute("UPDATE audit_log SET target = 'changed' WHERE seq = ?", [victim])
        assert audit.verify() == (False, victim)
    finally:
        s.close()


# -- bootstrap -------------------------------------------------------------------------------
def test_ensure_admin_creates_one_admin_once(accounts: Accounts, tmp_path: Path) -> None:
    path = tmp_path / "d" / "initial-admin-password.txt"
    password = accounts.ensure_admin(path)
    assert password and len(password) >= 20
    assert path.read_text() == password + "\n"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert accounts.check_password("admin", password)["role"] == "admin"  # type: ignore[index]
    assert accounts.ensure_admin(path) is None and accounts.ensure_admin(tmp_path / "other.txt") is None
    assert not (tmp_path / "other.txt").exists()
    assert [u["name"] for u in accounts.users()] == ["admin"]


# -- the HTTP side ---------------------------------------------------------------------------
def _app(platform: Platform) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI):  # noqa: ANN202
        await platform.start()
        yield
        await platform.stop()

    app = FastAPI(lifespan=lifespan)
    app.state.platform = platform
    app.include_router(router)

    @app.post("/test/feed")
    def feed_only(p: Principal = Depends(require("feed"))) -> dict:
        return {"actor": p.actor, "role": p.role, "via": p.via}

    @app.post("/test/operator")
    def operator_only(p: Principal = Depends(require("operator"))) -> dict:
        return {"actor": p.actor}

    return app


@contextmanager
def served(tmp_path: Path) -> Iterator[tuple[Platform, TestClient]]:
    platform = make_platform(tmp_path / "t.duckdb")
    if not hasattr(platform, "accounts"):
        platform.accounts = Accounts(platform.store, platform.clock)  # type: ignore[attr-defined]
        platform.audit = AuditLog(platform.store, platform.clock)  # type: ignore[attr-defined]
    for name, role in (("root", "admin"), ("olga", "operator"), ("vic", "viewer")):
        platform.accounts.create_user(name, role, PASSWORDS[name])  # before start: no writer yet
    with TestClient(_app(platform)) as client:
        yield platform, client


def login(client: TestClient, name: str) -> dict[str, str]:
    r = client.post("/api/login", json={"name": name, "password": PASSWORDS[name]})
    assert r.status_code == 200, r.text
    client.cookies.clear()
    return {"Authorization": f"Bearer {r.json()['token']}"}


def test_login_sets_a_strict_httponly_cookie_and_audits(tmp_path: Path) -> None:
    with served(tmp_path) as (platform, client):
        assert client.get("/api/me").json() == {"user": None}
        r = client.post("/api/login", json={"name": "olga", "password": PASSWORDS["olga"]})
        assert r.status_code == 200
        body = r.json()
        assert body["user"] == {"name": "olga", "role": "operator"} and len(body["token"]) >= 40
        cookie = r.headers["set-cookie"]
        assert cookie.startswith(f"{COOKIE}={body['token']};")
        assert "HttpOnly" in cookie and "SameSite=strict" in cookie.replace("Strict", "strict") and "Path=/" in cookie
        assert client.get("/api/me").json() == {"user": {"name": "olga", "role": "operator", "via": "session"}}
        assert client.post("/test/operator").json() == {"actor": "olga"}  # the cookie alone is enough
        assert client.post("/api/logout").json() == {"ended": True}
        assert client.get("/api/me").json() == {"user": None}
        assert client.post("/test/operator", headers={"Authorization": f"Bearer {body['token']}"}).status_code == 401
        actions = [(r["actor"], r["action"]) for r in platform.audit.query(actor="olga")]
        assert actions == [("olga", "logout"), ("olga", "login")]


def test_failed_logins_say_the_same_thing_and_are_audited(tmp_path: Path) -> None:
    with served(tmp_path) as (platform, client):
        answers = [client.post("/api/login", json={"name": n, "password": p})
                   for n, p in (("olga", "wrong-password"), ("nobody", PASSWORDS["olga"]), ("olga", ""))]
        for r in answers:
            assert r.status_code == 401 and r.json()["detail"] == LOGIN_FAILED
            assert r.headers["www-authenticate"] == "Bearer" and COOKIE not in r.headers.get("set-cookie", "")
        failed = platform.audit.query(action="login.failed")
        assert [(r["actor"], r["target"]) for r in failed] == [("anonymous", "olga"), ("anonymous", "nobody"), ("anonymous", "olga")]
        # Disabled: the same answer as a wrong password.
        admin = login(client, "root")
        assert client.post("/api/users/vic/disable", headers=admin).status_code == 200
        r = client.post("/api/login", json={"name": "vic", "password": PASSWORDS["vic"]})
        assert r.status_code == 401 and r.json()["detail"] == LOGIN_FAILED


def test_no_state_change_of_this_router_works_without_authorisation(tmp_path: Path) -> None:
    """Every POST here but login and logout: 401 with no or a bad credential, 403 for a viewer."""
    paths = sorted(r.path for r in router.routes if "POST" in r.methods and r.path not in ("/api/login", "/api/logout"))
    assert len(paths) >= 6
    with served(tmp_path) as (platform, client):
        viewer = login(client, "vic")
        before = platform.audit.query(limit=1000)
        for path in paths:
            url = path.replace("{name}", "olga").replace("{key_id}", "000000000000")
            for headers in ({}, {"Authorization": "Bearer not-a-token"}, {"X-API-Key": "cw_000000000000_" + "A" * 43},
                            {"Authorization": "Basic b2xnYTpvbGdh"}):
                r = client.post(url, json={"name": "x", "role": "admin", "password": "long enough password"}, headers=headers)
                assert r.status_code == 401, (url, headers, r.text)
                assert r.headers["www-authenticate"] == "Bearer"
            if not path.endswith("/password"):  # a viewer may change their own password only
                r = client.post(url, json={"name": "x", "role": "admin", "password": "long enough password"}, headers=viewer)
                assert r.status_code == 403 and "admin" in r.json()["detail"], (url, r.text)
        r = client.post("/api/users/olga/password", json={"password": "long enough password"}, headers=viewer)
        assert r.status_code == 403
        assert [u["name"] for u in platform.accounts.users()] == ["olga", "root", "vic"]
        assert platform.accounts.keys() == []
        assert platform.audit.query(limit=1000) == before
        for path in ("/api/users", "/api/keys", "/api/audit"):
            assert client.get(path).status_code == 401 and client.get(path, headers=viewer).status_code == 403


def test_admins_manage_users_and_every_change_is_audited(tmp_path: Path) -> None:
    with served(tmp_path) as (platform, client):
        admin = login(client, "root")
        r = client.post("/api/users", json={"name": "dana", "role": "operator", "password": "dana-password-1"}, headers=admin)
        assert r.status_code == 201 and r.json()["role"] == "operator" and "password" not in r.text
        assert client.post("/api/users", json={"name": "dana", "role": "viewer", "password": "dana-password-1"},
                           headers=admin).status_code == 409
        r = client.post("/api/users", json={"name": "eve", "role": "boss", "password": "eve-password-1"}, headers=admin)
        assert r.status_code == 422 and "viewer, operator, admin" in r.json()["detail"]
        users = client.get("/api/users", headers=admin).json()
        assert [(u["name"], u["role"]) for u in users] == [("dana", "operator"), ("olga", "operator"), ("root", "admin"), ("vic", "viewer")]
        assert "password_hash" not in str(users)
        assert client.post("/api/users/dana/password", json={"password": "dana-password-2"}, headers=admin).status_code == 200
        assert client.post("/api/users/nobody/disable", headers=admin).status_code == 404
        assert client.post("/api/users/root/disable", headers=admin).status_code == 409  # the last admin
        assert client.post("/api/users/dana/disable", headers=admin).json()["disabled"] is True
        assert client.post("/api/users/dana/enable", headers=admin).json()["disabled"] is False
        log = [(r["actor"], r["action"], r["target"]) for r in platform.audit.query(actor="root")][::-1]
        assert log == [("root", "login", "root"), ("root", "user.create", "dana"), ("root", "user.password", "dana"),
                       ("root", "user.disable", "dana"), ("root", "user.enable", "dana")]
        audit = client.get("/api/audit", params={"actor": "root", "limit": 2}, headers=admin).json()
        assert [a["action"] for a in audit] == ["user.enable", "user.disable"]
        assert client.get("/api/audit/verify", headers=admin).json() == {"ok": True, "first_bad_seq": None}
        assert client.get("/api/audit/verify").status_code == 401


def test_users_change_their_own_password_with_the_present_one(tmp_path: Path) -> None:
    with served(tmp_path) as (platform, client):
        vic = login(client, "vic")
        other = login(client, "vic")
        url = "/api/users/vic/password"
        assert client.post(url, json={"password": "vic-password-2"}, headers=vic).status_code == 403
        assert client.post(url, json={"password": "vic-password-2", "current": "nope"}, headers=vic).status_code == 403
        r = client.post(url, json={"password": "vic-password-2", "current": PASSWORDS["vic"]}, headers=vic)
        assert r.status_code == 200
        assert client.get("/api/me", headers=vic).json()["user"]["name"] == "vic"  # this session stays
        assert client.get("/api/me", headers=other).json() == {"user": None}  # the other one ended
        assert client.post("/api/login", json={"name": "vic", "password": "vic-password-2"}).status_code == 200
        assert platform.audit.query(action="user.password")[0]["actor"] == "vic"


def test_feed_keys_may_send_data_and_nothing_more(tmp_path: Path) -> None:
    with served(tmp_path) as (platform, client):
        admin = login(client, "root")
        r = client.post("/api/keys", json={"name": "sensors", "role": "feed"}, headers=admin)
        assert r.status_code == 201
        made = r.json()
        key = made["key"]
        assert all("key" not in k for k in client.get("/api/keys", headers=admin).json())
        for headers in ({"X-API-Key": key}, {"Authorization": f"Bearer {key}"}):
            assert client.post("/test/feed", headers=headers).json() == {"actor": "key:sensors", "role": "feed", "via": "key"}
            r = client.post("/test/operator", headers=headers)
            assert r.status_code == 403 and "operator" in r.json()["detail"]
            assert client.post("/api/users", json={"name": "x", "role": "admin", "password": "long enough password"},
                               headers=headers).status_code == 403
        # Operators and admins pass the feed check too; viewers do not.
        assert client.post("/test/feed", headers=login(client, "olga")).status_code == 200
        assert client.post("/test/feed", headers=admin).status_code == 200
        r = client.post("/test/feed", headers=login(client, "vic"))
        assert r.status_code == 403 and "feed" in r.json()["detail"]
        op_key = client.post("/api/keys", json={"name": "dispatch", "role": "operator"}, headers=admin).json()["key"]
        assert client.post("/test/operator", headers={"X-API-Key": op_key}).json() == {"actor": "key:dispatch"}
        assert client.post(f"/api/keys/{made['id']}/revoke", headers=admin).json()["revoked_at_ms"] is not None
        r = client.post("/test/feed", headers={"X-API-Key": key})
        assert r.status_code == 401 and "not valid" in r.json()["detail"]
        assert [a["action"] for a in platform.audit.query(action="key.")] == ["key.revoke", "key.create", "key.create"]


def test_a_tampered_audit_log_shows_over_http(tmp_path: Path) -> None:
    with served(tmp_path) as (platform, client):
        admin = login(client, "root")
        client.post("/api/users", json={"name": "dana", "role": "viewer", "password": "dana-password-1"}, headers=admin)
        seq = platform.audit.query(action="user.create")[0]["seq"]
        platform.pipeline.call(lambda: platform.store.con.execute(
            "UPDATE audit_log SET detail = '{\"role\":\"admin\"}' WHERE seq = ?", [seq])).result()
        assert client.get("/api/audit/verify", headers=admin).json() == {"ok": False, "first_bad_seq": seq}


# -- the command line ------------------------------------------------------------------------
def _cli(monkeypatch: pytest.MonkeyPatch, args: list[str], stdin: str = "") -> int:
    monkeypatch.setattr(sys, "stdin", io.StringIO(stdin))
    return main(args)


def test_cli_manages_users_and_keys(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    db = str(tmp_path / "c.duckdb")
    assert _cli(monkeypatch, ["user", "add", "root", "--role", "admin", "--password-stdin", "--db", db], "root-password-1\n") == 0
    # Without --password-stdin it asks twice, without echo.
    answers = iter(["olga-password-1", "olga-password-1"])
    monkeypatch.setattr("getpass.getpass", lambda prompt="": next(answers))
    assert main(["user", "add", "olga", "--role", "operator", "--db", db]) == 0
    assert _cli(monkeypatch, ["user", "add", "olga", "--role", "viewer", "--password-stdin", "--db", db], "x-password-1\n") == 1
    assert "exists already" in capsys.readouterr().err
    assert _cli(monkeypatch, ["user", "add", "short", "--role", "viewer", "--password-stdin", "--db", db], "abc\n") == 1
    assert "at least 8" in capsys.readouterr().err
    assert main(["user", "list", "--db", db]) == 0
    listed = capsys.readouterr().out.splitlines()
    assert [line.split()[:3] for line in listed] == [["olga", "operator", "enabled"], ["root", "admin", "enabled"]]
    assert _cli(monkeypatch, ["user", "passwd", "olga", "--password-stdin", "--db", db], "olga-password-2\n") == 0
    capsys.readouterr()

    assert main(["key", "add", "sensors", "--role", "feed", "--db", db]) == 0
    out = capsys.readouterr()
    key = out.out.strip()
    assert out.out == key + "\n" and KEY.fullmatch(key)  # only the key on stdout
    key_id = key.split("_")[1]
    assert main(["key", "list", "--db", db]) == 0
    listed_keys = capsys.readouterr().out
    assert key_id in listed_keys and "active" in listed_keys and key.split("_", 2)[2] not in listed_keys
    assert main(["key", "revoke", key_id, "--db", db]) == 0
    assert main(["key", "revoke", "000000000000", "--db", db]) == 1
    assert "no API key" in capsys.readouterr().err
    assert main(["key", "list", "--db", db]) == 0
    assert "revoked" in capsys.readouterr().out

    store = EmbeddedStore(db)
    try:
        accounts, audit = Accounts(store, Tick()), AuditLog(store, Tick())
        assert accounts.check_password("olga", "olga-password-2") is not None
        assert accounts.verify_key(key) is None
        rows = audit.query()[::-1]
        assert [r["action"] for r in rows] == ["user.create", "user.create", "user.password", "key.create", "key.revoke"]
        assert all(re.fullmatch(r"cli:\S+", r["actor"]) for r in rows)
        assert accounts.keys()[0]["created_by"] == rows[0]["actor"]
        assert audit.verify() == (True, None)
    finally:
        store.close()


def test_cli_explains_a_missing_store_and_one_in_use(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = tmp_path / "c.duckdb"
    assert main(["user", "list", "--db", str(db)]) == 2
    assert "no store at" in capsys.readouterr().err and not db.exists()
    store = EmbeddedStore(db)  # as a running server would hold it
    try:
        out = subprocess.run([sys.executable, "-m", "citywall", "key", "add", "x", "--role", "feed", "--db", str(db)],
                             capture_output=True, text=True, timeout=120)
    finally:
        store.close()
    assert out.returncode == 2 and out.stdout == ""
    assert LOCKED in out.stderr


def test_cli_defaults_to_the_servers_store() -> None:
    from citywall.cli import build_parser

    parser = build_parser()
    up = parser.parse_args(["up"]).db
    for argv in (["user", "list"], ["user", "add", "a", "--role", "viewer"], ["key", "add", "a", "--role", "feed"], ["key", "revoke", "i"]):
        assert parser.parse_args(argv).db == up
    assert os.path.basename(up) == "citywall.duckdb"


def test_password_guessing_is_refused_before_it_is_checked(tmp_path: Path) -> None:
    """After ten failures on one name within ten minutes, further tries are refused (429) without
    being checked, even with the right password, so guessing costs the server nothing more."""
    with served(tmp_path) as (platform, client):
        for _ in range(10):
            assert client.post("/api/login", json={"name": "olga", "password": "wrong-password"}).status_code == 401
        blocked = client.post("/api/login", json={"name": "olga", "password": PASSWORDS["olga"]})
        assert blocked.status_code == 429 and int(blocked.headers["retry-after"]) > 0
        assert len(platform.audit.query(action="login.failed", limit=100)) == 10

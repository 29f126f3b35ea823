"""Users, sessions and API keys, stored only as hashes.

Passwords are hashed with Argon2id (argon2-cffi's `PasswordHasher`, RFC 9106 parameters): slow
and memory-hard on purpose, so a stolen store does not give the passwords away. Session tokens
and API keys are long random secrets (256 bits), so a fast SHA-256 of them is enough: nobody can
guess a preimage, and checking a key on every feed request must stay cheap.

Methods that write use the store's writer connection and must run on the pipeline's writer
thread (or, in the CLI, with no server running); methods that only read use `store.reader()`.
Nothing here writes audit rows: the caller knows who acted and records it, in the same
transaction (`citywall.auth.audit.atomic`).
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
import secrets
import threading
import time
from pathlib import Path
from typing import Any, Callable

import duckdb
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from citywall.store.embedded import EmbeddedStore

USER_ROLES = ("viewer", "operator", "admin")
KEY_ROLES = ("feed", "operator", "admin")
# A feed key ranks above a viewer (it may send data) and below an operator (it may not act on
# incidents or alarms); `access.require` compares these ranks.
RANK = {"viewer": 0, "feed": 1, "operator": 2, "admin": 3}
SESSION_TTL_S = 12 * 3600
KEY_CACHE_S = 30.0  # a verified API key is trusted this long without asking the store again (revocation here is at once)
MIN_PASSWORD = 8  # NIST SP 800-63B's minimum for a chosen secret
MAX_PASSWORD = 1024  # Argon2 takes any length; this only bounds the work a request can ask for
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}$")  # no ':' so "key:<name>" and "cli:<user>" stay unambiguous
KEY = re.compile(r"^cw_([0-9a-f]{12})_([A-Za-z0-9_-]{43})$")


class AccountError(ValueError):
    """A request about users or keys that cannot be done, with the reason (bad input: HTTP 422)."""


class NotFound(AccountError):
    """No such user or key (HTTP 404)."""


class Conflict(AccountError):
    """The user or key exists already, or the change would lock everyone out (HTTP 409)."""


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def _wall_us() -> int:
    return time.time_ns() // 1000


class Accounts:
    hasher = PasswordHasher()
    # Argon2 takes 64 MiB per verification: a burst of logins must not exhaust memory.
    _verifying = threading.BoundedSemaphore(2)
    _dummy_hash: str | None = None

    def __init__(self, store: EmbeddedStore, clock: Any) -> None:
        self.store = store
        self.clock = clock
        # Sessions expire on the wall clock, not the platform clock: at --speed 3600 a 12 h
        # session would otherwise end after 12 seconds. Tests replace this.
        self.wall_us: Callable[[], int] = _wall_us
        # Verified keys by their hash: a feed sends many requests a second, and a query per request
        # would wait behind the writer's commits. Revoking here clears it; another process sharing
        # the store sees a revocation within KEY_CACHE_S.
        self._keys_ok: dict[str, tuple[dict[str, Any], float]] = {}

    def _now_us(self) -> int:
        c = self.clock
        return int(c.now_us()) if hasattr(c, "now_us") else int(c())

    # -- users ----------------------------------------------------------------------------
    def create_user(self, name: str, role: str, password: str) -> dict[str, Any]:
        _check_name(name, "user")
        if role not in USER_ROLES:
            raise AccountError(f"no user role {role!r}: use one of {', '.join(USER_ROLES)}")
        password_hash = self._hash(password)
        try:
            self.store.con.execute(
                "INSERT INTO users (name, role, password_hash, created_at, disabled) VALUES (?, ?, ?, make_timestamptz(?), false)",
                [name, role, password_hash, self._now_us()],
            )
        except self.store.ConstraintError:  # the store's unique-key error (DuckDB's or PostgreSQL's)
            raise Conflict(f"a user {name!r} exists already") from None
        return self._user(name, self.store.con)  # type: ignore[return-value]

    def set_password(self, name: str, password: str, *, keep_session: str | None = None) -> dict[str, Any]:
        """Change a password and end the user's sessions (but `keep_session`, the token of the one
        making the change), so a stolen session does not outlive the password it came from."""
        user = self._existing(name)
        self.store.con.execute("UPDATE users SET password_hash = ? WHERE name = ?", [self._hash(password), name])
        keep = sha256(keep_session) if keep_session else ""
        self.store.con.execute("DELETE FROM sessions WHERE user_name = ? AND token_hash <> ?", [name, keep])
        return user

    def disable_user(self, name: str) -> dict[str, Any]:
        user = self._existing(name)
        if user["role"] == "admin" and not user["disabled"]:
            admins = self.store.con.execute("SELECT count(*) FROM users WHERE role = 'admin' AND NOT disabled").fetchone()[0]  # type: ignore[index]
            if admins <= 1:
                raise Conflict(f"{name!r} is the last enabled admin; create or enable another admin first")
        self.store.con.execute("UPDATE users SET disabled = true WHERE name = ?", [name])
        self.store.con.execute("DELETE FROM sessions WHERE user_name = ?", [name])
        return {**user, "disabled": True}

    def enable_user(self, name: str) -> dict[str, Any]:
        user = self._existing(name)
        self.store.con.execute("UPDATE users SET disabled = false WHERE name = ?", [name])
        return {**user, "disabled": False}

    def users(self) -> list[dict[str, Any]]:
        rows = self.store.reader().execute(
            "SELECT name, role, epoch_ms(created_at), disabled FROM users ORDER BY name"
        ).fetchall()
        return [_user_dict(r) for r in rows]

    def get_user(self, name: str) -> dict[str, Any] | None:
        return self._user(name, self.store.reader())

    def check_password(self, name: str, password: str) -> dict[str, Any] | None:
        """The user, if the name and password match an enabled user; else None, after the same
        Argon2 work either way, so the answer's timing does not tell whether the name exists."""
        row = self.store.reader().execute(
            "SELECT name, role, epoch_ms(created_at), disabled, password_hash FROM users WHERE name = ?", [name]
        ).fetchone() if isinstance(name, str) else None
        if not isinstance(password, str) or len(password) > MAX_PASSWORD:
            password = ""
        ok = self._verify(row[4] if row else self._dummy(), password)
        if row is None or not ok or row[3]:
            return None
        return _user_dict(row[:4])

    def ensure_admin(self, path: Path) -> str | None:
        """On a store without users, create `admin` with a random password written to `path`
        (mode 0600) and return it, so a new installation is not locked out; else None."""
        if self.store.con.execute("SELECT count(*) FROM users").fetchone()[0]:  # type: ignore[index]
            return None
        password = secrets.token_urlsafe(18)
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            os.fchmod(f.fileno(), 0o600)  # an existing file keeps its mode on open: tighten it
            f.write(password + "\n")
        try:
            self.create_user("admin", "admin", password)
        except BaseException:
            path.unlink(missing_ok=True)  # a password that opens nothing must not be left lying about
            raise
        return password

    # -- sessions -------------------------------------------------------------------------
    def open_session(self, name: str, ttl_s: float = SESSION_TTL_S) -> dict[str, Any]:
        """A new session for an (already verified) user: the token is returned once, only its
        hash is stored. Expired sessions are swept here, so the table stays small."""
        if ttl_s <= 0:
            raise AccountError("a session needs a positive lifetime")
        user = self._existing(name)
        token = secrets.token_urlsafe(32)
        now = self.wall_us()
        expires = now + int(ttl_s * 1e6)
        con = self.store.con
        con.execute("DELETE FROM sessions WHERE expires_at <= make_timestamptz(?)", [now])
        con.execute("INSERT INTO sessions (token_hash, user_name, created_at, expires_at) "
                    "VALUES (?, ?, make_timestamptz(?), make_timestamptz(?))", [sha256(token), name, now, expires])
        return {"token": token, "expires_ms": expires // 1000, "user": {"name": user["name"], "role": user["role"]}}

    def session_user(self, token: str) -> dict[str, Any] | None:
        """The enabled user of an unexpired session, or None."""
        if not token or len(token) > 256:
            return None
        row = self.store.reader().execute(
            "SELECT u.name, u.role, epoch_ms(u.created_at), u.disabled FROM sessions s JOIN users u ON u.name = s.user_name "
            "WHERE s.token_hash = ? AND s.expires_at > make_timestamptz(?) AND NOT u.disabled",
            [sha256(token), self.wall_us()],
        ).fetchone()
        return _user_dict(row) if row else None

    def close_session(self, token: str) -> bool:
        """End one session; True if there was one."""
        deleted = self.store.con.execute("DELETE FROM sessions WHERE token_hash = ?", [sha256(token or "")]).fetchone()[0]  # type: ignore[index]
        return bool(deleted)

    # -- API keys -------------------------------------------------------------------------
    def create_key(self, name: str, role: str, *, by: str) -> dict[str, Any]:
        """A new key `cw_<id>_<secret>`: the whole key is in the result once and never again."""
        _check_name(name, "key")
        if role not in KEY_ROLES:
            raise AccountError(f"no key role {role!r}: use one of {', '.join(KEY_ROLES)}")
        key_id = secrets.token_hex(6)
        key = f"cw_{key_id}_{secrets.token_urlsafe(32)}"
        self.store.con.execute(
            "INSERT INTO api_keys (id, name, role, key_hash, created_at, created_by) VALUES (?, ?, ?, ?, make_timestamptz(?), ?)",
            [key_id, name, role, sha256(key), self._now_us(), by],
        )
        return {**self._key(key_id, self.store.con), "key": key}  # type: ignore[dict-item]

    def verify_key(self, key: str) -> dict[str, Any] | None:
        """The key's record if `key` is a valid, unrevoked key; else None (never raises)."""
        m = KEY.match(key) if isinstance(key, str) else None
        if m is None:
            return None
        digest = sha256(key)
        cached = self._keys_ok.get(digest)
        if cached is not None and time.monotonic() - cached[1] < KEY_CACHE_S:
            return cached[0]
        row = self.store.reader().execute(
            "SELECT key_hash FROM api_keys WHERE id = ? AND revoked_at IS NULL", [m.group(1)]
        ).fetchone()
        if row is None or not hmac.compare_digest(row[0], digest):
            return None
        record = self._key(m.group(1), self.store.reader())
        if record is not None:
            if len(self._keys_ok) > 10_000:
                self._keys_ok.clear()
            self._keys_ok[digest] = (record, time.monotonic())
        return record

    def revoke_key(self, key_id: str) -> dict[str, Any]:
        key = self._key(key_id, self.store.con)
        if key is None:
            raise NotFound(f"no API key {key_id!r}")
        if key["revoked_at_ms"] is None:
            self.store.con.execute("UPDATE api_keys SET revoked_at = make_timestamptz(?) WHERE id = ?", [self._now_us(), key_id])
        self._keys_ok.clear()
        return self._key(key_id, self.store.con)  # type: ignore[return-value]

    def keys(self) -> list[dict[str, Any]]:
        rows = self.store.reader().execute(f"SELECT {_KEY_COLUMNS} FROM api_keys ORDER BY created_at, id").fetchall()
        return [dict(zip(_KEY_FIELDS, r)) for r in rows]

    # -- helpers --------------------------------------------------------------------------
    def _hash(self, password: str) -> str:
        if not isinstance(password, str) or len(password) < MIN_PASSWORD:
            raise AccountError(f"a password needs at least {MIN_PASSWORD} characters")
        if len(password) > MAX_PASSWORD:
            raise AccountError(f"a password may have at most {MAX_PASSWORD} characters")
        with self._verifying:
            return self.hasher.hash(password)

    def _verify(self, password_hash: str, password: str) -> bool:
        with self._verifying:
            try:
                return self.hasher.verify(password_hash, password)
            except (VerifyMismatchError, VerificationError, InvalidHashError):
                return False

    @classmethod
    def _dummy(cls) -> str:
        if cls._dummy_hash is None:
            cls._dummy_hash = cls.hasher.hash(secrets.token_urlsafe(16))
        return cls._dummy_hash

    def _existing(self, name: str) -> dict[str, Any]:
        user = self._user(name, self.store.con)
        if user is None:
            raise NotFound(f"no user {name!r}")
        return user

    @staticmethod
    def _user(name: str, cur: duckdb.DuckDBPyConnection) -> dict[str, Any] | None:
        row = cur.execute("SELECT name, role, epoch_ms(created_at), disabled FROM users WHERE name = ?", [name]).fetchone()
        return _user_dict(row) if row else None

    @staticmethod
    def _key(key_id: str, cur: duckdb.DuckDBPyConnection) -> dict[str, Any] | None:
        row = cur.execute(f"SELECT {_KEY_COLUMNS} FROM api_keys WHERE id = ?", [key_id]).fetchone()
        return dict(zip(_KEY_FIELDS, row)) if row else None


_KEY_COLUMNS = "id, name, role, epoch_ms(created_at), created_by, epoch_ms(revoked_at)"
_KEY_FIELDS = ("id", "name", "role", "created_at_ms", "created_by", "revoked_at_ms")


def _user_dict(row: tuple) -> dict[str, Any]:
    return {"name": row[0], "role": row[1], "created_at_ms": int(row[2]), "disabled": bool(row[3])}


def _check_name(name: str, what: str) -> None:
    if not isinstance(name, str) or not NAME.match(name):
        raise AccountError(f"bad {what} name {name!r}: 1 to 64 letters, digits or _ . @ -, starting with a letter or digit")

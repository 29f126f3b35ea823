"""Who is asking: a request's credentials turned into a `Principal`, and the role checks.

Three ways in: a session token (`Authorization: Bearer <token>` or the `citywall_session`
cookie the login sets), or an API key (`X-API-Key: cw_...`, also accepted as a Bearer token so
generic HTTP clients work). The first credential present decides: a wrong one is refused even if
another would have passed, so a mistake is reported rather than hidden.

Reading needs no login (the read-only wall); every state-changing endpoint depends on
`require(role)`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Literal

from fastapi import HTTPException, Request

from citywall.auth.accounts import RANK

COOKIE = "citywall_session"
KEY_HEADER = "X-API-Key"
Via = Literal["session", "key", "anonymous"]


@dataclass(frozen=True)
class Principal:
    name: str
    role: str  # viewer, feed, operator or admin; "anonymous" for nobody
    via: Via
    key_id: str | None = None  # for an API key: its id (never the secret)

    @property
    def actor(self) -> str:
        """The name the audit log records: a user's name, or "key:<name>" for an API key."""
        return f"key:{self.name}" if self.via == "key" else self.name

    @property
    def rank(self) -> int:
        return RANK.get(self.role, -1)


ANONYMOUS = Principal("anonymous", "anonymous", "anonymous")


def credentials(request: Request) -> tuple[Literal["session", "key"], str] | None:
    """The first credential the request carries, as (kind, secret); None if it carries none."""
    auth = request.headers.get("authorization")
    if auth is not None:
        scheme, _, token = auth.strip().partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            return ("session", "")  # present but unusable: refused, not ignored
        return ("key", token) if token.startswith("cw_") else ("session", token)
    key = request.headers.get(KEY_HEADER)
    if key is not None:
        return ("key", key.strip())
    cookie = request.cookies.get(COOKIE)
    if cookie:
        return ("session", cookie)
    return None


def authenticate(request: Request) -> Principal | None:
    """The Principal of a valid credential; None if there is none or it is wrong, expired,
    revoked or of a disabled user."""
    found = credentials(request)
    if found is None:
        return None
    kind, secret = found
    accounts = request.app.state.platform.accounts
    if kind == "key":
        key = accounts.verify_key(secret)
        return Principal(key["name"], key["role"], "key", key["id"]) if key else None
    user = accounts.session_user(secret)
    return Principal(user["name"], user["role"], "session") if user else None


def current(request: Request) -> Principal:
    """A dependency for endpoints anyone may call: the Principal, or ANONYMOUS."""
    return authenticate(request) or ANONYMOUS


def _needs(role: str) -> str:
    higher = [r for r, n in sorted(RANK.items(), key=lambda kv: kv[1]) if n > RANK[role] and r != "feed"]
    what = "a feed API key" if role == "feed" else f"the {role} role"
    return what + (f" (or {' or '.join(higher)})" if higher else "")


def require(role: str) -> Callable[[Request], Principal]:
    """A FastAPI dependency admitting principals of `role` or higher; 401 without valid
    credentials, 403 when the role is too low. require("feed") admits feed keys, operators and
    admins; require("operator") does not admit feed keys."""
    if role not in RANK:
        raise ValueError(f"no role {role!r}: use one of {', '.join(RANK)}")
    need = RANK[role]

    def dependency(request: Request) -> Principal:
        principal = authenticate(request)
        if principal is None:
            detail = ("not logged in: log in (POST /api/login) or give an API key (X-API-Key)" if credentials(request) is None
                      else "the session or API key is not valid (expired, revoked or unknown)")
            raise HTTPException(401, detail, headers={"WWW-Authenticate": "Bearer"})
        if principal.rank < need:
            raise HTTPException(403, f"this needs {_needs(role)}; {principal.actor} has the {principal.role} role")
        return principal

    dependency.__name__ = f"require_{role}"
    return dependency

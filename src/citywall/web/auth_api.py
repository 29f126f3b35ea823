"""Login, users, API keys and the audit log over HTTP.

Every change here is stored together with its audit row in one transaction on the writer
thread; login attempts are audited too, failed ones under the name that was tried.
"""

from __future__ import annotations

import asyncio
from typing import Annotated, Any, Callable, TypeVar

from fastapi import APIRouter, Depends, HTTPException, Query, Request, Response
from pydantic import BaseModel, Field

from citywall.auth.access import COOKIE, Principal, credentials, current, require
from citywall.auth.accounts import AccountError, Conflict, NotFound
from citywall.store.embedded import atomic
from citywall.auth.throttle import LoginGuard, Throttled

router = APIRouter(tags=["access"])
T = TypeVar("T")
Admin = Annotated[Principal, Depends(require("admin"))]
LOGIN_FAILED = "wrong user name or password, or the account is disabled"


class LoginIn(BaseModel):
    name: str = Field(max_length=64)
    password: str = Field(max_length=1024)


class UserIn(BaseModel):
    name: str
    role: str
    password: str


class PasswordIn(BaseModel):
    password: str
    current: str | None = Field(None, description="your present password (needed when you change your own)")


async def _audited(request: Request, principal: Principal, action: str, target: str, change: Callable[[], T]) -> T:
    """Make a change and its audit row (who, what, on whom) in one transaction."""
    audit = request.app.state.platform.audit

    def run() -> T:
        result = change()
        audit.append(principal.actor, action, target, {})
        return result

    return await _write(request, run)


class KeyIn(BaseModel):
    name: str
    role: str


async def _write(request: Request, fn: Callable[[], T]) -> T:
    """Run `fn` on the writer thread inside one transaction; account errors become 404/409/422."""
    platform = request.app.state.platform
    try:
        return await asyncio.wrap_future(platform.pipeline.call(lambda: atomic(platform.store, fn)))
    except NotFound as exc:
        raise HTTPException(404, str(exc)) from None
    except Conflict as exc:
        raise HTTPException(409, str(exc)) from None
    except AccountError as exc:
        raise HTTPException(422, str(exc)) from None


def _guard(request: Request) -> LoginGuard:
    state = request.app.state
    if not hasattr(state, "login_guard"):
        state.login_guard = LoginGuard()
    return state.login_guard


def _p(request: Request) -> Any:
    return request.app.state.platform


# -- sessions -----------------------------------------------------------------------------
@router.post("/api/login", summary="Log in: a session token (also set as an HttpOnly cookie)")
async def login(body: LoginIn, request: Request, response: Response) -> dict[str, Any]:
    p = _p(request)
    guard = _guard(request)
    client = _client(request)
    try:
        guard.check(client, body.name)
        user = await guard.run(lambda: p.accounts.check_password(body.name, body.password))
    except Throttled as exc:
        raise HTTPException(429, str(exc), headers={"Retry-After": str(exc.retry_after_s)}) from None
    if user is None:
        guard.failed(client, body.name)
        # The actor is nobody yet: the name tried is what was attempted, not who did it.
        await _write(request, lambda: p.audit.append("anonymous", "login.failed", body.name, {"client": client}))
        raise HTTPException(401, LOGIN_FAILED, headers={"WWW-Authenticate": "Bearer"})

    def run() -> dict[str, Any]:
        session = p.accounts.open_session(user["name"])
        p.audit.append(user["name"], "login", user["name"], {"client": _client(request), "expires_ms": session["expires_ms"]})
        return session

    session = await _write(request, run)
    max_age = max(0, (session["expires_ms"] - p.accounts.wall_us() // 1000) // 1000)
    response.set_cookie(COOKIE, session["token"], max_age=max_age, httponly=True, samesite="strict",
                        secure=request.url.scheme == "https", path="/")
    return session


@router.post("/api/logout", summary="End this session (and clear the cookie)")
async def logout(request: Request, response: Response) -> dict[str, Any]:
    p = _p(request)
    found = credentials(request)
    response.delete_cookie(COOKIE, path="/", httponly=True, samesite="strict")
    if found is None or found[0] != "session" or not found[1]:
        return {"ended": False}
    token = found[1]
    user = await asyncio.to_thread(p.accounts.session_user, token)

    def run() -> bool:
        ended = p.accounts.close_session(token)
        if ended and user is not None:
            p.audit.append(user["name"], "logout", user["name"], {})
        return ended

    return {"ended": await _write(request, run)}


@router.get("/api/me", summary="Who this request is (null when not logged in)")
def me(principal: Annotated[Principal, Depends(current)]) -> dict[str, Any]:
    if principal.via == "anonymous":
        return {"user": None}
    return {"user": {"name": principal.name, "role": principal.role, "via": principal.via}}


# -- users --------------------------------------------------------------------------------
@router.get("/api/users", summary="Users and their roles (admin)")
def list_users(request: Request, _: Admin) -> list[dict[str, Any]]:
    return _p(request).accounts.users()


@router.post("/api/users", status_code=201, summary="Create a user (admin)")
async def create_user(body: UserIn, request: Request, principal: Admin) -> dict[str, Any]:
    p = _p(request)

    def run() -> dict[str, Any]:
        user = p.accounts.create_user(body.name, body.role, body.password)
        p.audit.append(principal.actor, "user.create", body.name, {"role": body.role})
        return user

    return await _write(request, run)


@router.post("/api/users/{name}/password", summary="Set a password (admin, or the user themself with the present one)")
async def set_password(name: str, body: PasswordIn, request: Request,
                       principal: Annotated[Principal, Depends(require("viewer"))]) -> dict[str, Any]:
    p = _p(request)
    own = principal.via == "session" and principal.name == name
    if principal.role != "admin" and not own:
        raise HTTPException(403, "only an admin, or the user themself, may set a password")
    if principal.role != "admin":
        # A stolen session must not be enough to take the account over.
        ok = body.current is not None and await asyncio.to_thread(p.accounts.check_password, name, body.current)
        if not ok:
            raise HTTPException(403, "give your present password as 'current' to change it")
    found = credentials(request)
    keep = found[1] if own and found and found[0] == "session" else None

    return await _audited(request, principal, "user.password", name, lambda: p.accounts.set_password(name, body.password, keep_session=keep))


@router.post("/api/users/{name}/disable", summary="Disable a user and end their sessions (admin)")
async def disable_user(name: str, request: Request, principal: Admin) -> dict[str, Any]:
    p = _p(request)

    return await _audited(request, principal, "user.disable", name, lambda: p.accounts.disable_user(name))


@router.post("/api/users/{name}/enable", summary="Enable a disabled user again (admin)")
async def enable_user(name: str, request: Request, principal: Admin) -> dict[str, Any]:
    p = _p(request)

    return await _audited(request, principal, "user.enable", name, lambda: p.accounts.enable_user(name))


# -- API keys -----------------------------------------------------------------------------
@router.get("/api/keys", summary="API keys, without their secrets (admin)")
def list_keys(request: Request, _: Admin) -> list[dict[str, Any]]:
    return _p(request).accounts.keys()


@router.post("/api/keys", status_code=201, summary="Create an API key (admin): the key is shown in this answer only")
async def create_key(body: KeyIn, request: Request, principal: Admin) -> dict[str, Any]:
    p = _p(request)

    def run() -> dict[str, Any]:
        key = p.accounts.create_key(body.name, body.role, by=principal.actor)
        p.audit.append(principal.actor, "key.create", key["id"], {"name": key["name"], "role": key["role"]})
        return key

    return await _write(request, run)


@router.post("/api/keys/{key_id}/revoke", summary="Revoke an API key (admin)")
async def revoke_key(key_id: str, request: Request, principal: Admin) -> dict[str, Any]:
    p = _p(request)

    def run() -> dict[str, Any]:
        key = p.accounts.revoke_key(key_id)
        p.audit.append(principal.actor, "key.revoke", key_id, {"name": key["name"]})
        return key

    return await _write(request, run)


# -- the audit log ------------------------------------------------------------------------
@router.get("/api/audit", summary="The audit log, newest first (admin)")
def get_audit(request: Request, _: Admin, limit: Annotated[int, Query(ge=1, le=10_000)] = 100,
              actor: str | None = None, action: str | None = Query(None, description="exact, or a prefix ending in '.' or '*'"),
              since_ms: int | None = Query(None, ge=0, le=4_102_444_800_000, description="only rows at or after this platform time (epoch ms)")) -> list[dict[str, Any]]:
    return _p(request).audit.query(limit, actor=actor, action=action, since_us=None if since_ms is None else since_ms * 1000)


@router.get("/api/audit/verify", summary="Recompute the audit log's hash chain")
def verify_audit(request: Request, _: Admin) -> dict[str, Any]:
    ok, first_bad = _p(request).audit.verify()
    return {"ok": ok, "first_bad_seq": first_bad}


def _client(request: Request) -> str | None:
    return request.client.host if request.client else None

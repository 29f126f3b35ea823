"""People and access: user accounts, sessions, API keys and the append-only audit log.

`accounts` and `audit` are plain sync classes over the store (their writes run on the pipeline's
writer thread); `access` is the FastAPI side that turns a request into a `Principal`.
"""

from citywall.auth.accounts import KEY_ROLES, RANK, USER_ROLES, AccountError, Accounts, Conflict, NotFound
from citywall.auth.audit import AuditLog
from citywall.store.embedded import atomic

__all__ = ["KEY_ROLES", "RANK", "USER_ROLES", "AccountError", "Accounts", "AuditLog", "Conflict", "NotFound", "atomic"]

"""Tokens of the admin API: create (the secret shown once), list, revoke, and who a secret is.

Every person or system that calls the API has its own token with a name and one role;
``ADMIN_API_TOKEN`` from the environment is the first admin, named "admin" (PRODUCT.md, People
and roles). Only the SHA-256 of a token's secret is stored.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime

from domain.access import ADMIN_NAME, ApiToken, Identity, Role, check_token_name
from services.ports import UnitOfWork

SECRET_PREFIX = "hf_"  # noqa: S105 (the prefix of every secret, not a secret)


class TokenNotFound(LookupError):
    def __init__(self, token_id: str) -> None:
        super().__init__(f"No token {token_id} exists.")


@dataclass(frozen=True)
class CreatedToken:
    """A token just made, with its secret: the only time the secret is shown."""

    token_id: str
    name: str
    role: Role
    token: str
    created_at: datetime


def secret_hash(secret: str) -> str:
    """The SHA-256 of a secret, as stored and looked up.

    A fast hash is right here, unlike for passwords: a secret is 32 random bytes
    (``secrets.token_urlsafe(32)``, 256 bits), so there is nothing to guess and nothing a slow
    hash (bcrypt, scrypt, Argon2) would protect; it would only make every API call slower.
    """
    return hashlib.sha256(secret.encode("utf-8", "surrogatepass")).hexdigest()


def create_token(uow: UnitOfWork, name: str, role: Role, now: datetime) -> CreatedToken:
    """Make a token (InvalidTokenName, TokenNameTaken); its secret is in the answer and nowhere else."""
    check_token_name(name)
    secret = SECRET_PREFIX + secrets.token_urlsafe(32)
    token = ApiToken(str(uuid.uuid4()), name, Role(role), now)
    with uow:
        uow.tokens.add(token, secret_hash(secret))
        uow.commit()
    return CreatedToken(token.token_id, token.name, token.role, secret, token.created_at)


def list_tokens(uow: UnitOfWork, *, after: tuple[datetime, str] | None = None, limit: int = 50) -> list[ApiToken]:
    """Tokens oldest first, revoked ones included; never a secret."""
    with uow:
        return uow.tokens.page(after, limit)


def revoke_token(uow: UnitOfWork, token_id: str, now: datetime) -> ApiToken:
    """Revoke a token: the next request that sends it is refused (TokenNotFound if there is none)."""
    with uow:
        if uow.tokens.get(token_id) is None:
            raise TokenNotFound(token_id)
        uow.tokens.revoke(token_id, now)
        uow.commit()
        revoked = uow.tokens.get(token_id)
    assert revoked is not None
    return revoked


def is_active(uow: UnitOfWork, token_id: str) -> bool:
    """Whether a personal token still exists and is not revoked (a session signed in with it lives while it is)."""
    with uow:
        token = uow.tokens.get(token_id)
    return token is not None and not token.revoked


def authenticate(uow: UnitOfWork, admin_token: str, secret: str) -> Identity | None:
    """Who sends this secret: ADMIN_API_TOKEN is the admin named "admin"; None for unknown or revoked.

    Both comparisons take constant time: the admin token against the secret, and the stored hash
    against the secret's (the lookup is by hash, so it says nothing about the secret itself).
    """
    given = secret.encode("utf-8", "surrogatepass")
    if admin_token and hmac.compare_digest(given, admin_token.encode("utf-8")):
        return Identity(ADMIN_NAME, Role.ADMIN, None)
    if not secret:
        return None
    digest = secret_hash(secret)
    with uow:
        found = uow.tokens.by_secret_hash(digest)
    if found is None:
        return None
    token, stored = found
    if not hmac.compare_digest(stored.encode(), digest.encode()) or token.revoked:
        return None
    return token.identity()

"""Who may do what: roles, the rights each carries, and the identity a request acts as.

Every person or system has a token with a name and one role (PRODUCT.md, People and roles).
The table is data: a route names the right it needs, and ``may`` answers for a role.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from types import MappingProxyType


class Role(enum.StrEnum):
    VIEWER = "viewer"
    SALES = "sales"
    FINANCE = "finance"
    OPS = "ops"
    ADMIN = "admin"


class Right(enum.StrEnum):
    READ = "read"  # accounts, timelines, requests, events, policy, metrics
    SUBMIT_ORDERS = "submit_orders"  # submit (and cancel, before it is sent) an order
    MANAGE_HOLDS = "manage_holds"  # place or lift manual holds, lift lost disputes, pause enforcement
    MANAGE_ACCOUNTS = "manage_accounts"  # set accounts and credit limits
    RETRY_REQUESTS = "retry_requests"
    WHAT_IF = "what_if"  # run a policy what-if
    OPERATE = "operate"  # the ops routes and event replay
    ADMINISTER = "administer"  # tokens and subscriptions


_VIEWER = frozenset({Right.READ})
_SALES = _VIEWER | {Right.SUBMIT_ORDERS}
_FINANCE = _SALES | {Right.MANAGE_HOLDS, Right.MANAGE_ACCOUNTS, Right.RETRY_REQUESTS, Right.WHAT_IF}
_OPS = _VIEWER | {Right.OPERATE, Right.RETRY_REQUESTS}

RIGHTS: Mapping[Role, frozenset[Right]] = MappingProxyType(
    {
        Role.VIEWER: _VIEWER,
        Role.SALES: _SALES,
        Role.FINANCE: _FINANCE,
        Role.OPS: _OPS,
        Role.ADMIN: frozenset(Right),
    }
)

ADMIN_NAME = "admin"  # the name of ADMIN_API_TOKEN, the first admin


def may(role: Role, right: Right) -> bool:
    return right in RIGHTS[role]


@dataclass(frozen=True)
class Identity:
    """Who a request acts as: a token's name and role (``token_id`` None: ADMIN_API_TOKEN)."""

    name: str
    role: Role
    token_id: str | None = None

    @property
    def actor(self) -> str:
        """How the timeline names this person or system."""
        return f"{PERSON_PREFIX}{self.name}"

    def may(self, right: Right) -> bool:
        return may(self.role, right)


MAX_TOKEN_NAME_LENGTH = 100
PERSON_PREFIX = "user:"  # an actor that is a token's person (Identity.actor), not a source or Holdfast itself


def person_of(actor: str | None) -> str | None:
    """The name of the person an actor is (``user:fiona`` -> ``fiona``); None for a source or Holdfast."""
    if actor is None or not actor.startswith(PERSON_PREFIX):
        return None
    return actor.removeprefix(PERSON_PREFIX) or None


class InvalidTokenName(ValueError):
    """A token name that cannot be given; the message is a sentence."""


class TokenNameTaken(ValueError):
    """Another token that is not revoked has this name."""

    def __init__(self, name: str) -> None:
        super().__init__(f"A token named {name!r} exists and is not revoked: choose another name, or revoke it first.")


def check_token_name(name: str) -> str:
    """The name a token is given: 1 to 100 printable characters, not "admin" (ADMIN_API_TOKEN's)."""
    if not name.strip() or len(name) > MAX_TOKEN_NAME_LENGTH or not name.isprintable():
        raise InvalidTokenName(f"A token's name is 1 to {MAX_TOKEN_NAME_LENGTH} printable characters.")
    if name.strip().casefold() == ADMIN_NAME:
        raise InvalidTokenName(f'The name "{ADMIN_NAME}" is reserved for ADMIN_API_TOKEN.')
    return name


@dataclass(frozen=True)
class ApiToken:
    """A token of the admin API as stored: never its secret, only when it was made and revoked."""

    token_id: str
    name: str
    role: Role
    created_at: datetime
    revoked_at: datetime | None = None

    @property
    def revoked(self) -> bool:
        return self.revoked_at is not None

    def identity(self) -> Identity:
        return Identity(self.name, self.role, self.token_id)

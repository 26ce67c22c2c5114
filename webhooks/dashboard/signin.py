"""Who is signed in: the one way a secret becomes an identity, and the session that remembers it."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import ParamSpec, TypeVar

import structlog
from flask import abort, redirect, request, session, url_for

from domain.access import Identity, Right, Role
from services import tokens as token_service
from webhooks.context import container

log = structlog.get_logger(__name__)
P = ParamSpec("P")
R = TypeVar("R")


def _sign_in(secret: str) -> Identity | None:
    """The identity a secret signs in as, or None: the one way into the dashboard.

    A personal token (unknown or revoked: None) or ADMIN_API_TOKEN, the first admin, through
    ``services.tokens.authenticate``, as the API authenticates (both comparisons in constant time).
    """
    if not secret:
        return None
    c = container()
    return token_service.authenticate(c.uow(), c.settings.admin_api_token, secret)


def _still_valid(token_id: str | None) -> bool:
    """A session of a personal token ends as soon as the token is revoked (ADMIN_API_TOKEN's: None)."""
    if token_id is None:
        return True
    return token_service.is_active(container().uow(), token_id)


def start_session(identity: Identity) -> None:
    """Remember who signed in (name, role, token id), never the secret."""
    session.clear()
    session.permanent = True
    session["name"], session["role"], session["token_id"] = identity.name, str(identity.role), identity.token_id
    log.info("dashboard_signed_in", name=identity.name, role=str(identity.role))


def sign_in_failed() -> None:
    log.warning("dashboard_sign_in_failed", remote_addr=request.remote_addr)  # never the secret


def current_person() -> Identity | None:
    """The signed-in identity, or None."""
    name, role, token_id = session.get("name"), session.get("role"), session.get("token_id")
    if not isinstance(name, str) or role not in tuple(Role) or not _still_valid(token_id):
        return None
    return Identity(name, Role(role), token_id)


def signed_in(view: Callable[P, R]) -> Callable[P, R]:
    """A page for signed-in people: anyone else is sent to /login."""

    @wraps(view)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        if current_person() is None:
            return redirect(
                url_for("dashboard.login", next=request.full_path.rstrip("?") if request.method == "GET" else None)
            )  # type: ignore[return-value]
        return view(*args, **kwargs)

    return wrapper


def allowed(right: Right) -> Identity:
    """The signed-in person, who must have ``right`` (403 with a sentence otherwise)."""
    person = current_person()
    if person is None:
        abort(401)
    if not person.may(right):
        abort(403, description=f"Your role ({person.role}) may not do that.")
    return person

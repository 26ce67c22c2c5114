"""Who calls the admin API, and whether they may: bearer tokens, and the right each route declares.

Every /api route is reached through ``authorize`` (each API blueprint runs it before the view, so
before any body is parsed): the bearer token is authenticated (401 when it is missing, unknown or
revoked), the identity kept in ``flask.g.identity``, and the role checked against the right the
view declared with ``@requires`` (403 when the role lacks it). A view that declares no right is
refused to everyone: a new route stays closed until it says what it needs.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import structlog
from flask import current_app, g, request

from domain.access import Identity, Right, Role, may
from services import tokens as token_service
from webhooks.context import container
from webhooks.errors import ApiError

log = structlog.get_logger(__name__)

View = TypeVar("View", bound=Callable[..., object])

RIGHT_ATTRIBUTE = "_holdfast_right"  # copied onto flask-smorest's wrappers with the view's __dict__


def requires(right: Right) -> Callable[[View], View]:
    """Declare the right a route needs; placed just above ``def``, below ``@blp.route`` and the others."""

    def mark(view: View) -> View:
        setattr(view, RIGHT_ATTRIBUTE, right)
        # In /openapi.json too: flask-smorest merges a view's "manual_doc" into its operation.
        apidoc = getattr(view, "_apidoc", None)
        apidoc = apidoc if isinstance(apidoc, dict) else {}
        apidoc.setdefault("manual_doc", {}).update(
            {
                "x-required-right": str(right),
                "x-roles": [str(role) for role in Role if may(role, right)],
                "responses": {
                    "401": {"description": "No token, or one unknown or revoked."},
                    "403": {"description": f"The token's role lacks the right {right}."},
                },
            }
        )
        setattr(view, "_apidoc", apidoc)  # noqa: B010 (flask-smorest's attribute)
        return view

    return mark


def required_right(view: Callable[..., object] | None) -> Right | None:
    """The right a view declared, None when it declared none."""
    right = getattr(view, RIGHT_ATTRIBUTE, None)
    return right if isinstance(right, Right) else None


def current_identity() -> Identity:
    """Who the current request acts as (only within an /api request that passed ``authorize``)."""
    identity = g.get("identity")
    if not isinstance(identity, Identity):
        raise RuntimeError("No identity: current_identity() is only known inside an authorized /api request.")
    return identity


def _bearer_secret() -> str | None:
    scheme, _, secret = request.headers.get("Authorization", "").partition(" ")
    secret = secret.strip()
    return secret if scheme.lower() == "bearer" and secret else None


def authenticate_request() -> Identity:
    """The identity of the request's bearer token (401 ``unauthorized`` when missing, unknown or revoked)."""
    secret = _bearer_secret()
    c = container()
    identity = None if secret is None else token_service.authenticate(c.uow(), c.settings.admin_api_token, secret)
    if identity is None:
        # Never the secret: only that there was one, and where it was sent.
        log.warning(
            "api_token_refused",
            reason="missing" if secret is None else "unknown_or_revoked",
            method=request.method,
            path=request.path,
        )
        raise ApiError(
            401,
            "unauthorized",
            "Send Authorization: Bearer <token> with a token that exists and is not revoked to use the admin API.",
        )
    return identity


def authorize() -> None:
    """Before every /api view: authenticate, keep the identity in ``g.identity``, check the declared right."""
    identity = authenticate_request()
    g.identity = identity
    view = current_app.view_functions.get(request.endpoint or "")
    right = required_right(view)
    if right is None:
        log.error("api_route_without_right", endpoint=request.endpoint)
        raise ApiError(403, "forbidden", "This route declares no right, so no token may use it.")
    if not identity.may(right):
        log.info("api_forbidden", token=identity.name, role=str(identity.role), right=str(right), path=request.path)
        raise ApiError(
            403,
            "forbidden",
            f"The token {identity.name!r} has the role {identity.role}, which does not have the right {right} "
            "that this route needs.",
        )

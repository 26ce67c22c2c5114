"""/api/tokens: the tokens of people and systems that use the API. Admin only."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import structlog

from domain.access import InvalidTokenName, Right, Role, TokenNameTaken
from services import tokens as token_service
from webhooks.api import Blueprint
from webhooks.api.auth import current_identity, requires
from webhooks.api.pagination import decode_cursor, encode_cursor, page_of
from webhooks.api.schemas import ErrorSchema, PageQuerySchema
from webhooks.api.token_schemas import CreatedTokenSchema, TokenCreateSchema, TokenPageSchema, TokenSchema
from webhooks.context import container
from webhooks.errors import ApiError

log = structlog.get_logger(__name__)

blp = Blueprint(
    "tokens", __name__, url_prefix="/api/tokens", description="Tokens of the people and systems that use the API"
)


@blp.route("", methods=["POST"])
@blp.arguments(TokenCreateSchema)
@blp.response(201, CreatedTokenSchema, description="The token; its secret (`token`) is shown only here.")
@blp.alt_response(409, schema=ErrorSchema, description="A token that is not revoked has this name.")
@requires(Right.ADMINISTER)
def create_token(body: dict[str, Any]) -> Any:
    """Make a token with a name and a role; the answer carries its secret, once."""
    c = container()
    try:
        created = token_service.create_token(c.uow(), body["name"], Role(body["role"]), c.clock())
    except InvalidTokenName as error:
        raise ApiError(400, "validation_error", f"name: {error}") from None
    except TokenNameTaken as error:
        raise ApiError(409, "token_name_taken", str(error)) from None
    log.info(
        "api_token_created",
        token_id=created.token_id,
        name=created.name,
        role=str(created.role),
        by=current_identity().name,
    )
    return created


@blp.route("", methods=["GET"])
@blp.arguments(PageQuerySchema, location="query")
@blp.response(200, TokenPageSchema)
@requires(Right.ADMINISTER)
def list_tokens(query: dict[str, Any]) -> dict[str, Any]:
    """Tokens oldest first, revoked ones included; never a secret."""
    limit = query["limit"]
    tokens = token_service.list_tokens(
        container().uow(), after=_decode_token_cursor(query.get("cursor")), limit=limit + 1
    )
    page, cursor = page_of(
        tokens, limit, lambda token: encode_cursor(json.dumps([token.created_at.isoformat(), token.token_id]))
    )
    return {"items": page, "next_cursor": cursor}


def _decode_token_cursor(cursor: str | None) -> tuple[datetime, str] | None:
    raw = decode_cursor(cursor)
    if raw is None:
        return None
    try:
        created, token_id = json.loads(raw)
        at = datetime.fromisoformat(created)
    except (ValueError, TypeError):
        at = None
    if at is None or at.tzinfo is None:  # every cursor given out carries its time zone
        raise ApiError(400, "invalid_cursor", "The cursor is not one this API gave out.")
    return at, str(token_id)


@blp.route("/<token_id>", methods=["DELETE"])
@blp.response(200, TokenSchema, description="The token, revoked: it is refused from now on.")
@blp.alt_response(404, schema=ErrorSchema)
@requires(Right.ADMINISTER)
def revoke_token(token_id: str) -> Any:
    """Revoke a token at once: the next request that sends it gets 401."""
    if not token_id.isprintable():
        raise ApiError(400, "invalid_token_id", "A token id has no control characters: use the id this API gave out.")
    c = container()
    try:
        revoked = token_service.revoke_token(c.uow(), token_id, c.clock())
    except token_service.TokenNotFound as error:
        raise ApiError(404, "token_not_found", str(error)) from None
    log.info("api_token_revoked", token_id=revoked.token_id, name=revoked.name, by=current_identity().name)
    return revoked

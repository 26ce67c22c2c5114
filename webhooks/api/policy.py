"""/api/policy: the policy in force, and what a candidate would change (a what-if that changes nothing)."""

from __future__ import annotations

from typing import Any

from adapters.policy_file import PolicyError, policy_document, policy_from_document
from domain.access import Right
from services import what_if as what_if_service
from webhooks.api import Blueprint
from webhooks.api.auth import requires
from webhooks.api.pagination import decode_cursor, encode_cursor
from webhooks.api.policy_schemas import PolicyCandidateSchema, PolicySchema, WhatIfSchema
from webhooks.api.schemas import ErrorSchema, PageQuerySchema
from webhooks.context import container
from webhooks.errors import ApiError

blp = Blueprint("policy", __name__, url_prefix="/api/policy", description="The hold policy and its what-if")


@blp.route("", methods=["GET"])
@blp.response(200, PolicySchema)
@requires(Right.READ)
def get_policy() -> dict[str, Any]:
    """The policy in force, every key, in the policy file's sections and names (defaults included)."""
    return policy_document(container().policy)


@blp.route("/what-if", methods=["POST"])
@blp.arguments(PolicyCandidateSchema)
@blp.arguments(PageQuerySchema, location="query")
@blp.response(200, WhatIfSchema)
@blp.alt_response(400, schema=ErrorSchema, description="The candidate is refused with the sentence a bad file gets.")
@requires(Right.WHAT_IF)
def what_if(candidate: dict[str, Any], query: dict[str, Any]) -> dict[str, Any]:
    """The accounts whose holds or orders a candidate policy would change, now; nothing is changed."""
    c = container()
    try:
        policy = policy_from_document(candidate, base=c.policy)
    except PolicyError as error:
        raise ApiError(400, "invalid_policy", str(error)) from None
    page = what_if_service.what_if(
        c.uow(), c.policy, policy, c.clock(), after=decode_cursor(query.get("cursor")), limit=query["limit"]
    )
    return {
        "accounts_evaluated": page.accounts_evaluated,
        "changes": page.changes,
        "next_cursor": None if page.next_after is None else encode_cursor(page.next_after),
    }

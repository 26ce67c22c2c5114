"""/api/subscriptions: who hears Holdfast's own events, and the log of their deliveries. Admin only."""

from __future__ import annotations

from typing import Any

import structlog

from domain.access import Right
from services import subscriptions as subscription_service
from webhooks.api import Blueprint
from webhooks.api.auth import current_identity, requires
from webhooks.api.pagination import decode_cursor, decode_int_cursor, encode_cursor, page_of
from webhooks.api.schemas import ErrorSchema, PageQuerySchema
from webhooks.api.subscription_schemas import (
    CreatedSubscriptionSchema,
    DeliveryAttemptPageSchema,
    SubscriptionCreateSchema,
    SubscriptionPageSchema,
    SubscriptionSchema,
)
from webhooks.context import container
from webhooks.errors import ApiError

log = structlog.get_logger(__name__)

blp = Blueprint(
    "subscriptions",
    __name__,
    url_prefix="/api/subscriptions",
    description="Subscriptions to Holdfast's own events (signed Standard Webhooks) and their delivery log",
)


def _not_found(error: subscription_service.SubscriptionNotFound) -> ApiError:
    return ApiError(404, "subscription_not_found", str(error))


@blp.route("", methods=["POST"])
@blp.arguments(SubscriptionCreateSchema)
@blp.response(201, CreatedSubscriptionSchema, description="The subscription; its `secret` is shown only here.")
@blp.alt_response(400, schema=ErrorSchema)
@requires(Right.ADMINISTER)
def create_subscription(body: dict[str, Any]) -> Any:
    """Send the events of these types to a URL from now on, signed with the secret in the answer."""
    c = container()
    try:
        created = subscription_service.create_subscription(
            c.uow(), body["url"], body["events"], c.clock(), allow_http=c.settings.outgoing_allow_http
        )
    except subscription_service.InvalidSubscription as error:
        raise ApiError(400, "validation_error", str(error)) from None
    log.info(
        "subscription_created",
        subscription_id=created.subscription_id,
        events=list(created.events),
        by=current_identity().name,
    )
    return created


@blp.route("", methods=["GET"])
@blp.arguments(PageQuerySchema, location="query")
@blp.response(200, SubscriptionPageSchema)
@requires(Right.ADMINISTER)
def list_subscriptions(query: dict[str, Any]) -> dict[str, Any]:
    """Subscriptions by id; never a secret."""
    limit = query["limit"]
    found = subscription_service.list_subscriptions(
        container().uow(), after=decode_cursor(query.get("cursor")), limit=limit + 1
    )
    page, cursor = page_of(found, limit, lambda subscription: encode_cursor(subscription.subscription_id))
    return {"items": page, "next_cursor": cursor}


def _checked(subscription_id: str) -> str:
    if not subscription_id.isprintable() or len(subscription_id) > 40:
        raise ApiError(400, "invalid_subscription_id", "Use a subscription id this API gave out.")
    return subscription_id


@blp.route("/<subscription_id>", methods=["DELETE"])
@blp.response(200, SubscriptionSchema, description="Removed: nothing more is sent to it.")
@blp.alt_response(404, schema=ErrorSchema)
@requires(Right.ADMINISTER)
def delete_subscription(subscription_id: str) -> Any:
    """Stop sending to a subscription at once (its delivery log stays in the database)."""
    c = container()
    try:
        deleted = subscription_service.delete_subscription(c.uow(), _checked(subscription_id), c.clock())
    except subscription_service.SubscriptionNotFound as error:
        raise _not_found(error) from None
    log.info("subscription_deleted", subscription_id=deleted.subscription_id, by=current_identity().name)
    return deleted


@blp.route("/<subscription_id>/deliveries", methods=["GET"])
@blp.arguments(PageQuerySchema, location="query")
@blp.response(200, DeliveryAttemptPageSchema)
@blp.alt_response(404, schema=ErrorSchema)
@requires(Right.ADMINISTER)
def deliveries(query: dict[str, Any], subscription_id: str) -> dict[str, Any]:
    """Every attempt to deliver to this subscription, newest first: the subscriber's status, or the error."""
    limit = query["limit"]
    try:
        attempts = subscription_service.delivery_attempts(
            container().uow(),
            _checked(subscription_id),
            before_id=decode_int_cursor(query.get("cursor")),
            limit=limit + 1,
        )
    except subscription_service.SubscriptionNotFound as error:
        raise _not_found(error) from None
    page, cursor = page_of(attempts, limit, lambda attempt: encode_cursor(attempt.id))
    return {"items": page, "next_cursor": cursor}

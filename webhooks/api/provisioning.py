"""Orders and provisioning requests: submit, look up, list, retry, cancel. Thin: parse, call a service, answer."""

from __future__ import annotations

from typing import Any

from domain.access import Right
from domain.account import canonical_account_id
from domain.money import TooManyDecimals
from domain.provisioning import TransitionRefused
from domain.timeline import Change
from services import orders as service
from services.accounts import API_CAUSE, AccountNotFound
from webhooks.api import Blueprint
from webhooks.api.accounts import checked_account_id
from webhooks.api.auth import current_identity, requires
from webhooks.api.order_schemas import (
    AccountOnHoldSchema,
    OrderCreateSchema,
    ProvisioningPageSchema,
    ProvisioningQuerySchema,
    ProvisioningRequestSchema,
    RetriedSchema,
)
from webhooks.api.pagination import decode_request_cursor, page_of, request_cursor
from webhooks.api.schemas import ErrorSchema
from webhooks.context import container
from webhooks.errors import ApiError

blp = Blueprint("provisioning", __name__, url_prefix="/api", description="Orders and provisioning requests")


def _api_change() -> Change:
    """A change made through the API, by the token's person or system (``user:<token name>``)."""
    return Change(container().clock(), current_identity().actor, API_CAUSE)


def checked_request_id(request_id: str) -> str:
    # Not printable (a NUL, above all) cannot be an id this API gave out, and PostgreSQL refuses NUL.
    if not request_id.isprintable():
        raise ApiError(
            400, "invalid_request_id", "A request id has no control characters: use the id this API gave out."
        )
    return request_id


def _not_found(error: LookupError) -> ApiError:
    return ApiError(404, "not_found", str(error))


@blp.route("/accounts/<account_id>/orders", methods=["POST"])
@blp.arguments(OrderCreateSchema)
@blp.response(201, ProvisioningRequestSchema, description="The order was accepted.")
@blp.alt_response(200, schema=ProvisioningRequestSchema, description="This order id was already accepted.")
@blp.alt_response(404, schema=ErrorSchema)
@blp.alt_response(
    409, schema=AccountOnHoldSchema, description="The account's holds block changes, or the order id is taken."
)
@requires(Right.SUBMIT_ORDERS)
def submit_order(body: dict[str, Any], account_id: str) -> tuple[Any, int]:
    """Submit an order: dispatched at once, parked as awaiting, or refused while changes are blocked."""
    c = container()
    try:
        order = service.Order(
            account_id=checked_account_id(account_id),
            order_id=body["order_id"],
            amount=body["amount"],
            description=body.get("description"),
        )
        submitted = service.submit_order(c.uow(), c.context, order, _api_change())
    except AccountNotFound as error:
        raise ApiError(404, "account_not_found", str(error)) from None
    except service.AccountOnHold as error:
        raise ApiError(409, "account_on_hold", str(error), reasons=error.reasons) from None
    except service.OrderConflict as error:
        raise ApiError(409, "order_conflict", str(error)) from None
    except TooManyDecimals as error:
        raise ApiError(400, "validation_error", f"amount: {error}") from None
    return submitted.request, 201 if submitted.created else 200


@blp.route("/provisioning", methods=["GET"])
@blp.arguments(ProvisioningQuerySchema, location="query")
@blp.response(200, ProvisioningPageSchema)
@requires(Right.READ)
def list_requests(query: dict[str, Any]) -> dict[str, Any]:
    """Requests oldest first, by state and account."""
    c = container()
    limit = query["limit"]
    after = decode_request_cursor(query.get("cursor"))
    account_id = query.get("account_id")
    requests = service.list_requests(
        c.uow(),
        state=query.get("state"),
        account_id=canonical_account_id(account_id) if account_id else None,
        after=after,
        limit=limit + 1,
    )
    page, cursor = page_of(requests, limit, request_cursor)
    return {"items": page, "next_cursor": cursor}


@blp.route("/provisioning/<request_id>", methods=["GET"])
@blp.response(200, ProvisioningRequestSchema)
@blp.alt_response(404, schema=ErrorSchema)
@requires(Right.READ)
def get_request(request_id: str) -> Any:
    """One request with its state, what it waits for, and every attempt."""
    try:
        return service.view_request(container().uow(), checked_request_id(request_id))
    except service.RequestNotFound as error:
        raise _not_found(error) from None


@blp.route("/provisioning/<request_id>/retry", methods=["POST"])
@blp.response(202, ProvisioningRequestSchema)
@blp.alt_response(404, schema=ErrorSchema)
@blp.alt_response(409, schema=ErrorSchema, description="The request has not failed.")
@requires(Right.RETRY_REQUESTS)
def retry_request(request_id: str) -> Any:
    """Send a failed request again, with the same idempotency key (``awaiting`` while its account is held)."""
    c = container()
    try:
        return service.retry_request(c.uow(), c.context, checked_request_id(request_id), _api_change())
    except service.RequestNotFound as error:
        raise _not_found(error) from None
    except TransitionRefused as error:
        raise ApiError(409, "not_retryable", str(error)) from None


@blp.route("/provisioning/<request_id>/cancel", methods=["POST"])
@blp.response(200, ProvisioningRequestSchema)
@blp.alt_response(404, schema=ErrorSchema)
@blp.alt_response(409, schema=ErrorSchema, description="The request was already dispatched.")
@requires(Right.SUBMIT_ORDERS)
def cancel_request(request_id: str) -> Any:
    """Cancel a request that has not been dispatched."""
    c = container()
    try:
        return service.cancel_request(c.uow(), c.context, checked_request_id(request_id), _api_change())
    except service.RequestNotFound as error:
        raise _not_found(error) from None
    except TransitionRefused as error:
        raise ApiError(409, "not_cancellable", str(error)) from None


@blp.route("/accounts/<account_id>/provisioning/retry", methods=["POST"])
@blp.response(202, RetriedSchema)
@blp.alt_response(404, schema=ErrorSchema)
@requires(Right.RETRY_REQUESTS)
def retry_account_requests(account_id: str) -> dict[str, int]:
    """Send every failed request of the account again (each ``awaiting`` while the account is held)."""
    c = container()
    try:
        retried = service.retry_account_requests(c.uow(), c.context, checked_account_id(account_id), _api_change())
    except AccountNotFound as error:
        raise ApiError(404, "account_not_found", str(error)) from None
    return {"retried": retried}

"""The subscriptions page: where Holdfast's own events go, and every attempt to deliver them (admins only).

A view of ``services.subscriptions``, as ``GET /api/subscriptions`` and its deliveries route are;
creating and removing subscriptions stays with the API (its secret is shown once, there).
"""

from __future__ import annotations

from typing import Any

from flask import render_template, request

from domain.access import Right
from services import subscriptions as subscription_service
from webhooks.api.pagination import decode_int_cursor, encode_cursor, page_of
from webhooks.context import container
from webhooks.dashboard.signin import allowed, signed_in
from webhooks.dashboard.views import bp
from webhooks.errors import ApiError

SUBSCRIPTIONS_SHOWN = 500  # an admin registers a handful: more than this is a page of the API's
ATTEMPTS_PAGE = 50


@bp.route("/subscriptions", methods=["GET"])
@signed_in
def subscriptions() -> Any:
    """Every subscription: its URL and event types, never its secret."""
    allowed(Right.ADMINISTER)
    found = subscription_service.list_subscriptions(container().uow(), after=None, limit=SUBSCRIPTIONS_SHOWN)
    return render_template("dashboard/subscriptions.html", subscriptions=found)


@bp.route("/subscriptions/<subscription_id>", methods=["GET"])
@signed_in
def deliveries(subscription_id: str) -> Any:
    """A subscription's delivery log, newest first, a page at a time (``before``: the API's cursor)."""
    allowed(Right.ADMINISTER)
    before = request.args.get("before") or None
    c = container()
    try:
        subscription = subscription_service.get_subscription(c.uow(), subscription_id)
        attempts = subscription_service.delivery_attempts(
            c.uow(), subscription_id, before_id=decode_int_cursor(before), limit=ATTEMPTS_PAGE + 1
        )
    except subscription_service.SubscriptionNotFound as error:
        raise ApiError(404, "subscription_not_found", str(error)) from None
    shown, older = page_of(attempts, ATTEMPTS_PAGE, lambda attempt: encode_cursor(attempt.id))
    return render_template(
        "dashboard/deliveries.html", subscription=subscription, attempts=shown, before=before, older=older
    )

"""/api/ops: run now what beat runs periodically."""

from __future__ import annotations

from typing import Any

from domain.access import Right
from webhooks.api import Blueprint
from webhooks.api.auth import requires
from webhooks.api.schemas import ErrorSchema, QueuedSchema
from webhooks.context import container
from webhooks.errors import ApiError

blp = Blueprint("ops", __name__, url_prefix="/api/ops", description="Operations")


@blp.route("/sweep", methods=["POST"])
@blp.response(202, QueuedSchema)
@requires(Right.OPERATE)
def sweep() -> dict[str, Any]:
    """Re-queue inbox events left unprocessed and provisioning requests left behind."""
    container().publisher.sweep()
    return {"queued": True}


@blp.route("/tick", methods=["POST"])
@blp.response(202, QueuedSchema)
@requires(Right.OPERATE)
def tick() -> dict[str, Any]:
    """Re-evaluate the accounts whose time has come (due dates, grace periods, pauses ending)."""
    container().publisher.tick()
    return {"queued": True}


@blp.route("/reconcile", methods=["POST"])
@blp.response(202, QueuedSchema)
@blp.alt_response(409, schema=ErrorSchema, description="STRIPE_API_KEY is not set: nothing lists the events.")
@requires(Right.OPERATE)
def reconcile() -> dict[str, Any]:
    """Reconcile with Stripe's events list: store and process any event the inbox lacks."""
    c = container()
    if c.stripe_api is None:  # the task would only log that it skipped the run
        raise ApiError(
            409,
            "stripe_api_not_configured",
            "Reconciliation lists Stripe's events through Stripe's API, and STRIPE_API_KEY is not set: "
            "set it (a restricted, read-only key is enough) and run it again.",
        )
    c.publisher.reconcile()
    return {"queued": True}

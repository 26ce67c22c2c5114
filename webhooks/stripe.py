"""POST /webhooks/stripe: authenticate on the raw body, store the raw event, queue, answer."""

from __future__ import annotations

from typing import Any

import structlog
from flask import request
from flask_smorest import Blueprint

from adapters.stripe_parser import MalformedEvent, ThinEvent, parse_event
from adapters.stripe_signature import InvalidSignature, verify_stripe_signature
from services.inbox import store_delivery
from webhooks.api.schemas import ErrorSchema
from webhooks.context import container
from webhooks.errors import ApiError
from webhooks.schemas import STRIPE_EVENT, ReceivedSchema, json_body

blp = Blueprint("stripe_webhook", __name__, description="Stripe's webhook (signed with the endpoint's secret)")
log = structlog.get_logger(__name__)


@blp.route("/webhooks/stripe", methods=["POST"])
@blp.doc(
    security=[],
    parameters=[
        {
            "in": "header",
            "name": "Stripe-Signature",
            "required": True,
            "schema": {"type": "string"},
            "description": "t=<unix seconds>,v1=<HMAC-SHA256 of '{t}.{raw body}' with STRIPE_WEBHOOK_SECRET>",
        }
    ],
    requestBody=json_body("A Stripe snapshot event, exactly as Stripe sent it.", STRIPE_EVENT),
)
@blp.alt_response(200, schema=ReceivedSchema, description="Stored (or stored before): Stripe may stop.", success=True)
@blp.alt_response(
    400,
    schema=ErrorSchema,
    description="A wrong, missing or stale signature (more than 300 s old or ahead), a thin event or a malformed body.",
)
@blp.alt_response(413, schema=ErrorSchema, description="The body is over MAX_WEBHOOK_BYTES.")
@blp.alt_response(503, schema=ErrorSchema, description="The event could not be stored; Stripe retries it.")
def receive_stripe_event() -> tuple[dict[str, Any], int]:
    """Verify a Stripe event on its raw body, store it, answer; a worker processes it."""
    c = container()
    body = request.get_data(cache=False)  # over MAX_CONTENT_LENGTH: 413 before anything is read
    try:
        verify_stripe_signature(
            body,
            request.headers.get("Stripe-Signature"),
            c.settings.stripe_webhook_secrets,
            c.settings.stripe_signature_tolerance_seconds,
        )
        event = parse_event(body)
    except InvalidSignature as error:
        log.info("stripe_webhook_refused", reason=str(error))
        raise ApiError(400, "invalid_signature", str(error)) from None
    except ThinEvent as error:
        raise ApiError(400, "thin_event", str(error)) from None
    except MalformedEvent as error:
        raise ApiError(400, "malformed_event", str(error)) from None
    try:
        stored = store_delivery(
            c.deliveries,
            source="stripe",
            external_id=event.id,
            event_type=event.type,
            payload=body.decode("utf-8"),
            now=c.clock(),
            occurred_at=event.created,
        )
    except Exception:
        log.exception("stripe_event_not_stored", event_id=event.id)
        raise ApiError(503, "storage_unavailable", "The event could not be stored; Stripe will retry it.") from None
    # DEBUG: the access log already records every delivery, and the worker logs each one it applies.
    log.debug("stripe_event_received", event_id=event.id, event_type=event.type, duplicate=stored.duplicate)
    c.metrics.count("webhooks_received", source="stripe")
    return {"received": True, "duplicate": stored.duplicate}, 200

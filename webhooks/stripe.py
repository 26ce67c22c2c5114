"""POST /webhooks/stripe: authenticate on the raw body, store the raw event, queue, answer."""

from __future__ import annotations

from typing import Any

import structlog
from flask import Blueprint, request

from adapters.stripe_parser import MalformedEvent, ThinEvent, parse_event
from adapters.stripe_signature import InvalidSignature, verify_stripe_signature
from services.inbox import store_delivery
from webhooks.context import container
from webhooks.errors import ApiError

bp = Blueprint("stripe_webhook", __name__)
log = structlog.get_logger(__name__)


@bp.post("/webhooks/stripe")
def receive_stripe_event() -> tuple[dict[str, Any], int]:
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

"""POST /webhooks/dynamics: authenticate (?code= or a header), store the raw context, queue, answer."""

from __future__ import annotations

import hmac
from typing import Any

import structlog
from flask import request
from flask_smorest import Blueprint

from adapters.dynamics_body import NotAContext
from adapters.dynamics_context import parse_context
from adapters.dynamics_deliveries import check_delivery, delivery_key
from services.inbox import store_delivery
from services.ports import IncompleteCrmEvent
from webhooks.api.schemas import ErrorSchema
from webhooks.context import container
from webhooks.errors import ApiError
from webhooks.schemas import DYNAMICS_CONTEXT, ReceivedSchema, json_body

blp = Blueprint(
    "dynamics_webhook",
    __name__,
    description="Dynamics 365 (Dataverse) webhook: the WebhookKey as ?code=, or the HttpHeader configured",
)
log = structlog.get_logger(__name__)

SIZE_EXCEEDED_HEADER = "x-ms-dynamics-msg-size-exceeded"


def _same(given: str | None, expected: str) -> bool:
    return given is not None and hmac.compare_digest(given.encode("utf-8"), expected.encode("utf-8"))


def authenticate() -> None:
    settings = container().settings
    if not settings.dynamics_webhooks_enabled:
        raise ApiError(
            503,
            "dynamics_not_configured",
            "Dynamics webhooks are not configured on this service: "
            "set DYNAMICS_WEBHOOK_KEY or DYNAMICS_WEBHOOK_HEADER.",
        )
    key_ok = settings.dynamics_webhook_key is not None and _same(
        request.args.get("code"), settings.dynamics_webhook_key
    )
    header = settings.dynamics_webhook_header
    header_ok = header is not None and _same(request.headers.get(header[0]), header[1])
    if not (key_ok or header_ok):
        raise ApiError(401, "unauthorized", "The webhook key (?code=) or authentication header is missing or wrong.")


@blp.route("/webhooks/dynamics", methods=["POST"])
@blp.doc(
    security=[{"dynamics_webhook_key": []}],
    requestBody=json_body("A RemoteExecutionContext, serialized as JSON by Dataverse.", DYNAMICS_CONTEXT),
)
@blp.alt_response(
    200, schema=ReceivedSchema, description="Stored (or stored before): Dataverse may stop.", success=True
)
@blp.alt_response(401, schema=ErrorSchema, description="The key (?code=) or the header is missing or wrong.")
@blp.alt_response(400, schema=ErrorSchema, description="The body is not a RemoteExecutionContext Holdfast can read.")
@blp.alt_response(413, schema=ErrorSchema, description="The body is over MAX_WEBHOOK_BYTES.")
@blp.alt_response(
    503,
    schema=ErrorSchema,
    description="Not configured (no DYNAMICS_WEBHOOK_KEY nor DYNAMICS_WEBHOOK_HEADER), or not stored.",
)
def receive_dynamics_event() -> tuple[dict[str, Any], int]:
    """Authenticate a Dataverse delivery, store it, answer; a worker processes it."""
    authenticate()
    c = container()
    body = request.get_data(cache=False)
    stripped = request.headers.get(SIZE_EXCEEDED_HEADER, "").strip().lower() not in ("", "false", "0")
    try:
        context = parse_context(body, size_exceeded=stripped)
        key = delivery_key(context)
        check_delivery(context, c.dynamics_options)
    except (NotAContext, IncompleteCrmEvent) as error:
        raise ApiError(400, "malformed_context", str(error)) from None
    event_type = f"{context.primary_entity_name}.{context.message_name}"[:128]
    try:
        stored = store_delivery(
            c.deliveries,
            source="dynamics",
            external_id=key[:255],
            event_type=event_type,
            payload=body.decode("utf-8-sig"),
            now=c.clock(),
            meta={"msg_size_exceeded": True} if stripped else None,
        )
    except Exception:
        log.exception("dynamics_event_not_stored", key=key)
        raise ApiError(503, "storage_unavailable", "The event could not be stored; Dynamics will retry it.") from None
    log.info("dynamics_event_received", key=key, event_type=event_type, duplicate=stored.duplicate)
    c.metrics.count("webhooks_received", source="dynamics")
    return {"received": True, "duplicate": stored.duplicate}, 200

"""/api/events: the inbox of stored deliveries, and replay of failed ones."""

from __future__ import annotations

from typing import Any

from domain.access import Right
from services import inbox as inbox_service
from webhooks.api import Blueprint
from webhooks.api.auth import requires
from webhooks.api.pagination import decode_int_cursor, encode_cursor, page_of
from webhooks.api.schemas import ErrorSchema, InboxEventSchema, InboxPageSchema, InboxQuerySchema
from webhooks.context import container
from webhooks.errors import ApiError

blp = Blueprint("events", __name__, url_prefix="/api/events", description="Stored webhook deliveries")


@blp.route("", methods=["GET"])
@blp.arguments(InboxQuerySchema, location="query")
@blp.response(200, InboxPageSchema)
@requires(Right.READ)
def list_events(query: dict[str, Any]) -> dict[str, Any]:
    """Stored deliveries, oldest first; ``status=failed`` lists those to replay."""
    c = container()
    limit = query["limit"]
    rows = inbox_service.list_events(c.uow(), query.get("status"), decode_int_cursor(query.get("cursor")), limit + 1)
    page, cursor = page_of(rows, limit, lambda row: encode_cursor(row.id))
    return {"items": page, "next_cursor": cursor}


# A Dynamics inbox id contains "/" (operation/stage/message/entity/row). Sent raw or
# percent-encoded (%2F), it reaches the route decoded, as one id either way.
@blp.route("/<source>/<id_with_slashes:event_id>/replay", methods=["POST"])
@blp.response(202, InboxEventSchema)
@blp.alt_response(404, schema=ErrorSchema)
@blp.alt_response(409, schema=ErrorSchema, description="The event has not failed.")
@requires(Right.OPERATE)
def replay(source: str, event_id: str) -> Any:
    """Process a failed event again; an id that contains "/" (a Dynamics key) is sent percent-encoded or raw."""
    if not (source.isprintable() and event_id.isprintable()):
        raise ApiError(400, "invalid_event_id", "An event's source and id are printable text.")
    c = container()
    try:
        event = inbox_service.replay(c.uow(), c.publisher, source, event_id, c.clock())
    except inbox_service.NotReplayable as error:
        raise ApiError(409, "not_replayable", str(error)) from None
    if event is None:
        raise ApiError(404, "event_not_found", f"No {source} event {event_id} is stored.")
    return event

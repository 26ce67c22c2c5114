"""Bodies of /api/subscriptions: a subscription as listed (never its secret), as created, and its delivery log."""

from __future__ import annotations

from marshmallow import Schema, fields, validate

from domain.outgoing import EVENT_TYPES
from webhooks.api.schemas import StrictSchema, Text


class SubscriptionCreateSchema(StrictSchema):
    url = Text(
        required=True,
        metadata={"description": "Where events are POSTed: https (http only with OUTGOING_ALLOW_HTTP=true)."},
    )
    events = fields.List(
        Text(),
        required=True,
        validate=validate.Length(min=1, max=len(EVENT_TYPES) * 2),
        metadata={"description": "The event types to receive: " + ", ".join(EVENT_TYPES) + "."},
    )


class SubscriptionSchema(Schema):
    subscription_id = fields.String(required=True)
    url = fields.String(required=True)
    events = fields.List(fields.String(metadata={"enum": list(EVENT_TYPES)}), required=True)
    created_at = fields.DateTime(required=True)


class CreatedSubscriptionSchema(SubscriptionSchema):
    secret = fields.String(
        required=True,
        metadata={"description": "whsec_<base64>: verify deliveries with it; shown only in this answer, never again."},
    )


class SubscriptionPageSchema(Schema):
    items = fields.List(fields.Nested(SubscriptionSchema), required=True)
    next_cursor = fields.String(allow_none=True, required=True)


class DeliveryAttemptSchema(Schema):
    webhook_id = fields.String(required=True, metadata={"description": "the same on every attempt of one event"})
    type = fields.String(required=True, metadata={"enum": list(EVENT_TYPES)})
    at = fields.DateTime(required=True)
    status = fields.Integer(allow_none=True, metadata={"description": "the subscriber's HTTP status, when it answered"})
    error = fields.String(allow_none=True, metadata={"description": "what went wrong, when it did not answer"})
    duration_ms = fields.Integer(required=True)


class DeliveryAttemptPageSchema(Schema):
    items = fields.List(fields.Nested(DeliveryAttemptSchema), required=True)
    next_cursor = fields.String(allow_none=True, required=True)

"""Bodies of the order and provisioning routes."""

from __future__ import annotations

from decimal import Decimal

from marshmallow import Schema, fields, validate

from domain.provisioning import RequestState
from webhooks.api.schemas import Money, PageQuerySchema, StrictSchema, Text


class OrderCreateSchema(StrictSchema):
    order_id = Text(required=True, validate=validate.Length(min=1, max=255))
    amount = Money(
        required=True,
        minimum=Decimal(0),
        exclusive=True,
        error_messages={"minimum": "The amount must be positive."},
    )
    description = Text(allow_none=True, validate=validate.Length(max=2000))


class AttemptSchema(Schema):
    at = fields.DateTime(required=True)
    status = fields.Integer(allow_none=True, metadata={"description": "the HTTP status, when there was an answer"})
    error = fields.String(allow_none=True, metadata={"description": "what went wrong, when it did"})
    note = fields.String(allow_none=True)
    duration_ms = fields.Integer(required=True)


class ProvisioningRequestSchema(Schema):
    request_id = fields.String(required=True)
    account_id = fields.String(required=True)
    order_id = fields.String(required=True)
    amount = Money(required=True)
    currency = fields.String(allow_none=True)
    description = fields.String(allow_none=True)
    state = fields.String(required=True, metadata={"enum": [s.value for s in RequestState]})
    waiting_for = fields.List(fields.String(), required=True)
    created_at = fields.DateTime(required=True)
    attempts = fields.List(fields.Nested(AttemptSchema), required=True)
    failure = fields.String(allow_none=True)


class ProvisioningQuerySchema(PageQuerySchema):
    state = Text(validate=validate.OneOf([s.value for s in RequestState]))
    account_id = Text(validate=validate.Length(min=1, max=100))


class ProvisioningPageSchema(Schema):
    items = fields.List(fields.Nested(ProvisioningRequestSchema), required=True)
    next_cursor = fields.String(allow_none=True, required=True)


class AccountOnHoldSchema(Schema):
    """409 of an order: ``account_on_hold`` (with the hold ``reasons``) or ``order_conflict``."""

    error = fields.String(required=True)
    reasons = fields.List(fields.String(), metadata={"description": "with account_on_hold: the hold reasons"})
    message = fields.String(required=True)


class RetriedSchema(Schema):
    retried = fields.Integer(required=True, metadata={"description": "how many failed requests were retried"})

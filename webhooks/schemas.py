"""What the webhooks and the health checks answer, for /openapi.json (their bodies are built by hand)."""

from __future__ import annotations

from typing import Any

from marshmallow import Schema, fields


class ReceivedSchema(Schema):
    received = fields.Boolean(required=True, metadata={"description": "Always true: the delivery is stored."})
    duplicate = fields.Boolean(
        required=True, metadata={"description": "True when this delivery was stored before (a redelivery)."}
    )


class HealthSchema(Schema):
    status = fields.String(required=True, metadata={"enum": ["ok"]})


class ReadinessChecksSchema(Schema):
    database = fields.String(required=True, metadata={"enum": ["ok", "unreachable"]})
    broker = fields.String(required=True, metadata={"enum": ["ok", "unreachable"]})


class ReadinessSchema(Schema):
    status = fields.String(required=True, metadata={"enum": ["ready", "not_ready"]})
    checks = fields.Nested(ReadinessChecksSchema, required=True)


def json_body(description: str, schema: dict[str, Any]) -> dict[str, Any]:
    """An OpenAPI ``requestBody``: a JSON document read as raw bytes (the signature covers them)."""
    return {"required": True, "description": description, "content": {"application/json": {"schema": schema}}}


# A Stripe event, as far as the webhook reads it before storing it (snapshot events only).
STRIPE_EVENT = {
    "type": "object",
    "required": ["id", "object", "type", "data"],
    "properties": {
        "id": {"type": "string", "example": "evt_1Nv0FGQ9..."},
        "object": {"type": "string", "enum": ["event"]},
        "type": {"type": "string", "example": "invoice.payment_failed"},
        "created": {"type": "integer", "description": "Unix seconds"},
        "api_version": {"type": "string", "nullable": True},
        "data": {"type": "object", "properties": {"object": {"type": "object"}}, "required": ["object"]},
    },
}

# A Dataverse RemoteExecutionContext, serialized as JSON (the fields the webhook reads first).
DYNAMICS_CONTEXT = {
    "type": "object",
    "required": ["MessageName", "PrimaryEntityName", "PrimaryEntityId", "OperationId", "InputParameters"],
    "properties": {
        "MessageName": {"type": "string", "example": "Update"},
        "PrimaryEntityName": {"type": "string", "example": "account"},
        "PrimaryEntityId": {"type": "string", "format": "uuid"},
        "OperationId": {"type": "string", "format": "uuid"},
        "Stage": {"type": "integer", "example": 40},
        "InputParameters": {"type": "array", "items": {"type": "object"}},
        "PostEntityImages": {"type": "array", "items": {"type": "object"}},
    },
}

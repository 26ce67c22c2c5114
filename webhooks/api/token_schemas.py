"""Bodies of /api/tokens: a token as listed (never its secret), and as created (its secret, once)."""

from __future__ import annotations

from marshmallow import Schema, fields, validate

from domain.access import MAX_TOKEN_NAME_LENGTH, Role
from webhooks.api.schemas import StrictSchema, Text

ROLES = [str(role) for role in Role]


class TokenCreateSchema(StrictSchema):
    name = Text(
        required=True,
        validate=validate.Length(min=1, max=MAX_TOKEN_NAME_LENGTH),
        metadata={"description": 'Who uses the token: 1 to 100 printable characters, unique, not "admin".'},
    )
    role = Text(required=True, validate=validate.OneOf(ROLES, error="role must be one of: " + ", ".join(ROLES) + "."))


class TokenSchema(Schema):
    token_id = fields.String(required=True)
    name = fields.String(required=True)
    role = fields.String(required=True, metadata={"enum": ROLES})
    created_at = fields.DateTime(required=True)
    revoked_at = fields.DateTime(allow_none=True, metadata={"description": "null while the token works"})


class CreatedTokenSchema(Schema):
    token_id = fields.String(required=True)
    name = fields.String(required=True)
    role = fields.String(required=True, metadata={"enum": ROLES})
    token = fields.String(
        required=True,
        metadata={"description": "The secret, for Authorization: Bearer; shown only in this answer, never again."},
    )
    created_at = fields.DateTime(required=True)


class TokenPageSchema(Schema):
    items = fields.List(fields.Nested(TokenSchema), required=True)
    next_cursor = fields.String(allow_none=True, required=True)

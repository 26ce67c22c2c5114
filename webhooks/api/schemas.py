"""Request and response bodies of the admin API (and so of /openapi.json)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from marshmallow import RAISE, Schema, ValidationError, fields, validate, validates

from domain.holds import HoldReason

CENT = Decimal("0.01")


class StrictSchema(Schema):
    error_messages = {"type": "The body must be a JSON object."}

    class Meta:
        unknown = RAISE


class Text(fields.String):
    """Text the database can store: no NUL character (PostgreSQL refuses it) and valid Unicode.

    Every string the admin API reads, in a body or a query string, is a Text: a NUL or a lone
    surrogate (JSON can spell one as ``"\\ud800"``) is a 400 here instead of a 500 at the database.
    """

    default_error_messages = {
        "nul": "Text cannot contain a NUL character.",
        "surrogate": "Text must be valid Unicode; a lone surrogate is not.",
    }

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> str:
        text: str = super()._deserialize(value, attr, data, **kwargs)
        if "\x00" in text:
            raise self.make_error("nul")
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            raise self.make_error("surrogate") from None
        return text


class Money(fields.Decimal):
    """An amount in major units as a decimal string ("1250.00"); numbers are accepted on input.

    ``minimum``: the smallest amount allowed (``exclusive``: and not that amount itself), checked
    here rather than by a Range validator, whose bound the OpenAPI document would print as a
    string where it must be a number.
    """

    # In the OpenAPI document: a decimal string, or a number on input (see webhooks.api.init_api).
    OPENAPI = {
        "anyOf": [{"type": "string", "pattern": r"^-?[0-9]+(\.[0-9]+)?$"}, {"type": "number"}],
        "example": "1250.00",
    }

    def __init__(self, *, minimum: Decimal | None = None, exclusive: bool = False, **kwargs: Any) -> None:
        super().__init__(as_string=True, allow_nan=False, **kwargs)
        self.minimum, self.exclusive = minimum, exclusive

    def _serialize(self, value: Any, attr: str | None, obj: Any, **kwargs: Any) -> str | None:
        if value is None:
            return None
        value = Decimal(value)
        cents = value.quantize(CENT)
        # Two places as a rule; more only where the amount has them (three-decimal currencies).
        return str(cents) if cents == value else str(value.normalize())

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> Any:
        if isinstance(value, bool):
            raise ValidationError("Not a valid amount.")
        amount = super()._deserialize(value, attr, data, **kwargs)
        if amount is not None and amount.as_tuple().exponent < -4:  # type: ignore[operator]
            raise ValidationError("An amount has at most 4 decimal places.")
        if amount is not None and abs(amount) >= 10**15:
            raise ValidationError("The amount is too large.")
        below = amount is not None and self.minimum is not None and amount < self.minimum
        at_exclusive = amount is not None and self.exclusive and amount == self.minimum
        if below or at_exclusive:
            raise ValidationError(self.error_messages.get("minimum", "The amount is too small."))
        return amount


class ErrorSchema(Schema):
    error = fields.String(required=True, metadata={"description": "A stable error code."})
    message = fields.String(required=True, metadata={"description": "What is wrong, in a sentence."})


class HoldSchema(Schema):
    reason = fields.String(required=True)
    since = fields.DateTime(required=True)
    cause = fields.String(required=True, metadata={"description": "stripe:evt_..., dynamics:<operation id> or api"})
    note = fields.String(allow_none=True)
    placed_by = fields.String(
        allow_none=True,
        metadata={
            "description": "Who placed it, as the timeline's actor: user:<name> for a person (cause api), "
            "stripe, dynamics:<CRM user> or holdfast otherwise; null for holds older than this field"
        },
    )


class StandingSchema(Schema):
    invoices_paid_on_time = fields.Integer(
        required=True,
        metadata={
            "description": "paid by the due date (or, collected automatically, with no failed attempt) in the window"
        },
    )
    invoices_paid_late_or_failed = fields.Integer(
        required=True, metadata={"description": "paid late or after a failed attempt, or written off, in the window"}
    )
    window_months = fields.Integer(
        allow_none=True,
        metadata={"description": "the window of [non_payment.good_standing]; null without one (counts over 12 months)"},
    )
    good_standing = fields.Boolean(
        required=True,
        metadata={"description": "whether the account earns the policy's extra failed attempts and grace"},
    )


class AccountSchema(Schema):
    account_id = fields.String(required=True)
    name = fields.String(allow_none=True)
    account_number = fields.String(allow_none=True)
    stripe_customer_id = fields.String(allow_none=True)
    currency = fields.String(allow_none=True)
    credit_limit = Money(allow_none=True, metadata={"description": "null: unlimited"})
    exposure = Money(required=True)
    on_hold = fields.Boolean(required=True)
    blocks_changes = fields.Boolean(required=True)
    parks_provisioning = fields.Boolean(required=True)
    holds = fields.List(fields.Nested(HoldSchema), required=True)
    enforcement_paused_until = fields.DateTime(allow_none=True)
    awaiting = fields.Integer(required=True)
    enforcement_paused_by = fields.String(
        allow_none=True, metadata={"description": "Who paused enforcement (user:<name>); null when not paused"}
    )
    standing = fields.Nested(StandingSchema, required=True, metadata={"description": "its record of paying"})


class AccountPutSchema(StrictSchema):
    name = Text(allow_none=True, validate=validate.Length(max=400))
    stripe_customer_id = Text(
        allow_none=False,
        validate=validate.Regexp(
            r"^(cus|acct)_[A-Za-z0-9]{1,250}\Z",
            error="Not a Stripe customer id (cus_..., or acct_... for a customer represented by an Account).",
        ),
    )
    credit_limit = Money(
        allow_none=True, minimum=Decimal(0), error_messages={"minimum": "The credit limit cannot be negative."}
    )
    currency = Text(
        allow_none=True, validate=validate.Regexp(r"^[A-Za-z]{3}\Z", error="Not a three-letter currency code.")
    )


class PageQuerySchema(StrictSchema):
    cursor = Text(validate=validate.Length(min=1, max=500))
    limit = fields.Integer(
        load_default=50, validate=validate.Range(min=1, max=500, error="limit must be from 1 to 500.")
    )


class AccountListQuerySchema(PageQuerySchema):
    on_hold = fields.Boolean(metadata={"description": "true: accounts with any hold (paused ones included)"})
    reason = Text(
        validate=validate.OneOf(
            [str(r) for r in HoldReason],
            error="There is no hold reason {input}; it is one of {choices}.",
        ),
        metadata={"description": "Only accounts with a hold of this reason (paged like the rest); implies on_hold."},
    )


class AccountPageSchema(Schema):
    items = fields.List(fields.Nested(AccountSchema), required=True)
    next_cursor = fields.String(allow_none=True, required=True)


NOTE_DESCRIPTION = "Why: required; kept on the account's timeline with the name of the token that did it."


class HoldCreateSchema(StrictSchema):
    reason = Text(required=True)
    note = Text(allow_none=True, validate=validate.Length(max=2000), metadata={"description": NOTE_DESCRIPTION})

    @validates("reason")
    def _only_manual(self, value: str, **_: Any) -> None:
        if value != HoldReason.MANUAL:
            raise ValidationError(
                "Only a manual hold can be placed through the API; the other reasons are set by their sources."
            )


class HoldLiftQuerySchema(StrictSchema):
    note = Text(validate=validate.Length(max=2000), metadata={"description": NOTE_DESCRIPTION + " Or in the body."})


class NoteBodySchema(StrictSchema):
    """The optional body of a DELETE that needs a note (it may come as ``?note=`` instead)."""

    note = Text(allow_none=True, validate=validate.Length(max=2000), metadata={"description": NOTE_DESCRIPTION})


class PauseSchema(StrictSchema):
    until = fields.AwareDateTime(
        required=True, metadata={"description": "ISO 8601 with a time zone; holds take effect again then"}
    )
    note = Text(allow_none=True, validate=validate.Length(max=2000), metadata={"description": NOTE_DESCRIPTION})


class TimelineEntrySchema(Schema):
    at = fields.DateTime(required=True)
    kind = fields.String(required=True)
    actor = fields.String(required=True)
    cause = fields.String(allow_none=True)
    detail = fields.Dict(required=True)


class TimelinePageSchema(Schema):
    items = fields.List(fields.Nested(TimelineEntrySchema), required=True)
    next_cursor = fields.String(allow_none=True, required=True)


class InboxEventSchema(Schema):
    source = fields.String(required=True)
    event_id = fields.String(required=True, attribute="external_id")
    event_type = fields.String(required=True)
    status = fields.String(required=True)
    attempts = fields.Integer(required=True)
    last_error = fields.String(allow_none=True)
    account_id = fields.String(allow_none=True)
    received_at = fields.DateTime(required=True)
    processed_at = fields.DateTime(allow_none=True)


class InboxQuerySchema(PageQuerySchema):
    status = Text(validate=validate.OneOf(["received", "processed", "ignored", "failed"]))


class InboxPageSchema(Schema):
    items = fields.List(fields.Nested(InboxEventSchema), required=True)
    next_cursor = fields.String(allow_none=True, required=True)


class QueuedSchema(Schema):
    queued = fields.Boolean(required=True)

"""Bodies of /api/policy: the policy in the file's sections and keys, a candidate, and what it would change."""

from __future__ import annotations

from marshmallow import INCLUDE, Schema, fields

from domain.holds import HoldReason

REASONS = [str(reason) for reason in HoldReason]


class NonPaymentSchema(Schema):
    failed_attempts = fields.Integer(
        required=True, metadata={"description": "failed attempts on one invoice before it holds (0: never)"}
    )
    days_past_due = fields.Raw(
        required=True,
        metadata={
            "description": "days past the due date of a send_invoice invoice, or false: never",
            "oneOf": [{"type": "integer", "minimum": 0}, {"type": "boolean", "enum": [False]}],
        },
    )
    minimum_unpaid = fields.String(
        required=True,
        metadata={"description": "nothing is held while the unpaid total is below this", "example": "1.00"},
    )
    grace_period_hours = fields.Integer(
        required=True, metadata={"description": "how long after an invoice first qualifies before it holds"}
    )
    on_uncollectible = fields.Boolean(required=True, metadata={"description": "an invoice marked uncollectible holds"})
    good_standing = fields.Raw(
        required=True,
        metadata={
            "description": "the allowance a good record earns ([non_payment.good_standing]), or false: off",
            "oneOf": [
                {
                    "type": "object",
                    "properties": {
                        "invoices_paid_on_time": {"type": "integer", "minimum": 1},
                        "months": {"type": "integer", "minimum": 1},
                        "extra_failed_attempts": {"type": "integer", "minimum": 0},
                        "extra_grace_hours": {"type": "integer", "minimum": 0},
                    },
                },
                {"type": "boolean", "enum": [False]},
            ],
        },
    )


class DisputeSectionSchema(Schema):
    release_on = fields.List(
        fields.String(), required=True, metadata={"description": "closing statuses that release a dispute hold"}
    )


class ReasonEffectsSchema(Schema):
    parks_provisioning = fields.Boolean(required=True)
    blocks_changes = fields.Boolean(required=True)


class PolicySchema(Schema):
    """The policy in force, in the names of the policy file (HOLD_POLICY): every key, defaults included."""

    non_payment = fields.Nested(NonPaymentSchema, required=True)
    dispute = fields.Nested(DisputeSectionSchema, required=True)
    reasons = fields.Dict(
        keys=fields.String(metadata={"enum": REASONS}),
        values=fields.Nested(ReasonEffectsSchema),
        required=True,
        metadata={"description": f"what a hold of each reason does: {', '.join(REASONS)}"},
    )


_SECTION = (
    "As in the policy file and GET /api/policy; what the candidate leaves out (a section, a key) stays as in force."
)


class PolicyCandidateSchema(Schema):
    """A candidate policy, passed on as given: the policy file's own validator checks it (its sentences too)."""

    error_messages = {"type": "The body must be a JSON object."}

    class Meta:
        unknown = INCLUDE  # an unknown section is refused by the policy's validator, with its sentence

    non_payment = fields.Raw(metadata={"type": "object", "description": _SECTION, "example": {"failed_attempts": 2}})
    dispute = fields.Raw(metadata={"type": "object", "description": _SECTION})
    reasons = fields.Raw(metadata={"type": "object", "description": _SECTION})


class PolicyChangeSchema(Schema):
    account_id = fields.String(required=True)
    name = fields.String(allow_none=True, required=True)
    holds_now = fields.List(
        fields.String(metadata={"enum": REASONS}),
        required=True,
        metadata={"description": "the account's hold reasons under the policy in force, at the same moment"},
    )
    holds_under_candidate = fields.List(fields.String(metadata={"enum": REASONS}), required=True)
    placed = fields.List(fields.String(metadata={"enum": REASONS}), required=True)
    released = fields.List(fields.String(metadata={"enum": REASONS}), required=True)
    orders_released = fields.Integer(
        required=True, metadata={"description": "requests that would go from waiting to dispatch"}
    )
    orders_parked = fields.Integer(
        required=True, metadata={"description": "requests that would go from dispatchable to waiting"}
    )


class WhatIfSchema(Schema):
    accounts_evaluated = fields.Integer(
        required=True,
        metadata={
            "description": "accounts this page covers (from its start to its last change, or to the end of the "
            "book on the last page): the pages of one what-if add up to every account"
        },
    )
    changes = fields.List(
        fields.Nested(PolicyChangeSchema),
        required=True,
        metadata={"description": "only the accounts whose holds or orders would change, by account id"},
    )
    next_cursor = fields.String(
        allow_none=True,
        required=True,
        metadata={"description": "post the same candidate with ?cursor= for the next page; null: no more"},
    )

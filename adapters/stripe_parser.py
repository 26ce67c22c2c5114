"""The parser of Stripe's event bodies: domain facts from the JSON of any API version's shape.

Pure functions: they read the JSON Stripe sends (2016 shapes to today's) and return domain
values, or raise ``MalformedEvent`` with a sentence that says what is missing. The webhook
reads the envelope at the door; ``adapters.stripe_deliveries`` the rest, when it is applied.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any

from marshmallow import INCLUDE, Schema, ValidationError, fields, validate

from domain.account import canonical_account_id
from domain.disputes import DisputeSeen
from domain.invoices import InvoiceFact, InvoiceStatus, Occurrence
from domain.money import from_minor_units
from services.ports import CustomerDetails

INVOICE_EVENT_TYPES = frozenset(
    {
        "invoice.created",
        "invoice.finalized",
        "invoice.updated",
        "invoice.payment_failed",
        "invoice.payment_action_required",
        "invoice.paid",
        "invoice.payment_succeeded",
        "invoice.voided",
        "invoice.marked_uncollectible",
        "invoice.overdue",
    }
)
CUSTOMER_EVENT_TYPES = frozenset({"customer.created", "customer.updated"})
DISPUTE_EVENT_TYPES = frozenset({"charge.dispute.created", "charge.dispute.updated", "charge.dispute.closed"})
HANDLED_EVENT_TYPES = INVOICE_EVENT_TYPES | CUSTOMER_EVENT_TYPES | DISPUTE_EVENT_TYPES

# The one thing an event's type may add to its body: being written off. A type never settles
# an invoice (paid, void): only the body's status (or, before 2018, its ``paid``) does.
_WRITTEN_OFF = "invoice.marked_uncollectible"
_STATUS_PATTERN = r"^[a-z][a-z0-9_]{0,31}\Z"  # how every Stripe status is spelled
_INVOICE_STATUSES = frozenset(s.value for s in InvoiceStatus)


class MalformedEvent(ValueError):
    """The body is not a Stripe event Holdfast can use; the message says why."""


class ThinEvent(MalformedEvent):
    """A v2 thin event: it names an object instead of carrying it."""


# No control characters, no lone surrogates: ids are stored and compared as text.
_PRINTABLE = validate.Predicate("isprintable", error="Not printable text.")
_LAST_SECOND = 253402300799  # 9999-12-31T23:59:59Z, the last time a datetime holds


class _DataSchema(Schema):
    error_messages = {"type": "Not an object."}

    class Meta:
        unknown = INCLUDE

    object = fields.Dict(required=True)


class EventEnvelopeSchema(Schema):
    """The parts of a Stripe event every handler relies on."""

    class Meta:
        unknown = INCLUDE

    id = fields.String(required=True, validate=[validate.Length(min=1, max=255), _PRINTABLE])
    type = fields.String(required=True, validate=[validate.Length(min=1, max=128), _PRINTABLE])
    created = fields.Integer(
        required=True,
        strict=True,
        validate=validate.Range(min=0, max=_LAST_SECOND, error="Not a Unix time in seconds."),
    )
    data = fields.Nested(_DataSchema, required=True)
    api_version = fields.String(allow_none=True, load_default=None)


_ENVELOPE = EventEnvelopeSchema()


@dataclass(frozen=True)
class StripeEvent:
    id: str
    type: str
    created: datetime
    object: dict[str, Any]
    api_version: str | None

    @property
    def cause(self) -> str:
        return f"stripe:{self.id}"


def _first_error(messages: Any, path: str = "") -> str:
    if isinstance(messages, dict):
        key, value = next(iter(messages.items()))
        if key == "_schema":  # an error about the object at ``path`` itself
            return _first_error(value, path)
        return _first_error(value, f"{path}.{key}" if path else str(key))
    if isinstance(messages, list) and messages:
        return f"{path}: {_first_error(messages[0])}" if path else _first_error(messages[0])
    return str(messages).rstrip(".")


def parse_event(body: bytes | str) -> StripeEvent:
    """Parse a webhook body into an event envelope, or raise MalformedEvent."""
    try:
        document = json.loads(body)
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise MalformedEvent("The body is not valid JSON.") from None
    if isinstance(document, dict) and document.get("object") == "v2.core.event":
        raise ThinEvent(
            "This is a thin event (v2.core.event), which carries no object: Holdfast needs snapshot events. "
            "Send the event types it reads from a webhook endpoint, or an event destination with the "
            "snapshot payload style."
        )
    if not isinstance(document, dict) or document.get("object", "event") != "event":
        raise MalformedEvent("The body is not a Stripe event object.")
    try:
        loaded = _ENVELOPE.load(document)
    except ValidationError as error:
        raise MalformedEvent(f"The body is not a Stripe event: {_first_error(error.messages)}.") from None
    return StripeEvent(
        id=loaded["id"],
        type=loaded["type"],
        created=datetime.fromtimestamp(loaded["created"], UTC),
        object=loaded["data"]["object"],
        api_version=loaded.get("api_version"),
    )


def _id_of(value: Any) -> str | None:
    """An expandable field: an id string, or the expanded object with an id."""
    if isinstance(value, dict):
        value = value.get("id")
    if not isinstance(value, str) or not value:
        return None
    if "\x00" in value:  # no id has one; the database could not store it
        raise MalformedEvent("An id in the event contains a NUL character.")
    return value


def _require_str(obj: dict[str, Any], key: str, what: str) -> str:
    value = obj.get(key)
    if not isinstance(value, str) or not value:
        raise MalformedEvent(f"The {what} has no {key}.")
    if "\x00" in value:
        raise MalformedEvent(f"The {what}'s {key} contains a NUL character.")
    return value


def _plain_text(value: Any) -> str | None:
    """A name or description as text the database can store (NUL characters dropped)."""
    return value.replace("\x00", "") if isinstance(value, str) else None


def _int_field(obj: dict[str, Any], key: str, what: str) -> int | None:
    value = obj.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise MalformedEvent(f"The {what}'s {key} is not a whole number.")
    return value


def _status(event: StripeEvent, invoice: dict[str, Any]) -> InvoiceStatus:
    """The invoice's status as its body says it, in any API version's shape."""
    raw = invoice.get("status")
    if raw is None:  # before 2018: no status; derived from paid / forgiven
        if invoice.get("paid") is True:
            status = InvoiceStatus.PAID
        elif invoice.get("forgiven") is True:
            status = InvoiceStatus.UNCOLLECTIBLE
        else:
            status = InvoiceStatus.OPEN
    else:
        status = InvoiceStatus.OPEN if unknown_invoice_status(invoice) else InvoiceStatus(raw)
    if event.type == _WRITTEN_OFF and status is InvoiceStatus.OPEN:
        return InvoiceStatus.UNCOLLECTIBLE  # a body left open (hand-edited upstream) is still written off
    return status


def unknown_invoice_status(invoice: dict[str, Any]) -> str | None:
    """A status Stripe added after Holdfast was written: the invoice counts as open (never as paid)."""
    raw = invoice.get("status")
    if raw is None:
        return None
    if not isinstance(raw, str) or not re.match(_STATUS_PATTERN, raw):
        raise MalformedEvent("The invoice's status is not a status Stripe could send.")
    return None if raw in _INVOICE_STATUSES else raw


def invoice_fact(event: StripeEvent) -> InvoiceFact:
    """What one invoice event says about its invoice."""
    invoice = event.object
    what = "invoice"
    invoice_id = _require_str(invoice, "id", what)
    # A customer represented by an Account (current API versions) may leave customer null.
    customer_id = _id_of(invoice.get("customer")) or _id_of(invoice.get("customer_account"))
    if customer_id is None:
        raise MalformedEvent("The invoice has no customer (neither customer nor customer_account).")
    currency = _require_str(invoice, "currency", what).lower()
    status = _status(event, invoice)

    amount_due = _int_field(invoice, "amount_due", what) or 0
    amount_paid = _int_field(invoice, "amount_paid", what)
    remaining = _int_field(invoice, "amount_remaining", what)
    if remaining is None:  # old API versions
        remaining = amount_due - (amount_paid or 0)
    if status is InvoiceStatus.PAID:
        remaining = 0

    collection_method = invoice.get("collection_method") or invoice.get("billing") or "charge_automatically"
    due = _int_field(invoice, "due_date", what)
    seen = Occurrence(event.created, event.id)
    failures: dict[int, Occurrence] = {}
    attempts = _int_field(invoice, "attempt_count", what) or 0
    if event.type == "invoice.payment_failed":
        failures[max(attempts, 1)] = seen
    return InvoiceFact(
        invoice_id=invoice_id,
        customer_id=customer_id,
        status=status,
        currency=currency,
        amount_remaining=from_minor_units(max(remaining, 0), currency),
        collection_method=str(collection_method),
        due_date=None if due is None else datetime.fromtimestamp(due, UTC),
        event_id=event.id,
        event_created=event.created,
        failures=MappingProxyType(failures),
        uncollectible_since=seen if status is InvoiceStatus.UNCOLLECTIBLE else None,
        paid_at=_paid_at(event, invoice) if status is InvoiceStatus.PAID else None,
        attempt_count=attempts,
    )


def _paid_at(event: StripeEvent, invoice: dict[str, Any]) -> datetime:
    """When the invoice was paid: ``status_transitions.paid_at``, or the event's time when the body has none."""
    transitions = invoice.get("status_transitions")
    paid = transitions.get("paid_at") if isinstance(transitions, dict) else None
    if isinstance(paid, int) and not isinstance(paid, bool) and 0 < paid < 253_402_300_800:  # before year 10000
        return datetime.fromtimestamp(paid, UTC)
    return event.created


def dispute_seen(event: StripeEvent) -> DisputeSeen:
    """What one dispute event says about its dispute (whose it is, Stripe's API says)."""
    dispute = event.object
    what = "dispute"
    dispute_id = _require_str(dispute, "id", what)
    status = _require_str(dispute, "status", what)
    if not re.match(_STATUS_PATTERN, status):
        raise MalformedEvent("The dispute's status is not a status Stripe could send.")
    currency = _require_str(dispute, "currency", what).lower()
    amount = _int_field(dispute, "amount", what) or 0
    return DisputeSeen(
        dispute_id=dispute_id,
        charge_id=_id_of(dispute.get("charge")),
        status=status,
        amount=from_minor_units(amount, currency),
        currency=currency,
        event_id=event.id,
        event_created=event.created,
    )


def customer_details(event: StripeEvent) -> CustomerDetails:
    """The customer and the CRM account its metadata names, if any (a GUID in its one spelling)."""
    customer = event.object
    customer_id = _require_str(customer, "id", "customer")
    metadata = customer.get("metadata") or {}
    if not isinstance(metadata, dict):
        raise MalformedEvent("The customer's metadata is not an object.")
    crm_id = metadata.get("crm_account_id")
    if crm_id is not None and (
        not isinstance(crm_id, str) or not 0 < len(crm_id.strip()) <= 100 or not crm_id.isprintable()
    ):
        raise MalformedEvent(
            "The customer's metadata.crm_account_id is not an account id of 1 to 100 printable characters."
        )
    currency = customer.get("currency")
    return CustomerDetails(
        customer_id=customer_id,
        crm_account_id=canonical_account_id(crm_id.strip()) if isinstance(crm_id, str) else None,
        name=_plain_text(customer.get("name")),
        currency=currency.lower() if isinstance(currency, str) else None,
    )

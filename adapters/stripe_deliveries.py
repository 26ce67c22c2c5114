"""Stored Stripe deliveries translated into what they say, completed through Stripe's API where needed.

A dispute carries no customer: ``DisputeCustomerLookup`` asks Stripe's API (on the
``holdfast.stripe`` queue, outside any transaction) once per dispute, and the answer is kept
with the delivery. ``services.stripe_processing`` applies what ``StripeDeliveries`` says.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from adapters.stripe_parser import (
    CUSTOMER_EVENT_TYPES,
    DISPUTE_EVENT_TYPES,
    INVOICE_EVENT_TYPES,
    customer_details,
    dispute_seen,
    invoice_fact,
    parse_event,
    unknown_invoice_status,
)
from services.ports import DisputeCustomers, InboxEvent, StripeChange, UnitOfWork

DISPUTE_CUSTOMER = "dispute_customer"  # the delivery's meta: the customer Stripe's API named


class StripeDeliveries:
    """What a stored Stripe event says, in the domain's terms (None: a type Holdfast does not read)."""

    def translate(self, delivery: InboxEvent) -> StripeChange | None:
        event = parse_event(delivery.payload)
        if event.type in INVOICE_EVENT_TYPES:
            return StripeChange(
                event.id,
                event.created,
                invoice=invoice_fact(event),
                unknown_status=unknown_invoice_status(event.object),
            )
        if event.type in CUSTOMER_EVENT_TYPES:
            return StripeChange(event.id, event.created, customer=customer_details(event))
        if event.type in DISPUTE_EVENT_TYPES:
            looked_up = delivery.meta.get(DISPUTE_CUSTOMER)
            named = looked_up if isinstance(looked_up, str) and looked_up else None
            return StripeChange(event.id, event.created, dispute=dispute_seen(event), dispute_customer=named)
        return None


class DisputeCustomerLookup:
    """A dispute carries no customer: Stripe's API names it (through the charge), once per dispute."""

    peer = "stripe"

    def __init__(self, customers: DisputeCustomers) -> None:
        self.customers = customers

    def needed(self, uow: UnitOfWork, event: InboxEvent) -> bool:
        if event.event_type not in DISPUTE_EVENT_TYPES or DISPUTE_CUSTOMER in event.meta:
            return False
        dispute_id = _dispute_id(event.payload)
        return dispute_id is None or uow.disputes.get(dispute_id) is None

    def complete(self, event: InboxEvent) -> Mapping[str, Any]:
        return {DISPUTE_CUSTOMER: self.customers.customer_of_dispute(parse_event(event.payload).object)}


def _dispute_id(payload: str) -> str | None:
    try:
        dispute_id = json.loads(payload)["data"]["object"]["id"]
    except (ValueError, KeyError, TypeError):
        return None
    return dispute_id if isinstance(dispute_id, str) and dispute_id else None

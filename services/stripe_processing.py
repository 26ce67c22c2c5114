"""Turn a stored Stripe event into facts, then re-evaluate the account it concerns."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any

import structlog

from domain.disputes import merge_dispute
from domain.invoices import merge
from domain.timeline import Change, TimelineEntry
from services.evaluation import reevaluate_account
from services.ports import DisputeCustomers, Handled, InboxEvent, ServiceContext, UnitOfWork
from services.stripe_events import (
    CUSTOMER_EVENT_TYPES,
    DISPUTE_EVENT_TYPES,
    INVOICE_EVENT_TYPES,
    StripeEvent,
    customer_details,
    dispute_fact,
    invoice_fact,
    parse_event,
    unknown_invoice_status,
)

log = structlog.get_logger(__name__)
_WARNED: set[tuple[str, str]] = set()


def warn_once(what: str, status: str, **context: str) -> None:
    """A status Stripe added after Holdfast was written: said once per process, then quietly handled."""
    if (what, status) in _WARNED:
        return
    _WARNED.add((what, status))
    log.warning(what, status=status, **context, note="handled as open; later events with it are not logged")


DISPUTE_CUSTOMER = "dispute_customer"  # the delivery's meta: the customer Stripe's API named


def handle_stripe_event(uow: UnitOfWork, delivery: InboxEvent, ctx: ServiceContext, now: datetime) -> Handled:
    """Apply one stored Stripe event inside the caller's transaction."""
    event = parse_event(delivery.payload)
    change = Change(at=now, actor="stripe", cause=event.cause)
    if event.type in INVOICE_EVENT_TYPES:
        return _apply_invoice_event(uow, event, ctx, change)
    if event.type in CUSTOMER_EVENT_TYPES:
        return _apply_customer_event(uow, event, ctx, change)
    if event.type in DISPUTE_EVENT_TYPES:
        return _apply_dispute_event(uow, event, delivery.meta, ctx, change)
    return Handled("ignored")


class DisputeCustomerUnknown(ValueError):
    """Without Stripe's API, the customer of a dispute cannot be found."""


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


def _apply_dispute_event(
    uow: UnitOfWork, event: StripeEvent, meta: Mapping[str, Any], ctx: ServiceContext, change: Change
) -> Handled:
    dispute_id = event.object.get("id")
    known = uow.disputes.get(dispute_id) if isinstance(dispute_id, str) and dispute_id else None
    looked_up = meta.get(DISPUTE_CUSTOMER)
    if known is not None:
        customer_id = known.customer_id
    elif isinstance(looked_up, str) and looked_up:
        customer_id = looked_up
    else:
        raise DisputeCustomerUnknown(
            f"A dispute carries no customer and STRIPE_API_KEY is not set, so the customer of {dispute_id} "
            "cannot be looked up; set it and replay this event."
        )
    fact = dispute_fact(event, customer_id)
    if not fact.known:
        warn_once("dispute_status_unknown", fact.status, dispute_id=fact.dispute_id, event_id=event.id)
    mapping = uow.customers.lock(customer_id, change.at)
    current = uow.disputes.get(fact.dispute_id)
    merged = merge_dispute(current, fact)
    if merged != current:
        uow.disputes.save(merged, change.at)
    if mapping.account_id is None:
        return Handled("processed")
    reevaluate_account(uow, mapping.account_id, ctx, change)
    return Handled("processed", mapping.account_id)


def _apply_invoice_event(uow: UnitOfWork, event: StripeEvent, ctx: ServiceContext, change: Change) -> Handled:
    fact = invoice_fact(event)
    unknown = unknown_invoice_status(event.object)
    if unknown is not None:
        warn_once("invoice_status_unknown", unknown, invoice_id=fact.invoice_id, event_id=event.id)
    # The customer row serializes every change to this customer's facts and mapping.
    mapping = uow.customers.lock(fact.customer_id, change.at)
    current = uow.invoices.get(fact.invoice_id)
    merged = merge(current, fact)
    if merged != current:
        uow.invoices.save(merged, change.at)
    if mapping.account_id is None:
        # Kept as a fact; applied as soon as the customer maps to an account.
        return Handled("processed")
    reevaluate_account(uow, mapping.account_id, ctx, change)
    return Handled("processed", mapping.account_id)


def _apply_customer_event(uow: UnitOfWork, event: StripeEvent, ctx: ServiceContext, change: Change) -> Handled:
    details = customer_details(event)
    if details.crm_account_id is None:
        return Handled("ignored")
    mapping = uow.customers.lock(details.customer_id, change.at)
    if mapping.mapped_at is not None and mapping.mapped_at > event.created:
        return Handled("processed", mapping.account_id)  # an older event: the newer mapping stands
    account_id = details.crm_account_id
    # Lock order: the customer (above), then the account.
    account, created = uow.accounts.create_or_lock(account_id, change.at)
    if created:
        account.name, account.currency = details.name, details.currency
        uow.accounts.save(account, change.at)
        uow.timeline.append(account_id, [TimelineEntry.of(change, "account_created", name=details.name)])
    map_customer(uow, details.customer_id, account_id, mapping.account_id, event.created, ctx, change)
    return Handled("processed", account_id)


def map_customer(
    uow: UnitOfWork,
    customer_id: str,
    account_id: str,
    previous_account_id: str | None,
    mapped_at: datetime,
    ctx: ServiceContext,
    change: Change,
) -> None:
    """Map a (locked) Stripe customer to an account and re-evaluate both accounts involved."""
    previous_customer = uow.customers.customer_of(account_id)
    uow.customers.map_to(customer_id, account_id, mapped_at, change.cause)
    if previous_account_id == account_id and previous_customer == customer_id:
        return
    uow.timeline.append(account_id, [TimelineEntry.of(change, "customer_mapped", stripe_customer_id=customer_id)])
    if previous_account_id is not None and previous_account_id != account_id:
        uow.timeline.append(
            previous_account_id,
            [TimelineEntry.of(change, "customer_unmapped", stripe_customer_id=customer_id)],
        )
        reevaluate_account(uow, previous_account_id, ctx, change)
    reevaluate_account(uow, account_id, ctx, change)

"""Apply what a stored Stripe event says (``StripeChange``), then re-evaluate the account it concerns."""

from __future__ import annotations

from datetime import datetime

import structlog

from domain.disputes import merge_dispute
from domain.invoices import merge
from domain.timeline import Change, TimelineEntry
from services.customers import map_customer
from services.evaluation import reevaluate_account
from services.inbox import Handler
from services.ports import (
    CustomerDetails,
    CustomerMapping,
    Handled,
    InboxEvent,
    Outcome,
    ServiceContext,
    StripeChange,
    StripeTranslator,
    UnitOfWork,
)

log = structlog.get_logger(__name__)
_WARNED: set[tuple[str, str]] = set()


def warn_once(what: str, status: str, **context: str) -> None:
    """A status Stripe added after Holdfast was written: said once per process, then quietly handled."""
    if (what, status) in _WARNED:
        return
    _WARNED.add((what, status))
    log.warning(what, status=status, **context, note="handled as open; later events with it are not logged")


class DisputeCustomerUnknown(ValueError):
    """Without Stripe's API, the customer of a dispute cannot be found."""


def stripe_handler(translator: StripeTranslator) -> Handler:
    """The inbox handler of source ``stripe``: the translator says what the event means, this applies it."""

    def handle(uow: UnitOfWork, delivery: InboxEvent, ctx: ServiceContext, now: datetime) -> Handled:
        said = translator.translate(delivery)
        if said is None:
            return Handled(Outcome.IGNORED)
        change = Change(at=now, actor="stripe", cause=said.cause)
        if said.invoice is not None:
            return _apply_invoice(uow, said, ctx, change)
        if said.dispute is not None:
            return _apply_dispute(uow, said, ctx, change)
        if said.customer is not None:
            return _apply_customer(uow, said.customer, said.event_created, ctx, change)
        return Handled(Outcome.IGNORED)

    return handle


def _apply_dispute(uow: UnitOfWork, said: StripeChange, ctx: ServiceContext, change: Change) -> Handled:
    seen = said.dispute
    assert seen is not None
    known = uow.disputes.get(seen.dispute_id)
    customer_id = known.customer_id if known is not None else said.dispute_customer
    if customer_id is None:
        raise DisputeCustomerUnknown(
            f"A dispute carries no customer and STRIPE_API_KEY is not set, so the customer of {seen.dispute_id} "
            "cannot be looked up; set it and replay this event."
        )
    if not seen.known:
        warn_once("dispute_status_unknown", seen.status, dispute_id=seen.dispute_id, event_id=said.event_id)
    mapping = uow.customers.lock(customer_id, change.at)
    current = uow.disputes.get(seen.dispute_id)
    merged = merge_dispute(current, seen.of_customer(customer_id))
    if merged != current:
        uow.disputes.save(merged, change.at)
    return _reevaluate_mapped(uow, mapping, ctx, change)


def _apply_invoice(uow: UnitOfWork, said: StripeChange, ctx: ServiceContext, change: Change) -> Handled:
    fact = said.invoice
    assert fact is not None
    if said.unknown_status is not None:
        warn_once("invoice_status_unknown", said.unknown_status, invoice_id=fact.invoice_id, event_id=said.event_id)
    # The customer row serializes every change to this customer's facts and mapping.
    mapping = uow.customers.lock(fact.customer_id, change.at)
    # The customer's invoices, read once: the evaluation below reads them again without a query.
    known = {invoice.invoice_id: invoice for invoice in uow.invoices.for_customer(fact.customer_id)}
    current = known.get(fact.invoice_id) or uow.invoices.get(fact.invoice_id)
    merged = merge(current, fact)
    if merged != current:
        uow.invoices.save(merged, change.at)
    return _reevaluate_mapped(uow, mapping, ctx, change)


def _reevaluate_mapped(uow: UnitOfWork, mapping: CustomerMapping, ctx: ServiceContext, change: Change) -> Handled:
    """Re-evaluate the customer's account; a customer not yet mapped keeps its facts until it is."""
    if mapping.account_id is None:
        return Handled(Outcome.PROCESSED)
    reevaluate_account(uow, mapping.account_id, ctx, change)
    return Handled(Outcome.PROCESSED, mapping.account_id)


def _apply_customer(
    uow: UnitOfWork, details: CustomerDetails, seen_at: datetime, ctx: ServiceContext, change: Change
) -> Handled:
    if details.crm_account_id is None:
        return Handled(Outcome.IGNORED)
    mapping = uow.customers.lock(details.customer_id, change.at)
    if mapping.mapped_at is not None and mapping.mapped_at > seen_at:
        return Handled(Outcome.PROCESSED, mapping.account_id)  # an older event: the newer mapping stands
    account_id = details.crm_account_id
    # Lock order: the customer (above), then the account.
    account, created = uow.accounts.create_or_lock(account_id, change.at)
    if created:
        account.name, account.currency = details.name, details.currency
        uow.accounts.save(account, change.at)
        uow.timeline.append(account_id, [TimelineEntry.of(change, "account_created", name=details.name)])
    elif adopted := account.adopt_currency(details.currency, f"stripe customer {details.customer_id}", change):
        uow.accounts.save(account, change.at)
        uow.timeline.append(account_id, adopted)
    map_customer(uow, details.customer_id, account_id, mapping.account_id, seen_at, ctx, change)
    return Handled(Outcome.PROCESSED, account_id)

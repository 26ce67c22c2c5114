"""Stripe customers and the accounts they belong to: one way to map them, whichever source says so."""

from __future__ import annotations

from datetime import datetime

from domain.timeline import Change, TimelineEntry
from services.evaluation import reevaluate_account
from services.ports import ServiceContext, UnitOfWork


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

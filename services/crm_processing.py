"""Apply what the CRM (Dynamics 365) says: accounts and their credit review, orders submitted or canceled.

``crm_handler`` is the inbox handler of source ``dynamics``: its translator (an adapter) says
what a stored delivery means, as a ``CrmAccountChange`` or a ``CrmOrderChange``; this applies it.
"""

from __future__ import annotations

from datetime import datetime

import structlog

from domain.crm import CANCELED, STRIPE_CUSTOMER_ID, SUBMITTED, CrmAccountChange, CrmOrderChange, apply_account_change
from domain.provisioning import RequestState, TransitionRefused
from domain.timeline import Change, TimelineEntry
from services.customers import map_customer
from services.evaluation import reevaluate_account
from services.inbox import Handler
from services.orders import Order, OrderSource, accept_order
from services.ports import (
    CrmTranslator,
    Handled,
    InboxEvent,
    IncompleteCrmEvent,
    Outcome,
    ServiceContext,
    UnitOfWork,
)

log = structlog.get_logger(__name__)

# The timeline's actor of a CRM change is ``dynamics:<CRM user id>``, the user behind the delivery
# (CrmAccountChange.actor, CrmOrderChange.actor).


def crm_handler(translator: CrmTranslator) -> Handler:
    """The inbox handler of source ``dynamics``: the translator says what the delivery means, this applies it."""

    def handle(uow: UnitOfWork, delivery: InboxEvent, ctx: ServiceContext, now: datetime) -> Handled:
        change = translator.translate(delivery)
        if change is None:
            return Handled(Outcome.IGNORED)
        if isinstance(change, CrmAccountChange):
            return apply_account_change_from_crm(uow, change, ctx, now)
        return apply_order_change_from_crm(uow, change, ctx, now)

    return handle


def apply_account_change_from_crm(
    uow: UnitOfWork, change: CrmAccountChange, ctx: ServiceContext, now: datetime
) -> Handled:
    """Create, update or delete an account as the CRM says, then re-evaluate it."""
    at = Change(now, change.actor, change.cause)
    customer_id = change.values.get(STRIPE_CUSTOMER_ID)
    # Lock order everywhere: the Stripe customer first, then the account.
    mapping = uow.customers.lock(customer_id, now) if isinstance(customer_id, str) and customer_id else None
    if change.message == "Delete":
        account = uow.accounts.get(change.account_id, lock=True)
        if account is None:
            return Handled(Outcome.IGNORED)
    else:
        account, created = uow.accounts.create_or_lock(change.account_id, now)
        if created:
            uow.timeline.append(change.account_id, [TimelineEntry.of(at, "account_created")])
    crm = uow.accounts.crm_state(change.account_id)
    if change.message == "Delete":
        entries = [TimelineEntry.of(at, "crm_account_deleted")]
        account.credit_review_cause = None  # the CRM can no longer hold its review
        echo = cleared = False
        to_map = None
    else:
        applied = apply_account_change(account, crm, change, at)
        entries, echo, cleared, to_map = (
            applied.entries,
            applied.echo,
            applied.cleared_by_crm,
            applied.stripe_customer_id,
        )
    if echo:
        log.info("crm_echo_ignored", account_id=change.account_id, operation=change.operation)
    uow.timeline.append(change.account_id, entries)
    uow.accounts.save(account, now)
    uow.accounts.save_crm_state(change.account_id, crm)
    if to_map is not None and mapping is not None:
        map_customer(uow, to_map, change.account_id, mapping.account_id, change.modified_at, ctx, at)
    reevaluate_account(uow, change.account_id, ctx, at, account=account)
    if cleared and account.shows_hold(ctx.policy, now):
        effects = account.effects(ctx.policy, now)
        reasons = sorted({str(r) for r in (*effects.blocking, *effects.parking)})
        uow.timeline.append(
            change.account_id,
            [
                TimelineEntry.of(
                    at,
                    "crm_hold_restored",
                    reasons=reasons,
                    why=(
                        "creditonhold was cleared in the CRM while Holdfast still holds the account "
                        f"({', '.join(reasons)}); only the source of a hold can lift it, so the CRM is set back to true"
                    ),
                )
            ],
        )
    return Handled(Outcome.PROCESSED, change.account_id)


def apply_order_change_from_crm(uow: UnitOfWork, change: CrmOrderChange, ctx: ServiceContext, now: datetime) -> Handled:
    """A sales order submitted becomes a provisioning request; canceled, it is cancelled if not yet sent."""
    at = Change(now, change.actor, change.cause)
    if change.state_code == SUBMITTED:
        return _submitted(uow, change, ctx, at)
    if change.state_code == CANCELED:
        return _canceled(uow, change, ctx, at)
    return Handled(Outcome.IGNORED, change.account_id)


def _submitted(uow: UnitOfWork, change: CrmOrderChange, ctx: ServiceContext, at: Change) -> Handled:
    if change.account_id is None or change.amount is None:
        missing = [
            name for name, value in (("customerid", change.account_id), ("totalamount", change.amount)) if value is None
        ]
        raise IncompleteCrmEvent(
            f"The submitted salesorder {change.order_id} carries no {' or '.join(missing)}: register a PostImage "
            "with customerid and totalamount on the salesorder step (README, Dynamics registration), or configure "
            "the Web API so Holdfast can read the row."
        )
    if change.amount < 0:
        raise IncompleteCrmEvent(f"The salesorder {change.order_id} has a negative totalamount.")
    account = uow.accounts.get(change.account_id, lock=True)
    order = Order(change.account_id, change.order_id, change.amount, change.description)
    accept_order(uow, ctx, account, order, OrderSource.CRM, at)
    return Handled(Outcome.PROCESSED, change.account_id)


def _canceled(uow: UnitOfWork, change: CrmOrderChange, ctx: ServiceContext, at: Change) -> Handled:
    found = uow.requests.find_by_order_id(change.order_id)
    if found is None:
        return Handled(Outcome.PROCESSED, change.account_id)
    account = uow.accounts.get(found.account_id, lock=True)
    request = uow.requests.get(found.request_id, lock=True)
    assert request is not None
    try:
        entry = request.cancel(at)
    except TransitionRefused as refused:
        if account is not None and request.state is not RequestState.CANCELLED:
            uow.timeline.append(
                request.account_id,
                [TimelineEntry.of(at, "request_cancel_refused", request_id=request.request_id, why=str(refused))],
            )
        return Handled(Outcome.PROCESSED, request.account_id)
    uow.requests.save(request, at.at)
    if account is not None:
        uow.timeline.append(request.account_id, [entry])
        reevaluate_account(uow, request.account_id, ctx, at, account=account)
    return Handled(Outcome.PROCESSED, request.account_id)

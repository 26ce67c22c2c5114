"""Apply what the CRM (Dynamics 365) says: accounts and their credit review, orders submitted or canceled."""

from __future__ import annotations

import uuid
from datetime import datetime

import structlog

from domain.crm import CANCELED, STRIPE_CUSTOMER_ID, SUBMITTED, CrmAccountChange, CrmOrderChange, apply_account_change
from domain.money import format_amount
from domain.provisioning import ACCOUNT, ProvisioningRequest, RequestState, TransitionRefused
from domain.timeline import Change, TimelineEntry
from services.evaluation import reevaluate_account
from services.ports import Handled, ServiceContext, UnitOfWork
from services.stripe_processing import map_customer

log = structlog.get_logger(__name__)

ACTOR = "dynamics"


class IncompleteCrmEvent(ValueError):
    """The CRM body lacks what Holdfast needs; the message says what to register."""


def apply_account_change_from_crm(
    uow: UnitOfWork, change: CrmAccountChange, ctx: ServiceContext, now: datetime
) -> Handled:
    """Create, update or delete an account as the CRM says, then re-evaluate it."""
    at = Change(now, ACTOR, change.cause)
    customer_id = change.values.get(STRIPE_CUSTOMER_ID)
    # Lock order everywhere: the Stripe customer first, then the account.
    mapping = uow.customers.lock(customer_id, now) if isinstance(customer_id, str) and customer_id else None
    if change.message == "Delete":
        account = uow.accounts.get(change.account_id, lock=True)
        if account is None:
            return Handled("ignored")
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
    return Handled("processed", change.account_id)


def apply_order_change_from_crm(uow: UnitOfWork, change: CrmOrderChange, ctx: ServiceContext, now: datetime) -> Handled:
    """A sales order submitted becomes a provisioning request; canceled, it is cancelled if not yet sent."""
    at = Change(now, ACTOR, change.cause)
    if change.state_code == SUBMITTED:
        return _submitted(uow, change, ctx, at)
    if change.state_code == CANCELED:
        return _canceled(uow, change, ctx, at)
    return Handled("ignored", change.account_id)


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
    account_id = change.account_id
    account = uow.accounts.get(account_id, lock=True)
    if uow.requests.find_by_order(account_id, change.order_id) is not None:
        return Handled("processed", account_id)  # already accepted: a redelivery or a later update
    request = ProvisioningRequest(
        request_id=str(uuid.uuid4()),
        account_id=account_id,
        order_id=change.order_id,
        amount=change.amount,
        currency=account.currency if account else None,
        description=change.description,
        state=RequestState.AWAITING,
        created_at=at.at,
    )
    if account is None:
        request.waiting_for = (ACCOUNT,)  # admitted when the account becomes known
        uow.requests.add(request, at.at)
        log.info("crm_order_waits_for_account", account_id=account_id, order_id=change.order_id)
        return Handled("processed", account_id)
    uow.requests.add(request, at.at)
    accepted = TimelineEntry.of(
        at,
        "request_accepted",
        request_id=request.request_id,
        order_id=change.order_id,
        amount=format_amount(change.amount, account.currency),
        source="crm",
    )
    effects = account.effects(ctx.policy, at.at)
    if effects.blocks_changes:
        reasons = [str(r) for r in effects.blocking]
        request.failure = f"Refused: the account is on credit hold ({', '.join(reasons)})."
        refused = request.move(RequestState.CANCELLED, at, refused=True, reasons=reasons)
        uow.requests.save(request, at.at)
        uow.timeline.append(account_id, [accepted, refused])
        return Handled("processed", account_id)
    uow.timeline.append(account_id, [accepted])
    reevaluate_account(uow, account_id, ctx, at, account=account)
    return Handled("processed", account_id)


def _canceled(uow: UnitOfWork, change: CrmOrderChange, ctx: ServiceContext, at: Change) -> Handled:
    found = uow.requests.find_by_order_id(change.order_id)
    if found is None:
        return Handled("processed", change.account_id)
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
        return Handled("processed", request.account_id)
    uow.requests.save(request, at.at)
    if account is not None:
        uow.timeline.append(request.account_id, [entry])
        reevaluate_account(uow, request.account_id, ctx, at, account=account)
    return Handled("processed", request.account_id)

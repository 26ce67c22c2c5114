"""Re-evaluate an account from its stored facts: settle its holds, admit its awaiting orders.

Every change that can alter an account's holds or exposure ends here (a Stripe event, a
mapping, a manual hold, a credit limit, a new order), in the caller's transaction. Requests
admitted are sent to the workers only after that transaction commits.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

import structlog

from domain.account import Account
from domain.crm import is_crm_account_id
from domain.disputes import DisputeFact
from domain.evaluation import Evaluation, evaluate, settle
from domain.invoices import InvoiceFact
from domain.policy import HoldPolicy
from domain.provisioning import ProvisioningRequest, admit, counted_exposure
from domain.timeline import Change, TimelineEntry
from services.ports import ServiceContext, UnitOfWork

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class StripeFacts:
    """What Stripe said about the account's customer: its invoices and its disputes."""

    invoices: list[InvoiceFact]
    disputes: list[DisputeFact]


def stripe_facts(uow: UnitOfWork, account_id: str) -> StripeFacts:
    customer = uow.customers.customer_of(account_id)
    if customer is None:
        return StripeFacts([], [])
    return StripeFacts(uow.invoices.for_customer(customer), uow.disputes.for_customer(customer))


def _evaluate(account: Account, facts: StripeFacts, policy: HoldPolicy, now: datetime) -> Evaluation:
    return evaluate(
        facts.invoices, policy, now, credit_review_cause=account.credit_review_cause, disputes=facts.disputes
    )


def read_evaluations(
    uow: UnitOfWork, accounts: Sequence[Account], policy: HoldPolicy, now: datetime
) -> dict[str, tuple[Evaluation, Exposure]]:
    """Evaluate a page of accounts without changing anything, with their exposure: a few queries, not a few each."""
    ids = [account.account_id for account in accounts]
    customers = uow.customers.customers_of(ids)
    invoices = uow.invoices.for_customers(sorted(set(customers.values())))
    disputes = uow.disputes.for_customers(sorted(set(customers.values())))
    pending = uow.requests.pending_for_accounts(ids)
    read: dict[str, tuple[Evaluation, Exposure]] = {}
    for account in accounts:
        customer = customers.get(account.account_id)
        facts = StripeFacts(invoices[customer], disputes[customer]) if customer else StripeFacts([], [])
        evaluation = _evaluate(account, facts, policy, now)
        read[account.account_id] = (evaluation, _exposure(evaluation, pending[account.account_id]))
    return read


def _currency_of_first_invoice(account: Account, invoices: list[InvoiceFact], change: Change) -> list[TimelineEntry]:
    """An account without a currency takes its first invoice's (the earliest seen): its orders then carry it."""
    if account.currency is not None or not invoices:
        return []
    first = min(invoices, key=lambda fact: (fact.event_created, fact.invoice_id))
    return account.adopt_currency(first.currency, f"stripe invoice {first.invoice_id}", change)


@dataclass(frozen=True)
class Exposure:
    amount: Decimal
    awaiting: int


def _exposure(evaluation: Evaluation, pending: Sequence[ProvisioningRequest]) -> Exposure:
    return Exposure(
        amount=counted_exposure(evaluation.invoice_exposure, pending),
        awaiting=sum(1 for r in pending if r.state == "awaiting"),
    )


def crm_differs(uow: UnitOfWork, account: Account, ctx: ServiceContext, now: datetime) -> bool:
    """Whether the CRM's creditonhold (as last seen or written) differs from the account's effective hold."""
    if not is_crm_account_id(account.account_id):
        return False  # created through the API with an id the CRM cannot have: nothing to write
    shown = uow.accounts.crm_state(account.account_id).on_hold
    wanted = account.shows_hold(ctx.policy, now)
    return shown != wanted and not (shown is None and not wanted)


def reevaluate_account(
    uow: UnitOfWork, account_id: str, ctx: ServiceContext, change: Change, *, account: Account | None = None
) -> list[TimelineEntry]:
    """Lock the account, settle its holds against its facts, admit what may now be provisioned.

    Pass ``account`` when the caller already holds it locked and changed it (it is saved here).
    """
    account = account or uow.accounts.get(account_id, lock=True)
    if account is None:
        return []
    entries: list[TimelineEntry] = []
    if account.enforcement_paused_until is not None and account.enforcement_paused_until <= change.at:
        entries += account.end_pause(change, expired=True)
    facts = stripe_facts(uow, account_id)
    entries += _currency_of_first_invoice(account, facts.invoices, change)
    evaluation = _evaluate(account, facts, ctx.policy, change.at)
    entries += settle(account, evaluation, change)
    next_change = evaluation.next_change_at
    if account.enforcement_paused_until is not None and account.enforcement_paused_until > change.at:
        next_change = min(filter(None, [next_change, account.enforcement_paused_until]))
    uow.accounts.schedule_evaluation(account_id, next_change)
    uow.accounts.save(account, change.at)

    requests = uow.requests.pending_for_account(account_id, lock=True)
    admission = admit(
        requests, account.effects(ctx.policy, change.at), evaluation.invoice_exposure, account.credit_limit, change
    )
    for request in admission.changed:
        uow.requests.save(request, change.at)
    entries += admission.entries
    uow.timeline.append(account_id, entries)
    if admission.dispatch:
        uow.after_commit(lambda: ctx.publisher.dispatch_provisioning([account_id]))
    if ctx.crm_write_back and crm_differs(uow, account, ctx, change.at):
        # Looked at again by the sweep if this write is lost, gives up or is overtaken.
        uow.accounts.schedule_crm_sync(account_id, change.at + ctx.crm_recheck)
        uow.after_commit(lambda: ctx.publisher.write_back_hold(account_id))
    for entry in entries:
        log.info(entry.kind, account_id=account_id, cause=entry.cause, **entry.detail)
    return entries

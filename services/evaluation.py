"""Re-evaluate an account from its stored facts and save what changed."""

from __future__ import annotations

from datetime import datetime

import structlog

from domain.evaluation import Evaluation, evaluate, settle
from domain.policy import HoldPolicy
from domain.timeline import Change, TimelineEntry
from services.ports import UnitOfWork

log = structlog.get_logger(__name__)


def account_evaluation(uow: UnitOfWork, account_id: str, policy: HoldPolicy, now: datetime) -> Evaluation:
    """Evaluate without changing anything (for reads)."""
    customer = uow.customers.customer_of(account_id)
    invoices = uow.invoices.for_customer(customer) if customer else []
    return evaluate(invoices, policy, now)


def reevaluate_account(uow: UnitOfWork, account_id: str, policy: HoldPolicy, change: Change) -> list[TimelineEntry]:
    """Lock the account, diff the holds its facts want against the holds stored, save both."""
    account = uow.accounts.get(account_id, lock=True)
    if account is None:
        return []
    evaluation = account_evaluation(uow, account_id, policy, change.at)
    entries = settle(account, evaluation, change)
    uow.accounts.save(account, change.at)
    uow.accounts.schedule_evaluation(account_id, evaluation.next_change_at)
    uow.timeline.append(account_id, entries)
    for entry in entries:
        log.info(entry.kind, account_id=account_id, cause=entry.cause, **entry.detail)
    return entries

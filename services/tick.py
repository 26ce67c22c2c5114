"""The clock: re-evaluate the accounts whose holds could change by time alone.

Each account stores the next moment its evaluation could change (an invoice reaching its
days past due or the end of a grace period, the end of an enforcement pause). A tick takes
the accounts whose moment has come, by the index, never by scanning all accounts; it locks
them (skipping rows another tick holds), and re-evaluation is idempotent, so two ticks at
once, or one run twice, change nothing twice.
"""

from __future__ import annotations

from datetime import datetime

import structlog

from domain.timeline import Change
from services.evaluation import reevaluate_account
from services.ports import ServiceContext, UnitOfWork

log = structlog.get_logger(__name__)

CLOCK_CAUSE = "clock"


def tick(uow: UnitOfWork, ctx: ServiceContext, now: datetime, *, batch: int = 200) -> int:
    """Re-evaluate up to ``batch`` accounts whose time has come; return how many."""
    change = Change(now, "holdfast", CLOCK_CAUSE)
    with uow:
        due = uow.accounts.due_for_evaluation(now, batch)
        for account_id in due:
            reevaluate_account(uow, account_id, ctx, change)
        uow.commit()
    if due:
        log.info("accounts_reevaluated_by_clock", count=len(due))
    return len(due)

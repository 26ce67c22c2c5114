"""Write the account's effective hold to the CRM's creditonhold, so sales and service see it where they work.

The value is decided when the task runs (not when it was queued), so several changes in a
row end in one correct write; after recording, a value that moved on meanwhile is written again.

The CRM converges: every account whose CRM may not show its effective hold carries a time to
look again (``crm_sync_due_at``, indexed). A write confirmed clears it; a write lost with a
crashed worker, or one that gave up after its retries, leaves it, and the sweep sends the
write again when it comes (``converge_crm``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import structlog

from domain.timeline import Change, TimelineEntry
from services.evaluation import crm_differs
from services.ports import Clock, CrmWriter, ServiceContext, UnitOfWork, UnitOfWorkFactory

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class WriteBack:
    outcome: str  # "unchanged", "written", "failed", "retry"
    retry_after_seconds: float | None = None


def write_back_hold(
    new_uow: UnitOfWorkFactory,
    ctx: ServiceContext,
    writer: CrmWriter,
    account_id: str,
    clock: Clock,
    *,
    last_try: bool = False,
) -> WriteBack:
    """Write creditonhold if the CRM may not show the effective hold; ``last_try``: no retry follows a failure."""
    with new_uow() as uow:
        account = uow.accounts.get(account_id)
        if account is None or not crm_differs(uow, account, ctx, clock()):
            if account is not None:
                uow.accounts.schedule_crm_sync(account_id, None)
                uow.commit()
            return WriteBack("unchanged")
        wanted = account.shows_hold(ctx.policy, clock())

    result = writer.set_credit_on_hold(account_id, wanted)  # outside any transaction
    ctx.metrics.count("crm_writes", outcome=result.outcome)

    now = clock()
    change = Change(now, "holdfast", "crm_write_back")
    with new_uow() as uow:
        account = uow.accounts.get(account_id, lock=True)
        if account is None:
            return WriteBack("unchanged")
        crm = uow.accounts.crm_state(account_id)
        if result.outcome == "written":
            crm.on_hold = wanted
            crm.written_on_hold = wanted
            uow.accounts.save_crm_state(account_id, crm)
            uow.timeline.append(account_id, [TimelineEntry.of(change, "crm_updated", creditonhold=wanted)])
            if crm_differs(uow, account, ctx, now):  # changed again while we wrote
                uow.accounts.schedule_crm_sync(account_id, now + ctx.crm_recheck)
                uow.after_commit(lambda: ctx.publisher.write_back_hold(account_id))
            else:
                uow.accounts.schedule_crm_sync(account_id, None)
        elif result.outcome == "failed":
            # Refused for good (no such row, no permission): the next change of the account tries again.
            uow.accounts.schedule_crm_sync(account_id, None)
            uow.timeline.append(
                account_id,
                [
                    TimelineEntry.of(
                        change, "crm_update_failed", creditonhold=wanted, status=result.status, why=result.message
                    )
                ],
            )
        elif last_try:
            uow.accounts.schedule_crm_sync(account_id, now + ctx.crm_recheck)
            uow.timeline.append(
                account_id,
                [
                    TimelineEntry.of(
                        change,
                        "crm_update_gave_up",
                        creditonhold=wanted,
                        status=result.status,
                        why=result.message,
                        again_at=(now + ctx.crm_recheck).isoformat(),
                    )
                ],
            )
        else:
            # The task retries after the CRM's Retry-After: the sweep must not send it sooner.
            wait = timedelta(seconds=result.retry_after_seconds or 0)
            uow.accounts.schedule_crm_sync(account_id, now + wait + ctx.crm_recheck)
        uow.commit()
    log.info("crm_write_back", account_id=account_id, creditonhold=wanted, outcome=result.outcome, status=result.status)
    if result.outcome == "retry":
        return WriteBack("retry", result.retry_after_seconds)
    return WriteBack(result.outcome)


def converge_crm(uow: UnitOfWork, ctx: ServiceContext, now: datetime, *, batch: int = 500) -> int:
    """Send the write-back again for accounts whose CRM sync is due (lost, given up, not yet confirmed)."""
    with uow:
        due = uow.accounts.crm_sync_due(now, batch, next_look=now + ctx.crm_recheck)
        for account_id in due:  # before the commit: a publish that fails leaves them due
            ctx.publisher.write_back_hold(account_id)
        uow.commit()
    if due:
        log.info("crm_converging", accounts=len(due))
    return len(due)

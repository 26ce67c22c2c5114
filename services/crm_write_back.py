"""Write the account's effective hold to the CRM's creditonhold, so sales and service see it where they work.

The value is decided when the task runs (not when it was queued), so several changes in a
row end in one correct write; after recording, a value that moved on meanwhile is written again.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

import structlog

from domain.timeline import Change, TimelineEntry
from services.evaluation import crm_differs
from services.ports import CrmWriter, ServiceContext, UnitOfWork

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class WriteBack:
    outcome: str  # "unchanged", "written", "failed", "retry"
    retry_after_seconds: float | None = None


def write_back_hold(
    new_uow: Callable[[], UnitOfWork],
    ctx: ServiceContext,
    writer: CrmWriter,
    account_id: str,
    clock: Callable[[], datetime],
) -> WriteBack:
    with new_uow() as uow:
        account = uow.accounts.get(account_id)
        if account is None or not crm_differs(uow, account, ctx, clock()):
            return WriteBack("unchanged")
        wanted = account.shows_hold(ctx.policy, clock())

    result = writer.set_credit_on_hold(account_id, wanted)  # outside any transaction

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
                uow.after_commit(lambda: ctx.publisher.write_back_hold(account_id))
        elif result.outcome == "failed":
            uow.timeline.append(
                account_id,
                [
                    TimelineEntry.of(
                        change, "crm_update_failed", creditonhold=wanted, status=result.status, why=result.message
                    )
                ],
            )
        uow.commit()
    log.info("crm_write_back", account_id=account_id, creditonhold=wanted, outcome=result.outcome, status=result.status)
    if result.outcome == "retry":
        return WriteBack("retry", result.retry_after_seconds)
    return WriteBack(result.outcome)

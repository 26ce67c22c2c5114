"""Inbox retention: deliveries that ended are deleted once they are older than the retention.

A delivery that was processed or ignored has done its work: what it changed is in the facts,
the holds and the timeline, which stay. After ``INBOX_RETENTION_DAYS`` its raw row goes, in
small batches, each its own short transaction, so that a purge of a million rows never holds
a lock a webhook would wait for. Failed deliveries stay (they are replayable), and so does every
delivery still waiting to be processed, whatever its age.

Forgetting a delivery forgets its event id: the same event delivered again afterwards is stored
and processed as new. That is harmless, because processing is idempotent and order-independent
(facts merge, holds are recomputed from them); Stripe stops retrying after three days and lists
events for thirty, so with the default of 90 days it does not happen unless someone resends an
old event on purpose.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

import structlog

from services.ports import UnitOfWorkFactory

log = structlog.get_logger(__name__)

PURGE_BATCH = 1000  # rows per statement and transaction: each holds its row locks for milliseconds


@dataclass(frozen=True)
class Purged:
    """What one purge did: rows deleted, in how many batches, and whether none old enough is left."""

    rows: int
    batches: int
    finished: bool


def purge_inbox(
    new_uow: UnitOfWorkFactory,
    *,
    now: datetime,
    retention_days: int,
    batch: int = PURGE_BATCH,
    budget_seconds: float | None = None,
    monotonic: Callable[[], float] = time.monotonic,
) -> Purged:
    """Delete processed and ignored deliveries received more than ``retention_days`` before ``now``.

    Batch after batch, each committed on its own, until none is left or ``budget_seconds`` is
    spent (the next run goes on from there). ``retention_days`` 0: keep every delivery.
    """
    if retention_days <= 0:
        return Purged(0, 0, finished=True)
    received_before = now - timedelta(days=retention_days)
    deadline = None if budget_seconds is None else monotonic() + budget_seconds
    rows = batches = 0
    while True:
        with new_uow() as uow:
            deleted = uow.inbox.delete_ended(received_before, batch)
            uow.commit()
        rows, batches = rows + deleted, batches + 1
        finished = deleted < batch
        if finished or (deadline is not None and monotonic() >= deadline):
            break
    if rows:
        log.info("inbox_purged", rows=rows, batches=batches, finished=finished, received_before=received_before)
    return Purged(rows, batches, finished)

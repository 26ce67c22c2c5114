"""Sending work to the Celery workers (by task name, so the web never imports the tasks)."""

from __future__ import annotations

from collections.abc import Sequence

from celery import Celery

# Queue and task names live here, in one place.
QUEUE = "holdfast"
TASK_PROCESS_INBOX_EVENT = "holdfast.inbox.process_event"
TASK_SWEEP_INBOX = "holdfast.inbox.sweep"
TASK_DISPATCH_PROVISIONING = "holdfast.provisioning.dispatch"
TASK_WRITE_BACK_HOLD = "holdfast.crm.write_back_hold"
TASK_TICK = "holdfast.clock.tick"
TASK_RECONCILE_STRIPE = "holdfast.stripe.reconcile"


class CeleryPublisher:
    def __init__(self, celery: Celery, batch_size: int = 50) -> None:
        self.celery = celery
        self.batch_size = batch_size

    def process_inbox_event(self, inbox_id: int) -> None:
        self.celery.send_task(TASK_PROCESS_INBOX_EVENT, args=[inbox_id])

    def write_back_hold(self, account_id: str, countdown: float | None = None) -> None:
        self.celery.send_task(TASK_WRITE_BACK_HOLD, args=[account_id], countdown=countdown)

    def dispatch_provisioning(self, request_ids: Sequence[str], countdown: float | None = None) -> None:
        """Send request ids in batches; one task calls the API for a whole batch, concurrently."""
        ids = list(request_ids)
        for start in range(0, len(ids), self.batch_size):
            self.celery.send_task(
                TASK_DISPATCH_PROVISIONING, args=[ids[start : start + self.batch_size]], countdown=countdown
            )

"""Sending work to the Celery workers (by task name, so the web never imports the tasks)."""

from __future__ import annotations

from celery import Celery

# Queue and task names live here, in one place.
QUEUE = "holdfast"
TASK_PROCESS_INBOX_EVENT = "holdfast.inbox.process_event"
TASK_SWEEP_INBOX = "holdfast.inbox.sweep"


class CeleryPublisher:
    def __init__(self, celery: Celery) -> None:
        self.celery = celery

    def process_inbox_event(self, inbox_id: int) -> None:
        self.celery.send_task(TASK_PROCESS_INBOX_EVENT, args=[inbox_id])

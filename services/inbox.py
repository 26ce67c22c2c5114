"""The durable inbox: store every delivery first, process it later, lose none.

A webhook stores the delivery under its source's unique id, in one statement and one
transaction, and answers. The relay (in the worker) then hands committed rows to the broker,
so nothing is queued before it is stored, and acknowledging costs little more than storing.
Processing locks the row and checks its status, so a message delivered twice (or re-queued by
the sweep) has one effect. Rows left unprocessed are re-queued by the sweep; failed rows can
be replayed.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import structlog

from services.ports import (
    DeliveryStore,
    Handled,
    InboxEvent,
    Publisher,
    ServiceContext,
    StorageUnavailable,
    UnitOfWork,
)

log = structlog.get_logger(__name__)

RECEIVED, PROCESSED, IGNORED, FAILED = "received", "processed", "ignored", "failed"
DONE = frozenset({PROCESSED, IGNORED})

Handler = Callable[[UnitOfWork, InboxEvent, ServiceContext, datetime], Handled]


@dataclass(frozen=True)
class Stored:
    inbox_id: int | None
    duplicate: bool


def store_delivery(
    store: DeliveryStore,
    *,
    source: str,
    external_id: str,
    event_type: str,
    payload: str,
    now: datetime,
    meta: Mapping[str, Any] | None = None,
    occurred_at: datetime | None = None,
) -> Stored:
    """Store a delivery durably (committed on return); the relay queues it. Already stored: a duplicate."""
    inbox_id = store.add(source, external_id, event_type, payload, now, meta, occurred_at)
    return Stored(inbox_id, duplicate=inbox_id is None)


def relay_stored(uow: UnitOfWork, publisher: Publisher, *, now: datetime, batch: int = 500) -> int:
    """Hand stored deliveries not yet queued to the broker, oldest first; return how many."""
    with uow:
        ids = uow.inbox.claim_unqueued(now, batch)
        if ids:
            uow.after_commit(lambda: _queue_each(publisher, ids))
        uow.commit()
    return len(ids)


def process_inbox_event(
    uow: UnitOfWork,
    inbox_id: int,
    handlers: dict[str, Handler],
    ctx: ServiceContext,
    now: datetime,
    transient: tuple[type[BaseException], ...] = (StorageUnavailable,),
) -> str:
    """Process one stored delivery once. Transient failures propagate (the task retries)."""
    with uow:
        event = uow.inbox.get(inbox_id, lock=True)
        if event is None:
            return "missing"
        if event.status in DONE or event.status == FAILED:
            return event.status
        bound = structlog.contextvars.bind_contextvars(
            inbox_id=inbox_id, source=event.source, event_id=event.external_id, event_type=event.event_type
        )
        try:
            handler = handlers.get(event.source)
            if handler is None:
                raise ValueError(f"No handler for events from {event.source!r}.")
            try:
                handled = handler(uow, event, ctx, now)
            except transient:
                raise
            except Exception as error:  # a permanent failure: keep the event, replayable
                uow.rollback()
                message = f"{type(error).__name__}: {error}"
                log.warning("event_failed", error=message)
                uow.inbox.record_outcome(inbox_id, FAILED, now, error=message)
                uow.commit()
                return FAILED
            uow.inbox.record_outcome(inbox_id, handled.status, now, account_id=handled.account_id)
            uow.commit()
            log.info("event_" + handled.status, account_id=handled.account_id)
            return handled.status
        finally:
            structlog.contextvars.reset_contextvars(**bound)


def record_transient_error(uow: UnitOfWork, inbox_id: int, error: str) -> None:
    """Note a transient failure on the row (best effort: the database may be what failed)."""
    try:
        with uow:
            uow.inbox.record_attempt_error(inbox_id, error)
            uow.commit()
    except Exception:
        log.warning("could_not_record_transient_error", inbox_id=inbox_id)


def sweep(uow: UnitOfWork, publisher: Publisher, *, older_than: timedelta, now: datetime, batch: int = 500) -> int:
    """Re-queue deliveries still unprocessed ``older_than`` after they were last queued."""
    with uow:
        ids = uow.inbox.claim_stale(now - older_than, now, batch)
        uow.after_commit(lambda: _queue_each(publisher, ids))
        uow.commit()
    if ids:
        log.info("inbox_swept", requeued=len(ids))
    return len(ids)


def _queue_each(publisher: Publisher, ids: list[int]) -> None:
    for inbox_id in ids:
        publisher.process_inbox_event(inbox_id)


class NotReplayable(Exception):
    """Only a failed event can be replayed."""


def replay(uow: UnitOfWork, publisher: Publisher, source: str, external_id: str, now: datetime) -> InboxEvent | None:
    """Put a failed event back to received and queue it again."""
    with uow:
        event = uow.inbox.find(source, external_id)
        if event is None:
            return None
        if event.status != FAILED:
            raise NotReplayable(f"Event {external_id} is {event.status}; only a failed event can be replayed.")
        uow.inbox.reset_for_replay(event.id, now)
        uow.after_commit(lambda: publisher.process_inbox_event(event.id))
        uow.commit()
        return uow.inbox.find(source, external_id)

"""The durable inbox: store every delivery first, process it later, lose none.

A webhook stores the delivery under its source's unique id, in one statement and one
transaction, and answers. The relay (in the worker) then hands committed rows to the broker,
so nothing is queued before it is stored, and acknowledging costs little more than storing.
A row counts as queued only once the broker took its message: a publish that fails leaves it
for the relay's next try. Processing locks the row and checks its status, so a message
delivered twice (or re-queued by the sweep) has one effect. Rows left unprocessed are
re-queued by the sweep; failed rows can be replayed.

Some deliveries need their source's API before they can be applied (a dispute carries no
customer; a Dynamics body stripped for size carries no columns). That call is made outside any
transaction, by a worker of the peer's own queue, and its answer is kept with the delivery; so
a slow peer holds up only the events that need it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any, Protocol

import structlog

from services.ports import (
    DeliveryStore,
    Handled,
    InboxEvent,
    Outcome,
    Publisher,
    ServiceContext,
    StorageUnavailable,
    UnitOfWork,
    UnitOfWorkFactory,
)

log = structlog.get_logger(__name__)


class DeliveryStatus(StrEnum):
    """Where a stored delivery stands (stored as its value); what processing one returns."""

    RECEIVED = "received"  # stored, not yet applied
    PROCESSED = Outcome.PROCESSED.value
    IGNORED = Outcome.IGNORED.value
    FAILED = "failed"  # kept with its error, replayable
    DEFERRED = "deferred"  # handed to the queue of the peer it needs (returned, never stored)
    MISSING = "missing"  # no such row (returned, never stored)


Handler = Callable[[UnitOfWork, InboxEvent, ServiceContext, datetime], Handled]


class Completion(Protocol):
    """What a delivery may need from its source's API before it can be applied."""

    @property
    def peer(self) -> str:
        """The peer it calls ("stripe", "crm"): only that peer's queue makes the call."""

    def needed(self, uow: UnitOfWork, event: InboxEvent) -> bool:
        """Whether this delivery needs the call (reads only)."""

    def complete(self, event: InboxEvent) -> Mapping[str, Any]:
        """Call the peer (outside any transaction); what to keep in the delivery's ``meta``."""


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
    """Hand stored deliveries not yet queued to the broker, oldest first; return how many.

    The rows are marked queued in the transaction that publishes them, and it commits only
    once every publish succeeded: with the broker down, nothing is marked and the next try
    takes them again (a message published twice is still processed once).
    """
    with uow:
        ids = uow.inbox.claim_unqueued(now, batch)
        _queue_each(publisher, ids)
        uow.commit()
    return len(ids)


def process_inbox_event(
    new_uow: UnitOfWorkFactory,
    inbox_id: int,
    handlers: Mapping[str, Handler],
    ctx: ServiceContext,
    now: datetime,
    transient: tuple[type[BaseException], ...] = (StorageUnavailable,),
    *,
    completions: Mapping[str, Completion] | None = None,
    may_call: Collection[str] = (),
) -> str:
    """Process one stored delivery once. Transient failures propagate (the task retries).

    ``may_call`` names the peers this worker may call to complete a delivery; a delivery that
    needs another peer is handed to that peer's queue (``deferred``).
    """
    started = time.perf_counter()
    with new_uow() as uow:
        event = _still_to_process(uow, inbox_id)
        if isinstance(event, str):
            return event
        completion = (completions or {}).get(event.source)
        needs = completion if completion is not None and completion.needed(uow, event) else None
        if needs is None:  # the usual case: applied in this transaction, under the row's lock
            return _apply_locked(uow, event, handlers, ctx, now, transient, started)
    if needs is not None:
        # Handed on, or about to call the peer: the sweep leaves the row alone for as long as a
        # call may take (else it would queue it again, and a hanging peer would take every worker).
        with new_uow() as uow:
            uow.inbox.mark_queued(inbox_id, now + ctx.peer_patience)
            if needs.peer not in may_call:
                ctx.publisher.complete_inbox_event(inbox_id, needs.peer)
            uow.commit()
        if needs.peer not in may_call:
            return DeliveryStatus.DEFERRED
        try:
            extra = needs.complete(event)  # outside any transaction: the peer may be slow
        except transient:
            raise
        except Exception as error:  # the peer refused for good: keep the event, replayable
            outcome = _record_failure(new_uow, inbox_id, error, now)
            if outcome == DeliveryStatus.FAILED:
                ctx.metrics.count("events_processed", source=event.source, outcome=outcome)
            return outcome
        with new_uow() as uow:
            uow.inbox.add_meta(inbox_id, extra)
            uow.commit()
    return _apply(new_uow, inbox_id, handlers, ctx, now, transient)


def _apply(
    new_uow: UnitOfWorkFactory,
    inbox_id: int,
    handlers: Mapping[str, Handler],
    ctx: ServiceContext,
    now: datetime,
    transient: tuple[type[BaseException], ...],
) -> str:
    started = time.perf_counter()
    with new_uow() as uow:
        event = _still_to_process(uow, inbox_id)
        if isinstance(event, str):
            return event
        return _apply_locked(uow, event, handlers, ctx, now, transient, started)


def _still_to_process(uow: UnitOfWork, inbox_id: int) -> InboxEvent | str:
    """The delivery, locked by this transaction, while it is still ``received``; else what became of it."""
    event = uow.inbox.get(inbox_id, lock=True)
    if event is None:
        return DeliveryStatus.MISSING
    if event.status != DeliveryStatus.RECEIVED:
        return event.status
    return event


def _apply_locked(
    uow: UnitOfWork,
    event: InboxEvent,
    handlers: Mapping[str, Handler],
    ctx: ServiceContext,
    now: datetime,
    transient: tuple[type[BaseException], ...],
    started: float,
) -> str:
    """Apply a delivery whose row this transaction has locked and found ``received``; commit."""
    inbox_id = event.id
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
            message = failure_sentence(error)
            log.warning("event_failed", error=message)
            uow.inbox.record_outcome(inbox_id, DeliveryStatus.FAILED, now, error=message)
            uow.commit()
            _count_processed(ctx, event.source, DeliveryStatus.FAILED, started)
            return DeliveryStatus.FAILED
        uow.inbox.record_outcome(inbox_id, handled.status, now, account_id=handled.account_id)
        uow.commit()
        log.info("event_" + handled.status, account_id=handled.account_id)
        _count_processed(ctx, event.source, handled.status, started)
        return handled.status
    finally:
        structlog.contextvars.reset_contextvars(**bound)


def _count_processed(ctx: ServiceContext, source: str, outcome: str, started: float) -> None:
    """After the commit: one more event of ``source`` ended so, and how long applying it took."""
    ctx.metrics.count("events_processed", source=source, outcome=str(outcome))
    ctx.metrics.observe("event_processing_seconds", time.perf_counter() - started, source=source)


def _record_failure(new_uow: UnitOfWorkFactory, inbox_id: int, error: BaseException, now: datetime) -> str:
    message = failure_sentence(error)
    with new_uow() as uow:
        event = _still_to_process(uow, inbox_id)
        if isinstance(event, str):
            return event
        log.warning("event_failed", inbox_id=inbox_id, error=message)
        uow.inbox.record_outcome(inbox_id, DeliveryStatus.FAILED, now, error=message)
        uow.commit()
    return DeliveryStatus.FAILED


def failure_sentence(error: BaseException) -> str:
    """What went wrong, for the event's last_error and the log: never a SQL statement or its values.

    A database error carries the statement and its parameters (customer data): only the
    driver's own first line is kept.
    """
    original = getattr(error, "orig", None)
    if original is not None and hasattr(error, "statement"):
        primary = getattr(getattr(original, "diag", None), "message_primary", None)  # psycopg: no DETAIL
        first = primary or (str(original).strip().splitlines() or [""])[0]
        return f"{type(original).__name__}: {first}"[:500]
    return f"{type(error).__name__}: {error}"[:2000]


def record_transient_error(uow: UnitOfWork, inbox_id: int, error: str, next_try_at: datetime | None = None) -> None:
    """Note a transient failure on the row (best effort: the database may be what failed).

    ``next_try_at``: when the task's retry is due; the sweep re-queues the row only if that passes
    without it being processed (the retry was lost), not while a slow peer is being waited out.
    """
    try:
        with uow:
            uow.inbox.record_attempt_error(inbox_id, error, next_try_at=next_try_at)
            uow.commit()
    except Exception:
        log.warning("could_not_record_transient_error", inbox_id=inbox_id)


def sweep(uow: UnitOfWork, publisher: Publisher, *, older_than: timedelta, now: datetime, batch: int = 500) -> int:
    """Re-queue deliveries still unprocessed ``older_than`` after they were last queued (one batch)."""
    with uow:
        ids = uow.inbox.claim_stale(now - older_than, now, batch)
        _queue_each(publisher, ids)  # marked queued only if the broker took them all
        uow.commit()
    if ids:
        log.info("inbox_swept", requeued=len(ids))
    return len(ids)


def requeue_all(new_uow: UnitOfWorkFactory, publisher: Publisher, *, now: datetime, batch: int = 500) -> int:
    """Re-queue every delivery still unprocessed (the broker lost its messages); return how many."""
    total = 0
    while True:
        # Rows queued before ``now`` (or never): each pass stamps its rows with ``now``, so none comes twice.
        count = sweep(new_uow(), publisher, older_than=timedelta(0), now=now, batch=batch)
        total += count
        if count < batch:
            return total


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
        if event.status != DeliveryStatus.FAILED:
            raise NotReplayable(f"Event {external_id} is {event.status}; only a failed event can be replayed.")
        uow.inbox.reset_for_replay(event.id, now)
        uow.after_commit(lambda: publisher.process_inbox_event(event.id))
        uow.commit()
        return uow.inbox.find(source, external_id)


def list_events(uow: UnitOfWork, status: str | None, after_id: int | None, limit: int) -> list[InboxEvent]:
    """Stored deliveries, oldest first, after ``after_id``; ``status`` narrows them (``failed``: those to replay)."""
    with uow:
        return uow.inbox.page(status, after_id, limit)

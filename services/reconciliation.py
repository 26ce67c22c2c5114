"""Reconciliation with Stripe: find the events whose webhook never arrived, and store them.

Periodically (and on demand), Stripe's list of events is read from a start point, oldest
first, and every event is stored in the inbox exactly as its webhook delivery would have
been: under its unique ``(source, event id)``, so that events already there are not
duplicated and new ones are queued for processing once their row has committed.

The start point is where the last reconciliation got (its saved cursor) or, before any,
the newest Stripe event stored (both as Stripe's ``created`` times), minus ``lookback``;
never earlier than Stripe's retention of 30 days allows (less a margin); and with nothing
known, the retention's start. Progress is saved after every page, so a run that stops
(Stripe unreachable, a bounded run) resumes there on the next run.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from contextlib import closing
from dataclasses import dataclass
from datetime import datetime, timedelta

import structlog

from services.inbox import store_delivery
from services.ports import Clock, DeliveryStore, ListedEvent, StripeEventList, UnitOfWork, UnitOfWorkFactory

log = structlog.get_logger(__name__)

SOURCE = "stripe"
RETENTION = timedelta(days=30)  # how long Stripe keeps events listable
RETENTION_MARGIN = timedelta(hours=1)  # start this far inside it, so nothing expires while we page
DEFAULT_PAUSE_BETWEEN_PAGES = 0.25  # seconds: at most 4 list requests a second


@dataclass(frozen=True)
class ReconcileResult:
    stored: int  # events the inbox lacked: stored now and queued for processing
    seen: int  # events listed (stored now or already there)
    started_from: datetime  # the created[gte] asked of Stripe
    reached: datetime | None  # the created time of the last event listed (None: none)
    complete: bool  # False when max_events stopped the run before the end of the list


def reconciliation_start(uow: UnitOfWork, *, now: datetime, lookback: timedelta) -> datetime:
    """Where the next listing starts: the cursor, else the newest event stored, less the lookback.

    The cursor comes first even when webhooks have since stored newer events: it is how far
    a listing actually got, and what lies between it and those events was never listed.
    """
    return _start_point(uow, now=now, lookback=lookback)[0]


def _start_point(uow: UnitOfWork, *, now: datetime, lookback: timedelta) -> tuple[datetime, datetime | None]:
    """The start point, and the cursor it came from (None: no reconciliation yet)."""
    floor = now - RETENTION + RETENTION_MARGIN
    with uow:
        saved = uow.inbox.cursor(SOURCE)
        cursor = None if saved is None else saved[0]
        basis = cursor if cursor is not None else uow.inbox.newest_occurred(SOURCE)
    if basis is None:
        return floor, cursor
    return max(basis - lookback, floor), cursor


def reconcile_stripe(
    new_uow: UnitOfWorkFactory,
    store: DeliveryStore,
    api: StripeEventList,
    *,
    now: datetime,
    lookback: timedelta,
    types: Sequence[str],
    max_events: int | None = None,
    pause_between_pages: float = DEFAULT_PAUSE_BETWEEN_PAGES,
    sleep: Callable[[float], None] = time.sleep,
    clock: Clock | None = None,
) -> ReconcileResult:
    """List Stripe's events since the start point, oldest first, and store those the inbox lacks.

    Each event is stored in its own transaction (``store_delivery``, as the webhook does) and
    queued after commit; the cursor is saved after each page. When Stripe fails mid-way the
    progress made is saved and the adapter's ``StripeUnavailable`` / ``StripeLookupFailed``
    propagates. ``max_events`` bounds one run (the next resumes). ``clock`` stamps each
    stored event (default: ``now``).
    """
    if not types:
        raise ValueError("Name the event types to reconcile: without them Stripe lists every event.")
    if max_events is not None and max_events < 1:
        raise ValueError("max_events must be at least 1.")
    stamp = clock or (lambda: now)
    start, cursor = _start_point(new_uow(), now=now, lookback=lookback)
    progress = _Progress(new_uow, stamp, cursor)

    def pace() -> None:
        if pause_between_pages > 0:
            sleep(pause_between_pages)

    complete = True
    try:
        with closing(api.events_since(start, sorted(set(types)), pace=pace)) as pages:
            for page in pages:
                for event in page:
                    stored = store_delivery(
                        store,
                        source=SOURCE,
                        external_id=event.id,
                        event_type=event.type,
                        payload=event.payload,
                        now=stamp(),
                        occurred_at=event.created,
                    )
                    progress.listed(event, new=not stored.duplicate)
                    if max_events is not None and progress.seen >= max_events:
                        complete = False
                        break
                progress.save()
                if not complete:
                    break
    except Exception as error:
        progress.save_after_failure()
        log.warning(
            "stripe_reconcile_interrupted",
            stored=progress.stored,
            seen=progress.seen,
            started_from=start.isoformat(),
            reached=_iso(progress.reached),
            error=f"{type(error).__name__}: {error}",
        )
        raise
    result = ReconcileResult(progress.stored, progress.seen, start, progress.reached, complete)
    log.info(
        "stripe_reconciled",
        stored=result.stored,
        seen=result.seen,
        started_from=start.isoformat(),
        reached=_iso(result.reached),
        complete=complete,
    )
    return result


class _Progress:
    """Counts, and the last event listed: saved as the cursor after each page.

    The cursor never moves back: a run resumed ``lookback`` before it and stopped again
    early does not undo what an earlier listing covered.
    """

    def __init__(self, new_uow: UnitOfWorkFactory, clock: Clock, cursor: datetime | None) -> None:
        self.new_uow, self.clock, self.cursor = new_uow, clock, cursor
        self.stored = self.seen = 0
        self.last: ListedEvent | None = None
        self.saved: ListedEvent | None = None

    @property
    def reached(self) -> datetime | None:
        return None if self.last is None else self.last.created

    def listed(self, event: ListedEvent, *, new: bool) -> None:
        self.seen += 1
        self.stored += int(new)
        self.last = event

    def save(self) -> None:
        last = self.last
        if last is None or last is self.saved or (self.cursor is not None and last.created < self.cursor):
            return
        with self.new_uow() as uow:
            uow.inbox.save_cursor(SOURCE, last.created, last.id, self.clock())
            uow.commit()
        self.saved, self.cursor = last, last.created

    def save_after_failure(self) -> None:
        """Best effort: the database may be what failed; the next run then redoes a little more."""
        try:
            self.save()
        except Exception:
            log.warning("stripe_reconcile_progress_not_saved", reached=_iso(self.reached))


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()

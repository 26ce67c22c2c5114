"""Holdfast's own events: written to the outbox with the change, sent after commit, in order per account.

``record_changes`` runs in every transaction just before it commits (the unit of work calls it):
it reads the timeline entries the transaction appended, asks the domain which events they make
(``domain.outgoing.events_from``) and writes each event a subscription wants to the outbox, with
one delivery per such subscription, in that same transaction. A change rolled back announces
nothing; a change committed is announced at least once.

Sending follows dispatch's pattern (services.provisioning): a subscription's deliveries of one
account are a lane, sent oldest first by whoever holds the lane's lock (freed when its holder
ends or dies), the call made outside any transaction, on a queue of its own. An undelivered
delivery holds back the later ones of its lane, never another lane. Anything but 2xx is retried
with backoff doubling from ``OUTGOING_BACKOFF_SECONDS`` (with jitter) until
``OUTGOING_RETRY_HOURS`` have passed since the event; then it fails for good and the lane goes on.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import structlog

from domain.outgoing import ENFORCEMENT_KINDS, Enforcement, OutgoingEvent, events_from
from domain.provisioning import ProvisioningRequest
from services.accounts import AccountView, account_view
from services.ports import (
    Clock,
    DeliveryState,
    DispatchLock,
    Lane,
    OutgoingPolicy,
    PendingDelivery,
    SendOutcome,
    ServiceContext,
    Subscriber,
    UnitOfWork,
    UnitOfWorkFactory,
)
from services.retry_delay import retry_delay

log = structlog.get_logger(__name__)

LOST_SENDER = "The sender stopped before the subscriber answered (its worker was lost); sent again."


def record_changes(uow: UnitOfWork, ctx: ServiceContext, now: datetime) -> None:
    """In the transaction, before it commits: the outgoing events of what it appended to timelines."""
    appended = uow.timeline.appended()
    if not appended:
        return
    events: list[OutgoingEvent] = []
    for account_id, entries in appended.items():
        announced = now_state = None
        if any(entry.kind in ENFORCEMENT_KINDS for entry in entries):
            account = uow.accounts.get(account_id)
            if account is not None:
                effects = account.effects(ctx.policy, entries[-1].at)
                now_state = Enforcement(effects.blocks_changes, effects.parks_provisioning, effects.paused)
                stored = uow.accounts.announced_enforcement(account_id)
                announced = None if stored is None else Enforcement.decode(stored)
                if stored != now_state.encode():
                    uow.accounts.announce_enforcement(account_id, now_state.encode())
        events += events_from(account_id, entries, announced, now_state or announced or Enforcement())
    publish(uow, ctx, events, now)


def publish(uow: UnitOfWork, ctx: ServiceContext, events: Sequence[OutgoingEvent], now: datetime) -> int:
    """Write the events some subscription wants to the outbox, each with its deliveries; send them after commit."""
    if not events:
        return 0
    subscriptions = uow.subscriptions.active()
    if not subscriptions:
        return 0
    views: dict[str, AccountView | None] = {}
    lanes: set[Lane] = set()
    written = 0
    for event in events:
        wanting = [s.subscription_id for s in subscriptions if event.type in s.events]
        if not wanting:
            continue
        body = json.dumps(
            {"type": event.type, "timestamp": event.at.isoformat(), "data": _data(uow, ctx, event, views)},
            separators=(",", ":"),
            default=str,
        )
        event_id = uow.outbox.add_event(event.type, event.account_id, event.at, body)
        uow.outbox.add_deliveries(event_id, event.account_id, wanting, now)
        lanes.update((subscription_id, event.account_id) for subscription_id in wanting)
        written += 1
    if lanes:
        chosen = sorted(lanes)
        uow.after_commit(lambda: ctx.publisher.send_outgoing(chosen))
    return written


def announce(uow: UnitOfWork, ctx: ServiceContext, event: OutgoingEvent, now: datetime) -> None:
    """Write one event in a small transaction of its own (an order the API refused: nothing else is stored)."""
    with uow:
        publish(uow, ctx, [event], now)
        uow.commit()


def _data(
    uow: UnitOfWork, ctx: ServiceContext, event: OutgoingEvent, views: dict[str, AccountView | None]
) -> dict[str, Any]:
    if event.about_the_account:
        if event.account_id not in views:
            account = uow.accounts.get(event.account_id)
            views[event.account_id] = account_view(uow, account, ctx, event.at) if account is not None else None
        view = views[event.account_id]
        return {**(account_data(view) if view is not None else {"account_id": event.account_id}), **event.detail}
    if event.order is not None:
        request = uow.requests.get(event.order)
        if request is not None:
            return request_data(request)
    return dict(event.detail)


def _money(value: Decimal | None) -> str | None:
    """As the API writes money (webhooks.api.schemas.Money): two places, more only where the amount has them."""
    if value is None:
        return None
    cents = value.quantize(Decimal("0.01"))
    return str(cents) if cents == value else str(value.normalize())


def _time(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def account_data(view: AccountView) -> dict[str, Any]:
    """The account as ``GET /api/accounts/<id>`` returns it."""
    return {
        "account_id": view.account_id,
        "name": view.name,
        "account_number": view.account_number,
        "stripe_customer_id": view.stripe_customer_id,
        "currency": view.currency,
        "credit_limit": _money(view.credit_limit),
        "exposure": _money(view.exposure),
        "on_hold": view.on_hold,
        "blocks_changes": view.blocks_changes,
        "parks_provisioning": view.parks_provisioning,
        "holds": [
            {
                "reason": str(h.reason),
                "since": _time(h.since),
                "cause": h.cause,
                "note": h.note,
                "placed_by": h.placed_by,
            }
            for h in view.holds
        ],
        "enforcement_paused_until": _time(view.enforcement_paused_until),
        "awaiting": view.awaiting,
        "enforcement_paused_by": view.enforcement_paused_by,
        "standing": {
            "invoices_paid_on_time": view.standing.invoices_paid_on_time,
            "invoices_paid_late_or_failed": view.standing.invoices_paid_late_or_failed,
            "window_months": view.standing.window_months,
            "good_standing": view.standing.good_standing,
        },
    }


def request_data(request: ProvisioningRequest) -> dict[str, Any]:
    """The request as ``GET /api/provisioning/<request_id>`` returns it."""
    return {
        "request_id": request.request_id,
        "account_id": request.account_id,
        "order_id": request.order_id,
        "amount": _money(request.amount),
        "currency": request.currency,
        "description": request.description,
        "state": str(request.state),
        "waiting_for": list(request.waiting_for),
        "created_at": _time(request.created_at),
        "attempts": [
            {"at": _time(a.at), "status": a.status, "error": a.error, "note": a.note, "duration_ms": a.duration_ms}
            for a in request.attempts
        ],
        "failure": request.failure,
    }


def next_step(
    attempts: int,
    outcome: SendOutcome,
    occurred_at: datetime,
    now: datetime,
    policy: OutgoingPolicy,
    draw: Callable[[float, float], float] | None = None,
) -> tuple[DeliveryState, datetime | None]:
    """After ``attempts`` attempts, the last one ``outcome``: delivered, failed for good, or pending until when."""
    if outcome.delivered:
        return DeliveryState.DELIVERED, None
    deadline = occurred_at + timedelta(hours=policy.retry_hours)
    if now >= deadline:
        return DeliveryState.FAILED, None
    options: dict[str, Any] = {} if draw is None else {"draw": draw}
    delay = retry_delay(attempts, first=policy.backoff_seconds, cap=policy.backoff_cap_seconds, **options)
    return DeliveryState.PENDING, min(now + timedelta(seconds=delay), deadline)


def lane_lock_key(lane: Lane) -> str:
    return f"outgoing:{lane[0]}:{lane[1]}"


CROWDED_WAIT_SECONDS = 1.0  # a lane crowded out by its subscriber's other lanes looks again this soon


def subscriber_slot_key(subscription_id: str, number: int) -> str:
    return f"outgoing-subscriber:{subscription_id}:{number}"


@contextmanager
def subscriber_slot(locks: DispatchLock, subscription_id: str, slots: int) -> Iterator[bool]:
    """One of the subscriber's ``slots`` sending places, held while the block runs; False when all are taken."""
    for number in range(slots):
        with locks.hold(subscriber_slot_key(subscription_id, number)) as held:
            if held is not None:
                yield True
                return
    yield False


def send_lane(
    new_uow: UnitOfWorkFactory,
    ctx: ServiceContext,
    subscriber: Subscriber,
    locks: DispatchLock,
    lane: Lane,
    clock: Clock,
) -> str:
    """Send the lane's due deliveries oldest first, one at a time; what the turn ended with.

    ``busy``: another sender holds the lane (it sends what is due). ``crowded``: the subscriber
    already has ``sends_per_subscriber`` lanes sending (one that hangs holds that many threads of
    the outgoing worker, never all of them): the lane looks again soon, or after about a backoff
    when the subscriber's latest attempt went unanswered. Afterwards, a retry due soon gets a
    delayed task; one further off is left to the sweep.
    """
    with locks.hold(lane_lock_key(lane)) as held:
        if held is None:
            return "busy"
        with subscriber_slot(locks, lane[0], ctx.outgoing.sends_per_subscriber) as placed:
            if not placed:
                ctx.publisher.send_outgoing([lane], countdown=_crowded_wait(new_uow, ctx, lane[0]))
                return "crowded"
            ended = _send_due(new_uow, ctx, subscriber, lane, clock)
    with new_uow() as uow:
        due = uow.outbox.next_due_at(lane)
    if due is not None:
        wait = (due - clock()).total_seconds()
        if wait <= 0:
            ctx.publisher.send_outgoing([lane])  # it came due between our last look and the release
        elif wait <= ctx.outgoing.countdown_limit_seconds:
            ctx.publisher.send_outgoing([lane], countdown=wait)
    return ended


def _crowded_wait(new_uow: UnitOfWorkFactory, ctx: ServiceContext, subscription_id: str) -> float:
    """Soon while the subscriber answers (a burst of its lanes); about a backoff while it does not (it hangs)."""
    with new_uow() as uow:
        unanswered = uow.outbox.last_went_unanswered(subscription_id)
    first = ctx.outgoing.backoff_seconds if unanswered else CROWDED_WAIT_SECONDS
    return retry_delay(1, first=first, cap=first)


def _send_due(new_uow: UnitOfWorkFactory, ctx: ServiceContext, subscriber: Subscriber, lane: Lane, clock: Clock) -> str:
    ended = "idle"
    while True:
        started = clock()
        with new_uow() as uow:
            head = uow.outbox.lane_head(lane, lock=True)
            if head is None:
                return ended
            if head.sending_since is not None:
                # We hold the lane's lock, so whoever began this attempt is gone: record it, send again.
                lost = SendOutcome(None, LOST_SENDER, 0)
                uow.outbox.record_attempt(head.id, lost, head.sending_since, status=DeliveryState.PENDING, due_at=None)
                log.warning("outgoing_sender_lost", webhook_id=head.webhook_id)
            elif head.due_at > started:
                return "waiting"
            uow.outbox.start_sending(head.id, started)
            uow.commit()
        outcome = subscriber.send(head.url, head.secret, head.webhook_id, head.body)  # outside any transaction
        ended = _record(new_uow, ctx, head, outcome, started, clock())
        if ended == DeliveryState.PENDING:
            return "retry"


def _record(
    new_uow: UnitOfWorkFactory,
    ctx: ServiceContext,
    head: PendingDelivery,
    outcome: SendOutcome,
    started: datetime,
    now: datetime,
) -> str:
    attempts = head.attempts + 1 if head.sending_since is None else head.attempts + 2
    state, due = next_step(attempts, outcome, head.occurred_at, now, ctx.outgoing)
    with new_uow() as uow:
        uow.outbox.record_attempt(head.id, outcome, started, status=state, due_at=due)
        uow.commit()
    counted = "retry" if state is DeliveryState.PENDING else str(state)
    ctx.metrics.count("outgoing_deliveries", outcome=counted)
    log.info(
        "outgoing_" + counted,
        webhook_id=head.webhook_id,
        type=head.event_type,
        status=outcome.status,
        error=outcome.error,
        retry_at=None if due is None else due.isoformat(),
    )
    return state


def sweep_outgoing(
    new_uow: UnitOfWorkFactory,
    ctx: ServiceContext,
    now: datetime,
    *,
    older_than: timedelta = timedelta(seconds=10),
    batch: int = 500,
) -> int:
    """Hand on the lanes whose oldest pending delivery has been due for ``older_than`` (its task lost, a retry
    too far off for a delayed task, or its sender died mid-send); a lane still being sent stays with its sender."""
    with new_uow() as uow:
        lanes = uow.outbox.due_lanes(now - older_than, batch)
    if lanes:
        ctx.publisher.send_outgoing(lanes)
        log.info("outgoing_swept", lanes=len(lanes))
    return len(lanes)

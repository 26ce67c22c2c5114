"""Holdfast's own events in the database: subscriptions, the outbox, deliveries and their attempts."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import cast

from sqlalchemy import Table, insert, select, update
from sqlalchemy.orm import Session, aliased

from adapters.db.tables import OutgoingAttemptRow, OutgoingDeliveryRow, OutgoingEventRow, SubscriptionRow
from domain.outgoing import webhook_id
from services.ports import DeliveryAttempt, DeliveryState, Lane, PendingDelivery, SendOutcome, Subscription

_DELIVERIES = cast(Table, OutgoingDeliveryRow.__table__)
PENDING, FAILED = DeliveryState.PENDING.value, DeliveryState.FAILED.value


def _subscription(row: SubscriptionRow) -> Subscription:
    return Subscription(row.subscription_id, row.url, tuple(row.events), row.secret, row.created_at)


class SqlSubscriptionRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def add(self, subscription: Subscription) -> None:
        self.session.add(
            SubscriptionRow(
                subscription_id=subscription.subscription_id,
                url=subscription.url,
                events=list(subscription.events),
                secret=subscription.secret,
                created_at=subscription.created_at,
            )
        )
        self.session.flush()

    def get(self, subscription_id: str) -> Subscription | None:
        row = self.session.get(SubscriptionRow, subscription_id)
        return None if row is None or row.deleted_at is not None else _subscription(row)

    def active(self) -> list[Subscription]:
        query = select(SubscriptionRow).where(SubscriptionRow.deleted_at.is_(None))
        return [_subscription(row) for row in self.session.execute(query).scalars()]

    def page(self, after: str | None, limit: int) -> list[Subscription]:
        query = (
            select(SubscriptionRow)
            .where(SubscriptionRow.deleted_at.is_(None))
            .order_by(SubscriptionRow.subscription_id)
            .limit(limit)
        )
        if after is not None:
            query = query.where(SubscriptionRow.subscription_id > after)
        return [_subscription(row) for row in self.session.execute(query).scalars()]

    def delete(self, subscription_id: str, now: datetime) -> None:
        self.session.execute(
            update(SubscriptionRow).where(SubscriptionRow.subscription_id == subscription_id).values(deleted_at=now)
        )
        self.session.execute(
            update(OutgoingDeliveryRow)
            .where(OutgoingDeliveryRow.subscription_id == subscription_id, OutgoingDeliveryRow.status == PENDING)
            .values(status=FAILED, ended_at=now)
        )


class SqlOutboxRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def add_event(self, event_type: str, account_id: str, occurred_at: datetime, body: str) -> int:
        row = OutgoingEventRow(type=event_type, account_id=account_id, occurred_at=occurred_at, body=body)
        self.session.add(row)
        self.session.flush()
        return row.id

    def add_deliveries(self, event_id: int, account_id: str, subscription_ids: Sequence[str], now: datetime) -> None:
        rows = [
            {
                "event_id": event_id,
                "subscription_id": subscription_id,
                "account_id": account_id,
                "webhook_id": webhook_id(event_id, subscription_id),
                "status": PENDING,
                "attempts": 0,
                "due_at": now,
                "created_at": now,
            }
            for subscription_id in subscription_ids
        ]
        if rows:
            self.session.execute(insert(_DELIVERIES), rows)

    def lane_head(self, lane: Lane, *, lock: bool = False) -> PendingDelivery | None:
        subscription_id, account_id = lane
        query = (
            select(OutgoingDeliveryRow, OutgoingEventRow, SubscriptionRow)
            .join(OutgoingEventRow, OutgoingEventRow.id == OutgoingDeliveryRow.event_id)
            .join(SubscriptionRow, SubscriptionRow.subscription_id == OutgoingDeliveryRow.subscription_id)
            .where(
                OutgoingDeliveryRow.subscription_id == subscription_id,
                OutgoingDeliveryRow.account_id == account_id,
                OutgoingDeliveryRow.status == PENDING,
                SubscriptionRow.deleted_at.is_(None),
            )
            .order_by(OutgoingDeliveryRow.id)
            .limit(1)
        )
        if lock:
            query = query.with_for_update(of=OutgoingDeliveryRow)
        found = self.session.execute(query).first()
        if found is None:
            return None
        delivery, event, subscription = found
        return PendingDelivery(
            id=delivery.id,
            webhook_id=delivery.webhook_id,
            event_type=event.type,
            occurred_at=event.occurred_at,
            body=event.body,
            url=subscription.url,
            secret=subscription.secret,
            attempts=delivery.attempts,
            due_at=delivery.due_at,
            sending_since=delivery.sending_since,
        )

    def start_sending(self, delivery_id: int, now: datetime) -> None:
        self.session.execute(
            update(OutgoingDeliveryRow).where(OutgoingDeliveryRow.id == delivery_id).values(sending_since=now)
        )

    def record_attempt(
        self, delivery_id: int, outcome: SendOutcome, at: datetime, *, status: str, due_at: datetime | None
    ) -> None:
        row = self.session.get(OutgoingDeliveryRow, delivery_id, with_for_update=True)
        if row is None or row.status != PENDING:  # its subscription was deleted meanwhile
            return
        self.session.add(
            OutgoingAttemptRow(
                delivery_id=delivery_id,
                subscription_id=row.subscription_id,
                at=at,
                status=outcome.status,
                error=outcome.error,
                duration_ms=outcome.duration_ms,
            )
        )
        row.attempts = (row.attempts or 0) + 1
        row.status = status
        row.sending_since = None
        if due_at is not None:
            row.due_at = due_at
        if status != PENDING:
            row.ended_at = at
        self.session.flush()

    def due_lanes(self, due_before: datetime, limit: int) -> list[Lane]:
        head, earlier = OutgoingDeliveryRow, aliased(OutgoingDeliveryRow)
        older_pending = (
            select(earlier.id)
            .where(
                earlier.subscription_id == head.subscription_id,
                earlier.account_id == head.account_id,
                earlier.status == PENDING,
                earlier.id < head.id,
            )
            .exists()
        )
        query = (
            select(head.subscription_id, head.account_id)
            .where(head.status == PENDING, head.due_at <= due_before, ~older_pending)
            .order_by(head.due_at)
            .limit(limit)
        )
        return [(str(s), str(a)) for s, a in self.session.execute(query)]

    def last_went_unanswered(self, subscription_id: str) -> bool:
        query = (
            select(OutgoingAttemptRow.status)
            .where(OutgoingAttemptRow.subscription_id == subscription_id)
            .order_by(OutgoingAttemptRow.id.desc())
            .limit(1)
        )
        latest = self.session.execute(query).first()
        return latest is not None and latest.status is None

    def next_due_at(self, lane: Lane) -> datetime | None:
        head = self.lane_head(lane)
        return None if head is None else head.due_at

    def attempts(self, subscription_id: str, before_id: int | None, limit: int) -> list[DeliveryAttempt]:
        query = (
            select(OutgoingAttemptRow, OutgoingDeliveryRow.webhook_id, OutgoingEventRow.type)
            .join(OutgoingDeliveryRow, OutgoingDeliveryRow.id == OutgoingAttemptRow.delivery_id)
            .join(OutgoingEventRow, OutgoingEventRow.id == OutgoingDeliveryRow.event_id)
            .where(OutgoingAttemptRow.subscription_id == subscription_id)
            .order_by(OutgoingAttemptRow.id.desc())
            .limit(limit)
        )
        if before_id is not None:
            query = query.where(OutgoingAttemptRow.id < before_id)
        return [
            DeliveryAttempt(row.id, hook_id, event_type, row.at, row.status, row.error, row.duration_ms)
            for row, hook_id, event_type in self.session.execute(query)
        ]

"""Ports of Holdfast's own events: subscriptions, the outbox and its deliveries, and the subscriber's HTTP."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Protocol


class DeliveryState(StrEnum):
    """Where a delivery stands: pending (to send, or to send again), delivered, failed for good."""

    PENDING = "pending"
    DELIVERED = "delivered"
    FAILED = "failed"


@dataclass(frozen=True)
class Subscription:
    """Where an admin asked Holdfast's events to go, which types, and the secret that signs them."""

    subscription_id: str
    url: str
    events: tuple[str, ...]
    secret: str
    created_at: datetime


@dataclass(frozen=True)
class PendingDelivery:
    """The oldest undelivered delivery of a subscription's lane (one account), with what sending it needs."""

    id: int
    webhook_id: str
    event_type: str
    occurred_at: datetime
    body: str
    url: str
    secret: str
    attempts: int
    due_at: datetime
    sending_since: datetime | None


@dataclass(frozen=True)
class DeliveryAttempt:
    """One attempt as the delivery log shows it."""

    id: int
    webhook_id: str
    type: str
    at: datetime
    status: int | None
    error: str | None
    duration_ms: int


@dataclass(frozen=True)
class SendOutcome:
    """What one POST to a subscriber came to: its status, or what went wrong (no answer)."""

    status: int | None
    error: str | None
    duration_ms: int

    @property
    def delivered(self) -> bool:
        return self.status is not None and 200 <= self.status < 300


class SubscriptionRepository(Protocol):
    def add(self, subscription: Subscription) -> None: ...

    def get(self, subscription_id: str) -> Subscription | None:
        """A subscription not deleted."""

    def active(self) -> list[Subscription]:
        """Every subscription not deleted (few: an admin makes them)."""

    def page(self, after: str | None, limit: int) -> list[Subscription]: ...

    def delete(self, subscription_id: str, now: datetime) -> None:
        """Not listed or sent to any more; its pending deliveries end."""


Lane = tuple[str, str]  # (subscription_id, account_id): deliveries in order, one at a time


class OutboxRepository(Protocol):
    def add_event(self, event_type: str, account_id: str, occurred_at: datetime, body: str) -> int:
        """Write an event to the outbox (in the caller's transaction); its id."""

    def add_deliveries(self, event_id: int, account_id: str, subscription_ids: Sequence[str], now: datetime) -> None:
        """One pending delivery of the event per subscription, due now."""

    def lane_head(self, lane: Lane, *, lock: bool = False) -> PendingDelivery | None:
        """The lane's oldest pending delivery of a subscription not deleted (None: nothing pending)."""

    def start_sending(self, delivery_id: int, now: datetime) -> None: ...

    def last_went_unanswered(self, subscription_id: str) -> bool:
        """Whether the subscription's latest attempt got no answer (a timeout, no connection, a lost sender)."""
        ...

    def record_attempt(
        self, delivery_id: int, outcome: SendOutcome, at: datetime, *, status: str, due_at: datetime | None
    ) -> None:
        """Record an attempt and where the delivery stands (``pending`` again, due at ``due_at``, or ended)."""

    def due_lanes(self, due_before: datetime, limit: int) -> list[Lane]:
        """Lanes whose oldest pending delivery was due before ``due_before`` (left by a lost task or a dead sender)."""

    def next_due_at(self, lane: Lane) -> datetime | None: ...

    def attempts(self, subscription_id: str, before_id: int | None, limit: int) -> list[DeliveryAttempt]:
        """The subscription's attempts, newest first."""


class Subscriber(Protocol):
    """Sends one signed event to a subscriber (adapters.outgoing_http)."""

    def send(self, url: str, secret: str, webhook_id: str, body: str) -> SendOutcome: ...

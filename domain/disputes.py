"""Disputes (chargebacks) and the dispute hold.

A dispute holds its customer's account from the moment it opens. What each of Stripe's
statuses means is data (``DISPUTE_STATUSES``): under way, closed, or appealed after a loss.
When a dispute closes, the policy says which closing statuses release the hold (won,
warning_closed and prevented, by default); a lost one keeps holding until finance lifts that
hold, and so does its appeal, until the appeal is won. Stripe adds statuses over time: one
Holdfast does not know holds like an open dispute, says so in the hold's note, and finance
may lift it. Facts about one dispute merge like invoice facts: the newest event's snapshot
wins and a final outcome stays final, whatever the order of delivery.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from decimal import Decimal
from types import MappingProxyType

from domain.holds import HoldReason, WantedHold
from domain.money import format_amount
from domain.policy import DisputePolicy


class DisputeStage(enum.StrEnum):
    UNDER_WAY = "under_way"  # the merchant may still win: holds; finance cannot lift it
    CLOSED = "closed"  # decided: releases if the policy's release_on names the status
    APPEALED = "appealed"  # lost, then appealed: holds as the lost dispute did, until won
    UNKNOWN = "unknown"  # a status Stripe added since: holds like an open one; liftable


DISPUTE_STATUSES: Mapping[str, DisputeStage] = MappingProxyType(
    {
        "warning_needs_response": DisputeStage.UNDER_WAY,
        "warning_under_review": DisputeStage.UNDER_WAY,
        "needs_response": DisputeStage.UNDER_WAY,
        "under_review": DisputeStage.UNDER_WAY,
        "appeal_needs_response": DisputeStage.APPEALED,
        "appeal_under_review": DisputeStage.APPEALED,
        "won": DisputeStage.CLOSED,
        "lost": DisputeStage.CLOSED,
        "warning_closed": DisputeStage.CLOSED,
        "prevented": DisputeStage.CLOSED,
    }
)
CLOSING_STATUSES = frozenset(s for s, stage in DISPUTE_STATUSES.items() if stage is DisputeStage.CLOSED)
# Nothing follows these; a lost dispute may still be appealed.
FINAL_STATUSES = frozenset({"won", "warning_closed", "prevented"})
# Which status of two events of the same second is the later one.
_RANK = {DisputeStage.UNDER_WAY: 0, DisputeStage.UNKNOWN: 1, DisputeStage.CLOSED: 2, DisputeStage.APPEALED: 3}


def stage_of(status: str) -> DisputeStage:
    return DISPUTE_STATUSES.get(status, DisputeStage.UNKNOWN)


@dataclass(frozen=True)
class DisputeFact:
    dispute_id: str
    customer_id: str
    charge_id: str | None
    status: str
    amount: Decimal
    currency: str
    event_id: str
    event_created: datetime
    opened_event_id: str
    lifted_at: datetime | None = None
    opened_at: datetime | None = None  # when the opening event was created (None given: this event's)

    def __post_init__(self) -> None:
        if self.opened_at is None:
            object.__setattr__(self, "opened_at", self.event_created)

    @property
    def opening(self) -> tuple[datetime, str]:
        return (self.opened_at or self.event_created, self.opened_event_id)

    @property
    def stage(self) -> DisputeStage:
        return stage_of(self.status)

    @property
    def known(self) -> bool:
        return self.stage is not DisputeStage.UNKNOWN

    @property
    def liftable(self) -> bool:
        """Finance may lift its hold: it was lost (or appealed since), or its status is one Holdfast does not know."""
        return self.stage is not DisputeStage.UNDER_WAY

    @property
    def order_key(self) -> tuple[bool, datetime, int, str]:
        return (self.status in FINAL_STATUSES, self.event_created, _RANK[self.stage], self.event_id)

    def holds(self, policy: DisputePolicy) -> bool:
        if self.lifted_at is not None:
            return False
        if self.stage is DisputeStage.CLOSED:
            return self.status not in policy.release_on
        if self.stage is DisputeStage.APPEALED:
            return "lost" not in policy.release_on
        return True

    def describe(self) -> str:
        amount = f"{self.currency.upper()} {format_amount(self.amount, self.currency)}"
        unknown = "" if self.known else " (a status Holdfast does not know: held as open)"
        return f"dispute {self.dispute_id} ({amount}): {self.status}{unknown}"


@dataclass(frozen=True)
class DisputeSeen:
    """What one event says about a dispute; Stripe's disputes do not say whose they are."""

    dispute_id: str
    charge_id: str | None
    status: str
    amount: Decimal
    currency: str
    event_id: str
    event_created: datetime

    @property
    def known(self) -> bool:
        return stage_of(self.status) is not DisputeStage.UNKNOWN

    def of_customer(self, customer_id: str) -> DisputeFact:
        return DisputeFact(
            dispute_id=self.dispute_id,
            customer_id=customer_id,
            charge_id=self.charge_id,
            status=self.status,
            amount=self.amount,
            currency=self.currency,
            event_id=self.event_id,
            event_created=self.event_created,
            opened_event_id=self.event_id,
        )


def merge_dispute(current: DisputeFact | None, incoming: DisputeFact) -> DisputeFact:
    """Combine two facts about one dispute; the result does not depend on their order."""
    if current is None:
        return incoming
    newest = max(current, incoming, key=lambda d: d.order_key)
    opened_at, opened_event_id = min(current.opening, incoming.opening)
    lifted = min((d.lifted_at for d in (current, incoming) if d.lifted_at is not None), default=None)
    return replace(newest, opened_event_id=opened_event_id, opened_at=opened_at, lifted_at=lifted)


def evaluate_disputes(disputes: Iterable[DisputeFact], policy: DisputePolicy) -> WantedHold | None:
    holding = sorted((d for d in disputes if d.holds(policy)), key=lambda d: (d.opening, d.dispute_id))
    if not holding:
        return None
    note = "; ".join(d.describe() for d in holding)
    return WantedHold(HoldReason.DISPUTE, cause=f"stripe:{holding[0].opened_event_id}", note=note)

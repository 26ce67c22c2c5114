"""Disputes (chargebacks) and the dispute hold.

A dispute holds its customer's account from the moment it opens. When it closes, the
policy says which outcomes release the hold (won, by default); a lost dispute keeps
holding until finance lifts that hold. Facts about one dispute merge like invoice facts:
the newest event's snapshot wins and a closed dispute stays closed, whatever the order.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import datetime
from decimal import Decimal

from domain.holds import HoldReason, WantedHold
from domain.money import format_amount
from domain.policy import DisputePolicy

OPEN_STATUSES = frozenset({"warning_needs_response", "warning_under_review", "needs_response", "under_review"})
CLOSED_STATUSES = frozenset({"won", "lost", "warning_closed"})


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

    @property
    def closed(self) -> bool:
        return self.status in CLOSED_STATUSES

    def holds(self, policy: DisputePolicy) -> bool:
        if self.lifted_at is not None:
            return False
        return not self.closed or self.status not in policy.release_on


def merge_dispute(current: DisputeFact | None, incoming: DisputeFact) -> DisputeFact:
    """Combine two facts about one dispute; the result does not depend on their order."""
    if current is None:
        return incoming
    newest = max(current, incoming, key=lambda d: (d.closed, d.event_created, d.event_id))
    opened = min(current, incoming, key=lambda d: (d.event_created, d.event_id)).opened_event_id
    lifted = current.lifted_at or incoming.lifted_at
    return replace(newest, opened_event_id=opened, lifted_at=lifted)


def evaluate_disputes(disputes: Iterable[DisputeFact], policy: DisputePolicy) -> WantedHold | None:
    holding = sorted((d for d in disputes if d.holds(policy)), key=lambda d: (d.event_created, d.dispute_id))
    if not holding:
        return None
    note = "; ".join(
        f"dispute {d.dispute_id} ({d.currency.upper()} {format_amount(d.amount, d.currency)}): {d.status}"
        for d in holding
    )
    return WantedHold(HoldReason.DISPUTE, cause=f"stripe:{holding[0].opened_event_id}", note=note)

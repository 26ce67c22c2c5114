"""Invoice facts and the non-payment rule.

Every Stripe invoice event is reduced to an ``InvoiceFact``. Facts about one invoice are
combined with ``merge``, which is commutative, associative and idempotent: the snapshot of
the newest event wins (a paid or voided invoice is final, whatever arrives later), while the
record of failed attempts and of being written off only grows. So any order of delivery,
with any duplicates, leads to the same fact, and the holds computed from facts follow.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from decimal import Decimal
from types import MappingProxyType

from domain.holds import HoldReason, WantedHold
from domain.money import ZERO, format_amount
from domain.policy import NonPaymentPolicy


class InvoiceStatus(enum.StrEnum):
    DRAFT = "draft"
    OPEN = "open"
    UNCOLLECTIBLE = "uncollectible"
    PAID = "paid"
    VOID = "void"


FINAL_STATUSES = frozenset({InvoiceStatus.PAID, InvoiceStatus.VOID})
UNPAID_STATUSES = frozenset({InvoiceStatus.OPEN, InvoiceStatus.UNCOLLECTIBLE})
_RANK = {
    InvoiceStatus.DRAFT: 0,
    InvoiceStatus.OPEN: 1,
    InvoiceStatus.UNCOLLECTIBLE: 2,
    InvoiceStatus.PAID: 3,
    InvoiceStatus.VOID: 3,
}


@dataclass(frozen=True, order=True)
class Occurrence:
    """When something was first seen (the Stripe event's ``created``) and in which event."""

    at: datetime
    event_id: str


def _earliest(a: Occurrence | None, b: Occurrence | None) -> Occurrence | None:
    if a is None:
        return b
    if b is None:
        return a
    return min(a, b)


@dataclass(frozen=True)
class InvoiceFact:
    """What Holdfast knows about one Stripe invoice."""

    invoice_id: str
    customer_id: str
    status: InvoiceStatus
    currency: str
    amount_remaining: Decimal
    collection_method: str
    due_date: datetime | None
    event_id: str
    event_created: datetime
    # attempt number -> first failure seen at that attempt count
    failures: Mapping[int, Occurrence] = field(default_factory=lambda: MappingProxyType({}))
    uncollectible_since: Occurrence | None = None
    # When it was paid (Stripe's status_transitions.paid_at; the earliest seen) and the attempts it
    # took (attempt_count; the most seen): what good standing reads (domain.standing).
    paid_at: datetime | None = None
    attempt_count: int = 0

    @property
    def order_key(self) -> tuple[bool, datetime, int, str]:
        return (self.status in FINAL_STATUSES, self.event_created, _RANK[self.status], self.event_id)

    @property
    def failed_attempts(self) -> int:
        return max(self.failures, default=0)

    @property
    def is_unpaid(self) -> bool:
        return self.status in UNPAID_STATUSES and self.amount_remaining > ZERO


def merge(current: InvoiceFact | None, incoming: InvoiceFact) -> InvoiceFact:
    """Combine two facts about the same invoice; the result does not depend on their order."""
    if current is None:
        return incoming
    newest = max(current, incoming, key=lambda fact: fact.order_key)
    failures = dict(current.failures)
    for attempt, seen in incoming.failures.items():
        failures[attempt] = min(seen, failures[attempt]) if attempt in failures else seen
    paid = [at for at in (current.paid_at, incoming.paid_at) if at is not None]
    return replace(
        newest,
        failures=MappingProxyType(dict(sorted(failures.items()))),
        uncollectible_since=_earliest(current.uncollectible_since, incoming.uncollectible_since),
        paid_at=min(paid, default=None),
        attempt_count=max(current.attempt_count, incoming.attempt_count),
    )


@dataclass(frozen=True)
class Trigger:
    """An unpaid invoice meets the non-payment policy from ``at`` on, because of ``cause``."""

    invoice: InvoiceFact
    at: datetime
    cause: str
    why: str


def non_payment_trigger(fact: InvoiceFact, policy: NonPaymentPolicy) -> Trigger | None:
    """The earliest moment (grace included) at which this invoice calls for a hold, if any."""
    if not fact.is_unpaid:
        return None
    candidates: list[Trigger] = []
    if policy.failed_attempts > 0:
        seen = [occ for attempt, occ in fact.failures.items() if attempt >= policy.failed_attempts]
        if seen:
            first = min(seen)
            candidates.append(
                Trigger(fact, first.at, first.event_id, f"{fact.failed_attempts} failed payment attempt(s)")
            )
    if policy.on_uncollectible and fact.status is InvoiceStatus.UNCOLLECTIBLE:
        occ = fact.uncollectible_since or Occurrence(fact.event_created, fact.event_id)
        candidates.append(Trigger(fact, occ.at, occ.event_id, "marked uncollectible"))
    if policy.days_past_due is not None and fact.collection_method == "send_invoice" and fact.due_date is not None:
        at = fact.due_date + timedelta(days=policy.days_past_due)
        candidates.append(Trigger(fact, at, fact.event_id, f"{policy.days_past_due} days past due"))
    if not candidates:
        return None
    earliest = min(candidates, key=lambda t: (t.at, t.cause))
    return replace(earliest, at=earliest.at + policy.grace_period)


@dataclass(frozen=True)
class NonPaymentVerdict:
    """Whether the invoices hold the account now, and when that could next change by time alone."""

    hold: WantedHold | None
    next_change_at: datetime | None
    exposure: Decimal


def evaluate_non_payment(invoices: Iterable[InvoiceFact], policy: NonPaymentPolicy, now: datetime) -> NonPaymentVerdict:
    """Decide the non-payment hold from an account's invoice facts at time ``now``."""
    facts = list(invoices)
    exposure = sum((f.amount_remaining for f in facts if f.is_unpaid), ZERO)
    triggers = [t for t in (non_payment_trigger(f, policy) for f in facts) if t is not None]
    due = sorted((t for t in triggers if t.at <= now), key=lambda t: (t.at, t.invoice.invoice_id))
    future = [t.at for t in triggers if t.at > now]
    next_change_at = min(future, default=None)
    unpaid = sum((t.invoice.amount_remaining for t in due), ZERO)
    if not due or unpaid < policy.minimum_unpaid:
        # Below the minimum, a future trigger could still tip the total over it.
        return NonPaymentVerdict(None, next_change_at, exposure)
    first = due[0]
    note = "; ".join(
        f"invoice {t.invoice.invoice_id} ({t.invoice.currency.upper()} "
        f"{format_amount(t.invoice.amount_remaining, t.invoice.currency)} unpaid): {t.why}"
        for t in due
    )
    hold = WantedHold(HoldReason.NON_PAYMENT, cause=f"stripe:{first.cause}", note=note)
    return NonPaymentVerdict(hold, next_change_at, exposure)

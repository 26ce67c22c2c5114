"""Evaluate an account from its facts: the holds its sources call for, now."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from domain.account import Account
from domain.disputes import DisputeFact, evaluate_disputes
from domain.holds import HoldReason, WantedHold
from domain.invoices import InvoiceFact, evaluate_non_payment
from domain.policy import HoldPolicy
from domain.timeline import Change, TimelineEntry


@dataclass(frozen=True)
class Evaluation:
    """The holds wanted for each reason the facts decide, and when time alone could change them."""

    wanted: Mapping[HoldReason, WantedHold | None]
    next_change_at: datetime | None
    invoice_exposure: Decimal


def evaluate(
    invoices: Iterable[InvoiceFact],
    policy: HoldPolicy,
    now: datetime,
    *,
    credit_review_cause: str | None = None,
    disputes: Iterable[DisputeFact] = (),
) -> Evaluation:
    """What the account's facts call for at ``now`` (the caller passes the time: no clock here)."""
    verdict = evaluate_non_payment(invoices, policy.non_payment, now)
    credit_review = (
        WantedHold(HoldReason.CREDIT_REVIEW, credit_review_cause, "creditonhold set in the CRM")
        if credit_review_cause
        else None
    )
    return Evaluation(
        wanted={
            HoldReason.NON_PAYMENT: verdict.hold,
            HoldReason.CREDIT_REVIEW: credit_review,
            HoldReason.DISPUTE: evaluate_disputes(disputes, policy.dispute),
        },
        next_change_at=verdict.next_change_at,
        invoice_exposure=verdict.exposure,
    )


def settle(account: Account, evaluation: Evaluation, change: Change) -> list[TimelineEntry]:
    """Place and release the account's source-owned holds to match the evaluation."""
    entries: list[TimelineEntry] = []
    for reason, wanted in evaluation.wanted.items():
        entries += account.settle_hold(reason, wanted, change)
    return entries

"""Evaluate an account from its facts: the holds its sources call for, now."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from decimal import Decimal
from functools import cached_property, partial

from domain.account import Account
from domain.disputes import DisputeFact, evaluate_disputes
from domain.holds import HoldReason, WantedHold
from domain.invoices import InvoiceFact, NonPaymentVerdict, evaluate_non_payment
from domain.policy import HoldPolicy, NonPaymentPolicy
from domain.standing import NO_STANDING, Standing, standing_of, with_allowance
from domain.timeline import Change, TimelineEntry


@dataclass(frozen=True)
class Evaluation:
    """The holds wanted for each reason the facts decide, and when time alone could change them."""

    wanted: Mapping[HoldReason, WantedHold | None]
    next_change_at: datetime | None
    invoice_exposure: Decimal
    # Good standing kept the account from a non-payment hold the policy would otherwise place: why.
    spared: str | None = None
    # The account's record of paying, computed when first asked for (``standing``): a policy without
    # ``[non_payment.good_standing]`` decides nothing by it, and a what-if over the book never asks.
    record: Callable[[], Standing] = field(default=lambda: NO_STANDING, repr=False, compare=False)

    @cached_property
    def standing(self) -> Standing:
        return self.record()


def evaluate(
    invoices: Iterable[InvoiceFact],
    policy: HoldPolicy,
    now: datetime,
    *,
    credit_review_cause: str | None = None,
    disputes: Iterable[DisputeFact] = (),
) -> Evaluation:
    """What the account's facts call for at ``now`` (the caller passes the time: no clock here)."""
    facts = list(invoices)
    if policy.non_payment.good_standing is None:  # the standing decides nothing: computed if shown
        verdict, spared = evaluate_non_payment(facts, policy.non_payment, now), None
        record = partial(standing_of, facts, policy.non_payment, now)
    else:
        standing = standing_of(facts, policy.non_payment, now)
        verdict, spared = _non_payment(facts, policy, standing, now)
        record = partial(_known, standing)
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
        spared=spared,
        record=record,
    )


def _known(standing: Standing) -> Standing:
    return standing


def _non_payment(
    facts: list[InvoiceFact], policy: HoldPolicy, standing: Standing, now: datetime
) -> tuple[NonPaymentVerdict, str | None]:
    """The non-payment verdict with the allowance the standing earns, and what the allowance spared."""
    applied = with_allowance(policy.non_payment, standing)
    verdict = evaluate_non_payment(facts, applied, now)
    if applied is policy.non_payment:
        return verdict, None
    # The standing may end by time alone (an on-time invoice leaving the window): look again then.
    ends = [at for at in (verdict.next_change_at, standing.ends_at) if at is not None]
    verdict = replace(verdict, next_change_at=min(ends, default=None))
    if verdict.hold is not None or evaluate_non_payment(facts, policy.non_payment, now).hold is None:
        return verdict, None
    return verdict, _spared_note(standing, applied)


def _ordinal(n: int) -> str:
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def _spared_note(standing: Standing, applied: NonPaymentPolicy) -> str:
    rule = applied.good_standing
    grace = rule.extra_grace_hours if rule is not None else 0
    holds_at = f"holds at the {_ordinal(applied.failed_attempts)} failed attempt" if applied.failed_attempts else ""
    if grace:
        holds_at += ("" if not holds_at else ", ") + f"with {grace} more hours of grace"
    return f"not held: {standing.invoices_paid_on_time} invoices paid on time in {standing.window_months} months" + (
        f"; {holds_at}" if holds_at else ""
    )


def settle(account: Account, evaluation: Evaluation, change: Change) -> list[TimelineEntry]:
    """Place and release the account's source-owned holds to match the evaluation."""
    entries: list[TimelineEntry] = []
    for reason, wanted in evaluation.wanted.items():
        entries += account.settle_hold(reason, wanted, change)
    return entries + account.note_allowance(evaluation.spared, change)

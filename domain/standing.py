"""Good standing: an account's record of paying, from its invoice facts, and the allowance it earns.

An account in good standing paid at least ``invoices_paid_on_time`` invoices on time within the
last ``months`` months and had no non-payment hold in that window; it then gets
``extra_failed_attempts`` more failed attempts and ``extra_grace_hours`` more grace before a
non-payment hold (policy section ``[non_payment.good_standing]``, off by default).

Standing is judged on the invoices settled in the window (paid, or marked uncollectible, within
it), never on the open invoices it decides: the allowance cannot depend on the invoice it is
about. "A hold in the window" is read from the facts, not from the timeline (the timeline
depends on the order events arrived in; the facts do not): a settled invoice whose facts show it
held whatever the standing (failed attempts up to the threshold with the allowance, marked
uncollectible, or paid later than the days past due with both graces). A hold placed only
because the account lacked standing at the time shows through its late or failed invoice.
"""

from __future__ import annotations

import calendar
from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from domain.invoices import InvoiceFact, InvoiceStatus
from domain.policy import GoodStanding, NonPaymentPolicy


def months_before(moment: datetime, months: int) -> datetime:
    """The same day and time ``months`` calendar months earlier (the month's last day when it is shorter)."""
    index = moment.year * 12 + moment.month - 1 - months
    year, month = divmod(index, 12)
    day = min(moment.day, calendar.monthrange(year, month + 1)[1])
    return moment.replace(year=year, month=month + 1, day=day)


def months_after(moment: datetime, months: int) -> datetime:
    """The same day and time ``months`` calendar months later (the month's last day when it is shorter)."""
    return months_before(moment, -months)


@dataclass(frozen=True)
class Standing:
    """What the account shows: its record in the window and whether it earns the allowance."""

    invoices_paid_on_time: int
    invoices_paid_late_or_failed: int
    window_months: int | None
    good_standing: bool
    # When standing ends by time alone (an on-time invoice leaving the window), while it is good.
    ends_at: datetime | None = None


NO_STANDING = Standing(0, 0, None, False)


def paid_on_time(fact: InvoiceFact) -> bool:
    """Paid by its due date, or (automatic collection, no due date) paid with no failed attempt."""
    if fact.status is not InvoiceStatus.PAID or fact.paid_at is None:
        return False
    if fact.collection_method == "send_invoice" and fact.due_date is not None:
        return fact.paid_at <= fact.due_date
    return not fact.failures and fact.attempt_count <= 1


def _settled_at(fact: InvoiceFact) -> datetime | None:
    if fact.status is InvoiceStatus.PAID:
        return fact.paid_at
    if fact.uncollectible_since is not None:
        return fact.uncollectible_since.at
    return None


def _held_whatever_the_standing(fact: InvoiceFact, policy: NonPaymentPolicy, rule: GoodStanding) -> bool:
    if fact.uncollectible_since is not None and policy.on_uncollectible:
        return True
    if policy.failed_attempts > 0 and fact.failed_attempts >= policy.failed_attempts + rule.extra_failed_attempts:
        return True
    if (
        policy.days_past_due is not None
        and fact.collection_method == "send_invoice"
        and fact.due_date is not None
        and fact.paid_at is not None
    ):
        late = fact.due_date + timedelta(days=policy.days_past_due) + policy.grace_period + rule.extra_grace
        return fact.paid_at > late
    return False


def standing_of(invoices: Iterable[InvoiceFact], policy: NonPaymentPolicy, now: datetime) -> Standing:
    """The account's standing at ``now`` (without a good_standing section: 12 months' counts, never good)."""
    rule = policy.good_standing
    months = rule.months if rule is not None else 12
    since = months_before(now, months)
    on_time: list[datetime] = []
    late_or_failed = 0
    held = False
    for fact in invoices:
        settled = _settled_at(fact)
        if settled is None or not since < settled <= now:
            continue
        if paid_on_time(fact):
            on_time.append(settled)
        else:
            late_or_failed += 1
        if rule is not None and _held_whatever_the_standing(fact, policy, rule):
            held = True
    if rule is None:
        return Standing(len(on_time), late_or_failed, None, False)
    good = not held and len(on_time) >= rule.invoices_paid_on_time > 0
    ends_at = None
    if good:
        # The standing ends when the on-time invoice that keeps the count at the minimum leaves the window.
        keeping = sorted(on_time)[len(on_time) - rule.invoices_paid_on_time]
        ends_at = months_after(keeping, months)
    return Standing(len(on_time), late_or_failed, months, good, ends_at)


def with_allowance(policy: NonPaymentPolicy, standing: Standing) -> NonPaymentPolicy:
    """The non-payment policy as it applies to an account of this standing."""
    rule = policy.good_standing
    if rule is None or not standing.good_standing:
        return policy
    return replace(
        policy,
        failed_attempts=policy.failed_attempts + rule.extra_failed_attempts if policy.failed_attempts else 0,
        grace_period=policy.grace_period + rule.extra_grace,
    )

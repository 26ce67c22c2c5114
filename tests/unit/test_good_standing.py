"""Good standing at its boundaries: the count, the due date to the second, a hold in the window, the window's end."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from domain.account import Account
from domain.evaluation import evaluate, settle
from domain.holds import HoldReason
from domain.invoices import InvoiceFact, InvoiceStatus, merge
from domain.policy import GoodStanding, HoldPolicy, NonPaymentPolicy
from domain.standing import months_after, months_before, paid_on_time, standing_of
from domain.timeline import Change
from tests.unit.factories import T0, at, fact

DAY = 86_400
RULE = GoodStanding(invoices_paid_on_time=3, months=12, extra_failed_attempts=1, extra_grace_hours=0)
POLICY = HoldPolicy(non_payment=NonPaymentPolicy(good_standing=RULE))
NOW = at(300 * DAY)


def paid(
    n: int,
    day: int,
    *,
    failed_first: bool = False,
    method: str = "charge_automatically",
    due_day: int | None = None,
    paid_second: int = 0,
) -> InvoiceFact:
    """Invoice ``in_paid_<n>``, paid on ``day`` (plus ``paid_second``), perhaps after a failed attempt."""
    due = at(due_day * DAY) if due_day is not None else None
    one = {"invoice_id": f"in_paid_{n}", "collection_method": method, "due_date": due}
    events = [fact(f"evt_{n}_fin", day * DAY - 10, **one)]  # type: ignore[arg-type]
    if failed_first:
        events.append(fact(f"evt_{n}_fail", day * DAY - 5, failed_attempt=1, **one))  # type: ignore[arg-type]
    events.append(fact(f"evt_{n}_paid", day * DAY + paid_second, InvoiceStatus.PAID, **one))  # type: ignore[arg-type]
    merged: InvoiceFact | None = None
    for event in events:
        merged = merge(merged, event)
    assert merged is not None
    return merged


def failing(attempts: int = 1) -> InvoiceFact:
    """An open invoice of 20.00 whose payment failed ``attempts`` times, the last an hour before NOW."""
    merged: InvoiceFact | None = None
    for attempt in range(1, attempts + 1):
        merged = merge(
            merged, fact(f"evt_open_{attempt}", 300 * DAY - 3600, invoice_id="in_open", failed_attempt=attempt)
        )
    assert merged is not None
    return merged


def on_time(count: int, first_day: int = 100) -> list[InvoiceFact]:
    return [paid(n, first_day + 30 * n) for n in range(count)]


def test_one_invoice_short_of_the_count_earns_nothing() -> None:
    evaluation = evaluate([*on_time(2), failing(1)], POLICY, NOW)
    assert evaluation.standing.invoices_paid_on_time == 2 and not evaluation.standing.good_standing
    assert evaluation.wanted[HoldReason.NON_PAYMENT] is not None
    assert evaluation.spared is None


def test_exactly_enough_on_time_invoices_earn_one_more_failed_attempt_and_say_so() -> None:
    spared = evaluate([*on_time(3), failing(1)], POLICY, NOW)
    assert spared.standing.good_standing and spared.standing.window_months == 12
    assert spared.wanted[HoldReason.NON_PAYMENT] is None
    assert spared.spared == "not held: 3 invoices paid on time in 12 months; holds at the 2nd failed attempt"
    held = evaluate([*on_time(3), failing(2)], POLICY, NOW)
    assert held.wanted[HoldReason.NON_PAYMENT] is not None and held.spared is None


def test_an_invoice_paid_at_its_due_date_is_on_time_and_one_second_after_is_late() -> None:
    at_due = paid(1, 100, method="send_invoice", due_day=100)
    a_second_late = paid(2, 100, method="send_invoice", due_day=100, paid_second=1)
    assert paid_on_time(at_due)
    assert not paid_on_time(a_second_late)
    standing = standing_of([*on_time(2, first_day=150), a_second_late], POLICY.non_payment, NOW)
    assert (standing.invoices_paid_on_time, standing.invoices_paid_late_or_failed) == (2, 1)
    assert not standing.good_standing
    assert standing_of([*on_time(2, first_day=150), at_due], POLICY.non_payment, NOW).good_standing


def test_collected_automatically_a_failed_attempt_before_the_payment_is_not_on_time() -> None:
    assert not paid_on_time(paid(1, 100, failed_first=True))
    # Stripe's paid body says attempt_count 2 even if the failure's own event never arrived.
    retried = merge(None, fact("evt_paid", 100 * DAY, InvoiceStatus.PAID, invoice_id="in_r", attempt_count=2))
    assert not paid_on_time(retried)


def test_a_hold_inside_the_window_removes_the_standing_and_one_before_it_does_not() -> None:
    # Failed twice: with the allowance (2 attempts) it held whatever the standing; then it was paid.
    held_then_paid = merge(
        paid(9, 200, failed_first=True), fact("evt_9_f2", 200 * DAY - 4, invoice_id="in_paid_9", failed_attempt=2)
    )
    standing = standing_of([*on_time(4), held_then_paid], POLICY.non_payment, NOW)
    assert standing.invoices_paid_on_time == 4 and not standing.good_standing
    assert evaluate([*on_time(4), held_then_paid, failing(1)], POLICY, NOW).wanted[HoldReason.NON_PAYMENT] is not None
    # The same, paid 13 months before NOW: outside the window, it no longer counts.
    long_ago = merge(
        paid(9, -100, failed_first=True), fact("evt_9_f2", -100 * DAY - 4, invoice_id="in_paid_9", failed_attempt=2)
    )
    assert standing_of([*on_time(4), long_ago], POLICY.non_payment, NOW).good_standing


def test_the_standing_ends_when_an_on_time_invoice_leaves_the_window_and_the_tick_comes_back_then() -> None:
    invoices = [*on_time(3), failing(1)]
    spared = evaluate(invoices, POLICY, NOW)
    oldest = min(i.paid_at for i in invoices if i.paid_at is not None)
    ends = months_after(oldest, 12)
    assert spared.next_change_at == ends
    assert evaluate(invoices, POLICY, ends - timedelta(seconds=1)).wanted[HoldReason.NON_PAYMENT] is None
    assert evaluate(invoices, POLICY, ends).wanted[HoldReason.NON_PAYMENT] is not None


def test_extra_grace_hours_delay_the_hold_by_that_much() -> None:
    rule = GoodStanding(invoices_paid_on_time=3, months=12, extra_failed_attempts=0, extra_grace_hours=24)
    policy = HoldPolicy(non_payment=NonPaymentPolicy(good_standing=rule))
    invoices = [*on_time(3), failing(1)]
    first_failure = at(300 * DAY - 3600)
    evaluation = evaluate(invoices, policy, NOW)
    assert evaluation.wanted[HoldReason.NON_PAYMENT] is None
    assert evaluation.next_change_at == first_failure + timedelta(hours=24)
    assert evaluation.spared == (
        "not held: 3 invoices paid on time in 12 months; holds at the 1st failed attempt, with 24 more hours of grace"
    )
    assert evaluate(invoices, policy, first_failure + timedelta(hours=24)).wanted[HoldReason.NON_PAYMENT] is not None


def test_without_the_policy_section_the_account_shows_its_counts_and_never_good_standing() -> None:
    standing = evaluate([*on_time(5), failing(1)], HoldPolicy(), NOW).standing
    assert (standing.invoices_paid_on_time, standing.window_months, standing.good_standing) == (5, None, False)


def test_the_timeline_says_once_that_the_allowance_kept_the_account_from_a_hold() -> None:
    account = Account("acme")
    evaluation = evaluate([*on_time(3), failing(1)], POLICY, NOW)
    first = settle(account, evaluation, Change(NOW, "stripe", "stripe:evt_open_1"))
    again = settle(account, evaluation, Change(NOW + timedelta(minutes=1), "holdfast", "clock"))
    assert [(e.kind, e.detail["note"]) for e in first] == [
        ("hold_deferred", "not held: 3 invoices paid on time in 12 months; holds at the 2nd failed attempt")
    ]
    assert again == [] and not account.holds


def test_calendar_months_end_on_the_last_day_of_a_shorter_month() -> None:
    assert months_before(datetime(2026, 3, 31, 12, tzinfo=UTC), 1) == datetime(2026, 2, 28, 12, tzinfo=UTC)
    assert months_before(datetime(2026, 1, 15, tzinfo=UTC), 13) == datetime(2024, 12, 15, tzinfo=UTC)
    assert months_after(T0, 12) == datetime(2027, 1, 1, tzinfo=UTC)

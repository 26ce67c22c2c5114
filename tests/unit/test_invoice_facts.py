"""Invoice facts merge the same whatever the order, and decide the non-payment hold."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from decimal import Decimal

from domain.holds import HoldReason
from domain.invoices import InvoiceStatus, Occurrence, evaluate_non_payment, merge
from domain.money import format_amount
from domain.policy import NonPaymentPolicy
from tests.unit.factories import at, fact

POLICY = NonPaymentPolicy()


def fold(*facts):  # type: ignore[no-untyped-def]
    merged = None
    for f in facts:
        merged = merge(merged, f)
    return merged


def test_the_newest_event_wins_whatever_the_order_of_delivery() -> None:
    failed = fact("evt_a", 10, failed_attempt=1)
    updated = fact("evt_b", 20, amount="15.00")
    assert fold(failed, updated) == fold(updated, failed)
    assert fold(failed, updated).amount_remaining == Decimal("15.00")
    assert fold(failed, updated).failed_attempts == 1


def test_a_late_payment_failure_never_reopens_a_paid_invoice() -> None:
    paid = fact("evt_paid", 10, InvoiceStatus.PAID)
    late_failure = fact("evt_failed", 50, failed_attempt=2)
    merged = fold(paid, late_failure)
    assert merged.status is InvoiceStatus.PAID
    assert evaluate_non_payment([merged], POLICY, at(100)).hold is None


def test_merging_is_idempotent() -> None:
    failed = fact("evt_a", 10, failed_attempt=1)
    assert fold(failed, failed) == failed


def test_events_of_the_same_second_are_ordered_by_status_then_id() -> None:
    opened = fact("evt_z", 10)
    uncollectible = fact("evt_a", 10, InvoiceStatus.UNCOLLECTIBLE)
    assert fold(opened, uncollectible).status is InvoiceStatus.UNCOLLECTIBLE
    assert fold(uncollectible, opened).status is InvoiceStatus.UNCOLLECTIBLE


def test_the_first_failed_attempt_holds_by_default() -> None:
    verdict = evaluate_non_payment([fact("evt_f", 10, failed_attempt=1)], POLICY, at(10))
    assert verdict.hold is not None
    assert verdict.hold.reason is HoldReason.NON_PAYMENT
    assert verdict.hold.cause == "stripe:evt_f"
    assert verdict.exposure == Decimal("20.00")


def test_an_unpaid_total_below_the_minimum_holds_nothing() -> None:
    tiny = fact("evt_f", 10, failed_attempt=1, amount="0.99")
    assert evaluate_non_payment([tiny], POLICY, at(10)).hold is None
    exactly = fact("evt_g", 10, failed_attempt=1, amount="1.00")
    assert evaluate_non_payment([exactly], POLICY, at(10)).hold is not None


def test_the_minimum_counts_the_total_of_the_failing_invoices() -> None:
    a = fact("evt_a", 10, failed_attempt=1, amount="0.60", invoice_id="in_a")
    b = fact("evt_b", 10, failed_attempt=1, amount="0.60", invoice_id="in_b")
    assert evaluate_non_payment([a], POLICY, at(10)).hold is None
    assert evaluate_non_payment([a, b], POLICY, at(10)).hold is not None


def test_the_failed_attempts_threshold_is_configurable() -> None:
    policy = NonPaymentPolicy(failed_attempts=3)
    two = fold(fact("evt_1", 10, failed_attempt=1), fact("evt_2", 20, failed_attempt=2))
    assert evaluate_non_payment([two], policy, at(30)).hold is None
    three = merge(two, fact("evt_3", 30, failed_attempt=3))
    verdict = evaluate_non_payment([three], policy, at(30))
    assert verdict.hold is not None and verdict.hold.cause == "stripe:evt_3"


def test_an_uncollectible_invoice_holds_unless_the_policy_says_otherwise() -> None:
    written_off = fact("evt_u", 10, InvoiceStatus.UNCOLLECTIBLE)
    assert evaluate_non_payment([written_off], POLICY, at(10)).hold is not None
    lenient = NonPaymentPolicy(on_uncollectible=False)
    assert evaluate_non_payment([written_off], lenient, at(10)).hold is None


def test_an_invoice_sent_for_manual_payment_holds_fifteen_days_past_due() -> None:
    due = at(0)
    invoice = fact("evt_fin", 0, collection_method="send_invoice", due_date=due)
    just_before = evaluate_non_payment([invoice], POLICY, due + timedelta(days=15, seconds=-1))
    assert just_before.hold is None
    assert just_before.next_change_at == due + timedelta(days=15)
    assert evaluate_non_payment([invoice], POLICY, due + timedelta(days=15)).hold is not None


def test_the_grace_period_delays_the_hold() -> None:
    policy = NonPaymentPolicy(grace_period=timedelta(hours=24))
    failed = fact("evt_f", 0, failed_attempt=1)
    early = evaluate_non_payment([failed], policy, at(3600))
    assert early.hold is None and early.next_change_at == at(0) + timedelta(hours=24)
    assert evaluate_non_payment([failed], policy, at(0) + timedelta(hours=24)).hold is not None


def test_a_failure_reported_twice_at_one_attempt_holds_from_the_first_report() -> None:
    """Two invoice.payment_failed events can carry the same attempt_count hours apart (a payment
    tried again by hand; attempt_count 0 counts as 1): the grace period runs from the first."""
    policy = NonPaymentPolicy(grace_period=timedelta(hours=24))
    first = fact("evt_failed", 0, failed_attempt=1)
    again = fact("evt_failed_again", 19 * 3600, failed_attempt=1)
    held_at = at(0) + timedelta(hours=24)
    for merged in (fold(first, again), fold(again, first)):
        assert merged.failures == {1: Occurrence(at(0), "evt_failed")}
        before = evaluate_non_payment([merged], policy, held_at - timedelta(seconds=1))
        assert before.hold is None and before.next_change_at == held_at
        verdict = evaluate_non_payment([merged], policy, held_at)
        assert verdict.hold is not None and verdict.hold.cause == "stripe:evt_failed"


def test_two_reports_of_one_attempt_in_the_same_second_keep_the_lower_event_id() -> None:
    a, b = fact("evt_a", 10, failed_attempt=1), fact("evt_b", 10, failed_attempt=1)
    assert fold(a, b).failures == fold(b, a).failures == {1: Occurrence(at(10), "evt_a")}


def test_the_hold_stays_while_a_second_invoice_still_fails() -> None:
    first = fold(fact("evt_1", 10, failed_attempt=1, invoice_id="in_1"), fact("evt_1p", 30, InvoiceStatus.PAID))
    second = fact("evt_2", 20, failed_attempt=1, invoice_id="in_2")
    verdict = evaluate_non_payment([first, second], POLICY, at(40))
    assert verdict.hold is not None and verdict.hold.cause == "stripe:evt_2"


def test_voided_and_paid_invoices_count_for_nothing() -> None:
    voided = fold(fact("evt_1", 10, failed_attempt=1), fact("evt_v", 20, InvoiceStatus.VOID))
    verdict = evaluate_non_payment([voided], POLICY, at(30))
    assert verdict.hold is None and verdict.exposure == Decimal("0")


def test_the_note_names_each_qualifying_invoice_its_unpaid_amount_and_why_earliest_first() -> None:
    policy = NonPaymentPolicy(days_past_due=3)
    failed = fact("evt_f", 10, failed_attempt=2, invoice_id="in_b", amount="20.00")
    written_off = fact("evt_u", 5, InvoiceStatus.UNCOLLECTIBLE, invoice_id="in_a", amount="7.5")
    manual = fact("evt_m", 1, collection_method="send_invoice", due_date=at(0), invoice_id="in_c", amount="120")
    verdict = evaluate_non_payment([failed, written_off, manual], policy, at(0) + timedelta(days=3))
    assert verdict.hold is not None and verdict.hold.cause == "stripe:evt_u"
    assert verdict.hold.note == (
        "invoice in_a (USD 7.50 unpaid): marked uncollectible; "
        "invoice in_b (USD 20.00 unpaid): 2 failed payment attempt(s); "
        "invoice in_c (USD 120.00 unpaid): 3 days past due"
    )


def test_the_note_writes_each_amount_in_its_own_currency() -> None:
    yen = replace(fact("evt_y", 0, failed_attempt=1, amount="5000"), currency="jpy")
    verdict = evaluate_non_payment([yen], POLICY, at(0))
    assert verdict.hold is not None
    assert verdict.hold.note == "invoice in_1 (JPY 5000 unpaid): 1 failed payment attempt(s)"


def test_an_invoice_written_off_twice_holds_from_the_first_time() -> None:
    policy = NonPaymentPolicy(grace_period=timedelta(hours=1))
    first = fact("evt_u1", 0, InvoiceStatus.UNCOLLECTIBLE)
    again = fact("evt_u2", 1800, InvoiceStatus.UNCOLLECTIBLE)  # an update of the written-off invoice
    for merged in (fold(first, again), fold(again, first)):
        assert merged.uncollectible_since == Occurrence(at(0), "evt_u1")
        verdict = evaluate_non_payment([merged], policy, at(3600))
        assert verdict.hold is not None and verdict.hold.cause == "stripe:evt_u1"


def test_an_uncollectible_snapshot_without_its_first_moment_counts_from_its_own_event() -> None:
    bare = replace(fact("evt_u", 100, InvoiceStatus.UNCOLLECTIBLE), uncollectible_since=None)
    policy = NonPaymentPolicy(grace_period=timedelta(seconds=50))
    assert evaluate_non_payment([bare], policy, at(149)).next_change_at == at(150)
    verdict = evaluate_non_payment([bare], policy, at(150))
    assert verdict.hold is not None and verdict.hold.cause == "stripe:evt_u"


def test_with_nothing_unpaid_the_exposure_is_written_zero() -> None:
    paid = fact("evt_p", 0, InvoiceStatus.PAID)
    assert format_amount(evaluate_non_payment([paid], POLICY, at(0)).exposure, "usd") == "0.00"
    assert format_amount(evaluate_non_payment([], POLICY, at(0)).exposure, "usd") == "0.00"

"""Evaluating an account: the holds its facts call for now, and settling them onto the account.

``evaluate`` decides each source-owned reason from the facts (invoices, the CRM's credit review,
disputes) at a time the caller passes; ``settle`` places and releases holds to match. Finance's
manual hold is no source's: no evaluation ever places or lifts it.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from decimal import Decimal

from domain.account import Account
from domain.disputes import DisputeFact
from domain.evaluation import evaluate, settle
from domain.holds import HoldReason
from domain.invoices import InvoiceStatus, merge
from domain.policy import DisputePolicy, HoldPolicy
from domain.timeline import Change
from tests.unit.factories import at, fact

POLICY = HoldPolicy()
SOURCE_REASONS = {HoldReason.NON_PAYMENT, HoldReason.CREDIT_REVIEW, HoldReason.DISPUTE}


def open_dispute(event_id: str = "evt_dp", created: int = 0) -> DisputeFact:
    return DisputeFact(
        dispute_id="dp_1",
        customer_id="cus_1",
        charge_id="ch_1",
        status="needs_response",
        amount=Decimal("49.00"),
        currency="usd",
        event_id=event_id,
        event_created=at(created),
        opened_event_id=event_id,
    )


def change(seconds: int) -> Change:
    return Change(at(seconds), "worker", f"test:{seconds}")


def test_an_account_without_facts_calls_for_no_hold_and_time_alone_changes_nothing() -> None:
    evaluation = evaluate([], POLICY, at(0))
    assert dict(evaluation.wanted) == dict.fromkeys(SOURCE_REASONS)
    assert evaluation.next_change_at is None
    assert evaluation.invoice_exposure == Decimal("0")


def test_the_evaluation_decides_every_source_owned_reason_and_never_the_manual_one() -> None:
    evaluation = evaluate(
        [fact("evt_f", 0, failed_attempt=1)],
        POLICY,
        at(10),
        credit_review_cause="dynamics:op",
        disputes=[open_dispute()],
    )
    assert set(evaluation.wanted) == SOURCE_REASONS
    assert HoldReason.MANUAL not in evaluation.wanted


def test_each_source_calls_for_its_own_hold_with_the_event_that_caused_it() -> None:
    evaluation = evaluate(
        [fact("evt_failed", 5, failed_attempt=1)],
        POLICY,
        at(10),
        credit_review_cause="dynamics:op-42",
        disputes=[open_dispute("evt_dispute")],
    )
    causes = {reason: wanted.cause for reason, wanted in evaluation.wanted.items() if wanted is not None}
    assert causes == {
        HoldReason.NON_PAYMENT: "stripe:evt_failed",
        HoldReason.CREDIT_REVIEW: "dynamics:op-42",
        HoldReason.DISPUTE: "stripe:evt_dispute",
    }
    assert all(w is not None and w.reason is r for r, w in evaluation.wanted.items())


def test_a_credit_review_is_wanted_exactly_while_the_crm_says_creditonhold() -> None:
    reviewed = evaluate([], POLICY, at(0), credit_review_cause="dynamics:op-1").wanted[HoldReason.CREDIT_REVIEW]
    assert reviewed is not None and reviewed.note == "creditonhold set in the CRM"
    assert evaluate([], POLICY, at(0), credit_review_cause=None).wanted[HoldReason.CREDIT_REVIEW] is None


def test_time_alone_brings_the_hold_of_an_invoice_past_due_and_the_evaluation_says_when() -> None:
    """The clock's tick evaluates again at ``next_change_at``: the caller passes the time, nothing reads a clock."""
    overdue = fact("evt_sent", 0, collection_method="send_invoice", due_date=at(0), amount="30.00")
    before = evaluate([overdue], POLICY, at(60))
    assert before.wanted[HoldReason.NON_PAYMENT] is None
    assert before.next_change_at == at(0) + timedelta(days=15)
    just_before = evaluate([overdue], POLICY, before.next_change_at - timedelta(seconds=1))
    assert just_before.wanted[HoldReason.NON_PAYMENT] is None
    then = evaluate([overdue], POLICY, before.next_change_at)
    held = then.wanted[HoldReason.NON_PAYMENT]
    assert held is not None and held.cause == "stripe:evt_sent" and "15 days past due" in (held.note or "")
    assert then.next_change_at is None


def test_the_exposure_counts_every_unpaid_invoice_whether_or_not_it_holds() -> None:
    invoices = [
        fact("evt_a", 0, invoice_id="in_a", amount="20.00"),  # open, nothing failed: no hold
        fact("evt_b", 0, invoice_id="in_b", amount="15.50", failed_attempt=1),
        fact("evt_c", 0, InvoiceStatus.PAID, invoice_id="in_c"),
        fact("evt_d", 0, InvoiceStatus.VOID, invoice_id="in_d", amount="99.00"),
    ]
    evaluation = evaluate(invoices, POLICY, at(10))
    assert evaluation.invoice_exposure == Decimal("35.50")
    assert evaluation.wanted[HoldReason.NON_PAYMENT] is not None


def test_settling_places_and_releases_each_reason_to_match_and_leaves_a_manual_hold_alone() -> None:
    account = Account("acme")
    account.place_manual_hold("call finance", change(0))
    settle(account, evaluate([fact("evt_f", 0, failed_attempt=1)], POLICY, at(1)), change(1))
    assert set(account.holds) == {HoldReason.MANUAL, HoldReason.NON_PAYMENT}

    entries = settle(account, evaluate([], POLICY, at(2), credit_review_cause="dynamics:op"), change(2))
    assert sorted((e.kind, e.detail["reason"]) for e in entries) == [
        ("hold_placed", "credit_review"),
        ("hold_released", "non_payment"),
    ]
    assert set(account.holds) == {HoldReason.MANUAL, HoldReason.CREDIT_REVIEW}
    [lifted] = settle(account, evaluate([], POLICY, at(3)), change(3))
    assert (lifted.kind, lifted.detail["reason"]) == ("hold_released", "credit_review")
    assert set(account.holds) == {HoldReason.MANUAL}


def test_settling_the_same_evaluation_twice_writes_nothing_the_second_time() -> None:
    account = Account("acme")
    evaluation = evaluate(
        [fact("evt_f", 0, failed_attempt=1)],
        POLICY,
        at(1),
        credit_review_cause="dynamics:op",
        disputes=[open_dispute()],
    )
    assert len(settle(account, evaluation, change(1))) == 3
    holds = dict(account.holds)
    assert settle(account, evaluation, change(2)) == []
    assert account.holds == holds


def test_paying_the_invoice_releases_the_non_payment_hold_at_the_next_evaluation() -> None:
    account = Account("acme")
    failed = fact("evt_failed", 10, failed_attempt=1)
    settle(account, evaluate([failed], POLICY, at(11)), change(11))
    assert HoldReason.NON_PAYMENT in account.holds

    paid = merge(failed, fact("evt_paid", 20, InvoiceStatus.PAID))
    [released] = settle(account, evaluate([paid], POLICY, at(21)), change(21))
    assert (released.kind, released.detail["reason"], released.cause) == ("hold_released", "non_payment", "test:21")
    assert not account.holds


def test_disputes_are_judged_by_the_policys_dispute_section() -> None:
    lost = replace(open_dispute("evt_open"), status="lost", event_id="evt_lost", event_created=at(5))
    assert evaluate([], POLICY, at(10), disputes=[lost]).wanted[HoldReason.DISPUTE] is not None
    lenient = HoldPolicy(dispute=DisputePolicy(release_on=frozenset({"won", "lost"})))
    assert evaluate([], lenient, at(10), disputes=[lost]).wanted[HoldReason.DISPUTE] is None

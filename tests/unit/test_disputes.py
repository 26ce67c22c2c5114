"""Disputes: open ones hold, won ones release, lost ones hold until finance lifts them."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal

from domain.disputes import DisputeFact, evaluate_disputes, merge_dispute
from domain.holds import HoldReason
from domain.policy import DisputePolicy
from tests.unit.factories import at

POLICY = DisputePolicy()


def dispute(event_id: str, created: int, status: str) -> DisputeFact:
    return DisputeFact(
        dispute_id="dp_1",
        customer_id="cus_1",
        charge_id="ch_1",
        status=status,
        amount=Decimal("49.00"),
        currency="usd",
        event_id=event_id,
        event_created=at(created),
        opened_event_id=event_id,
    )


def test_an_open_dispute_holds_with_the_event_that_opened_it_as_cause() -> None:
    wanted = evaluate_disputes([dispute("evt_open", 0, "needs_response")], POLICY)
    assert wanted is not None and wanted.reason is HoldReason.DISPUTE and wanted.cause == "stripe:evt_open"


def test_a_won_dispute_releases_the_hold() -> None:
    won = merge_dispute(dispute("evt_open", 0, "needs_response"), dispute("evt_won", 10, "won"))
    assert evaluate_disputes([won], POLICY) is None


def test_a_lost_dispute_holds_until_finance_lifts_it() -> None:
    lost = merge_dispute(dispute("evt_open", 0, "needs_response"), dispute("evt_lost", 10, "lost"))
    assert evaluate_disputes([lost], POLICY) is not None
    assert evaluate_disputes([replace(lost, lifted_at=at(20))], POLICY) is None


def test_the_policy_can_release_lost_disputes_too() -> None:
    lost = dispute("evt_lost", 10, "lost")
    assert evaluate_disputes([lost], DisputePolicy(release_on=frozenset({"won", "lost"}))) is None


def test_a_closed_dispute_stays_closed_whatever_arrives_late() -> None:
    opened, won = dispute("evt_open", 0, "needs_response"), dispute("evt_won", 10, "won")
    late_update = dispute("evt_upd", 20, "under_review")
    for order in ([opened, won, late_update], [late_update, won, opened], [won, late_update, opened]):
        merged = None
        for d in order:
            merged = merge_dispute(merged, d)
        assert merged is not None and merged.status == "won" and merged.opened_event_id == "evt_open"

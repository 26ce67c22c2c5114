"""Disputes: open ones hold, won ones release, lost ones hold until finance lifts them."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from domain.disputes import DISPUTE_STATUSES, DisputeFact, DisputeSeen, evaluate_disputes, merge_dispute
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


# Current API versions: prevented, appeals after a loss, and statuses Stripe adds later.


def history(*steps: tuple[str, int, str]) -> DisputeFact:
    merged = None
    for event_id, created, status in steps:
        merged = merge_dispute(merged, dispute(event_id, created, status))
    assert merged is not None
    return merged


def test_a_prevented_or_warning_closed_dispute_releases_like_a_won_one() -> None:
    for ending in ("won", "prevented", "warning_closed"):
        closed = history(("evt_open", 0, "warning_needs_response"), ("evt_end", 10, ending))
        assert evaluate_disputes([closed], POLICY) is None, ending


def test_an_appeal_after_a_loss_keeps_the_hold_until_the_appeal_is_won() -> None:
    appealed = history(
        ("evt_open", 0, "needs_response"), ("evt_lost", 10, "lost"), ("evt_app", 20, "appeal_needs_response")
    )
    assert appealed.status == "appeal_needs_response"
    wanted = evaluate_disputes([appealed], POLICY)
    assert wanted is not None and wanted.cause == "stripe:evt_open"
    under_review = merge_dispute(appealed, dispute("evt_rev", 30, "appeal_under_review"))
    assert evaluate_disputes([under_review], POLICY) is not None
    assert evaluate_disputes([merge_dispute(under_review, dispute("evt_won", 40, "won"))], POLICY) is None
    lost_again = merge_dispute(under_review, dispute("evt_lost2", 40, "lost"))
    assert lost_again.status == "lost" and evaluate_disputes([lost_again], POLICY) is not None


def test_an_appeal_holds_only_where_a_lost_dispute_would() -> None:
    appealed = history(("evt_lost", 10, "lost"), ("evt_app", 20, "appeal_under_review"))
    assert evaluate_disputes([appealed], DisputePolicy(release_on=frozenset({"won", "lost"}))) is None


def test_finance_may_lift_a_lost_appealed_or_unknown_dispute_but_not_one_under_way() -> None:
    assert not dispute("e", 0, "needs_response").liftable
    assert not dispute("e", 0, "warning_under_review").liftable
    for status in ("lost", "appeal_needs_response", "appeal_under_review", "escalated_to_arbitration"):
        assert dispute("e", 0, status).liftable, status


def test_a_status_stripe_adds_later_holds_like_an_open_dispute_and_says_so() -> None:
    unknown = dispute("evt_new", 0, "escalated_to_arbitration")
    assert not unknown.known
    wanted = evaluate_disputes([unknown], POLICY)
    assert wanted is not None and "escalated_to_arbitration" in wanted.note and "does not know" in wanted.note
    assert evaluate_disputes([replace(unknown, lifted_at=at(5))], POLICY) is None
    assert evaluate_disputes([merge_dispute(unknown, dispute("evt_won", 10, "won"))], POLICY) is None


def test_every_status_of_the_pinned_api_version_is_known() -> None:
    import inspect
    import typing

    import stripe

    literal = typing.get_args(inspect.get_annotations(stripe.Dispute)["status"])[0]
    assert set(typing.get_args(literal)) == set(DISPUTE_STATUSES)


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(0, 40), st.sampled_from([*sorted(DISPUTE_STATUSES), "escalated_to_arbitration"])),
        min_size=1,
        max_size=6,
    ),
    st.data(),
)
def test_any_order_of_a_disputes_events_merges_to_the_same_fact(
    steps: list[tuple[int, str]], data: st.DataObject
) -> None:
    facts = [dispute(f"evt_{i}", created, status) for i, (created, status) in enumerate(steps)]
    shuffled = data.draw(st.permutations(facts + data.draw(st.lists(st.sampled_from(facts), max_size=3))))
    in_order, any_order = None, None
    for fact in facts:
        in_order = merge_dispute(in_order, fact)
    for fact in shuffled:
        any_order = merge_dispute(any_order, fact)
    assert any_order == in_order


def test_the_hold_names_each_holding_dispute_with_its_amount_earliest_opened_first() -> None:
    later = replace(dispute("evt_b", 20, "needs_response"), dispute_id="dp_b", amount=Decimal("5000"), currency="jpy")
    earlier = replace(dispute("evt_a", 10, "escalated_to_arbitration"), dispute_id="dp_a")
    wanted = evaluate_disputes([later, earlier], POLICY)
    assert wanted is not None and wanted.cause == "stripe:evt_a"
    assert wanted.note == (
        "dispute dp_a (USD 49.00): escalated_to_arbitration (a status Holdfast does not know: held as open); "
        "dispute dp_b (JPY 5000): needs_response"
    )


def test_a_dispute_lifted_by_finance_stays_lifted_whatever_arrives_after() -> None:
    lost = history(("evt_open", 0, "needs_response"), ("evt_lost", 10, "lost"))
    lifted = replace(lost, lifted_at=at(20))
    late = dispute("evt_late", 30, "lost")
    for merged in (merge_dispute(lifted, late), merge_dispute(late, lifted)):
        assert merged.lifted_at == at(20)
        assert evaluate_disputes([merged], POLICY) is None
    assert merge_dispute(replace(lost, lifted_at=at(40)), lifted).lifted_at == at(20)  # the first lift


def test_what_an_event_says_of_a_dispute_becomes_the_customers_fact_opened_by_that_event() -> None:
    seen = DisputeSeen("dp_1", "ch_1", "needs_response", Decimal("49.00"), "usd", "evt_open", at(5))
    assert seen.of_customer("cus_1") == DisputeFact(
        dispute_id="dp_1",
        customer_id="cus_1",
        charge_id="ch_1",
        status="needs_response",
        amount=Decimal("49.00"),
        currency="usd",
        event_id="evt_open",
        event_created=at(5),
        opened_event_id="evt_open",
        opened_at=at(5),
    )

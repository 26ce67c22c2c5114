"""Holds: one record per reason, owned by the source that sets it, doing what the policy says of its reason.

A hold keeps when and why it was first placed, however many later events call for it again;
releasing one reason never touches another. By default (PRODUCT.md) every hold parks new
provisioning, and every one but a credit review also blocks changes.
"""

from __future__ import annotations

import itertools

import pytest

from domain.account import Account
from domain.holds import Hold, HoldReason, WantedHold
from domain.policy import HoldPolicy, ReasonEffects
from domain.timeline import Change
from tests.unit.factories import at

POLICY = HoldPolicy()
SOURCE_REASONS = [HoldReason.NON_PAYMENT, HoldReason.CREDIT_REVIEW, HoldReason.DISPUTE]


def change(seconds: int, cause: str = "test") -> Change:
    return Change(at(seconds), "worker", cause)


def test_the_reasons_are_the_names_the_api_the_database_and_the_policy_file_use() -> None:
    assert sorted(str(r) for r in HoldReason) == ["credit_review", "dispute", "manual", "non_payment"]
    assert all(HoldReason(str(r)) is r for r in HoldReason)


@pytest.mark.parametrize(
    ("reason", "parks", "blocks"),
    [
        (HoldReason.CREDIT_REVIEW, True, False),  # finance reviews: orders are accepted and wait
        (HoldReason.NON_PAYMENT, True, True),
        (HoldReason.DISPUTE, True, True),
        (HoldReason.MANUAL, True, True),
    ],
)
def test_by_default_every_hold_parks_provisioning_and_all_but_a_credit_review_block_changes(
    reason: HoldReason, parks: bool, blocks: bool
) -> None:
    account = Account("acme", holds={reason: Hold(reason, at(0), "test")})
    effects = account.effects(POLICY, at(1))
    assert (effects.parks_provisioning, effects.blocks_changes) == (parks, blocks)
    assert account.shows_hold(POLICY, at(1))


def test_a_policy_that_names_one_reason_keeps_the_defaults_of_the_others() -> None:
    policy = HoldPolicy(effects={HoldReason.CREDIT_REVIEW: ReasonEffects(parks_provisioning=True, blocks_changes=True)})
    assert policy.effects_of(HoldReason.CREDIT_REVIEW).blocks_changes
    assert policy.effects_of(HoldReason.MANUAL) == POLICY.effects_of(HoldReason.MANUAL)


def test_a_hold_whose_reason_does_nothing_is_recorded_but_not_shown_in_the_crm() -> None:
    policy = HoldPolicy(effects={HoldReason.MANUAL: ReasonEffects(parks_provisioning=False, blocks_changes=False)})
    account = Account("acme")
    account.place_manual_hold("watch only", change(0))
    effects = account.effects(policy, at(1))
    assert effects.on_hold and not effects.parks_provisioning and not effects.blocks_changes
    assert not account.shows_hold(policy, at(1))


def test_the_effects_list_each_reason_that_takes_effect() -> None:
    account = Account("acme", holds={r: Hold(r, at(0), "test") for r in HoldReason})
    effects = account.effects(POLICY, at(1))
    assert set(effects.parking) == set(HoldReason)
    assert set(effects.blocking) == {HoldReason.NON_PAYMENT, HoldReason.DISPUTE, HoldReason.MANUAL}


@pytest.mark.parametrize("reason", SOURCE_REASONS)
def test_a_hold_keeps_when_and_why_it_was_first_placed_while_later_events_call_for_it_again(
    reason: HoldReason,
) -> None:
    account = Account("acme")
    account.settle_hold(reason, WantedHold(reason, "stripe:evt_first", "first"), change(0))
    assert account.settle_hold(reason, WantedHold(reason, "stripe:evt_later", "later"), change(60)) == []
    assert account.holds[reason] == Hold(reason, at(0), "stripe:evt_first", "first", placed_by="worker")


def test_a_hold_released_and_placed_again_is_a_new_hold_from_its_new_cause() -> None:
    account = Account("acme")
    reason = HoldReason.NON_PAYMENT
    account.settle_hold(reason, WantedHold(reason, "stripe:evt_1"), change(0))
    [released] = account.settle_hold(reason, None, change(30))
    assert released.detail["since"] == at(0).isoformat()
    account.settle_hold(reason, WantedHold(reason, "stripe:evt_2"), change(60))
    assert account.holds[reason] == Hold(reason, at(60), "stripe:evt_2", placed_by="worker")


@pytest.mark.parametrize(("released", "kept"), list(itertools.permutations(SOURCE_REASONS, 2)))
def test_releasing_one_reason_never_touches_another(released: HoldReason, kept: HoldReason) -> None:
    account = Account("acme")
    account.settle_hold(kept, WantedHold(kept, "cause:kept"), change(0))
    account.settle_hold(released, WantedHold(released, "cause:released"), change(1))
    account.settle_hold(released, None, change(2))
    assert account.holds == {kept: Hold(kept, at(0), "cause:kept", placed_by="worker")}


def test_finance_lifting_its_manual_hold_leaves_every_source_hold() -> None:
    account = Account("acme")
    for reason in SOURCE_REASONS:
        account.settle_hold(reason, WantedHold(reason, f"cause:{reason}"), change(0))
    account.place_manual_hold(None, change(1))
    account.lift_manual_hold("paid by phone", change(2))
    assert set(account.holds) == set(SOURCE_REASONS)

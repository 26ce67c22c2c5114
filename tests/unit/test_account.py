"""The account aggregate: manual holds, source-owned holds and what they do."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest

from domain.account import Account, Effects, HoldAlreadyPlaced, NoSuchHold
from domain.holds import Hold, HoldReason, WantedHold
from domain.policy import HoldPolicy
from domain.timeline import Change
from tests.unit.factories import at

POLICY = HoldPolicy()
API = Change(at(0), "api", "api")


def test_a_manual_hold_blocks_changes_and_parks_provisioning() -> None:
    account = Account("acme")
    entries = account.place_manual_hold("call finance", API)
    assert [e.kind for e in entries] == ["hold_placed"]
    effects = account.effects(POLICY, at(1))
    assert effects.on_hold and effects.blocks_changes and effects.parks_provisioning
    assert account.holds[HoldReason.MANUAL].note == "call finance"


def test_a_second_manual_hold_is_refused_and_lifting_none_is_refused() -> None:
    account = Account("acme")
    account.place_manual_hold(None, API)
    with pytest.raises(HoldAlreadyPlaced):
        account.place_manual_hold(None, API)
    account.lift_manual_hold(None, API)
    with pytest.raises(NoSuchHold):
        account.lift_manual_hold(None, API)


def test_a_credit_review_parks_provisioning_but_accepts_orders() -> None:
    account = Account("acme")
    account.settle_hold(HoldReason.CREDIT_REVIEW, WantedHold(HoldReason.CREDIT_REVIEW, "dynamics:op1"), API)
    effects = account.effects(POLICY, at(1))
    assert effects.parks_provisioning and not effects.blocks_changes


def test_settling_a_source_hold_twice_changes_nothing_the_second_time() -> None:
    account = Account("acme")
    wanted = WantedHold(HoldReason.NON_PAYMENT, "stripe:evt_1")
    assert len(account.settle_hold(HoldReason.NON_PAYMENT, wanted, API)) == 1
    assert account.settle_hold(HoldReason.NON_PAYMENT, wanted, API) == []
    assert [e.kind for e in account.settle_hold(HoldReason.NON_PAYMENT, None, API)] == ["hold_released"]
    assert account.settle_hold(HoldReason.NON_PAYMENT, None, API) == []


def test_releasing_non_payment_never_lifts_a_manual_hold() -> None:
    account = Account("acme")
    account.place_manual_hold(None, API)
    account.settle_hold(HoldReason.NON_PAYMENT, WantedHold(HoldReason.NON_PAYMENT, "stripe:evt_1"), API)
    account.settle_hold(HoldReason.NON_PAYMENT, None, API)
    assert set(account.holds) == {HoldReason.MANUAL}


def test_paused_enforcement_keeps_holds_visible_but_without_effect_until_it_ends() -> None:
    account = Account("acme")
    account.place_manual_hold(None, API)
    account.pause_enforcement(at(0) + timedelta(days=1), "key customer", API)
    paused = account.effects(POLICY, at(60))
    assert paused.on_hold and paused.paused and not paused.blocks_changes and not paused.parks_provisioning
    expired = account.effects(POLICY, at(0) + timedelta(days=1))
    assert expired.blocks_changes


def test_only_guid_ids_can_be_crm_accounts() -> None:
    from domain.crm import is_crm_account_id

    assert is_crm_account_id("53c52f26-a89d-ef11-8a69-000d3a30b0c1")
    assert is_crm_account_id("{53C52F26-A89D-EF11-8A69-000D3A30B0C1}")
    assert not is_crm_account_id("acme")
    assert not is_crm_account_id("53c52f26-a89d-ef11-8a69-000d3a30b0c1/../x")


@pytest.mark.parametrize(
    "spelling",
    [
        "53c52f26-a89d-ef11-8a69-000d3a30b0c1",
        "53C52F26-A89D-EF11-8A69-000D3A30B0C1",
        "{53c52f26-a89d-ef11-8a69-000d3a30b0c1}",
        "{53C52F26-a89d-EF11-8a69-000D3A30B0C1}",
    ],
)
def test_a_guid_account_id_has_one_spelling_however_it_is_written(spelling: str) -> None:
    from domain.account import canonical_account_id

    assert canonical_account_id(spelling) == "53c52f26-a89d-ef11-8a69-000d3a30b0c1"


@pytest.mark.parametrize(
    "other",
    [
        "Acme",
        "ACME-1",
        "{not-a-guid}",
        "{53c52f26-a89d-ef11-8a69-000d3a30b0c1",  # one brace is not a braced GUID
        "53C52F26-A89D-EF11-8A69-000D3A30B0C1}",
        "53C52F26A89DEF118A69000D3A30B0C1",  # no hyphens: not how Dataverse writes a GUID
    ],
)
def test_any_other_account_id_stays_as_given(other: str) -> None:
    from domain.account import canonical_account_id

    assert canonical_account_id(other) == other


def test_refused_hold_commands_say_which_account_and_why() -> None:
    account = Account("acme")
    with pytest.raises(NoSuchHold) as none:
        account.lift_manual_hold(None, API)
    assert str(none.value) == "Account acme has no manual hold to lift."
    account.place_manual_hold(None, API)
    with pytest.raises(HoldAlreadyPlaced) as twice:
        account.place_manual_hold(None, API)
    assert str(twice.value) == "Account acme already has a manual hold."


def test_a_manual_hold_keeps_the_call_that_placed_it_as_its_cause_and_the_person_who_did() -> None:
    account = Account("acme")
    account.place_manual_hold("fraud check", Change(at(0), "user:fiona", "api:req-9"))
    assert account.holds[HoldReason.MANUAL] == Hold(HoldReason.MANUAL, at(0), "api:req-9", "fraud check", "user:fiona")


def test_a_pause_keeps_who_paused_until_it_ends() -> None:
    account = Account("acme")
    account.pause_enforcement(at(3600), "promised", Change(at(0), "user:fiona", "api"))
    assert account.paused_by == "user:fiona"
    account.end_pause(Change(at(60), "user:olu", "api"), note="broke it")
    assert account.paused_by is None


def test_effects_name_what_blocks_and_what_parks_and_nothing_while_paused() -> None:
    account = Account("acme")
    account.settle_hold(HoldReason.CREDIT_REVIEW, WantedHold(HoldReason.CREDIT_REVIEW, "dynamics:op"), API)
    account.place_manual_hold(None, API)
    assert account.effects(POLICY, at(1)) == Effects(
        on_hold=True,
        paused=False,
        blocking=(HoldReason.MANUAL,),
        parking=(HoldReason.CREDIT_REVIEW, HoldReason.MANUAL),
    )
    account.pause_enforcement(at(100), None, API)
    assert account.effects(POLICY, at(99)) == Effects(on_hold=True, paused=True, blocking=(), parking=())


def test_a_pause_keeps_its_note_until_it_ends_and_ending_it_by_hand_is_not_expiry() -> None:
    account = Account("acme")
    account.pause_enforcement(at(0) + timedelta(days=1), "key customer", API)
    assert account.pause_note == "key customer"
    [resumed] = account.end_pause(Change(at(60), "api", "api:req-2"))
    assert resumed.detail == {"expired": False}
    assert (account.enforcement_paused_until, account.pause_note) == (None, None)


def test_the_crm_shows_no_hold_while_enforcement_is_paused_and_shows_it_again_when_the_pause_ends() -> None:
    account = Account("acme")
    account.place_manual_hold(None, API)
    account.pause_enforcement(at(100), None, API)
    assert not account.shows_hold(POLICY, at(50))
    assert account.shows_hold(POLICY, at(100))


def test_an_account_without_a_currency_adopts_one_and_says_where_it_came_from() -> None:
    account = Account("acme")
    stripe = Change(at(1), "stripe", "stripe:evt_1")
    [entry] = account.adopt_currency("eur", "stripe invoice in_1", stripe)
    assert account.currency == "eur"
    assert (entry.kind, entry.actor, entry.cause) == ("account_updated", "stripe", "stripe:evt_1")
    assert entry.detail == {"currency": "eur", "taken_from": "stripe invoice in_1"}
    assert account.adopt_currency("usd", "stripe invoice in_2", stripe) == []
    assert account.currency == "eur"


def test_no_currency_is_adopted_from_nothing_or_that_the_credit_limit_does_not_fit() -> None:
    account = Account("acme", credit_limit=Decimal("100.50"))
    assert account.adopt_currency(None, "stripe customer cus_1", API) == []
    assert account.adopt_currency("jpy", "stripe invoice in_1", API) == []
    assert account.currency is None
    assert [e.detail["currency"] for e in account.adopt_currency("usd", "stripe invoice in_1", API)] == ["usd"]

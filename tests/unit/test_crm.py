"""Account changes from the CRM: what an update changes, which values are newer, and echoes of Holdfast's writes.

Update bodies carry only the columns that changed, so a change applies column by column, and
only where it is at least as new as the value applied before. ``creditonhold`` is finance's
credit review unless it is the echo of Holdfast's own write: written by Holdfast's application
user *and* equal to the value Holdfast last wrote. (``modifiedon`` as far as the time received:
test_crm_clock_skew.py.)
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from domain.account import Account
from domain.crm import (
    ACCOUNT_NUMBER,
    CREDIT_LIMIT,
    CREDIT_ON_HOLD,
    NAME,
    STRIPE_CUSTOMER_ID,
    CrmAccountChange,
    CrmAccountState,
    CrmApplied,
    apply_account_change,
    crm_row_id,
)
from domain.timeline import Change

ACCOUNT_ID = "53c52f26-a89d-ef11-8a69-000d3a30b0c1"
T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def minutes(n: int) -> datetime:
    return T0 + timedelta(minutes=n)


def crm_change(
    values: Mapping[str, Any],
    modified_at: datetime = T0,
    *,
    operation: str = "op-1",
    by_holdfast: bool = False,
    message: str = "Update",
) -> CrmAccountChange:
    return CrmAccountChange(ACCOUNT_ID, message, values, modified_at, operation, by_holdfast)


def apply(
    account: Account, crm: CrmAccountState, values: Mapping[str, Any], modified_at: datetime = T0, **kw: Any
) -> CrmApplied:
    change = crm_change(values, modified_at, **kw)
    return apply_account_change(account, crm, change, Change(modified_at, "dynamics", change.cause))


# --- what an update changes -----------------------------------------------------------------


def test_an_update_changes_only_the_columns_it_carries_and_says_so_on_the_timeline() -> None:
    account = Account(ACCOUNT_ID, name="Acme", account_number="A-1", credit_limit=Decimal("500"))
    applied = apply(account, CrmAccountState(), {NAME: "Acme Ltd"}, operation="op-7")
    assert (account.name, account.account_number, account.credit_limit) == ("Acme Ltd", "A-1", Decimal("500"))
    [entry] = applied.entries
    assert (entry.kind, dict(entry.detail)) == ("account_updated", {"name": "Acme Ltd"})
    assert (entry.actor, entry.cause, entry.at) == ("dynamics", "dynamics:op-7", T0)


def test_a_column_sent_with_the_value_it_already_has_writes_nothing_on_the_timeline() -> None:
    account = Account(ACCOUNT_ID, name="Acme", account_number="A-1")
    applied = apply(account, CrmAccountState(), {NAME: "Acme", ACCOUNT_NUMBER: "A-2"})
    assert [dict(e.detail) for e in applied.entries] == [{"account_number": "A-2"}]


def test_a_credit_limit_is_an_exact_decimal_and_an_empty_one_means_unlimited() -> None:
    account = Account(ACCOUNT_ID, currency="usd")
    crm = CrmAccountState()
    [raised] = apply(account, crm, {CREDIT_LIMIT: "1500.5"}, minutes(1)).entries
    assert account.credit_limit == Decimal("1500.5")
    assert (raised.kind, dict(raised.detail)) == ("credit_limit_changed", {"before": None, "after": "1500.50"})
    [cleared] = apply(account, crm, {CREDIT_LIMIT: None}, minutes(2)).entries
    assert account.credit_limit is None
    assert dict(cleared.detail) == {"before": "1500.50", "after": None}


def test_columns_holdfast_does_not_keep_are_ignored_and_get_no_version() -> None:
    account, crm = Account(ACCOUNT_ID, name="Acme"), CrmAccountState()
    applied = apply(account, crm, {"telephone1": "555-0100", "revenue": Decimal("9")})
    assert applied.entries == [] and crm.versions == {} and account == Account(ACCOUNT_ID, name="Acme")


def test_the_same_change_delivered_twice_changes_nothing_the_second_time() -> None:
    account, crm = Account(ACCOUNT_ID), CrmAccountState()
    values = {NAME: "Acme", CREDIT_LIMIT: Decimal("100"), CREDIT_ON_HOLD: True}
    first = apply(account, crm, values)
    state = (account.name, account.credit_limit, account.credit_review_cause, dict(crm.versions), crm.on_hold)
    second = apply(account, crm, values)
    assert len(first.entries) == 2 and second.entries == []
    assert (account.name, account.credit_limit, account.credit_review_cause, dict(crm.versions), crm.on_hold) == state


# --- which values are newer -----------------------------------------------------------------


def test_each_column_keeps_the_crm_time_of_the_value_applied() -> None:
    account, crm = Account(ACCOUNT_ID), CrmAccountState()
    apply(account, crm, {NAME: "Acme"}, minutes(1))
    apply(account, crm, {ACCOUNT_NUMBER: "A-1"}, minutes(5))
    assert crm.versions == {NAME: minutes(1), ACCOUNT_NUMBER: minutes(5)}


def test_an_older_value_never_overwrites_a_newer_one_but_its_other_columns_apply() -> None:
    account, crm = Account(ACCOUNT_ID), CrmAccountState()
    apply(account, crm, {NAME: "Acme Ltd"}, minutes(10))
    late = apply(account, crm, {NAME: "Acme", ACCOUNT_NUMBER: "A-1"}, minutes(5))  # modified earlier, arrived later
    assert (account.name, account.account_number) == ("Acme Ltd", "A-1")
    assert [dict(e.detail) for e in late.entries] == [{"account_number": "A-1"}]
    assert crm.versions == {NAME: minutes(10), ACCOUNT_NUMBER: minutes(5)}


@pytest.mark.parametrize("order", ["in order", "reversed"])
def test_two_updates_of_one_column_end_with_the_newer_value_whatever_the_order(order: str) -> None:
    account, crm = Account(ACCOUNT_ID), CrmAccountState()
    updates = [({CREDIT_LIMIT: Decimal("100")}, minutes(1)), ({CREDIT_LIMIT: Decimal("250")}, minutes(2))]
    for values, modified_at in updates if order == "in order" else reversed(updates):
        apply(account, crm, values, modified_at)
    assert account.credit_limit == Decimal("250")


def test_an_older_creditonhold_neither_holds_nor_releases() -> None:
    account, crm = Account(ACCOUNT_ID), CrmAccountState()
    apply(account, crm, {CREDIT_ON_HOLD: False}, minutes(10), operation="op-release")
    late = apply(account, crm, {CREDIT_ON_HOLD: True}, minutes(5), operation="op-hold")
    assert account.credit_review_cause is None and crm.on_hold is False
    assert not late.cleared_by_crm and not late.echo


# --- creditonhold: finance's credit review, or Holdfast's own write coming back -------------------------


def test_creditonhold_set_by_finance_starts_a_credit_review_caused_by_that_operation() -> None:
    account, crm = Account(ACCOUNT_ID), CrmAccountState()
    applied = apply(account, crm, {CREDIT_ON_HOLD: True}, operation="op-42")
    assert account.credit_review_cause == "dynamics:op-42"
    assert crm.on_hold is True
    assert not applied.echo and not applied.cleared_by_crm


def test_creditonhold_cleared_by_finance_ends_the_credit_review_and_says_it_was_cleared() -> None:
    account, crm = Account(ACCOUNT_ID, credit_review_cause="dynamics:op-1"), CrmAccountState(on_hold=True)
    applied = apply(account, crm, {CREDIT_ON_HOLD: False}, minutes(1))
    assert account.credit_review_cause is None and crm.on_hold is False
    assert applied.cleared_by_crm and not applied.echo


@pytest.mark.parametrize("written", [True, False])
def test_holdfasts_own_write_coming_back_is_an_echo_and_no_finance_decision(written: bool) -> None:
    """A non-payment hold makes Holdfast write creditonhold = true: that must not become a credit review."""
    account = Account(ACCOUNT_ID, credit_review_cause=None if written else "dynamics:op-finance")
    crm = CrmAccountState(written_on_hold=written)
    before = account.credit_review_cause
    applied = apply(account, crm, {CREDIT_ON_HOLD: written}, by_holdfast=True)
    assert applied.echo and not applied.cleared_by_crm
    assert account.credit_review_cause == before
    assert crm.on_hold is written  # what the CRM shows is still recorded


def test_a_value_holdfast_did_not_write_is_no_echo_even_from_holdfasts_user() -> None:
    """The value check: Holdfast wrote false, its user's change says true: someone used that user to hold."""
    account, crm = Account(ACCOUNT_ID), CrmAccountState(written_on_hold=False)
    applied = apply(account, crm, {CREDIT_ON_HOLD: True}, by_holdfast=True, operation="op-9")
    assert not applied.echo
    assert account.credit_review_cause == "dynamics:op-9"


def test_holdfasts_user_clearing_a_hold_holdfast_wrote_is_no_echo_and_ends_the_credit_review() -> None:
    account = Account(ACCOUNT_ID, credit_review_cause="dynamics:op-1")
    crm = CrmAccountState(written_on_hold=True)
    applied = apply(account, crm, {CREDIT_ON_HOLD: False}, by_holdfast=True)
    assert not applied.echo and applied.cleared_by_crm
    assert account.credit_review_cause is None


def test_nothing_is_an_echo_before_holdfast_has_written_anything() -> None:
    account, crm = Account(ACCOUNT_ID), CrmAccountState(written_on_hold=None)
    applied = apply(account, crm, {CREDIT_ON_HOLD: False}, by_holdfast=True)
    assert not applied.echo and applied.cleared_by_crm


def test_someone_else_writing_the_value_holdfast_wrote_is_a_finance_decision() -> None:
    account, crm = Account(ACCOUNT_ID), CrmAccountState(written_on_hold=True)
    applied = apply(account, crm, {CREDIT_ON_HOLD: True}, by_holdfast=False, operation="op-finance")
    assert not applied.echo
    assert account.credit_review_cause == "dynamics:op-finance"


# --- the Stripe customer column --------------------------------------------------------------


def test_a_newer_stripe_customer_is_handed_back_to_be_mapped() -> None:
    applied = apply(Account(ACCOUNT_ID), CrmAccountState(), {STRIPE_CUSTOMER_ID: "cus_acme"})
    assert applied.stripe_customer_id == "cus_acme"


@pytest.mark.parametrize("value", ["", None, 42])
def test_a_stripe_customer_column_that_is_empty_or_not_text_maps_nothing(value: Any) -> None:
    applied = apply(Account(ACCOUNT_ID), CrmAccountState(), {STRIPE_CUSTOMER_ID: value})
    assert applied.stripe_customer_id is None


def test_an_older_stripe_customer_is_not_handed_back() -> None:
    account, crm = Account(ACCOUNT_ID), CrmAccountState()
    apply(account, crm, {STRIPE_CUSTOMER_ID: "cus_new"}, minutes(10))
    assert apply(account, crm, {STRIPE_CUSTOMER_ID: "cus_old"}, minutes(5)).stripe_customer_id is None


# --- row ids --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "written",
    [ACCOUNT_ID, ACCOUNT_ID.upper(), "{" + ACCOUNT_ID + "}", "{" + ACCOUNT_ID.upper() + "}", f" {ACCOUNT_ID} "],
)
def test_a_row_id_is_keyed_as_the_crm_keys_it(written: str) -> None:
    assert crm_row_id(written) == ACCOUNT_ID


@pytest.mark.parametrize(
    "other", ["acme", "", ACCOUNT_ID + "/../accounts", "{" + ACCOUNT_ID, ACCOUNT_ID.replace("-", ""), ACCOUNT_ID[:-1]]
)
def test_anything_but_a_guid_is_no_row_id(other: str) -> None:
    assert crm_row_id(other) is None


def test_an_update_of_a_column_at_the_same_crm_time_applies() -> None:
    """Two updates stamped with one modifiedon: the one delivered later is the CRM's last word."""
    account, crm = Account(ACCOUNT_ID), CrmAccountState()
    apply(account, crm, {NAME: "Acme"}, minutes(10))
    apply(account, crm, {NAME: "Acme Ltd"}, minutes(10), operation="op-2")
    assert account.name == "Acme Ltd"


def test_a_change_without_creditonhold_is_neither_an_echo_nor_a_clearing() -> None:
    applied = apply(Account(ACCOUNT_ID), CrmAccountState(written_on_hold=True), {NAME: "Acme"}, by_holdfast=True)
    assert (applied.echo, applied.cleared_by_crm) == (False, False)

"""The CRM's modifiedon orders updates of a column, but only as far as the time a delivery was received."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from domain.account import Account
from domain.crm import CREDIT_LIMIT, MAX_CRM_CLOCK_SKEW, CrmAccountChange, CrmAccountState, apply_account_change
from domain.crm import trusted_modified_at as trusted
from domain.timeline import Change

RECEIVED = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def test_a_modifiedon_within_the_skew_is_used_as_given() -> None:
    assert trusted(RECEIVED - timedelta(days=3), RECEIVED) == RECEIVED - timedelta(days=3)
    assert trusted(RECEIVED + MAX_CRM_CLOCK_SKEW, RECEIVED) == RECEIVED + MAX_CRM_CLOCK_SKEW


def test_a_modifiedon_beyond_the_skew_counts_as_the_time_received_plus_the_skew() -> None:
    assert trusted(datetime(2999, 1, 1, tzinfo=UTC), RECEIVED) == RECEIVED + MAX_CRM_CLOCK_SKEW


def test_a_column_set_from_the_far_future_takes_a_later_update() -> None:
    account, crm = Account("a"), CrmAccountState()
    at = Change(RECEIVED, "dynamics", "dynamics:op")

    def change(limit: str, modified_at: datetime, received_at: datetime) -> CrmAccountChange:
        return CrmAccountChange(
            "a", "Update", {CREDIT_LIMIT: Decimal(limit)}, trusted(modified_at, received_at), "op", False
        )

    apply_account_change(account, crm, change("100", datetime(2999, 1, 1, tzinfo=UTC), RECEIVED), at)
    assert account.credit_limit == Decimal("100")
    later = RECEIVED + timedelta(minutes=10)
    apply_account_change(account, crm, change("200", later, later), at)
    assert account.credit_limit == Decimal("200")

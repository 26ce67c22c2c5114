"""The timeline: each change of an account writes one line saying when, who, why and what; a no-op writes none.

Domain methods return the lines; the caller saves them with the change in one transaction, so
the audit trail says exactly what happened (PRODUCT.md: every change is on the timeline).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest

from domain.account import Account
from domain.holds import HoldReason, WantedHold
from domain.timeline import Change, TimelineEntry
from tests.unit.factories import at

CHANGE = Change(at(3600), "api", "api:req-7")
PAUSED_UNTIL = at(0) + timedelta(days=2)


def held(reason: HoldReason) -> Account:
    account = Account("acme", currency="jpy")
    account.settle_hold(reason, WantedHold(reason, "stripe:evt_1"), Change(at(0), "worker", "stripe:evt_1"))
    return account


def test_a_line_carries_the_when_who_and_why_of_its_change_and_what_changed() -> None:
    entry = TimelineEntry.of(CHANGE, "hold_placed", reason="manual", note=None)
    assert (entry.at, entry.actor, entry.cause) == (at(3600), "api", "api:req-7")
    assert (entry.kind, dict(entry.detail)) == ("hold_placed", {"reason": "manual", "note": None})


def test_a_line_once_written_cannot_be_changed() -> None:
    entry = TimelineEntry.of(CHANGE, "hold_placed", reason="manual")
    with pytest.raises(dataclasses.FrozenInstanceError):
        entry.kind = "hold_released"  # type: ignore[misc]


Operation = Callable[[Account], list[TimelineEntry]]

EACH_CHANGE: list[Any] = [
    pytest.param(
        lambda: Account("acme"),
        lambda a: a.place_manual_hold("call finance", CHANGE),
        "hold_placed",
        {"reason": "manual", "note": "call finance"},
        id="manual-hold-placed",
    ),
    pytest.param(
        lambda: held(HoldReason.NON_PAYMENT),
        lambda a: a.settle_hold(HoldReason.NON_PAYMENT, None, CHANGE),
        "hold_released",
        {"reason": "non_payment", "since": at(0).isoformat(), "note": None},
        id="source-hold-released",
    ),
    pytest.param(
        lambda: Account("acme"),
        lambda a: a.settle_hold(HoldReason.DISPUTE, WantedHold(HoldReason.DISPUTE, "stripe:evt_dp", "dp_1"), CHANGE),
        "hold_placed",
        {"reason": "dispute", "note": "dp_1"},
        id="source-hold-placed",
    ),
    pytest.param(
        lambda: Account("acme"),
        lambda a: a.pause_enforcement(PAUSED_UNTIL, "key customer", CHANGE),
        "enforcement_paused",
        {"until": PAUSED_UNTIL.isoformat(), "note": "key customer"},
        id="pause",
    ),
    pytest.param(
        lambda: Account("acme", enforcement_paused_until=PAUSED_UNTIL),
        lambda a: a.end_pause(CHANGE, expired=True),
        "enforcement_resumed",
        {"expired": True},
        id="pause-expired",
    ),
    pytest.param(
        lambda: Account("acme", currency="jpy", credit_limit=Decimal("5000")),
        lambda a: a.set_credit_limit(Decimal("12000"), CHANGE),
        "credit_limit_changed",
        {"before": "5000", "after": "12000"},  # in the account's currency's places
        id="credit-limit",
    ),
    pytest.param(
        lambda: Account("acme", currency="usd", credit_limit=Decimal("5000")),
        lambda a: a.set_credit_limit(None, CHANGE),
        "credit_limit_changed",
        {"before": "5000.00", "after": None},
        id="credit-limit-removed",
    ),
]


@pytest.mark.parametrize(("account", "operation", "kind", "detail"), EACH_CHANGE)
def test_each_change_writes_one_line_with_its_change_and_what_changed(
    account: Callable[[], Account], operation: Operation, kind: str, detail: dict[str, Any]
) -> None:
    [entry] = operation(account())
    assert (entry.at, entry.actor, entry.cause) == (CHANGE.at, CHANGE.actor, CHANGE.cause)
    assert (entry.kind, dict(entry.detail)) == (kind, detail)


def test_lifting_a_manual_hold_writes_since_when_it_held_and_finances_note() -> None:
    account = Account("acme")
    account.place_manual_hold(None, Change(at(0), "api", "api:req-1"))
    [entry] = account.lift_manual_hold("paid by phone", CHANGE)
    assert dict(entry.detail) == {"reason": "manual", "since": at(0).isoformat(), "note": "paid by phone"}


NO_OPS: list[Any] = [
    pytest.param(lambda: Account("acme"), lambda a: a.end_pause(CHANGE), id="end-a-pause-that-is-not-there"),
    pytest.param(
        lambda: Account("acme", credit_limit=Decimal("100")),
        lambda a: a.set_credit_limit(Decimal("100.00"), CHANGE),
        id="the-same-credit-limit",
    ),
    pytest.param(lambda: Account("acme"), lambda a: a.set_credit_limit(None, CHANGE), id="still-unlimited"),
    pytest.param(
        lambda: held(HoldReason.NON_PAYMENT),
        lambda a: a.settle_hold(HoldReason.NON_PAYMENT, WantedHold(HoldReason.NON_PAYMENT, "stripe:evt_2"), CHANGE),
        id="a-hold-already-there",
    ),
    pytest.param(
        lambda: Account("acme"), lambda a: a.settle_hold(HoldReason.DISPUTE, None, CHANGE), id="no-hold-to-release"
    ),
]


@pytest.mark.parametrize(("account", "operation"), NO_OPS)
def test_a_change_that_changes_nothing_writes_no_line(account: Callable[[], Account], operation: Operation) -> None:
    changed, unchanged = account(), account()
    assert operation(changed) == []
    assert changed == unchanged

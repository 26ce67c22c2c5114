"""What a candidate policy would change for one account, decided by the pure domain on copies."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from decimal import Decimal

from domain.account import Account
from domain.holds import Hold, HoldReason
from domain.invoices import InvoiceStatus
from domain.policy import HoldPolicy, NonPaymentPolicy, ReasonEffects
from domain.provisioning import ProvisioningRequest, RequestState
from domain.what_if import AccountFacts, compare
from tests.unit.factories import at, fact

IN_FORCE = HoldPolicy()
TWO_ATTEMPTS = HoldPolicy(non_payment=NonPaymentPolicy(failed_attempts=2))
NOW = at(1000)


def held_by_one_failed_attempt(*requests: ProvisioningRequest, **account: object) -> AccountFacts:
    holds = {HoldReason.NON_PAYMENT: Hold(HoldReason.NON_PAYMENT, at(10), "stripe:evt_1")}
    return AccountFacts(
        account=Account("acme", name="Acme", holds=holds, **account),  # type: ignore[arg-type]
        invoices=[fact("evt_1", 10, failed_attempt=1)],
        requests=list(requests),
    )


def waiting(n: int, *reasons: str) -> ProvisioningRequest:
    return ProvisioningRequest(
        f"r{n}", "acme", f"SO-{n}", Decimal("10.00"), "usd", None, RequestState.AWAITING, at(n), waiting_for=reasons
    )


def test_an_account_held_by_one_failed_attempt_is_released_under_two_and_its_orders_go() -> None:
    facts = held_by_one_failed_attempt(waiting(1, "non_payment"), waiting(2, "non_payment"))
    difference = compare(facts, IN_FORCE, TWO_ATTEMPTS, NOW)
    assert difference is not None
    assert (difference.holds_now, difference.holds_under_candidate) == ((HoldReason.NON_PAYMENT,), ())
    assert (difference.placed, difference.released) == ((), (HoldReason.NON_PAYMENT,))
    assert (difference.orders_released, difference.orders_parked) == (2, 0)


def test_nothing_it_is_given_changes() -> None:
    facts = held_by_one_failed_attempt(waiting(1, "non_payment"))
    before = (dict(facts.account.holds), [replace(r) for r in facts.requests])
    compare(facts, IN_FORCE, TWO_ATTEMPTS, NOW)
    assert (facts.account.holds, list(facts.requests)) == before


def test_the_same_policy_changes_nothing() -> None:
    assert compare(held_by_one_failed_attempt(waiting(1, "non_payment")), IN_FORCE, HoldPolicy(), NOW) is None


def test_a_stricter_policy_places_a_hold_and_parks_an_order_that_could_go() -> None:
    facts = AccountFacts(
        account=Account("acme"),
        invoices=[fact("evt_1", 10, failed_attempt=1)],
        requests=[replace(waiting(1), state=RequestState.QUEUED)],
    )
    difference = compare(facts, TWO_ATTEMPTS, IN_FORCE, NOW)
    assert difference is not None
    assert difference.placed == (HoldReason.NON_PAYMENT,)
    assert (difference.orders_released, difference.orders_parked) == (0, 1)


def test_another_reason_still_parking_keeps_the_orders_waiting() -> None:
    facts = held_by_one_failed_attempt(waiting(1, "manual", "non_payment"))
    facts.account.holds[HoldReason.MANUAL] = Hold(HoldReason.MANUAL, at(5), "api", "x")
    difference = compare(facts, IN_FORCE, TWO_ATTEMPTS, NOW)
    assert difference is not None
    assert difference.holds_under_candidate == (HoldReason.MANUAL,)
    assert difference.orders_released == 0


def test_a_reason_that_stops_parking_releases_orders_with_the_same_holds() -> None:
    candidate = HoldPolicy(
        effects={
            **IN_FORCE.effects,
            HoldReason.NON_PAYMENT: ReasonEffects(parks_provisioning=False, blocks_changes=True),
        }
    )
    difference = compare(held_by_one_failed_attempt(waiting(1, "non_payment")), IN_FORCE, candidate, NOW)
    assert difference is not None
    assert difference.holds_now == difference.holds_under_candidate == (HoldReason.NON_PAYMENT,)
    assert difference.orders_released == 1


def test_while_enforcement_is_paused_no_order_moves_but_the_hold_still_does() -> None:
    facts = held_by_one_failed_attempt(waiting(1), enforcement_paused_until=NOW + timedelta(days=1))
    difference = compare(facts, IN_FORCE, TWO_ATTEMPTS, NOW)
    assert difference is not None
    assert difference.released == (HoldReason.NON_PAYMENT,) and difference.orders_released == 0


def test_a_paid_invoice_holds_under_no_policy() -> None:
    facts = AccountFacts(account=Account("acme"), invoices=[fact("evt_2", 20, InvoiceStatus.PAID)])
    assert compare(facts, IN_FORCE, HoldPolicy(non_payment=NonPaymentPolicy(failed_attempts=0)), NOW) is None

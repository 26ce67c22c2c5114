"""Each non-payment threshold at, just below and just above its boundary."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest

from domain.invoices import InvoiceStatus, evaluate_non_payment, merge
from domain.policy import NonPaymentPolicy
from tests.unit.factories import at, fact

SECOND = timedelta(seconds=1)


@pytest.mark.parametrize(("attempts", "held"), [(2, False), (3, True), (4, True)])
def test_failed_attempts_threshold(attempts: int, held: bool) -> None:
    invoice = None
    for n in range(1, attempts + 1):
        invoice = merge(invoice, fact(f"evt_{n}", n, failed_attempt=n))
    assert invoice is not None
    verdict = evaluate_non_payment([invoice], NonPaymentPolicy(failed_attempts=3), at(100))
    assert (verdict.hold is not None) is held


@pytest.mark.parametrize(("offset", "held"), [(-SECOND, False), (timedelta(0), True), (SECOND, True)])
def test_days_past_due_threshold(offset: timedelta, held: bool) -> None:
    invoice = fact("evt_fin", 0, collection_method="send_invoice", due_date=at(0))
    policy = NonPaymentPolicy(days_past_due=10)
    verdict = evaluate_non_payment([invoice], policy, at(0) + timedelta(days=10) + offset)
    assert (verdict.hold is not None) is held


def test_an_invoice_charged_automatically_is_never_held_for_days_past_due() -> None:
    invoice = fact("evt_fin", 0, collection_method="charge_automatically", due_date=at(0))
    assert evaluate_non_payment([invoice], NonPaymentPolicy(), at(0) + timedelta(days=400)).hold is None


@pytest.mark.parametrize(("amount", "held"), [("4.99", False), ("5.00", True), ("5.01", True)])
def test_minimum_unpaid_threshold(amount: str, held: bool) -> None:
    invoice = fact("evt_f", 0, failed_attempt=1, amount=amount)
    verdict = evaluate_non_payment([invoice], NonPaymentPolicy(minimum_unpaid=Decimal("5.00")), at(0))
    assert (verdict.hold is not None) is held


@pytest.mark.parametrize(("offset", "held"), [(-SECOND, False), (timedelta(0), True), (SECOND, True)])
def test_grace_period_threshold(offset: timedelta, held: bool) -> None:
    invoice = fact("evt_f", 0, failed_attempt=1)
    policy = NonPaymentPolicy(grace_period=timedelta(hours=6))
    verdict = evaluate_non_payment([invoice], policy, at(0) + timedelta(hours=6) + offset)
    assert (verdict.hold is not None) is held


def test_grace_applies_to_an_uncollectible_invoice_too() -> None:
    invoice = fact("evt_u", 0, InvoiceStatus.UNCOLLECTIBLE)
    policy = NonPaymentPolicy(grace_period=timedelta(hours=1))
    assert evaluate_non_payment([invoice], policy, at(3599)).hold is None
    assert evaluate_non_payment([invoice], policy, at(3600)).hold is not None


def test_zero_failed_attempts_means_failures_never_hold() -> None:
    invoice = fact("evt_f", 0, failed_attempt=5)
    assert evaluate_non_payment([invoice], NonPaymentPolicy(failed_attempts=0), at(10)).hold is None

"""Property: for random invoice histories, payments and thresholds, the account is held exactly when the policy says.

The oracle below reads the policy's words directly from the raw events, without the facts
machinery: an unpaid invoice qualifies once it has failed the configured number of times,
been marked uncollectible, or (sent for manual payment) passed its due date by the configured
days, each plus the grace period; the account is held when the qualifying invoices' unpaid
total reaches the minimum.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from domain.invoices import InvoiceFact, InvoiceStatus, evaluate_non_payment, merge
from domain.policy import NonPaymentPolicy
from tests.unit.factories import at, fact

DAY = 86_400


@dataclass(frozen=True)
class Raw:
    invoice: str
    kind: str  # "open", "failed", "paid", "void", "uncollectible"
    created: int
    attempt: int = 0


@st.composite
def histories(draw: st.DrawFn) -> tuple[list[Raw], dict[str, tuple[str, str, int | None]]]:
    events: list[Raw] = []
    invoices: dict[str, tuple[str, str, int | None]] = {}
    clock = 0
    for n in range(draw(st.integers(1, 4))):
        invoice = f"in_{n}"
        method = draw(st.sampled_from(["charge_automatically", "send_invoice"]))
        due = draw(st.integers(0, 40)) * DAY if method == "send_invoice" else None
        invoices[invoice] = (draw(st.sampled_from(["0.40", "0.99", "1.00", "5.00", "250.00"])), method, due)
        clock += draw(st.integers(1, 3)) * DAY
        events.append(Raw(invoice, "open", clock))
        for attempt in range(1, draw(st.integers(0, 4)) + 1):
            clock += draw(st.integers(1, 3)) * DAY
            events.append(Raw(invoice, "failed", clock, attempt))
        ending = draw(st.sampled_from(["none", "paid", "void", "uncollectible", "uncollectible_paid"]))
        if ending != "none":
            clock += draw(st.integers(1, 5)) * DAY
            events.append(Raw(invoice, ending.split("_")[0], clock))
            if ending == "uncollectible_paid":
                clock += DAY
                events.append(Raw(invoice, "paid", clock))
    return events, invoices


def oracle(
    events: list[Raw], invoices: dict[str, tuple[str, str, int | None]], policy: NonPaymentPolicy, now: int
) -> bool:
    grace = int(policy.grace_period.total_seconds())
    total, any_qualifies = Decimal(0), False
    for invoice, (amount, method, due) in invoices.items():
        own = sorted((e for e in events if e.invoice == invoice), key=lambda e: e.created)
        final = own[-1].kind
        if final in ("paid", "void"):
            continue
        moments: list[int] = []
        failures = [e for e in own if e.kind == "failed" and e.attempt >= policy.failed_attempts]
        if policy.failed_attempts > 0 and failures:
            moments.append(failures[0].created)
        if policy.on_uncollectible and final == "uncollectible":
            moments.append(own[-1].created)
        if method == "send_invoice" and due is not None and policy.days_past_due is not None:
            moments.append(due + policy.days_past_due * DAY)
        if moments and min(moments) + grace <= now:
            any_qualifies = True
            total += Decimal(amount)
    return any_qualifies and total >= policy.minimum_unpaid


def facts(events: list[Raw], invoices: dict[str, tuple[str, str, int | None]]) -> list[InvoiceFact]:
    merged: dict[str, InvoiceFact] = {}
    status = {
        "open": InvoiceStatus.OPEN,
        "failed": InvoiceStatus.OPEN,
        "paid": InvoiceStatus.PAID,
        "void": InvoiceStatus.VOID,
        "uncollectible": InvoiceStatus.UNCOLLECTIBLE,
    }
    for n, e in enumerate(events):
        amount, method, due = invoices[e.invoice]
        one = fact(
            f"evt_{n:04d}",
            e.created,
            status[e.kind],
            invoice_id=e.invoice,
            amount=amount,
            failed_attempt=e.attempt or None,
            collection_method=method,
            due_date=None if due is None else at(due),
        )
        merged[e.invoice] = merge(merged.get(e.invoice), one)
    return list(merged.values())


@settings(max_examples=500, deadline=None)
@given(
    history=histories(),
    failed_attempts=st.integers(0, 4),
    days_past_due=st.one_of(st.none(), st.integers(0, 30)),
    minimum=st.sampled_from(["0", "1.00", "5.00", "100.00"]),
    grace_days=st.integers(0, 5),
    on_uncollectible=st.booleans(),
    now_day=st.integers(0, 120),
)
def test_the_account_is_held_exactly_when_the_policy_says(
    history: tuple[list[Raw], dict[str, tuple[str, str, int | None]]],
    failed_attempts: int,
    days_past_due: int | None,
    minimum: str,
    grace_days: int,
    on_uncollectible: bool,
    now_day: int,
) -> None:
    events, invoices = history
    policy = NonPaymentPolicy(
        failed_attempts=failed_attempts,
        days_past_due=days_past_due,
        minimum_unpaid=Decimal(minimum),
        grace_period=timedelta(days=grace_days),
        on_uncollectible=on_uncollectible,
    )
    now = now_day * DAY
    last = max(e.created for e in events)
    now = max(now, last)  # evaluated once every event has happened
    verdict = evaluate_non_payment(facts(events, invoices), policy, at(now))
    assert (verdict.hold is not None) == oracle(events, invoices, policy, now)

"""Property: for random invoice histories, payments and thresholds, the account is held exactly when the policy says.

The oracle below reads the policy's words directly from the raw events, without the facts
machinery: an unpaid invoice qualifies once it has failed the configured number of times (the
first failure at or past that attempt number counts, however often an attempt is reported),
been marked uncollectible, or (sent for manual payment) passed its due date by the configured
days, each plus the grace period; the account is held when the qualifying invoices' unpaid
total reaches the minimum. The hold's cause is the event behind the earliest qualifying invoice,
its note names the qualifying invoices in that order, and the evaluation's next change is the
earliest moment another invoice will qualify.
"""

from __future__ import annotations

import re
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
    event_id: str
    attempt: int = 0


Invoices = dict[str, tuple[str, str, int | None]]  # invoice -> amount, collection method, due (seconds)


@st.composite
def histories(draw: st.DrawFn) -> tuple[list[Raw], Invoices]:
    events: list[Raw] = []
    invoices: Invoices = {}
    clock = 0

    def add(invoice: str, kind: str, attempt: int = 0) -> None:
        events.append(Raw(invoice, kind, clock, f"evt_{len(events):04d}", attempt))

    for n in range(draw(st.integers(1, 4))):
        invoice = f"in_{n}"
        method = draw(st.sampled_from(["charge_automatically", "send_invoice"]))
        due = draw(st.integers(0, 40)) * DAY if method == "send_invoice" else None
        invoices[invoice] = (draw(st.sampled_from(["0.40", "0.99", "1.00", "5.00", "250.00"])), method, due)
        clock += draw(st.integers(1, 3)) * DAY
        add(invoice, "open")
        attempt = 0
        for _ in range(draw(st.integers(0, 4))):
            clock += draw(st.integers(0, 3)) * DAY  # 0: reported in the same second
            attempt += draw(st.integers(0 if attempt else 1, 2))  # 0: the same attempt again; 2: one not seen
            add(invoice, "failed", attempt)
        ending = draw(st.sampled_from(["none", "paid", "void", "uncollectible", "uncollectible_paid"]))
        if ending != "none":
            clock += draw(st.integers(1, 5)) * DAY
            add(invoice, ending.split("_")[0])
            if ending == "uncollectible_paid":
                clock += DAY
                add(invoice, "paid")
    return events, invoices


@dataclass(frozen=True)
class Expected:
    held: bool
    cause: str | None
    invoices_in_note: list[str]
    next_change_at: int | None


def oracle(events: list[Raw], invoices: Invoices, policy: NonPaymentPolicy, now: int) -> Expected:
    grace = int(policy.grace_period.total_seconds())
    qualifying: list[tuple[int, str, str]] = []  # from when (grace included), invoice, the event behind it
    for invoice, (_amount, method, due) in invoices.items():
        own = sorted((e for e in events if e.invoice == invoice), key=lambda e: (e.created, e.event_id))
        last = own[-1]
        if last.kind in ("paid", "void"):
            continue
        moments: list[tuple[int, str]] = []
        failures = [e for e in own if e.kind == "failed" and e.attempt >= policy.failed_attempts]
        if policy.failed_attempts > 0 and failures:
            moments.append((failures[0].created, failures[0].event_id))
        if policy.on_uncollectible and last.kind == "uncollectible":
            moments.append((last.created, last.event_id))
        if method == "send_invoice" and due is not None and policy.days_past_due is not None:
            moments.append((due + policy.days_past_due * DAY, last.event_id))  # the newest snapshot's due date
        if moments:
            moment, event_id = min(moments)
            qualifying.append((moment + grace, invoice, event_id))
    now_qualifying = sorted(q for q in qualifying if q[0] <= now)
    total = sum((Decimal(invoices[invoice][0]) for _, invoice, _ in now_qualifying), Decimal(0))
    held = bool(now_qualifying) and total >= policy.minimum_unpaid
    return Expected(
        held=held,
        cause=f"stripe:{now_qualifying[0][2]}" if held else None,
        invoices_in_note=[invoice for _, invoice, _ in now_qualifying] if held else [],
        next_change_at=min((q[0] for q in qualifying if q[0] > now), default=None),
    )


def facts(events: list[Raw], invoices: Invoices) -> list[InvoiceFact]:
    merged: dict[str, InvoiceFact] = {}
    status = {
        "open": InvoiceStatus.OPEN,
        "failed": InvoiceStatus.OPEN,
        "paid": InvoiceStatus.PAID,
        "void": InvoiceStatus.VOID,
        "uncollectible": InvoiceStatus.UNCOLLECTIBLE,
    }
    for e in events:
        amount, method, due = invoices[e.invoice]
        one = fact(
            e.event_id,
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
    grace_hours=st.sampled_from([0, 1, 19, 24, 72, 120]),
    on_uncollectible=st.booleans(),
    now_day=st.integers(0, 120),
    now_second=st.sampled_from([0, 1, DAY // 2]),
)
def test_the_account_is_held_exactly_when_the_policy_says(
    history: tuple[list[Raw], Invoices],
    failed_attempts: int,
    days_past_due: int | None,
    minimum: str,
    grace_hours: int,
    on_uncollectible: bool,
    now_day: int,
    now_second: int,
) -> None:
    events, invoices = history
    policy = NonPaymentPolicy(
        failed_attempts=failed_attempts,
        days_past_due=days_past_due,
        minimum_unpaid=Decimal(minimum),
        grace_period=timedelta(hours=grace_hours),
        on_uncollectible=on_uncollectible,
    )
    last = max(e.created for e in events)
    now = max(now_day * DAY + now_second, last)  # evaluated once every event has happened
    verdict = evaluate_non_payment(facts(events, invoices), policy, at(now))
    expected = oracle(events, invoices, policy, now)
    assert (verdict.hold is not None) == expected.held
    assert (verdict.hold.cause if verdict.hold else None) == expected.cause
    note = (verdict.hold.note or "") if verdict.hold else ""
    assert re.findall(r"invoice (in_\d+) ", note) == expected.invoices_in_note
    assert verdict.next_change_at == (None if expected.next_change_at is None else at(expected.next_change_at))

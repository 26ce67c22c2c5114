"""Property: any order of delivery, with any duplicates, ends in the same holds as delivery in order."""

from __future__ import annotations

from datetime import timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from domain.account import Account
from domain.evaluation import evaluate, settle
from domain.invoices import InvoiceFact, InvoiceStatus, merge
from domain.policy import HoldPolicy, NonPaymentPolicy
from domain.timeline import Change
from tests.unit.factories import at, fact

ENDINGS = ["open", "paid", "void", "uncollectible", "uncollectible_then_paid"]


@st.composite
def invoice_histories(draw: st.DrawFn) -> list[InvoiceFact]:
    """The events of 1 to 3 invoices, each in its true order of creation."""
    events: list[InvoiceFact] = []
    for n in range(draw(st.integers(1, 3))):
        invoice_id = f"in_{n}"
        clock = draw(st.integers(0, 50))
        amount = draw(st.sampled_from(["0.50", "20.00", "99.99"]))
        events.append(fact(f"evt_{n}_fin", clock, invoice_id=invoice_id, amount=amount))
        for attempt in range(1, draw(st.integers(0, 4)) + 1):
            clock += draw(st.integers(0, 5))  # 0: several events in the same second
            events.append(
                fact(f"evt_{n}_f{attempt}", clock, invoice_id=invoice_id, amount=amount, failed_attempt=attempt)
            )
        ending = draw(st.sampled_from(ENDINGS))
        clock += draw(st.integers(0, 5))
        if ending in ("paid", "void"):
            status = InvoiceStatus.PAID if ending == "paid" else InvoiceStatus.VOID
            events.append(fact(f"evt_{n}_end", clock, status, invoice_id=invoice_id, amount=amount))
        elif ending.startswith("uncollectible"):
            events.append(
                fact(f"evt_{n}_unc", clock, InvoiceStatus.UNCOLLECTIBLE, invoice_id=invoice_id, amount=amount)
            )
            if ending.endswith("paid"):
                events.append(fact(f"evt_{n}_paid", clock + 1, InvoiceStatus.PAID, invoice_id=invoice_id))
    return events


def deliver(events: list[InvoiceFact], policy: HoldPolicy) -> tuple[set[str], str]:
    """Apply events one by one as the worker does: merge the fact, evaluate, settle the holds."""
    facts: dict[str, InvoiceFact] = {}
    account = Account("acme")
    now = at(10_000)
    for i, event in enumerate(events):
        facts[event.invoice_id] = merge(facts.get(event.invoice_id), event)
        evaluation = evaluate(facts.values(), policy, now)
        settle(account, evaluation, Change(now + timedelta(seconds=i), "stripe", f"stripe:{event.event_id}"))
    exposure = evaluate(facts.values(), policy, now).invoice_exposure
    return {str(r) for r in account.holds}, str(exposure)


@settings(max_examples=400, deadline=None)
@given(
    history=invoice_histories(),
    data=st.data(),
    failed_attempts=st.integers(0, 4),
    minimum=st.sampled_from(["0", "1.00", "50.00"]),
)
def test_any_order_with_duplicates_gives_the_holds_of_in_order_delivery(
    history: list[InvoiceFact], data: st.DataObject, failed_attempts: int, minimum: str
) -> None:
    from decimal import Decimal

    policy = HoldPolicy(non_payment=NonPaymentPolicy(failed_attempts=failed_attempts, minimum_unpaid=Decimal(minimum)))
    duplicates = data.draw(st.lists(st.sampled_from(history), max_size=len(history)))
    shuffled = data.draw(st.permutations(history + duplicates))
    assert deliver(shuffled, policy) == deliver(history, policy)

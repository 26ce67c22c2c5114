"""Property: one invoice's events, each arriving in old and current API versions' shapes, in any order, hold alike.

The webhook may bring an event in its endpoint's version and reconciliation the same event
(same id) in another; whichever is stored first is the one processed. Every interleaving,
with duplicates, must end in the holds and exposure of in-order delivery in today's shape.
"""

from __future__ import annotations

import json
from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from adapters.stripe_parser import invoice_fact, parse_event
from domain.invoices import InvoiceFact, InvoiceStatus
from domain.policy import HoldPolicy, NonPaymentPolicy
from tests.stripe_shapes import CURRENT, SHAPES, InvoiceStep, render
from tests.unit.test_order_independence import deliver

T0 = 1764547200


def fact_of(step: InvoiceStep, shape: str) -> InvoiceFact:
    return invoice_fact(parse_event(json.dumps(render(step, shape, "cus_shapes", "in_shapes"))))


@st.composite
def invoice_lives(draw: st.DrawFn) -> list[InvoiceStep]:
    """The events of one invoice in their true order: finalized, failures, perhaps a part paid, an ending."""
    amount = draw(st.sampled_from([50, 2000, 50000]))
    clock = T0
    steps = [InvoiceStep("evt_fin", "invoice.finalized", clock, "open", 0, amount, 0)]
    attempts, paid = 0, 0
    for n in range(draw(st.integers(0, 3))):
        clock += draw(st.integers(0, 3 * 86400))  # 0: two events in the same second
        attempts += 1
        steps.append(InvoiceStep(f"evt_fail{n}", "invoice.payment_failed", clock, "open", attempts, amount, paid))
        if draw(st.booleans()) and paid == 0:
            clock += draw(st.integers(0, 86400))
            paid = amount * 2 // 5
            paid_type = draw(st.sampled_from(["invoice.updated", "invoice.payment_succeeded", "invoice.paid"]))
            steps.append(InvoiceStep(f"evt_part{n}", paid_type, clock, "open", attempts, amount, paid))
    ending = draw(st.sampled_from(["none", "paid", "void", "uncollectible", "uncollectible_then_paid"]))
    clock += draw(st.integers(0, 86400))
    if ending in ("paid", "uncollectible_then_paid"):
        if ending == "uncollectible_then_paid":
            steps.append(
                InvoiceStep("evt_unc", "invoice.marked_uncollectible", clock, "uncollectible", attempts, amount, paid)
            )
            clock += draw(st.integers(0, 86400))
        steps.append(InvoiceStep("evt_paid", "invoice.paid", clock, "paid", attempts, amount, amount))
    elif ending == "void":
        steps.append(InvoiceStep("evt_void", "invoice.voided", clock, "void", attempts, amount, paid))
    elif ending == "uncollectible":
        steps.append(
            InvoiceStep("evt_unc", "invoice.marked_uncollectible", clock, "uncollectible", attempts, amount, paid)
        )
    return steps


@settings(max_examples=300, deadline=None)
@given(
    life=invoice_lives(),
    data=st.data(),
    failed_attempts=st.integers(1, 3),
    minimum=st.sampled_from(["0", "1.00"]),
)
def test_any_interleaving_of_old_and_current_shapes_gives_the_hold_of_in_order_current_delivery(
    life: list[InvoiceStep], data: st.DataObject, failed_attempts: int, minimum: str
) -> None:
    policy = HoldPolicy(non_payment=NonPaymentPolicy(failed_attempts=failed_attempts, minimum_unpaid=Decimal(minimum)))
    deliveries: list[tuple[InvoiceStep, str]] = []
    for step in life:
        fitting = [shape for shape in SHAPES if step.fits(shape)]
        webhook = data.draw(st.sampled_from(fitting), label=f"webhook shape of {step.event_id}")
        deliveries.append((step, webhook))
        if data.draw(st.booleans(), label=f"{step.event_id} listed by reconciliation too"):
            deliveries.append((step, data.draw(st.sampled_from(fitting), label="listed shape")))
    deliveries += data.draw(st.lists(st.sampled_from(deliveries), max_size=3), label="duplicates")
    shuffled = data.draw(st.permutations(deliveries), label="order of arrival")

    stored: dict[str, InvoiceFact] = {}  # the inbox: the first delivery of an event id is the one processed
    for step, shape in shuffled:
        stored.setdefault(step.event_id, fact_of(step, shape))
    processed = [stored[step.event_id] for step, _ in shuffled]

    expected = deliver([fact_of(step, CURRENT) for step in life], policy)
    assert deliver(processed, policy) == expected


def test_each_shape_says_the_same_of_each_step_it_can_say() -> None:
    steps = [
        InvoiceStep("evt_a", "invoice.payment_failed", T0, "open", 2, 5000, 0),
        InvoiceStep("evt_b", "invoice.updated", T0, "open", 2, 5000, 2000),
        InvoiceStep("evt_c", "invoice.paid", T0, "open", 2, 5000, 2000),  # paying type, partial body
        InvoiceStep("evt_d", "invoice.paid", T0, "paid", 2, 5000, 5000),
        InvoiceStep("evt_e", "invoice.voided", T0, "void", 2, 5000, 0),
        InvoiceStep("evt_f", "invoice.marked_uncollectible", T0, "uncollectible", 2, 5000, 0),
    ]
    for step in steps:
        facts = {shape: fact_of(step, shape) for shape in SHAPES if step.fits(shape)}
        assert all(fact == facts[CURRENT] for fact in facts.values()), (step, facts)
    assert fact_of(steps[2], CURRENT).status is InvoiceStatus.OPEN
    assert fact_of(steps[2], CURRENT).amount_remaining == Decimal("30.00")

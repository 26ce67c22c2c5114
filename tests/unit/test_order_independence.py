"""Property: any order of delivery, with any duplicates, ends in the same holds as delivery in order.

Not only the same reasons: the same hold wanted (its cause, the event that calls for it, and
its note), the same moment at which time alone could change the evaluation, the same exposure.
Histories include failures reported twice at one attempt number, several events in one second,
invoices sent for manual payment with due dates (moved by a later update), and a grace period.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from functools import partial

from hypothesis import given, settings
from hypothesis import strategies as st

from domain.account import Account
from domain.evaluation import evaluate, settle
from domain.invoices import InvoiceFact, InvoiceStatus, merge
from domain.policy import GoodStanding, HoldPolicy, NonPaymentPolicy
from domain.standing import Standing
from domain.timeline import Change
from tests.unit.factories import at, fact

ENDINGS = ["open", "paid", "void", "uncollectible", "uncollectible_then_paid"]
HOUR, DAY = 3600, 86_400
NOW = 10_000  # seconds after T0: every history below has happened by then


@st.composite
def invoice_histories(draw: st.DrawFn) -> list[InvoiceFact]:
    """The events of 1 to 3 invoices, each in its true order of creation."""
    events: list[InvoiceFact] = []
    for n in range(draw(st.integers(1, 3))):
        invoice_id = f"in_{n}"
        clock = draw(st.integers(0, 50))
        amount = draw(st.sampled_from(["0.50", "20.00", "99.99"]))
        method = draw(st.sampled_from(["charge_automatically", "send_invoice"]))
        # Due dates days before NOW or just around it, so that days past due fall on either side.
        due = at(draw(st.integers(-20 * DAY, NOW + 2 * DAY))) if method == "send_invoice" else None

        one = partial(fact, invoice_id=invoice_id, amount=amount, collection_method=method)
        events.append(one(f"evt_{n}_fin", clock, due_date=due))
        attempt = 0
        for k in range(draw(st.integers(0, 4))):
            clock += draw(st.integers(0, 5))  # 0: several events in the same second
            attempt += draw(st.integers(0 if attempt else 1, 1))  # 0: the same attempt reported again
            events.append(one(f"evt_{n}_f{k}", clock, failed_attempt=attempt, due_date=due))
        if due is not None and draw(st.booleans()):
            clock += draw(st.integers(0, 5))
            due = due + timedelta(days=draw(st.integers(-3, 10)))  # invoice.updated moved the due date
            events.append(one(f"evt_{n}_upd", clock, due_date=due))
        ending = draw(st.sampled_from(ENDINGS))
        clock += draw(st.integers(0, 5))
        if ending in ("paid", "void"):
            status = InvoiceStatus.PAID if ending == "paid" else InvoiceStatus.VOID
            events.append(one(f"evt_{n}_end", clock, status, due_date=due))
        elif ending.startswith("uncollectible"):
            events.append(one(f"evt_{n}_unc", clock, InvoiceStatus.UNCOLLECTIBLE, due_date=due))
            if ending.endswith("paid"):
                events.append(one(f"evt_{n}_paid", clock + 1, InvoiceStatus.PAID, due_date=due))
    return events


@dataclass(frozen=True)
class Delivered:
    """What delivery leaves: the holds placed, what the facts call for, when time could change it."""

    held: frozenset[str]
    wanted: tuple[tuple[str, str, str | None], ...]  # reason, cause, note of each hold wanted
    next_change_at: datetime | None
    exposure: Decimal
    standing: Standing


def deliver(events: list[InvoiceFact], policy: HoldPolicy) -> Delivered:
    """Apply events one by one as the worker does: merge the fact, evaluate, settle the holds."""
    facts: dict[str, InvoiceFact] = {}
    account = Account("acme")
    now = at(NOW)
    for i, event in enumerate(events):
        facts[event.invoice_id] = merge(facts.get(event.invoice_id), event)
        evaluation = evaluate(facts.values(), policy, now)
        settle(account, evaluation, Change(now + timedelta(seconds=i), "stripe", f"stripe:{event.event_id}"))
    final = evaluate(facts.values(), policy, now)
    wanted = tuple(sorted((str(r), w.cause, w.note) for r, w in final.wanted.items() if w is not None))
    return Delivered(
        frozenset(str(r) for r in account.holds), wanted, final.next_change_at, final.invoice_exposure, final.standing
    )


@settings(max_examples=400, deadline=None)
@given(
    history=invoice_histories(),
    data=st.data(),
    failed_attempts=st.integers(0, 4),
    minimum=st.sampled_from(["0", "1.00", "50.00"]),
    days_past_due=st.sampled_from([None, 0, 1, 15]),
    grace_seconds=st.sampled_from([0, 30, 2 * HOUR, 19 * HOUR]),
    on_uncollectible=st.booleans(),
    good_standing=st.one_of(
        st.none(),
        st.builds(
            GoodStanding,
            invoices_paid_on_time=st.integers(1, 3),
            months=st.integers(1, 12),
            extra_failed_attempts=st.integers(0, 2),
            extra_grace_hours=st.sampled_from([0, 1, 20]),
        ),
    ),
)
def test_any_order_with_duplicates_gives_the_holds_of_in_order_delivery(
    history: list[InvoiceFact],
    data: st.DataObject,
    failed_attempts: int,
    minimum: str,
    days_past_due: int | None,
    grace_seconds: int,
    on_uncollectible: bool,
    good_standing: GoodStanding | None,
) -> None:
    """Good standing included: the same events in any order give the same standing and the same holds."""
    policy = HoldPolicy(
        non_payment=NonPaymentPolicy(
            failed_attempts=failed_attempts,
            minimum_unpaid=Decimal(minimum),
            days_past_due=days_past_due,
            grace_period=timedelta(seconds=grace_seconds),
            on_uncollectible=on_uncollectible,
            good_standing=good_standing,
        )
    )
    duplicates = data.draw(st.lists(st.sampled_from(history), max_size=len(history)))
    shuffled = data.draw(st.permutations(history + duplicates))
    assert deliver(shuffled, policy) == deliver(history, policy)

"""Building blocks for domain tests: invoice facts as Stripe events would produce them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from types import MappingProxyType

from domain.invoices import InvoiceFact, InvoiceStatus, Occurrence

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def at(seconds: int) -> datetime:
    return T0 + timedelta(seconds=seconds)


def fact(
    event_id: str,
    created: int,
    status: InvoiceStatus = InvoiceStatus.OPEN,
    *,
    invoice_id: str = "in_1",
    amount: str = "20.00",
    failed_attempt: int | None = None,
    collection_method: str = "charge_automatically",
    due_date: datetime | None = None,
    customer_id: str = "cus_1",
    attempt_count: int | None = None,
) -> InvoiceFact:
    seen = Occurrence(at(created), event_id)
    return InvoiceFact(
        invoice_id=invoice_id,
        customer_id=customer_id,
        status=status,
        currency="usd",
        amount_remaining=Decimal("0") if status is InvoiceStatus.PAID else Decimal(amount),
        collection_method=collection_method,
        due_date=due_date,
        event_id=event_id,
        event_created=at(created),
        failures=MappingProxyType({failed_attempt: seen} if failed_attempt else {}),
        uncollectible_since=seen if status is InvoiceStatus.UNCOLLECTIBLE else None,
        paid_at=at(created) if status is InvoiceStatus.PAID else None,
        attempt_count=failed_attempt or 0 if attempt_count is None else attempt_count,
    )

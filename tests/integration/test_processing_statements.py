"""What one Stripe invoice event costs in statements, and the repositories' memory within a transaction.

Processing throughput is bounded by statements an event (issue 13, docs/benchmarks.md): the
customer is locked and read in one statement and, being locked, names the account's customer;
the customer's invoices are read once and the evaluation reads them again from memory; the
account's next evaluation goes out in its save. These tests hold those counts, and prove the
memory is right: what a transaction saved is what it reads back, a mapping moved is read again,
and nothing is remembered past the transaction.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from domain.invoices import InvoiceFact, InvoiceStatus
from tests.conftest import inbox_rows, post_stripe, process_one
from tests.integration.test_account_lists import counted_queries
from tests.stripe_shapes import CURRENT, InvoiceStep, render

NOW = datetime(2026, 12, 5, 9, 0, tzinfo=UTC)


def statements_of(client: Any, container: Any, step: InvoiceStep, invoice_id: str) -> list[str]:
    assert post_stripe(client, render(step, CURRENT, "cus_acme", invoice_id)).status_code == 200
    (stored,) = [row.id for row in inbox_rows(container) if row.status == "received"]
    with counted_queries(container) as statements:
        assert process_one(container, stored) == "processed"
    return [s for s in statements if not s.lstrip().upper().startswith(("BEGIN", "COMMIT", "ROLLBACK", "SAVEPOINT"))]


def test_an_invoice_event_reads_its_customer_once_and_its_invoices_once(
    client: Any, admin: dict[str, str], container: Any, queued: list[Any]
) -> None:
    body = {"name": "Acme", "stripe_customer_id": "cus_acme"}
    assert client.put("/api/accounts/acme", json=body, headers=admin).status_code == 201
    now = int(time.time())
    failed = statements_of(
        client, container, InvoiceStep("evt_f", "invoice.payment_failed", now - 60, "open", 1, 2000, 0), "in_1"
    )
    paid = statements_of(
        client, container, InvoiceStep("evt_p", "invoice.paid", now - 30, "paid", 1, 2000, 2000), "in_1"
    )
    assert [h["reason"] for h in client.get("/api/accounts/acme", headers=admin).json["holds"]] == []
    for statements in (failed, paid):
        text = "\n".join(statements)
        assert sum("FROM stripe_customers" in s or "INTO stripe_customers" in s for s in statements) == 1, text
        reads = [s for s in statements if s.lstrip().startswith("SELECT") and "FROM invoices" in s]
        # The customer's invoices; a new invoice is also looked up by its id (under another customer?).
        assert len(reads) == (2 if statements is failed else 1), text
        assert sum(s.lstrip().startswith("UPDATE accounts SET next_evaluation_at") for s in statements) == 0, text
    # 20 statements an event before (docs/benchmarks.md, Throughput): 16 for a new invoice, 15 for a known one.
    assert len(failed) <= 16, "\n".join(failed)
    assert len(paid) <= 15, "\n".join(paid)


def fact(invoice_id: str, customer_id: str, status: InvoiceStatus, event_id: str) -> InvoiceFact:
    return InvoiceFact(
        invoice_id=invoice_id,
        customer_id=customer_id,
        status=status,
        currency="usd",
        amount_remaining=Decimal("0") if status is InvoiceStatus.PAID else Decimal("20.00"),
        collection_method="charge_automatically",
        due_date=None,
        event_id=event_id,
        event_created=NOW,
    )


def test_invoices_saved_in_a_transaction_are_what_it_reads_back_and_what_the_next_one_reads(container: Any) -> None:
    with container.uow() as uow:
        uow.customers.lock("cus_a", NOW)
        assert uow.invoices.for_customer("cus_a") == []
        assert uow.invoices.get("in_a1") is None
        uow.invoices.save(fact("in_a1", "cus_a", InvoiceStatus.OPEN, "evt_1"), NOW)
        uow.invoices.save(fact("in_a0", "cus_a", InvoiceStatus.OPEN, "evt_2"), NOW)
        assert [f.invoice_id for f in uow.invoices.for_customer("cus_a")] == ["in_a0", "in_a1"]
        uow.invoices.save(fact("in_a1", "cus_a", InvoiceStatus.PAID, "evt_3"), NOW)
        assert [f.status for f in uow.invoices.for_customer("cus_a")] == [InvoiceStatus.OPEN, InvoiceStatus.PAID]
        got = uow.invoices.get("in_a1")
        assert got is not None and got.status is InvoiceStatus.PAID
        uow.commit()
        # After the commit nothing is remembered: another transaction may change them now.
        with container.uow() as other:
            other.customers.lock("cus_a", NOW)
            other.invoices.save(fact("in_a2", "cus_a", InvoiceStatus.OPEN, "evt_4"), NOW)
            other.commit()
        assert [f.invoice_id for f in uow.invoices.for_customer("cus_a")] == ["in_a0", "in_a1", "in_a2"]
    with container.uow() as uow:
        saved = {f.invoice_id: f.status for f in uow.invoices.for_customer("cus_a")}
    assert saved == {"in_a0": InvoiceStatus.OPEN, "in_a1": InvoiceStatus.PAID, "in_a2": InvoiceStatus.OPEN}


def test_an_invoice_saved_under_another_customer_leaves_the_first_customers_invoices(container: Any) -> None:
    with container.uow() as uow:
        uow.invoices.save(fact("in_moved", "cus_old", InvoiceStatus.OPEN, "evt_1"), NOW)
        assert [f.invoice_id for f in uow.invoices.for_customer("cus_old")] == ["in_moved"]
        assert uow.invoices.for_customer("cus_new") == []
        uow.invoices.save(fact("in_moved", "cus_new", InvoiceStatus.OPEN, "evt_2"), NOW)
        assert uow.invoices.for_customer("cus_old") == []
        assert [f.invoice_id for f in uow.invoices.for_customer("cus_new")] == ["in_moved"]


def test_an_invoice_rolled_back_is_not_remembered(container: Any) -> None:
    with container.uow() as uow:
        assert uow.invoices.for_customer("cus_r") == []
        uow.invoices.save(fact("in_r", "cus_r", InvoiceStatus.OPEN, "evt_1"), NOW)
        uow.rollback()
        assert uow.invoices.for_customer("cus_r") == []
        assert uow.invoices.get("in_r") is None


def test_a_locked_customer_names_its_account_until_a_mapping_moves_it(container: Any) -> None:
    with container.uow() as uow:
        created = uow.customers.lock("cus_one", NOW)
        uow.accounts.create_or_lock("acct", NOW)
        assert (created.customer_id, created.account_id, created.mapped_at) == ("cus_one", None, None)
        uow.customers.map_to("cus_one", "acct", NOW, "test")
        assert uow.customers.customer_of("acct") == "cus_one"
        uow.commit()
    with container.uow() as uow:
        locked = uow.customers.lock("cus_one", NOW)
        assert (locked.account_id, locked.mapped_at) == ("acct", NOW)
        with counted_queries(container) as statements:
            assert uow.customers.customer_of("acct") == "cus_one"
        assert statements == []  # the locked customer names it
        uow.customers.lock("cus_two", NOW)
        uow.customers.map_to("cus_two", "acct", NOW, "test")  # the account moves to another customer
        assert uow.customers.customer_of("acct") == "cus_two"
        uow.commit()
    with container.uow() as uow:
        assert uow.customers.customer_of("acct") == "cus_two"
        assert uow.customers.lock("cus_one", NOW).account_id is None

"""Stripe customers in the database: the account each maps to, and the facts about their invoices."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from types import MappingProxyType
from typing import Any, TypeVar

from sqlalchemy import inspect, select, update
from sqlalchemy.orm import Session

from adapters.db.engine import insert_for
from adapters.db.mapping import copy_to_row, fact_from_row
from adapters.db.tables import DisputeRow, InvoiceRow, StripeCustomerRow
from domain.invoices import InvoiceFact, InvoiceStatus, Occurrence
from services.ports import CustomerMapping


class SqlCustomerRepository:
    """Stripe customers and their mappings. Within one transaction it remembers the mappings it locked,
    so that the account's customer is known without a further query; ``forget`` at its end."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self._locked: dict[str, CustomerMapping] = {}

    def forget(self) -> None:
        """The transaction ended: the locks it held are gone."""
        self._locked.clear()

    def lock(self, customer_id: str, now: datetime) -> CustomerMapping:
        # Insert-or-lock in one statement: a conflict updates the row to itself, which locks it (and a
        # transaction inserting the same customer at the same moment makes this wait for its commit).
        statement = insert_for(self.session, StripeCustomerRow).values(customer_id=customer_id, created_at=now)
        row = self.session.execute(
            statement.on_conflict_do_update(
                index_elements=["customer_id"], set_={"customer_id": statement.excluded.customer_id}
            ).returning(StripeCustomerRow.customer_id, StripeCustomerRow.account_id, StripeCustomerRow.mapped_at)
        ).one()
        mapping = CustomerMapping(row.customer_id, row.account_id, row.mapped_at)
        self._locked[customer_id] = mapping
        return mapping

    def map_to(self, customer_id: str, account_id: str | None, mapped_at: datetime, cause: str) -> None:
        self._locked.clear()  # mappings change: read them again
        if account_id is not None:
            # An account maps to one customer: a newer mapping moves it.
            self.session.execute(
                update(StripeCustomerRow)
                .where(StripeCustomerRow.account_id == account_id, StripeCustomerRow.customer_id != customer_id)
                .values(account_id=None)
            )
        self.session.execute(
            update(StripeCustomerRow)
            .where(StripeCustomerRow.customer_id == customer_id)
            .values(account_id=account_id, mapped_at=mapped_at, mapping_cause=cause)
        )

    def customer_of(self, account_id: str) -> str | None:
        for mapping in self._locked.values():
            # A customer locked here and mapped to the account is its one customer: moving the account
            # to another customer would have to change this customer's row, which this transaction holds.
            if mapping.account_id == account_id:
                return mapping.customer_id
        return self.session.execute(
            select(StripeCustomerRow.customer_id).where(StripeCustomerRow.account_id == account_id)
        ).scalar_one_or_none()

    def customers_of(self, account_ids: Sequence[str]) -> dict[str, str]:
        """The Stripe customer of each of these accounts that has one, in one query."""
        if not account_ids:
            return {}
        rows = self.session.execute(
            select(StripeCustomerRow.account_id, StripeCustomerRow.customer_id).where(
                StripeCustomerRow.account_id.in_(list(account_ids))
            )
        )
        return {account_id: customer_id for account_id, customer_id in rows if account_id is not None}


Row = TypeVar("Row", InvoiceRow, DisputeRow)
Fact = TypeVar("Fact")


def facts_by_account(
    session: Session, row_type: type[Row], first: str, last: str, fact_of: Callable[[Row], Fact]
) -> dict[str, list[Fact]]:
    """The facts of the rows of the Stripe customers of the accounts ``first`` to ``last`` (by account id),
    grouped by account, each in key order, in one query: a range, not a list of ids to bind."""
    found: dict[str, list[Fact]] = {}
    key = inspect(row_type).primary_key
    rows = session.execute(
        select(StripeCustomerRow.account_id, row_type)
        .join(StripeCustomerRow, StripeCustomerRow.customer_id == row_type.customer_id)
        .where(StripeCustomerRow.account_id.between(first, last))
        .order_by(*key)
    )
    for account_id, row in rows:
        found.setdefault(str(account_id), []).append(fact_of(row))
    return found


def _occurrence(raw: dict[str, Any] | None) -> Occurrence | None:
    if raw is None:
        return None
    return Occurrence(datetime.fromisoformat(raw["at"]), raw["event_id"])


def _occurrence_json(occ: Occurrence | None) -> dict[str, Any] | None:
    return None if occ is None else {"at": occ.at.isoformat(), "event_id": occ.event_id}


def _invoice_fact(row: InvoiceRow) -> InvoiceFact:
    failures = {int(k): _occurrence(v) for k, v in (row.failures or {}).items()}
    return fact_from_row(
        InvoiceFact,
        row,
        status=InvoiceStatus(row.status),
        failures=MappingProxyType({k: v for k, v in sorted(failures.items()) if v is not None}),
        uncollectible_since=_occurrence(row.uncollectible_since),
    )


class SqlInvoiceRepository:
    """Invoice facts. Within one transaction it keeps the rows it read or saved, and which customers'
    invoices it read in full, so that the evaluation after a save reads them without a further query
    (the customer's row lock keeps them from changing meanwhile); ``forget`` at its end."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self._rows: dict[str, InvoiceRow] = {}
        self._of_customer: dict[str, dict[str, InvoiceRow]] = {}
        self._absent: set[str] = set()  # looked up and not found

    def forget(self) -> None:
        """The transaction ended: what it read or saved may change now."""
        self._rows.clear()
        self._of_customer.clear()
        self._absent.clear()

    def _row(self, invoice_id: str) -> InvoiceRow | None:
        if invoice_id in self._absent:
            return None
        row = self._rows.get(invoice_id) or self.session.get(InvoiceRow, invoice_id)
        if row is None:
            self._absent.add(invoice_id)
        else:
            self._rows[invoice_id] = row
        return row

    def get(self, invoice_id: str) -> InvoiceFact | None:
        row = self._row(invoice_id)
        return None if row is None else _invoice_fact(row)

    def save(self, fact: InvoiceFact, now: datetime) -> None:
        row = self._row(fact.invoice_id)
        if row is None:
            row = InvoiceRow(invoice_id=fact.invoice_id)
            self.session.add(row)
        elif row.customer_id != fact.customer_id:
            self._of_customer.get(row.customer_id, {}).pop(fact.invoice_id, None)
        copy_to_row(
            row,
            fact,
            status=str(fact.status),
            failures={str(k): _occurrence_json(v) for k, v in fact.failures.items()},
            uncollectible_since=_occurrence_json(fact.uncollectible_since),
            updated_at=now,
        )
        self.session.flush()
        self._rows[fact.invoice_id] = row
        self._absent.discard(fact.invoice_id)
        if fact.customer_id in self._of_customer:
            self._of_customer[fact.customer_id][fact.invoice_id] = row

    def for_customer(self, customer_id: str) -> list[InvoiceFact]:
        return self.for_customers([customer_id]).get(customer_id, [])

    def for_customers(self, customer_ids: Sequence[str]) -> dict[str, list[InvoiceFact]]:
        """The invoices of each of these customers (by invoice id), in one query (none for those read already)."""
        to_read = [customer_id for customer_id in customer_ids if customer_id not in self._of_customer]
        if to_read:
            for customer_id in to_read:
                self._of_customer[customer_id] = {}
            rows = self.session.execute(select(InvoiceRow).where(InvoiceRow.customer_id.in_(to_read))).scalars()
            for row in rows:
                self._rows[row.invoice_id] = row
                self._of_customer[row.customer_id][row.invoice_id] = row
        return {
            customer_id: [_invoice_fact(row) for _, row in sorted(self._of_customer[customer_id].items())]
            for customer_id in customer_ids
        }

    def for_accounts(self, first: str, last: str) -> dict[str, list[InvoiceFact]]:
        """The invoice facts of the accounts ``first`` to ``last``, by account, in one query (none: absent)."""
        return facts_by_account(self.session, InvoiceRow, first, last, _invoice_fact)

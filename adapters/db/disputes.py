"""Disputes (chargebacks) in the database: the merged fact about each."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from adapters.db.customers import facts_by_account
from adapters.db.mapping import copy_to_row, fact_from_row
from adapters.db.tables import DisputeRow
from domain.disputes import DisputeFact


def _dispute(row: DisputeRow) -> DisputeFact:
    # Rows from before 0007 have no opened_at: their event's time is the best known.
    return fact_from_row(DisputeFact, row, opened_at=row.opened_at or row.event_created)


class SqlDisputeRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def get(self, dispute_id: str) -> DisputeFact | None:
        row = self.session.get(DisputeRow, dispute_id)
        return None if row is None else _dispute(row)

    def save(self, fact: DisputeFact, now: datetime) -> None:
        row = self.session.get(DisputeRow, fact.dispute_id)
        if row is None:
            row = DisputeRow(dispute_id=fact.dispute_id)
            self.session.add(row)
        copy_to_row(row, fact, opened_at=fact.opening[0], updated_at=now)
        self.session.flush()

    def for_customer(self, customer_id: str) -> list[DisputeFact]:
        return self.for_customers([customer_id]).get(customer_id, [])

    def for_customers(self, customer_ids: Sequence[str]) -> dict[str, list[DisputeFact]]:
        """The disputes of each of these customers (by dispute id), in one query."""
        found: dict[str, list[DisputeFact]] = {customer_id: [] for customer_id in customer_ids}
        if found:
            rows = self.session.execute(
                select(DisputeRow).where(DisputeRow.customer_id.in_(list(found))).order_by(DisputeRow.dispute_id)
            ).scalars()
            for row in rows:
                found[row.customer_id].append(_dispute(row))
        return found

    def for_accounts(self, first: str, last: str) -> dict[str, list[DisputeFact]]:
        """The disputes of the accounts ``first`` to ``last``, by account, in one query (none: absent)."""
        return facts_by_account(self.session, DisputeRow, first, last, _dispute)

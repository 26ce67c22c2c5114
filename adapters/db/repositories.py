"""SQLAlchemy implementations of the repositories in services.ports."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any, cast

from sqlalchemy import Table, and_, exists, func, insert, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

from adapters.db.tables import (
    AccountRow,
    DisputeRow,
    HoldRow,
    InboxEventRow,
    InvoiceRow,
    ReconciliationCursorRow,
    StripeCustomerRow,
    TimelineRow,
)
from domain.account import Account
from domain.crm import CrmAccountState
from domain.disputes import DisputeFact
from domain.holds import Hold, HoldReason
from domain.invoices import InvoiceFact, InvoiceStatus, Occurrence
from domain.timeline import TimelineEntry
from services.ports import CustomerMapping, DispatchMark, InboxEvent, TimelineRecord

_DISPATCH_MARK = "SELECT revision, enforcement_paused_until FROM accounts WHERE account_id = "


def read_dispatch_mark(connection: Connection, account_id: str) -> DispatchMark | None:
    """What a sender compares before each call: the account's revision and pause (one indexed read).

    Straight through the driver, with a prepared statement on PostgreSQL: it runs before every call.
    """
    driver = connection.connection.driver_connection
    if connection.dialect.name == "postgresql":
        row = driver.execute(_DISPATCH_MARK + "%s", (account_id,), prepare=True).fetchone()  # type: ignore[union-attr]
    else:
        row = driver.execute(_DISPATCH_MARK + "?", (account_id,)).fetchone()  # type: ignore[union-attr]
    if row is None:
        return None
    paused = row[1]
    if isinstance(paused, str):  # SQLite stores the time as text
        paused = datetime.fromisoformat(paused)
    if paused is not None and paused.tzinfo is None:  # and naive, in UTC
        paused = paused.replace(tzinfo=UTC)
    return DispatchMark(int(row[0]), paused)


def _insert(session: Session, table: Any) -> Any:
    dialect = session.get_bind().dialect.name
    return (postgresql.insert if dialect == "postgresql" else sqlite.insert)(table)


def _inbox_event(row: InboxEventRow) -> InboxEvent:
    return InboxEvent(
        id=row.id,
        source=row.source,
        external_id=row.external_id,
        event_type=row.event_type,
        payload=row.payload,
        status=row.status,
        attempts=row.attempts,
        last_error=row.last_error,
        account_id=row.account_id,
        received_at=row.received_at,
        processed_at=row.processed_at,
        meta=dict(row.meta or {}),
    )


class SqlInboxRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def newest_occurred(self, source: str) -> datetime | None:
        return self.session.execute(
            select(func.max(InboxEventRow.occurred_at)).where(InboxEventRow.source == source)
        ).scalar_one_or_none()

    def cursor(self, source: str) -> tuple[datetime, str | None] | None:
        row = self.session.get(ReconciliationCursorRow, source)
        return None if row is None else (row.reached, row.last_event_id)

    def save_cursor(self, source: str, reached: datetime, last_event_id: str | None, now: datetime) -> None:
        row = self.session.get(ReconciliationCursorRow, source)
        if row is None:
            self.session.add(
                ReconciliationCursorRow(source=source, reached=reached, last_event_id=last_event_id, updated_at=now)
            )
        else:
            row.reached, row.last_event_id, row.updated_at = reached, last_event_id, now
        self.session.flush()

    def get(self, inbox_id: int, *, lock: bool = False) -> InboxEvent | None:
        query = select(InboxEventRow).where(InboxEventRow.id == inbox_id)
        if lock:
            query = query.with_for_update()
        row = self.session.execute(query).scalar_one_or_none()
        return None if row is None else _inbox_event(row)

    def find(self, source: str, external_id: str) -> InboxEvent | None:
        row = self.session.execute(
            select(InboxEventRow).where(InboxEventRow.source == source, InboxEventRow.external_id == external_id)
        ).scalar_one_or_none()
        return None if row is None else _inbox_event(row)

    def record_outcome(
        self, inbox_id: int, status: str, now: datetime, *, error: str | None = None, account_id: str | None = None
    ) -> None:
        self.session.execute(
            update(InboxEventRow)
            .where(InboxEventRow.id == inbox_id)
            .values(
                status=status,
                processed_at=now,
                last_error=error,
                account_id=account_id,
                attempts=InboxEventRow.attempts + 1,
            )
        )

    def record_attempt_error(self, inbox_id: int, error: str, *, next_try_at: datetime | None = None) -> None:
        values: dict[str, Any] = {"last_error": error, "attempts": InboxEventRow.attempts + 1}
        if next_try_at is not None:
            values["queued_at"] = next_try_at  # the sweep leaves it alone until then
        self.session.execute(update(InboxEventRow).where(InboxEventRow.id == inbox_id).values(**values))

    def mark_queued(self, inbox_id: int, at: datetime) -> None:
        self.session.execute(update(InboxEventRow).where(InboxEventRow.id == inbox_id).values(queued_at=at))

    def add_meta(self, inbox_id: int, meta: Mapping[str, Any]) -> None:
        row = self.session.get(InboxEventRow, inbox_id)
        if row is not None:
            row.meta = {**(row.meta or {}), **meta}
            self.session.flush()

    def reset_for_replay(self, inbox_id: int, now: datetime) -> None:
        self.session.execute(
            update(InboxEventRow)
            .where(InboxEventRow.id == inbox_id)
            .values(status="received", queued_at=now, processed_at=None)
        )

    def claim_unqueued(self, now: datetime, limit: int) -> list[int]:
        query = (
            select(InboxEventRow.id)
            .where(InboxEventRow.status == "received", InboxEventRow.queued_at.is_(None))
            .order_by(InboxEventRow.id)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        ids = list(self.session.execute(query).scalars())
        if ids:
            self.session.execute(update(InboxEventRow).where(InboxEventRow.id.in_(ids)).values(queued_at=now))
        return ids

    def claim_stale(self, older_than: datetime, now: datetime, limit: int) -> list[int]:
        # Queued long ago and still unprocessed (a lost message), or never queued at all
        # (no relay running): both go back to the broker.
        lost = or_(
            InboxEventRow.queued_at < older_than,
            and_(InboxEventRow.queued_at.is_(None), InboxEventRow.received_at < older_than),
        )
        query = (
            select(InboxEventRow.id)
            .where(InboxEventRow.status == "received", lost)
            .order_by(InboxEventRow.id)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        ids = list(self.session.execute(query).scalars())
        if ids:
            self.session.execute(update(InboxEventRow).where(InboxEventRow.id.in_(ids)).values(queued_at=now))
        return ids

    def page(self, status: str | None, after_id: int | None, limit: int) -> list[InboxEvent]:
        query = select(InboxEventRow).order_by(InboxEventRow.id).limit(limit)
        if status is not None:
            query = query.where(InboxEventRow.status == status)
        if after_id is not None:
            query = query.where(InboxEventRow.id > after_id)
        return [_inbox_event(row) for row in self.session.execute(query).scalars()]


class SqlCustomerRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def lock(self, customer_id: str, now: datetime) -> CustomerMapping:
        self.session.execute(
            _insert(self.session, StripeCustomerRow)
            .values(customer_id=customer_id, created_at=now)
            .on_conflict_do_nothing(index_elements=["customer_id"])
        )
        row = self.session.execute(
            select(StripeCustomerRow).where(StripeCustomerRow.customer_id == customer_id).with_for_update()
        ).scalar_one()
        return CustomerMapping(row.customer_id, row.account_id, row.mapped_at)

    def map_to(self, customer_id: str, account_id: str | None, mapped_at: datetime, cause: str) -> None:
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
        return self.session.execute(
            select(StripeCustomerRow.customer_id).where(StripeCustomerRow.account_id == account_id)
        ).scalar_one_or_none()


def _occurrence(raw: dict[str, Any] | None) -> Occurrence | None:
    if raw is None:
        return None
    return Occurrence(datetime.fromisoformat(raw["at"]), raw["event_id"])


def _occurrence_json(occ: Occurrence | None) -> dict[str, Any] | None:
    return None if occ is None else {"at": occ.at.isoformat(), "event_id": occ.event_id}


def _invoice_fact(row: InvoiceRow) -> InvoiceFact:
    failures = {int(k): _occurrence(v) for k, v in (row.failures or {}).items()}
    return InvoiceFact(
        invoice_id=row.invoice_id,
        customer_id=row.customer_id,
        status=InvoiceStatus(row.status),
        currency=row.currency,
        amount_remaining=row.amount_remaining,
        collection_method=row.collection_method,
        due_date=row.due_date,
        event_id=row.event_id,
        event_created=row.event_created,
        failures=MappingProxyType({k: v for k, v in sorted(failures.items()) if v is not None}),
        uncollectible_since=_occurrence(row.uncollectible_since),
    )


class SqlInvoiceRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def get(self, invoice_id: str) -> InvoiceFact | None:
        row = self.session.get(InvoiceRow, invoice_id)
        return None if row is None else _invoice_fact(row)

    def save(self, fact: InvoiceFact, now: datetime) -> None:
        row = self.session.get(InvoiceRow, fact.invoice_id)
        if row is None:
            row = InvoiceRow(invoice_id=fact.invoice_id)
            self.session.add(row)
        row.customer_id = fact.customer_id
        row.status = str(fact.status)
        row.currency = fact.currency
        row.amount_remaining = fact.amount_remaining
        row.collection_method = fact.collection_method
        row.due_date = fact.due_date
        row.event_id = fact.event_id
        row.event_created = fact.event_created
        row.failures = {str(k): _occurrence_json(v) for k, v in fact.failures.items()}
        row.uncollectible_since = _occurrence_json(fact.uncollectible_since)
        row.updated_at = now
        self.session.flush()

    def for_customer(self, customer_id: str) -> list[InvoiceFact]:
        rows = self.session.execute(
            select(InvoiceRow).where(InvoiceRow.customer_id == customer_id).order_by(InvoiceRow.invoice_id)
        ).scalars()
        return [_invoice_fact(row) for row in rows]


class SqlAccountRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def _holds(self, account_id: str) -> dict[HoldReason, Hold]:
        rows = self.session.execute(select(HoldRow).where(HoldRow.account_id == account_id)).scalars()
        return {HoldReason(r.reason): Hold(HoldReason(r.reason), r.since, r.cause, r.note) for r in rows}

    def _account(self, row: AccountRow, holds: dict[HoldReason, Hold]) -> Account:
        return Account(
            account_id=row.account_id,
            name=row.name,
            account_number=row.account_number,
            currency=row.currency,
            credit_limit=row.credit_limit,
            holds=holds,
            enforcement_paused_until=row.enforcement_paused_until,
            pause_note=row.pause_note,
            credit_review_cause=row.credit_review_cause,
        )

    def get(self, account_id: str, *, lock: bool = False) -> Account | None:
        query = select(AccountRow).where(AccountRow.account_id == account_id)
        if lock:
            query = query.with_for_update()
        row = self.session.execute(query).scalar_one_or_none()
        if row is None:
            return None
        return self._account(row, self._holds(account_id))

    def create_or_lock(self, account_id: str, now: datetime) -> tuple[Account, bool]:
        # Insert-or-lock, never insert-then-fail: a transaction creating the same account at the
        # same moment makes this INSERT wait for its commit and then do nothing, and the SELECT
        # finds (and locks) the committed row. RETURNING says which transaction created it.
        inserted = self.session.execute(
            _insert(self.session, AccountRow)
            .values(account_id=account_id, created_at=now, updated_at=now)
            .on_conflict_do_nothing(index_elements=["account_id"])
            .returning(AccountRow.account_id)
        ).scalar_one_or_none()
        account = self.get(account_id, lock=True)
        assert account is not None, "the account row was inserted or found just now"
        return account, inserted is not None

    def schedule_evaluation(self, account_id: str, at: datetime | None) -> None:
        self.session.execute(
            update(AccountRow).where(AccountRow.account_id == account_id).values(next_evaluation_at=at)
        )

    def save(self, account: Account, now: datetime) -> None:
        row = self.session.get(AccountRow, account.account_id)
        assert row is not None, "save() of an account that was never added"
        row.name = account.name
        row.account_number = account.account_number
        row.currency = account.currency
        row.credit_limit = account.credit_limit
        row.enforcement_paused_until = account.enforcement_paused_until
        row.pause_note = account.pause_note
        row.credit_review_cause = account.credit_review_cause
        row.updated_at = now
        row.revision = (row.revision or 0) + 1
        stored = {
            HoldReason(r.reason): r
            for r in self.session.execute(select(HoldRow).where(HoldRow.account_id == account.account_id)).scalars()
        }
        for reason, hold_row in stored.items():
            if reason not in account.holds:
                self.session.delete(hold_row)
        for reason, hold in account.holds.items():
            existing = stored.get(reason)
            if existing is None:
                self.session.add(
                    HoldRow(
                        account_id=account.account_id,
                        reason=str(reason),
                        since=hold.since,
                        cause=hold.cause,
                        note=hold.note,
                    )
                )
            else:
                existing.since, existing.cause, existing.note = hold.since, hold.cause, hold.note
        self.session.flush()

    def _due(self, column: Any, now: datetime, limit: int) -> list[str]:
        """Accounts whose time in ``column`` has come, by its index, locked (skipping rows locked elsewhere)."""
        return list(
            self.session.execute(
                select(AccountRow.account_id)
                .where(column <= now)
                .order_by(column)
                .limit(limit)
                .with_for_update(skip_locked=True)
            ).scalars()
        )

    def due_for_evaluation(self, now: datetime, limit: int) -> list[str]:
        """Accounts whose evaluation could have changed by now."""
        return self._due(AccountRow.next_evaluation_at, now, limit)

    def dispatch_mark(self, account_id: str) -> DispatchMark | None:
        return read_dispatch_mark(self.session.connection(), account_id)

    def schedule_crm_sync(self, account_id: str, at: datetime | None) -> None:
        self.session.execute(update(AccountRow).where(AccountRow.account_id == account_id).values(crm_sync_due_at=at))

    def crm_sync_due(self, now: datetime, limit: int, *, next_look: datetime) -> list[str]:
        """Accounts whose CRM sync is due; looked at again at ``next_look``."""
        ids = self._due(AccountRow.crm_sync_due_at, now, limit)
        if ids:
            self.session.execute(
                update(AccountRow).where(AccountRow.account_id.in_(ids)).values(crm_sync_due_at=next_look)
            )
        return ids

    def crm_state(self, account_id: str) -> CrmAccountState:
        row = self.session.get(AccountRow, account_id)
        if row is None:
            return CrmAccountState()
        return CrmAccountState(
            versions={k: datetime.fromisoformat(v) for k, v in (row.crm_versions or {}).items()},
            on_hold=row.crm_on_hold,
            written_on_hold=row.crm_written_on_hold,
        )

    def save_crm_state(self, account_id: str, state: CrmAccountState) -> None:
        self.session.execute(
            update(AccountRow)
            .where(AccountRow.account_id == account_id)
            .values(
                crm_versions={k: v.isoformat() for k, v in state.versions.items()},
                crm_on_hold=state.on_hold,
                crm_written_on_hold=state.written_on_hold,
            )
        )

    def page(self, *, on_hold: bool | None, after: str | None, limit: int) -> list[Account]:
        query = select(AccountRow).order_by(AccountRow.account_id).limit(limit)
        held = exists().where(HoldRow.account_id == AccountRow.account_id)
        if on_hold is True:
            query = query.where(held)
        elif on_hold is False:
            query = query.where(~held)
        if after is not None:
            query = query.where(AccountRow.account_id > after)
        rows = list(self.session.execute(query).scalars())
        if not rows:
            return []
        holds: dict[str, dict[HoldReason, Hold]] = {row.account_id: {} for row in rows}
        for h in self.session.execute(select(HoldRow).where(HoldRow.account_id.in_(list(holds)))).scalars():
            holds[h.account_id][HoldReason(h.reason)] = Hold(HoldReason(h.reason), h.since, h.cause, h.note)
        return [self._account(row, holds[row.account_id]) for row in rows]


_TIMELINE = cast(Table, TimelineRow.__table__)


class SqlTimelineRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def append(self, account_id: str, entries: Iterable[TimelineEntry]) -> None:
        rows = [
            {
                "account_id": account_id,
                "at": entry.at,
                "kind": entry.kind,
                "actor": entry.actor,
                "cause": entry.cause,
                "detail": dict(entry.detail),
            }
            for entry in entries
        ]
        if rows:
            self.session.flush()  # the account row first (the entries refer to it)
            # One statement for all of them (executemany, no RETURNING): dispatch appends 50 at a time.
            self.session.execute(insert(_TIMELINE), rows)

    def page(self, account_id: str, before_id: int | None, limit: int) -> Sequence[TimelineRecord]:
        query = (
            select(TimelineRow).where(TimelineRow.account_id == account_id).order_by(TimelineRow.id.desc()).limit(limit)
        )
        if before_id is not None:
            query = query.where(and_(TimelineRow.id < before_id))
        return [
            TimelineRecord(
                row.id,
                row.account_id,
                TimelineEntry(row.at, row.kind, row.actor, row.cause, row.detail or {}),
            )
            for row in self.session.execute(query).scalars()
        ]


def _dispute(row: DisputeRow) -> DisputeFact:
    return DisputeFact(
        dispute_id=row.dispute_id,
        customer_id=row.customer_id,
        charge_id=row.charge_id,
        status=row.status,
        amount=row.amount,
        currency=row.currency,
        event_id=row.event_id,
        event_created=row.event_created,
        opened_event_id=row.opened_event_id,
        lifted_at=row.lifted_at,
        opened_at=row.opened_at or row.event_created,  # rows from before 0007: the best known
    )


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
        row.customer_id = fact.customer_id
        row.charge_id = fact.charge_id
        row.status = fact.status
        row.amount = fact.amount
        row.currency = fact.currency
        row.event_id = fact.event_id
        row.event_created = fact.event_created
        row.opened_event_id = fact.opened_event_id
        row.opened_at = fact.opening[0]
        row.lifted_at = fact.lifted_at
        row.updated_at = now
        self.session.flush()

    def for_customer(self, customer_id: str) -> list[DisputeFact]:
        rows = self.session.execute(
            select(DisputeRow).where(DisputeRow.customer_id == customer_id).order_by(DisputeRow.dispute_id)
        ).scalars()
        return [_dispute(row) for row in rows]

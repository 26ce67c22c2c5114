"""The inbox in the database: stored deliveries as processing and the sweep see them, and reconciliation's cursor.

The webhook's own hot path, storing one delivery, is :mod:`adapters.db.inbox_store`.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, and_, delete, func, or_, select, update
from sqlalchemy.orm import Session

from adapters.db.mapping import fact_from_row
from adapters.db.tables import InboxEventRow, ReconciliationCursorRow
from services.ports import InboxEvent

# What the retention index holds (tables.py): deliveries that ended and may be purged once old.
_ENDED = ("processed", "ignored")


def _inbox_event(row: InboxEventRow) -> InboxEvent:
    return fact_from_row(InboxEvent, row, meta=dict(row.meta or {}))


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
        return self._claim(InboxEventRow.queued_at.is_(None), now, limit)

    def claim_stale(self, older_than: datetime, now: datetime, limit: int) -> list[int]:
        # Queued long ago and still unprocessed (a lost message), or never queued at all
        # (no relay running): both go back to the broker.
        lost = or_(
            InboxEventRow.queued_at < older_than,
            and_(InboxEventRow.queued_at.is_(None), InboxEventRow.received_at < older_than),
        )
        return self._claim(lost, now, limit)

    def _claim(self, waiting: ColumnElement[bool], now: datetime, limit: int) -> list[int]:
        """Lock the oldest unprocessed deliveries that are ``waiting`` (skipping those locked elsewhere), queued now."""
        query = (
            select(InboxEventRow.id)
            .where(InboxEventRow.status == "received", waiting)
            .order_by(InboxEventRow.id)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        ids = list(self.session.execute(query).scalars())
        if ids:
            self.session.execute(update(InboxEventRow).where(InboxEventRow.id.in_(ids)).values(queued_at=now))
        return ids

    def delete_ended(self, received_before: datetime, limit: int) -> int:
        # The oldest first, through the partial index of ended deliveries (never a scan of the inbox);
        # rows locked elsewhere are skipped, not waited for (PostgreSQL; SQLite has no row locks).
        oldest = (
            select(InboxEventRow.id)
            .where(InboxEventRow.status.in_(_ENDED), InboxEventRow.received_at < received_before)
            .order_by(InboxEventRow.received_at)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        result = self.session.execute(
            delete(InboxEventRow).where(InboxEventRow.id.in_(oldest.scalar_subquery())),
            execution_options={"synchronize_session": False},
        )
        return int(getattr(result, "rowcount", 0) or 0)

    def page(self, status: str | None, after_id: int | None, limit: int) -> list[InboxEvent]:
        query = select(InboxEventRow).order_by(InboxEventRow.id).limit(limit)
        if status is not None:
            query = query.where(InboxEventRow.status == status)
        if after_id is not None:
            query = query.where(InboxEventRow.id > after_id)
        return [_inbox_event(row) for row in self.session.execute(query).scalars()]

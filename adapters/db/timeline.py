"""Every account's timeline in the database: entries appended in one statement, read newest first."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import cast

from sqlalchemy import Table, and_, insert, select
from sqlalchemy.orm import Session

from adapters.db.mapping import column_values, fact_from_row
from adapters.db.tables import TimelineRow
from domain.timeline import TimelineEntry
from services.ports import TimelineRecord

_TIMELINE = cast(Table, TimelineRow.__table__)


class SqlTimelineRepository:
    def __init__(self, session: Session) -> None:
        self.session = session
        self._appended: dict[str, list[TimelineEntry]] = {}

    def append(self, account_id: str, entries: Iterable[TimelineEntry]) -> None:
        entries = list(entries)
        if entries:
            self._appended.setdefault(account_id, []).extend(entries)
        rows = [column_values(entry, account_id=account_id, detail=dict(entry.detail)) for entry in entries]
        if rows:
            self.session.flush()  # the account row first (the entries refer to it)
            # One statement for all of them (executemany, no RETURNING): dispatch appends 50 at a time.
            self.session.execute(insert(_TIMELINE), rows)

    def appended(self) -> dict[str, list[TimelineEntry]]:
        return {account_id: list(entries) for account_id, entries in self._appended.items()}

    def forget_appended(self) -> None:
        """After a commit or a rollback: the next transaction starts with none."""
        self._appended = {}

    def page(self, account_id: str, before_id: int | None, limit: int) -> Sequence[TimelineRecord]:
        query = (
            select(TimelineRow).where(TimelineRow.account_id == account_id).order_by(TimelineRow.id.desc()).limit(limit)
        )
        if before_id is not None:
            query = query.where(and_(TimelineRow.id < before_id))
        return [
            TimelineRecord(row.id, row.account_id, fact_from_row(TimelineEntry, row, detail=row.detail or {}))
            for row in self.session.execute(query).scalars()
        ]

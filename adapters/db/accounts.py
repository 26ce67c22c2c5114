"""Accounts in the database: the account row, its holds, its CRM state, and what senders compare."""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import exists, select, update
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

from adapters.db.engine import insert_for
from adapters.db.mapping import column_values, copy_to_row, fact_from_row
from adapters.db.tables import AccountRow, HoldRow
from domain.account import Account
from domain.crm import CrmAccountState
from domain.holds import Hold, HoldReason
from services.ports import DispatchMark

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


def _hold(row: HoldRow) -> Hold:
    return fact_from_row(Hold, row, reason=HoldReason(row.reason))


class SqlAccountRepository:
    """Accounts with their holds. Within one transaction it remembers what it saved, and the hold rows
    it read, so that reading an account again after saving it (the outgoing events do, before the
    commit) and saving it (which compares holds) cost no further query; ``forget`` at its end."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self._saved: dict[str, Account] = {}
        self._rows: dict[str, AccountRow] = {}
        self._hold_rows: dict[str, dict[HoldReason, HoldRow]] = {}

    def forget(self) -> None:
        """The transaction ended: what it read or saved may change now."""
        self._saved.clear()
        self._rows.clear()
        self._hold_rows.clear()

    def _holds(self, account_id: str) -> dict[HoldReason, Hold]:
        rows = self.session.execute(select(HoldRow).where(HoldRow.account_id == account_id)).scalars()
        self._hold_rows[account_id] = {HoldReason(r.reason): r for r in rows}
        return {reason: _hold(r) for reason, r in self._hold_rows[account_id].items()}

    def get(self, account_id: str, *, lock: bool = False) -> Account | None:
        if not lock and account_id in self._saved:
            return copy.deepcopy(self._saved[account_id])
        query = select(AccountRow).where(AccountRow.account_id == account_id)
        if lock:
            query = query.with_for_update()
        row = self.session.execute(query).scalar_one_or_none()
        if row is None:
            return None
        self._rows[account_id] = row
        return fact_from_row(Account, row, holds=self._holds(account_id))

    def create_or_lock(self, account_id: str, now: datetime) -> tuple[Account, bool]:
        # Insert-or-lock, never insert-then-fail: a transaction creating the same account at the
        # same moment makes this INSERT wait for its commit and then do nothing, and the SELECT
        # finds (and locks) the committed row. RETURNING says which transaction created it.
        inserted = self.session.execute(
            insert_for(self.session, AccountRow)
            .values(account_id=account_id, created_at=now, updated_at=now)
            .on_conflict_do_nothing(index_elements=["account_id"])
            .returning(AccountRow.account_id)
        ).scalar_one_or_none()
        account = self.get(account_id, lock=True)
        assert account is not None, "the account row was inserted or found just now"
        return account, inserted is not None

    def schedule_evaluation(self, account_id: str, at: datetime | None) -> None:
        row = self._rows.get(account_id)
        if row is not None:  # written with the account's next save or flush, in the same UPDATE
            row.next_evaluation_at = at
            return
        self.session.execute(
            update(AccountRow).where(AccountRow.account_id == account_id).values(next_evaluation_at=at)
        )

    def announced_enforcement(self, account_id: str) -> str | None:
        if account_id in self._rows:  # read with the account (an UPDATE through the session keeps it current)
            return self._rows[account_id].announced_enforcement
        return self.session.execute(
            select(AccountRow.announced_enforcement).where(AccountRow.account_id == account_id)
        ).scalar_one_or_none()

    def announce_enforcement(self, account_id: str, encoded: str) -> None:
        self.session.execute(
            update(AccountRow).where(AccountRow.account_id == account_id).values(announced_enforcement=encoded)
        )

    def save(self, account: Account, now: datetime) -> None:
        row = self._rows.get(account.account_id) or self.session.get(AccountRow, account.account_id)
        assert row is not None, "save() of an account that was never added"
        copy_to_row(row, account, leave_out=["holds"], updated_at=now, revision=(row.revision or 0) + 1)
        stored = self._hold_rows.get(account.account_id)
        if stored is None:
            rows = self.session.execute(select(HoldRow).where(HoldRow.account_id == account.account_id)).scalars()
            stored = {HoldReason(r.reason): r for r in rows}
        for reason, hold_row in stored.items():
            if reason not in account.holds:
                self.session.delete(hold_row)
        kept: dict[HoldReason, HoldRow] = {}
        for reason, hold in account.holds.items():
            existing = stored.get(reason)
            if existing is None:
                existing = HoldRow(**column_values(hold, account_id=account.account_id, reason=str(reason)))
                self.session.add(existing)
            else:
                copy_to_row(existing, hold)
            kept[reason] = existing
        self.session.flush()
        self._hold_rows[account.account_id] = kept
        self._saved[account.account_id] = copy.deepcopy(account)

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

    def page(
        self, *, on_hold: bool | None, after: str | None, limit: int, reason: HoldReason | None = None
    ) -> list[Account]:
        """Accounts by id after ``after``; ``reason``: only those held for it (one probe of the holds' key each)."""
        query = select(AccountRow).order_by(AccountRow.account_id).limit(limit)
        held = exists().where(HoldRow.account_id == AccountRow.account_id)
        if reason is not None:
            # (account_id, reason) is the holds' primary key: an exact look-up per account, walked in id order.
            query = query.where(held.where(HoldRow.reason == str(reason)))
        elif on_hold is True:
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
            holds[h.account_id][HoldReason(h.reason)] = _hold(h)
        return [fact_from_row(Account, row, holds=holds[row.account_id]) for row in rows]

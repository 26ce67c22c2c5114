"""Provisioning requests and their attempts in the database."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any, cast

from sqlalchemy import Table, func, insert, or_, select, update
from sqlalchemy.orm import Session

from adapters.db.mapping import column_values, fact_from_row
from adapters.db.tables import ProvisioningAttemptRow, ProvisioningRequestRow
from domain.provisioning import NOT_SENT, PENDING, Attempt, ProvisioningRequest, RequestState

_ATTEMPTS = cast(Table, ProvisioningAttemptRow.__table__)


def _attempt(row: ProvisioningAttemptRow) -> Attempt:
    return fact_from_row(Attempt, row)


class SqlProvisioningRepository:
    def __init__(self, session: Session) -> None:
        self.session = session
        self._rows: dict[str, ProvisioningRequestRow] = {}

    def _request(self, row: ProvisioningRequestRow, attempts: list[Attempt] | None = None) -> ProvisioningRequest:
        self._rows[row.request_id] = row
        return fact_from_row(
            ProvisioningRequest,
            row,
            state=RequestState(row.state),
            waiting_for=tuple(row.waiting_for or ()),
            attempts=attempts or [],
        )

    def _with_attempts(self, rows: Sequence[ProvisioningRequestRow]) -> list[ProvisioningRequest]:
        attempts: dict[str, list[Attempt]] = {row.request_id: [] for row in rows}
        if attempts:
            for a in self.session.execute(
                select(ProvisioningAttemptRow)
                .where(ProvisioningAttemptRow.request_id.in_(list(attempts)))
                .order_by(ProvisioningAttemptRow.id)
            ).scalars():
                attempts[a.request_id].append(_attempt(a))
        return [self._request(row, attempts[row.request_id]) for row in rows]

    def add(self, request: ProvisioningRequest, now: datetime) -> None:
        row = ProvisioningRequestRow(
            **column_values(
                request,
                leave_out=["attempts"],
                state=str(request.state),
                waiting_for=list(request.waiting_for),
                round_attempts=0,
                updated_at=now,
            )
        )
        self.session.add(row)
        self.session.flush()
        self._rows[row.request_id] = row

    def save(self, request: ProvisioningRequest, now: datetime, *, due_at: datetime | None = None) -> None:
        row = self._rows.get(request.request_id) or self.session.get(ProvisioningRequestRow, request.request_id)
        assert row is not None, "save() of a request that was never added"
        row.state = str(request.state)
        row.waiting_for = list(request.waiting_for)
        row.failure = request.failure
        row.updated_at = now
        row.due_at = due_at
        if request.state is RequestState.QUEUED and due_at is None:
            row.due_at = now

    def save_all(self, saved: Iterable[tuple[ProvisioningRequest, datetime | None]], now: datetime) -> None:
        """Save many requests (each with its due time, as ``save``): one UPDATE per distinct set of values.

        Dispatch saves a batch at once: most requests of a batch end alike (all provisioned), so
        this is one statement where ``save`` would flush one per request. The session's copies
        are updated too (``synchronize_session``), so later reads in the transaction see the change.
        """
        groups: dict[tuple[Any, ...], list[str]] = {}
        for request, due_at in saved:
            if request.state is RequestState.QUEUED and due_at is None:
                due_at = now
            key = (str(request.state), tuple(request.waiting_for), request.failure, due_at)
            groups.setdefault(key, []).append(request.request_id)
        for (state, waiting_for, failure, due_at), ids in groups.items():
            self.session.execute(
                update(ProvisioningRequestRow)
                .where(ProvisioningRequestRow.request_id.in_(ids))
                .values(state=state, waiting_for=list(waiting_for), failure=failure, due_at=due_at, updated_at=now)
                .execution_options(synchronize_session="evaluate")
            )

    def reset_round(self, request_id: str) -> None:
        self.session.execute(
            update(ProvisioningRequestRow)
            .where(ProvisioningRequestRow.request_id == request_id)
            .values(round_attempts=0)
        )

    def get(self, request_id: str, *, lock: bool = False) -> ProvisioningRequest | None:
        query = select(ProvisioningRequestRow).where(ProvisioningRequestRow.request_id == request_id)
        if lock:
            query = query.with_for_update()
        row = self.session.execute(query).scalar_one_or_none()
        return None if row is None else self._with_attempts([row])[0]

    def find_by_order(self, account_id: str, order_id: str) -> ProvisioningRequest | None:
        row = self.session.execute(
            select(ProvisioningRequestRow).where(
                ProvisioningRequestRow.account_id == account_id, ProvisioningRequestRow.order_id == order_id
            )
        ).scalar_one_or_none()
        return None if row is None else self._with_attempts([row])[0]

    def find_by_order_id(self, order_id: str) -> ProvisioningRequest | None:
        row = self.session.execute(
            select(ProvisioningRequestRow)
            .where(ProvisioningRequestRow.order_id == order_id)
            .order_by(ProvisioningRequestRow.created_at)
            .limit(1)
        ).scalar_one_or_none()
        return None if row is None else self._with_attempts([row])[0]

    def pending_for_accounts(self, account_ids: Sequence[str]) -> dict[str, list[ProvisioningRequest]]:
        """The requests not yet final of each of these accounts, oldest first, read in one query."""
        found: dict[str, list[ProvisioningRequest]] = {account_id: [] for account_id in account_ids}
        if found:
            query = select(ProvisioningRequestRow).where(
                ProvisioningRequestRow.account_id.in_(list(found)),
                ProvisioningRequestRow.state.in_([str(s) for s in PENDING]),
            )
            order = (ProvisioningRequestRow.created_at, ProvisioningRequestRow.request_id)
            for row in self.session.execute(query.order_by(*order)).scalars():
                found[row.account_id].append(self._request(row))
        return found

    def pending_between(self, first: str, last: str) -> dict[str, list[ProvisioningRequest]]:
        """The requests not yet final of the accounts ``first`` to ``last`` (by account id), oldest first, in one
        query, unlocked and without attempts (none: absent). For reads over many accounts: the rows are not
        kept for ``save``."""
        found: dict[str, list[ProvisioningRequest]] = {}
        rows = self.session.execute(
            select(ProvisioningRequestRow)
            .where(
                ProvisioningRequestRow.account_id.between(first, last),
                ProvisioningRequestRow.state.in_([str(s) for s in PENDING]),
            )
            .order_by(ProvisioningRequestRow.created_at, ProvisioningRequestRow.request_id)
        ).scalars()
        for row in rows:
            request = fact_from_row(
                ProvisioningRequest,
                row,
                state=RequestState(row.state),
                waiting_for=tuple(row.waiting_for or ()),
                attempts=[],
            )
            found.setdefault(row.account_id, []).append(request)
        return found

    def pending_for_account(self, account_id: str, *, lock: bool = False) -> list[ProvisioningRequest]:
        """Requests not yet final, oldest first. ``lock`` locks those not yet sent (awaiting, queued):
        admission may change them; a request provisioning belongs to its sender and is only read."""
        order = (ProvisioningRequestRow.created_at, ProvisioningRequestRow.request_id)
        mine = ProvisioningRequestRow.account_id == account_id
        if not lock:
            query = select(ProvisioningRequestRow).where(
                mine, ProvisioningRequestRow.state.in_([str(s) for s in PENDING])
            )
            return [self._request(row) for row in self.session.execute(query.order_by(*order)).scalars()]
        not_sent = select(ProvisioningRequestRow).where(
            mine, ProvisioningRequestRow.state.in_([str(s) for s in NOT_SENT])
        )
        sending = select(ProvisioningRequestRow).where(
            mine, ProvisioningRequestRow.state == str(RequestState.PROVISIONING)
        )
        rows = list(self.session.execute(not_sent.order_by(*order).with_for_update()).scalars())
        rows += self.session.execute(sending.order_by(*order)).scalars()
        rows.sort(key=lambda row: (row.created_at, row.request_id))
        return [self._request(row) for row in rows]

    def count_awaiting(self, account_id: str) -> int:
        return int(
            self.session.execute(
                select(func.count()).where(
                    ProvisioningRequestRow.account_id == account_id,
                    ProvisioningRequestRow.state == str(RequestState.AWAITING),
                )
            ).scalar_one()
        )

    def next_queued(self, account_id: str, now: datetime, limit: int) -> list[tuple[ProvisioningRequest, int]]:
        """Lock the account's oldest queued requests due by ``now``, each with its attempts this round."""
        rows = self.session.execute(
            select(ProvisioningRequestRow)
            .where(
                ProvisioningRequestRow.account_id == account_id,
                ProvisioningRequestRow.state == str(RequestState.QUEUED),
                ProvisioningRequestRow.due_at <= now,
            )
            .order_by(ProvisioningRequestRow.created_at, ProvisioningRequestRow.request_id)
            .limit(limit)
            .with_for_update()
        ).scalars()
        return [(self._request(row), row.round_attempts) for row in rows]

    def lock_many(self, request_ids: Iterable[str]) -> list[ProvisioningRequest]:
        """Lock these requests, oldest first (one query; their attempts are not loaded)."""
        rows = self.session.execute(
            select(ProvisioningRequestRow)
            .where(ProvisioningRequestRow.request_id.in_(list(request_ids)))
            .order_by(ProvisioningRequestRow.created_at, ProvisioningRequestRow.request_id)
            .with_for_update()
        ).scalars()
        return [self._request(row) for row in rows]

    def failed_for_account(self, account_id: str) -> list[ProvisioningRequest]:
        """The account's failed requests, oldest first, locked."""
        rows = self.session.execute(
            select(ProvisioningRequestRow)
            .where(
                ProvisioningRequestRow.account_id == account_id,
                ProvisioningRequestRow.state == str(RequestState.FAILED),
            )
            .order_by(ProvisioningRequestRow.created_at, ProvisioningRequestRow.request_id)
            .with_for_update()
        ).scalars()
        return [self._request(row) for row in rows]

    def sending(self, account_id: str, since_before: datetime) -> list[ProvisioningRequest]:
        """The account's requests provisioning since before ``since_before``, locked (the sweep's check)."""
        rows = self.session.execute(
            select(ProvisioningRequestRow)
            .where(
                ProvisioningRequestRow.account_id == account_id,
                ProvisioningRequestRow.state == str(RequestState.PROVISIONING),
                ProvisioningRequestRow.due_at < since_before,
            )
            .order_by(ProvisioningRequestRow.created_at, ProvisioningRequestRow.request_id)
            .with_for_update()
        ).scalars()
        return [self._request(row) for row in rows]

    def add_attempts(self, attempts: Iterable[tuple[str, Attempt]]) -> None:
        values = [column_values(attempt, request_id=request_id) for request_id, attempt in attempts]
        if values:
            self.session.execute(insert(_ATTEMPTS), values)  # executemany, no ORM
            # One UPDATE per distinct count (one in practice), not one per request, and no
            # in-session evaluation of its criteria: nothing here reads round_attempts back.
            by_count: dict[int, list[str]] = {}
            for request_id, count in Counter(str(v["request_id"]) for v in values).items():
                by_count.setdefault(count, []).append(request_id)
            for count, request_ids in by_count.items():
                self.session.execute(
                    update(ProvisioningRequestRow)
                    .where(ProvisioningRequestRow.request_id.in_(request_ids))
                    .values(round_attempts=ProvisioningRequestRow.round_attempts + count)
                    .execution_options(synchronize_session=False)
                )

    def accounts_to_dispatch(self, queued_due_before: datetime, provisioning_before: datetime, limit: int) -> list[str]:
        """Accounts with a queued request overdue or a request provisioning for long (its sender may be gone)."""
        rows = self.session.execute(
            select(ProvisioningRequestRow.account_id)
            .where(
                or_(
                    (ProvisioningRequestRow.state == str(RequestState.QUEUED))
                    & (ProvisioningRequestRow.due_at < queued_due_before),
                    (ProvisioningRequestRow.state == str(RequestState.PROVISIONING))
                    & (ProvisioningRequestRow.due_at < provisioning_before),
                )
            )
            .group_by(ProvisioningRequestRow.account_id)
            .order_by(func.min(ProvisioningRequestRow.due_at))
            .limit(limit)
        ).scalars()
        return list(rows)

    def next_due_at(self, account_id: str) -> datetime | None:
        """When the account's next queued request is due (None: none is queued)."""
        due: datetime | None = self.session.execute(
            select(func.min(ProvisioningRequestRow.due_at)).where(
                ProvisioningRequestRow.account_id == account_id,
                ProvisioningRequestRow.state == str(RequestState.QUEUED),
            )
        ).scalar_one_or_none()
        if due is not None and due.tzinfo is None:  # SQLite keeps UTC times naive
            due = due.replace(tzinfo=UTC)
        return due

    def page(
        self,
        *,
        state: str | None,
        account_id: str | None,
        after: tuple[datetime, str] | None,
        limit: int,
        newest_first: bool = False,
    ) -> list[ProvisioningRequest]:
        """Requests oldest first after the cursor ``after``; ``newest_first``: newest first, older than it."""
        created_col, id_col = ProvisioningRequestRow.created_at, ProvisioningRequestRow.request_id
        order = (created_col.desc(), id_col.desc()) if newest_first else (created_col, id_col)
        query = select(ProvisioningRequestRow).order_by(*order).limit(limit)
        if state is not None:
            query = query.where(ProvisioningRequestRow.state == state)
        if account_id is not None:
            query = query.where(ProvisioningRequestRow.account_id == account_id)
        if after is not None:
            created, request_id = after
            if newest_first:
                beyond = or_(created_col < created, (created_col == created) & (id_col < request_id))
            else:
                beyond = or_(created_col > created, (created_col == created) & (id_col > request_id))
            query = query.where(beyond)
        return self._with_attempts(list(self.session.execute(query).scalars()))

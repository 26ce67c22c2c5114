"""One database transaction, with follow-up work that runs only once it has committed."""

from __future__ import annotations

from collections.abc import Callable
from typing import Self

import structlog
from sqlalchemy import text
from sqlalchemy.orm import Session, sessionmaker

from adapters.db.accounts import SqlAccountRepository
from adapters.db.customers import SqlCustomerRepository, SqlInvoiceRepository
from adapters.db.disputes import SqlDisputeRepository
from adapters.db.inbox import SqlInboxRepository
from adapters.db.outgoing import SqlOutboxRepository, SqlSubscriptionRepository
from adapters.db.provisioning_requests import SqlProvisioningRepository
from adapters.db.timeline import SqlTimelineRepository
from adapters.db.tokens import SqlTokenRepository

log = structlog.get_logger(__name__)


class SqlUnitOfWork:
    """``before_commit``: runs in the transaction just before it commits (outgoing events are derived
    there from what the transaction appended to timelines: see services.outgoing)."""

    def __init__(
        self, session_factory: sessionmaker[Session], before_commit: Callable[[SqlUnitOfWork], None] | None = None
    ) -> None:
        self._session_factory = session_factory
        self._before_commit = before_commit
        self._after_commit: list[Callable[[], None]] = []

    def __enter__(self) -> Self:
        self.session = self._session_factory()
        self.inbox = SqlInboxRepository(self.session)
        self.customers = SqlCustomerRepository(self.session)
        self.invoices = SqlInvoiceRepository(self.session)
        self.accounts = SqlAccountRepository(self.session)
        self.timeline = SqlTimelineRepository(self.session)
        self.requests = SqlProvisioningRepository(self.session)
        self.disputes = SqlDisputeRepository(self.session)
        self.tokens = SqlTokenRepository(self.session)
        self.subscriptions = SqlSubscriptionRepository(self.session)
        self.outbox = SqlOutboxRepository(self.session)
        self._after_commit = []
        return self

    def __exit__(self, *exc: object) -> None:
        self.session.rollback()
        self.session.close()

    def read_only(self) -> None:
        """Make this transaction a read-only snapshot; call it first, before any read.

        PostgreSQL: REPEATABLE READ, READ ONLY (every read sees one moment; a write fails). SQLite's
        transaction (BEGIN IMMEDIATE, adapters/db/engine.py) is one snapshot already, and it is
        rolled back at the end as every transaction not committed is.
        """
        if self.session.get_bind().dialect.name == "postgresql":
            self.session.execute(text("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY"))

    def after_commit(self, action: Callable[[], None]) -> None:
        self._after_commit.append(action)

    def commit(self) -> None:
        if self._before_commit is not None:
            self._before_commit(self)
        self.timeline.forget_appended()
        self.session.commit()
        self._forget()
        actions, self._after_commit = self._after_commit, []
        for action in actions:
            # Follow-ups are best effort: what they start is also found again by a sweep.
            try:
                action()
            except Exception:
                log.exception("follow_up_failed")

    def rollback(self) -> None:
        self._after_commit = []
        self.timeline.forget_appended()
        self._forget()
        self.session.rollback()

    def _forget(self) -> None:
        """The transaction ended: the repositories' memories of its rows and locks go with it."""
        self.accounts.forget()
        self.customers.forget()
        self.invoices.forget()

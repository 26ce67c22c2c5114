"""What the use cases need from the outside world; adapters implement these."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol, Self

from domain.account import Account
from domain.invoices import InvoiceFact
from domain.timeline import TimelineEntry


@dataclass(frozen=True)
class InboxEvent:
    """A stored webhook delivery."""

    id: int
    source: str
    external_id: str
    event_type: str
    payload: str
    status: str
    attempts: int
    last_error: str | None
    account_id: str | None
    received_at: datetime
    processed_at: datetime | None


@dataclass(frozen=True)
class Handled:
    """How an event ended: ``processed`` or ``ignored``, and the account it concerned."""

    status: str
    account_id: str | None = None


@dataclass(frozen=True)
class CustomerMapping:
    customer_id: str
    account_id: str | None
    mapped_at: datetime | None


@dataclass(frozen=True)
class TimelineRecord:
    id: int
    account_id: str
    entry: TimelineEntry


class InboxRepository(Protocol):
    def add(self, source: str, external_id: str, event_type: str, payload: str, now: datetime) -> int | None:
        """Store a delivery; return its id, or None when (source, external_id) is already stored."""

    def get(self, inbox_id: int, *, lock: bool = False) -> InboxEvent | None: ...

    def find(self, source: str, external_id: str) -> InboxEvent | None: ...

    def record_outcome(
        self, inbox_id: int, status: str, now: datetime, *, error: str | None = None, account_id: str | None = None
    ) -> None: ...

    def record_attempt_error(self, inbox_id: int, error: str) -> None: ...

    def reset_for_replay(self, inbox_id: int, now: datetime) -> None: ...

    def claim_stale(self, older_than: datetime, now: datetime, limit: int) -> list[int]: ...

    def page(self, status: str | None, after_id: int | None, limit: int) -> list[InboxEvent]: ...


class CustomerRepository(Protocol):
    def lock(self, customer_id: str, now: datetime) -> CustomerMapping:
        """Create the customer row if needed and lock it for this transaction."""

    def map_to(self, customer_id: str, account_id: str | None, mapped_at: datetime, cause: str) -> None: ...

    def customer_of(self, account_id: str) -> str | None: ...


class InvoiceRepository(Protocol):
    def get(self, invoice_id: str) -> InvoiceFact | None: ...

    def save(self, fact: InvoiceFact, now: datetime) -> None: ...

    def for_customer(self, customer_id: str) -> list[InvoiceFact]: ...


class AccountRepository(Protocol):
    def get(self, account_id: str, *, lock: bool = False) -> Account | None: ...

    def add(self, account: Account, now: datetime) -> None: ...

    def save(self, account: Account, now: datetime) -> None: ...

    def schedule_evaluation(self, account_id: str, at: datetime | None) -> None:
        """Record the next time the account's evaluation could change by time alone."""

    def page(self, *, on_hold: bool | None, after: str | None, limit: int) -> list[Account]: ...


class TimelineRepository(Protocol):
    def append(self, account_id: str, entries: Iterable[TimelineEntry]) -> None: ...

    def page(self, account_id: str, before_id: int | None, limit: int) -> Sequence[TimelineRecord]: ...


class UnitOfWork(Protocol):
    @property
    def inbox(self) -> InboxRepository: ...

    @property
    def customers(self) -> CustomerRepository: ...

    @property
    def invoices(self) -> InvoiceRepository: ...

    @property
    def accounts(self) -> AccountRepository: ...

    @property
    def timeline(self) -> TimelineRepository: ...

    def __enter__(self) -> Self: ...

    def __exit__(self, *exc: object) -> None: ...

    def commit(self) -> None:
        """Commit, then run the follow-ups registered with after_commit."""

    def rollback(self) -> None: ...

    def after_commit(self, action: Callable[[], None]) -> None: ...


class Publisher(Protocol):
    """Sends work to the worker processes."""

    def process_inbox_event(self, inbox_id: int) -> None: ...


UnitOfWorkFactory = Callable[[], UnitOfWork]


class StorageUnavailable(RuntimeError):
    """The database cannot be reached or asked us to try again: a transient failure."""


Clock = Callable[[], datetime]

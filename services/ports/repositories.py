"""Ports of storage: the repositories of each aggregate and the unit of work that holds them."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Protocol, Self

from domain.access import ApiToken
from domain.account import Account
from domain.crm import CrmAccountState
from domain.disputes import DisputeFact
from domain.holds import HoldReason
from domain.invoices import InvoiceFact
from domain.provisioning import Attempt, ProvisioningRequest
from domain.timeline import TimelineEntry
from services.ports.inbox import InboxRepository
from services.ports.outgoing import OutboxRepository, SubscriptionRepository

if TYPE_CHECKING:
    from services.ports.peers import DispatchMark


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


class CustomerRepository(Protocol):
    def lock(self, customer_id: str, now: datetime) -> CustomerMapping:
        """Create the customer row if needed and lock it for this transaction."""

    def map_to(self, customer_id: str, account_id: str | None, mapped_at: datetime, cause: str) -> None: ...

    def customer_of(self, account_id: str) -> str | None: ...

    def customers_of(self, account_ids: Sequence[str]) -> dict[str, str]:
        """The Stripe customer of each account that has one (one query for a page of accounts)."""


class InvoiceRepository(Protocol):
    def get(self, invoice_id: str) -> InvoiceFact | None: ...

    def save(self, fact: InvoiceFact, now: datetime) -> None: ...

    def for_customer(self, customer_id: str) -> list[InvoiceFact]: ...

    def for_customers(self, customer_ids: Sequence[str]) -> dict[str, list[InvoiceFact]]: ...

    def for_accounts(self, first: str, last: str) -> dict[str, list[InvoiceFact]]:
        """The invoice facts of the accounts ``first`` to ``last`` (by id), by account, in one read."""


class AccountRepository(Protocol):
    def get(self, account_id: str, *, lock: bool = False) -> Account | None: ...

    def create_or_lock(self, account_id: str, now: datetime) -> tuple[Account, bool]:
        """Create the account if it is missing and lock it; the account and whether this call created it.

        Two transactions creating one account at once both succeed: the second waits for the
        first to commit, then finds its row. Lock order everywhere: the Stripe customer first.
        """

    def save(self, account: Account, now: datetime) -> None: ...

    def schedule_evaluation(self, account_id: str, at: datetime | None) -> None:
        """Record the next time the account's evaluation could change by time alone."""

    def page(
        self, *, on_hold: bool | None, after: str | None, limit: int, reason: HoldReason | None = None
    ) -> list[Account]:
        """Accounts by id after ``after``: all, held or not held; ``reason``: only those with a hold of it."""

    def due_for_evaluation(self, now: datetime, limit: int) -> list[str]:
        """Accounts whose next evaluation time has come (never a scan of all accounts)."""

    def dispatch_mark(self, account_id: str) -> DispatchMark | None:
        """The account's mark in this transaction (see DispatchMark)."""

    def schedule_crm_sync(self, account_id: str, at: datetime | None) -> None:
        """When to look again whether the CRM shows the account's effective hold (None: it does)."""

    def crm_sync_due(self, now: datetime, limit: int, *, next_look: datetime) -> list[str]:
        """Accounts whose CRM sync is due (never a scan of all accounts); looked at again at ``next_look``."""

    def crm_state(self, account_id: str) -> CrmAccountState: ...

    def save_crm_state(self, account_id: str, state: CrmAccountState) -> None: ...

    def announced_enforcement(self, account_id: str) -> str | None:
        """What subscribers were last told the account's holds do (domain.outgoing.Enforcement, encoded)."""

    def announce_enforcement(self, account_id: str, encoded: str) -> None: ...


class DisputeRepository(Protocol):
    def get(self, dispute_id: str) -> DisputeFact | None: ...

    def save(self, fact: DisputeFact, now: datetime) -> None: ...

    def for_customer(self, customer_id: str) -> list[DisputeFact]: ...

    def for_customers(self, customer_ids: Sequence[str]) -> dict[str, list[DisputeFact]]: ...

    def for_accounts(self, first: str, last: str) -> dict[str, list[DisputeFact]]:
        """The dispute facts of the accounts ``first`` to ``last`` (by id), by account, in one read."""


class TokenRepository(Protocol):
    def add(self, token: ApiToken, secret_hash: str) -> None:
        """Store a new token and the hash of its secret (TokenNameTaken if a token not revoked has its name)."""

    def active_named(self, name: str) -> ApiToken | None: ...

    def get(self, token_id: str) -> ApiToken | None: ...

    def by_secret_hash(self, secret_hash: str) -> tuple[ApiToken, str] | None:
        """The token whose secret has this hash, and the hash as stored."""

    def revoke(self, token_id: str, now: datetime) -> None: ...

    def page(self, after: tuple[datetime, str] | None, limit: int) -> list[ApiToken]: ...


class TimelineRepository(Protocol):
    def append(self, account_id: str, entries: Iterable[TimelineEntry]) -> None: ...

    def page(self, account_id: str, before_id: int | None, limit: int) -> Sequence[TimelineRecord]: ...

    def appended(self) -> dict[str, list[TimelineEntry]]:
        """The entries appended in this transaction so far, by account, in order (what outgoing events come from)."""


class ProvisioningRepository(Protocol):
    def add(self, request: ProvisioningRequest, now: datetime) -> None: ...

    def save(self, request: ProvisioningRequest, now: datetime, *, due_at: datetime | None = None) -> None: ...

    def save_all(self, saved: Iterable[tuple[ProvisioningRequest, datetime | None]], now: datetime) -> None:
        """Save many requests, each with its due time (as ``save``)."""

    def reset_round(self, request_id: str) -> None: ...

    def get(self, request_id: str, *, lock: bool = False) -> ProvisioningRequest | None: ...

    def find_by_order(self, account_id: str, order_id: str) -> ProvisioningRequest | None: ...

    def find_by_order_id(self, order_id: str) -> ProvisioningRequest | None:
        """A CRM order by its salesorderid, whatever account it is for."""

    def pending_for_account(self, account_id: str, *, lock: bool = False) -> list[ProvisioningRequest]: ...

    def pending_for_accounts(self, account_ids: Sequence[str]) -> dict[str, list[ProvisioningRequest]]:
        """Each account's requests not yet final, oldest first, unlocked (one query for a page of accounts)."""

    def pending_between(self, first: str, last: str) -> dict[str, list[ProvisioningRequest]]:
        """The requests not yet final of the accounts ``first`` to ``last`` (by id), by account, oldest first,
        in one read (unlocked, without attempts)."""

    def count_awaiting(self, account_id: str) -> int: ...

    def next_queued(self, account_id: str, now: datetime, limit: int) -> list[tuple[ProvisioningRequest, int]]:
        """Lock the account's oldest queued requests due by ``now``; each with its attempts in the current round."""

    def lock_many(self, request_ids: Iterable[str]) -> list[ProvisioningRequest]:
        """Lock these requests (their attempts are not loaded)."""

    def failed_for_account(self, account_id: str) -> list[ProvisioningRequest]: ...

    def sending(self, account_id: str, since_before: datetime) -> list[ProvisioningRequest]:
        """Lock the account's requests provisioning since before ``since_before``."""

    def add_attempts(self, attempts: Iterable[tuple[str, Attempt]]) -> None: ...

    def accounts_to_dispatch(
        self, queued_due_before: datetime, provisioning_before: datetime, limit: int
    ) -> list[str]: ...

    def next_due_at(self, account_id: str) -> datetime | None:
        """When the account's next queued request is due (None: none is queued)."""

    def page(
        self,
        *,
        state: str | None,
        account_id: str | None,
        after: tuple[datetime, str] | None,
        limit: int,
        newest_first: bool = False,
    ) -> list[ProvisioningRequest]:
        """Oldest first, after the cursor; ``newest_first``: newest first, before it."""


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

    @property
    def requests(self) -> ProvisioningRepository: ...

    @property
    def disputes(self) -> DisputeRepository: ...

    @property
    def tokens(self) -> TokenRepository: ...

    @property
    def subscriptions(self) -> SubscriptionRepository: ...

    @property
    def outbox(self) -> OutboxRepository: ...

    def __enter__(self) -> Self: ...

    def __exit__(self, *exc: object) -> None: ...

    def commit(self) -> None:
        """Commit, then run the follow-ups registered with after_commit."""

    def rollback(self) -> None: ...

    def read_only(self) -> None:
        """Make this transaction a read-only snapshot (called before its first read)."""

    def after_commit(self, action: Callable[[], None]) -> None: ...


UnitOfWorkFactory = Callable[[], UnitOfWork]

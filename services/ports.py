"""What the use cases need from the outside world; adapters implement these."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol, Self

from domain.account import Account
from domain.crm import CrmAccountState
from domain.disputes import DisputeFact
from domain.invoices import InvoiceFact
from domain.policy import HoldPolicy
from domain.provisioning import Attempt, ProvisioningRequest
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
    meta: Mapping[str, Any] = field(default_factory=dict)


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
    def newest_occurred(self, source: str) -> datetime | None:
        """When the newest stored event of this source happened (as the source says)."""

    def cursor(self, source: str) -> tuple[datetime, str | None] | None:
        """How far reconciliation with this source got."""

    def save_cursor(self, source: str, reached: datetime, last_event_id: str | None, now: datetime) -> None: ...

    def get(self, inbox_id: int, *, lock: bool = False) -> InboxEvent | None: ...

    def find(self, source: str, external_id: str) -> InboxEvent | None: ...

    def record_outcome(
        self, inbox_id: int, status: str, now: datetime, *, error: str | None = None, account_id: str | None = None
    ) -> None: ...

    def record_attempt_error(self, inbox_id: int, error: str, *, next_try_at: datetime | None = None) -> None:
        """Count a failed attempt; with ``next_try_at``, the time its retry is due (the sweep waits for it)."""

    def mark_queued(self, inbox_id: int, at: datetime) -> None:
        """The delivery was handed on (to a queue) at ``at``: the sweep leaves it alone for a while."""

    def add_meta(self, inbox_id: int, meta: Mapping[str, Any]) -> None:
        """Keep more about the delivery (what its source's API said about it) in its ``meta``."""

    def reset_for_replay(self, inbox_id: int, now: datetime) -> None: ...

    def claim_stale(self, older_than: datetime, now: datetime, limit: int) -> list[int]: ...

    def claim_unqueued(self, now: datetime, limit: int) -> list[int]:
        """Mark the oldest stored deliveries not yet queued as queued now (skipping locked rows)."""

    def page(self, status: str | None, after_id: int | None, limit: int) -> list[InboxEvent]: ...


class DeliveryStore(Protocol):
    """Stores one webhook delivery in its own transaction (the webhook's hot path)."""

    def add(
        self,
        source: str,
        external_id: str,
        event_type: str,
        payload: str,
        now: datetime,
        meta: Mapping[str, Any] | None = None,
        occurred_at: datetime | None = None,
    ) -> int | None:
        """Store and commit; the new row's id, or None when (source, external_id) is already stored."""


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

    def create_or_lock(self, account_id: str, now: datetime) -> tuple[Account, bool]:
        """Create the account if it is missing and lock it; the account and whether this call created it.

        Two transactions creating one account at once both succeed: the second waits for the
        first to commit, then finds its row. Lock order everywhere: the Stripe customer first.
        """

    def save(self, account: Account, now: datetime) -> None: ...

    def schedule_evaluation(self, account_id: str, at: datetime | None) -> None:
        """Record the next time the account's evaluation could change by time alone."""

    def page(self, *, on_hold: bool | None, after: str | None, limit: int) -> list[Account]: ...

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


class DisputeRepository(Protocol):
    def get(self, dispute_id: str) -> DisputeFact | None: ...

    def save(self, fact: DisputeFact, now: datetime) -> None: ...

    def for_customer(self, customer_id: str) -> list[DisputeFact]: ...


class TimelineRepository(Protocol):
    def append(self, account_id: str, entries: Iterable[TimelineEntry]) -> None: ...

    def page(self, account_id: str, before_id: int | None, limit: int) -> Sequence[TimelineRecord]: ...


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
        self, *, state: str | None, account_id: str | None, after: tuple[datetime, str] | None, limit: int
    ) -> list[ProvisioningRequest]: ...


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

    def __enter__(self) -> Self: ...

    def __exit__(self, *exc: object) -> None: ...

    def commit(self) -> None:
        """Commit, then run the follow-ups registered with after_commit."""

    def rollback(self) -> None: ...

    def after_commit(self, action: Callable[[], None]) -> None: ...


class Publisher(Protocol):
    """Sends work to the worker processes."""

    def process_inbox_event(self, inbox_id: int) -> None: ...

    def complete_inbox_event(self, inbox_id: int, peer: str, countdown: float | None = None) -> None:
        """Hand the delivery to the queue of the peer it needs (see services.inbox.Completion)."""

    def dispatch_provisioning(self, account_ids: Sequence[str], countdown: float | None = None) -> None:
        """Have these accounts' due requests sent (one sender per account at a time)."""

    def write_back_hold(self, account_id: str, countdown: float | None = None) -> None: ...


@dataclass(frozen=True)
class SendResult:
    """What one call to the provisioning API came to."""

    attempt: Attempt
    outcome: str  # "provisioned", "rejected" (failed for good) or "transient" (try again)
    retry_after_seconds: float | None = None  # a 429's Retry-After: not again before this


@dataclass(frozen=True)
class DispatchMark:
    """What could change whether an account's requests may be sent: its revision (one more at every
    save: holds, pause, limit, facts) and the end of its enforcement pause (which comes by time alone)."""

    revision: int
    paused_until: datetime | None

    def still_holds(self, now: datetime, current: DispatchMark | None) -> bool:
        """Whether what was decided under this mark still stands at ``now``, the account reading ``current``."""
        pause_ended = self.paused_until is not None and self.paused_until <= now
        return current == self and not pause_ended


class HeldAccount(Protocol):
    def mark(self) -> DispatchMark | None:
        """The account's mark as committed now, read outside any transaction."""


class DispatchLock(Protocol):
    """Who sends an account's orders: one holder at a time, in any process on any machine.

    A holder keeps it while it claims, calls and records; it is freed when the holder is done or
    its process dies, so a request left ``provisioning`` by a free account lost its sender.
    """

    def hold(self, account_id: str) -> AbstractContextManager[HeldAccount | None]:
        """Try to take the account's lock without waiting; the held account, or None if another holds it."""


class CrmWriteOutcome(Protocol):
    """What writing creditonhold to the CRM came to."""

    @property
    def outcome(self) -> str: ...  # "written", "retry" or "failed"

    @property
    def status(self) -> int | None: ...

    @property
    def retry_after_seconds(self) -> float | None: ...

    @property
    def message(self) -> str: ...


class CrmWriter(Protocol):
    def set_credit_on_hold(self, account_id: str, on_hold: bool) -> CrmWriteOutcome: ...


class DisputeCustomers(Protocol):
    """Finds the customer of a dispute (disputes carry none) through Stripe's API."""

    def customer_of_dispute(self, dispute: dict[str, Any]) -> str: ...


class Provisioner(Protocol):
    """Sends one request to the provisioning API (or only logs it, when none is configured)."""

    def send(self, request: ProvisioningRequest) -> SendResult: ...


@dataclass(frozen=True)
class ProvisioningPolicy:
    """Retries and batching of dispatch (PROVISIONING_* settings)."""

    max_attempts: int = 20
    backoff_seconds: float = 2.0
    backoff_cap_seconds: float = 3600.0
    stuck_after_seconds: float = 30.0
    batch_size: int = 50
    # One dispatch task sends an account's requests for this long, then hands on to a new task.
    turn_seconds: float = 60.0
    # Requests are claimed about this many seconds of calls at a time (by how long calls take),
    # at most ``max_claim``: fewer transactions when the API is fast, few claimed ahead when it is slow.
    claim_seconds: float = 1.0
    max_claim: int = 200
    # Calls of one account's requests under way at once (each request's own call only ever once).
    calls_per_account: int = 1
    # Retries due within this are sent by a delayed task; later ones by the sweep (the broker's
    # delayed messages come back after its visibility timeout, so they are kept short).
    countdown_limit_seconds: float = 900.0


@dataclass(frozen=True)
class ServiceContext:
    """What the use cases need besides a unit of work: the rules and where follow-up work goes."""

    policy: HoldPolicy
    publisher: Publisher
    provisioning: ProvisioningPolicy = ProvisioningPolicy()
    crm_write_back: bool = False  # the Dynamics Web API is configured: the CRM's creditonhold follows
    # A write-back not confirmed this long after it was wanted (lost, given up) is sent again.
    crm_recheck: timedelta = timedelta(minutes=2)
    # How long a delivery handed to a peer's queue may take (a call and its retry) before the sweep
    # hands it on again.
    peer_patience: timedelta = timedelta(seconds=40)


UnitOfWorkFactory = Callable[[], UnitOfWork]


class StorageUnavailable(RuntimeError):
    """The database cannot be reached or asked us to try again: a transient failure."""


class PeerUnavailable(RuntimeError):
    """A peer's API could not answer now (unreachable, slow, throttled, 5xx): try again later."""

    def __init__(self, message: str, *, retry_after_seconds: float | None = None) -> None:
        super().__init__(message)
        self.retry_after_seconds = retry_after_seconds


Clock = Callable[[], datetime]

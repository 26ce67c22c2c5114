"""Ports of the peers: the provisioning API, the CRM's Web API, Stripe's API, and the dispatch lock."""

from __future__ import annotations

from collections.abc import Callable, Generator, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from domain.provisioning import Attempt, ProvisioningRequest


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


class StorageUnavailable(RuntimeError):
    """The database cannot be reached or asked us to try again: a transient failure."""


class PeerUnavailable(RuntimeError):
    """A peer's API could not answer now (unreachable, slow, throttled, 5xx): try again later."""

    def __init__(self, message: str, *, retry_after_seconds: float | None = None) -> None:
        super().__init__(message)
        self.retry_after_seconds = retry_after_seconds


class RowReader(Protocol):
    """Reads a row of the CRM through its Web API (a body stripped for size, an order without its columns)."""

    def read_row(self, entity_set: str, row_id: str) -> dict[str, Any]: ...


@dataclass(frozen=True)
class ListedEvent:
    """One event from Stripe's list: what the inbox needs to store it like a webhook delivery."""

    id: str
    type: str
    created: datetime
    payload: str  # the event's JSON text, as Stripe sends it


class StripeEventList(Protocol):
    """Stripe's list of events (``adapters.stripe_api.StripeApi``)."""

    def events_since(
        self, created_gte: datetime, types: Sequence[str], *, pace: Callable[[], None]
    ) -> Generator[Sequence[ListedEvent], None, None]:
        """Events of these types created at or after ``created_gte``, oldest first, a page at a time.

        ``pace`` is called before every request but the first. Raises ``PeerUnavailable``
        (transient) or the adapter's own error (refused).
        """
        ...

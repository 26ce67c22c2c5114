"""What every use case is given besides a unit of work: the rules, the clock, where follow-up work goes."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from domain.policy import HoldPolicy
from services.ports.metrics import NO_METRICS, Metrics


class Publisher(Protocol):
    """Sends work to the worker processes."""

    def process_inbox_event(self, inbox_id: int) -> None: ...

    def complete_inbox_event(self, inbox_id: int, peer: str, countdown: float | None = None) -> None:
        """Hand the delivery to the queue of the peer it needs (see services.inbox.Completion)."""

    def dispatch_provisioning(self, account_ids: Sequence[str], countdown: float | None = None) -> None:
        """Have these accounts' due requests sent (one sender per account at a time)."""

    def write_back_hold(self, account_id: str, countdown: float | None = None) -> None: ...

    def send_outgoing(self, lanes: Sequence[tuple[str, str]], countdown: float | None = None) -> None:
        """Have these lanes' (subscription, account) pending deliveries sent, in order, on the outgoing queue."""

    def sweep(self) -> None:
        """Re-queue what was left behind (inbox events, provisioning requests, CRM writes)."""

    def tick(self) -> None:
        """Re-evaluate the accounts whose time has come."""

    def reconcile(self) -> None:
        """Reconcile with Stripe's events list."""


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
class OutgoingPolicy:
    """Retries of Holdfast's own events (OUTGOING_* settings)."""

    backoff_seconds: float = 10.0  # the first retry's delay, doubling, with jitter
    backoff_cap_seconds: float = 3600.0  # a subscriber back up hears again within the hour
    retry_hours: float = 72.0  # after this long since the event, a delivery fails for good
    # Retries due within this are sent by a delayed task; later ones by the sweep.
    countdown_limit_seconds: float = 900.0
    # At most this many of one subscriber's lanes send at once, so a subscriber that hangs holds
    # that many of the outgoing worker's threads, never all of them.
    sends_per_subscriber: int = 4


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
    # Where counters go (GET /metrics): every process adds to the same ones.
    metrics: Metrics = NO_METRICS
    outgoing: OutgoingPolicy = OutgoingPolicy()


Clock = Callable[[], datetime]

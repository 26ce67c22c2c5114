"""Provisioning requests (orders) and their admission: what waits, what goes, in what order.

``awaiting`` -> ``queued`` -> ``provisioning`` -> ``provisioned`` | ``failed`` | ``cancelled``.
An awaiting request lists what it waits for: the hold reasons that park provisioning,
``credit_limit``, or ``account`` (a CRM order for an account not known yet). Admission is a
pure function of the account's effects, its invoice exposure and its pending requests, so
running it twice admits nothing twice. It decides for every request not yet sent, queued ones
included: a hold placed while a request is queued (or waiting for a retry) sends it back to
``awaiting``. Only a request ``provisioning`` (a call under way) is past recall.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from domain.account import Effects
from domain.money import ZERO, format_amount
from domain.timeline import Change, TimelineEntry

CREDIT_LIMIT = "credit_limit"
ACCOUNT = "account"


class RequestState(enum.StrEnum):
    AWAITING = "awaiting"
    QUEUED = "queued"
    PROVISIONING = "provisioning"
    PROVISIONED = "provisioned"
    FAILED = "failed"
    CANCELLED = "cancelled"


IN_FLIGHT = frozenset({RequestState.QUEUED, RequestState.PROVISIONING})
PENDING = IN_FLIGHT | {RequestState.AWAITING}
NOT_SENT = frozenset({RequestState.AWAITING, RequestState.QUEUED})  # admission may still hold these back
FINAL = frozenset({RequestState.PROVISIONED, RequestState.FAILED, RequestState.CANCELLED})

_ALLOWED = {
    RequestState.AWAITING: {RequestState.QUEUED, RequestState.CANCELLED, RequestState.AWAITING},
    RequestState.QUEUED: {RequestState.PROVISIONING, RequestState.CANCELLED, RequestState.AWAITING},
    RequestState.PROVISIONING: {RequestState.PROVISIONED, RequestState.FAILED, RequestState.QUEUED},
    RequestState.FAILED: {RequestState.AWAITING},
    RequestState.PROVISIONED: set(),
    RequestState.CANCELLED: set(),
}


class TransitionRefused(Exception):
    """A request cannot make this move from its state; the message is a sentence."""


@dataclass(frozen=True)
class Attempt:
    """One call to the provisioning API: when, the HTTP status or the error, how long it took."""

    at: datetime
    duration_ms: int
    status: int | None = None
    error: str | None = None
    note: str | None = None


@dataclass
class ProvisioningRequest:
    request_id: str
    account_id: str
    order_id: str
    amount: Decimal
    currency: str | None
    description: str | None
    state: RequestState
    created_at: datetime
    waiting_for: tuple[str, ...] = ()
    attempts: list[Attempt] = field(default_factory=list)
    failure: str | None = None

    def move(self, to: RequestState, change: Change, **detail: object) -> TimelineEntry:
        """Change state (only along the state machine) and say so on the timeline."""
        if to not in _ALLOWED[self.state]:
            raise TransitionRefused(f"Request {self.request_id} is {self.state}; it cannot become {to}.")
        before, self.state = self.state, to
        if to is not RequestState.AWAITING:
            self.waiting_for = ()
        return TimelineEntry.of(
            change,
            f"request_{to}",
            request_id=self.request_id,
            order_id=self.order_id,
            amount=format_amount(self.amount, self.currency),
            **({"from": str(before)} if before != to else {}),
            **detail,
        )

    def cancel(self, change: Change) -> TimelineEntry:
        if self.state not in (RequestState.AWAITING, RequestState.QUEUED):
            raise TransitionRefused(
                f"Request {self.request_id} is {self.state}; only a request not yet dispatched can be cancelled."
            )
        return self.move(RequestState.CANCELLED, change)

    def retry(self, change: Change) -> TimelineEntry:
        """A failed request goes back to admission: sent again when its account's holds and limit allow."""
        if self.state is not RequestState.FAILED:
            raise TransitionRefused(f"Request {self.request_id} is {self.state}; only a failed request can be retried.")
        self.failure = None
        return self.move(RequestState.AWAITING, change, retried=True)


def counted_exposure(invoice_exposure: Decimal, requests: Iterable[ProvisioningRequest]) -> Decimal:
    """Exposure: unpaid invoices plus pending orders, except those waiting for the credit limit."""
    return invoice_exposure + sum(
        (r.amount for r in requests if r.state in PENDING and CREDIT_LIMIT not in r.waiting_for), ZERO
    )


@dataclass(frozen=True)
class Admission:
    """What admission decided: requests to dispatch now, and the timeline entries it wrote."""

    dispatch: list[ProvisioningRequest]
    changed: list[ProvisioningRequest]
    entries: list[TimelineEntry]


def admit(
    requests: Sequence[ProvisioningRequest],
    effects: Effects,
    invoice_exposure: Decimal,
    credit_limit: Decimal | None,
    change: Change,
    *,
    account_known: bool = True,
) -> Admission:
    """Decide, oldest first, which requests not yet sent may go and what the others wait for.

    Requests ``provisioning`` (a call under way) reserve their amount. Each request not yet
    sent (awaiting or queued), oldest first, reserves its amount while exposure plus that
    amount stays within the limit; the first that does not fit waits for ``credit_limit``, and
    so does every later one (strictly oldest first, so a large order is not starved by smaller
    ones behind it). Requests also wait for every hold reason that parks provisioning. An
    awaiting request that may go is queued (and returned to dispatch); a queued one that may
    not goes back to awaiting (recalled); an awaiting one whose waiting list changes is
    re-recorded. A queued request that may go stays as it is: it is already on its way.
    """
    ordered = sorted(requests, key=lambda r: (r.created_at, r.request_id))
    running = invoice_exposure + sum((r.amount for r in ordered if r.state is RequestState.PROVISIONING), ZERO)
    parked = tuple(str(reason) for reason in effects.parking)
    over_limit = False
    dispatch: list[ProvisioningRequest] = []
    changed: list[ProvisioningRequest] = []
    entries: list[TimelineEntry] = []
    for request in ordered:
        if request.state not in NOT_SENT:
            continue
        if not account_known:
            waits: tuple[str, ...] = (ACCOUNT,)
        else:
            over_limit = over_limit or (credit_limit is not None and running + request.amount > credit_limit)
            waits = parked + ((CREDIT_LIMIT,) if over_limit else ())
            if not over_limit:
                running += request.amount
        if waits:
            if request.state is RequestState.QUEUED:
                request.waiting_for = waits
                entries.append(request.move(RequestState.AWAITING, change, waiting_for=list(waits), recalled=True))
                changed.append(request)
            elif waits != request.waiting_for:
                request.waiting_for = waits
                entries.append(request.move(RequestState.AWAITING, change, waiting_for=list(waits)))
                changed.append(request)
            continue
        if request.state is RequestState.AWAITING:
            entries.append(request.move(RequestState.QUEUED, change))
            dispatch.append(request)
            changed.append(request)
    return Admission(dispatch, changed, entries)

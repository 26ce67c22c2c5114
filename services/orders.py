"""Orders: one way to accept one, whichever source submits it, and what finance and sales do with them.

An order becomes a provisioning request (``accept_order``), from the admin API or from a CRM
sales order; the request can then be looked at, listed, cancelled before it is sent, and sent
again after it failed (a new round of attempts, through admission). Dispatch to the
provisioning API is ``services.provisioning``.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from enum import StrEnum

import structlog

from domain.account import Account
from domain.holds import HoldReason
from domain.money import check_currency_places, format_amount
from domain.outgoing import order_refused
from domain.provisioning import ACCOUNT, ProvisioningRequest, RequestState
from domain.timeline import Change, TimelineEntry
from services.accounts import AccountNotFound
from services.evaluation import reevaluate_account
from services.outgoing import announce
from services.ports import ServiceContext, UnitOfWork

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class Order:
    """An order as submitted: for which account, under which id, for how much."""

    account_id: str
    order_id: str
    amount: Decimal
    description: str | None


class RequestNotFound(LookupError):
    def __init__(self, request_id: str) -> None:
        super().__init__(f"No provisioning request {request_id} is known.")


# What sales may tell the customer about each hold, and who lifts it: a sentence per reason.
WHAT_THE_HOLD_MEANS = {
    HoldReason.NON_PAYMENT: (
        "This account has an unpaid invoice: once the customer pays it (or updates the payment method and "
        "the payment goes through), the hold lifts by itself."
    ),
    HoldReason.DISPUTE: (
        "The customer disputed a payment with their bank (a chargeback): the hold lifts when the dispute "
        "closes in our favour, or when finance lifts it."
    ),
    HoldReason.CREDIT_REVIEW: (
        "Finance is reviewing this account's credit: the hold lifts when finance clears the review in the CRM."
    ),
    HoldReason.MANUAL: (
        "Finance has put this account on hold: ask finance why before telling the customer anything; finance lifts it."
    ),
}


def what_the_hold_means(reason: str) -> str:
    """The sentence sales reads for one hold reason."""
    try:
        return WHAT_THE_HOLD_MEANS[HoldReason(reason)]
    except ValueError:
        return f"Ask finance about the {reason.replace('_', ' ')} hold."


class AccountOnHold(Exception):
    """Changes to this account are blocked by its holds; the message says why, a sentence per reason."""

    def __init__(self, account_id: str, reasons: Sequence[str]) -> None:
        self.reasons = list(reasons)
        listed = ", ".join(r.replace("_", " ") for r in reasons)
        super().__init__(
            f"Account {account_id} is on credit hold ({listed}): no new orders or changes can be accepted "
            "until the hold is lifted. " + " ".join(what_the_hold_means(r) for r in reasons)
        )


class OrderConflict(Exception):
    """The order id is already used for a different order."""


class OrderSource(StrEnum):
    """Who submitted an order: the admin API (refused at once while holds block changes) or the CRM
    (which already took it: recorded, then refused on the timeline)."""

    API = "api"
    CRM = "crm"


@dataclass(frozen=True)
class Submitted:
    request: ProvisioningRequest
    created: bool


def accept_order(
    uow: UnitOfWork,
    ctx: ServiceContext,
    account: Account | None,
    order: Order,
    source: OrderSource,
    change: Change,
) -> Submitted:
    """The one way an order becomes a provisioning request, inside the caller's transaction.

    The same order id again gives the request already accepted. An order for an account not yet
    known (only the CRM sends one) waits for it. While the account's holds block changes, the
    API's order is refused (``AccountOnHold``, nothing stored) and the CRM's is recorded as
    refused; otherwise it is accepted and admission decides at once whether it goes.
    """
    existing = uow.requests.find_by_order(order.account_id, order.order_id)
    if existing is not None:
        if source is OrderSource.API and (
            existing.amount != order.amount
            or (order.description is not None and existing.description != order.description)
        ):
            raise OrderConflict(
                f"Order {order.order_id} was already submitted for account {order.account_id} with other details."
            )
        return Submitted(existing, created=False)
    effects = account.effects(ctx.policy, change.at) if account is not None else None
    if source is OrderSource.API and effects is not None and effects.blocks_changes:
        raise AccountOnHold(order.account_id, [str(r) for r in effects.blocking])
    request = ProvisioningRequest(
        request_id=str(uuid.uuid4()),
        account_id=order.account_id,
        order_id=order.order_id,
        amount=order.amount,
        currency=account.currency if account is not None else None,
        description=order.description,
        state=RequestState.AWAITING,
        created_at=change.at,
    )
    if account is None or effects is None:
        request.waiting_for = (ACCOUNT,)  # admitted when the account becomes known
        uow.requests.add(request, change.at)
        log.info("order_waits_for_account", account_id=order.account_id, order_id=order.order_id)
        return Submitted(request, created=True)
    uow.requests.add(request, change.at)
    accepted = TimelineEntry.of(
        change,
        "request_accepted",
        request_id=request.request_id,
        order_id=order.order_id,
        amount=format_amount(order.amount, account.currency),
        source=str(source),
    )
    if effects.blocks_changes:
        reasons = [str(r) for r in effects.blocking]
        request.failure = f"Refused: the account is on credit hold ({', '.join(reasons)})."
        refused = request.move(RequestState.CANCELLED, change, refused=True, reasons=reasons)
        uow.requests.save(request, change.at)
        uow.timeline.append(order.account_id, [accepted, refused])
        return Submitted(request, created=True)
    uow.timeline.append(order.account_id, [accepted])
    reevaluate_account(uow, order.account_id, ctx, change, account=account)
    return Submitted(request, created=True)


def submit_order(uow: UnitOfWork, ctx: ServiceContext, order: Order, change: Change) -> Submitted:
    """Accept an order through the API (or return the one already accepted under this order id).

    Refused (``AccountOnHold``): nothing of the order is stored, but subscribers hear ``order.refused``.
    """
    try:
        return _submit(uow, ctx, order, change)
    except AccountOnHold as refused:
        announce(uow, ctx, order_refused(order.account_id, order.order_id, refused.reasons, change.at), change.at)
        raise


def _submit(uow: UnitOfWork, ctx: ServiceContext, order: Order, change: Change) -> Submitted:
    with uow:
        account = uow.accounts.get(order.account_id, lock=True)
        if account is None:
            raise AccountNotFound(order.account_id)
        check_currency_places(order.amount, account.currency)  # an order is in its account's currency
        submitted = accept_order(uow, ctx, account, order, OrderSource.API, change)
        if not submitted.created:
            return submitted
        uow.commit()
        return Submitted(_reloaded(uow, submitted.request.request_id), created=True)


def view_request(uow: UnitOfWork, request_id: str) -> ProvisioningRequest:
    with uow:
        request = uow.requests.get(request_id)
        if request is None:
            raise RequestNotFound(request_id)
        return request


def list_requests(
    uow: UnitOfWork,
    *,
    state: str | None,
    account_id: str | None,
    after: tuple[datetime, str] | None,
    limit: int,
    newest_first: bool = False,
) -> list[ProvisioningRequest]:
    """Requests by creation, oldest first from the cursor ``after`` (``newest_first``: the other way)."""
    with uow:
        return uow.requests.page(
            state=state, account_id=account_id, after=after, limit=limit, newest_first=newest_first
        )


def retry_request(uow: UnitOfWork, ctx: ServiceContext, request_id: str, change: Change) -> ProvisioningRequest:
    """Send a failed request again (a new round of attempts, the same idempotency key).

    It goes back through admission: queued when its account's holds and limit allow, else
    ``awaiting`` with what it waits for.
    """
    with uow:
        found = uow.requests.get(request_id)
        if found is None:
            raise RequestNotFound(request_id)
        account = uow.accounts.get(found.account_id, lock=True)
        request = uow.requests.get(request_id, lock=True)
        assert request is not None
        _retry(uow, request, change)
        if account is not None:
            reevaluate_account(uow, request.account_id, ctx, change, account=account)
        uow.commit()
        return _reloaded(uow, request_id)


def retry_account_requests(uow: UnitOfWork, ctx: ServiceContext, account_id: str, change: Change) -> int:
    """Send every failed request of the account again; return how many."""
    with uow:
        account = uow.accounts.get(account_id, lock=True)
        if account is None:
            raise AccountNotFound(account_id)
        failed = uow.requests.failed_for_account(account_id)
        for request in failed:
            _retry(uow, request, change)
        if failed:
            reevaluate_account(uow, account_id, ctx, change, account=account)
        uow.commit()
        return len(failed)


def _retry(uow: UnitOfWork, request: ProvisioningRequest, change: Change) -> None:
    entry = request.retry(change)
    uow.requests.save(request, change.at)
    uow.requests.reset_round(request.request_id)
    uow.timeline.append(request.account_id, [entry])


def cancel_request(uow: UnitOfWork, ctx: ServiceContext, request_id: str, change: Change) -> ProvisioningRequest:
    """Cancel a request not yet dispatched; the account's other orders may then fit its limit."""
    with uow:
        request = uow.requests.get(request_id)
        if request is None:
            raise RequestNotFound(request_id)
        account = uow.accounts.get(request.account_id, lock=True)
        request = uow.requests.get(request_id, lock=True)
        assert request is not None
        entry = request.cancel(change)
        uow.requests.save(request, change.at)
        uow.timeline.append(request.account_id, [entry])
        if account is not None:
            reevaluate_account(uow, request.account_id, ctx, change, account=account)
        uow.commit()
        return _reloaded(uow, request_id)


def _reloaded(uow: UnitOfWork, request_id: str) -> ProvisioningRequest:
    request = uow.requests.get(request_id)
    assert request is not None
    return request

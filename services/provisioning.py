"""Orders and their dispatch to the provisioning API.

Submitting an order stores it as ``awaiting`` and lets admission decide at once (in the same
transaction) whether it goes. Dispatch claims queued requests, marks them ``provisioning``
and commits *before* calling the API, then records each outcome. The idempotency key is
the request id, so a worker killed between the call and the record (found again by the
sweep) sends the same key again: the API answers 2xx or 409, and the request ends
provisioned with no second order.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

import structlog

from domain.money import check_currency_places, format_amount
from domain.provisioning import ProvisioningRequest, RequestState
from domain.timeline import Change, TimelineEntry
from services.accounts import AccountNotFound
from services.evaluation import reevaluate_account
from services.ports import Provisioner, SendResult, ServiceContext, UnitOfWork

log = structlog.get_logger(__name__)


class RequestNotFound(LookupError):
    def __init__(self, request_id: str) -> None:
        super().__init__(f"No provisioning request {request_id} is known.")


class AccountOnHold(Exception):
    """Changes to this account are blocked by its holds."""

    def __init__(self, account_id: str, reasons: Sequence[str]) -> None:
        self.reasons = list(reasons)
        listed = ", ".join(r.replace("_", " ") for r in reasons)
        super().__init__(
            f"Account {account_id} is on credit hold ({listed}): no new orders or changes can be accepted "
            "until the hold is lifted. Please contact finance to settle the account."
        )


class OrderConflict(Exception):
    """The order id is already used for a different order."""


@dataclass(frozen=True)
class Submitted:
    request: ProvisioningRequest
    created: bool


def submit_order(
    uow: UnitOfWork,
    ctx: ServiceContext,
    *,
    account_id: str,
    order_id: str,
    amount: Decimal,
    description: str | None,
    change: Change,
) -> Submitted:
    """Accept an order (or return the one already accepted under this order id)."""
    with uow:
        account = uow.accounts.get(account_id, lock=True)
        if account is None:
            raise AccountNotFound(account_id)
        check_currency_places(amount, account.currency)  # an order is in its account's currency
        existing = uow.requests.find_by_order(account_id, order_id)
        if existing is not None:
            if existing.amount != amount or (description is not None and existing.description != description):
                raise OrderConflict(
                    f"Order {order_id} was already submitted for account {account_id} with other details."
                )
            return Submitted(existing, created=False)
        effects = account.effects(ctx.policy, change.at)
        if effects.blocks_changes:
            raise AccountOnHold(account_id, [str(r) for r in effects.blocking])
        request = ProvisioningRequest(
            request_id=str(uuid.uuid4()),
            account_id=account_id,
            order_id=order_id,
            amount=amount,
            currency=account.currency,
            description=description,
            state=RequestState.AWAITING,
            created_at=change.at,
        )
        uow.requests.add(request, change.at)
        uow.timeline.append(
            account_id,
            [
                TimelineEntry.of(
                    change,
                    "request_accepted",
                    request_id=request.request_id,
                    order_id=order_id,
                    amount=format_amount(amount, account.currency),
                )
            ],
        )
        reevaluate_account(uow, account_id, ctx, change, account=account)
        uow.commit()
        stored = uow.requests.get(request.request_id)
        assert stored is not None
        return Submitted(stored, created=True)


def view_request(uow: UnitOfWork, request_id: str) -> ProvisioningRequest:
    with uow:
        request = uow.requests.get(request_id)
        if request is None:
            raise RequestNotFound(request_id)
        return request


def list_requests(
    uow: UnitOfWork, *, state: str | None, account_id: str | None, after: tuple[datetime, str] | None, limit: int
) -> list[ProvisioningRequest]:
    with uow:
        return uow.requests.page(state=state, account_id=account_id, after=after, limit=limit)


def retry_request(uow: UnitOfWork, ctx: ServiceContext, request_id: str, change: Change) -> ProvisioningRequest:
    """Send a failed request again (a new round of attempts, the same idempotency key)."""
    with uow:
        request = uow.requests.get(request_id, lock=True)
        if request is None:
            raise RequestNotFound(request_id)
        entry = request.retry(change)
        uow.requests.save(request, change.at)
        uow.requests.reset_round(request_id)
        uow.timeline.append(request.account_id, [entry])
        uow.after_commit(lambda: ctx.publisher.dispatch_provisioning([request_id]))
        uow.commit()
        return _reloaded(uow, request_id)


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


def backoff_seconds(ctx: ServiceContext, attempt: int) -> float:
    """Exponential backoff with full jitter: first delay ``backoff_seconds``, doubling, capped."""
    base = min(ctx.provisioning.backoff_cap_seconds, ctx.provisioning.backoff_seconds * 2 ** max(attempt - 1, 0))
    return random.uniform(base / 2, base)


def dispatch_requests(
    new_uow: Callable[[], UnitOfWork],
    ctx: ServiceContext,
    provisioner: Provisioner,
    request_ids: Sequence[str],
    clock: Callable[[], datetime],
    *,
    threads: int = 8,
) -> dict[str, str]:
    """Send these queued requests to the provisioning API; return each one's outcome.

    1. Claim: lock the requests still queued, mark them provisioning, commit.
    2. Call the API for each, concurrently, outside any transaction.
    3. Record: the attempts, and provisioned / failed / queued again with backoff.
    """
    started = clock()
    with new_uow() as uow:
        claimed = uow.requests.claim_queued(request_ids)
        if not claimed:
            return {}
        change = Change(started, "holdfast", "dispatch")
        entries: dict[str, list[TimelineEntry]] = {}
        for request, _ in claimed:
            entries.setdefault(request.account_id, []).append(request.move(RequestState.PROVISIONING, change))
            uow.requests.save(request, started, due_at=started)
        for account_id, account_entries in entries.items():
            uow.timeline.append(account_id, account_entries)
        uow.commit()

    requests = [request for request, _ in claimed]
    results = _send_all(provisioner, requests, threads)

    finished = clock()
    outcomes: dict[str, str] = {}
    with new_uow() as uow:
        current = {r.request_id: r for r in uow.requests.lock_many([r.request_id for r in requests])}
        uow.requests.add_attempts((r.request_id, result.attempt) for r, result in zip(requests, results, strict=True))
        change = Change(finished, "holdfast", "dispatch")
        entries = {}
        retries: list[tuple[str, float]] = []
        for (request, round_attempts), result in zip(claimed, results, strict=True):
            stored = current.get(request.request_id)
            if stored is None or stored.state is not RequestState.PROVISIONING:
                continue  # recorded meanwhile by another worker (a recovered duplicate)
            outcome, entry, delay = _settle_attempt(stored, result, round_attempts + 1, ctx, change)
            outcomes[stored.request_id] = outcome
            entries.setdefault(stored.account_id, []).append(entry)
            if delay is None:
                uow.requests.save(stored, finished)
            else:
                uow.requests.save(stored, finished, due_at=finished + timedelta(seconds=delay))
                retries.append((stored.request_id, delay))
            log.info(entry.kind, account_id=stored.account_id, request_id=stored.request_id, outcome=outcome)
        for account_id, account_entries in entries.items():
            uow.timeline.append(account_id, account_entries)
        # A failed request leaves exposure and no invoice will replace it: orders waiting for the
        # credit limit may fit now. (A provisioned one is replaced by its invoice: no re-admission.)
        for account_id in sorted({r.account_id for r in requests if outcomes.get(r.request_id) == "failed"}):
            reevaluate_account(uow, account_id, ctx, change)
        if retries:
            uow.after_commit(lambda: _schedule_retries(ctx, retries))
        uow.commit()
    return outcomes


def _send_all(provisioner: Provisioner, requests: list[ProvisioningRequest], threads: int) -> list[SendResult]:
    """Each account's requests one after another, oldest first; different accounts in parallel."""
    by_account: dict[str, list[ProvisioningRequest]] = {}
    for request in requests:
        by_account.setdefault(request.account_id, []).append(request)

    def send_in_order(batch: list[ProvisioningRequest]) -> list[tuple[str, SendResult]]:
        return [(r.request_id, provisioner.send(r)) for r in batch]

    with ThreadPoolExecutor(max_workers=max(1, min(threads, len(by_account)))) as pool:
        sent = dict(pair for batch in pool.map(send_in_order, by_account.values()) for pair in batch)
    return [sent[r.request_id] for r in requests]


def _schedule_retries(ctx: ServiceContext, retries: list[tuple[str, float]]) -> None:
    for request_id, delay in retries:
        ctx.publisher.dispatch_provisioning([request_id], countdown=delay)


def _settle_attempt(
    request: ProvisioningRequest, result: SendResult, attempts: int, ctx: ServiceContext, change: Change
) -> tuple[str, TimelineEntry, float | None]:
    attempt = result.attempt
    what = {"status": attempt.status} if attempt.status is not None else {"error": attempt.error}
    if result.outcome == "provisioned":
        return "provisioned", request.move(RequestState.PROVISIONED, change, **what), None
    if result.outcome == "rejected":
        request.failure = f"The provisioning API refused the request: {attempt.error or attempt.status}"
        return "failed", request.move(RequestState.FAILED, change, **what), None
    if attempts >= ctx.provisioning.max_attempts:
        request.failure = f"Gave up after {attempts} attempts; the last: {attempt.error or attempt.status}"
        return "failed", request.move(RequestState.FAILED, change, attempts=attempts, **what), None
    delay = backoff_seconds(ctx, attempts)
    return "retry", request.move(RequestState.QUEUED, change, retry_in_seconds=round(delay, 1), **what), delay


def sweep_requests(uow: UnitOfWork, ctx: ServiceContext, now: datetime, *, batch: int = 500) -> int:
    """Re-queue requests overdue in ``queued`` and requests stuck ``provisioning`` (a worker died)."""
    stuck = timedelta(seconds=ctx.provisioning.stuck_after_seconds)
    change = Change(now, "holdfast", "sweep")
    with uow:
        stale = uow.requests.stale(now - stuck, now - stuck, batch)
        for request in stale:
            if request.state is RequestState.PROVISIONING:
                uow.timeline.append(request.account_id, [request.move(RequestState.QUEUED, change, recovered=True)])
            uow.requests.save(request, now, due_at=now)
        ids = [r.request_id for r in stale]
        if ids:
            uow.after_commit(lambda: ctx.publisher.dispatch_provisioning(ids))
        uow.commit()
    if stale:
        log.info("provisioning_swept", requeued=len(stale))
    return len(stale)

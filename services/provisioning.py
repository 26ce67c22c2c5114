"""Orders and their dispatch to the provisioning API.

Submitting an order stores it as ``awaiting`` and lets admission decide at once (in the same
transaction) whether it goes. Dispatch sends an account's requests one at a time, oldest first,
by whoever holds that account's dispatch lock (``DispatchLock``: one holder in any process,
freed when the holder ends or dies). Each request is claimed at the moment it is sent: in one
short transaction the account is locked, its holds and limit are checked again (admission,
which sends back to ``awaiting`` whatever may not go now), the request is marked
``provisioning`` and committed; the call is made outside any transaction; its outcome is
recorded in the transaction that claims the next one. So a hold committed before a claim
stops it, a request waits for its previous call to end before it is sent again, and the idempotency
key (the request id) makes a call repeated after a crash harmless: the API answers 2xx or 409.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta

import structlog

from domain.provisioning import ProvisioningRequest, RequestState
from domain.timeline import Change, TimelineEntry
from services.evaluation import reevaluate_account
from services.ports import (
    Clock,
    DispatchLock,
    DispatchMark,
    HeldAccount,
    Provisioner,
    SendResult,
    ServiceContext,
    UnitOfWork,
    UnitOfWorkFactory,
)
from services.retry_delay import retry_delay

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class _Claimed:
    request: ProvisioningRequest
    round_attempts: int  # attempts before this one in the current round


@dataclass(frozen=True)
class _Batch:
    """Requests claimed together, and the account's mark they were claimed under."""

    claimed: list[_Claimed]
    mark: DispatchMark | None


def dispatch_accounts(
    new_uow: UnitOfWorkFactory,
    ctx: ServiceContext,
    provisioner: Provisioner,
    locks: DispatchLock,
    account_ids: Sequence[str],
    clock: Clock,
    *,
    threads: int = 8,
) -> dict[str, str]:
    """Send these accounts' due requests (different accounts in parallel); return each request's outcome."""
    accounts = list(dict.fromkeys(account_ids))
    if not accounts:
        return {}
    if len(accounts) == 1:
        return dispatch_account(new_uow, ctx, provisioner, locks, accounts[0], clock)
    outcomes: dict[str, str] = {}
    with ThreadPoolExecutor(max_workers=max(1, min(threads, len(accounts)))) as pool:
        for sent in pool.map(lambda a: dispatch_account(new_uow, ctx, provisioner, locks, a, clock), accounts):
            outcomes.update(sent)
    return outcomes


def dispatch_account(
    new_uow: UnitOfWorkFactory,
    ctx: ServiceContext,
    provisioner: Provisioner,
    locks: DispatchLock,
    account_id: str,
    clock: Clock,
) -> dict[str, str]:
    """Send the account's due requests, oldest first, while holding its dispatch lock.

    Another holder means another worker is sending this account's requests now and will take
    these too: nothing to do here. Requests are claimed in batches under the account's mark and
    sent ``calls_per_account`` at a time (each request's own call only once at a time); before
    each call the mark is read again, and if the account changed (a hold, a pause, a limit, an
    invoice: anything saved) no further call is made: the rest of the batch is put back and
    claimed again under admission as it is now. After ``turn_seconds`` the rest is handed to a
    new task.
    """
    with locks.hold(account_id) as held:
        if held is None:
            return {}
        outcomes = _Sender(new_uow, ctx, provisioner, held, account_id, clock).run()
    # Requests queued while we held the lock were left to us; those queued after our last look,
    # or the rest of a turn that ran out, need another turn now; a retry, when it is due.
    now = clock()
    with new_uow() as uow:
        due = uow.requests.next_due_at(account_id)
    if due is not None:
        wait = (due - now).total_seconds()
        if wait <= 0:
            ctx.publisher.dispatch_provisioning([account_id])
        elif wait <= ctx.provisioning.countdown_limit_seconds:  # further off: the sweep sends it
            ctx.publisher.dispatch_provisioning([account_id], countdown=wait)
    return outcomes


_Sent = tuple[_Batch, list[SendResult | None]]  # a batch and each request's result (None: not sent)


class _Sender:
    """One turn of sending an account's requests, by the holder of its dispatch lock."""

    def __init__(
        self,
        new_uow: UnitOfWorkFactory,
        ctx: ServiceContext,
        provisioner: Provisioner,
        held: HeldAccount,
        account_id: str,
        clock: Clock,
    ) -> None:
        self.new_uow, self.ctx, self.provisioner, self.held = new_uow, ctx, provisioner, held
        self.account_id, self.clock = account_id, clock
        self.policy = ctx.provisioning
        self.ends = time.monotonic() + self.policy.turn_seconds
        self.size = 10  # until we know how long a call takes
        self.outcomes: dict[str, str] = {}

    def run(self) -> dict[str, str]:
        with ThreadPoolExecutor(max_workers=self.policy.calls_per_account) as calls:
            sent: list[_Sent] = []
            while True:
                batch = self.transact(sent, claim=not self.turn_over())
                if batch is None:
                    return self.outcomes
                sent = [(batch, self.send(batch, calls))]

    def turn_over(self) -> bool:
        return time.monotonic() >= self.ends

    def transact(self, to_record: list[_Sent], *, claim: bool) -> _Batch | None:
        """Record what was sent and claim the next batch, in one transaction."""
        now = self.clock()
        with self.new_uow() as uow:
            account = uow.accounts.get(self.account_id, lock=True)  # the lock order: account, then requests
            for batch, results in to_record:
                self.outcomes.update(_record(uow, self.ctx, batch.claimed, results, now))
            claimed = _claim(uow, self.ctx, self.account_id, now, self.size) if claim and account else None
            uow.commit()
        return claimed

    def send(self, batch: _Batch, calls: ThreadPoolExecutor) -> list[SendResult | None]:
        """Call the API for the batch's requests in order, a few at a time; None for each not sent.

        Before each call the account's mark is read: once it has changed (or the turn is over), no
        further call starts. Calls already under way finish and are recorded.
        """
        stop = threading.Event()
        started = time.monotonic()

        def send_one(claimed: _Claimed) -> SendResult | None:
            if stop.is_set() or self.turn_over():
                return None
            if batch.mark is None or not batch.mark.still_holds(self.clock(), self.held.mark()):
                stop.set()  # the account changed: the rest goes back, to be claimed again
                return None
            result = self.provisioner.send(claimed.request)
            self.ctx.metrics.count("provisioning_calls", outcome=result.outcome)
            return result

        results = list(calls.map(send_one, batch.claimed))
        sent = sum(1 for r in results if r is not None)
        if sent:  # claim about ``claim_seconds`` of calls next time
            parallel = self.policy.calls_per_account
            per_call = max((time.monotonic() - started) * parallel / sent, 1e-4)
            self.size = max(1, min(self.policy.max_claim, int(self.policy.claim_seconds * parallel / per_call)))
        return results


def _claim(uow: UnitOfWork, ctx: ServiceContext, account_id: str, now: datetime, size: int) -> _Batch | None:
    """Check the account's holds and limit as they are now, then claim its ``size`` oldest due requests."""
    account = uow.accounts.get(account_id)  # locked by the caller
    assert account is not None
    change = Change(now, "holdfast", "dispatch")
    if account.credit_limit is not None or account.effects(ctx.policy, now).parks_provisioning:
        # Admission again, at the moment of sending: what may not go now goes back to awaiting.
        reevaluate_account(uow, account_id, ctx, change, account=account)
    found = uow.requests.next_queued(account_id, now, size)
    if not found:
        return None
    entries = [request.move(RequestState.PROVISIONING, change) for request, _ in found]
    uow.requests.save_all(((request, now) for request, _ in found), now)
    uow.timeline.append(account_id, entries)
    claimed = [_Claimed(request, attempts) for request, attempts in found]
    return _Batch(claimed, uow.accounts.dispatch_mark(account_id))


def _record(
    uow: UnitOfWork, ctx: ServiceContext, claimed: list[_Claimed], results: list[SendResult | None], now: datetime
) -> dict[str, str]:
    """Record the calls made and what follows each (provisioned, failed, queued again for a retry);
    requests claimed but not sent go back to queued."""
    if not claimed:
        return {}
    account_id = claimed[0].request.account_id
    change = Change(now, "holdfast", "dispatch")
    current = {r.request_id: r for r in uow.requests.lock_many(c.request.request_id for c in claimed)}
    uow.requests.add_attempts(
        (c.request.request_id, r.attempt) for c, r in zip(claimed, results, strict=False) if r is not None
    )
    outcomes: dict[str, str] = {}
    entries: list[TimelineEntry] = []
    saved: list[tuple[ProvisioningRequest, datetime | None]] = []
    for number, item in enumerate(claimed):
        request = current[item.request.request_id]
        if request.state is not RequestState.PROVISIONING:  # cannot happen while we hold the lock; be safe
            continue
        result = results[number] if number < len(results) else None
        if result is None:  # not sent: claimed again with the account as it is now
            entries.append(request.move(RequestState.QUEUED, change, unsent=True))
            saved.append((request, now))
            continue
        outcome, entry, delay = _settle_attempt(request, result, item.round_attempts + 1, ctx, change)
        outcomes[request.request_id] = outcome
        entries.append(entry)
        saved.append((request, None if delay is None else now + timedelta(seconds=delay)))
    uow.requests.save_all(saved, now)
    uow.timeline.append(account_id, entries)
    counts = Counter(outcomes.values())
    log.info("provisioning_recorded", account_id=account_id, **counts, unsent=len(claimed) - len(outcomes))
    if "failed" in outcomes.values():
        # A failed request leaves exposure and no invoice will replace it: orders waiting for the
        # credit limit may fit now. (A provisioned one is replaced by its invoice: no re-admission.)
        reevaluate_account(uow, account_id, ctx, change)
    return outcomes


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
    delay = retry_delay(
        attempts,
        first=ctx.provisioning.backoff_seconds,
        cap=ctx.provisioning.backoff_cap_seconds,
        retry_after=result.retry_after_seconds,
    )
    return "retry", request.move(RequestState.QUEUED, change, retry_in_seconds=round(delay, 1), **what), delay


def sweep_requests(
    new_uow: UnitOfWorkFactory,
    ctx: ServiceContext,
    locks: DispatchLock,
    now: datetime,
    *,
    stuck_after: timedelta | None = None,
    batch: int = 500,
) -> int:
    """Hand on the accounts whose requests are overdue or lost their sender; return how many requests were recovered.

    A queued request overdue (its task lost, or a retry too far off for a delayed task) gets a
    new dispatch task. A request ``provisioning`` for longer than ``stuck_after`` is sent again
    only when its account's dispatch lock is free: its sender died, so its call has ended.
    While the lock is held, the call is still under way, however slowly the API answers.
    """
    stuck = timedelta(seconds=ctx.provisioning.stuck_after_seconds) if stuck_after is None else stuck_after
    with new_uow() as uow:
        accounts = uow.requests.accounts_to_dispatch(now - stuck, now - stuck, batch)
    recovered = 0
    change = Change(now, "holdfast", "sweep")
    for account_id in accounts:
        with locks.hold(account_id) as held:
            if not held:
                continue  # its sender is alive; it takes every due request of the account
            with new_uow() as uow:
                uow.accounts.get(account_id, lock=True)
                lost = uow.requests.sending(account_id, now - stuck)
                for request in lost:
                    entry = request.move(RequestState.QUEUED, change, recovered=True)
                    uow.timeline.append(account_id, [entry])
                    uow.requests.save(request, now, due_at=now)
                uow.commit()
            recovered += len(lost)
    if accounts:
        ctx.publisher.dispatch_provisioning(accounts)
        log.info("provisioning_swept", accounts=len(accounts), recovered=recovered)
    return recovered

"""What a candidate policy would change for one account: its holds and its orders, decided twice at one moment.

The account is evaluated and admitted under the policy in force and under the candidate, at
the same ``now``, on copies: nothing it is given changes. The two outcomes are compared
reason by reason and order by order. Comparing with the policy in force (rather than with
the holds stored) means only the policy's difference shows: a hold the clock is about to
place or release (a grace period ending before the next tick) is the same on both sides.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime

from domain.account import Account
from domain.disputes import DisputeFact
from domain.evaluation import evaluate, settle
from domain.holds import HoldReason
from domain.invoices import InvoiceFact
from domain.policy import HoldPolicy
from domain.provisioning import ProvisioningRequest, RequestState, admit
from domain.timeline import Change

_WHAT_IF = "what-if"


@dataclass(frozen=True)
class AccountFacts:
    """An account and everything its evaluation and admission read: invoices, disputes, pending requests."""

    account: Account
    invoices: Sequence[InvoiceFact] = ()
    disputes: Sequence[DisputeFact] = ()
    requests: Sequence[ProvisioningRequest] = ()


@dataclass(frozen=True)
class Outcome:
    """The holds an account would have and which of its orders not yet sent would wait or go."""

    holds: tuple[HoldReason, ...]
    waiting: frozenset[str]
    dispatchable: frozenset[str]


@dataclass(frozen=True)
class AccountDifference:
    """How the candidate would differ for one account (reasons sorted; order counts)."""

    account_id: str
    name: str | None
    holds_now: tuple[HoldReason, ...]
    holds_under_candidate: tuple[HoldReason, ...]
    placed: tuple[HoldReason, ...]
    released: tuple[HoldReason, ...]
    orders_released: int
    orders_parked: int


def outcome(facts: AccountFacts, policy: HoldPolicy, now: datetime) -> Outcome:
    """Settle the account's holds and admit its orders under ``policy`` at ``now``, on copies."""
    change = Change(at=now, actor="holdfast", cause=_WHAT_IF)
    account = replace(facts.account, holds=dict(facts.account.holds))
    evaluation = evaluate(
        facts.invoices, policy, now, credit_review_cause=account.credit_review_cause, disputes=facts.disputes
    )
    settle(account, evaluation, change)
    requests = [replace(request) for request in facts.requests]
    admit(requests, account.effects(policy, now), evaluation.invoice_exposure, account.credit_limit, change)
    return Outcome(
        holds=tuple(sorted(account.holds)),
        waiting=frozenset(r.request_id for r in requests if r.state is RequestState.AWAITING),
        dispatchable=frozenset(r.request_id for r in requests if r.state is RequestState.QUEUED),
    )


def compare(
    facts: AccountFacts, in_force: HoldPolicy, candidate: HoldPolicy, now: datetime
) -> AccountDifference | None:
    """What ``candidate`` would change for this account at ``now``; None when its holds and orders stay."""
    before, after = outcome(facts, in_force, now), outcome(facts, candidate, now)
    released_orders = len(before.waiting & after.dispatchable)
    parked_orders = len(before.dispatchable & after.waiting)
    if before.holds == after.holds and not released_orders and not parked_orders:
        return None
    return AccountDifference(
        account_id=facts.account.account_id,
        name=facts.account.name,
        holds_now=before.holds,
        holds_under_candidate=after.holds,
        placed=tuple(r for r in after.holds if r not in before.holds),
        released=tuple(r for r in before.holds if r not in after.holds),
        orders_released=released_orders,
        orders_parked=parked_orders,
    )

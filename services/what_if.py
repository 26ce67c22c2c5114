"""Ask what a candidate policy would change, over the whole book, changing nothing.

Accounts are read in pages of ``PAGE_SIZE`` by account id: per page, one read each of the
accounts, their holds, their Stripe customers' invoices and disputes, and their pending requests
(never one query per account; the facts by the page's range of account ids, not a list of them).
Each account is compared by the pure domain (``domain.what_if.compare``) under the policy in
force and the candidate, at one fixed ``now``. It all runs in one read-only transaction that is
rolled back.

The changes come in pages too (``limit``): a page ends at its last change, and the next starts
after that account. ``accounts_evaluated`` counts the accounts a page covers (those from its
start to its last change, or to the end of the book on the last page), so the pages of one
what-if add up to the book.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from domain.account import Account
from domain.policy import HoldPolicy
from domain.what_if import AccountDifference, AccountFacts, compare
from services.ports import UnitOfWork

PAGE_SIZE = 500


@dataclass(frozen=True)
class WhatIfPage:
    """The accounts this page covered, the changes among them, and where the next page starts (None: done)."""

    accounts_evaluated: int
    changes: list[AccountDifference] = field(default_factory=list)
    next_after: str | None = None


def _facts(uow: UnitOfWork, accounts: Sequence[Account]) -> Iterator[AccountFacts]:
    """Each account with its facts, read for the whole page at once (by the page's range of account ids)."""
    if not accounts:
        return
    first, last = accounts[0].account_id, accounts[-1].account_id
    invoices = uow.invoices.for_accounts(first, last)
    disputes = uow.disputes.for_accounts(first, last)
    requests = uow.requests.pending_between(first, last)
    for account in accounts:
        yield AccountFacts(
            account=account,
            invoices=invoices.get(account.account_id, []),
            disputes=disputes.get(account.account_id, []),
            requests=requests.get(account.account_id, []),
        )


def what_if(
    uow: UnitOfWork,
    in_force: HoldPolicy,
    candidate: HoldPolicy,
    now: datetime,
    *,
    after: str | None = None,
    limit: int | None = None,
    page_size: int = PAGE_SIZE,
) -> WhatIfPage:
    """The accounts after ``after`` whose holds or orders ``candidate`` would change at ``now``, ``limit`` at most.

    ``limit`` None: every change, in one page (the command line, the benchmark).
    """
    changes: list[AccountDifference] = []
    evaluated = covered = 0
    with uow:
        uow.read_only()
        cursor = after
        while True:
            accounts = uow.accounts.page(on_hold=None, after=cursor, limit=page_size)
            for facts in _facts(uow, accounts):
                difference = compare(facts, in_force, candidate, now)
                if difference is not None and limit is not None and len(changes) == limit:
                    # One change too many: this page ends at the one before, and so does its count.
                    return WhatIfPage(covered, changes, changes[-1].account_id)
                evaluated += 1
                if difference is not None:
                    changes.append(difference)
                    covered = evaluated
            if len(accounts) < page_size:
                return WhatIfPage(evaluated, changes, None)
            cursor = accounts[-1].account_id

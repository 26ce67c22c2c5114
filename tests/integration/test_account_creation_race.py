"""Two sources creating the same new account at the same moment: one account, no failed event.

A CRM account Create, a Stripe ``customer.created`` naming the account and a ``PUT`` of it may
all be the first to see an account. Each inserts the row if it is missing and locks it in one
step (``INSERT … ON CONFLICT DO NOTHING`` then ``SELECT … FOR UPDATE``), so the second waits for
the first to commit and then finds the row, instead of failing on the duplicate key.
"""

from __future__ import annotations

import queue
import threading
import uuid
from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import select, text

from adapters.db.tables import AccountRow, InboxEventRow, TimelineRow
from tests.conftest import ADMIN_TOKEN, post_dynamics, post_stripe, process_one, stripe_fixture, wait_for
from tests.dynamics_bodies import account_create

ROUNDS = 8  # each round is a fresh account: the more rounds, the likelier the race is hit


def together(*actions: Callable[[], Any]) -> list[Any]:
    """Run the actions in threads released at once by a barrier; their results (or exceptions) in order."""
    barrier = threading.Barrier(len(actions))
    results: list[Any] = [None] * len(actions)

    def run(index: int, action: Callable[[], Any]) -> None:
        barrier.wait()
        try:
            results[index] = action()
        except Exception as error:
            results[index] = error

    threads = [threading.Thread(target=run, args=(i, a)) for i, a in enumerate(actions)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return results


def inbox_id(container: Any, external_id_contains: str) -> int:
    with container.session_factory() as session:
        ids = list(
            session.execute(
                select(InboxEventRow.id).where(InboxEventRow.external_id.contains(external_id_contains))
            ).scalars()
        )
    (found,) = ids
    return found


def account_rows_and_creations(container: Any, account_id: str) -> tuple[int, int]:
    with container.session_factory() as session:
        rows = session.execute(select(AccountRow.account_id).where(AccountRow.account_id == account_id)).all()
        created = session.execute(
            select(TimelineRow.id).where(TimelineRow.account_id == account_id, TimelineRow.kind == "account_created")
        ).all()
    return len(rows), len(created)


def process(container: Any, row_id: int) -> Callable[[], str]:
    return lambda: process_one(container, row_id)  # each call its own unit of work (and connection)


@pytest.mark.parametrize("crm_names_the_customer", [False, True])
def test_a_crm_create_and_a_stripe_customer_created_for_one_new_account_both_succeed(
    client: Any, container: Any, crm_names_the_customer: bool
) -> None:
    for _ in range(ROUNDS):
        account_id, customer_id = str(uuid.uuid4()), f"cus_{uuid.uuid4().hex[:14]}"
        operation = str(uuid.uuid4())
        body = account_create(
            account_id, operation=operation, stripe_customer=customer_id if crm_names_the_customer else None
        )
        assert post_dynamics(client, body).status_code == 200
        customer = stripe_fixture(
            "customer.updated.zulip-delinquency.json", id=customer_id, metadata={"crm_account_id": account_id}
        )
        customer["type"] = "customer.created"
        assert post_stripe(client, customer).status_code == 200

        outcomes = together(
            process(container, inbox_id(container, operation)), process(container, inbox_id(container, customer["id"]))
        )

        assert outcomes == ["processed", "processed"], [getattr(r, "last_error", None) for r in _rows(container)]
        assert account_rows_and_creations(container, account_id) == (1, 1)
        account = client.get(f"/api/accounts/{account_id}", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}).json
        assert account["stripe_customer_id"] == customer_id


def _rows(container: Any) -> list[Any]:
    with container.session_factory() as session:
        return list(session.execute(select(InboxEventRow)).scalars())


def test_two_puts_of_one_new_account_at_once_create_it_once(app: Any, container: Any) -> None:
    headers = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    for _ in range(ROUNDS):
        account_id = f"acct-{uuid.uuid4().hex[:12]}"

        def put(name: str, account_id: str = account_id) -> int:
            with app.test_client() as own:
                return int(own.put(f"/api/accounts/{account_id}", json={"name": name}, headers=headers).status_code)

        statuses = together(lambda: put("First"), lambda: put("Second"))
        assert sorted(statuses) == [200, 201]
        assert account_rows_and_creations(container, account_id) == (1, 1)


def test_a_second_transaction_waits_for_the_first_creation_to_commit_and_then_finds_the_row(container: Any) -> None:
    if container.engine.dialect.name != "postgresql":
        pytest.skip("SQLite lets one writer at a time in (BEGIN IMMEDIATE): the PostgreSQL run shows the wait")
    account_id, now = str(uuid.uuid4()), container.clock()
    backend: queue.Queue[int] = queue.Queue()
    second: queue.Queue[Any] = queue.Queue()

    def create_or_lock_in_another_transaction() -> None:
        with container.uow() as uow:
            backend.put(uow.session.execute(text("SELECT pg_backend_pid()")).scalar_one())
            second.put(uow.accounts.create_or_lock(account_id, container.clock()))
            uow.commit()

    with container.uow() as first:
        account, created = first.accounts.create_or_lock(account_id, now)
        assert created and account.account_id == account_id
        account.name = "Created first"
        first.accounts.save(account, now)
        thread = threading.Thread(target=create_or_lock_in_another_transaction)
        thread.start()
        pid = backend.get(timeout=30)

        def waiting_on_a_lock() -> bool:
            with container.engine.connect() as connection:
                return bool(
                    connection.execute(
                        text("SELECT wait_event_type = 'Lock' FROM pg_stat_activity WHERE pid = :pid"), {"pid": pid}
                    ).scalar()
                )

        wait_for(waiting_on_a_lock, what="the second transaction to wait for the first one's row")
        assert second.empty()
        first.commit()
    thread.join(timeout=30)
    found, created_again = second.get(timeout=1)
    assert not created_again and found.name == "Created first"
    assert account_rows_and_creations(container, account_id) == (1, 0)  # the repository writes no timeline

"""The bad-input fixtures, for every integration test: refusals must leave every row alone.

``queued`` records the tasks the web process sends; ``nothing_changes`` checks that no row of any
table changed and no task was queued; ``seeded`` is the state the refusals are tried against.
The helpers they use (``database_state``, ``refused``, ...) are in tests/bad_input.py.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import pytest

from bootstrap import Container
from tests.bad_input import FAILED_EVENT_ID, NothingChanges, database_state


@pytest.fixture
def queued(container: Container, monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, Any]]:
    """Every task the web process sends to the broker in this test (recorded, not sent)."""
    sent: list[tuple[str, Any]] = []
    monkeypatch.setattr(
        container.celery, "send_task", lambda name, *args, **kwargs: sent.append((name, kwargs.get("args")))
    )
    return sent


@pytest.fixture
def nothing_changes(container: Container, queued: list[tuple[str, Any]]) -> NothingChanges:
    """``with nothing_changes(): ...`` fails if any table's rows changed or a task was queued inside."""

    @contextmanager
    def check() -> Iterator[None]:
        before, tasks_before = database_state(container), len(queued)
        yield
        after = database_state(container)
        for table, (count, rows) in before.items():
            assert after[table][0] == count, f"{table} had {count} rows and now has {after[table][0]}"
            assert after[table][1] == rows, f"rows of {table} changed"
        assert queued[tasks_before:] == [], f"tasks were queued: {queued[tasks_before:]}"

    return check


@pytest.fixture
def seeded(client: Any, admin: dict[str, str], container: Container, queued: list[tuple[str, Any]]) -> None:
    """acme (cus_acme, a manual hold), globex (no hold), a failed and a processed delivery."""
    assert client.put("/api/accounts/acme", json={"name": "Acme", "stripe_customer_id": "cus_acme"}, headers=admin)
    assert client.post("/api/accounts/acme/holds", json={"reason": "manual", "note": "first"}, headers=admin)
    assert client.put("/api/accounts/globex", json={"name": "Globex", "credit_limit": "100.00"}, headers=admin)
    now = datetime.now(UTC)
    failed = container.deliveries.add("stripe", FAILED_EVENT_ID, "invoice.paid", "{}", now)
    done = container.deliveries.add("stripe", "evt_done_0001", "invoice.paid", "{}", now)
    assert failed is not None and done is not None
    with container.uow() as uow:
        uow.inbox.record_outcome(failed, "failed", now, error="ValueError: test")
        uow.inbox.record_outcome(done, "processed", now)
        uow.commit()
    queued.clear()

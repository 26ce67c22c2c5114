"""Holds that follow the calendar, end to end: a real worker and a real beat process, no new webhook."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest

from tests.conftest import finalized_invoice, post_stripe, stripe_fixture, wait_for
from tests.workers import CeleryProcess, start_beat, start_worker

pytestmark = pytest.mark.e2e


@pytest.fixture
def worker_and_beat(backend_env: dict[str, str], container: Any) -> Iterator[tuple[CeleryProcess, CeleryProcess]]:
    env = {
        **backend_env,
        "TICK_INTERVAL_SECONDS": "1",
        "SWEEP_INTERVAL_SECONDS": "3600",
        "RECONCILE_INTERVAL_SECONDS": "3600",
    }
    worker = start_worker(env)
    beat = start_beat(env)
    try:
        yield worker, beat
    finally:
        beat.stop()
        worker.stop()


def test_an_invoice_passing_its_due_date_plus_the_policy_days_is_held_by_beat_and_released_when_paid(
    client: Any, admin: dict[str, str], container: Any, worker_and_beat: Any
) -> None:
    client.put("/api/accounts/acme", json={"stripe_customer_id": "cus_clock"}, headers=admin)
    # Sent for manual payment, due 15 days (the default policy) minus 4 seconds ago: past due in 4 s.
    due = container.clock() - timedelta(days=15) + timedelta(seconds=4)
    finalized = finalized_invoice(
        "cus_clock", "in_clock", 9900, collection_method="send_invoice", due_date=int(due.timestamp())
    )
    post_stripe(client, finalized)
    wait_for(lambda: client.get("/api/accounts/acme", headers=admin).json["exposure"] == "99.00", what="the invoice")
    assert client.get("/api/accounts/acme", headers=admin).json["holds"] == []

    wait_for(lambda: client.get("/api/accounts/acme", headers=admin).json["holds"], timeout=30, what="beat's tick")
    placed = client.get("/api/accounts/acme/timeline", headers=admin).json["items"][0]
    assert (placed["kind"], placed["cause"], placed["actor"]) == ("hold_placed", "clock", "holdfast")
    assert time.time() >= int(due.timestamp()) + 15 * 86400

    paid = stripe_fixture("invoice.paid.stripe-ruby-mock.json", customer="cus_clock", id="in_clock")
    paid["created"] = finalized["created"] + 60
    post_stripe(client, paid)
    wait_for(lambda: client.get("/api/accounts/acme", headers=admin).json["holds"] == [], what="the hold to lift")

"""The worker is another process: what it counts reaches the web's GET /metrics, on either backend
(the embedded default's multiprocess files, or Redis)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import post_stripe, stripe_fixture, wait_for
from tests.integration.test_metrics import grew, scrape

pytestmark = pytest.mark.e2e


def test_events_processed_by_the_worker_process_are_counted_in_the_webs_metrics(
    client: Any, admin: dict[str, str], worker: Any
) -> None:
    before = scrape(client, admin)
    assert client.put("/api/accounts/m-e2e", json={"stripe_customer_id": "cus_me2e"}, headers=admin).status_code == 201
    for n in range(3):
        event = stripe_fixture("invoice.payment_failed.stripe-ruby-mock.json", customer="cus_me2e", id=f"in_me2e{n}")
        assert post_stripe(client, event).status_code == 200

    def processed() -> float:
        return grew(
            before, scrape(client, admin), "holdfast_events_processed_total", source="stripe", outcome="processed"
        )

    wait_for(lambda: processed() >= 3, what="the worker's counts in /metrics")
    after = scrape(client, admin)
    assert grew(before, after, "holdfast_events_processed_total", source="stripe", outcome="processed") == 3
    assert grew(before, after, "holdfast_event_processing_seconds_count", source="stripe") == 3
    assert grew(before, after, "holdfast_webhooks_received_total", source="stripe") == 3
    assert after[("holdfast_accounts_on_hold", (("reason", "non_payment"),))] == 1

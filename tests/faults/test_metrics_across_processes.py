"""GET /metrics is true across processes: two gunicorn workers answer it, a separate Celery worker
(the Procfile's) processes the events and calls the provisioning API, and every scrape, whichever
gunicorn worker answers it, shows what all of them counted (Redis holds the counts)."""

from __future__ import annotations

from typing import Any

import requests
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import ADMIN_TOKEN, stripe_fixture
from tests.faults.stack import Stack, until

HELD = 12  # accounts whose failed payment holds them
UNMAPPED = 8  # failed payments of customers no account maps: processed, hold nothing
ORDERS = 5  # orders of an account without a hold: each one call to the provisioning API
SCRAPES = 8  # a new connection each: both gunicorn workers answer some


def scrape(stack: Stack) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    response = requests.get(
        stack.url + "/metrics", headers={"Authorization": f"Bearer {ADMIN_TOKEN}", "Connection": "close"}, timeout=30
    )
    assert response.status_code == 200, response.text
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def value(samples: dict[Any, float], name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def test_every_scrape_shows_the_counts_of_every_web_and_worker_process(stack: Stack, provisioning: Any) -> None:
    stack.start_web()  # gunicorn with two workers (WEB_CONCURRENCY=2)
    stack.start_worker(concurrency=2)
    for n in range(HELD):
        assert stack.api("PUT", f"/api/accounts/m-{n}", json={"stripe_customer_id": f"cus_m{n}"}).status_code == 201
    assert stack.api("PUT", "/api/accounts/m-free", json={"name": "Free"}).status_code == 201
    for n in range(ORDERS):
        placed = stack.api("POST", "/api/accounts/m-free/orders", json={"order_id": f"o-{n}", "amount": "5.00"})
        assert placed.status_code == 201, placed.text

    customers = [f"cus_m{n}" for n in range(HELD)] + [f"cus_nobody{n}" for n in range(UNMAPPED)]
    for n, customer in enumerate(customers):
        event = stripe_fixture("invoice.payment_failed.stripe-ruby-mock.json", customer=customer, id=f"in_m{n}")
        assert stack.post_stripe(event).status_code == 200
    webhooks = HELD + UNMAPPED

    def all_counted() -> bool:
        samples = scrape(stack)
        return (
            value(samples, "holdfast_webhooks_received_total", source="stripe") == webhooks
            and value(samples, "holdfast_events_processed_total", source="stripe", outcome="processed") == webhooks
            and value(samples, "holdfast_provisioning_calls_total", outcome="provisioned") == ORDERS
        )

    until(all_counted, timeout=120, what="the worker's counts to reach /metrics")

    for _ in range(SCRAPES):
        samples = scrape(stack)
        assert value(samples, "holdfast_webhooks_received_total", source="stripe") == webhooks
        assert value(samples, "holdfast_events_processed_total", source="stripe", outcome="processed") == webhooks
        assert value(samples, "holdfast_event_processing_seconds_count", source="stripe") == webhooks
        assert value(samples, "holdfast_event_processing_seconds_bucket", source="stripe", le="+Inf") == webhooks
        assert value(samples, "holdfast_provisioning_calls_total", outcome="provisioned") == ORDERS
        assert value(samples, "holdfast_accounts_on_hold", reason="non_payment") == HELD
        assert value(samples, "holdfast_requests", state="provisioned") == ORDERS
        assert value(samples, "holdfast_inbox_oldest_unprocessed_seconds") == 0
    assert len(provisioning.calls) == ORDERS

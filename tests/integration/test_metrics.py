"""GET /metrics after a known set of deliveries: the webhook, the worker's service call, the database."""

from __future__ import annotations

from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import post_stripe, process_pending, stripe_fixture
from tests.integration.test_provisioning import dispatch, order
from tests.integration.test_stripe_processing import map_account

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def scrape(client: Any, admin: dict[str, str]) -> Samples:
    response = client.get("/metrics", headers=admin)
    assert response.status_code == 200, response.data
    assert response.content_type.startswith("text/plain; version=0.0.4")
    found: Samples = {}
    for family in text_string_to_metric_families(response.get_data(as_text=True)):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def grew(before: Samples, after: Samples, name: str, **labels: str) -> float:
    """How much a counter grew (the session's processes count into the same store across tests)."""
    key = (name, tuple(sorted(labels.items())))
    return after.get(key, 0.0) - before.get(key, 0.0)


def test_metrics_refuse_a_request_without_a_token_with_a_sentence(client: Any) -> None:
    for headers in ({}, {"Authorization": "Bearer not-the-token"}, {"Authorization": "Basic eDp5"}):
        response = client.get("/metrics", headers=headers)
        assert response.status_code == 401
        assert response.json["error"] == "unauthorized"
        assert "Bearer" in response.json["message"]


def test_metrics_count_every_delivery_outcome_call_hold_and_request(
    client: Any, container: Any, admin: dict[str, str], provisioning: Any
) -> None:
    before = scrape(client, admin)
    map_account(client, admin, "acme", "cus_acme")
    assert order(client, admin, "acme", "o-1").status_code == 201
    assert set(dispatch(container).values()) == {"provisioned"}

    failed = stripe_fixture("invoice.payment_failed.stripe-ruby-mock.json", customer="cus_acme", id="in_metrics_1")
    assert post_stripe(client, failed).status_code == 200
    assert post_stripe(client, failed).json["duplicate"] is True
    assert post_stripe(client, stripe_fixture("product.created.stripe-ruby-mock.json")).status_code == 200
    waiting = scrape(client, admin)
    assert process_pending(container) == ["processed", "ignored"]
    after = scrape(client, admin)

    assert grew(before, after, "holdfast_webhooks_received_total", source="stripe") == 3
    assert grew(before, after, "holdfast_events_processed_total", source="stripe", outcome="processed") == 1
    assert grew(before, after, "holdfast_events_processed_total", source="stripe", outcome="ignored") == 1
    assert grew(before, after, "holdfast_event_processing_seconds_count", source="stripe") == 2
    assert grew(before, after, "holdfast_event_processing_seconds_bucket", source="stripe", le="+Inf") == 2
    assert grew(before, after, "holdfast_provisioning_calls_total", outcome="provisioned") == 1
    assert after[("holdfast_accounts_on_hold", (("reason", "non_payment"),))] == 1
    assert after[("holdfast_accounts_on_hold", (("reason", "dispute"),))] == 0
    assert after[("holdfast_requests", (("state", "provisioned"),))] == 1
    assert after[("holdfast_requests", (("state", "awaiting"),))] == 0
    assert waiting[("holdfast_inbox_oldest_unprocessed_seconds", ())] >= 0
    assert after[("holdfast_inbox_oldest_unprocessed_seconds", ())] == 0  # nothing waits any more
    # Nothing subscribes here: no delivery was attempted (tests/e2e/test_outgoing_webhooks.py counts some).
    for outcome in ("delivered", "retry", "failed"):
        assert grew(before, after, "holdfast_outgoing_deliveries_total", outcome=outcome) == 0

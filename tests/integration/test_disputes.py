"""Disputes through the real webhook and database, the customer found through a local stand-in for Stripe's API."""

from __future__ import annotations

from typing import Any

import pytest

from adapters.stripe_api import StripeUnavailable
from tests.conftest import inbox_rows, post_stripe, process_pending, stripe_fixture


def reasons(client: Any, admin: dict[str, str]) -> list[str]:
    return [h["reason"] for h in client.get("/api/accounts/acme", headers=admin).json["holds"]]


def opened(dispute_id: str = "dp_1", charge: str = "ch_1", **changes: Any) -> dict[str, Any]:
    return stripe_fixture("charge.dispute.created.stripe-sync-engine.json", id=dispute_id, charge=charge, **changes)


def closed(dispute_id: str, status: str, after: dict[str, Any], charge: str = "ch_1") -> dict[str, Any]:
    event = stripe_fixture("charge.dispute.closed.stripe-ruby-mock.json", id=dispute_id, status=status, charge=charge)
    event["created"] = after["created"] + 3600
    return event


@pytest.fixture
def acme(client: Any, admin: dict[str, str], stripe_api_stub: Any) -> Any:
    client.put("/api/accounts/acme", json={"stripe_customer_id": "cus_disputed"}, headers=admin)
    stripe_api_stub.add_charge("ch_1", {"id": "ch_1", "object": "charge", "customer": "cus_disputed"})
    return stripe_api_stub


def test_a_dispute_holds_the_account_and_a_won_dispute_releases_it(
    client: Any, admin: dict[str, str], container: Any, acme: Any
) -> None:
    event = opened()
    post_stripe(client, event)
    assert process_pending(container) == ["processed"]
    (hold,) = client.get("/api/accounts/acme", headers=admin).json["holds"]
    assert hold["reason"] == "dispute" and hold["cause"] == f"stripe:{event['id']}" and "dp_1" in hold["note"]
    assert acme.paths() == ["/v1/charges/ch_1"]
    post_stripe(client, closed("dp_1", "won", event))
    assert process_pending(container) == ["processed"]
    assert reasons(client, admin) == []
    assert acme.paths() == ["/v1/charges/ch_1"]  # the dispute's customer is remembered


def test_a_lost_dispute_holds_until_finance_lifts_it(
    client: Any, admin: dict[str, str], container: Any, acme: Any
) -> None:
    event = opened()
    post_stripe(client, event)
    process_pending(container)
    refused = client.delete("/api/accounts/acme/holds/dispute", json={"note": "written off"}, headers=admin)
    assert refused.status_code == 409 and refused.json["error"] == "dispute_open"
    post_stripe(client, closed("dp_1", "lost", event))
    process_pending(container)
    assert reasons(client, admin) == ["dispute"]
    lifted = client.delete("/api/accounts/acme/holds/dispute", json={"note": "written off"}, headers=admin)
    assert lifted.status_code == 200 and lifted.json["holds"] == []


def test_the_customer_is_found_through_the_payment_intent_when_the_charge_has_none(
    client: Any, admin: dict[str, str], container: Any, acme: Any
) -> None:
    acme.add_charge("ch_2", {"id": "ch_2", "object": "charge", "customer": None})
    acme.add_payment_intent("pi_2", {"id": "pi_2", "object": "payment_intent", "customer": "cus_disputed"})
    post_stripe(client, opened("dp_2", "ch_2", payment_intent="pi_2"))
    assert process_pending(container) == ["processed"]
    assert reasons(client, admin) == ["dispute"]


def test_a_look_up_that_fails_transiently_leaves_the_event_to_retry(
    client: Any, admin: dict[str, str], container: Any, acme: Any
) -> None:
    acme.add_charge("ch_3", 503)
    post_stripe(client, opened("dp_3", "ch_3"))
    with pytest.raises(StripeUnavailable):
        process_pending(container)
    (row,) = inbox_rows(container)
    assert row.status == "received"  # the task retries it, and the sweep finds it
    acme.add_charge("ch_3", {"id": "ch_3", "object": "charge", "customer": "cus_disputed"})
    assert process_pending(container) == ["processed"]
    assert reasons(client, admin) == ["dispute"]


def test_a_look_up_that_fails_for_good_leaves_the_event_failed_and_replayable(
    client: Any, admin: dict[str, str], container: Any, acme: Any
) -> None:
    event = opened("dp_4", "ch_missing")
    post_stripe(client, event)
    assert process_pending(container) == ["failed"]
    (row,) = inbox_rows(container)
    assert "ch_missing" in row.last_error and "404" in row.last_error
    acme.add_charge("ch_missing", {"id": "ch_missing", "object": "charge", "customer": "cus_disputed"})
    assert client.post(f"/api/events/stripe/{event['id']}/replay", headers=admin).status_code == 202
    assert process_pending(container) == ["processed"]
    assert reasons(client, admin) == ["dispute"]


def test_an_events_worker_never_calls_stripe_it_hands_the_dispute_to_the_stripe_queue(
    client: Any, admin: dict[str, str], container: Any, acme: Any
) -> None:
    import dataclasses

    from services.inbox import process_inbox_event

    handed: list[tuple[int, str]] = []

    class Recording:
        def complete_inbox_event(self, inbox_id: int, peer: str, countdown: float | None = None) -> None:
            handed.append((inbox_id, peer))

    post_stripe(client, opened())
    (row,) = inbox_rows(container)
    ctx = dataclasses.replace(container.context, publisher=Recording())

    def process(may_call: set[str]) -> str:
        return process_inbox_event(
            container.uow,
            row.id,
            container.handlers,
            ctx,
            container.clock(),
            container.transient_errors,
            completions=container.completions,
            may_call=may_call,
        )

    assert process(set()) == "deferred"  # on holdfast.events: no call to Stripe
    assert handed == [(row.id, "stripe")] and acme.paths() == []
    assert process({"stripe"}) == "processed"  # on holdfast.stripe: looked up outside any transaction, applied
    assert acme.paths() == ["/v1/charges/ch_1"]
    (row,) = inbox_rows(container)
    assert row.meta["dispute_customer"] == "cus_disputed"  # kept with the delivery: a replay asks no more
    assert reasons(client, admin) == ["dispute"]

"""Every current-shape Stripe fixture through the real webhook, broker and a real worker process."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.conftest import CURRENT_SHAPES, current_fixture, inbox_rows, post_stripe, wait_for

pytestmark = pytest.mark.e2e

POSTED: set[str] = set()  # fixture files these tests sent through the webhook


def account(client: Any, admin: dict[str, str], account_id: str) -> dict[str, Any]:
    response = client.get(f"/api/accounts/{account_id}", headers=admin)
    assert response.status_code == 200, response.json
    return dict(response.json)


def send(client: Any, container: Any, name: str, **changes: Any) -> str:
    """Post a fixture and wait until the worker has dealt with it; its inbox status."""
    event = current_fixture(name, **changes)
    response = post_stripe(client, event)
    assert response.status_code == 200, response.json
    POSTED.add(name)

    def settled() -> str | None:
        row = next(r for r in inbox_rows(container) if r.external_id == event["id"])
        return str(row.status) if row.status in ("processed", "ignored", "failed") else None

    return str(wait_for(settled, what=f"the worker to process {name}"))


def test_current_invoice_events_hold_and_release_by_their_bodies(
    client: Any, admin: dict[str, str], container: Any, worker: Any
) -> None:
    client.put("/api/accounts/acme", json={"stripe_customer_id": "cus_TcurrentShape01"}, headers=admin)
    assert send(client, container, "invoice.payment_failed.attempt_1.json") == "processed"
    assert [h["reason"] for h in account(client, admin, "acme")["holds"]] == ["non_payment"]
    for name in (
        "invoice.payment_failed.attempt_2.json",
        "invoice.updated.partial_payment.json",
        "invoice.payment_succeeded.partial_payment.json",
    ):
        assert send(client, container, name) == "processed"
    assert send(client, container, "invoice_payment.paid.json") == "ignored"
    state = account(client, admin, "acme")
    assert [h["reason"] for h in state["holds"]] == ["non_payment"] and state["exposure"] == "300.00"
    assert send(client, container, "invoice.paid.json") == "processed"
    assert send(client, container, "invoice.overpaid.json") == "ignored"
    state = account(client, admin, "acme")
    assert state["holds"] == [] and state["exposure"] == "0.00"

    # Another account: written off, then voided; and an invoice sent for payment long past due.
    client.put("/api/accounts/globex", json={"stripe_customer_id": "cus_TcurrentShape02"}, headers=admin)
    other = {"customer": "cus_TcurrentShape02", "id": "in_1TcurrentShape03"}
    assert send(client, container, "invoice.marked_uncollectible.json", **other) == "processed"
    assert [h["reason"] for h in account(client, admin, "globex")["holds"]] == ["non_payment"]
    assert send(client, container, "invoice.voided.json", **other) == "processed"
    assert account(client, admin, "globex")["holds"] == []
    assert send(client, container, "invoice.finalized.send_invoice.json", customer="cus_TcurrentShape02") == "processed"
    (hold,) = account(client, admin, "globex")["holds"]
    assert "15 days past due" in hold["note"] and account(client, admin, "globex")["exposure"] == "1200.00"


def test_current_dispute_events_through_a_customer_account(
    client: Any, admin: dict[str, str], container: Any, worker: Any, stripe_api_stub: Any
) -> None:
    client.put("/api/accounts/acme", json={"stripe_customer_id": "acct_1TcurrentShape01"}, headers=admin)
    for name, add in (
        ("charge.json", stripe_api_stub.add_charge),
        ("payment_intent.json", stripe_api_stub.add_payment_intent),
    ):
        resource = current_fixture(name)
        add(resource["id"], resource)

    def reasons() -> list[str]:
        return [h["reason"] for h in account(client, admin, "acme")["holds"]]

    assert send(client, container, "charge.dispute.created.json") == "processed"
    assert reasons() == ["dispute"]
    assert send(client, container, "charge.dispute.closed.prevented.json") == "processed"
    assert reasons() == []

    second = {"id": "dp_1TcurrentShape02"}
    assert send(client, container, "charge.dispute.created.json", **second) == "processed"
    assert send(client, container, "charge.dispute.closed.won.json", **second) == "processed"
    assert reasons() == []

    third = {"id": "dp_1TcurrentShape03"}
    for name in (
        "charge.dispute.created.json",
        "charge.dispute.closed.lost.json",
        "charge.dispute.updated.appeal_needs_response.json",
        "charge.dispute.updated.appeal_under_review.json",
    ):
        assert send(client, container, name, **third) == "processed"
    assert reasons() == ["dispute"]
    assert send(
        client, container, "charge.dispute.updated.appeal_under_review.json", status="new_in_2027", **third
    ) == ("processed")
    assert reasons() == ["dispute"]
    lifted = client.delete("/api/accounts/acme/holds/dispute", json={"note": "written off"}, headers=admin)
    assert lifted.status_code == 200 and lifted.json["holds"] == []

    thin = json.loads((CURRENT_SHAPES / "v2.core.event.v1.invoice.paid.json").read_text())
    refused = post_stripe(client, thin)
    assert refused.status_code == 400 and refused.json["error"] == "thin_event"
    POSTED.add("v2.core.event.v1.invoice.paid.json")


def test_every_current_shape_fixture_was_sent() -> None:
    events = {p.name for p in CURRENT_SHAPES.glob("*.json") if json.loads(p.read_text()).get("object") != "charge"}
    events -= {"payment_intent.json"}  # served by the stand-in for Stripe's API, above
    if not POSTED:
        pytest.skip("runs after the tests above, in the same session")
    assert events == POSTED

"""Stripe events through the real webhook, broker and worker process put accounts on hold and release them."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import post_stripe, stripe_fixture, wait_for

pytestmark = pytest.mark.e2e


def account(client: Any, admin: dict[str, str], account_id: str) -> dict[str, Any]:
    response = client.get(f"/api/accounts/{account_id}", headers=admin)
    assert response.status_code == 200, response.json
    return dict(response.json)


def test_a_failed_payment_holds_the_account_and_paying_the_invoice_releases_it(
    client: Any, admin: dict[str, str], worker: Any
) -> None:
    assert client.put("/api/accounts/acme", json={"stripe_customer_id": "cus_e2e1"}, headers=admin).status_code == 201
    failed = stripe_fixture("invoice.payment_failed.stripe-ruby-mock.json", customer="cus_e2e1", id="in_e2e1")
    assert post_stripe(client, failed).json == {"received": True, "duplicate": False}

    held = wait_for(lambda: account(client, admin, "acme")["on_hold"] or None, what="the non-payment hold")
    assert held
    state = account(client, admin, "acme")
    assert [h["reason"] for h in state["holds"]] == ["non_payment"]
    assert state["holds"][0]["cause"] == f"stripe:{failed['id']}"
    assert state["blocks_changes"] is True
    assert state["exposure"] == "20.00"

    paid = stripe_fixture("invoice.paid.stripe-ruby-mock.json", customer="cus_e2e1", id="in_e2e1")
    paid["created"] = failed["created"] + 60
    assert post_stripe(client, paid).status_code == 200
    wait_for(lambda: not account(client, admin, "acme")["on_hold"], what="the hold to lift")
    state = account(client, admin, "acme")
    assert state["holds"] == [] and state["exposure"] == "0.00"

    kinds = [e["kind"] for e in client.get("/api/accounts/acme/timeline", headers=admin).json["items"]]
    assert kinds[:2] == ["hold_released", "hold_placed"]

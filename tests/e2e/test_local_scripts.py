"""README's 'Try it' through the scripts: each sends its event, waits for a real worker, prints its status.

The headline story with scripts/send-dynamics-event (finance reviews a new customer's credit in
the CRM, an order waits, clearing creditonhold provisions it) and the payment story with
scripts/send-stripe-event (a failed payment holds the account, the payment releases it).
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from tests.conftest import wait_for
from tests.local_scripts import SECRETS, script, served

pytestmark = pytest.mark.e2e


def sent(*args: str, url: str) -> str:
    """Run a script against the served app; it must have waited until its event was processed."""
    result = script(*args, "--url", url, env=SECRETS)
    assert result.returncode == 0, result.stdout + result.stderr
    first, second = result.stdout.strip().splitlines()
    assert first == '200 {"received":true,"duplicate":false}'
    return second


def test_the_crm_credit_review_story_with_send_dynamics_event(
    app: Any, client: Any, admin: dict[str, str], worker: Any, provisioning: Any
) -> None:
    account, order = str(uuid.uuid4()), str(uuid.uuid4())
    with served(app) as url:
        created = sent("send-dynamics-event", "account", account, "--create", "--creditonhold", "true", url=url)
        assert created.endswith(f"(account.Create): processed, account {account}")
        assert created.startswith("dynamics event ")
        assert [h["reason"] for h in client.get(f"/api/accounts/{account}", headers=admin).json["holds"]] == [
            "credit_review"
        ]
        assert client.put(f"/api/accounts/{account}", json={"currency": "eur"}, headers=admin).status_code == 200

        submitted = sent("send-dynamics-event", "order", order, "--account", account, "--amount", "250.00", url=url)
        assert submitted.endswith(f"(salesorder.Update): processed, account {account}")
        [waiting] = client.get(f"/api/provisioning?account_id={account}", headers=admin).json["items"]
        assert (waiting["order_id"], waiting["amount"], waiting["currency"]) == (order, "250.00", "eur")
        assert (waiting["state"], waiting["waiting_for"]) == ("awaiting", ["credit_review"])
        assert provisioning.calls == []

        cleared = sent("send-dynamics-event", "account", account, "--creditonhold", "false", url=url)
        assert cleared.endswith(f"(account.Update): processed, account {account}")
    request = f"/api/provisioning/{waiting['request_id']}"
    wait_for(lambda: client.get(request, headers=admin).json["state"] == "provisioned", what="the order provisioned")
    assert provisioning.keys() == [waiting["request_id"]]


def test_the_payment_story_with_send_stripe_event(app: Any, client: Any, admin: dict[str, str], worker: Any) -> None:
    client.put(
        "/api/accounts/acme", json={"name": "Acme", "stripe_customer_id": "cus_acme", "currency": "usd"}, headers=admin
    )
    with served(app) as url:
        failed = sent(
            "send-stripe-event", "invoice.payment_failed.stripe-ruby-mock.json", "customer=cus_acme", "id=in_1", url=url
        )
        assert failed.startswith("stripe event evt_")
        assert failed.endswith("(invoice.payment_failed): processed, account acme")
        held = client.get("/api/accounts/acme", headers=admin).json
        assert held["on_hold"] and [h["reason"] for h in held["holds"]] == ["non_payment"]

        paid = sent("send-stripe-event", "invoice.paid.stripe-ruby-mock.json", "customer=cus_acme", "id=in_1", url=url)
        assert paid.endswith("(invoice.paid): processed, account acme")
    assert client.get("/api/accounts/acme", headers=admin).json["on_hold"] is False


def test_the_demo_plays_stories_1_to_3_against_the_running_service(
    app: Any, client: Any, admin: dict[str, str], worker: Any, provisioning: Any
) -> None:
    """./scripts/holdfast demo: every step through the webhooks and the API, a real worker, a provisioning server."""
    with served(app) as url:
        result = script("demo", "--url", url, env=SECRETS)
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    account = out.splitlines()[0].split("a new account ")[1].split()[0]
    stories = [out.index(f"== Story {n}: ") for n in (1, 2, 3)]
    assert stories == sorted(stories)
    one, two, three = out[stories[0] : stories[1]], out[stories[1] : stories[2]], out[stories[2] :]
    assert "account: on hold for credit_review" in one and "waiting for credit_review" in one
    assert one.count("provisioned; the provisioning API answered 200") == 2
    assert "account: on hold for non_payment" in two and "changes refused, provisioning parked" in two
    assert "409 account_on_hold: " in two and "This account has an unpaid invoice" in two
    assert "order DEMO-2 (600.00 usd): awaiting, waiting for non_payment, credit_limit" in two
    assert "order DEMO-2 (600.00 usd): provisioned" in three and "account: not on hold" in three
    assert "hold_released" in three and "stripe:evt_demo" in two

    requests = client.get(f"/api/provisioning?account_id={account}", headers=admin).json["items"]
    assert sorted(r["amount"] for r in requests) == ["250.00", "600.00", "99.00"]
    assert {r["state"] for r in requests} == {"provisioned"}
    assert sorted(provisioning.keys()) == sorted(r["request_id"] for r in requests)  # each sent once
    assert [h["reason"] for h in client.get(f"/api/accounts/{account}", headers=admin).json["holds"]] == []

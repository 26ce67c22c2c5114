"""Orders end to end: real webhook, broker, worker process and a local HTTP provisioning API."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import finalized_invoice, post_stripe, stripe_fixture, wait_for
from tests.provisioning_server import HANG
from tests.workers import start_worker, watch_for_late_sends

pytestmark = pytest.mark.e2e


def order(client: Any, admin: dict[str, str], account_id: str, order_id: str, amount: str) -> Any:
    return client.post(
        f"/api/accounts/{account_id}/orders", json={"order_id": order_id, "amount": amount}, headers=admin
    )


def state(client: Any, admin: dict[str, str], request_id: str) -> str:
    return str(client.get(f"/api/provisioning/{request_id}", headers=admin).json["state"])


def account(client: Any, admin: dict[str, str], account_id: str) -> dict[str, Any]:
    return dict(client.get(f"/api/accounts/{account_id}", headers=admin).json)


def paid_invoice(
    customer: str, invoice_id: str, after: dict[str, Any], fixture: str = "invoice.paid"
) -> dict[str, Any]:
    event = stripe_fixture(f"{fixture}.stripe-ruby-mock.json", customer=customer, id=invoice_id)
    event["created"] = after["created"] + 60
    return event


def test_an_order_is_refused_once_a_failed_payment_has_held_the_account(
    client: Any, admin: dict[str, str], worker: Any, provisioning: Any
) -> None:
    client.put("/api/accounts/acme", json={"stripe_customer_id": "cus_p1"}, headers=admin)
    post_stripe(client, stripe_fixture("invoice.payment_failed.stripe-ruby-mock.json", customer="cus_p1"))
    wait_for(lambda: account(client, admin, "acme")["blocks_changes"], what="the non-payment hold")
    refused = order(client, admin, "acme", "SO-1", "10.00")
    assert refused.status_code == 409
    assert refused.json["error"] == "account_on_hold" and refused.json["reasons"] == ["non_payment"]
    assert provisioning.calls == []


def test_an_order_over_the_limit_waits_and_is_provisioned_when_the_payment_clears(
    client: Any, admin: dict[str, str], worker: Any, provisioning: Any
) -> None:
    client.put("/api/accounts/acme", json={"stripe_customer_id": "cus_p2", "credit_limit": "100.00"}, headers=admin)
    invoice = finalized_invoice("cus_p2", "in_p2", 8000)
    post_stripe(client, invoice)
    wait_for(lambda: account(client, admin, "acme")["exposure"] == "80.00", what="the open invoice to count")
    waiting = order(client, admin, "acme", "SO-1", "50.00").json
    assert (waiting["state"], waiting["waiting_for"]) == ("awaiting", ["credit_limit"])

    post_stripe(client, paid_invoice("cus_p2", "in_p2", invoice))
    wait_for(lambda: state(client, admin, waiting["request_id"]) == "provisioned", what="the order to be provisioned")
    assert provisioning.keys() == [waiting["request_id"]]
    assert account(client, admin, "acme")["exposure"] == "0.00"


def test_awaiting_orders_go_oldest_first_when_the_hold_lifts_and_a_second_lift_sends_nothing(
    client: Any, admin: dict[str, str], worker: Any, provisioning: Any
) -> None:
    client.put("/api/accounts/acme", json={"stripe_customer_id": "cus_p3", "credit_limit": "0"}, headers=admin)
    ids = [order(client, admin, "acme", f"SO-{n}", "10.00").json["request_id"] for n in range(5)]
    failed = stripe_fixture("invoice.payment_failed.stripe-ruby-mock.json", customer="cus_p3", id="in_p3")
    post_stripe(client, failed)
    wait_for(lambda: account(client, admin, "acme")["on_hold"], what="the non-payment hold")
    client.put("/api/accounts/acme", json={"credit_limit": None}, headers=admin)
    waiting = client.get("/api/provisioning?state=awaiting&account_id=acme", headers=admin).json["items"]
    assert [(r["request_id"], r["waiting_for"]) for r in waiting] == [(i, ["non_payment"]) for i in ids]

    post_stripe(client, paid_invoice("cus_p3", "in_p3", failed))
    wait_for(lambda: all(state(client, admin, i) == "provisioned" for i in ids), what="every order provisioned")
    assert provisioning.keys() == ids  # oldest first, each exactly once

    # The same lift again, as another event (invoice.payment_succeeded): nothing is sent twice.
    post_stripe(client, paid_invoice("cus_p3", "in_p3", failed, fixture="invoice.payment_succeeded"))
    wait_for(
        lambda: client.get("/api/events?status=received", headers=admin).json["items"] == [],
        what="the second event to be processed",
    )
    # A send would come from a dispatch task queued by that event: watch until any has ended.
    watch_for_late_sends([worker], 3)
    assert provisioning.keys() == ids


def test_a_worker_killed_mid_dispatch_leaves_one_idempotency_key_and_a_provisioned_request(
    client: Any, admin: dict[str, str], worker: Any, worker_env: dict[str, str], provisioning: Any
) -> None:
    client.put("/api/accounts/acme", json={"name": "Acme"}, headers=admin)
    provisioning.answer(200, HANG)  # the first call hangs: the worker is inside it when it dies
    request_id = order(client, admin, "acme", "SO-1", "10.00").json["request_id"]
    wait_for(lambda: provisioning.keys() == [request_id], what="the first call to reach the provisioning API")
    worker.kill()  # SIGKILL: nothing recorded, nothing acknowledged
    assert state(client, admin, request_id) == "provisioning"

    restarted = start_worker(worker_env)
    try:

        def swept_and_provisioned() -> bool:
            client.post("/api/ops/sweep", headers=admin)
            return state(client, admin, request_id) == "provisioned"

        wait_for(swept_and_provisioned, timeout=60, interval=1.0, what="the sweep to recover the request")
    finally:
        restarted.stop()
    assert set(provisioning.keys()) == {request_id}
    assert len(provisioning.keys()) >= 2  # sent again after the crash, with the same key
